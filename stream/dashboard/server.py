"""The dashboard's web server (aiohttp): the page and its static files, ``GET /api/state`` (the snapshot as JSON) and
``GET /api/stream`` (Server-Sent Events: the snapshot whenever it changed, at most once a second).

Everything is served from the package (no CDN: the page works offline) under a strict Content-Security-Policy: no
inline script, nothing from elsewhere. With a token set, every request must carry it (``Authorization: Bearer``, or
the cookie set by opening the page once with ``?token=...``); the comparison takes constant time.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from aiohttp import web

from stream.dashboard.state import DashboardState

STATIC = Path(__file__).with_name("static")
FILES = {"app.js": "application/javascript", "app.css": "text/css"}
COOKIE = "emostream_dashboard_token"
PUSH_EVERY_S = 1.0
KEEPALIVE_S = 15.0
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Snapshots:
    """The state's snapshot, built once per change however many browsers watch."""

    def __init__(self, state: DashboardState) -> None:
        self.state = state
        self._version = -1
        self._body = b""

    def current(self) -> tuple[int, bytes]:
        if self.state.version != self._version:
            self._version = self.state.version
            self._body = orjson.dumps(self.state.snapshot(time.time()))
        return self._version, self._body


def web_app(state: DashboardState, token: str = "") -> web.Application:
    """The dashboard over ``state``; ``token``: asked of every request when not empty."""
    snapshots = Snapshots(state)

    async def page(request: web.Request) -> web.StreamResponse:
        if token and request.query.get("token"):  # opened with ?token=: keep it in a cookie, out of the address bar
            redirect = web.HTTPFound("/")
            redirect.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
            raise redirect
        return web.FileResponse(STATIC / "index.html", headers={"Content-Type": "text/html; charset=utf-8"})

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in FILES:
            raise web.HTTPNotFound()
        return web.FileResponse(STATIC / name, headers={"Content-Type": f"{FILES[name]}; charset=utf-8"})

    async def api_state(request: web.Request) -> web.Response:
        return web.Response(body=snapshots.current()[1], content_type="application/json")

    async def api_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        sent, quiet_since = -1, time.monotonic()
        try:
            while request.transport is not None and not request.transport.is_closing():  # until the browser leaves
                version, body = snapshots.current()
                if version != sent:
                    await response.write(b"data: " + body + b"\n\n")
                    sent, quiet_since = version, time.monotonic()
                elif time.monotonic() - quiet_since > KEEPALIVE_S:  # proxies close streams that stay silent
                    await response.write(b": keep-alive\n\n")
                    quiet_since = time.monotonic()
                await asyncio.sleep(PUSH_EVERY_S)
        except ConnectionResetError:
            pass
        return response

    app = web.Application(middlewares=[_headers_middleware(), *([_token_middleware(token)] if token else [])])
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/api/state", api_state)
    app.router.add_get("/api/stream", api_stream)
    return app


def _headers_middleware() -> Callable:
    @web.middleware
    async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return headers


def _token_middleware(token: str) -> Callable:
    expected = token.encode()

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        offered = [
            header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else "",
            request.cookies.get(COOKIE, ""),
            request.query.get("token", "") if request.path == "/" else "",
        ]
        if any(candidate and hmac.compare_digest(candidate.encode(), expected) for candidate in offered):
            return await handler(request)
        raise web.HTTPUnauthorized(
            text="This dashboard needs its token: open it as /?token=<EMOSTREAM_DASHBOARD_TOKEN>.\n",
            headers={"WWW-Authenticate": 'Bearer realm="emostream dashboard"'},
        )

    return require_token


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving ``app`` on ``host:port``; the caller cleans the returned runner up."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
