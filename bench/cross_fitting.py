"""What the decision-rule benchmarks share (``bench/threshold_strategies.py``, ``bench/label_bias.py``): their command
line, a model's probabilities on the validation and test splits computed once, and the random halvings of the
validation split that judge a rule on texts it was not tuned on."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scored:
    """A model's served probabilities on validation and test, with the gold labels as ``targets`` lists."""

    labels: tuple[str, ...]
    thresholds: np.ndarray  # the model's saved per-label thresholds (0.5 each for a single-label model)
    validation: np.ndarray
    test: np.ndarray
    validation_targets: list
    test_targets: list


def parse_args(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a checkpoint folder")
    parser.add_argument("--data", required=True, help="a dataset folder with validation (or dev) and test splits")
    parser.add_argument("--halvings", type=int, default=10, help="random halvings of the validation split")
    parser.add_argument("--device", default="auto")
    return parser.parse_args()


def score_splits(args: argparse.Namespace, *, multi_label: bool, other_bench: str) -> Scored:
    """Load ``args.model`` as served (no int8) and predict both splits of ``args.data``; a model of the other kind
    (single- vs multi-label) is an error that names ``other_bench``."""
    from emostream.logs import configure_logging
    from models.classifier import EmotionClassifier
    from models.data import load_splits

    configure_logging()
    classifier = EmotionClassifier.from_pretrained(args.model, device=args.device, quantize="off")
    if classifier.multi_label != multi_label:
        kind = "multi-label" if classifier.multi_label else "single-label"
        raise SystemExit(f"{args.model} is a {kind} model: see {other_bench}")
    splits = load_splits(args.data, multi_label=multi_label)
    if splits.test is None:
        raise SystemExit(f"{args.data} has no test split")
    validation, test = splits.validation.relabel(classifier.labels), splits.test.relabel(classifier.labels)
    return Scored(
        classifier.labels,
        classifier.thresholds,
        classifier.predict_proba(validation.texts),
        classifier.predict_proba(test.texts),
        list(validation.targets),
        list(test.targets),
    )


def halves(n: int, halvings: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(tune, held_out)`` index pairs: each of ``halvings`` seeded random halvings of ``n`` rows, both ways round."""
    for seed in range(halvings):
        order = np.random.default_rng(seed).permutation(n)
        a, b = order[: n // 2], order[n // 2 :]
        yield a, b
        yield b, a
