"""``torch.compile`` on the CPU forward pass against the eager one, int8 and fp32, on one thread as in an inference
process: the quickest of ``--rounds`` passes of each shape, and the time the first compiled calls took (what every
inference process would pay at each load and hot swap). Measured and not adopted (docs/notes.md).

    python bench/compiled_forward.py --model DIR [--shapes 1x22,10x25,32x25] [--rounds 20]

``DIR``: a checkpoint folder, e.g. ``python bench/random_model.py DIR`` (the base encoder's shapes).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--shapes", default="1x22,10x25,32x25", help="texts x tokens per pass")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    shapes = [tuple(int(n) for n in shape.split("x")) for shape in args.shapes.split(",")]

    import torch

    from models.classifier import EmotionClassifier

    torch.set_num_threads(1)

    def batch(texts: int, tokens: int) -> list[list[int]]:
        return [[101, *range(2000, 2000 + tokens - 2), 102]] * texts  # [CLS] ... [SEP], the same text repeated

    def quickest_ms(classifier: EmotionClassifier, texts: int, tokens: int) -> float:
        ids = batch(texts, tokens)
        best = float("inf")
        with torch.inference_mode():
            classifier.forward(ids)
            for _ in range(args.rounds):
                started = time.perf_counter()
                classifier.forward(ids)
                best = min(best, time.perf_counter() - started)
        return best * 1000

    print(f"one thread; quickest of {args.rounds} passes, ms\n")
    print(f"| weights | forward | {' | '.join(f'{n} x {t}' for n, t in shapes)} | first calls (compiling) |")
    print(f"| --- | --- | {' | '.join('---' for _ in shapes)} | --- |")
    for quantize in ("on", "off"):
        classifier = EmotionClassifier.from_pretrained(args.model, device="cpu", quantize=quantize)
        weights = "int8" if classifier.quantized else "fp32"
        eager = [quickest_ms(classifier, n, t) for n, t in shapes]
        print(f"| {weights} | eager | {' | '.join(f'{ms:.2f}' for ms in eager)} | |", flush=True)
        classifier.model = torch.compile(classifier.model, dynamic=True)
        started = time.perf_counter()
        with torch.inference_mode():
            for n, t in shapes:
                classifier.forward(batch(n, t))
        compiling = time.perf_counter() - started
        compiled = [quickest_ms(classifier, n, t) for n, t in shapes]
        ratios = " | ".join(f"{ms:.2f} ({e / ms:.2f}x)" for ms, e in zip(compiled, eager, strict=True))
        print(f"| {weights} | compiled | {ratios} | {compiling:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
