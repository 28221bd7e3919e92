"""Predictions: one text's (:class:`Prediction`, what the classifier's ``predict`` returns) and a batch's in columns
(:class:`PredictionColumns`, what the stream's inference processes pass back to the worker).

Kept apart from ``models.classifier`` so that reading predictions (unpickling them in the worker, which only sends
texts to its inference processes) does not import torch and transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class Prediction:
    """One text's prediction.

    Attributes:
        label: the most likely emotion.
        score: its probability.
        scores: every emotion's probability (softmax for single-label models, independent sigmoids for multi-label).
        labels: multi-label models only: the emotions whose probability reaches their tuned threshold (never empty:
            the top label stands in when none does).
    """

    label: str
    score: float
    scores: dict[str, float]
    labels: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``labels`` appears only for multi-label models."""
        out: dict[str, Any] = {"label": self.label, "score": self.score, "scores": self.scores}
        if self.labels is not None:
            out["labels"] = list(self.labels)
        return out


@dataclass(frozen=True)
class PredictionColumns:
    """A batch's predictions as columns, one entry per text in order: what ``EmotionClassifier.predict_columns``
    gives and the inference processes send the worker.

    The worker's event loop is the one core its whole stream path has. A :class:`Prediction` and a scores dict per
    text had to be unpickled there and the dict serialized again for every labelled record; a few lists unpickle in a
    fraction of that time, and each text's scores arrive as JSON already, spliced into the labelled record with
    ``orjson.Fragment`` (2.8x less worker CPU for that step: docs/benchmarks.md, session 16).

    Attributes:
        label, score: the most likely emotion and its probability.
        margin: top score minus the runner-up (:func:`score_margin`).
        scores_json: every emotion's probability as a JSON object (``orjson.dumps`` of :attr:`Prediction.scores`).
        labels: multi-label models only: the emotions at or above their threshold (see :class:`Prediction`).
    """

    label: list[str]
    score: list[float]
    margin: list[float]
    scores_json: list[bytes]
    labels: list[tuple[str, ...]] | None = None

    def __len__(self) -> int:
        return len(self.label)

    @classmethod
    def of(cls, predictions: Sequence[Prediction]) -> PredictionColumns:
        """The columns of ``predictions``: the same as ``predict_columns`` gives for the texts they were made for."""
        multi_label = any(p.labels is not None for p in predictions)
        return cls(
            [p.label for p in predictions],
            [p.score for p in predictions],
            [score_margin(p.scores) for p in predictions],
            [orjson.dumps(p.scores) for p in predictions],
            [p.labels or (p.label,) for p in predictions] if multi_label else None,
        )


def score_margin(scores: dict[str, float]) -> float:
    """Top score minus the runner-up: small means the model hesitated between two emotions."""
    top = sorted(scores.values(), reverse=True)
    return top[0] - top[1] if len(top) > 1 else 1.0
