"""Hot swap: `emostream models promote` under a steady stream switches the worker's model between two batches, with
no event lost or labelled twice; a version that fails to load is refused and the old model keeps serving."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time

import orjson
import pytest
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from emostream.cli import cli
from models import ModelRegistry
from stream.announcements import announce
from stream.tools import collect_records, send_values

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


def labelled_records(env, expected, settle=0.0):
    records = asyncio.run(
        collect_records(env.broker.url, env.topic("labelled"), expected=expected, timeout=120, settle=settle)
    )
    return [orjson.loads(value) for _, value, _ in records]


def test_promote_swaps_the_model_between_batches_without_loss(stream_env_factory, own_registry, datasets_dir, tmp_path):
    env = stream_env_factory(own_registry.root)
    worker = env.start_worker(tmp_path)
    new_version = always_joy(own_registry, tmp_path)
    with open(datasets_dir / "emotion" / "test.jsonl", encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle][:400]
    values = [orjson.dumps({"id": f"e{i}", "text": text}) for i, text in enumerate(texts)]
    producer = threading.Thread(
        target=lambda: asyncio.run(send_values(env.broker.url, env.topic("texts"), values, rate=40.0))
    )
    producer.start()
    labelled_records(env, expected=100)  # the stream is flowing
    variables = {k: v for k, v in env.env(worker.port).items() if k.startswith("EMOSTREAM_")}
    promoted = CliRunner().invoke(cli, ["models", "promote", new_version], env=variables)
    assert promoted.exit_code == 0, promoted.output
    producer.join()
    labelled = labelled_records(env, expected=len(texts), settle=2.0)

    ids = [r["id"] for r in labelled]
    assert sorted(ids) == sorted(f"e{i}" for i in range(len(texts))), "lost or duplicated events"
    old = [r for r in labelled if r["model_version"] == "v0001"]
    new = [r for r in labelled if r["model_version"] == new_version]
    assert old and new and len(old) + len(new) == len(texts), worker.log()
    assert max(r["processed_at"] for r in old) <= min(r["processed_at"] for r in new)  # a clean boundary
    assert all(r["label"] == "joy" for r in new)
    assert worker.get("/stats")["labelled"] == len(texts)


def test_a_version_that_fails_to_load_is_refused_and_the_old_one_keeps_serving(
    stream_env_factory, own_registry, tmp_path
):
    env = stream_env_factory(own_registry.root)
    worker = env.start_worker(tmp_path)
    deadline = time.monotonic() + 60
    while "following model announcements" not in worker.log(50_000) and time.monotonic() < deadline:
        time.sleep(0.5)
    broken = own_registry.register(own_registry.resolve("current"))
    weights = broken.path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated after registration: the manifest check catches it
    asyncio.run(announce(env.broker.url, env.topic("models"), broken))
    asyncio.run(send_values(env.broker.url, env.topic("texts"), [orjson.dumps({"id": "after", "text": "i am glad"})]))
    assert labelled_records(env, expected=1)[0]["model_version"] == "v0001"
    deadline = time.monotonic() + 30
    while "model swap failed" not in worker.log(50_000) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "model swap failed" in worker.log(50_000)
    assert worker.get("/stats")["model_version"] == "v0001"
