"""The ``emostream`` command line: train, evaluate, predict and manage model versions.

Results go to stdout as JSON (one object, or one line per text for ``predict``); progress and logs go to stderr.
Known failures (bad data, bad settings, a missing or corrupt model) end with ``Error: ...`` and exit status 1.
Heavy imports (torch, transformers) happen inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson
import structlog

from emostream.logs import configure_logging
from emostream.settings import Settings, SettingsError

log = structlog.get_logger("emostream")


class _Group(click.Group):
    """Turns the project's own error types into a one-line ``Error: ...`` instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from models.errors import DataError, RegistryError, TrainingConfigError

        try:
            return super().invoke(ctx)
        except (DataError, RegistryError, SettingsError, TrainingConfigError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group)
@click.version_option(package_name="emostream")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """emostream: streaming emotion detection (see README.md)."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.log_level, settings.log_format)
    ctx.obj = settings


model_option = click.option(
    "--model",
    "model_ref",
    default="current",
    show_default=True,
    help="A checkpoint folder, a registry version (v0003) or `current`.",
)


def _emit(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
    sys.stdout.flush()


# --- train / evaluate / predict ---------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--data",
    "data",
    help="Folder with train/validation[/test] files, one file, or an HF dataset id. "
    "[default: $EMOSTREAM_DATA_DIR/emotion]",
)
@click.option("--recipe", type=click.Choice(["quick", "full"]), default="quick", show_default=True)
@click.option("--base", "base", help="Base encoder (HF folder or id). [default: $EMOSTREAM_BASE_MODEL]")
@click.option("--epochs", type=int, help="Override the recipe's epochs.")
@click.option("--learning-rate", type=float, help="Override the recipe's learning rate.")
@click.option("--batch-size", type=int, help="Override the recipe's batch size.")
@click.option("--max-train", type=int, help="Train on a seeded sample of at most N texts.")
@click.option("--multi-label", is_flag=True, help="Train a multi-label model (implied by multi-label data).")
@click.option("--class-weights", is_flag=True, help="Weight the loss by inverse label frequency.")
@click.option("--skip-invalid", is_flag=True, help="Skip malformed rows (counted) instead of stopping at the first.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), help="Where to write the run folder.")
@click.option("--register", is_flag=True, help="Register the run in the model registry (made current if none is).")
@click.option("--promote", is_flag=True, help="With --register: make this version current.")
@click.pass_obj
def train(
    settings: Settings,
    data: str | None,
    recipe: str,
    base: str | None,
    out: Path | None,
    register: bool,
    promote: bool,
    skip_invalid: bool,
    seed: int,
    **overrides: Any,
) -> None:
    """Fine-tune the base encoder with a new emotion head; print the run's metrics as JSON."""
    from models.data import load_splits
    from models.evaluation import evaluate_classifier
    from models.training import FineTuner, TrainingConfig

    data = data or str(Path(settings.data_dir) / "emotion")
    config = TrainingConfig.from_recipe(
        recipe,
        base or settings.base_model,
        device=settings.device,
        seed=seed,
        multi_label=overrides.pop("multi_label") or None,
        class_weights=overrides.pop("class_weights") or None,
        **overrides,
    )
    splits = load_splits(data, multi_label=config.multi_label or None, skip_invalid=skip_invalid, seed=seed)
    log.info(
        "training",
        recipe=recipe,
        data=data,
        train=len(splits.train),
        validation=len(splits.validation),
        labels=list(splits.train.labels),
        multi_label=splits.train.multi_label,
        skipped=splits.train.skipped + splits.validation.skipped,
    )
    result = FineTuner(config, splits).train()
    test_metrics = evaluate_classifier(result.classifier, splits.test) if splits.test is not None else None
    summary = _save_run(settings, result, data, test_metrics, out, register=register, promote=promote)
    headline = test_metrics or result.validation
    _emit(
        {
            **summary,
            "accuracy": headline["accuracy"],
            "macro_f1": headline["macro_f1"],
            "weighted_f1": headline["weighted_f1"],
            "scored_on": "test" if test_metrics else "validation",
            "train_seconds": round(result.train_seconds, 1),
            "examples_per_second": round(result.examples_per_second, 1),
            "best_epoch": result.best_epoch,
            "int8_approved": result.int8["approved"],
        }
    )


def _save_run(
    settings: Settings, result, data: str, test_metrics, out: Path | None, *, register: bool, promote: bool
) -> dict[str, Any]:
    """Write the run folder (to ``out``, or ``runs/<time>-<recipe>``) and register it if asked."""
    from models.artifacts import export_run
    from models.registry import ModelRegistry

    if not register:
        out = out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{result.config.recipe}"
        return {"out": str(export_run(result, out, data_source=data, test_metrics=test_metrics))}
    registry = ModelRegistry(settings.registry_dir)
    registry.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=registry.root, prefix=".run-") as scratch:
        run_dir = export_run(result, out or Path(scratch), data_source=data, test_metrics=test_metrics)
        previous = registry.current_version()
        info = registry.register(run_dir, promote=promote or previous is None)
    log.info("registered", version=info.version, current=info.is_current)
    if info.is_current and previous is not None:
        _announce(settings, info, True)  # running workers swap the new current model in (none run without a model)
    return {
        "out": str(out) if out else None,
        "version": info.version,
        "current": info.is_current,
        "path": str(info.path),
    }


