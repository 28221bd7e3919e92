"""The ML side of emostream: data loading, the emotion classifier, fine-tuning, evaluation and the model registry.

Nothing here imports Kafka or Faust; the stream worker and the CLI build on these modules. The names below are loaded
on first use, so importing a light module (``models.errors``, ``models.registry``) does not load torch.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CorruptVersionError": "models.errors",
    "DataError": "models.errors",
    "RegistryError": "models.errors",
    "EmotionClassifier": "models.classifier",
    "Prediction": "models.prediction",
    "LabelledTexts": "models.data",
    "Splits": "models.data",
    "load_file": "models.data",
    "load_splits": "models.data",
    "ModelRegistry": "models.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
