"""The dashboard as ``emostream dashboard`` runs it: the web server and the topic feeds in one event loop."""

from __future__ import annotations

import ipaddress
import logging

import structlog

from emostream.logs import RepeatFilter
from emostream.settings import Settings
from stream.dashboard.feeds import DashboardFeeds, DashboardTopics
from stream.dashboard.server import serve, web_app
from stream.dashboard.state import DashboardState
from stream.kafka.connection import KafkaConnection
from stream.kafka.metadata import stop_auto_create

log = structlog.get_logger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def run_dashboard(settings: Settings, host: str, port: int) -> None:
    """Serve the dashboard on ``host:port`` until cancelled."""
    stop_auto_create()  # a reader of the public topics must not create them (with the broker's defaults) by asking
    for handler in logging.getLogger().handlers:  # "topic not found" every metadata refresh until the worker runs
        handler.addFilter(RepeatFilter(interval=300.0))
    token = settings.dashboard_token
    if not token and not is_loopback(host):
        log.warning(
            "the dashboard is reachable from other machines without a token: set EMOSTREAM_DASHBOARD_TOKEN",
            host=host,
        )
    state = DashboardState()
    runner = await serve(web_app(state, token), host, port)
    log.info("dashboard running", url=f"http://{host}:{port}/", token_required=bool(token))
    try:
        await DashboardFeeds(KafkaConnection.of(settings), DashboardTopics.of(settings), state).run()
    finally:
        await runner.cleanup()
