"""One retraining cycle: fine-tune the current model on new feedback plus a replay of the base data, and promote the
result only if it passes the gate.

The cycle (no Kafka here; the trainer job in ``stream`` feeds it):

1. split the feedback into a training part and a held-out part (seeded);
2. train on the feedback's training part plus a random replay of the base training data sized relative to it (against
   forgetting), starting from the current model; new labels grow the head, known labels keep their weights. The recipe
   is made for a new domain: the output layer is first fitted alone on the encoder's features (new labels' rows start
   sensible instead of random), then the whole model trains with class-weighted loss (small new labels count), for at
   most ``epochs``, keeping the epoch with the best held-out feedback macro-F1 among those that keep the base within
   the gate's tolerance (:class:`HeldOutSelection`) and stopping after ``patience`` epochs without a better one;
3. score candidate and current model on the held-out feedback (macro-F1 over its labels; a label the current model
   does not know counts as wrong) and on the base validation split (macro-F1 over the base labels only, so a new label
   is not counted as forgetting);
4. the gate: promote only if held-out macro-F1 improves and base macro-F1 drops by at most ``tolerance``.

Step 2 picks its epoch on the same held-out feedback step 4 judges by, so the candidate's held-out score is the best of
at most ``epochs`` looks: slightly optimistic. The base guard is independent of it, and a candidate that learnt
nothing still loses (a test trains on shuffled labels). Scores are calibrated on the held-out feedback plus the base
validation split (the temperature changes no prediction, so it does not touch the gate).

Every candidate is registered with its decision in ``metrics.json``; a rejected one stays for inspection, not served.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import structlog

from models.classifier import EmotionClassifier
from models.data import DataError, LabelledTexts, Splits
from models.evaluation import evaluate_classifier, f1_over_present, macro_f1_over_gold
from models.finetuning import FineTuner, TrainingConfig
from models.registry import ModelRegistry, VersionInfo
from models.release import register_run

log = structlog.get_logger(__name__)

# Fewer examples than this make the held-out part too small for the gate's macro-F1 to mean anything.
MIN_FEEDBACK = 20


@dataclass(frozen=True)
class CycleConfig:
    """Knobs of a retraining cycle."""

    holdout_fraction: float = 0.2
    replay_ratio: float = 1.0  # base training examples per feedback training example
    tolerance: float = 0.01
    epochs: int = 4  # at most: early stopping on the held-out feedback
    patience: int = 1
    learning_rate: float = 1e-4
    warmup_ratio: float = 0.1
    head_warmup: bool = True
    class_weights: bool = True
    batch_size: int = 32
    max_length: int = 128
    seed: int = 42
    device: str = "auto"


@dataclass(frozen=True)
class GateDecision:
    """The promotion decision and the four scores it was made on."""

    promoted: bool
    reason: str
    new_data_f1_candidate: float
    new_data_f1_current: float
    base_f1_candidate: float
    base_f1_current: float
    tolerance: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True)
class CycleResult:
    """What a cycle registered and decided."""

    version: VersionInfo
    decision: GateDecision
    new_labels: list[str]
    train_examples: int
    holdout_examples: int


def decide(
    new_candidate: float, new_current: float, base_candidate: float, base_current: float, tolerance: float
) -> GateDecision:
    """Promote iff the held-out new-data macro-F1 improves and the base macro-F1 drops by at most ``tolerance``."""
    drop = base_current - base_candidate
    if new_candidate <= new_current:
        reason = f"held-out new-data macro-F1 did not improve ({new_current:.4f} -> {new_candidate:.4f})"
        promoted = False
    elif drop > tolerance:
        reason = f"base macro-F1 dropped by {drop:.4f}, more than the tolerance {tolerance:.4f}"
        promoted = False
    else:
        reason = f"new-data macro-F1 {new_current:.4f} -> {new_candidate:.4f}; base drop {drop:.4f} <= {tolerance:.4f}"
        promoted = True
    return GateDecision(promoted, reason, new_candidate, new_current, base_candidate, base_current, tolerance)


def new_data_macro_f1(classifier: EmotionClassifier, data: LabelledTexts) -> float:
    """Macro-F1 over the labels present in ``data``; a gold label the model does not know is always missed."""
    gold = [data.labels[t[0]] for t in data.targets]
    return macro_f1_over_gold(gold, [p.label for p in classifier.predict(data.texts)])


@dataclass(frozen=True)
class HeldOutSelection:
    """Scores a cycle's epoch from its validation probabilities, whose rows are the held-out feedback followed by the
    base validation split (columns: the cycle's labels): the held-out macro-F1 over the feedback's labels (as
    :func:`new_data_macro_f1` computes it), minus 1 when the base macro-F1 (over the base labels' columns only, as the
    gate computes it) falls below ``base_floor``, so that any epoch the gate could accept beats one it would not."""

    holdout_gold: tuple[int, ...]
    base_gold: tuple[int, ...]  # ids in the cycle's label set
    base_columns: tuple[int, ...]  # the base labels' columns, in the base label order
    base_floor: float

    def scores(self, probabilities: np.ndarray) -> tuple[float, float]:
        """(held-out feedback macro-F1, base validation macro-F1)."""
        n = len(self.holdout_gold)
        held_out = macro_f1_over_gold(self.holdout_gold, probabilities[:n].argmax(axis=1).tolist())
        columns = np.asarray(self.base_columns)
        base_predicted = columns[probabilities[n:, columns].argmax(axis=1)]
        return held_out, f1_over_present(self.base_gold, base_predicted.tolist())

    def __call__(self, probabilities: np.ndarray) -> float:
        held_out, base = self.scores(probabilities)
        return held_out if base >= self.base_floor else held_out - 1.0


def run_cycle(registry: ModelRegistry, feedback: LabelledTexts, base: Splits, config: CycleConfig) -> CycleResult:
    """Run one cycle on ``feedback`` (single-label) and register the candidate, promoted or not."""
    if feedback.multi_label:
        raise DataError("feedback with several labels per text cannot retrain a single-label model")
    if len(feedback) < MIN_FEEDBACK:
        raise DataError(f"too little feedback ({len(feedback)}) for a cycle: at least {MIN_FEEDBACK} examples")
    current_path = registry.resolve("current")
    current = EmotionClassifier.from_pretrained(current_path, device=config.device, quantize="off")
    used = sorted({feedback.labels[t[0]] for t in feedback.targets})
    new_labels = [name for name in used if name not in current.labels]
    labels = list(current.labels) + new_labels
    train_part, holdout = feedback.split_off(config.holdout_fraction, config.seed)
    replay = base.train.sample(round(config.replay_ratio * len(train_part)), seed=config.seed)
    train = train_part.relabel(labels).concat(replay.relabel(labels))
    base_labels = list(base.train.labels)
    current_new_f1 = new_data_macro_f1(current, holdout)
    current_base_f1 = evaluate_classifier(current, base.validation, base_labels)["macro_f1"]
    holdout, base_validation = holdout.relabel(labels), base.validation.relabel(labels)
    selection = HeldOutSelection(
        holdout_gold=tuple(holdout.label_ids),
        base_gold=tuple(base_validation.label_ids),
        base_columns=tuple(labels.index(name) for name in base_labels),
        base_floor=current_base_f1 - config.tolerance,
    )
    training = TrainingConfig(
        base_model=str(current_path),
        recipe="retrain",
        epochs=config.epochs,
        patience=config.patience,
        learning_rate=config.learning_rate,
        warmup_ratio=config.warmup_ratio,
        head_warmup=config.head_warmup,
        class_weights=config.class_weights,
        batch_size=config.batch_size,
        max_length=config.max_length,
        seed=config.seed,
        device=config.device,
        progress=False,
    )
    log.info(
        "retraining",
        current=current_path.name,
        feedback=len(feedback),
        train=len(train),
        holdout=len(holdout),
        replay=len(replay),
        new_labels=new_labels,
    )
    validation = holdout.concat(base_validation)  # selection, calibration and the int8 check see both
    result = FineTuner(training, Splits(train, validation), labels=labels, select_by=selection).train()
    candidate = result.classifier
    decision = decide(
        new_data_macro_f1(candidate, holdout),
        current_new_f1,
        evaluate_classifier(candidate, base.validation, base_labels)["macro_f1"],
        current_base_f1,
        config.tolerance,
    )
    log.info("promotion gate", promoted=decision.promoted, reason=decision.reason)
    info = register_run(
        registry,
        result,
        data_source=f"feedback ({len(feedback)}) + replay ({len(replay)})",
        promote=decision.promoted,
        extra={"gate": decision.to_dict(), "parent": current_path.name, "new_labels": new_labels},
        scratch_prefix=".retrain-",
    )
    return CycleResult(info, decision, new_labels, len(train), len(holdout))
