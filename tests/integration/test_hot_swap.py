"""Hot swap: `emostream models promote` under a steady stream switches the worker's model between two batches, with
no event lost or labelled twice; a version that fails to load is refused and the old model keeps serving."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time

import orjson
import pytest
from safetensors.torch import load_file, save_file

from models import ModelRegistry
from stream.announcements import announce
from stream.tools import send_values

from .streams import collect, labelled_until_all, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def own_registry(served_registry, tmp_path):
    """A copy of the served registry, so promotions here do not touch other tests."""
    shutil.copytree(served_registry.root, tmp_path / "registry")
    return ModelRegistry(tmp_path / "registry")


def always_joy(registry: ModelRegistry, tmp_path) -> str:
    """Register a variant of the current model whose head always says joy (to see which model labelled what)."""
    run = tmp_path / "joy-run"
    shutil.copytree(registry.resolve("current"), run)
    (run / "manifest.json").unlink()
    weights = load_file(run / "model.safetensors")
    joy = json.loads((run / "labels.json").read_text()).index("joy")
    weights["classifier.bias"][joy] += 50.0
    save_file(weights, run / "model.safetensors", metadata={"format": "pt"})
    return registry.register(run).version


MAX_EVENTS = 20_000  # a bound on the steady stream, far beyond what a swap needs


async def test_promote_swaps_the_model_between_batches_without_loss(
    stream_env_factory, own_registry, datasets_dir, tmp_path
):
    env = await stream_env_factory(own_registry.root)
    worker = await env.start_worker(tmp_path)
    new_version = always_joy(own_registry, tmp_path)
    with open(datasets_dir / "emotion" / "test.jsonl", encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle]
    # A steady stream that goes on until records of the new version come back (however long the swap takes on a
    # loaded machine), not a fixed count at a fixed rate that a slow swap could outlast.
    swapped = asyncio.Event()
    values = (
        orjson.dumps({"id": f"e{i}", "text": texts[i % len(texts)]})
        for i in itertools.takewhile(lambda i: not swapped.is_set() and i < MAX_EVENTS, itertools.count())
    )
    producer = asyncio.create_task(send_values(env.broker.url, env.topic("texts"), values, rate=40.0))
    try:
        await collect(env, "labelled", expected=100, timeout=120)  # the stream is flowing
        promoted = await run_cli(env, "models", "promote", new_version, port=worker.port)
        assert promoted.exit_code == 0, promoted.output
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if any(r["model_version"] == new_version for r in await collect(env, "labelled", timeout=2.0)):
                break
        else:
            pytest.fail(f"no record of {new_version} within 300 s of the promotion:\n{worker.log()}")
    finally:
        swapped.set()
        sent = await producer
    expected_ids = {f"e{i}" for i in range(sent)}
    labelled = await labelled_until_all(env, expected_ids, timeout=300)

    ids = [r["id"] for r in labelled]
    assert sorted(ids) == sorted(expected_ids), "lost or duplicated events"
    old = [r for r in labelled if r["model_version"] == "v0001"]
    new = [r for r in labelled if r["model_version"] == new_version]
    assert old and new and len(old) + len(new) == len(ids), worker.log()
    assert max(r["processed_at"] for r in old) <= min(r["processed_at"] for r in new)  # a clean boundary
    assert all(r["label"] == "joy" for r in new)
    assert worker.get("/stats")["labelled"] == len(ids)


async def test_a_version_that_fails_to_load_is_refused_and_the_old_one_keeps_serving(
    stream_env_factory, own_registry, tmp_path
):
    env = await stream_env_factory(own_registry.root)
    worker = await env.start_worker(tmp_path)
    await wait_for_log(worker, "following model announcements")
    broken = own_registry.register(own_registry.resolve("current"))
    own_registry.promote(broken.version)
    weights = broken.path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated after promotion: the manifest check catches it
    await announce(env.broker.url, env.topic("models"), broken)
    await wait_for_log(worker, "model swap failed")
    await send_values(env.broker.url, env.topic("texts"), [orjson.dumps({"id": "after", "text": "i am glad"})])
    assert (await collect(env, "labelled", expected=1, timeout=120))[0]["model_version"] == "v0001"
    assert worker.get("/stats")["model_version"] == "v0001"


async def test_the_announcement_topic_cannot_make_a_worker_load_anything_but_the_registry(
    stream_env_factory, own_registry, tmp_path
):
    """Anyone who can write to emotion.models: malformed records, unknown versions, names that walk out of the
    registry and a relabelled folder outside it are all logged and ignored, and the worker goes on serving."""
    env = await stream_env_factory(own_registry.root)
    worker = await env.start_worker(tmp_path)
    await wait_for_log(worker, "following model announcements")
    outside = tmp_path / "totally-legit"
    shutil.copytree(own_registry.resolve("current"), outside)
    config = json.loads((outside / "config.json").read_text())
    config["id2label"] = {k: f"PWNED-{v}" for k, v in config["id2label"].items()}
    (outside / "config.json").write_text(json.dumps(config))
    (outside / "manifest.json").unlink()
    hostile = [
        b"[1, 2]",
        b"null",
        b"{not json",
        b"x" * 100_000,
        orjson.dumps({"version": "totally-legit", "path": str(outside)}),
        orjson.dumps({"version": "../../" + outside.name, "path": str(outside)}),
        orjson.dumps({"version": str(outside)}),
        orjson.dumps({"version": None}),
        orjson.dumps({"version": "v0099", "path": str(outside)}),  # a version name, not the registry's current one
    ]
    await send_values(env.broker.url, env.topic("models"), hostile)
    await send_values(env.broker.url, env.topic("texts"), [orjson.dumps({"id": "after", "text": "i am glad"})])
    record = (await collect(env, "labelled", expected=1, timeout=120))[0]
    assert record["model_version"] == "v0001" and not record["label"].startswith("PWNED")
    await wait_for_log(worker, "following the registry")  # the last hostile record was read, and ignored
    assert worker.log(200_000).count("model announcement ignored") == len(hostile) - 1
    assert worker.process.poll() is None and worker.get("/stats")["model_version"] == "v0001"


async def wait_for_log(worker, text, timeout=120.0):
    deadline = time.monotonic() + timeout
    while text not in worker.log(200_000):
        if time.monotonic() > deadline:
            pytest.fail(f"{text!r} not logged within {timeout:.0f} s:\n{worker.log()}")
        await asyncio.sleep(0.3)
