"""Refit: train a recipe again from its base on the training plus the validation texts, repeating what a selection run
chose.

A selection run (:meth:`models.finetuning.FineTuner.train`) holds the validation split out to choose how many epochs of
the schedule to keep, whether the checkpoint average wins, and the calibration (the softmax temperature, or per-label
thresholds). Once those are fixed, the validation texts have done their job and can be trained on too: the refit runs
the same schedule on train + validation from the same base, stops after the chosen epoch (or averages the same
epochs), and keeps the selection run's calibration. That calibration was fitted on texts the selected model had not
seen; fitted again on the refit model's own validation scores it would be fitted on its training data, and too sharp.

What the refit model cannot have is a held-out validation score of its own: its ``validation`` is the selection
run's (the figure the recipe's choices rest on), and its test scores are what say whether refitting paid.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import structlog

from models.classifier import TEMPERATURE_KEY, EmotionClassifier
from models.data import Splits
from models.finetuning import FineTuner, TrainingConfig, TrainingResult, average_weights, cpu_weights, set_seed

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Selection:
    """What a selection run chose and a refit repeats.

    Attributes:
        epochs: how many epochs of the recipe's schedule to train (the schedule itself spans all of the recipe's).
        averaged: the epochs whose mean weights are kept; empty: the weights after ``epochs``.
        temperature: the softmax temperature fitted on held-out validation (single-label), else None.
        thresholds: the per-label thresholds tuned on held-out validation (multi-label), else None.
    """

    epochs: int
    averaged: tuple[int, ...] = ()
    temperature: float | None = None
    thresholds: dict[str, float] | None = None

    @classmethod
    def of(cls, result: TrainingResult) -> Selection:
        """What ``result`` (a selection run) chose."""
        averaging = result.averaging
        averaged = tuple(averaging["epochs"]) if averaging.get("kept") else ()
        model_config = result.classifier.model.config
        thresholds = getattr(model_config, "label_thresholds", None) if result.config.multi_label else None
        return cls(
            epochs=max(averaged) if averaged else result.best_epoch,
            averaged=averaged,
            temperature=result.calibration.get("temperature"),
            thresholds=dict(thresholds) if thresholds else None,
        )


def refit(selected: TrainingResult, splits: Splits) -> TrainingResult:
    """Train ``selected``'s recipe again on ``splits``' training and validation texts as ``selected`` chose; the refit
    model, with ``selected``'s validation figures and a ``refit`` report."""
    selection = Selection.of(selected)
    labels = selected.classifier.labels
    config = selected.config
    refitted = RefitTuner(config, splits, labels, selection).train()
    refitted.validation = selected.validation
    refitted.history = [*selected.history, *refitted.history]
    refitted.calibration = selected.calibration  # fitted on held-out validation, as the refit model keeps it
    refitted.averaging = selected.averaging
    refitted.head_warmup = selected.head_warmup
    # Time and speed of the whole run, both trainings: what ``emostream train`` reports.
    examples = selected.examples_per_second * selected.train_seconds
    examples += refitted.examples_per_second * refitted.train_seconds
    refitted.train_seconds += selected.train_seconds
    refitted.examples_per_second = examples / refitted.train_seconds
    return refitted


class RefitTuner(FineTuner):
    """A :class:`FineTuner` whose training data is the training plus the validation texts and whose run is fixed by a
    :class:`Selection` instead of chosen on validation."""

    def __init__(self, config: TrainingConfig, splits: Splits, labels: Sequence[str], selection: Selection) -> None:
        # The selection run's sample of the training texts (the same seed draws the same), then every validation text.
        sampled = splits.train.sample(config.max_train, seed=config.seed).relabel(labels)
        combined = sampled.concat(splits.validation.relabel(labels))
        super().__init__(replace(config, max_train=None), Splits(combined, splits.validation), labels=labels)
        self.selection = selection

    def train(self) -> TrainingResult:
        """Train ``selection.epochs`` epochs of the recipe's schedule, keep those weights (or the chosen average),
        apply the selection's calibration and check int8."""
        set_seed(self.config.seed)
        run = self.prepare()
        model = run.classifier.model
        rng = random.Random(self.config.seed)
        started = time.perf_counter()
        if self.config.head_warmup:  # as the selection run did before its first epoch
            self.warm_up_head(run)
        history: list[dict[str, Any]] = []
        snapshots: list[dict[str, Any]] = []
        for epoch in range(1, self.selection.epochs + 1):
            epoch_started = time.perf_counter()
            loss = self._train_epoch(
                model, run.token_ids, run.targets, run.optimizer, run.scheduler, run.loss_fn, rng, epoch
            )
            record = {
                "refit_epoch": epoch,
                "loss": round(loss, 4),
                "train_seconds": round(time.perf_counter() - epoch_started, 1),
            }
            history.append(record)
            log.info("refit epoch done", of=self.selection.epochs, **record)
            if epoch in self.selection.averaged:
                snapshots.append(cpu_weights(model))
        if snapshots:
            model.load_state_dict(average_weights(snapshots))
        model.eval()
        self._apply_calibration(run.classifier)
        elapsed = time.perf_counter() - started
        # int8 is judged on the validation texts as in a selection run: what it measures is the quantized model's
        # agreement with the fp32 one, which training on those texts does not flatter the way it flatters accuracy.
        validation = self.evaluate(run.classifier)
        int8 = self._check_int8(run.classifier, validation)
        model.config.int8_validated = int8["approved"]
        return TrainingResult(
            classifier=run.classifier,
            config=self.config,
            validation=validation,
            history=history,
            best_epoch=self.selection.epochs,
            train_examples=len(run.token_ids),
            train_seconds=elapsed,
            examples_per_second=len(run.token_ids) * self.selection.epochs / elapsed,
            int8=int8,
            refit={
                "train_examples": len(run.token_ids),
                "epochs": self.selection.epochs,
                "averaged_epochs": list(self.selection.averaged),
                "seconds": round(elapsed, 1),
            },
        )

    def _apply_calibration(self, classifier: EmotionClassifier) -> None:
        if self.selection.thresholds is not None:
            classifier.model.config.label_thresholds = dict(self.selection.thresholds)
            thresholds = [self.selection.thresholds[name] for name in self.labels]
            classifier.thresholds = np.array(thresholds, dtype=np.float32)
        if self.selection.temperature is not None:
            classifier.temperature = self.selection.temperature
            setattr(classifier.model.config, TEMPERATURE_KEY, self.selection.temperature)
