"""Per-label thresholds of a multi-label model: how well each way of choosing them carries over to texts it never saw.

Training tunes one threshold per label on the validation split and the model card reports macro-F1 on that same
split, which flatters rare labels: GoEmotions has 13 validation texts of grief. Here each strategy is judged on texts
it was not tuned on: cross-fitted on the validation split (tuned on one random half, scored on the other, both ways,
over several halvings), then tuned on the whole split and scored on test. The model's probabilities are computed once.

- ``per-label``: each label's F1-best threshold on the grid (what ``models.evaluation.tune_thresholds`` does);
- ``global``: one threshold for every label, the macro-F1-best;
- ``shrunk-K``: each label's threshold pulled toward the global one as if K more texts had voted for it:
  ``(n * t + K * g) / (n + K)``, n the label's positives in the tuning texts;
- ``floor-N``: the per-label threshold for labels with at least N positives, the global one for the others.

    python bench/threshold_strategies.py --model DIR --data ../shared/datasets/goemotions [--halvings 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from models.evaluation import THRESHOLD_GRID, apply_thresholds, f1_scores, tune_thresholds  # noqa: E402

Strategy = Callable[[np.ndarray, np.ndarray], np.ndarray]


def macro_f1(probabilities: np.ndarray, gold: np.ndarray, thresholds: np.ndarray) -> float:
    """Macro-F1 over the labels, with the same rule as serving (a text with no label above threshold takes its top)."""
    predicted = apply_thresholds(probabilities, thresholds).astype(bool)
    return float(f1_scores(predicted, gold.astype(bool), axis=0).mean())


def global_threshold(probabilities: np.ndarray, gold: np.ndarray) -> float:
    """The one grid threshold that maximises macro-F1 when every label uses it."""
    scores = [macro_f1(probabilities, gold, np.full(gold.shape[1], t, dtype=np.float32)) for t in THRESHOLD_GRID]
    return float(THRESHOLD_GRID[int(np.argmax(scores))])


def per_label(probabilities: np.ndarray, gold: np.ndarray) -> np.ndarray:
    return tune_thresholds(probabilities, gold)


def global_only(probabilities: np.ndarray, gold: np.ndarray) -> np.ndarray:
    return np.full(gold.shape[1], global_threshold(probabilities, gold), dtype=np.float32)


def shrunk(pseudo: float) -> Strategy:
    def strategy(probabilities: np.ndarray, gold: np.ndarray) -> np.ndarray:
        positives = gold.sum(axis=0).astype(np.float64)
        own, common = tune_thresholds(probabilities, gold), global_threshold(probabilities, gold)
        return ((positives * own + pseudo * common) / (positives + pseudo)).astype(np.float32)

    return strategy


def floor(minimum: int) -> Strategy:
    def strategy(probabilities: np.ndarray, gold: np.ndarray) -> np.ndarray:
        own, common = tune_thresholds(probabilities, gold), global_threshold(probabilities, gold)
        return np.where(gold.sum(axis=0) >= minimum, own, common).astype(np.float32)

    return strategy


STRATEGIES: dict[str, Strategy] = {
    "per-label": per_label,
    "global": global_only,
    "shrunk-10": shrunk(10),
    "shrunk-30": shrunk(30),
    "shrunk-100": shrunk(100),
    "floor-30": floor(30),
    "floor-100": floor(100),
}


def cross_fitted(strategy: Strategy, probabilities: np.ndarray, gold: np.ndarray, halvings: int) -> list[float]:
    """Macro-F1 on held-out halves of the validation split, thresholds tuned on the other half."""
    scores = []
    for seed in range(halvings):
        order = np.random.default_rng(seed).permutation(len(gold))
        a, b = order[: len(order) // 2], order[len(order) // 2 :]
        for tune, held_out in ((a, b), (b, a)):
            thresholds = strategy(probabilities[tune], gold[tune])
            scores.append(macro_f1(probabilities[held_out], gold[held_out], thresholds))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a multi-label checkpoint folder")
    parser.add_argument("--data", required=True, help="a dataset folder with validation (or dev) and test splits")
    parser.add_argument("--halvings", type=int, default=10, help="random halvings of the validation split")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    from emostream.logs import configure_logging
    from models.classifier import EmotionClassifier
    from models.data import load_splits
    from models.evaluation import indicator_matrix

    configure_logging()
    classifier = EmotionClassifier.from_pretrained(args.model, device=args.device, quantize="off")
    if not classifier.multi_label:
        raise SystemExit(f"{args.model} is a single-label model: thresholds apply to multi-label ones")
    splits = load_splits(args.data, multi_label=True)
    if splits.test is None:
        raise SystemExit(f"{args.data} has no test split")
    labels = classifier.labels
    validation, test = splits.validation.relabel(labels), splits.test.relabel(labels)
    p_val, p_test = classifier.predict_proba(validation.texts), classifier.predict_proba(test.texts)
    y_val, y_test = indicator_matrix(validation.targets, len(labels)), indicator_matrix(test.targets, len(labels))

    print(f"model {args.model}: {len(labels)} labels; validation {len(y_val)} texts, test {len(y_test)}")
    print(f"cross-fitting: {args.halvings} random halvings of validation, each half scored with the other's thresholds")
    print()
    print("| strategy | validation, tuned on itself | validation halves, held out: mean (min-max) | test |")
    print("| --- | --- | --- | --- |")
    saved = classifier.thresholds
    print(f"| as saved | {macro_f1(p_val, y_val, saved):.4f} | | {macro_f1(p_test, y_test, saved):.4f} |")
    for name, strategy in STRATEGIES.items():
        held_out = cross_fitted(strategy, p_val, y_val, args.halvings)
        thresholds = strategy(p_val, y_val)
        print(
            f"| {name} | {macro_f1(p_val, y_val, thresholds):.4f} | {statistics.mean(held_out):.4f} "
            f"({min(held_out):.4f}-{max(held_out):.4f}) | {macro_f1(p_test, y_test, thresholds):.4f} |"
        )


if __name__ == "__main__":
    main()
