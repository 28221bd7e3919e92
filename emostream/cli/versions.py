"""``emostream models ...``: list, inspect, promote, roll back and prune versions in the model registry."""

from __future__ import annotations

import click
import structlog

from emostream.cli.common import emit
from emostream.settings import Settings

log = structlog.get_logger("emostream")


@click.group()
def models() -> None:
    """List, inspect, promote, roll back and prune model versions in the registry."""


@models.command("list")
@click.pass_obj
def models_list(settings: Settings) -> None:
    """Print every version (oldest first) as a JSON line."""
    from models.registry import ModelRegistry

    for info in ModelRegistry(settings.registry_dir).versions():
        emit(info.to_dict())


@models.command("current")
@click.pass_obj
def models_current(settings: Settings) -> None:
    """Print the current version."""
    from models.registry import ModelRegistry, RegistryError

    registry = ModelRegistry(settings.registry_dir)
    version = registry.current_version()
    if version is None:
        raise RegistryError(f"no current model in {registry.root}")
    emit(registry.info(version).to_dict())


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

    registry = ModelRegistry(settings.registry_dir)
    previous = registry.current_version()
    info = registry.promote(version)
    log.info("promoted", version=info.version)
    if announce:
        announce_version(settings, info, previous)
    emit(info.to_dict())


@models.command("rollback")
@announce_option
@click.pass_obj
def models_rollback(settings: Settings, announce: bool) -> None:
    """Make the previously current version current again."""
    from models.registry import ModelRegistry

    registry = ModelRegistry(settings.registry_dir)
    previous = registry.current_version()
    info = registry.rollback()
    log.info("rolled back", version=info.version)
    if announce:
        announce_version(settings, info, previous)
    emit(info.to_dict())


@models.command("prune")
@click.pass_obj
def models_prune(settings: Settings) -> None:
    """Remove versions no longer needed (see EMOSTREAM_REGISTRY_KEEP and EMOSTREAM_REGISTRY_KEEP_REJECTED)."""
    from models.registry import ModelRegistry

    removed = ModelRegistry(settings.registry_dir).prune(settings.registry_keep, settings.registry_keep_rejected)
    emit({"removed": removed})


def announce_version(settings: Settings, info, previous: str | None) -> None:
    """Tell running workers if ``info`` became the current version (``previous`` was current before); the registry
    change stands even if the broker is away (``stream.announcements.announce_current`` logs it)."""
    import asyncio

    from stream.announcements import announce_current
    from stream.kafka.connection import KafkaConnection

    asyncio.run(announce_current(KafkaConnection.of(settings), settings.topic_models, info, previous))
