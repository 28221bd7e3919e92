"""The retraining job's metrics: families read from its counters, served over real HTTP with its health."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from stream.broker import free_port
from stream.metrics import exposition
from stream.trainer_metrics import TrainerCollector, TrainerStats, serve


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_before_any_cycle_there_is_no_last_cycle_and_no_model_info_sample():
    got = samples(exposition(TrainerCollector(TrainerStats(checks=3))).decode())
    assert got[("emostream_trainer_checks_total", ())] == 3
    assert got[("emostream_trainer_cycles_total", ())] == 0
    assert not any(name.startswith("emostream_trainer_last_cycle") for name, _ in got)
    assert not any(name == "emostream_trainer_model_info" for name, _ in got)


def test_cycles_count_gate_decisions_and_clear_the_backlog():
    stats = TrainerStats(feedback_examples=250, feedback_backlog=250, current_version="v0002")
    stats.count_skip("too_little_feedback")
    stats.count_skip("too_little_feedback")
    stats.count_cycle(promoted=True, seconds=42.5)
    stats.count_cycle(promoted=False, seconds=40.0)
    got = samples(exposition(TrainerCollector(stats)).decode())
    assert got[("emostream_trainer_cycles_total", ())] == 2
    assert got[("emostream_trainer_gate_decisions_total", (("outcome", "promoted"),))] == 1
    assert got[("emostream_trainer_gate_decisions_total", (("outcome", "rejected"),))] == 1
    assert got[("emostream_trainer_skipped_checks_total", (("reason", "too_little_feedback"),))] == 2
    assert got[("emostream_trainer_last_cycle_seconds", ())] == 40.0
    assert got[("emostream_trainer_feedback_backlog", ())] == 0
    assert got[("emostream_trainer_feedback_examples", ())] == 250
    assert got[("emostream_trainer_model_info", (("version", "v0002"),))] == 1


async def test_metrics_and_health_are_served_over_http():
    stats = TrainerStats(checks=1, consecutive_failures=2, cycle_running=True)
    port = free_port()
    runner = await serve(stats, "127.0.0.1", port)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                got = samples(await response.text())
            stats.checks += 1  # read at scrape time, not copied at start
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                again = samples(await response.text())
            async with session.get(f"http://127.0.0.1:{port}/health") as response:
                assert response.status == 200
                health = await response.json()
    finally:
        await runner.cleanup()
    assert got[("emostream_trainer_checks_total", ())] == 1 and again[("emostream_trainer_checks_total", ())] == 2
    assert got[("emostream_trainer_cycle_running", ())] == 1
    assert health == {"healthy": True, "cycle_running": True, "consecutive_failures": 2}
