"""The worker's Kafka consumer takes its fetch wait from the settings (Faust hard-codes 1.5 s)."""

from __future__ import annotations

import asyncio

from emostream.settings import Settings
from stream.app import create_app


def test_the_worker_consumer_uses_the_configured_fetch_wait(tmp_path):
    async def build() -> int:
        app = create_app(Settings(broker_url="kafka://127.0.0.1:9", fetch_wait=0.25, state_dir=tmp_path))
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    assert asyncio.run(build()) == 250
