"""How well several fine-tuned models score together: each alone, then the mean of their (calibrated) probabilities.

The ceiling of serving an ensemble of seeds, or of distilling one into a single model (a student of the served size
rarely beats its teachers' ensemble): on emotion, three seeds of ``full`` together scored no better than their mean
(docs/benchmarks.md, session 23), so neither was built.

    python bench/teacher_ensemble.py --data ../shared/datasets/emotion --models /tmp/teach/seed1,/tmp/teach/seed2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a folder of splits (a missing test split is skipped)")
    parser.add_argument("--models", required=True, help="comma-separated single-label model folders, same labels")
    parser.add_argument(
        "--splits",
        default="validation,test",
        help="comma-separated, from train, validation, test (on train, the ensemble's accuracy is how often it agrees "
        "with the gold labels the models were trained on)",
    )
    args = parser.parse_args()

    from models.classifier import EmotionClassifier
    from models.data import load_splits
    from models.evaluation import score

    splits = load_splits(args.data)
    paths = args.models.split(",")
    models = [EmotionClassifier.from_pretrained(path, device="cpu", quantize="off") for path in paths]
    labels = models[0].labels
    if any(model.labels != labels for model in models):
        sys.exit("the models' labels differ (name and order): " + "; ".join(",".join(m.labels) for m in models))
    for split in args.splits.split(","):
        if getattr(splits, split) is None:  # a folder without a test split
            continue
        data = getattr(splits, split).relabel(labels)
        probabilities = [model.predict_proba(data.texts) for model in models]
        for name, scores in [*zip(paths, probabilities, strict=True), ("ensemble", np.mean(probabilities, axis=0))]:
            metrics = score(scores, data.targets, labels, multi_label=False)
            row = {"split": split, "model": name, **{k: metrics[k] for k in ("accuracy", "macro_f1", "ece")}}
            row["mean_top_probability"] = round(float(scores.max(axis=1).mean()), 4)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
