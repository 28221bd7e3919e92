"""One text's prediction: the record the classifier returns and the stream's processes pass back to the worker.

Kept apart from ``models.classifier`` so that reading predictions (unpickling them in the worker, which only sends
texts to its inference processes) does not import torch and transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
