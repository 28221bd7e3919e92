"""The worker app's Faust worker: at quiet log levels, debug logging stays off (Faust's spinner would turn it on)."""

from __future__ import annotations

import asyncio
import logging

from emostream.settings import Settings
from stream.app import create_app


def test_a_worker_at_warn_level_does_not_turn_debug_logging_on(tmp_path):
    saved = logging.root.level, list(logging.root.handlers)

    async def set_up_logging() -> bool:
        app = create_app(Settings(broker_url="kafka://127.0.0.1:9", state_dir=tmp_path))
        worker = app.Worker(loglevel="warn", loop=asyncio.get_running_loop())
        worker._setup_logging()
        return logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)

    try:
        assert asyncio.run(set_up_logging()) is False
    finally:
        logging.root.setLevel(saved[0])
        logging.root.handlers[:] = saved[1]
