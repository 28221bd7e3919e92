"""The retraining job's own counters and its small web server: ``GET /metrics`` (Prometheus) and ``GET /health``.

The trainer is a plain asyncio process (``stream.retraining_job``), not a Faust app, so it serves these itself with
aiohttp on ``EMOSTREAM_TRAINER_PORT``. A cycle runs in a thread, so the event loop keeps answering scrapes and probes
while a model trains.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from stream.metrics import CONTENT_TYPE, exposition, labelled_counter


@dataclass
class TrainerStats:
    """What the retraining job did since it started."""

    checks: int = 0  # looks at the feedback topic, whatever they decided
    check_failures: int = 0  # checks or cycles that raised (logged; tried again at the next poll)
    consecutive_failures: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # checks that ran no cycle, by reason
    cycles: int = 0
    decisions: dict[str, int] = field(default_factory=dict)  # the promotion gate's decisions: promoted / rejected
    cycle_running: bool = False
    last_cycle_seconds: float | None = None
    last_cycle_finished: float | None = None  # unix time
    feedback_examples: int = 0  # valid examples on the feedback topic at the last check
    feedback_backlog: int = 0  # of those, the ones no cycle has trained on yet
    dead_letters: int = 0  # invalid feedback records sent to the dead-letter topic
    current_version: str | None = None

    def count_skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def count_cycle(self, promoted: bool, seconds: float) -> None:
        outcome = "promoted" if promoted else "rejected"
        self.decisions[outcome] = self.decisions.get(outcome, 0) + 1
        self.cycles += 1
        self.last_cycle_seconds = seconds
        self.last_cycle_finished = time.time()
        self.feedback_backlog = 0


class TrainerCollector:
    """Prometheus families from a :class:`TrainerStats`, built when scraped."""

    def __init__(self, stats: TrainerStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        for name, documentation, value in (
            ("emostream_trainer_checks", "Checks of the feedback topic.", stats.checks),
            (
                "emostream_trainer_check_failures",
                "Checks or cycles that failed (tried again later).",
                stats.check_failures,
            ),
            ("emostream_trainer_cycles", "Retraining cycles run to the gate's decision.", stats.cycles),
            ("emostream_trainer_dead_letters", "Invalid feedback records dead-lettered.", stats.dead_letters),
        ):
            yield CounterMetricFamily(name, documentation, value=value)
        yield labelled_counter(
            "emostream_trainer_skipped_checks", "Checks that ran no cycle, by reason.", "reason", stats.skipped
        )
        yield labelled_counter(
            "emostream_trainer_gate_decisions", "Promotion gate decisions, by outcome.", "outcome", stats.decisions
        )
        gauges = [
            ("emostream_trainer_feedback_examples", "Valid examples on the feedback topic.", stats.feedback_examples),
            (
                "emostream_trainer_feedback_backlog",
                "Valid feedback examples not trained on yet.",
                stats.feedback_backlog,
            ),
            ("emostream_trainer_cycle_running", "1 while a cycle trains.", int(stats.cycle_running)),
        ]
        if stats.last_cycle_finished is not None:
            gauges += [
                ("emostream_trainer_last_cycle_seconds", "Duration of the last cycle.", stats.last_cycle_seconds),
                (
                    "emostream_trainer_last_cycle_timestamp_seconds",
                    "Unix time the last cycle finished.",
                    stats.last_cycle_finished,
                ),
            ]
        for name, documentation, value in gauges:
            yield GaugeMetricFamily(name, documentation, value=value)
        info = GaugeMetricFamily(
            "emostream_trainer_model_info", "The registry's current version (value 1).", labels=["version"]
        )
        if stats.current_version is not None:
            info.add_metric([stats.current_version], 1)
        yield info


def web_app(stats: TrainerStats) -> web.Application:
    """``/metrics`` and ``/health`` over ``stats``."""
    collector = TrainerCollector(stats)

    async def metrics_view(request: web.Request) -> web.Response:
        return web.Response(body=exposition(collector), headers={"Content-Type": f"{CONTENT_TYPE}; charset=utf-8"})

    async def health_view(request: web.Request) -> web.Response:
        # Answering at all is the health: the loop runs, and cycles run in a thread beside it. A broker outage makes
        # checks fail, which restarting the trainer would not cure: it is reported, not turned into a failed probe.
        return web.json_response(
            {
                "healthy": True,
                "cycle_running": stats.cycle_running,
                "consecutive_failures": stats.consecutive_failures,
            }
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/health", health_view)
    return app


async def serve(stats: TrainerStats, host: str, port: int) -> web.AppRunner:
    """Start serving ``stats`` on ``host:port``; the caller cleans the returned runner up."""
    runner = web.AppRunner(web_app(stats), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
