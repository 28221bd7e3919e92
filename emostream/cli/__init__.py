"""The ``emostream`` command line: train, evaluate, predict and manage model versions.

Results go to stdout as JSON (one object, or one line per text for ``predict``); progress and logs go to stderr.
Known failures (bad data, bad settings, a missing or corrupt model) end with ``Error: ...`` and exit status 1.
Heavy imports (torch, transformers) happen inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import click

from emostream.cli.common import ProjectGroup
from emostream.cli.services import broker, dashboard, demo, produce, tail, trainer, worker
from emostream.cli.training import evaluate, predict, train
from emostream.cli.versions import models
from emostream.logs import configure_logging
from emostream.settings import Settings, SettingsError


@click.group(cls=ProjectGroup)
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


for command in (train, evaluate, predict, models, worker, broker, produce, tail, dashboard, trainer, demo):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="emostream")
