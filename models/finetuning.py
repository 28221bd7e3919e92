"""Fine-tuning: a validated :class:`TrainingConfig` (with the ``quick`` and ``full`` recipes) and a :class:`FineTuner`.

A small PyTorch loop rather than ``transformers.Trainer``: batches are grouped by length (each padded only to its own
longest text, which on this data cuts the tokens per batch about 4x against padding to the longest text in the set),
the word-embedding matrix can be frozen (its 11.7M of the encoder's 22M parameters dominate the optimizer step on CPU),
and nothing beyond torch is needed. ``bench/train_speed.py`` measures the loop against the naive one.

Phases of :meth:`FineTuner.train`: build the model (base encoder + new head), encode the texts once, optionally fit the
new head alone first (``head_warmup``), then per epoch train and validate, keeping the best epoch by validation
macro-F1 as the saved model would score it (multi-label: at per-label thresholds tuned on validation, as ``finish``
tunes them) or by the caller's ``select_by`` score (``patience`` stops early); with ``average_last`` > 1, the mean of
the last epochs' weights (checkpoint averaging) is validated too and replaces the best epoch only if it scores higher;
then tune per-label thresholds (multi-label) or fit the softmax temperature (single-label, ``models.calibration``), and
check whether int8 dynamic quantization keeps validation quality (it is approved only if it costs at most half a point).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import structlog
import torch
from tqdm.auto import tqdm
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    get_linear_schedule_with_warmup,
)

from models.calibration import expected_calibration_error, fit_temperature, with_temperature
from models.classifier import (
    MULTI_LABEL,
    TEMPERATURE_KEY,
    EmotionClassifier,
    pad_batch,
    quantize_int8,
    quiet_transformers,
)
from models.data import LabelledTexts, Splits
from models.device import autocast, device_autocast_dtype, resolve_device
from models.errors import TrainingConfigError
from models.evaluation import indicator_matrix, score, tune_thresholds
from models.mean_pooling import POOLINGS, mean_pooled_config, pooling_of
from models.parameter_groups import parameter_groups

log = structlog.get_logger(__name__)

# Scores an epoch from its validation probabilities; higher is better.
EpochScore = Callable[[np.ndarray], float]

# The head warm-up: full-batch AdamW steps on fixed features; a few hundred converge for a 384 x labels layer.
HEAD_WARMUP_STEPS = 300
HEAD_WARMUP_LEARNING_RATE = 1e-2
INT8_MAX_DROP = 0.005  # int8 is approved when it costs at most half a point of validation accuracy (or macro-F1)

RECIPES: dict[str, dict[str, Any]] = {
    # First runs: 2 epochs with the word embeddings frozen; ~5 minutes for the 16k emotion texts on a 2-core CPU.
    "quick": {"epochs": 2, "learning_rate": 1e-4, "max_length": 64, "freeze_embeddings": True},
    # Best quality: more epochs, everything trained, a longer warm-up.
    "full": {
        "epochs": 6,
        "learning_rate": 1e-4,  # the head's; each encoder layer below learns at 0.85 of the one above it
        "layer_decay": 0.85,  # better validation on 3 seeds of 3, test +0.3 point (docs/benchmarks.md, session 14)
        "max_length": 128,
        "freeze_embeddings": False,
        "warmup_ratio": 0.1,
        "average_last": 3,  # kept only when it validates better (docs/benchmarks.md: 1 seed in 3 on CPU)
    },
}


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of one fine-tuning run. Build it with :meth:`from_recipe` and override what you need."""

    base_model: str
    recipe: str = "custom"
    multi_label: bool = False
    epochs: int = 2
    learning_rate: float = 1e-4
    batch_size: int = 32
    max_length: int = 128
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    freeze_embeddings: bool = False
    class_weights: bool = False
    max_train: int | None = None
    patience: int | None = None  # stop after this many epochs without a better selection score (None: run them all)
    head_warmup: bool = False  # fit the output layer alone on the encoder's features first (see warm_up_head)
    average_last: int = 1  # > 1: also validate the mean of the last N epochs' weights (see average_last_epochs)
    label_smoothing: float = 0.0  # single-label: this much of each target's probability spread over all labels
    layer_decay: float = 1.0  # < 1: each encoder layer learns at this fraction of the rate above (parameter_groups)
    pooling: str = "cls"  # what the head reads: the [CLS] state or the tokens' mean (models.mean_pooling)
    seed: int = 42
    device: str = "auto"
    eval_batch_size: int = 128
    progress: bool | None = None  # None: a progress bar on a terminal only

    @classmethod
    def from_recipe(cls, recipe: str, base_model: str, **overrides: Any) -> TrainingConfig:
        """A recipe's settings with ``overrides`` (``None`` values are ignored) on top."""
        if recipe not in RECIPES:
            raise TrainingConfigError(f"unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}")
        values = {**RECIPES[recipe], **{k: v for k, v in overrides.items() if v is not None}}
        config = cls(base_model=base_model, recipe=recipe, **values)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise :class:`TrainingConfigError` for an out-of-range value."""
        positive = ("epochs", "batch_size", "max_length", "eval_batch_size")
        for name in positive:
            if getattr(self, name) <= 0:
                raise TrainingConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 < self.learning_rate < 1:
            raise TrainingConfigError(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            raise TrainingConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.max_train is not None and self.max_train <= 0:
            raise TrainingConfigError(f"max_train must be positive, got {self.max_train}")
        if self.patience is not None and self.patience <= 0:
            raise TrainingConfigError(f"patience must be positive, got {self.patience}")
        if self.average_last < 1:
            raise TrainingConfigError(f"average_last must be at least 1, got {self.average_last}")
        if not 0 <= self.label_smoothing < 1:
            raise TrainingConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.label_smoothing and self.multi_label:
            raise TrainingConfigError("label_smoothing applies to single-label data only")
        if not 0 < self.layer_decay <= 1:
            raise TrainingConfigError(f"layer_decay must be in (0, 1], got {self.layer_decay}")
        if self.pooling not in POOLINGS:
            raise TrainingConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")

    def hyperparameters(self) -> dict[str, Any]:
        """The config as a JSON-ready dict (for metrics.json and the model card)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "progress"}


