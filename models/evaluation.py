"""Scoring: scikit-learn metrics for single- and multi-label predictions, threshold tuning, confusion-matrix pictures.

Everything here works on arrays of probabilities and gold labels, so it is testable without a model;
:func:`evaluate_classifier` is the one place that runs a classifier over a dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from models.calibration import expected_calibration_error, with_temperature
from models.data import DataError, LabelledTexts

if TYPE_CHECKING:
    from models.classifier import EmotionClassifier

THRESHOLD_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)


def single_label_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict[str, Any]:
    """accuracy, macro/weighted F1, per-class P/R/F1/support and the confusion matrix (rows gold, columns predicted)."""
    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        # Averages over the labels that occur (gold or predicted), as scikit-learn does by default: a label with no
        # example here (e.g. one just added to the model) would otherwise count as an F1 of 0.
        "macro_f1": f1_over_present(y_true, y_pred),
        "weighted_f1": f1_over_present(y_true, y_pred, average="weighted"),
        "per_class": _per_class(labels, precision, recall, f1, support),
        "labels": list(labels),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
    }


def f1_over_present(y_true: Sequence[Any], y_pred: Sequence[Any], average: str = "macro") -> float:
    """F1 averaged over the labels that occur here, gold or predicted (scikit-learn's default): a label with no
    example here (e.g. one just added to the model) would otherwise count as an F1 of 0."""
    present = sorted(set(y_true) | set(y_pred))
    return float(f1_score(y_true, y_pred, labels=present, average=average, zero_division=0))


def macro_f1_over_gold(y_true: Sequence[Any], y_pred: Sequence[Any]) -> float:
    """Macro-F1 over the gold labels only: a prediction outside them is a miss, never a class of its own (how new
    data is scored, where the model may predict labels the data does not use)."""
    return float(f1_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0))


def multi_label_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Metrics on 0/1 indicator matrices: subset accuracy, macro/weighted/micro F1, per-class scores.

    The "confusion matrix" is gold-vs-predicted co-occurrence: cell (i, j) counts texts labelled i and predicted j.
    """
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    return {
        "n": int(y_true.shape[0]),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "per_class": _per_class(labels, precision, recall, f1, support),
        "labels": list(labels),
        "confusion_matrix": (y_true.T.astype(np.int64) @ y_pred.astype(np.int64)).tolist(),
    }


def tune_thresholds(probabilities: np.ndarray, y_true: np.ndarray, grid: np.ndarray = THRESHOLD_GRID) -> np.ndarray:
    """Per label, the threshold on ``grid`` that maximises that label's F1 on the given (validation) data."""
    thresholds = np.full(probabilities.shape[1], 0.5, dtype=np.float32)
    for label in range(probabilities.shape[1]):
        gold = y_true[:, label].astype(bool)
        predicted = probabilities[:, label][None, :] >= grid[:, None]  # (grid, n)
        thresholds[label] = grid[int(np.argmax(f1_scores(predicted, gold[None, :], axis=1)))]
    return thresholds


def f1_scores(predicted: np.ndarray, gold: np.ndarray, axis: int) -> np.ndarray:
    """F1 of boolean predictions against boolean gold (broadcast together), counted along ``axis``; 0 where no
    prediction is right."""
    tp = (predicted & gold).sum(axis=axis)
    fp = (predicted & ~gold).sum(axis=axis)
    fn = (~predicted & gold).sum(axis=axis)
    return np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)


def apply_thresholds(probabilities: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """0/1 predictions; a row with nothing above threshold takes its top label (every text has an emotion)."""
    predicted = probabilities >= thresholds[None, :]
    empty = ~predicted.any(axis=1)
    predicted[np.flatnonzero(empty), probabilities[empty].argmax(axis=1)] = True
    return predicted.astype(np.int8)


def indicator_matrix(targets: Sequence[Sequence[int]], n_labels: int) -> np.ndarray:
    """0/1 matrix (texts x labels) from per-text label id lists."""
    matrix = np.zeros((len(targets), n_labels), dtype=np.int8)
    for row, ids in enumerate(targets):
        matrix[row, list(ids)] = 1
    return matrix


def score(
    probabilities: np.ndarray,
    targets: Sequence[Sequence[int]],
    labels: Sequence[str],
    *,
    multi_label: bool,
    thresholds: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics of probability rows against gold label ids (argmax for single-label, thresholds for multi-label)."""
    if multi_label:
        cut = thresholds if thresholds is not None else np.full(len(labels), 0.5, dtype=np.float32)
        return multi_label_metrics(indicator_matrix(targets, len(labels)), apply_thresholds(probabilities, cut), labels)
    gold = [t[0] for t in targets]
    metrics = single_label_metrics(gold, probabilities.argmax(axis=1).tolist(), labels)
    metrics["ece"] = round(expected_calibration_error(probabilities, gold), 5)
    return metrics


def evaluate_classifier(
    classifier: EmotionClassifier, data: LabelledTexts, restrict_to: Sequence[str] | None = None
) -> dict[str, Any]:
    """Score ``classifier`` on ``data``, matching labels by name.

    Args:
        classifier: the model.
        data: gold data; its labels must be known to the model (those outside ``restrict_to`` excepted).
        restrict_to: score and argmax over these labels only; rows whose gold labels all lie outside are left out
            and counted in ``excluded``.
    """
    scored = list(restrict_to) if restrict_to else list(classifier.labels)
    unknown = sorted(set(scored) - set(classifier.labels))
    if unknown:
        raise DataError(f"labels {unknown} are not among the model's labels {list(classifier.labels)}")
    keep, targets = [], []
    for row, ids in enumerate(data.targets):
        names = [data.labels[i] for i in ids]
        outside_model = sorted(set(names) - set(classifier.labels))
        if outside_model and not restrict_to:
            raise DataError(
                f"{data.source}: gold labels {outside_model} are unknown to the model (its labels: "
                f"{list(classifier.labels)}); pass --labels to score a subset"
            )
        inside = [scored.index(name) for name in names if name in scored]
        if inside:
            keep.append(row)
            targets.append(tuple(inside))
    if not keep:
        raise DataError(f"{data.source}: no rows carry any of the labels {scored}")
    columns = [classifier.labels.index(name) for name in scored]
    all_columns = classifier.predict_proba([data.texts[i] for i in keep])
    probabilities = all_columns[:, columns]
    thresholds = classifier.thresholds[columns] if classifier.multi_label else None
    metrics = score(probabilities, targets, scored, multi_label=classifier.multi_label, thresholds=thresholds)
    metrics["excluded"] = len(data) - len(keep)
    if not classifier.multi_label and classifier.temperature != 1.0:  # what the scores were before calibration
        raw = with_temperature(all_columns, 1.0 / classifier.temperature)[:, columns]
        metrics["ece_uncalibrated"] = round(expected_calibration_error(raw, [t[0] for t in targets]), 5)
    return metrics


def save_confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str) -> Path:
    """Write the confusion matrix as a PNG (rows gold, columns predicted), with counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(matrix)
    size = max(4.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(values, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    if len(labels) <= 12:
        limit = values.max() / 2 if values.size else 0
        for (i, j), count in np.ndenumerate(values):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > limit else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _per_class(labels: Sequence[str], precision, recall, f1, support) -> dict[str, dict[str, float]]:
    return {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }
