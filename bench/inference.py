"""Inference throughput: ``EmotionClassifier.predict`` against ``transformers.pipeline`` on the same checkpoint.

Each variant runs in its own fresh process (so its peak memory is its own) over the same texts, in this one run:

- ``pipeline-per-text``: ``pipeline("text-classification")`` called once per text (the naive baseline);
- ``pipeline-batch64``: the same pipeline with ``batch_size=64`` (pads each batch to its longest text);
- ``predict-fp32``: ``EmotionClassifier.predict`` (length-sorted buckets, inference mode), quantization off, and on a
  GPU no autocast (``EMOSTREAM_GPU_PRECISION=fp32``);
- ``predict-int8``: the same with int8 dynamic quantization of the Linear layers (CPU only);
- on a GPU, ``predict-autocast`` (the default precision: bf16/fp16 autocast) and ``pipeline-batch64-bf16`` (the
  pipeline in bf16).

It prints texts/s, peak memory and the ratio to ``pipeline-batch64``, plus the test accuracy of each ``predict`` variant
(so the cost of int8 is visible), as a Markdown table for docs/benchmarks.md.

    python bench/inference.py --model current [--data ../shared/datasets/emotion/test.jsonl] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BASELINE = "pipeline-batch64"


def run_variant(variant: str, model: str, data: str, device: str, limit: int | None) -> dict:
    """Time one variant in this process; return texts/s, peak memory and accuracy."""
    import torch

    from models.data import load_file

    dataset = load_file(data)
    texts = dataset.texts[:limit] if limit else dataset.texts
    gold = [dataset.labels[t[0]] for t in dataset.targets[: len(texts)]]
    on_gpu = device.startswith("cuda")
    if variant.startswith("pipeline"):
        from transformers import pipeline

        dtype = torch.bfloat16 if variant.endswith("-bf16") else None
        classify = pipeline("text-classification", model=model, device=device, dtype=dtype)
        batch = None if variant == "pipeline-per-text" else 64

        def predict(items):
            if batch is None:
                return [classify(text)[0]["label"] for text in items]
            return [r["label"] for r in classify(items, batch_size=batch)]
    else:
        from models.classifier import EmotionClassifier

        quantize = "on" if variant == "predict-int8" else "off"
        precision = "fp32" if variant == "predict-fp32" else "auto"
        classifier = EmotionClassifier.from_pretrained(
            model, device=device, quantize=quantize, precision=precision, batch_size=64
        )

        def predict(items):
            return [p.label for p in classifier.predict(items)]

    predict(texts)  # warm-up pass over the same texts: allocations and per-shape kernel selection happen here
    if on_gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    labels = predict(texts)
    if on_gpu:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    accuracy = sum(a == b for a, b in zip(labels, gold, strict=True)) / len(gold)
    if on_gpu:
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "variant": variant,
        "texts": len(texts),
        "seconds": round(seconds, 2),
        "texts_per_s": round(len(texts) / seconds, 1),
        "peak_mib": round(peak),
        "accuracy": round(accuracy, 4),
        "memory": "GPU allocated" if on_gpu else "process RSS",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="current", help="checkpoint folder, registry version or `current`")
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/emotion/test.jsonl"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, help="use only the first N texts")
    parser.add_argument("--variants", help="comma-separated subset of variants")
    parser.add_argument("--json-out", help="also write the rows as JSON here")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: run one variant in this process
    args = parser.parse_args()

    if args.variant:
        print(json.dumps(run_variant(args.variant, args.model, args.data, args.device, args.limit)))
        return

    from emostream.settings import Settings
    from models.registry import ModelRegistry

    model = str(ModelRegistry(Settings.from_env().registry_dir).resolve(args.model))
    on_gpu = args.device.startswith("cuda")
    if on_gpu:  # predict autocasts on CUDA by default; the bf16 pipeline makes the comparison fair
        variants = ["pipeline-per-text", BASELINE, "pipeline-batch64-bf16", "predict-autocast", "predict-fp32"]
    else:
        variants = ["pipeline-per-text", BASELINE, "predict-fp32", "predict-int8"]
    if args.variants:
        variants = [v for v in variants if v in args.variants.split(",")]
    rows = []
    for variant in variants:
        command = [
            sys.executable,
            __file__,
            "--variant",
            variant,
            "--model",
            model,
            "--data",
            args.data,
            "--device",
            args.device,
        ] + (["--limit", str(args.limit)] if args.limit else [])
        out = subprocess.run(command, check=True, capture_output=True, text=True, env={**os.environ}).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"# {variant}: {rows[-1]['texts_per_s']} texts/s", file=sys.stderr)
    base = next((r["texts_per_s"] for r in rows if r["variant"] == BASELINE), None)
    print(f"model: {model}\ndevice: {args.device}, torch threads: {os.cpu_count()} cores\n")
    print("| variant | texts | seconds | texts/s | vs pipeline batch 64 | peak MiB | test accuracy |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ratio = f"{r['texts_per_s'] / base:.2f}x" if base else "-"
        print(
            f"| {r['variant']} | {r['texts']} | {r['seconds']} | {r['texts_per_s']} | {ratio} | {r['peak_mib']} "
            f"({r['memory']}) | {r['accuracy']} |"
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
