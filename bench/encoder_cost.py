"""What a larger base encoder would cost here: training and int8 serving of random-weight encoders of two shapes, on
the same texts, in one run, as a ratio against the base encoder's shape (``EMOSTREAM_BASE_MODEL``: the packaged
all-MiniLM-L6-v2).

Random weights time like trained ones, so no weights are needed: the candidate is described by its shape (default
all-mpnet-base-v2's: 12 layers, 768 wide, 3,072 intermediate, MPNet). Training: ``--steps`` length-grouped batches
of 32 (``models.finetuning.length_grouped_batches``, as ``full`` batches) with AdamW, everything trained. Serving:
``EmotionClassifier.predict`` on ``--texts`` texts with int8 dynamic quantization, as a CPU worker serves it.

    python bench/encoder_cost.py [--data ../shared/datasets/emotion/train.jsonl] [--steps 20] [--texts 512]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/emotion/train.jsonl"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--layers", type=int, default=12, help="the candidate's shape [default: all-mpnet-base-v2's]")
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--intermediate", type=int, default=3072)
    args = parser.parse_args()

    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, MPNetConfig

    from bench.harness import LABELS
    from emostream.settings import Settings
    from models.classifier import EmotionClassifier, pad_batch, quantize_int8
    from models.data import load_file
    from models.finetuning import length_grouped_batches

    base = Settings.from_env().base_model  # its config and tokenizer; no weights are read
    tokenizer = AutoTokenizer.from_pretrained(base)
    data = load_file(args.data)
    token_ids = tokenizer(data.texts, truncation=True, max_length=128)["input_ids"]
    targets = torch.as_tensor(data.label_ids)
    batches = list(length_grouped_batches([len(ids) for ids in token_ids], 32, random.Random(0)))[: args.steps + 2]
    labels = {"num_labels": len(LABELS), "id2label": dict(enumerate(LABELS))}
    shapes = {
        "the base encoder": AutoConfig.from_pretrained(base, **labels),
        f"candidate: MPNet, {args.layers} layers, {args.hidden} wide": MPNetConfig(
            hidden_size=args.hidden,
            num_hidden_layers=args.layers,
            num_attention_heads=args.hidden // 64,
            intermediate_size=args.intermediate,
            vocab_size=tokenizer.vocab_size + 5,
            **labels,
        ),
    }
    print(f"torch threads {torch.get_num_threads()}; {args.steps} training steps of 32; {args.texts} texts served\n")
    print("| encoder | parameters | training examples/s | int8 `predict` texts/s |")
    print("| --- | --- | --- | --- |")
    rates = []
    for name, config in shapes.items():
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_config(config)
        parameters = sum(p.numel() for p in model.parameters())
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
        model.train()
        seen, started = 0, 0.0
        for step, indices in enumerate(batches):
            if step == 2:  # two warm-up steps
                seen, started = 0, time.perf_counter()
            input_ids, attention_mask = pad_batch([token_ids[i] for i in indices], tokenizer.pad_token_id)
            loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=targets[indices]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            seen += len(indices)
        training = seen / (time.perf_counter() - started)
        classifier = EmotionClassifier(quantize_int8(model), tokenizer, device="cpu", quantized=True)
        texts = data.texts[: args.texts]
        classifier.predict(texts[:32])  # warm-up
        started = time.perf_counter()
        classifier.predict(texts)
        serving = len(texts) / (time.perf_counter() - started)
        rates.append((training, serving))
        print(f"| {name} | {parameters / 1e6:.1f}M | {training:.1f} | {serving:.1f} |", flush=True)
    (base_train, base_serve), (cand_train, cand_serve) = rates
    training_ratio, serving_ratio = cand_train / base_train, cand_serve / base_serve
    print(f"\ncandidate / base: training {training_ratio:.2f}x the rate, serving {serving_ratio:.2f}x")


if __name__ == "__main__":
    main()
