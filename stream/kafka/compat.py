"""The exact versions of faust-streaming, mode-streaming and aiokafka that ``stream.kafka`` was written and tested
against, and a start-up check that every private name it overrides or reads is still there.

The overrides (``stream.kafka.consumer``, ``stream.kafka.worker``) close data-loss holes by replacing private methods
and reading private attributes; a minor release could rename one and silently bring the loss back. So the versions are
pinned exactly in ``pyproject.toml``, and a worker refuses to start, naming the pin, when another version is installed
or a name is missing. Moving a pin: run ``tests/unit/stream/kafka`` (the ``upstream`` tests say which upstream bugs
are still there, so which overrides are still needed) and the integration suite, then change ``PINNED`` and
``pyproject.toml`` together.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from importlib import metadata
from typing import Any

PINNED = {"faust-streaming": "0.15.3", "mode-streaming": "0.7.1", "aiokafka": "0.14.0"}


class IncompatibleKafkaLibraries(RuntimeError):
    """Faust, mode or aiokafka is not the version, or lacks the internals, that ``stream.kafka`` relies on."""


def _pins() -> str:
    return ", ".join(f"{name}=={version}" for name, version in PINNED.items())


def _required() -> list[tuple[Any, str, str]]:
    """(owner, private name, what relies on it) for every class attribute the overrides replace or call."""
    import faust
    from faust.stores.base import Store
    from faust.tables.base import Collection
    from faust.transport.drivers import aiokafka as faust_aiokafka

    thread = faust_aiokafka.AIOKafkaConsumerThread
    consumer = faust_aiokafka.Consumer
    return [
        (thread, "getmany", "a fixed set of partitions per fetch"),
        (thread, "_create_worker_consumer", "the fetch wait setting"),
        (thread, "seek_to_committed", "uncommitted partitions from the beginning"),
        (thread, "seek_to_beginning", "uncommitted partitions from the beginning"),
        (thread, "_highwaters", "changelog ends confirmed by a fetch"),
        (thread, "_create_client_consumer", "changelog ends confirmed by a fetch"),
        (consumer, "_new_consumer_thread", "the worker's consumer thread"),
        (consumer, "on_partitions_revoked", "a revocation commits what was processed"),
        (consumer, "wait_empty", "a revocation commits what was processed"),
        (consumer, "stop_flow", "a revocation commits what was processed"),
        (consumer, "_new_offset", "no commit past a record in flight"),
        (consumer, "_is_changelog_tp", "stream partitions held back until the flow resumes"),
        (consumer, "resume_partitions", "stream partitions held back until the flow resumes"),
        (consumer, "pause_partitions", "stream partitions held back until the flow resumes"),
        (consumer, "resume_flow", "stream partitions held back until the flow resumes"),
        (faust_aiokafka.Transport, "Consumer", "the worker's consumer"),
        (faust.App, "_new_transport", "the worker's transport"),
        (faust.Worker, "on_setup_root_logger", "repeated warnings held back"),
        (Collection, "data", "table writes with batched changelog records"),
        (Collection, "changelog_topic", "table writes with batched changelog records"),
        (Store, "set_persisted_offset", "table writes with batched changelog records"),
    ]


def check_installed() -> None:
    """Fail with :class:`IncompatibleKafkaLibraries` unless the pinned versions are installed and every overridden
    private name exists with the signature the overrides expect."""
    problems = []
    for name, version in PINNED.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "none"
        if installed != version:
            problems.append(f"{name} {installed} is installed")
    for owner, name, user in _required():
        if not hasattr(owner, name):
            problems.append(f"{owner.__module__}.{owner.__qualname__}.{name} is gone ({user})")
    from aiokafka import client as aiokafka_client
    from aiokafka.protocol.metadata import MetadataRequest
    from faust.transport.drivers import aiokafka as faust_aiokafka

    if not isinstance(getattr(aiokafka_client, "MetadataRequest", None), type):
        problems.append("aiokafka.client.MetadataRequest is gone (no topic auto-creation)")
    elif "allow_auto_topic_creation" not in inspect.signature(MetadataRequest).parameters:
        problems.append("aiokafka's MetadataRequest takes no allow_auto_topic_creation (no topic auto-creation)")
    getmany = getattr(faust_aiokafka.AIOKafkaConsumerThread, "getmany", None)
    if getmany is not None and list(inspect.signature(getmany).parameters) != ["self", "active_partitions", "timeout"]:
        problems.append("AIOKafkaConsumerThread.getmany takes other arguments (a fixed set of partitions per fetch)")
    _raise(problems)


def require_attributes(obj: object, names: Iterable[str], user: str) -> None:
    """Fail unless ``obj`` has every attribute in ``names`` (instance state the overrides read or write)."""
    missing = [name for name in names if not hasattr(obj, name)]
    _raise([f"{type(obj).__module__}.{type(obj).__qualname__} has no {name} ({user})" for name in missing])


def _raise(problems: list[str]) -> None:
    if problems:
        raise IncompatibleKafkaLibraries(
            "the worker's Kafka fixes (stream/kafka/) were written and tested against "
            f"{_pins()} (pinned in pyproject.toml): {'; '.join(problems)}. "
            "Install the pinned versions (pip install -e .), or see stream/kafka/compat.py to move the pin."
        )