@cli.command()
@model_option
@click.option("--data", "data", help="A data file or a folder (its test split). [default: $EMOSTREAM_DATA_DIR/emotion]")
@click.option("--split", default="test", show_default=True, help="Which split of a data folder to score.")
@click.option("--labels", "labels", help="Comma-separated labels: restrict scoring and argmax to these.")
@click.option("--skip-invalid", is_flag=True, help="Skip malformed rows (counted) instead of stopping at the first.")
@click.pass_obj
def evaluate(
    settings: Settings, model_ref: str, data: str | None, split: str, labels: str | None, skip_invalid: bool
) -> None:
    """Score a model on labelled data; print accuracy, macro/weighted F1, per-class scores and n as JSON."""
    from models.data import load_eval_data
    from models.evaluation import evaluate_classifier

    classifier = _load_classifier(settings, model_ref)
    dataset = load_eval_data(data or str(Path(settings.data_dir) / "emotion"), split=split, skip_invalid=skip_invalid)
    restrict = [name.strip() for name in labels.split(",") if name.strip()] if labels else None
    metrics = evaluate_classifier(classifier, dataset, restrict)
    metrics["skipped"] = dataset.skipped
    _emit(metrics)


@cli.command()
@model_option
@click.argument("texts", nargs=-1)
@click.pass_obj
def predict(settings: Settings, model_ref: str, texts: tuple[str, ...]) -> None:
    """Label TEXTS (or one text per stdin line); print one JSON line per text."""
    classifier = _load_classifier(settings, model_ref)
    chunks = [list(texts)] if texts else _stdin_chunks(settings.batch_size * 4)
    for chunk in chunks:
        for text, prediction in zip(chunk, classifier.predict(chunk), strict=True):
            _emit({"text": text, **prediction.to_dict()})


