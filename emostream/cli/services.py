"""The running parts: ``emostream worker``, ``broker``, ``produce``, ``tail``, ``dashboard``, ``trainer``, ``demo``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import structlog

from emostream.cli.common import emit
from emostream.cli.training import run_training
from emostream.settings import Settings

log = structlog.get_logger("emostream")


@click.command()
@click.option("-l", "--loglevel", help="Faust's log level [default: $EMOSTREAM_LOG_LEVEL].")
@click.pass_obj
def worker(settings: Settings, loglevel: str | None) -> None:
    """Run the stream worker (the same as `faust -A stream.app worker -l info`)."""
    from models.registry import ModelRegistry

    ModelRegistry(settings.registry_dir).resolve(settings.model)  # fail now, clearly, if there is nothing to serve
    check_brokers_before_starting(settings)
    from stream.app import app, run_worker

    run_worker(app, loglevel or settings.log_level)


def check_brokers_before_starting(settings: Settings) -> None:
    """End with a clear error if the brokers refuse this service's TLS or SASL settings (Faust would retry them
    forever); brokers that are only away are logged and left to the clients' own retries."""
    import asyncio

    from stream.kafka.connection import KafkaConnection
    from stream.kafka.refusals import BrokerRefused, check_brokers

    try:
        asyncio.run(check_brokers(KafkaConnection.of(settings)))
    except BrokerRefused as refused:
        if refused.permanent:
            raise
        log.warning("brokers not reachable yet: starting anyway, the clients keep trying", reason=str(refused))


@click.command()
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


@click.command()
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

    from stream.kafka.connection import KafkaConnection
    from stream.tools import produce_file

    sent = asyncio.run(produce_file(KafkaConnection.of(settings), topic or settings.topic_texts, path, rate))
    emit({"sent": sent, "topic": topic or settings.topic_texts})


@click.command()
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record instead of new ones.")
@click.option("--limit", type=int, help="Stop after N records.")
@click.option("--idle-timeout", type=float, help="Stop when nothing arrived for this many seconds.")
@click.pass_obj
def tail(settings: Settings, topic: str, from_beginning: bool, limit: int | None, idle_timeout: float | None) -> None:
    """Print TOPIC's records as they arrive (TOPIC may be texts, labelled, aggregates or dlq)."""
    import asyncio

    from stream.kafka.connection import KafkaConnection
    from stream.tools import tail_topic

    name = getattr(settings, f"topic_{topic}", topic) if topic.isidentifier() else topic
    asyncio.run(
        tail_topic(
            KafkaConnection.of(settings), name, from_beginning=from_beginning, limit=limit, idle_timeout=idle_timeout
        )
    )


@click.command()
@click.option("--host", help="Address to bind [default: $EMOSTREAM_DASHBOARD_HOST, 127.0.0.1].")
@click.option("--port", type=int, help="Port [default: $EMOSTREAM_DASHBOARD_PORT, 8080].")
@click.pass_obj
def dashboard(settings: Settings, host: str | None, port: int | None) -> None:
    """Serve a live web page of the stream (emotion mix per source, feed, dead letters, drift, model) until Ctrl-C."""
    import asyncio
    import contextlib

    from stream.dashboard.service import run_dashboard

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_dashboard(settings, host or settings.dashboard_host, port or settings.dashboard_port))


@click.command()
@click.option("--once", is_flag=True, help="Run one cycle now on the feedback there is, then exit.")
@click.pass_obj
def trainer(settings: Settings, once: bool) -> None:
    """Run the retraining side job: cycles on new feedback, the promotion gate, announcements to workers."""
    import asyncio

    from stream.retraining_job import RetrainingJob, Skipped

    job = RetrainingJob(settings)
    check_brokers_before_starting(settings)
    if once:
        result = asyncio.run(job.run_once(force=True))
        emit(
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


@click.command()
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path(__file__).resolve().parents[2] / "docs" / "sample_events.jsonl",
    show_default=True,
)
@click.option(
    "--stay/--no-stay",
    default=None,
    help="Keep broker, worker and dashboard running after the printout until Ctrl-C [default: on a terminal].",
)
@click.pass_obj
def demo(settings: Settings, path: Path, stay: bool | None) -> None:
    """Show the whole job on the embedded broker: train a model if needed, start broker, worker and dashboard, send
    sample events, print labelled events, dead letters and closed aggregate windows; then keep running for the
    dashboard until Ctrl-C (on a terminal; --no-stay: stop at once)."""
    from models.registry import ModelRegistry
    from stream.demo import run_demo

    if ModelRegistry(settings.registry_dir).current_version() is None and settings.model == "current":
        click.echo(
            "No model in the registry yet: training one with the quick recipe first (about 5 minutes on 2 CPU cores).",
            err=True,
        )
        emit(run_training(settings, recipe="quick", register=True))
    run_demo(settings, path, stay=sys.stdout.isatty() if stay is None else stay)
