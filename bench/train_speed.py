"""Training-step throughput of the fine-tuning loop's batching choices, on the same texts and model, in one run.

Variants (each a fresh copy of the base model, the same optimizer and the same number of timed steps):

- ``fixed-128``: every batch padded to 128 tokens (tokenizer ``padding="max_length"``: the plain-loop baseline);
- ``random-longest``: random batches padded to their longest text (``DataCollatorWithPadding``, what
  ``transformers.Trainer`` does by default);
- ``grouped``: ``models.finetuning.length_grouped_batches`` (similar lengths batched together; the ``full`` recipe);
- ``grouped-frozen``: the same with the word-embedding matrix frozen (the ``quick`` recipe).

    python bench/train_speed.py [--data ../shared/datasets/emotion/train.jsonl] [--steps 30]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BASELINE = "random-longest"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/emotion/train.jsonl"))
    parser.add_argument("--base", help="base encoder [default: $EMOSTREAM_BASE_MODEL]")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from emostream.logs import configure_logging
    from emostream.settings import Settings
    from models.classifier import pad_batch, quiet_transformers
    from models.data import load_file
    from models.finetuning import length_grouped_batches

    configure_logging()  # the run's logs to stderr: stdout carries only the results

    base = args.base or Settings.from_env().base_model
    data = load_file(args.data)
    tokenizer = AutoTokenizer.from_pretrained(base)
    token_ids = tokenizer(data.texts, truncation=True, max_length=128)["input_ids"]
    targets = torch.as_tensor(data.label_ids)
    lengths = [len(ids) for ids in token_ids]
    order = list(range(len(token_ids)))
    random.Random(0).shuffle(order)
    random_batches = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    grouped = list(length_grouped_batches(lengths, args.batch_size, random.Random(0)))
    variants = {
        "fixed-128": (random_batches, 128, False),
        BASELINE: (random_batches, None, False),
        "grouped": (grouped, None, False),
        "grouped-frozen": (grouped, None, True),
    }
    results = {}
    for name, (batches, width, frozen) in variants.items():
        torch.manual_seed(0)
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                base, num_labels=len(data.labels), dtype=torch.float32
            )
        if frozen:
            model.get_input_embeddings().weight.requires_grad_(False)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-5)
        model.train()
        seen, tokens, started = 0, 0, 0.0
        for step, indices in enumerate(batches[: args.steps + 3]):
            if step == 3:  # three warm-up steps
                started = time.perf_counter()
            rows = [token_ids[i] + [tokenizer.pad_token_id] * ((width or 0) - len(token_ids[i])) for i in indices]
            input_ids, attention_mask = pad_batch(rows, tokenizer.pad_token_id)
            if width:
                attention_mask = (input_ids != tokenizer.pad_token_id).long()
            loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=targets[indices]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step >= 3:
                seen += len(indices)
                tokens += input_ids.numel()
        seconds = time.perf_counter() - started
        results[name] = (seen / seconds, tokens / seen)
        print(f"# {name}: {seen / seconds:.1f} examples/s", file=sys.stderr)
    base_rate = results[BASELINE][0]
    print(f"base model: {base}; {args.steps} timed steps of {args.batch_size}; torch threads {torch.get_num_threads()}")
    print("\n| variant | examples/s | padded tokens per example | vs random-longest |")
    print("| --- | --- | --- | --- |")
    for name, (rate, width) in results.items():
        print(f"| {name} | {rate:.1f} | {width:.1f} | {rate / base_rate:.2f}x |")


if __name__ == "__main__":
    main()
