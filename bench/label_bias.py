"""Per-label decision offsets of a single-label model: does shifting its choice toward rare labels raise macro-F1 on
texts the offsets never saw, and what does it cost in accuracy and calibration?

A single-label model picks the label of highest probability, which maximises expected accuracy, not macro-F1: rare
labels (emotion's `surprise`, 3.3% of test) lose their close calls to frequent ones. One additive offset per label on
the log-probabilities, ``argmax(log p + b)``, tuned on validation for macro-F1 (coordinate ascent over a grid, a few
rounds), is the single-label counterpart of the per-label thresholds multi-label models get. Judged like
``bench/threshold_strategies.py``: cross-fitted on random halvings of the validation split (tuned on one half, scored on
the other, both ways), then tuned on the whole split and scored on test. The model's probabilities are computed once.

- ``argmax``: the model as it serves today (no offsets);
- ``offsets``: the macro-F1-best offsets on the tuning texts;
- ``offsets-half``: the same offsets halved (a cheap guard against fitting the tuning half's noise).

The scores the offsets produce, ``softmax(log p + b)``, are scored for calibration too (ECE, as in the model card).

    python bench/label_bias.py --model DIR --data ../shared/datasets/emotion [--halvings 10]
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
from models.calibration import expected_calibration_error, log_probabilities, softmax  # noqa: E402
from models.evaluation import f1_scores  # noqa: E402

OFFSET_GRID = np.round(np.arange(-1.5, 1.51, 0.1), 2)
ROUNDS = 3

Strategy = Callable[[np.ndarray, np.ndarray], np.ndarray]


def macro_f1(log_p: np.ndarray, gold: np.ndarray, offsets: np.ndarray) -> float:
    """Macro-F1 over the labels of the choice ``argmax(log p + offsets)``."""
    n_labels = log_p.shape[1]
    chosen = np.eye(n_labels, dtype=bool)[np.argmax(log_p + offsets, axis=1)]
    return float(f1_scores(chosen, np.eye(n_labels, dtype=bool)[gold], axis=0).mean())


def tune_offsets(log_p: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Coordinate ascent: each label's offset in turn set to its macro-F1-best grid value, the others held; a tie keeps
    the value nearest zero (no change without a gain). Only differences between offsets change a choice, so the most
    frequent label is the anchor at 0 and the grid bounds how far any other may move relative to it."""
    offsets = np.zeros(log_p.shape[1])
    anchor = int(np.bincount(gold, minlength=len(offsets)).argmax())
    best = macro_f1(log_p, gold, offsets)
    for _ in range(ROUNDS):
        changed = False
        for label in (label for label in range(len(offsets)) if label != anchor):
            for value in sorted(OFFSET_GRID, key=abs):
                trial = offsets.copy()
                trial[label] = value
                score = macro_f1(log_p, gold, trial)
                if score > best + 1e-12:
                    best, offsets, changed = score, trial, True
        if not changed:
            break
    return offsets


STRATEGIES: dict[str, Strategy] = {
    "argmax": lambda log_p, gold: np.zeros(log_p.shape[1]),
    "offsets": tune_offsets,
    "offsets-half": lambda log_p, gold: tune_offsets(log_p, gold) / 2,
}


def scores(log_p: np.ndarray, gold: np.ndarray, offsets: np.ndarray) -> dict[str, float]:
    shifted = softmax(log_p + offsets)
    return {
        "macro_f1": macro_f1(log_p, gold, offsets),
        "accuracy": float((shifted.argmax(axis=1) == gold).mean()),
        "ece": expected_calibration_error(shifted, gold),
    }


def cross_fitted(strategy: Strategy, log_p: np.ndarray, gold: np.ndarray, halvings: int) -> dict[str, float]:
    """Mean scores on held-out halves of the validation split, offsets tuned on the other half."""
    rows = [
        scores(log_p[held_out], gold[held_out], strategy(log_p[tune], gold[tune]))
        for tune, held_out in halves(len(gold), halvings)
    ]
    return {key: statistics.fmean(row[key] for row in rows) for key in rows[0]}


def main() -> None:
    args = parse_args(__doc__)
    scored = score_splits(args, multi_label=False, other_bench="bench/threshold_strategies.py")
    labels = scored.labels
    # The served (temperature-scaled) probabilities: the offsets act on what the model card's figures come from.
    lp_val, lp_test = log_probabilities(scored.validation), log_probabilities(scored.test)
    y_val = np.array([t[0] for t in scored.validation_targets])
    y_test = np.array([t[0] for t in scored.test_targets])

    print(f"model {args.model}: {len(labels)} labels; validation {len(y_val)} texts, test {len(y_test)}")
    offsets = tune_offsets(lp_val, y_val)
    shown = ", ".join(f"{name} {offset:+.1f}" for name, offset in zip(labels, offsets, strict=True))
    print(f"offsets tuned on all of validation: {shown}")
    print()
    print("| strategy | held-out halves: macro-F1 / accuracy / ECE | test: macro-F1 / accuracy / ECE |")
    print("| --- | --- | --- |")
    for name, strategy in STRATEGIES.items():
        held = cross_fitted(strategy, lp_val, y_val, args.halvings)
        on_test = scores(lp_test, y_test, strategy(lp_val, y_val))
        print(
            f"| {name} | {held['macro_f1']:.4f} / {held['accuracy']:.4f} / {held['ece']:.4f} "
            f"| {on_test['macro_f1']:.4f} / {on_test['accuracy']:.4f} / {on_test['ece']:.4f} |"
        )


if __name__ == "__main__":
    main()
