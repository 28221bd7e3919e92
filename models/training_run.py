"""One training run as ``emostream train`` (and the demo's first step) makes it: load the data, fine-tune a recipe
from the base encoder, score the best epoch on the test split when the data has one.

Writing the run folder, registering it and announcing it to running workers are the caller's (``models.artifacts``,
``models.release``, and the command line, which alone talks to Kafka): this module never touches the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from models.data import load_splits
from models.evaluation import evaluate_classifier
from models.finetuning import FineTuner, TrainingConfig, TrainingResult

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TrainingRun:
    """A finished run: where its data came from, the fine-tune's result, and its test scores (None without a test
    split)."""

    data: str
    result: TrainingResult
    test_metrics: dict[str, Any] | None

    def summary(self) -> dict[str, Any]:
        """The run's headline figures, scored on the test split when there is one, else on validation."""
        result = self.result
        headline = self.test_metrics or result.validation
        return {
            "accuracy": headline["accuracy"],
            "macro_f1": headline["macro_f1"],
            "weighted_f1": headline["weighted_f1"],
            "scored_on": "test" if self.test_metrics else "validation",
            "train_seconds": round(result.train_seconds, 1),
            "examples_per_second": round(result.examples_per_second, 1),
            "best_epoch": result.best_epoch,
            "int8_approved": result.int8["approved"],
        }


def train_and_score(
    data: str | Path,
    *,
    recipe: str,
    base: str,
    device: str,
    seed: int = 42,
    skip_invalid: bool = False,
    **overrides: Any,
) -> TrainingRun:
    """Fine-tune ``recipe`` from ``base`` on ``data`` (a folder of splits, one file or a dataset id) with
    ``overrides`` of the recipe (``None`` or ``False`` leaves the recipe's value), and score the best epoch."""
    # A flag left off on the command line means "the recipe's value", not "turn it off".
    flags = {name: overrides.pop(name, None) or None for name in ("multi_label", "class_weights")}
    config = TrainingConfig.from_recipe(recipe, base, device=device, seed=seed, **flags, **overrides)
    splits = load_splits(data, multi_label=config.multi_label or None, skip_invalid=skip_invalid, seed=seed)
    log.info(
        "training",
        recipe=recipe,
        data=str(data),
        train=len(splits.train),
        validation=len(splits.validation),
        labels=list(splits.train.labels),
        multi_label=splits.train.multi_label,
        skipped=splits.train.skipped + splits.validation.skipped,
    )
    result = FineTuner(config, splits).train()
    test_metrics = evaluate_classifier(result.classifier, splits.test) if splits.test is not None else None
    return TrainingRun(str(data), result, test_metrics)
