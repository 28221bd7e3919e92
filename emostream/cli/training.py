"""``emostream train``, ``evaluate`` and ``predict``: fine-tune a model, score it, label texts."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import structlog

from emostream.cli.common import emit, model_option
from emostream.cli.versions import announce_version
from emostream.settings import Settings

if TYPE_CHECKING:
    from models.training_run import TrainingRun

log = structlog.get_logger("emostream")


@click.command()
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
@click.option(
    "--pooling",
    type=click.Choice(["cls", "mean"]),
    help="What the head reads: the [CLS] state or the tokens' mean (BERT encoders). [default: the recipe's]",
)
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
    emit(
        run_training(
            settings,
            data=data,
            recipe=recipe,
            base=base,
            out=out,
            register=register,
            promote=promote,
            skip_invalid=skip_invalid,
            seed=seed,
            **overrides,
        )
    )


def run_training(
    settings: Settings,
    *,
    data: str | None = None,
    recipe: str = "quick",
    base: str | None = None,
    out: Path | None = None,
    register: bool = False,
    promote: bool = False,
    skip_invalid: bool = False,
    seed: int = 42,
    **overrides: Any,
) -> dict[str, Any]:
    """What ``emostream train`` does (also the demo's first step): a training run (``models.training_run``), then
    the run folder written or registered (and announced); returns the summary it prints."""
    from models.training_run import train_and_score

    run = train_and_score(
        data or str(Path(settings.data_dir) / "emotion"),
        recipe=recipe,
        base=base or settings.base_model,
        device=settings.device,
        seed=seed,
        skip_invalid=skip_invalid,
        **overrides,
    )
    return {**_save_run(settings, run, out, register=register, promote=promote), **run.summary()}


def _save_run(
    settings: Settings, run: TrainingRun, out: Path | None, *, register: bool, promote: bool
) -> dict[str, Any]:
    """Write the run folder (to ``out``, or ``runs/<time>-<recipe>``); with ``register``, register it
    (``models.release``) and announce it to running workers if it became current."""
    from models.artifacts import export_run
    from models.registry import ModelRegistry
    from models.release import register_run

    result, data, test_metrics = run.result, run.data, run.test_metrics
    if not register:
        out = out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{result.config.recipe}"
        return {"out": str(export_run(result, out, data_source=data, test_metrics=test_metrics))}
    registry = ModelRegistry(settings.registry_dir)
    previous = registry.current_version() if registry.root.is_dir() else None
    info = register_run(registry, result, data_source=data, test_metrics=test_metrics, promote=promote, out=out)
    log.info("registered", version=info.version, current=info.is_current)
    announce_version(settings, info, previous)
    return {
        "out": str(out) if out else None,
        "version": info.version,
        "current": info.is_current,
        "path": str(info.path),
    }


@click.command()
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
    emit(metrics)


@click.command()
@model_option
@click.argument("texts", nargs=-1)
@click.pass_obj
def predict(settings: Settings, model_ref: str, texts: tuple[str, ...]) -> None:
    """Label TEXTS (or one text per stdin line); print one JSON line per text."""
    classifier = _load_classifier(settings, model_ref)
    chunks = [list(texts)] if texts else _stdin_chunks(settings.batch_size * 4)
    for chunk in chunks:
        for text, prediction in zip(chunk, classifier.predict(chunk), strict=True):
            emit({"text": text, **prediction.to_dict()})


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
    from models.classifier import load_classifier  # served exactly as the worker serves it
    from models.registry import ModelRegistry

    return load_classifier(str(ModelRegistry(settings.registry_dir).resolve(model_ref)), settings)
