"""Refit a selection already made: train a recipe on train + validation for the epochs (and average) a selection run
chose, and score it on test, without running the selection again.

On a CPU the same seed trains the same to the last digit, so a selection recorded in docs/benchmarks.md (best epoch,
whether the average of the last epochs won) can be refitted alone: half the time of ``bench/recipe_sweep.py
--candidates full-refit``, which runs both. Without ``--temperature`` the scores are uncalibrated (the selection run's
temperature is what ``models.refit`` keeps); accuracy and macro-F1 do not depend on it.

    python bench/refit_probe.py --data ../shared/datasets/emotion --recipe full --seed 1 --epochs 5
    python bench/refit_probe.py --data ../shared/datasets/emotion --recipe full --seed 3 --epochs 6 --averaged 4,5,6
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--base", help="base encoder [default: $EMOSTREAM_BASE_MODEL]")
    parser.add_argument("--recipe", default="full")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True, help="the epochs of the schedule the selection kept")
    parser.add_argument("--averaged", default="", help="comma-separated epochs whose weights the selection averaged")
    parser.add_argument("--temperature", type=float, help="the selection run's fitted temperature")
    parser.add_argument("--max-train", type=int, help="train on a seeded sample of at most N texts (smoke runs)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    from emostream.logs import configure_logging
    from emostream.settings import Settings
    from models.data import load_splits
    from models.evaluation import evaluate_classifier
    from models.finetuning import TrainingConfig
    from models.refit import RefitTuner, Selection

    configure_logging()  # the run's logs to stderr: stdout carries only the results
    config = TrainingConfig.from_recipe(
        args.recipe,
        args.base or Settings.from_env().base_model,
        device=args.device,
        progress=False,
        max_train=args.max_train,
        seed=args.seed,
    )
    splits = load_splits(args.data)
    averaged = tuple(int(epoch) for epoch in args.averaged.split(",") if epoch)
    selection = Selection(epochs=args.epochs, averaged=averaged, temperature=args.temperature)
    result = RefitTuner(config, splits, splits.train.labels, selection).train()
    test = evaluate_classifier(result.classifier, splits.test)
    row = {
        "recipe": args.recipe,
        "seed": args.seed,
        "selection": {"epochs": args.epochs, "averaged": list(averaged), "temperature": args.temperature},
        "test_accuracy": round(test["accuracy"], 4),
        "test_macro_f1": round(test["macro_f1"], 4),
        "test_ece": test.get("ece"),
        "refit": result.refit,
        "int8": result.int8,
    }
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
