"""What every command of the ``emostream`` command line shares: errors as one line, JSON output, the model option."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from emostream.settings import SettingsError


class ProjectGroup(click.Group):
    """A click group that turns the project's own error types into a one-line ``Error: ...`` instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from models.errors import DataError, RegistryError, TrainingConfigError
        from stream.kafka.refusals import BrokerRefused
        from stream.tools import NotDelivered

        try:
            return super().invoke(ctx)
        except (
            DataError,
            RegistryError,
            SettingsError,
            TrainingConfigError,
            BrokerRefused,
            NotDelivered,
            OSError,
        ) as exc:
            raise click.ClickException(str(exc)) from exc


model_option = click.option(
    "--model",
    "model_ref",
    default="current",
    show_default=True,
    help="A checkpoint folder, a registry version (v0003) or `current`.",
)


def emit(value: Any) -> None:
    """Write ``value`` to stdout as one JSON line."""
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
    sys.stdout.flush()
