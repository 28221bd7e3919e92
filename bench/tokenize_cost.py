"""CPU per text of what an inference process does before the forward pass: token ids and padding, old way and new.

In one run, on the same texts and one thread (as each of a worker's inference processes runs on 2 cores; ``--threads``
sets the tokenizer's thread pool):

- token ids: calling the tokenizer (``tokenizer(texts, truncation=True, max_length=...)["input_ids"]``, the baseline)
  against ``EmotionClassifier.tokenize`` (its Rust backend called directly, ``models.classifier.truncating_encoder``);
- padding: a tensor slice assignment per row (the baseline, as ``pad_batch`` was) against ``pad_batch``.

Both pairs are checked to give the same ids and masks. Prints CPU microseconds per text and the ratios.

    python bench/tokenize_cost.py --model DIR [--data ../shared/datasets/emotion/test.jsonl] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def per_row_padding(batch: list[list[int]], pad_id: int):
    """``pad_batch`` before: a tensor slice assignment per row."""
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


def cpu_us_per_text(work: Callable[[], object], texts: int, repeats: int = 3) -> float:
    """The least CPU time (this process, all threads) of ``repeats`` runs of ``work``, per text, in microseconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best / texts * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a checkpoint folder (its tokenizer is what is timed)")
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/emotion/test.jsonl"))
    parser.add_argument("--threads", type=int, default=1, help="the tokenizer's thread pool (RAYON_NUM_THREADS)")
    parser.add_argument("--micro-batch", type=int, default=256, help="texts per call, as a worker's micro-batch")
    parser.add_argument("--pass-size", type=int, default=32, help="texts per padded forward pass")
    args = parser.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)  # before the tokenizer's pool first starts

    import torch

    from models.classifier import EmotionClassifier, pad_batch
    from models.data import load_file

    torch.set_num_threads(args.threads)
    classifier = EmotionClassifier.from_pretrained(args.model, device="cpu", quantize="off")
    texts = load_file(args.data).texts
    calls = [texts[i : i + args.micro_batch] for i in range(0, len(texts), args.micro_batch)]
    tokenizer, max_length = classifier.tokenizer, classifier.max_length

    def by_call() -> list:
        return [ids for call in calls for ids in tokenizer(call, truncation=True, max_length=max_length)["input_ids"]]

    def by_backend() -> list:
        return [ids for call in calls for ids in classifier.tokenize(call)]

    token_ids = by_call()
    if by_backend() != token_ids:
        raise SystemExit("the backend's token ids differ from the tokenizer's")
    passes = [token_ids[i : i + args.pass_size] for i in range(0, len(token_ids), args.pass_size)]
    pad_id = tokenizer.pad_token_id or 0
    for batch in passes:
        old_ids, old_mask = per_row_padding(batch, pad_id)
        new_ids, new_mask = pad_batch(batch, pad_id)
        if not (torch.equal(old_ids, new_ids) and torch.equal(old_mask, new_mask)):
            raise SystemExit("pad_batch differs from per-row padding")

    rows = [
        ("token ids", cpu_us_per_text(by_call, len(texts)), cpu_us_per_text(by_backend, len(texts))),
        (
            "padding",
            cpu_us_per_text(lambda: [per_row_padding(b, pad_id) for b in passes], len(texts)),
            cpu_us_per_text(lambda: [pad_batch(b, pad_id) for b in passes], len(texts)),
        ),
    ]
    print(
        f"{len(texts)} texts from {args.data}; calls of {args.micro_batch}, passes of {args.pass_size}; "
        f"{args.threads} thread(s)\n"
    )
    print("| step | before: us CPU per text | now | before / now |\n| --- | --- | --- | --- |")
    for name, before, now in rows:
        print(f"| {name} | {before:.2f} | {now:.2f} | {before / now:.1f}x |")
    before, now = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"| both | {before:.2f} | {now:.2f} | {before / now:.1f}x |")


if __name__ == "__main__":
    main()
