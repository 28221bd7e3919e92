"""The worker's web views: ``GET /aggregates`` (open windows held by this worker), ``GET /stats`` (counters, the
partitions this worker holds, the sources under extra review), ``GET /metrics`` (Prometheus), ``GET /health`` and
``GET /ready`` (for container and Kubernetes probes: 200 or 503 with the reasons)."""

from __future__ import annotations

import time
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted

from stream.agents import WorkerParts
from stream.aggregation import KeyState
from stream.metrics import CONTENT_TYPE, exposition


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

    @app.page("/metrics")
    async def metrics_view(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        return web.bytes(exposition(parts.metrics), content_type=CONTENT_TYPE)

    @app.page("/health")
    async def health_view(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        # The event loop answers (this view runs on it); the inference processes must run too.
        alive = server.processes_alive()
        healthy = all(alive)
        return web.json({"healthy": healthy, "inference_processes_alive": alive}, status=200 if healthy else 503)

    @app.page("/ready")
    async def ready_view(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        problems = readiness_problems(app, server, parts.topics.texts.get_topic_name())
        return web.json({"ready": not problems, "problems": problems}, status=503 if problems else 200)

    @app.page("/stats")
    async def stats_view(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
        version = server.loaded.version if server.is_loaded else None
        boosted = sorted(parts.boosts.active(int(time.time() * 1000))) if parts.boosts else []
        return web.json({**stats.to_dict(), "model_version": version, "assigned": assigned, "review_boosted": boosted})


def readiness_problems(app: faust.App, server: Any, input_topic: str) -> list[str]:
    """Why the worker cannot take traffic now (empty when it can): no model yet, a rebalance under way, no input
    partition held."""
    problems = []
    if not server.is_loaded:
        problems.append("model not loaded")
    if app.rebalancing:
        problems.append("rebalancing")
    try:
        held = [tp for tp in app.consumer.assignment() if tp.topic == input_topic]
    except ConsumerNotStarted:
        held = []
    if not held:
        problems.append(f"no partition of {input_topic} assigned")
    return problems
