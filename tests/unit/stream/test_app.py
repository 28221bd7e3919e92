"""The worker app's Faust worker: at quiet log levels, debug logging stays off (Faust's spinner would turn it on)."""

from __future__ import annotations

import asyncio
import logging

from emostream.settings import Settings
from stream.app import create_app


def test_a_worker_at_warn_level_does_not_turn_debug_logging_on(tmp_path):
    # The hook Faust's worker calls on the root logger once logging is set up, given a logger of our own so that the
    # test leaves the process's logging as it found it.
    probe = logging.Logger("probe", logging.WARNING)
    probe.addHandler(logging.NullHandler())

    async def set_up_logging() -> None:
        app = create_app(Settings(broker_url="kafka://127.0.0.1:9", state_dir=tmp_path))
        worker = app.Worker(loglevel="warn", loop=asyncio.get_running_loop())
        worker.on_setup_root_logger(probe, logging.WARNING)

    asyncio.run(set_up_logging())
    assert not probe.isEnabledFor(logging.DEBUG)
