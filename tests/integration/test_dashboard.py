"""`emostream dashboard` in a real browser (Debian's headless Chromium driven by Playwright): what a worker labels
shows up in the charts, tables and feed with the same counts; user texts render as text; an empty stream explains
itself; a broker that goes away shows as disconnected, and the page recovers by itself when it is back."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from stream.broker import EmbeddedBroker, free_port
from stream.process import DashboardProcess
from stream.tools import collect_records, send_values

from .streams import FAST_WINDOWS, emotion_texts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> so happy today'


def artifacts_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("EMOSTREAM_TEST_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("the dashboard test needs Debian's chromium (`make test` installs it: make system-deps)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium)
        yield launched
        await launched.close()


async def wait_for_status(page, state: str, timeout_s: float = 120) -> None:
    await page.wait_for_function(
        "s => document.getElementById('status').dataset.state === s", arg=state, timeout=timeout_s * 1000
    )


async def dom_totals(page, source: str) -> dict[str, int]:
    return await page.eval_on_selector_all(
        f'table.totals[data-source="{source}"] tbody tr',
        "rows => Object.fromEntries(rows.map(r => [r.dataset.label, Number(r.querySelector('td.count').textContent)]))",
    )


async def test_the_dashboard_shows_what_the_worker_labels(stream_env, browser, datasets_dir, tmp_path):
    env = stream_env
    env.extra.update(FAST_WINDOWS)  # short windows: they close within seconds
    worker = await env.start_worker(tmp_path)  # creates every topic, so the dashboard reads them from the start
    dashboard = await asyncio.to_thread(
        DashboardProcess.start, env.env(free_port()), free_port(), tmp_path / "dashboard.log"
    )
    page = await browser.new_page(viewport={"width": 1440, "height": 900})
    try:
        await page.goto(dashboard.url)
        await wait_for_status(page, "live")

        now_ms = int(time.time() * 1000)
        events = [
            {"id": f"d{i}", "text": text, "source": "forum" if i % 3 else "chat", "ts": now_ms}
            for i, text in enumerate(emotion_texts(datasets_dir, 30))
        ]
        events.append({"id": "hostile-0", "text": HOSTILE, "source": "chat", "ts": now_ms})
        invalid = [b"{broken", b"[1, 2]"]
        await send_values(env.broker.url, env.topic("texts"), [orjson.dumps(e) for e in events] + invalid)

        # Ground truth: what the worker published, read by the test itself.
        ids = {e["id"] for e in events}
        deadline = time.monotonic() + 240
        while True:
            records = await collect_records(env.broker.url, env.topic("labelled"), timeout=3.0)
            labelled = {r["id"]: r for r in (orjson.loads(v) for _, v, _ in records)}
            if set(labelled) >= ids:
                break
            assert time.monotonic() < deadline, worker.log()
        expected = {source: Counter() for source in ("forum", "chat", "*")}
        for record in labelled.values():
            expected[record["source"]][record["label"]] += 1
            expected["*"][record["label"]] += 1
        letters = await collect_records(env.broker.url, env.topic("dlq"), expected=2, timeout=120)
        expected_reasons = Counter(orjson.loads(v)["error"] for _, v, _ in letters)

        # The charts' tables reach the same counts once the windows have closed.
        await page.wait_for_function(
            """totals => Object.entries(totals).every(([source, n]) => {
                 const cells = document.querySelectorAll(`table.totals[data-source="${source}"] td.count`);
                 return [...cells].reduce((sum, cell) => sum + Number(cell.textContent), 0) === n; })""",
            arg={source: sum(counts.values()) for source, counts in expected.items()},
            timeout=240_000,
        )
        for source, counts in expected.items():
            assert await dom_totals(page, source) == dict(counts), source
        assert await page.locator('article.source[data-source="forum"] svg rect').count() >= len(expected["forum"])

        # Dead letters by reason, the serving model, the labelled count.
        await page.wait_for_function(
            "n => document.getElementById('dead-total').textContent === String(n)", arg=2, timeout=120_000
        )
        reasons = await page.eval_on_selector_all(
            "#dead-reasons tbody tr",
            "rows => Object.fromEntries(rows.map(r => [r.dataset.reason, Number(r.querySelector('td').textContent)]))",
        )
        assert reasons == dict(expected_reasons)
        assert await page.text_content("#serving") == "v0001"

        # The feed: a text with markup in it is shown as text, and nothing in it runs. (The feed starts at the end of
        # the topics when the dashboard's consumer is first positioned: send hostile events until one is shown.)
        shown = None
        for attempt in range(1, 30):
            if await page.locator('li.event[data-id="hostile-0"]').count():
                shown = "hostile-0"
                break
            event = {"id": f"hostile-{attempt}", "text": HOSTILE, "source": "chat", "ts": int(time.time() * 1000)}
            await send_values(env.broker.url, env.topic("texts"), [orjson.dumps(event)])
            try:
                await page.wait_for_selector(f'li.event[data-id="hostile-{attempt}"]', timeout=10_000)
                shown = f"hostile-{attempt}"
                break
            except Exception:  # Playwright's TimeoutError: try once more
                continue
        assert shown, dashboard.log()
        item = page.locator(f'li.event[data-id="{shown}"]')
        assert await item.locator("p.text").text_content() == HOSTILE
        assert await item.locator("img, script").count() == 0
        assert await page.evaluate("window.__pwned") is None

        await page.screenshot(path=str(artifacts_dir(tmp_path) / "dashboard.png"), full_page=True)
    finally:
        await page.close()
        dashboard.stop()


async def test_an_empty_stream_explains_itself_and_a_lost_broker_shows_and_heals(browser, tmp_path):
    port = free_port()
    broker = await asyncio.to_thread(EmbeddedBroker(port).start)
    prefix = f"dash-{port}"
    kinds = ("texts", "labelled", "aggregates", "dlq", "drift", "models")
    env = {
        **os.environ,
        "EMOSTREAM_BROKER_URL": broker.url,
        "EMOSTREAM_LOG_FORMAT": "json",
        **{f"EMOSTREAM_TOPIC_{kind.upper()}": f"{prefix}.{kind}" for kind in kinds},
    }
    dashboard = await asyncio.to_thread(DashboardProcess.start, env, free_port(), tmp_path / "dashboard.log")
    page = await browser.new_page()
    try:
        await page.goto(dashboard.url)
        await wait_for_status(page, "live")
        assert await page.locator("#empty").is_visible()
        assert "Waiting for data" in await page.text_content("#empty")

        await asyncio.to_thread(broker.stop)
        await wait_for_status(page, "down")
        assert "Disconnected from Kafka, retrying" in await page.text_content("#status")

        broker = await asyncio.to_thread(EmbeddedBroker(port).start)  # memory storage: back, and empty
        await wait_for_status(page, "live")
        letter = {"error": "invalid_json", "reason": "value is not JSON", "raw": "<script>window.__pwned=3</script>"}
        await send_values(broker.url, f"{prefix}.dlq", [orjson.dumps(letter)])
        await page.wait_for_function("() => document.getElementById('dead-total').textContent === '1'", timeout=120_000)
        assert "<script>window.__pwned=3</script>" in await page.text_content("#dead-recent")
        assert await page.evaluate("window.__pwned") is None
        assert not await page.locator("#empty").is_visible()
    finally:
        await page.close()
        dashboard.stop()
        broker.stop()
