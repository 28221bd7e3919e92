"""Calibrated scores: temperature scaling fitted on validation, and the expected calibration error that measures it.

Downstream consumers average ``score`` in the aggregates and the review topic ranks by margin, so a score of 0.8
should be right about 80% of the time. A fine-tuned classifier is usually over-confident; dividing its logits by one
temperature ``T`` (fitted by minimising the validation negative log-likelihood) fixes most of that without changing
any prediction (the argmax stays). Single-label (softmax) models only.

Everything works on log-probabilities, which is exact: softmax is shift-invariant per row, so
``softmax(log p / T) == softmax(logits / T)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TEMPERATURE_RANGE = (0.05, 20.0)
ECE_BINS = 15
_GOLDEN = (np.sqrt(5) - 1) / 2


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """``log p`` with zeros clipped (float32 softmax underflows for very confident rows)."""
    return np.log(np.clip(probabilities.astype(np.float64), 1e-30, 1.0))


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def with_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities the same logits give at ``temperature`` (relative to the one that made ``probabilities``)."""
    return softmax(log_probabilities(probabilities) / temperature)


def negative_log_likelihood(log_p: np.ndarray, gold: np.ndarray, temperature: float) -> float:
    scaled = log_p / temperature
    top = scaled.max(axis=1)
    log_normaliser = top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))
    return float(np.mean(log_normaliser - scaled[np.arange(len(gold)), gold]))


def fit_temperature(probabilities: np.ndarray, gold: Sequence[int]) -> float:
    """The temperature minimising the negative log-likelihood of ``gold`` (label ids) under ``probabilities``
    (rows of a softmax). The likelihood is convex in 1/T, hence unimodal in log T: golden-section search on log T."""
    if len(gold) == 0:
        return 1.0
    log_p, labels = log_probabilities(probabilities), np.asarray(gold, dtype=np.int64)
    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    a, b = high - _GOLDEN * (high - low), low + _GOLDEN * (high - low)
    loss_a, loss_b = (negative_log_likelihood(log_p, labels, float(np.exp(x))) for x in (a, b))
    for _ in range(80):  # the bracket shrinks by 0.618 a step: far below 1e-6 in log T
        if loss_a <= loss_b:
            high, b, loss_b = b, a, loss_a
            a = high - _GOLDEN * (high - low)
            loss_a = negative_log_likelihood(log_p, labels, float(np.exp(a)))
        else:
            low, a, loss_a = a, b, loss_b
            b = low + _GOLDEN * (high - low)
            loss_b = negative_log_likelihood(log_p, labels, float(np.exp(b)))
    return float(np.exp((low + high) / 2))


def expected_calibration_error(probabilities: np.ndarray, gold: Sequence[int], bins: int = ECE_BINS) -> float:
    """Top-label expected calibration error: over ``bins`` equal-width confidence bins, the gap between accuracy and
    mean confidence, weighted by the share of rows in the bin."""
    if len(gold) == 0:
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(gold)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += abs(correct[in_bin].mean() - confidence[in_bin].mean()) * in_bin.mean()
    return float(error)
