"""The ML side of emostream: data loading, the emotion classifier, fine-tuning, evaluation and the model registry.

Nothing here imports Kafka or Faust; the stream worker and the CLI build on these modules.
"""

from models.classifier import EmotionClassifier, Prediction
from models.data import DataError, LabelledTexts, Splits, load_file, load_splits
from models.registry import CorruptVersionError, ModelRegistry, RegistryError

__all__ = [
    "CorruptVersionError",
    "DataError",
    "EmotionClassifier",
    "LabelledTexts",
    "ModelRegistry",
    "Prediction",
    "RegistryError",
    "Splits",
    "load_file",
    "load_splits",
]
