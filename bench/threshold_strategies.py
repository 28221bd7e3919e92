"""Per-label thresholds of a multi-label model: how well each way of choosing them carries over to texts it never saw.

Training tunes one threshold per label on the validation split and the model card reports macro-F1 on that same
split, which flatters rare labels: GoEmotions has 13 validation texts of grief. Here each strategy is judged on texts
it was not tuned on: cross-fitted on the validation split (tuned on one random half, scored on the other, both ways,
over several halvings), then tuned on the whole split and scored on test. The model's probabilities are computed once.

- ``per-label``: each label's F1-best threshold on the grid (what ``models.evaluation.tune_thresholds`` does);
- ``per-label-fine``: the same on a grid of 0.01 steps from 0.01 to 0.99 instead of 0.05 steps from 0.05 to 0.95;
- ``global``: one threshold for every label, the macro-F1-best;
- ``shrunk-K``: each label's threshold pulled toward the global one as if K more texts had voted for it:
  ``(n * t + K * g) / (n + K)``, n the label's positives in the tuning texts;
- ``floor-N``: the per-label threshold for labels with at least N positives, the global one for the others.

    python bench/threshold_strategies.py --model DIR --data ../shared/datasets/goemotions [--halvings 10]
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.cross_fitting import halves, parse_args, score_splits  # noqa: E402
from models.evaluation import THRESHOLD_GRID, apply_thresholds, f1_scores, tune_thresholds  # noqa: E402

Strategy = Callable[[np.ndarray, np.ndarray], np.ndarray]
FINE_GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)


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


def per_label_fine(probabilities: np.ndarray, gold: np.ndarray) -> np.ndarray:
    return tune_thresholds(probabilities, gold, grid=FINE_GRID)


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
    "per-label-fine": per_label_fine,
    "global": global_only,
    "shrunk-10": shrunk(10),
    "shrunk-30": shrunk(30),
    "shrunk-100": shrunk(100),
    "floor-30": floor(30),
    "floor-100": floor(100),
}


def cross_fitted(strategy: Strategy, probabilities: np.ndarray, gold: np.ndarray, halvings: int) -> list[float]:
    """Macro-F1 on held-out halves of the validation split, thresholds tuned on the other half."""
    return [
        macro_f1(probabilities[held_out], gold[held_out], strategy(probabilities[tune], gold[tune]))
        for tune, held_out in halves(len(gold), halvings)
    ]


def main() -> None:
    args = parse_args(__doc__)
    from models.evaluation import indicator_matrix

    scored = score_splits(args, multi_label=True, other_bench="bench/label_bias.py")
    labels, p_val, p_test = scored.labels, scored.validation, scored.test
    y_val = indicator_matrix(scored.validation_targets, len(labels))
    y_test = indicator_matrix(scored.test_targets, len(labels))

    print(f"model {args.model}: {len(labels)} labels; validation {len(y_val)} texts, test {len(y_test)}")
    print(f"cross-fitting: {args.halvings} random halvings of validation, each half scored with the other's thresholds")
    print()
    print("| strategy | validation, tuned on itself | validation halves, held out: mean (min-max) | test |")
    print("| --- | --- | --- | --- |")
    saved = scored.thresholds
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
