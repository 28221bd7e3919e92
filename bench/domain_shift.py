"""Domain shift: GoEmotions (Reddit, mapped to Ekman's labels) sent through ``emotion.feedback`` into one real trainer
cycle, starting from a model fine-tuned on the emotion dataset.

Reports macro-F1 on the GoEmotions test split (Ekman labels, texts with exactly one Ekman label) before and after the
cycle, the base (emotion) test accuracy after it (forgetting), the gate's decision and the cycle's wall time. The run
uses a copy of the model in a scratch registry and the embedded broker, so it changes nothing of the user's.

    python bench/domain_shift.py [--model current] [--feedback 3000] [--epochs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def ekman_single_label(folder: Path, split: str) -> list[tuple[str, str]]:
    """(text, Ekman label) for GoEmotions rows whose labels map to exactly one Ekman category (or neutral)."""
    names = (folder / "labels.txt").read_text(encoding="utf-8").split()
    mapping = json.loads((folder / "ekman_mapping.json").read_text(encoding="utf-8"))
    to_ekman = {fine: coarse for coarse, fines in mapping.items() for fine in fines} | {"neutral": "neutral"}
    rows = []
    with (folder / f"{split}.tsv").open(encoding="utf-8") as handle:
        for line in handle:
            text, ids = line.rstrip("\n").split("\t")[:2]
            coarse = {to_ekman[names[int(i)]] for i in ids.split(",")}
            if len(coarse) == 1:
                rows.append((text, coarse.pop()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="current")
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets"))
    parser.add_argument("--feedback", type=int, default=3000, help="GoEmotions training texts sent as feedback")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--replay", type=int, default=2000)
    args = parser.parse_args()

    import random

    from emostream.settings import Settings
    from models.classifier import EmotionClassifier
    from models.data import LabelledTexts, load_splits
    from models.evaluation import evaluate_classifier
    from models.registry import ModelRegistry
    from models.retraining_cycle import new_data_macro_f1
    from stream.broker import EmbeddedBroker
    from stream.retraining_job import RetrainingJob, Skipped
    from stream.tools import send_values

    data = Path(args.data)
    settings = Settings.from_env()
    source = ModelRegistry(settings.registry_dir).resolve(args.model)
    train_rows = ekman_single_label(data / "goemotions", "train")
    random.Random(0).shuffle(train_rows)
    test_rows = ekman_single_label(data / "goemotions", "test")
    labels = tuple(sorted({label for _, label in test_rows}))
    test = LabelledTexts(
        [t for t, _ in test_rows],
        [(labels.index(label),) for _, label in test_rows],
        labels,
        source="goemotions test (Ekman)",
    )
    base = load_splits(data / "emotion")

    before_model = EmotionClassifier.from_pretrained(source, device=settings.device, quantize="off")
    before = new_data_macro_f1(before_model, test)
    base_before = evaluate_classifier(before_model, base.test, list(base.train.labels))["accuracy"]

    with tempfile.TemporaryDirectory() as scratch, EmbeddedBroker() as broker:
        registry = ModelRegistry(Path(scratch) / "registry")
        start = registry.register(source, promote=True)
        topic = f"bench-{os.getpid()}.feedback"
        feedback = [
            json.dumps({"id": f"g{i}", "text": text, "label": label}).encode()
            for i, (text, label) in enumerate(train_rows[: args.feedback])
        ]
        asyncio.run(send_values(broker.url, topic, feedback))
        cycle_settings = Settings.from_env(
            {
                **os.environ,
                "EMOSTREAM_REGISTRY_DIR": str(registry.root),
                "EMOSTREAM_BROKER_URL": broker.url,
                "EMOSTREAM_TOPIC_FEEDBACK": topic,
                "EMOSTREAM_TOPIC_MODELS": f"bench-{os.getpid()}.models",
                "EMOSTREAM_TOPIC_DLQ": f"bench-{os.getpid()}.dlq",
                "EMOSTREAM_RETRAIN_EPOCHS": str(args.epochs),
                "EMOSTREAM_RETRAIN_REPLAY": str(args.replay),
                "EMOSTREAM_BASE_DATA": str(data / "emotion"),
            }
        )
        started = time.perf_counter()
        result = asyncio.run(RetrainingJob(cycle_settings).run_once(force=True))
        if isinstance(result, Skipped):
            raise SystemExit(f"no cycle ran: {result.reason}")
        cycle_seconds = time.perf_counter() - started
        after_model = EmotionClassifier.from_pretrained(result.version.path, device=settings.device, quantize="off")
        after = new_data_macro_f1(after_model, test)
        base_after = evaluate_classifier(after_model, base.test, list(base.train.labels))["accuracy"]

    gate = result.decision
    print(
        f"start: {source} ({start.labels}); feedback: {args.feedback} GoEmotions train texts with one Ekman label; "
        f"replay {args.replay}; {args.epochs} epochs; device {after_model.device}\n"
    )
    print("| measure | before | after |\n| --- | --- | --- |")
    print(
        f"| GoEmotions test macro-F1 (Ekman labels: {', '.join(labels)}; {len(test)} texts) | {before:.4f} | "
        f"{after:.4f} |"
    )
    print(f"| emotion test accuracy (base labels) | {base_before:.4f} | {base_after:.4f} |")
    print(f"| labels | {len(before_model.labels)} | {len(after_model.labels)} (new: {', '.join(result.new_labels)}) |")
    print(
        f"\ncycle wall time {cycle_seconds:.0f} s (read feedback, train, gate, register); gate: "
        f"{'promoted' if gate.promoted else 'rejected'}: {gate.reason}"
    )


if __name__ == "__main__":
    main()
