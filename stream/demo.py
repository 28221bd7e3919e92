"""``emostream demo``: the whole job on the embedded broker, for a first run on a fresh machine.

Starts the Tansu broker, one worker process and the dashboard, replays a sample file into the input topic, and prints
what comes out: labelled events, dead letters and the aggregate windows that closed. With ``stay`` (the default on a
terminal) everything keeps running, for the dashboard, until Ctrl-C; otherwise it is stopped at the end.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import orjson

from emostream.settings import Settings
from stream.broker import EmbeddedBroker, free_port
from stream.process import DashboardProcess, WorkerProcess
from stream.schemas import InputLimits, TextEvent, parse_text_event
from stream.tools import collect_records, produce_file


def run_demo(settings: Settings, path: Path, *, timeout: float = 180.0, stay: bool = False) -> None:
    """Run broker + worker + dashboard, send ``path``, print the outputs; with ``stay``, keep running until Ctrl-C."""
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    texts = {}
    for line in lines:
        try:
            record = orjson.loads(line)
            texts[str(record.get("id"))] = record.get("text")
        except (orjson.JSONDecodeError, AttributeError):
            continue
    limits, now_ms = InputLimits.from_settings(settings), int(time.time() * 1000)
    valid = sum(  # the worker's own validation decides what will be labelled
        isinstance(
            parse_text_event(line, topic="", partition=0, offset=0, timestamp_ms=now_ms, now_ms=now_ms, limits=limits),
            TextEvent,
        )
        for line in lines
    )
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as scratch:
        web_port = free_port()
        env = {
            **os.environ,
            "EMOSTREAM_BROKER_URL": broker.url,
            "EMOSTREAM_WEB_PORT": str(web_port),
            "EMOSTREAM_SESSION_TIMEOUT": "6",
            "EMOSTREAM_LOG_FORMAT": "json",
            "EMOSTREAM_APP_ID": "emostream-demo",
            "EMOSTREAM_STATE_DIR": scratch,
            # The sample's 5 minutes of event time arrive at once, spread over partitions: a grace this long keeps
            # every event in its window; the last events, 20 minutes later, close them.
            "EMOSTREAM_WINDOW_GRACE": "600",
        }
        print(f"broker: {broker.url} (embedded Tansu); starting the worker ...", flush=True)
        worker = WorkerProcess.start(env, Path(scratch) / "worker.log", loglevel="warn")
        dashboard = None
        labelled: list = []
        try:
            dashboard_port = settings.dashboard_port if _port_is_free(settings.dashboard_port) else free_port()
            dashboard = DashboardProcess.start(env, dashboard_port, Path(scratch) / "dashboard.log")
            print(f"dashboard: {dashboard.url}", flush=True)
            worker.wait_assigned(settings.topic_texts)
            sent = asyncio.run(produce_file(broker.url, settings.topic_texts, path))
            print(f"sent {sent} records from {path} to {settings.topic_texts} ({sent - valid} invalid on purpose)\n")
            started = time.monotonic()
            labelled = asyncio.run(
                collect_records(broker.url, settings.topic_labelled, expected=valid, timeout=timeout)
            )
            elapsed = time.monotonic() - started
            dead = asyncio.run(collect_records(broker.url, settings.topic_dlq, expected=sent - valid, timeout=10))
            windows = asyncio.run(collect_records(broker.url, settings.topic_aggregates, timeout=3))
            _print_outputs(settings, labelled, dead, windows, texts, elapsed)
            open_windows = worker.get("/aggregates")
            print(
                f"\nGET /aggregates: {sum(len(v['open_windows']) for v in open_windows.values())} windows "
                f"still open for {sorted(open_windows)}"
            )
            if stay and len(labelled) >= valid:
                print(f"\nStill running for the dashboard: {dashboard.url} (Ctrl-C stops everything)", flush=True)
                _wait_for_interrupt()
        finally:
            if dashboard is not None:
                dashboard.stop()
            worker.stop()
            if len(labelled) < valid:
                print(worker.log(), file=sys.stderr)
        if len(labelled) < valid:
            raise SystemExit(f"only {len(labelled)} of {valid} events were labelled within {timeout:.0f} s")


def _print_outputs(settings: Settings, labelled, dead, windows, texts: dict, elapsed: float) -> None:
    print(f"{settings.topic_labelled}: {len(labelled)} labelled events in {elapsed:.1f} s")
    for _, value, _ in labelled:
        record = orjson.loads(value)
        print(
            f"  {record['id']:<12} {record['source']:<8} {record['label']:<9} {record['score']:.2f}  "
            f"{(texts.get(record['id']) or '')[:60]}"
        )
    print(f"\n{settings.topic_dlq}: {len(dead)} dead letters")
    for _, value, _ in dead:
        record = orjson.loads(value)
        print(f"  offset {record['offset']:<4} {record['error']:<14} {record['reason']}")
    print(f"\n{settings.topic_aggregates}: {len(windows)} closed windows")
    for _, value, _ in windows:
        record = orjson.loads(value)
        start = time.strftime("%H:%M:%S", time.gmtime(record["window_start"] / 1000))
        end = time.strftime("%H:%M:%S", time.gmtime(record["window_end"] / 1000))
        counts = ", ".join(f"{label} {n}" for label, n in sorted(record["counts"].items(), key=lambda kv: -kv[1]))
        print(f"  {record['window']:<8} {start}-{end} {record['source']:<8} total {record['total']:<3} {counts}")


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping ...", flush=True)
