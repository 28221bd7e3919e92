"""One retraining cycle: fine-tune the current model on new feedback plus a replay of the base data, and promote the
result only if it passes the gate.

The cycle (no Kafka here; the trainer job in ``stream`` feeds it):

1. split the feedback into a training part and a held-out part (seeded);
2. train on the feedback's training part plus a random replay sample of the base training data (against forgetting),
   starting from the current model; new labels grow the head, known labels keep their weights;
3. score candidate and current model on the held-out feedback (macro-F1 over its labels; a label the current model
   does not know counts as wrong) and on the base validation split (macro-F1 over the base labels only, so a new label
   is not counted as forgetting);
4. the gate: promote only if held-out macro-F1 improves and base macro-F1 drops by at most ``tolerance``.

Every candidate is registered with its decision in ``metrics.json``; a rejected one stays for inspection, not served.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import structlog
from sklearn.metrics import f1_score

from models.classifier import EmotionClassifier
from models.data import DataError, LabelledTexts, Splits
from models.evaluation import evaluate_classifier
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
    replay: int = 2000
    tolerance: float = 0.01
    epochs: int = 2
    learning_rate: float = 5e-5
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
    predicted = [p.label for p in classifier.predict(data.texts)]
    return float(f1_score(gold, predicted, labels=sorted(set(gold)), average="macro", zero_division=0))


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
    replay = base.train.sample(config.replay, seed=config.seed)
    train = _concat(train_part.relabel(labels), replay.relabel(labels))
    training = TrainingConfig(
        base_model=str(current_path),
        recipe="retrain",
        epochs=config.epochs,
        learning_rate=config.learning_rate,
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
    result = FineTuner(training, Splits(train, base.validation.relabel(labels)), labels=labels).train()
    candidate = result.classifier
    base_labels = list(base.train.labels)
    decision = decide(
        new_data_macro_f1(candidate, holdout),
        new_data_macro_f1(current, holdout),
        evaluate_classifier(candidate, base.validation, base_labels)["macro_f1"],
        evaluate_classifier(current, base.validation, base_labels)["macro_f1"],
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


def _concat(first: LabelledTexts, second: LabelledTexts) -> LabelledTexts:
    return LabelledTexts(
        first.texts + second.texts,
        first.targets + second.targets,
        first.labels,
        first.multi_label,
        f"{first.source} + {second.source}",
    )
