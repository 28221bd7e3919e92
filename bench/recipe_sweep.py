"""Compare fine-tuning recipes on one dataset: each candidate trained, selected on validation, scored on test.

This is how the ``full`` recipe in ``models/finetuning.py`` was chosen (figures in docs/benchmarks.md). Candidates are
named overrides of a recipe; every run uses the same seed, data and base model, so the table compares like with like.

    python bench/recipe_sweep.py --data ../shared/datasets/emotion --candidates full,full-cw [--save-best DIR]
    python bench/recipe_sweep.py --data ../shared/datasets/emotion --candidates full --seeds 1,2,3

With several seeds, each candidate also gets a summary line: the mean and the spread (min, max) of its test scores.
A candidate with checkpoint averaging (``average_last`` > 1, as in ``full``) also reports the test scores of the best
single epoch of the same run (``single_epoch_test_*``), so one run compares both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Overrides on top of the recipe as it is now: `full` has had layer-wise decay since session 14, so the figures in
# docs/benchmarks.md of a candidate that does not pin `layer_decay` come from runs without it.
CANDIDATES: dict[str, tuple[str, dict]] = {
    "quick": ("quick", {}),
    "full": ("full", {}),
    "full-cw": ("full", {"class_weights": True}),
    "full-lr5e5": ("full", {"learning_rate": 5e-5}),
    "full-8ep": ("full", {"epochs": 8}),
    "full-8ep-cw": ("full", {"epochs": 8, "class_weights": True}),
    "full-bs16": ("full", {"batch_size": 16, "learning_rate": 5e-5}),
    "full-frozen": ("full", {"freeze_embeddings": True, "learning_rate": 1e-4}),
    "full-12ep-cw": ("full", {"epochs": 12, "class_weights": True, "learning_rate": 1e-4, "layer_decay": 1.0}),
    "full-12ep": ("full", {"epochs": 12, "learning_rate": 1e-4, "layer_decay": 1.0}),
    "full-10ep-cw-bs64": (
        "full",
        {"epochs": 10, "class_weights": True, "learning_rate": 1.4e-4, "batch_size": 64, "layer_decay": 1.0},
    ),
    "full-10ep-cw-bs128": (
        "full",
        {"epochs": 10, "class_weights": True, "learning_rate": 2e-4, "batch_size": 128, "layer_decay": 1.0},
    ),
    "full-single": ("full", {"average_last": 1}),  # no checkpoint averaging
    "full-ls": ("full", {"label_smoothing": 0.1, "learning_rate": 8e-5, "layer_decay": 1.0}),
    "full-llrd": ("full", {"layer_decay": 0.85, "learning_rate": 1e-4}),  # `full` itself since session 14
    "full-flat": ("full", {"learning_rate": 8e-5, "layer_decay": 1.0}),  # `full` before session 14
    "full-12ep-cw-llrd": ("full", {"epochs": 12, "class_weights": True}),  # full-12ep-cw with full's layer decay
    "full-ld75": ("full", {"layer_decay": 0.75}),  # stronger decay: embeddings at 0.75^7 = 0.13 of the head's rate
    "full-ld90": ("full", {"layer_decay": 0.9}),
    "full-mean": ("full", {"pooling": "mean"}),  # the head on the tokens' mean, as the base encoder was trained
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--base", help="base encoder [default: $EMOSTREAM_BASE_MODEL]")
    parser.add_argument("--candidates", default="full", help=f"comma-separated, from: {', '.join(CANDIDATES)}")
    parser.add_argument("--multi-label", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-train", type=int, help="train on a seeded sample of at most N texts (smoke runs)")
    parser.add_argument("--seeds", default="42", help="comma-separated seeds; each candidate is trained once per seed")
    parser.add_argument("--save-best", help="export the best candidate (validation macro-F1) as a run folder here")
    args = parser.parse_args()

    from emostream.logs import configure_logging
    from emostream.settings import Settings
    from models.artifacts import export_run
    from models.data import load_splits
    from models.evaluation import evaluate_classifier
    from models.finetuning import FineTuner, TrainingConfig

    configure_logging()  # the run's logs to stderr: stdout carries only the results

    class SingleEpochScored(FineTuner):
        """When a checkpoint average replaces the best single epoch, scores that epoch on the test split too (else
        the saved model is that epoch, and its test scores are the run's own)."""

        single_epoch_test = None

        def average_last_epochs(self, run, best, history):
            kept, report = super().average_last_epochs(run, best, history)
            if report.get("kept") and splits.test is not None:
                run.classifier.model.load_state_dict(best.weights)  # finish() loads the average back
                self.single_epoch_test = evaluate_classifier(run.classifier, splits.test)  # accuracy and F1 only
            return kept, report

    base = args.base or Settings.from_env().base_model
    splits = load_splits(args.data, multi_label=args.multi_label or None)
    best = None
    seeds = [int(seed) for seed in args.seeds.split(",")]
    for name in args.candidates.split(","):
        recipe, overrides = CANDIDATES[name]
        rows = []
        for seed in seeds:
            config = TrainingConfig.from_recipe(
                recipe,
                base,
                device=args.device,
                progress=False,
                multi_label=args.multi_label or None,
                max_train=args.max_train,
                seed=seed,
                **overrides,
            )
            started = time.perf_counter()
            tuner = SingleEpochScored(config, splits)
            result = tuner.train()
            test = evaluate_classifier(result.classifier, splits.test) if splits.test is not None else None
            row = {
                "candidate": name,
                "recipe": recipe,
                "overrides": overrides,
                "seed": seed,
                "device": str(result.classifier.device),
                "validation_accuracy": round(result.validation["accuracy"], 4),
                "validation_macro_f1": round(result.validation["macro_f1"], 4),
                "test_accuracy": round(test["accuracy"], 4) if test else None,
                "test_macro_f1": round(test["macro_f1"], 4) if test else None,
                "test_ece": test.get("ece") if test else None,
                "best_epoch": result.best_epoch,
                "train_seconds": round(result.train_seconds, 1),
                "examples_per_second": round(result.examples_per_second, 1),
                "wall_seconds": round(time.perf_counter() - started, 1),
                "int8": result.int8,
            }
            if result.averaging:
                single = tuner.single_epoch_test or test
                row["averaging"] = result.averaging
                row["single_epoch_test_accuracy"] = round(single["accuracy"], 4) if single else None
                row["single_epoch_test_macro_f1"] = round(single["macro_f1"], 4) if single else None
            rows.append(row)
            print(json.dumps(row), flush=True)
            if best is None or result.validation["macro_f1"] > best[0].validation["macro_f1"]:
                best = (result, test)
        if len(rows) > 1:
            print(json.dumps({"candidate": name, "seeds": seeds, **spread(rows)}), flush=True)
    if args.save_best and best is not None:
        out = export_run(best[0], args.save_best, data_source=args.data, test_metrics=best[1])
        print(json.dumps({"saved_best": str(out), "recipe": best[0].config.hyperparameters()}), flush=True)


def spread(rows: list[dict]) -> dict:
    """Mean, min and max over seeds of each test score the rows have."""
    summary = {}
    scores = ("test_accuracy", "test_macro_f1", "test_ece", "single_epoch_test_accuracy", "single_epoch_test_macro_f1")
    for key in scores:
        values = [row[key] for row in rows if row.get(key) is not None]
        if values:
            summary[key] = {
                "mean": round(statistics.fmean(values), 4),
                "min": min(values),
                "max": max(values),
            }
    return summary


if __name__ == "__main__":
    main()
