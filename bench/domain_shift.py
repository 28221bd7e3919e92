"""Domain shift: GoEmotions (Reddit, mapped to Ekman's labels) sent through ``emotion.feedback`` into one real trainer
cycle, starting from a model fine-tuned on the emotion dataset, against the baseline a cycle should come close to.

Reports, in the same run, on the GoEmotions test split (Ekman labels, texts with exactly one Ekman label; macro-F1) and
on the emotion test split (accuracy over the base labels: forgetting):

(a) the current model;
(b) one trainer cycle (``RetrainingJob.run_once`` on the feedback topic: the cycle's own recipe and gate);
(c) a ``full`` fine-tune from the base encoder on the same feedback training part (the cycle's hold-out fraction and
    seed) plus the whole base training set, validated on the held-out feedback plus the base validation split;

and (b)'s share of (c)'s macro-F1 (issue 14's target: >= 0.95, base accuracy within 1 point of (a)). The run uses a copy
of the model in a scratch registry and the embedded broker, so it changes nothing of the user's. (c) is the slow part
(about half an hour on a 2-core CPU): ``--skip-full`` leaves it out.

    python bench/domain_shift.py [--model current] [--feedback 3000] [--skip-full]
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
    parser.add_argument("--skip-full", action="store_true", help="leave out (c), the full fine-tune baseline")
    args = parser.parse_args()

    import random

    from emostream.logs import configure_logging
    from emostream.settings import Settings
    from models.classifier import EmotionClassifier
    from models.data import LabelledTexts, Splits, load_splits
    from models.evaluation import evaluate_classifier
    from models.finetuning import FineTuner, TrainingConfig
    from models.registry import ModelRegistry
    from models.retraining_cycle import CycleConfig, new_data_macro_f1
    from stream.broker import EmbeddedBroker
    from stream.retraining_job import RetrainingJob, Skipped
    from stream.tools import send_values

    configure_logging()  # the run's logs to stderr: stdout carries only the results

    data = Path(args.data)
    settings = Settings.from_env()
    source = ModelRegistry(settings.registry_dir).resolve(args.model)
    train_rows = ekman_single_label(data / "goemotions", "train")
    random.Random(0).shuffle(train_rows)
    train_rows = train_rows[: args.feedback]
    test_rows = ekman_single_label(data / "goemotions", "test")
    labels = tuple(sorted({label for _, label in test_rows}))

    def labelled(rows: list[tuple[str, str]], name: str) -> LabelledTexts:
        return LabelledTexts([t for t, _ in rows], [(labels.index(label),) for _, label in rows], labels, source=name)

    test = labelled(test_rows, "goemotions test (Ekman)")
    base = load_splits(data / "emotion")
    base_labels = list(base.train.labels)

    def measure(classifier: EmotionClassifier) -> tuple[float, float]:
        """(new-domain test macro-F1, base test accuracy over the base labels)."""
        return (
            new_data_macro_f1(classifier, test),
            evaluate_classifier(classifier, base.test, base_labels)["accuracy"],
        )

    current = EmotionClassifier.from_pretrained(source, device=settings.device, quantize="off")
    results = {"(a) current model": measure(current)}
    cycle_defaults = CycleConfig()

    with tempfile.TemporaryDirectory() as scratch, EmbeddedBroker() as broker:
        registry = ModelRegistry(Path(scratch) / "registry")
        start = registry.register(source, promote=True)
        topic = f"bench-{os.getpid()}.feedback"
        feedback = [
            json.dumps({"id": f"g{i}", "text": text, "label": label}).encode()
            for i, (text, label) in enumerate(train_rows)
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
                "EMOSTREAM_BASE_DATA": str(data / "emotion"),
            }
        )
        started = time.perf_counter()
        result = asyncio.run(RetrainingJob(cycle_settings).run_once(force=True))
        if isinstance(result, Skipped):
            raise SystemExit(f"no cycle ran: {result.reason}")
        cycle_seconds = time.perf_counter() - started
        cycled = EmotionClassifier.from_pretrained(result.version.path, device=settings.device, quantize="off")
        results["(b) one cycle"] = measure(cycled)
        cycle_metrics = registry.info(result.version.version).metrics

    full_seconds = 0.0
    if not args.skip_full:
        # The same split of the feedback as the cycle's (fraction and seed); the labels: the base's, then the new ones.
        feedback_part, holdout = labelled(train_rows, "goemotions feedback").split_off(
            cycle_defaults.holdout_fraction, cycle_defaults.seed
        )
        union = base_labels + [name for name in labels if name not in base_labels]
        splits = Splits(
            feedback_part.relabel(union).concat(base.train.relabel(union)),
            holdout.relabel(union).concat(base.validation.relabel(union)),
        )
        config = TrainingConfig.from_recipe("full", settings.base_model, device=settings.device, progress=False)
        started = time.perf_counter()
        full = FineTuner(config, splits, labels=union).train()
        full_seconds = time.perf_counter() - started
        results["(c) full fine-tune, base encoder"] = measure(full.classifier)

    training = cycle_metrics["training"]
    print(
        f"start: {source} ({start.labels}); feedback: {len(train_rows)} GoEmotions train texts with one Ekman label; "
        f"cycle: {training['hyperparameters']['epochs']} epochs at most, best epoch {training['best_epoch']} of "
        f"{len(training['history'])} run, {training['train_examples']} training texts; device {cycled.device}\n"
    )
    print(f"| model | GoEmotions test macro-F1 ({', '.join(labels)}; {len(test)} texts) | emotion test accuracy |")
    print("| --- | --- | --- |")
    for name, (new, base_accuracy) in results.items():
        print(f"| {name} | {new:.4f} | {base_accuracy:.4f} |")
    gate = result.decision
    print(
        f"\ncycle wall time {cycle_seconds:.0f} s (read feedback, train, gate, register); gate: "
        f"{'promoted' if gate.promoted else 'rejected'}: {gate.reason}; calibration {training['calibration']}"
    )
    if full_seconds:
        cycle_f1, full_f1 = results["(b) one cycle"][0], results["(c) full fine-tune, base encoder"][0]
        base_drop = results["(a) current model"][1] - results["(b) one cycle"][1]
        print(
            f"full fine-tune {full_seconds:.0f} s; cycle / full macro-F1 = {cycle_f1 / full_f1:.3f} (target >= 0.95); "
            f"base accuracy drop of the cycle {base_drop * 100:.2f} points (target <= 1)"
        )


if __name__ == "__main__":
    main()
