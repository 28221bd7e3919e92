"""What each pooling gives a classifier head before any fine-tuning: the base encoder's frozen features, a logistic
regression on them, scored on validation.

    python bench/pooling_probe.py --data ../shared/datasets/emotion [--max-train 6000] [--base MODEL]

Three features per text, from one forward pass: the ``[CLS]`` state, BERT's pooler output (a dense layer and tanh on
it: what ``BertForSequenceClassification``'s head reads) and the attention-masked mean of the token states (what
``models.mean_pooling``'s head reads, and how all-MiniLM-L6-v2 was trained). A probe, not a fine-tune: it says which
representation the head starts from, which is why ``pooling`` was tried in ``bench/recipe_sweep.py`` (``full-mean``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--base", help="base encoder [default: $EMOSTREAM_BASE_MODEL]")
    parser.add_argument("--max-train", type=int, default=6000, help="training texts for the probe (seeded sample)")
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args()

    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import AutoModel, AutoTokenizer

    from emostream.settings import Settings
    from models.data import load_splits
    from models.mean_pooling import masked_mean

    base = args.base or Settings.from_env().base_model
    splits = load_splits(args.data)
    train = splits.train.sample(args.max_train, seed=0)
    tokenizer = AutoTokenizer.from_pretrained(base)
    encoder = AutoModel.from_pretrained(base).eval()

    def features(texts) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {"cls": [], "pooler": [], "mean": []}
        with torch.inference_mode():
            for start in range(0, len(texts), 256):
                batch = tokenizer(
                    list(texts[start : start + 256]),
                    padding=True,
                    truncation=True,
                    max_length=args.max_length,
                    return_tensors="pt",
                )
                out = encoder(**batch)
                parts["cls"].append(out.last_hidden_state[:, 0].numpy())
                parts["pooler"].append(out.pooler_output.numpy())
                parts["mean"].append(masked_mean(out.last_hidden_state, batch["attention_mask"]).numpy())
        return {name: np.concatenate(rows) for name, rows in parts.items()}

    started = time.perf_counter()
    train_x, validation_x = features(train.texts), features(splits.validation.texts)
    train_y = [targets[0] for targets in train.targets]
    validation_y = [targets[0] for targets in splits.validation.targets]
    encode_seconds = time.perf_counter() - started
    for name in ("cls", "pooler", "mean"):
        head = LogisticRegression(max_iter=2000, C=10.0).fit(train_x[name], train_y)
        predicted = head.predict(validation_x[name])
        row = {
            "features": name,
            "train_texts": len(train),
            "validation_accuracy": round(float(accuracy_score(validation_y, predicted)), 4),
            "validation_macro_f1": round(float(f1_score(validation_y, predicted, average="macro")), 4),
            "encode_seconds": round(encode_seconds, 1),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