@dataclass
class TrainingResult:
    """What a run produced: the best model, its validation metrics and how the run went."""

    classifier: EmotionClassifier
    config: TrainingConfig
    validation: dict[str, Any]
    history: list[dict[str, Any]]
    best_epoch: int
    train_examples: int
    train_seconds: float
    examples_per_second: float
    int8: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)  # single-label: the temperature and validation ECE
    head_warmup: dict[str, Any] = field(default_factory=dict)  # the output layer's loss before and after, if warmed up
    averaging: dict[str, Any] = field(default_factory=dict)  # the checkpoint average's validation, and whether it won

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary for metrics.json."""
        return {
            "hyperparameters": self.config.hyperparameters(),
            "validation": self.validation,
            "history": self.history,
            "best_epoch": self.best_epoch,
            "train_examples": self.train_examples,
            "train_seconds": round(self.train_seconds, 1),
            "examples_per_second": round(self.examples_per_second, 1),
            "int8": self.int8,
            "calibration": self.calibration,
            "head_warmup": self.head_warmup,
            "averaging": self.averaging,
        }


@dataclass
class PreparedRun:
    """What the fit phase works on: the classifier being trained (model, tokenizer), the tokenized training texts and
    their targets, and the optimizer, schedule and loss."""

    classifier: EmotionClassifier
    token_ids: list[list[int]]
    targets: torch.Tensor
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: torch.nn.Module
    last_weights: deque  # the last ``average_last`` epochs' weights (on the CPU), filled only when averaging


@dataclass(frozen=True)
class BestEpoch:
    """The epoch with the best selection score (see ``FineTuner._selection_score``): its number, score,
    weights (on the CPU) and validation metrics."""

    epoch: int
    score: float
    weights: dict[str, torch.Tensor]
    metrics: dict[str, Any]
    probabilities: np.ndarray  # its validation scores (uncalibrated), which calibration is fitted on


class FineTuner:
    """Fine-tunes a base encoder with a new classification head on :class:`Splits`."""

    def __init__(
        self,
        config: TrainingConfig,
        splits: Splits,
        labels: Sequence[str] | None = None,
        select_by: EpochScore | None = None,
    ) -> None:
        """``labels`` fixes the label set and its order (a superset of the data's); by default the training data's.

        When ``config.base_model`` is itself a fine-tuned classifier, the labels it knows keep their head weights and
        only new labels start fresh (see :func:`keep_known_classes`). ``select_by`` scores an epoch from its
        validation probabilities (rows in ``splits.validation`` order, columns in ``labels`` order); the best-scoring
        epoch is kept and ``config.patience`` counts from it. By default: validation macro-F1, for a multi-label run at
        per-label thresholds tuned on validation (what the saved model serves).
        """
        config.validate()
        config = with_base_pooling(config)
        if splits.train.multi_label and not config.multi_label:
            config = replace(config, multi_label=True)
            config.validate()  # what a single-label run may ask for (label smoothing) a multi-label one may not
        self.config = config
        self.train_data = splits.train.sample(config.max_train, seed=config.seed)
        self.labels = tuple(labels) if labels else self.train_data.labels
        self.train_data = self.train_data.relabel(self.labels)
        self.validation_data = splits.validation.relabel(self.labels)
        self.select_by = select_by
        self.device = resolve_device(config.device)
        self.autocast_dtype = device_autocast_dtype(self.device)  # bf16 (else fp16) on a GPU, None on CPU

    def train(self) -> TrainingResult:
        """Run the phases: prepare, warm up the head (if asked), fit (keeping the best epoch), finish; return the
        best epoch's model."""
        set_seed(self.config.seed)
        run = self.prepare()
        started = time.perf_counter()
        warmup = self.warm_up_head(run) if self.config.head_warmup else {}
        best, history = self.fit(run)
        best, averaging = self.average_last_epochs(run, best, history)
        elapsed = time.perf_counter() - started
        result = self.finish(run, best, history, elapsed)
        result.head_warmup, result.averaging = warmup, averaging
        return result

    def prepare(self) -> PreparedRun:
        """Phase 1: the model with its head, the tokenized training data, optimizer, schedule and loss."""
        model, tokenizer = self._build_model()
        token_ids = tokenizer(self.train_data.texts, truncation=True, max_length=self.config.max_length)["input_ids"]
        optimizer, scheduler = self._optimizer(model, math.ceil(len(token_ids) / self.config.batch_size))
        classifier = EmotionClassifier(
            model,
            tokenizer,
            device=self.device,
            max_length=self.config.max_length,
            batch_size=self.config.eval_batch_size,
        )
        return PreparedRun(
            classifier,
            token_ids,
            self._target_tensor(self.train_data),
            optimizer,
            scheduler,
            self._loss(),
            deque(maxlen=self.config.average_last),
        )

    def warm_up_head(self, run: PreparedRun) -> dict[str, Any]:
        """Phase 1b: fit the output layer alone on the encoder's features of the training texts, computed once.

        When a tuned classifier learns new labels, their head rows start random, and their gradients would push the
        tuned encoder around before the rows mean anything (linear probing before fine-tuning, LP-FT, avoids that
        distortion). The features are the output layer's inputs in eval mode, so this costs one inference pass.
        """
        model, head = run.classifier.model, output_head(run.classifier.model)
        features = self._head_inputs(model, head, run.token_ids)
        targets = run.targets.to(self.device)
        optimizer = torch.optim.AdamW(head.parameters(), lr=HEAD_WARMUP_LEARNING_RATE, weight_decay=0.0)
        with torch.no_grad():
            before = float(run.loss_fn(head(features), targets))
        for _ in range(HEAD_WARMUP_STEPS):  # full batch: a few thousand rows of a few hundred floats
            loss = run.loss_fn(head(features), targets)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            after = float(run.loss_fn(head(features), targets))
        log.info("head warmed up", loss_before=round(before, 4), loss_after=round(after, 4))
        return {"steps": HEAD_WARMUP_STEPS, "loss_before": round(before, 4), "loss_after": round(after, 4)}

    def fit(self, run: PreparedRun) -> tuple[BestEpoch, list[dict[str, Any]]]:
        """Phase 2: train every epoch (or until ``config.patience`` epochs bring no better score) and validate after
        each; the best epoch and the history of all that ran."""
        model = run.classifier.model
        history: list[dict[str, Any]] = []
        best: BestEpoch | None = None
        rng = random.Random(self.config.seed)
        for epoch in range(1, self.config.epochs + 1):
            epoch_started = time.perf_counter()
            loss = self._train_epoch(
                model, run.token_ids, run.targets, run.optimizer, run.scheduler, run.loss_fn, rng, epoch
            )
            train_seconds = time.perf_counter() - epoch_started
            probabilities = self._validation_probabilities(run.classifier)
            metrics = self._score(probabilities)
            selection = self._selection_score(metrics, probabilities)
            record = {
                "epoch": epoch,
                "loss": round(loss, 4),
                "train_seconds": round(train_seconds, 1),
                "validation_accuracy": metrics["accuracy"],
                "validation_macro_f1": metrics["macro_f1"],
            }
            if self.select_by is not None or self.config.multi_label:
                record["selection_score"] = round(selection, 5)
            history.append(record)
            log.info("epoch done", of=self.config.epochs, **record)
            weights = None
            if self.config.average_last > 1:
                weights = cpu_weights(model)
                run.last_weights.append(weights)
            if best is None or selection > best.score:
                best = BestEpoch(epoch, selection, weights or cpu_weights(model), metrics, probabilities)
            elif self.config.patience is not None and epoch - best.epoch >= self.config.patience:
                log.info("early stop", epoch=epoch, best_epoch=best.epoch, best_score=round(best.score, 5))
                break
        assert best is not None  # epochs >= 1 (validated)
        return best, history

    def average_last_epochs(
        self, run: PreparedRun, best: BestEpoch, history: list[dict[str, Any]]
    ) -> tuple[BestEpoch, dict[str, Any]]:
        """Phase 2b, when ``config.average_last`` > 1: the element-wise mean of the last epochs' weights (checkpoint
        averaging: late epochs of a decaying schedule sit around one optimum, and their mean is often nearer its
        centre than any of them), validated like an epoch; fewer than ``average_last`` when fewer ran, at least two.
        It replaces ``best`` only if it scores higher. Returns the one kept and a report (empty when nothing was
        averaged)."""
        snapshots = run.last_weights
        if self.config.average_last < 2 or len(snapshots) < 2:
            return best, {}
        epochs = tuple(record["epoch"] for record in history[-len(snapshots) :])
        weights = average_weights(list(snapshots))
        snapshots.clear()
        run.classifier.model.load_state_dict(weights)
        probabilities = self._validation_probabilities(run.classifier)
        metrics = self._score(probabilities)
        selection = self._selection_score(metrics, probabilities)
        kept = selection > best.score
        report = {
            "epochs": list(epochs),
            "validation_accuracy": metrics["accuracy"],
            "validation_macro_f1": metrics["macro_f1"],
            "selection_score": round(selection, 5),
            "best_single_epoch": best.epoch,
            "kept": kept,
        }
        log.info("checkpoint average validated", **report)
        if kept:
            return BestEpoch(epochs[-1], selection, weights, metrics, probabilities), report
        return best, report

    def finish(
        self, run: PreparedRun, best: BestEpoch, history: list[dict[str, Any]], elapsed: float
    ) -> TrainingResult:
        """Phase 3: restore the best epoch's weights, tune per-label thresholds (multi-label) or calibrate the scores
        (single-label), and check int8."""
        model = run.classifier.model
        model.load_state_dict(best.weights)
        model.eval()
        validation = best.metrics
        calibration: dict[str, Any] = {}
        if self.config.multi_label:
            validation = self._tune_thresholds(run.classifier)
        else:
            calibration = self._calibrate(run.classifier, best.probabilities)
            validation = {**validation, "ece": calibration["validation_ece_after"]}
        int8 = self._check_int8(run.classifier, validation)
        model.config.int8_validated = int8["approved"]
        examples = len(run.token_ids) * len(history)
        return TrainingResult(
            classifier=run.classifier,  # holds the best epoch's weights now
            config=self.config,
            validation=validation,
            history=history,
            best_epoch=best.epoch,
            train_examples=len(run.token_ids),
            train_seconds=elapsed,
            examples_per_second=examples / elapsed,
            int8=int8,
            calibration=calibration,
        )

    def evaluate(self, classifier: EmotionClassifier) -> dict[str, Any]:
        """``classifier``'s metrics on the validation split (``models.evaluation.score``), with this run's labels."""
        return self._score(self._validation_probabilities(classifier))

    def _validation_probabilities(self, classifier: EmotionClassifier) -> np.ndarray:
        classifier.model.eval()
        return classifier.predict_proba(self.validation_data.texts)

    def _score(self, probabilities: np.ndarray) -> dict[str, Any]:
        return score(probabilities, self.validation_data.targets, self.labels, multi_label=self.config.multi_label)

    def _selection_score(self, metrics: dict[str, Any], probabilities: np.ndarray) -> float:
        """What picks the best epoch: the caller's ``select_by``, else validation macro-F1 as the saved model would
        score it. A multi-label model is saved with per-label thresholds tuned on validation, so its epochs are compared
        at theirs: scored at 0.5, an epoch whose scores only need other thresholds would rank below what it serves
        (GoEmotions with 8 epochs, docs/benchmarks.md: at 0.5 epoch 7 was best, served epoch 6 scored higher)."""
        if self.select_by is not None:
            return float(self.select_by(probabilities))
        if self.config.multi_label:
            return self._at_tuned_thresholds(probabilities)[1]["macro_f1"]
        return metrics["macro_f1"]

    def _at_tuned_thresholds(self, probabilities: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """Per-label thresholds tuned on the validation ``probabilities``, and the validation metrics at them."""
        thresholds = tune_thresholds(probabilities, indicator_matrix(self.validation_data.targets, len(self.labels)))
        metrics = score(
            probabilities, self.validation_data.targets, self.labels, multi_label=True, thresholds=thresholds
        )
        return thresholds, metrics

    # --- phases ---------------------------------------------------------------------------------------------------

    def _build_model(self):
        labels = list(self.labels)
        head = {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {name: i for i, name in enumerate(labels)},
            "problem_type": MULTI_LABEL if self.config.multi_label else "single_label_classification",
        }
        with quiet_transformers():
            if self.config.pooling == "mean":  # from a plain encoder too: its own config names BERT, not ours
                head = {"config": mean_pooled_config(AutoConfig.from_pretrained(self.config.base_model), **head)}
            model = AutoModelForSequenceClassification.from_pretrained(
                self.config.base_model,
                **head,
                ignore_mismatched_sizes=True,
                use_safetensors=True,
                dtype=torch.float32,  # master weights in fp32 whatever the base was stored in; autocast does the rest
            )
            tokenizer = AutoTokenizer.from_pretrained(self.config.base_model)
        # A classifier continued from keeps its weights, not its calibration: scores stay raw until finish() fits one.
        if hasattr(model.config, TEMPERATURE_KEY):
            delattr(model.config, TEMPERATURE_KEY)
        kept = keep_known_classes(model, self.config.base_model)
        if kept:
            log.info(
                "continuing from a classifier",
                known_labels=kept,
                new_labels=[name for name in labels if name not in kept],
            )
        if self.config.freeze_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        return model.to(self.device), tokenizer

    def _head_inputs(self, model, head: torch.nn.Linear, token_ids: list[list[int]]) -> torch.Tensor:
        """What ``head`` receives for each training text, in order (eval mode: no dropout), as fp32 rows."""
        captured: list[torch.Tensor] = []
        hook = head.register_forward_pre_hook(lambda _module, inputs: captured.append(inputs[0].detach().float()))
        pad_id = model.config.pad_token_id or 0
        model.eval()
        try:
            with torch.no_grad():  # not inference_mode: the head is trained on these tensors afterwards
                step = self.config.eval_batch_size
                for start in range(0, len(token_ids), step):
                    input_ids, attention_mask = pad_batch(token_ids[start : start + step], pad_id)
                    with autocast(self.autocast_dtype):
                        model(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device))
        finally:
            hook.remove()
        return torch.cat(captured)

    def _target_tensor(self, data: LabelledTexts) -> torch.Tensor:
        if self.config.multi_label:
            return torch.as_tensor(indicator_matrix(data.targets, len(self.labels)), dtype=torch.float32)
        return torch.as_tensor(data.label_ids, dtype=torch.long)

    def _optimizer(self, model, steps_per_epoch: int):
        groups = parameter_groups(model, self.config.learning_rate, self.config.weight_decay, self.config.layer_decay)
        optimizer = torch.optim.AdamW(groups, lr=self.config.learning_rate)
        total = steps_per_epoch * self.config.epochs
        scheduler = get_linear_schedule_with_warmup(optimizer, int(total * self.config.warmup_ratio), total)
        return optimizer, scheduler

    def _loss(self) -> torch.nn.Module:
        weight = None
        if self.config.class_weights:
            counts = indicator_matrix(self.train_data.targets, len(self.labels)).sum(axis=0).astype(np.float64)
            weight = torch.as_tensor(np.sqrt(counts.sum() / np.maximum(counts, 1) / len(counts)), dtype=torch.float32)
            weight = weight.to(self.device)
        if self.config.multi_label:
            return torch.nn.BCEWithLogitsLoss(pos_weight=weight)
        return torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=self.config.label_smoothing)

    def _train_epoch(self, model, token_ids, targets, optimizer, scheduler, loss_fn, rng, epoch) -> float:
        model.train()
        pad_id = model.config.pad_token_id or 0
        batches = list(length_grouped_batches([len(ids) for ids in token_ids], self.config.batch_size, rng))
        total, seen = 0.0, 0
        bar = tqdm(batches, desc=f"epoch {epoch}/{self.config.epochs}", unit="batch", disable=self._no_progress())
        for indices in bar:
            input_ids, attention_mask = pad_batch([token_ids[i] for i in indices], pad_id)
            with autocast(self.autocast_dtype):
                logits = model(
                    input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device)
                ).logits
            loss = loss_fn(logits.float(), targets[indices].to(self.device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.item() * len(indices)
            seen += len(indices)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        return total / max(seen, 1)

    def _tune_thresholds(self, classifier: EmotionClassifier) -> dict[str, Any]:
        thresholds, metrics = self._at_tuned_thresholds(classifier.predict_proba(self.validation_data.texts))
        classifier.model.config.label_thresholds = {
            name: float(t) for name, t in zip(self.labels, thresholds, strict=True)
        }
        classifier.thresholds = thresholds  # the config is what is saved; this is what predicts in this process
        return metrics

    def _calibrate(self, classifier: EmotionClassifier, probabilities: np.ndarray) -> dict[str, Any]:
        """Fit the softmax temperature on the best epoch's validation ``probabilities`` and store it in the model's
        config, so that it is saved and applied wherever the checkpoint is loaded."""
        gold = [t[0] for t in self.validation_data.targets]
        temperature = fit_temperature(probabilities, gold)
        classifier.temperature = temperature
        setattr(classifier.model.config, TEMPERATURE_KEY, temperature)
        calibrated = with_temperature(probabilities, temperature)
        return {
            "temperature": round(temperature, 4),
            "validation_ece_before": round(expected_calibration_error(probabilities, gold), 5),
            "validation_ece_after": round(expected_calibration_error(calibrated, gold), 5),
        }

    def _check_int8(self, classifier: EmotionClassifier, validation: dict[str, Any]) -> dict[str, Any]:
        key = "macro_f1" if self.config.multi_label else "accuracy"
        cpu_model = quantize_int8(copy.deepcopy(classifier.model).float())
        int8 = EmotionClassifier(
            cpu_model, classifier.tokenizer, device="cpu", max_length=classifier.max_length, quantized=True
        )
        probabilities = int8.predict_proba(self.validation_data.texts)
        thresholds = int8.thresholds if self.config.multi_label else None
        quantized = score(
            probabilities,
            self.validation_data.targets,
            self.labels,
            multi_label=self.config.multi_label,
            thresholds=thresholds,
        )
        drop = validation[key] - quantized[key]
        return {
            "metric": key,
            "fp32": validation[key],
            "int8": quantized[key],
            "drop": round(drop, 5),
            "approved": bool(drop <= INT8_MAX_DROP),
        }

    def _no_progress(self) -> bool | None:
        return None if self.config.progress is None else not self.config.progress


def keep_known_classes(model: torch.nn.Module, base: str) -> list[str]:
    """If ``base`` is a fine-tuned classifier, copy its head's rows for the labels ``model`` shares with it.

    ``from_pretrained(..., ignore_mismatched_sizes=True)`` loads the encoder but starts a head of another size afresh;
    this puts the known classes' weights back, so adding a label does not relearn the old ones. Returns the labels
    carried over (none for a plain encoder).
    """
    if not is_classifier(AutoConfig.from_pretrained(base)):
        return []
    with quiet_transformers():
        old = AutoModelForSequenceClassification.from_pretrained(base, use_safetensors=True, dtype=torch.float32)
    old_head, new_head = output_head(old), output_head(model)
    kept = []
    with torch.no_grad():
        for row, name in model.config.id2label.items():
            old_row = old.config.label2id.get(name)
            if old_row is not None:
                new_head.weight[int(row)] = old_head.weight[int(old_row)]
                new_head.bias[int(row)] = old_head.bias[int(old_row)]
                kept.append(name)
    return kept


def with_base_pooling(config: TrainingConfig) -> TrainingConfig:
    """``config`` with the pooling its base allows: a classifier continued from keeps its own (a head trained on one
    pooling is meaningless on the other); mean pooling from a plain encoder needs a BERT one."""
    base_config = AutoConfig.from_pretrained(config.base_model)
    if is_classifier(base_config):
        kept = pooling_of(base_config)
        if kept != config.pooling:
            log.info("pooling kept from the classifier continued from", pooling=kept, asked=config.pooling)
            config = replace(config, pooling=kept)
    elif config.pooling == "mean" and base_config.model_type != "bert":
        raise TrainingConfigError(
            f"pooling 'mean' is built for BERT encoders; {config.base_model} is {base_config.model_type!r}: "
            "use pooling 'cls'"
        )
    return config


def is_classifier(base_config) -> bool:
    """Whether a checkpoint's config is a fine-tuned sequence classifier's (else a plain encoder's)."""
    return any(name.endswith("ForSequenceClassification") for name in base_config.architectures or [])


def output_head(model: torch.nn.Module) -> torch.nn.Linear:
    """The classifier's final Linear layer (one output per label), whatever the architecture calls it."""
    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == model.config.num_labels]
    if not heads:
        raise ValueError("no output layer with one unit per label")
    return heads[-1]


def cpu_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s weights on the CPU (a snapshot that later steps do not change)."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


def average_weights(snapshots: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of ``snapshots``' floating-point tensors; other tensors (position ids and the like) are
    taken from the last one."""
    last = snapshots[-1]
    return {
        name: torch.stack([s[name] for s in snapshots]).mean(dim=0) if tensor.is_floating_point() else tensor
        for name, tensor in last.items()
    }


def length_grouped_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> Iterator[list[int]]:
    """Shuffled batches of similar-length texts: shuffle, sort within pools of 64 batches, shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 64
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    yield from batches


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
