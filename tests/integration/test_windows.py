"""Aggregate windows on the real broker: idle sources close on time, late events revise, too-late ones are reported,
a shifted emotion mix is flagged, and two workers sharing the partitions publish each window once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import orjson
import pytest

from models import EmotionClassifier
from stream.aggregation import WindowSpec
from stream.drift import shares
from stream.tools import collect_records

from .streams import (
    BASE_TS,
    FAST_WINDOWS,
    collect,
    emotion_texts,
    event,
    labelled_until_all,
    send,
    where_in_input,
    worker_logs,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPECS = [WindowSpec("tumbling", 4_000, 4_000), WindowSpec("hopping", 8_000, 4_000)]


def expected_totals(labelled: list[dict]) -> Counter:
    """Events per (source or ``*``, window kind, window start), from the labelled records."""
    return Counter(
        (key, spec.kind, start)
        for r in labelled
        for spec in SPECS
        for start in spec.starts(r["ts"])
        for key in (r["source"], "*")
    )


def latest_revisions(windows: list[dict]) -> dict[tuple, dict]:
    """What a consumer keeps (the README's contract): per window and source, the final record of highest revision."""
    kept: dict[tuple, dict] = {}
    for w in windows:
        key = (w["source"], w["window"], w["window_start"])
        if w["final"] and (key not in kept or w["revision"] > kept[key]["revision"]):
            kept[key] = w
    return kept


async def final_windows_until(env, wanted: Counter | None = None, timeout: float = 240.0) -> tuple[list[dict], Counter]:
    """Every aggregate record, read again until the latest revision of each wanted window has its expected total;
    and the wanted totals. Without ``wanted``, they are read again each time from the labelled records: a record
    labelled twice (at least once, around a rebalance) is counted twice, and may arrive late."""
    deadline = time.monotonic() + timeout
    while True:
        expected = wanted if wanted is not None else expected_totals(await collect(env, "labelled", timeout=3.0))
        windows = await collect(env, "aggregates", timeout=3.0)
        kept = latest_revisions(windows)
        done = all(key in kept and kept[key]["total"] == n for key, n in expected.items())
        if done or time.monotonic() > deadline:
            return windows, expected


async def test_a_burst_then_silence_publishes_every_window_of_the_burst(stream_env, datasets_dir, tmp_path):
    stream_env.extra = dict(FAST_WINDOWS)
    worker = await stream_env.start_worker(tmp_path)
    texts = emotion_texts(datasets_dir, 300)
    # Event time is the sender's clock: the windows can only close on the wall clock, after the burst.
    values = [event(i, text, source=f"src{i % 3}", ts=int(time.time() * 1000) + i * 10) for i, text in enumerate(texts)]
    await send(stream_env, values)
    labelled = await labelled_until_all(stream_env, {f"e{i}" for i in range(len(values))})
    assert len({r["id"] for r in labelled}) == len(values), worker.log()

    wanted = expected_totals(labelled)  # each labelled record was counted once (a duplicate too: at least once)
    windows, _ = await final_windows_until(stream_env, wanted)  # nothing more is sent: only the ticks can close them
    kept = latest_revisions(windows)
    assert {key: kept[key]["total"] if key in kept else None for key in wanted} == dict(wanted), worker.log()
    for w in kept.values():
        assert sum(w["counts"].values()) == w["total"]
    published = await _with_times(stream_env)
    delays = [(stamp - (w["window_end"] + 2_000)) / 1000 for w, stamp in published if w["revision"] == 0]
    # Reported, not asserted (no timing in tests): seconds after end + grace + idle that each first publication came.
    print(f"{len(kept)} windows; first publication after end + grace + idle: max {max(delays):.1f} s")
    stats = worker.get("/stats")
    assert stats["windows_published"] >= len(wanted) and stats["undeliverable"] == 0


async def _with_times(env) -> list[tuple[dict, int]]:
    records = await collect_records(env.broker.url, env.topic("aggregates"), timeout=3.0)
    return [(orjson.loads(value), stamp) for _, value, stamp in records]


async def test_late_events_revise_a_published_window_and_too_late_ones_go_to_the_late_topic(stream_env, tmp_path):
    stream_env.extra = {
        **FAST_WINDOWS,
        "EMOSTREAM_WINDOW_IDLE": "100000",  # event time only: what is late does not depend on the machine's speed
        "EMOSTREAM_ALLOWED_LATENESS": "3600",
    }
    worker = await stream_env.start_worker(tmp_path)

    async def step(i: int, ts: int) -> None:  # one event at a time: input partitions are read concurrently
        await send(stream_env, [event(i, "i feel fine", source="s", ts=BASE_TS + ts)])
        labelled = await labelled_until_all(stream_env, {f"e{i}"}, timeout=120)
        assert f"e{i}" in {r["id"] for r in labelled}, worker.log()

    async def tumbling_zero() -> list[dict]:
        windows = [w for w in await collect(stream_env, "aggregates", timeout=3.0) if w["source"] == "s"]
        return sorted((w for w in windows if w["window"] == "tumbling" and w["window_start"] == BASE_TS), key=str)

    async def wait_for(condition, what: str):  # condition: a coroutine function
        deadline = time.monotonic() + 120
        while not (found := await condition()):
            assert time.monotonic() < deadline, f"no {what}:\n{worker.log()}"
            await asyncio.sleep(0.5)
        return found

    async def revised_once() -> list[dict]:
        return [w for w in await tumbling_zero() if w["revision"] == 1]

    async def watermark_moved() -> bool:
        return worker.get("/aggregates").get("s", {}).get("watermark") == BASE_TS + 7_200_000

    await step(0, 500)
    await step(1, 1_500)
    await step(2, 10_000)  # past [0, 4 s) + 1 s grace: published
    assert [(w["revision"], w["total"]) for w in await wait_for(tumbling_zero, "first publication")] == [(0, 2)]
    await step(3, 2_000)  # late, within the allowed lateness: revision 1
    [revised] = await wait_for(revised_once, "revision")
    assert revised["final"] and revised["total"] == sum(revised["counts"].values()) == 3
    await step(4, 7_200_000)  # two hours on: every earlier window is past its lateness
    await wait_for(watermark_moved, "watermark")
    await step(5, 3_000)  # too late
    late = await wait_for(lambda: collect(stream_env, "late", timeout=3.0), "late record")
    mine = [r for r in late if r["aggregate"] == "s"]
    assert [(r["id"], r["source"], r["ts"]) for r in mine] == [("e5", "s", BASE_TS + 3_000)]
    assert {"window": "tumbling", "window_start": BASE_TS, "window_end": BASE_TS + 4_000} in mine[0]["missed"]
    assert len([w for w in await tumbling_zero() if w["revision"] >= 0]) == 2  # the too-late event revised nothing
    assert worker.get("/stats")["late_events"] >= 1


async def test_a_shifted_emotion_mix_is_reported_and_its_source_reviewed_more(
    stream_env, served_registry, datasets_dir, tmp_path
):
    # Texts chosen by what the served model says of them, so that the mix really shifts whatever it learned.
    model = EmotionClassifier.from_pretrained(served_registry.resolve("current"), device="cpu", quantize="off")
    texts = emotion_texts(datasets_dir, 1000)
    by_label: dict[str, list[str]] = {}
    for text, prediction in zip(texts, model.predict(texts), strict=True):
        by_label.setdefault(prediction.label, []).append(text)
    common, *others = sorted(by_label, key=lambda label: -len(by_label[label]))
    rare = next(label for label in others if len(by_label[label]) >= 10)
    stream_env.extra = {
        **FAST_WINDOWS,
        "EMOSTREAM_WINDOW_IDLE": "100000",
        "EMOSTREAM_DRIFT_BASELINE": "2",
        "EMOSTREAM_DRIFT_MIN_EVENTS": "10",
        "EMOSTREAM_DRIFT_THRESHOLD": "0.5",
        "EMOSTREAM_REVIEW_MARGIN": "0",  # review only what drift asks for
        "EMOSTREAM_DRIFT_REVIEW_RATE": "1",
        "EMOSTREAM_DRIFT_REVIEW_WINDOWS": "1000",
    }
    worker = await stream_env.start_worker(tmp_path)
    # Three tumbling windows of ten events, sent one window at a time (input partitions are read concurrently: an
    # event of a later window read first would close an earlier one before all of it was counted).
    windows = [by_label[common][:10], by_label[common][10:20], by_label[rare][:10]]
    for w, texts_of_window in enumerate(windows):
        await send(
            stream_env,
            [event(w * 10 + i, text, source="d", ts=BASE_TS + w * 4_000 + i) for i, text in enumerate(texts_of_window)],
        )
        await labelled_until_all(stream_env, {f"e{w * 10 + i}" for i in range(10)}, timeout=120)
    await send(stream_env, [event(99, "and now", source="d", ts=BASE_TS + 600_000)])  # closes the last two windows
    deadline = time.monotonic() + 120
    while not (drift := [r for r in await collect(stream_env, "drift", timeout=3.0) if r["source"] == "d"]):
        assert time.monotonic() < deadline, worker.log()
    # The mixes the worker's own labels give (the same texts, so the same labels as above, batching aside).
    labelled = await labelled_until_all(stream_env, {f"e{i}" for i in range(30)}, timeout=60)
    labels = {r["id"]: r["label"] for r in labelled}
    mix = [Counter(labels[f"e{w * 10 + i}"] for i in range(10)) for w in range(3)]
    baseline = {label: (shares(mix[0]).get(label, 0) + shares(mix[1]).get(label, 0)) / 2 for label in mix[0] | mix[1]}
    [report] = drift
    assert (report["window_start"], report["window_end"]) == (BASE_TS + 8_000, BASE_TS + 12_000)
    assert report["current"] == pytest.approx(shares(mix[2])) and report["baseline"] == pytest.approx(baseline)
    assert report["distance"] > 0.5 and report["top_changes"][0]["label"] in (rare, common)

    # Every worker follows the drift topic: the drifting source's next predictions go to review, confident or not.
    deadline = time.monotonic() + 120
    while "d" not in worker.get("/stats")["review_boosted"]:
        assert time.monotonic() < deadline, worker.log()
        await asyncio.sleep(0.5)
    assert await collect(stream_env, "review", timeout=3.0) == []
    await send(stream_env, [event(200 + i, "i am fine", source=source) for i, source in enumerate(["d", "other"] * 3)])
    review = await collect(stream_env, "review", expected=3, timeout=120, settle=2.0)
    assert sorted(r["id"] for r in review) == ["e200", "e202", "e204"]


async def test_two_workers_and_a_rebalance_publish_each_window_once(stream_env, datasets_dir, tmp_path):
    # 20 s of silence before an idle window closes: the first burst's windows are still open when the partitions move.
    stream_env.extra = {**FAST_WINDOWS, "EMOSTREAM_WINDOW_IDLE": "20"}
    first = await stream_env.start_worker(tmp_path)
    texts = emotion_texts(datasets_dir, 400)

    async def burst(offset: int) -> int:
        now = int(time.time() * 1000)
        return await send(
            stream_env,
            [
                event(offset + i, text, source=f"src{i % 4}", ts=now + i * 20)
                for i, text in enumerate(texts[offset : offset + 200])
            ],
            rate=50.0,
        )

    sender = asyncio.create_task(burst(0))  # awaited below: a failed send fails the test
    second = await stream_env.start_worker(tmp_path)  # joins during or just after the first burst: the partitions move
    assert await sender == 200
    assert await burst(200) == 200
    ids = {f"e{i}" for i in range(400)}
    labelled = await labelled_until_all(stream_env, ids)
    missing = sorted(ids - {r["id"] for r in labelled}, key=lambda id_: int(id_[1:]))
    assert not missing, (
        f"{len(missing)} never labelled: {await where_in_input(stream_env, missing)}\n{worker_logs(first, second)}"
    )
    windows, wanted = await final_windows_until(stream_env)
    kept = latest_revisions(windows)
    assert {key: kept[key]["total"] if key in kept else None for key in wanted} == dict(wanted)
    publications = Counter((w["source"], w["window"], w["window_start"], w["revision"]) for w in windows if w["final"])
    assert [key for key, n in publications.items() if n > 1] == [], first.log()
