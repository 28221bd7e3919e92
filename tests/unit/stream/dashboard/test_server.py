"""The dashboard's web server over real HTTP: the page and its files under a strict policy, the snapshot as JSON and
as Server-Sent Events, and the token when one is set."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import aiohttp
import orjson
import pytest

from stream.broker import free_port
from stream.dashboard.server import COOKIE, serve, web_app
from stream.dashboard.service import is_loopback
from stream.dashboard.state import DashboardState


@asynccontextmanager
async def running(state: DashboardState, token: str = ""):
    port = free_port()
    runner = await serve(web_app(state, token), "127.0.0.1", port)
    try:
        # unsafe: keep cookies for an IP address (the default jar drops them)
        async with aiohttp.ClientSession(
            f"http://127.0.0.1:{port}", cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as session:
            yield session
    finally:
        await runner.cleanup()


async def test_the_page_and_its_files_are_served_with_a_strict_policy():
    async with running(DashboardState()) as session:
        async with session.get("/") as response:
            assert response.status == 200 and "text/html" in response.headers["Content-Type"]
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            page = await response.text()
        assert 'src="/static/app.js"' in page and "<script>" not in page  # no inline script
        for name in ("app.js", "app.css"):
            async with session.get(f"/static/{name}") as response:
                assert response.status == 200 and response.headers["X-Content-Type-Options"] == "nosniff"
        for path in ("/static/../server.py", "/static/index.html", "/static/nothing.js", "/table/x"):
            async with session.get(path) as response:
                assert response.status == 404, path


async def test_the_state_is_served_as_json_and_pushed_as_events_when_it_changes():
    state = DashboardState()
    async with running(state) as session:
        async with session.get("/api/state") as response:
            assert (await response.json())["labelled"] == 0
        async with session.get("/api/stream") as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            first = orjson.loads((await response.content.readuntil(b"\n\n"))[len(b"data: ") :])
            state.add_labelled([orjson.dumps({"id": "a", "label": "joy", "score": 0.9})], now_s=1)
            second = orjson.loads((await asyncio.wait_for(response.content.readuntil(b"\n\n"), 60))[len(b"data: ") :])
    assert first["labelled"] == 0 and second["labelled"] == 1


@pytest.mark.parametrize("path", ["/", "/api/state", "/static/app.js"])
async def test_with_a_token_nothing_is_served_without_it(path):
    async with running(DashboardState(), token="t0ken") as session:
        async with session.get(path) as response:
            assert response.status == 401
        async with session.get(path, headers={"Authorization": "Bearer wrong"}) as response:
            assert response.status == 401
        async with session.get(path, headers={"Authorization": "Bearer t0ken"}) as response:
            assert response.status == 200


async def test_opening_the_page_with_the_token_keeps_it_in_a_cookie_not_in_the_address():
    async with running(DashboardState(), token="t0ken") as session:
        async with session.get("/?token=t0ken", allow_redirects=False) as response:
            assert response.status == 302 and response.headers["Location"] == "/"
            cookie = response.cookies[COOKIE]
            assert cookie.value == "t0ken" and cookie["httponly"] and cookie["samesite"] == "Strict"
        async with session.get("/api/state") as response:  # the session sends the cookie back
            assert response.status == 200
        session.cookie_jar.clear()
        async with session.get("/api/state?token=t0ken") as response:
            assert response.status == 401  # a token in the address opens the page only (which moves it to a cookie)


def test_loopback_addresses_are_recognised():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5") and not is_loopback("dashboard.example.com")
