"""The worker's web views: ``GET /aggregates`` (open windows held by this worker) and ``GET /stats`` (counters and
the partitions this worker holds)."""

from __future__ import annotations

import faust

from stream.agents import WorkerStats
from stream.aggregation import WindowAggregator
from stream.serving import ModelServer


def register_views(
    app: faust.App, state: faust.TableT, aggregator: WindowAggregator, stats: WorkerStats, server: ModelServer
) -> None:
    """Attach the views to ``app``'s web server."""

    @app.page("/aggregates")
    async def aggregates(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        keys = {}
        for key, value in state.items():
            keys[key] = {
                "watermark": value["watermark"],
                "late": value["late"],
                "open_windows": aggregator.open_windows(value, key),
            }
        return web.json(keys)

    @app.page("/stats")
    async def stats_view(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
        version = server.loaded.version if server.is_loaded else None
        return web.json({**stats.to_dict(), "model_version": version, "assigned": assigned})
