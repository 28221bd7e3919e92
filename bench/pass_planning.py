"""Forward passes planned by their cost (``models.pass_planning``) against the rules they replaced, in one process.

For micro-batches of several sizes drawn from the data (the same draws for every way), the model's forward passes
(``EmotionClassifier.forward``, tokenization not counted) under three ways of cutting a length-sorted batch, run in
turn on each draw so a machine whose speed drifts weighs on all three alike:

- ``full``: passes of ``EMOSTREAM_BATCH_SIZE`` texts (what a GPU gets);
- ``rule``: the CPU rule before the planner: a pass also ended once it held a quarter of the batch size where the
  next text was at most two thirds as long as its first;
- ``planned``: :func:`models.pass_planning.plan_passes` with the overhead the classifier timed for this model
  (``EmotionClassifier.time_pass_overhead``, as the worker's inference processes do at load).

It prints ms of one process's CPU time per text for each way and the ratios rule / planned and full / planned (above 1:
the plan is cheaper), as a Markdown table for docs/benchmarks.md. One torch thread, as in each inference process.

    python bench/pass_planning.py --model DIR [--data ../shared/datasets/emotion/test.jsonl] [--sizes 8,16,32,64,512]
        [--texts 1200] [--timings 5]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def rule_passes(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """The CPU rule before the planner (models/classifier.py until this bench was written), kept as the baseline."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    sorted_lengths = np.asarray(lengths)[order]
    least = max(1, batch_size // 4)
    passes, start = [], 0
    for end in range(1, len(order) + 1):
        size = end - start
        if (
            end == len(order)
            or size == batch_size
            or (size >= least and 3 * sorted_lengths[end] <= 2 * sorted_lengths[start])
        ):
            passes.append(order[start:end])
            start = end
    return passes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="checkpoint folder (bench/random_model.py makes one)")
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/emotion/test.jsonl"))
    parser.add_argument("--sizes", default="8,16,32,64,512", help="micro-batch sizes, comma-separated")
    parser.add_argument("--texts", type=int, default=1200, help="texts per size and way (at least two micro-batches)")
    parser.add_argument("--timings", type=int, default=5, help="times the overhead is timed (the last one plans)")
    args = parser.parse_args()

    import torch

    from emostream.settings import Settings
    from models.classifier import load_classifier
    from models.data import load_file
    from models.pass_planning import full_passes, plan_passes

    torch.set_num_threads(1)
    settings = Settings.from_env()
    classifier = load_classifier(args.model, settings)
    token_ids = classifier.tokenize(load_file(args.data).texts)
    most = classifier.batch_size
    # Timed as each of the worker's inference processes does at load; several times, to show how much one timing varies.
    timings = [classifier.time_pass_overhead() for _ in range(args.timings)]
    overhead = timings[-1]
    ways: dict[str, Callable[[list[int]], list[np.ndarray]]] = {
        "full": lambda lengths: full_passes(lengths, most),
        "rule": lambda lengths: rule_passes(lengths, most),
        "planned": lambda lengths: plan_passes(lengths, most, overhead),
    }
    draw = random.Random(0)
    print(
        f"model {args.model}, int8 {classifier.quantized}, {most} texts a pass at most, one torch thread; "
        f"overhead per pass timed at {', '.join(f'{t:.0f}' for t in timings)} tokens, planned with the last; "
        "CPU ms per text (forward passes and planning)\n"
    )
    print("| micro-batch | full | rule | planned | passes full / rule / planned | rule / planned | full / planned |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size in (int(s) for s in args.sizes.split(",")):
        spent = dict.fromkeys(ways, 0.0)
        passes = dict.fromkeys(ways, 0)
        done = 0
        with torch.inference_mode():
            classifier.forward(token_ids[:size])  # warm
            while done < max(args.texts, 2 * size):
                batch = draw.sample(token_ids, size)
                lengths = [len(ids) for ids in batch]
                names = list(ways)
                draw.shuffle(names)  # no way always runs first
                for name in names:
                    started = time.process_time()
                    plan = ways[name](lengths)
                    for indices in plan:
                        classifier.forward([batch[i] for i in indices])
                    spent[name] += time.process_time() - started
                    passes[name] += len(plan)
                done += size
        ms = {name: spent[name] / done * 1000 for name in ways}
        print(
            f"| {size} | {ms['full']:.2f} | {ms['rule']:.2f} | {ms['planned']:.2f} | "
            f"{passes['full']} / {passes['rule']} / {passes['planned']} | "
            f"{ms['rule'] / ms['planned']:.2f} | {ms['full'] / ms['planned']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
