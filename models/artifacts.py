"""A training run's folder: the HF checkpoint plus ``metrics.json``, ``labels.json``, the confusion matrix and a card.

This is the unit the registry versions; it stays a standard HF folder, so ``transformers.pipeline`` loads it as is.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch
import transformers

from models.evaluation import save_confusion_matrix
from models.finetuning import TrainingResult

CONFUSION_PNG = "confusion_matrix.png"


def export_run(
    result: TrainingResult,
    out_dir: str | Path,
    *,
    data_source: str,
    test_metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write everything about ``result`` into ``out_dir`` (created if needed) and return it.

    ``extra`` is merged into ``metrics.json`` (the retraining job puts its promotion decision there).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result.classifier.save_pretrained(out)
    labels = list(result.classifier.labels)
    (out / "labels.json").write_text(json.dumps(labels) + "\n", encoding="utf-8")
    shown = test_metrics or result.validation
    split = "test" if test_metrics else "validation"
    save_confusion_matrix(shown["confusion_matrix"], labels, out / CONFUSION_PNG, f"{split} confusion matrix")
    metrics = {
        "base_model": result.config.base_model,
        "data": data_source,
        "multi_label": result.classifier.multi_label,
        "labels": labels,
        "validation": result.validation,
        "test": test_metrics,
        "training": result.summary(),
        "environment": {
            "device": str(result.classifier.device),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
    }
    metrics.update(extra or {})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (out / "README.md").write_text(model_card(metrics), encoding="utf-8")
    return out


def model_card(metrics: dict[str, Any]) -> str:
    """A Markdown model card from a run's ``metrics.json`` content."""
    training = metrics["training"]
    hyper = training["hyperparameters"]
    headline = metrics["test"] or metrics["validation"]
    split = "test" if metrics["test"] else "validation"
    kind = "multi-label (sigmoid, per-label thresholds)" if metrics["multi_label"] else "single-label (softmax)"
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        "tags: [emotion, emostream]",
        "---",
        "",
        "# emostream emotion classifier",
        "",
        f"Fine-tuned from `{metrics['base_model']}` on `{metrics['data']}`: {kind}, "
        f"{len(metrics['labels'])} labels ({', '.join(metrics['labels'])}).",
        "",
        "## Metrics",
        "",
        f"On the {split} split ({headline['n']} texts): accuracy **{headline['accuracy']:.4f}**, "
        f"macro-F1 **{headline['macro_f1']:.4f}**, weighted-F1 {headline['weighted_f1']:.4f}.",
        "",
        "| label | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in headline["per_class"].items():
        lines.append(f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    int8 = training.get("int8") or {}
    lines += [
        "",
        f"![{split} confusion matrix]({CONFUSION_PNG})",
        "",
        "## Training",
        "",
        f"Recipe `{hyper['recipe']}`; {selected_weights(training, hyper['epochs'])}; "
        f"{training['train_examples']} training texts, {training['train_seconds']} s "
        f"({training['examples_per_second']} examples/s) on {metrics['environment']['device']}.",
        "",
        "| hyper-parameter | value |",
        "| --- | --- |",
        *(f"| {key} | {value} |" for key, value in hyper.items()),
        "",
    ]
    calibration = training.get("calibration") or {}
    if calibration:
        test_ece = ""
        if metrics["test"] and "ece_uncalibrated" in metrics["test"]:
            test_ece = f"; on the test split {metrics['test']['ece_uncalibrated']:.3f} -> {metrics['test']['ece']:.3f}"
        lines += [
            f"Scores are calibrated by temperature scaling (T = {calibration['temperature']:.3f}, fitted on the "
            f"validation split): expected calibration error on validation {calibration['validation_ece_before']:.3f} "
            f"-> {calibration['validation_ece_after']:.3f}{test_ece}.",
            "",
        ]
    if int8:
        verdict = "approved" if int8["approved"] else "not approved"
        lines += [
            f"int8 dynamic quantization (CPU): validation {int8['metric']} {int8['fp32']:.4f} -> {int8['int8']:.4f}, "
            f"{verdict} for serving (at most 0.5 point may be lost).",
            "",
        ]
    if hyper.get("pooling") == "mean":
        pipeline = [
            "# or, after `import models.mean_pooling` (it registers this model type with transformers):",
            "# transformers.pipeline('text-classification', model='<this folder>')",
        ]
    else:
        pipeline = ["# or: transformers.pipeline('text-classification', model='<this folder>')"]
    lines += [
        "## Use",
        "",
        "```python",
        "from models import EmotionClassifier",
        'EmotionClassifier.from_pretrained("<this folder>").predict(["I am thrilled!"])',
        *pipeline,
        "```",
        "",
    ]
    return "\n".join(lines)


def selected_weights(training: dict[str, Any], epochs: int) -> str:
    """How the saved weights were chosen, for the card: the best epoch, or the checkpoint average that beat it."""
    averaging = training.get("averaging") or {}
    if averaging.get("kept"):
        first, last = averaging["epochs"][0], averaging["epochs"][-1]
        return (
            f"the mean of the weights of epochs {first}-{last} of {epochs} (checkpoint averaging), which scored higher "
            f"on validation than the best single epoch ({averaging['best_single_epoch']})"
        )
    return f"best epoch {training['best_epoch']} of {epochs} by validation macro-F1"
