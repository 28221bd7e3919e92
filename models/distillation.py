"""Knowledge distillation: train one model towards its teachers' softened scores as well as the gold labels.

Runs of one recipe with different seeds score better together (their mean probabilities) than any of them alone, but
serving several models multiplies the inference cost the stream pays per event. Distillation (Hinton et al., 2015)
trains a single model of the served size on a blend of two losses: the usual one on the gold labels, and the KL
divergence from the teachers' mean probabilities at a raised temperature, which carries how the teachers rank the
wrong labels (that "sadness" is a closer miss than "surprise" for this text) and how sure they are.

Single-label classifiers only: teachers are fine-tuned checkpoints whose labels include every label of the student.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import structlog
import torch

from models.classifier import MULTI_LABEL, EmotionClassifier
from models.errors import TrainingConfigError

log = structlog.get_logger(__name__)


def teacher_probabilities(
    teachers: Sequence[str],
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    temperature: float,
    device: str | torch.device,
    max_length: int,
    batch_size: int,
) -> np.ndarray:
    """The teachers' mean probabilities for ``texts`` at ``temperature`` (applied to their raw logits, not their
    calibrated scores), one column per label of ``labels`` in that order, shape ``(len(texts), len(labels))``.

    Raises :class:`TrainingConfigError` for a teacher that is multi-label or lacks one of ``labels``; its probability
    mass on labels the student does not have is dropped and the rest renormalised, so every row sums to 1."""
    total = np.zeros((len(texts), len(labels)), dtype=np.float64)
    for path in teachers:
        teacher = EmotionClassifier.from_pretrained(
            path, device=str(device), max_length=max_length, batch_size=batch_size, quantize="off"
        )
        columns = _student_columns(path, teacher, labels)
        teacher.temperature = temperature  # replaces the calibration: softmax(logits / temperature)
        probabilities = teacher.predict_proba(list(texts))[:, columns].astype(np.float64)
        total += probabilities / probabilities.sum(axis=1, keepdims=True)
        log.info("teacher scored the training texts", teacher=str(path), texts=len(texts))
    return (total / len(teachers)).astype(np.float32)


def _student_columns(path: str, teacher: EmotionClassifier, labels: Sequence[str]) -> list[int]:
    if teacher.model.config.problem_type == MULTI_LABEL:
        raise TrainingConfigError(f"teacher {path} is multi-label: distillation takes single-label teachers")
    missing = [name for name in labels if name not in teacher.labels]
    if missing:
        raise TrainingConfigError(f"teacher {path} lacks the labels {', '.join(missing)}")
    return [teacher.labels.index(name) for name in labels]


def distillation_loss(logits: torch.Tensor, soft_targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teachers || student) at ``temperature``, times temperature squared so that its gradients keep the scale
    of a plain cross-entropy's whatever the temperature; averaged over the batch."""
    log_student = torch.log_softmax(logits / temperature, dim=-1)
    return torch.nn.functional.kl_div(log_student, soft_targets, reduction="batchmean") * temperature**2


def blended_loss(
    hard_loss: torch.Tensor, logits: torch.Tensor, soft_targets: torch.Tensor, *, weight: float, temperature: float
) -> torch.Tensor:
    """``(1 - weight)`` of the gold labels' loss plus ``weight`` of :func:`distillation_loss`."""
    return (1 - weight) * hard_loss + weight * distillation_loss(logits, soft_targets, temperature)
