"""The inference processes: same predictions as the classifier in this process, a dead child replaced, a failed load
refused, and no child left behind by a worker killed with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from emostream.settings import Settings
from models.classifier import load_classifier
from stream.inference import InferencePool

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def texts(datasets_dir):
    with open(datasets_dir / "emotion" / "test.jsonl", encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle][:240]


@pytest.fixture(scope="module")
def model_path(served_registry):
    return str(served_registry.resolve("current"))


def settings_for(registry) -> Settings:
    return Settings(registry_dir=registry.root, device="cpu")


def child_pids(pool: InferencePool) -> list[int]:
    return [pid for child in pool._children for pid in child.executor._processes]


async def test_the_processes_predict_what_the_classifier_predicts_here(served_registry, model_path, texts):
    settings = settings_for(served_registry)
    expected = load_classifier(model_path, settings).predict(texts)

    pool = InferencePool(settings, processes=2)
    try:
        info = await pool.load(model_path)
        assert info.device == "cpu" and info.pass_overhead_tokens >= 0  # timed at load, for the passes' plan
        chunks = [texts[i : i + 60] for i in range(0, len(texts), 60)]
        results = await asyncio.gather(*(pool.predict(model_path, chunk) for chunk in chunks))
    finally:
        pool.close()
    assert [name for chunk in results for name in chunk.label] == [p.label for p in expected]
    assert [score for chunk in results for score in chunk.score] == pytest.approx([p.score for p in expected], abs=1e-4)


async def test_a_killed_process_is_replaced_and_its_batch_retried(served_registry, model_path, texts):
    pool = InferencePool(settings_for(served_registry), processes=1)
    try:
        await pool.load(model_path)
        before = await pool.predict(model_path, texts[:50])
        killed = child_pids(pool)
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        after = await pool.predict(model_path, texts[:50])
        now = child_pids(pool)
    finally:
        pool.close()
    assert after.label == before.label
    assert killed and now and not set(killed) & set(now)


async def test_a_folder_that_fails_to_load_leaves_the_served_model_in_place(
    served_registry, model_path, texts, tmp_path
):
    pool = InferencePool(settings_for(served_registry), processes=2)
    try:
        await pool.load(model_path)
        (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
        with pytest.raises(Exception):  # noqa: B017 - whatever transformers raises for it
            await pool.load(str(tmp_path), keep=model_path)
        predictions = await pool.predict(model_path, texts[:20])
    finally:
        pool.close()
    assert len(predictions) == 20


def test_the_processes_stop_when_their_worker_is_killed(served_registry, model_path):
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from emostream.settings import Settings
        from stream.inference import InferencePool

        async def main():
            pool = InferencePool(Settings(registry_dir={str(served_registry.root)!r}, device="cpu"), processes=2)
            await pool.load({model_path!r})
            print(*[pid for child in pool._children for pid in child.executor._processes], flush=True)
            await asyncio.sleep(300)

        asyncio.run(main())
        """
    )
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        children = [int(pid) for pid in worker.stdout.readline().split()]
        assert len(children) == 2
    finally:
        worker.kill()
        worker.wait()
    deadline = time.monotonic() + 60  # they look for their parent every second; generous for a loaded machine
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in children)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A dead child not yet reaped by init still answers signal 0: look at its state.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
