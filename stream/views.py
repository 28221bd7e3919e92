"""The worker's web views: ``GET /aggregates`` (open windows held by this worker) and ``GET /stats`` (counters, the
partitions this worker holds, the sources under extra review)."""

from __future__ import annotations

import time

import faust

from stream.agents import WorkerParts
from stream.aggregation import KeyState


def register_views(app: faust.App, parts: WorkerParts) -> None:
    """Attach the views to ``app``'s web server."""
    state, aggregator, stats, server = parts.state, parts.aggregator, parts.stats, parts.server

    @app.page("/aggregates")
    async def aggregates(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        keys = {}
        for key, value in state.items():
            held = KeyState.from_json(value)
            keys[key] = {
                "watermark": held.watermark,
                "late": held.late,
                "open_windows": aggregator.open_windows(held, key),
            }
        return web.json(keys)

    @app.page("/stats")
    async def stats_view(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
        version = server.loaded.version if server.is_loaded else None
        boosted = sorted(parts.boosts.active(int(time.time() * 1000))) if parts.boosts else []
        return web.json({**stats.to_dict(), "model_version": version, "assigned": assigned, "review_boosted": boosted})