def _stdin_chunks(size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for line in sys.stdin:
        text = line.rstrip("\n")
        if text.strip():
            chunk.append(text)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _load_classifier(settings: Settings, model_ref: str):
    from models.registry import ModelRegistry
    from stream.inference import load_classifier  # served exactly as the worker serves it

    return load_classifier(str(ModelRegistry(settings.registry_dir).resolve(model_ref)), settings)


# --- models -----------------------------------------------------------------------------------------------------------


@cli.group()
def models() -> None:
    """List, inspect, promote, roll back and prune model versions in the registry."""


@models.command("list")
@click.pass_obj
def models_list(settings: Settings) -> None:
    """Print every version (oldest first) as a JSON line."""
    from models.registry import ModelRegistry

    for info in ModelRegistry(settings.registry_dir).versions():
        _emit(info.to_dict())


@models.command("current")
@click.pass_obj
def models_current(settings: Settings) -> None:
    """Print the current version."""
    from models.registry import ModelRegistry, RegistryError

    registry = ModelRegistry(settings.registry_dir)
    version = registry.current_version()
    if version is None:
        raise RegistryError(f"no current model in {registry.root}")
    _emit(registry.info(version).to_dict())


announce_option = click.option(
    "--announce/--no-announce",
    default=True,
    show_default=True,
    help="Tell running workers on $EMOSTREAM_TOPIC_MODELS so they swap the model in.",
)


@models.command("promote")
@click.argument("version")
@announce_option
@click.pass_obj
def models_promote(settings: Settings, version: str, announce: bool) -> None:
    """Verify VERSION and make it current."""
    from models.registry import ModelRegistry

    info = ModelRegistry(settings.registry_dir).promote(version)
    log.info("promoted", version=info.version)
    _announce(settings, info, announce)
    _emit(info.to_dict())


@models.command("rollback")
@announce_option
@click.pass_obj
def models_rollback(settings: Settings, announce: bool) -> None:
    """Make the previously current version current again."""
    from models.registry import ModelRegistry

    info = ModelRegistry(settings.registry_dir).rollback()
    log.info("rolled back", version=info.version)
    _announce(settings, info, announce)
    _emit(info.to_dict())


@models.command("prune")
@click.pass_obj
def models_prune(settings: Settings) -> None:
    """Remove versions no longer needed (see EMOSTREAM_REGISTRY_KEEP and EMOSTREAM_REGISTRY_KEEP_REJECTED)."""
    from models.registry import ModelRegistry

    removed = ModelRegistry(settings.registry_dir).prune(settings.registry_keep, settings.registry_keep_rejected)
    _emit({"removed": removed})


def _announce(settings: Settings, info, announce: bool) -> None:
    """Announce the new current version to the workers; the registry change stands even if the broker is away."""
    if not announce:
        return
    import asyncio

    from stream.announcements import announce as publish

    try:
        asyncio.run(publish(settings.broker_url, settings.topic_models, info, timeout=5))
        log.info("announced", version=info.version, topic=settings.topic_models)
    except Exception as exc:  # the broker is unreachable or refused: workers pick `current` up when they restart
        log.warning(
            "not announced: running workers keep their model until they restart",
            version=info.version,
            broker=settings.broker_url,
            error=repr(exc),
        )


# --- the stream ---------------------------------------------------------------------------------------------------


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("-l", "--loglevel", help="Faust's log level [default: $EMOSTREAM_LOG_LEVEL].")
@click.pass_obj
def worker(settings: Settings, loglevel: str | None) -> None:
    """Run the stream worker (the same as `faust -A stream.app worker -l info`)."""
    from models.registry import ModelRegistry

    ModelRegistry(settings.registry_dir).resolve(settings.model)  # fail now, clearly, if there is nothing to serve
    from stream.app import app

    level = (loglevel or settings.log_level).lower()
    level = {"warning": "warn", "critical": "crit"}.get(level, level)  # Faust's names
    sys.argv = ["emostream", "worker", "-l", level]
    app.main()


@cli.command()
@click.option("--port", type=int, default=9092, show_default=True, help="Port on 127.0.0.1.")
def broker(port: int) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, memory-only) until Ctrl-C."""
    import signal

    from stream.broker import EmbeddedBroker

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGINT, stop)  # Ctrl-C and SIGTERM both stop the broker cleanly, exit status 0
    signal.signal(signal.SIGTERM, stop)
    try:
        with EmbeddedBroker(port, quiet=False) as running:
            log.info("broker running", url=running.url, note="memory-only: a restart loses every topic")
            running.process.wait()
    finally:
        log.info("broker stopped", port=port)


@cli.command()
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file of records, one per line (jsonl).",
)
@click.option("--rate", type=float, help="Records per second (default: as fast as possible).")
@click.option("--topic", help="Target topic [default: $EMOSTREAM_TOPIC_TEXTS].")
@click.pass_obj
def produce(settings: Settings, path: Path, rate: float | None, topic: str | None) -> None:
    """Replay a jsonl file into the input topic, one record per line."""
    import asyncio

    from stream.tools import produce_file

    sent = asyncio.run(produce_file(settings.broker_url, topic or settings.topic_texts, path, rate))
    _emit({"sent": sent, "topic": topic or settings.topic_texts})


@cli.command()
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record instead of new ones.")
@click.option("--limit", type=int, help="Stop after N records.")
@click.option("--idle-timeout", type=float, help="Stop when nothing arrived for this many seconds.")
@click.pass_obj
def tail(settings: Settings, topic: str, from_beginning: bool, limit: int | None, idle_timeout: float | None) -> None:
    """Print TOPIC's records as they arrive (TOPIC may be texts, labelled, aggregates or dlq)."""
    import asyncio

    from stream.tools import tail_topic

    name = getattr(settings, f"topic_{topic}", topic) if topic.isidentifier() else topic
    asyncio.run(
        tail_topic(settings.broker_url, name, from_beginning=from_beginning, limit=limit, idle_timeout=idle_timeout)
    )


@cli.command()
@click.option("--once", is_flag=True, help="Run one cycle now on the feedback there is, then exit.")
@click.pass_obj
def trainer(settings: Settings, once: bool) -> None:
    """Run the retraining side job: cycles on new feedback, the promotion gate, announcements to workers."""
    import asyncio

    from stream.trainer import Skipped, TrainerJob

    job = TrainerJob(settings)
    if once:
        result = asyncio.run(job.run_once(force=True))
        _emit(
            {"ran": False, "reason": result.reason}
            if isinstance(result, Skipped)
            else {
                "ran": True,
                "version": result.version.version,
                "promoted": result.decision.promoted,
                "reason": result.decision.reason,
                "new_labels": result.new_labels,
                "gate": result.decision.to_dict(),
            }
        )
        return
    asyncio.run(job.run_forever())


@cli.command()
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path(__file__).resolve().parent.parent / "docs" / "sample_events.jsonl",
    show_default=True,
)
@click.pass_obj
def demo(settings: Settings, path: Path) -> None:
    """Show the whole job on the embedded broker: train a model if needed, start broker and worker, send sample
    events, print labelled events, dead letters and closed aggregate windows, then stop everything."""
    from models.registry import ModelRegistry
    from stream.demo import run_demo

    if ModelRegistry(settings.registry_dir).current_version() is None and settings.model == "current":
        click.echo(
            "No model in the registry yet: training one with the quick recipe first (about 5 minutes on 2 CPU cores).",
            err=True,
        )
        click.get_current_context().invoke(train, recipe="quick", register=True)
    run_demo(settings, path)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="emostream")
