"""Which epoch should a multi-label run keep? Validation macro-F1 at 0.5 thresholds (the rule before session 17), or
at the per-label thresholds tuned on validation that the saved model is served with (the rule now)?

One training run answers it for both rules: for every epoch, and for the checkpoint average, it records validation
macro-F1 both ways and the test macro-F1 that state would serve (thresholds tuned on validation, as ``finish`` tunes
them). It then prints which state each rule keeps, with that state's test score as served, and checks that the run's
own saved model (kept by the rule now) scores the same on test.

    python bench/epoch_selection.py --data ../shared/datasets/goemotions --candidate full-12ep-cw [--out DIR]

Candidates are those of ``bench/recipe_sweep.py``. Each scoring costs one inference pass over the test split per
epoch; the test split never decides anything.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.recipe_sweep import CANDIDATES  # noqa: E402

RULES = {"at_0.5": "validation_macro_f1_at_0.5", "tuned": "validation_macro_f1_tuned"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="multi-label data with a test split")
    parser.add_argument("--candidate", default="full-cw", help=f"one of: {', '.join(CANDIDATES)}")
    parser.add_argument("--base", help="base encoder [default: $EMOSTREAM_BASE_MODEL]")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-train", type=int, help="train on a seeded sample of at most N texts (smoke runs)")
    parser.add_argument("--out", help="also export the run (kept by the rule now) as a run folder here")
    args = parser.parse_args()

    from emostream.logs import configure_logging
    from emostream.settings import Settings
    from models.artifacts import export_run
    from models.data import load_splits
    from models.evaluation import evaluate_classifier, score
    from models.finetuning import FineTuner, TrainingConfig

    configure_logging()  # the run's logs to stderr: stdout carries only the results

    splits = load_splits(args.data, multi_label=True)
    if splits.test is None:
        sys.exit(f"{args.data} has no test split")
    recipe, overrides = CANDIDATES[args.candidate]
    config = TrainingConfig.from_recipe(
        recipe,
        args.base or Settings.from_env().base_model,
        device=args.device,
        progress=False,
        multi_label=True,
        max_train=args.max_train,
        seed=args.seed,
        **overrides,
    )
    states: list[dict] = []  # unrounded, so that kept() breaks ties as FineTuner does

    class EveryStateScored(FineTuner):
        """Records every validated state (each epoch, then the average) with its test score as served."""

        averaging = False

        def prepare(self):
            run = super().prepare()
            self.classifier, self.test = run.classifier, splits.test.relabel(self.labels)
            return run

        def average_last_epochs(self, run, best, history):
            self.averaging = True
            return super().average_last_epochs(run, best, history)

        def _selection_score(self, metrics, probabilities) -> float:
            selection = super()._selection_score(metrics, probabilities)  # the rule itself decides, not a copy of it
            # Tuned a second time here for the thresholds themselves: 0.05-0.09 s on GoEmotions, epochs take ~400 s.
            thresholds, tuned = self._at_tuned_thresholds(probabilities)
            test_probabilities = self.classifier.predict_proba(self.test.texts)
            state = {
                "state": "average" if self.averaging else f"epoch {len(states) + 1}",
                "validation_macro_f1_at_0.5": metrics["macro_f1"],
                "validation_macro_f1_tuned": tuned["macro_f1"],
                "test_macro_f1_at_0.5": self.test_macro_f1(test_probabilities),
                "test_macro_f1_served": self.test_macro_f1(test_probabilities, thresholds),
            }
            states.append(state)
            print(json.dumps(rounded(state)), flush=True)
            return selection

        def test_macro_f1(self, probabilities, thresholds=None) -> float:
            metrics = score(probabilities, self.test.targets, self.labels, multi_label=True, thresholds=thresholds)
            return metrics["macro_f1"]

    started = time.perf_counter()
    tuner = EveryStateScored(config, splits)
    result = tuner.train()
    served = evaluate_classifier(result.classifier, splits.test)
    summary = {
        "candidate": args.candidate,
        "seed": args.seed,
        "wall_seconds": round(time.perf_counter() - started, 1),
        **{f"kept_by_{rule}": rounded(kept(states, key)) for rule, key in RULES.items()},
        "saved_model_test_macro_f1": round(served["macro_f1"], 4),
        "saved_model_best_epoch": result.best_epoch,
    }
    print(json.dumps(summary), flush=True)
    if args.out:
        export_run(result, args.out, data_source=args.data, test_metrics=served)


def rounded(state: dict) -> dict:
    """``state`` with its scores to four places, for printing."""
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in state.items()}


def kept(states: list[dict], key: str) -> dict:
    """The state a rule keeps: the first epoch with the best ``key`` (unrounded: two epochs equal to four places are
    not a tie), replaced by the average only if it is higher (as ``FineTuner.fit`` and ``average_last_epochs``
    decide); with its test score as served."""
    epochs = [state for state in states if state["state"] != "average"]
    best = max(epochs, key=lambda state: state[key])  # max returns the first of equal ones, as fit keeps the first
    average = next((state for state in states if state["state"] == "average"), None)
    if average is not None and average[key] > best[key]:
        best = average
    return {"state": best["state"], key: best[key], "test_macro_f1_served": best["test_macro_f1_served"]}


if __name__ == "__main__":
    main()
