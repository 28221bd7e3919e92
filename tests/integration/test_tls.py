"""Every Kafka client of the project over real TLS (mutual: the broker asks for a client certificate): the worker,
`emostream produce` and `tail`, the trainer and model announcements; and clients without the CA, without a client
certificate or without TLS are refused with an error that names the setting to fix, not a hang."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time

import orjson
import pytest

from models import ModelRegistry
from stream.tools import collect_records, send_values

from .conftest import StreamEnv
from .streams import run_cli
from .tls import TlsBroker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "S3cretPw-never-printed"


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    broker = TlsBroker(tmp_path_factory.mktemp("tls")).start()
    yield broker
    broker.stop()


@pytest.fixture
async def tls_env(tls_broker, served_registry, tmp_path):
    """A stream on the TLS broker over a copy of the served registry; its worker is stopped after the test."""
    shutil.copytree(served_registry.root, tmp_path / "registry")
    env = StreamEnv(tls_broker, tmp_path / "registry", tmp_path / "state", extra=tls_broker.client_env())
    await env.create_topics()
    yield env
    for worker in env.workers:
        worker.stop()


async def test_worker_produce_tail_trainer_and_announcements_work_over_mutual_tls(tls_env, tmp_path):
    env = tls_env
    worker = await env.start_worker(tmp_path)

    events = tmp_path / "events.jsonl"
    events.write_bytes(
        b"".join(orjson.dumps({"id": f"e{i}", "text": f"what a day number {i}"}) + b"\n" for i in range(20))
    )
    produced = await run_cli(env, "produce", "--file", str(events))
    assert produced.exit_code == 0, produced.output
    assert json.loads(produced.stdout) == {"sent": 20, "topic": env.topic("texts")}

    tailed = await run_cli(env, "tail", "labelled", "--from-beginning", "--limit", "20", "--idle-timeout", "240")
    assert tailed.exit_code == 0, tailed.output
    labelled = [json.loads(line) for line in tailed.stdout.splitlines()]
    assert sorted(record["id"] for record in labelled) == sorted(f"e{i}" for i in range(20)), worker.log()

    # A new version promoted by the CLI is announced over TLS, and the worker (following announcements over TLS)
    # swaps it in.
    registry = ModelRegistry(env.registry_dir)
    new = registry.register(registry.resolve("current")).version
    promoted = await run_cli(env, "models", "promote", new)
    assert promoted.exit_code == 0, promoted.output
    deadline = time.monotonic() + 240
    while worker.get("/stats")["model_version"] != new:
        assert time.monotonic() < deadline, worker.log()
        await asyncio.sleep(0.5)

    # The trainer reads feedback and dead-letters an invalid record over TLS (too little feedback for a cycle).
    feedback = [orjson.dumps({"id": "f1", "text": "so glad", "label": "joy"}), b"{not json"]
    await send_values(env.connection(), env.topic("feedback"), feedback)
    once = await run_cli(env, "trainer", "--once")
    assert once.exit_code == 0, once.output
    assert json.loads(once.stdout.splitlines()[-1]) == {"ran": False, "reason": "waiting for at least 20 examples"}
    letters = await collect_records(env.connection(), env.topic("dlq"), expected=1, timeout=60)
    assert [orjson.loads(value)["topic"] for _, value, _ in letters] == [env.topic("feedback")]


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"ca": False}, ["not trusted", "EMOSTREAM_KAFKA_SSL_CAFILE"]),
        ({"client_certificate": False}, ["requires a client certificate", "EMOSTREAM_KAFKA_SSL_CERTFILE"]),
        ({"plaintext": True}, ["expects TLS", "EMOSTREAM_KAFKA_SECURITY_PROTOCOL"]),
        ({"sasl": True}, ["does not offer SASL mechanism SCRAM-SHA-512", "EMOSTREAM_KAFKA_SASL_MECHANISM"]),
    ],
    ids=["no-ca", "no-client-certificate", "no-tls", "sasl-not-offered"],
)
def test_a_client_the_broker_refuses_gets_a_clear_error_not_a_hang(tls_env, tmp_path, settings, says):
    env = tls_env
    variables = {k: v for k, v in env.env(6066).items() if not k.startswith("EMOSTREAM_KAFKA_")}
    if settings.get("plaintext"):
        variables["EMOSTREAM_KAFKA_SECURITY_PROTOCOL"] = "PLAINTEXT"
    elif settings.get("sasl"):  # this broker has no SASL: the login is refused, and the password is never printed
        variables.update(env.broker.client_env())
        variables.update(
            EMOSTREAM_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
            EMOSTREAM_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
            EMOSTREAM_KAFKA_SASL_USERNAME="emostream",
            EMOSTREAM_KAFKA_SASL_PASSWORD=SECRET,
        )
    else:
        variables.update(env.broker.client_env(**settings))
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps({"id": "x", "text": "hello"}) + b"\n")
    # The CLI and the two services: each ends with status 1 and the reason, within the clients' own timeouts.
    for args in (["produce", "--file", str(events)], ["worker"], ["trainer"]):
        done = subprocess.run(
            [sys.executable, "-m", "emostream", *args], env=variables, capture_output=True, text=True, timeout=240
        )
        assert done.returncode == 1, (args, done.stdout[-2000:], done.stderr[-3000:])
        last_line = done.stderr.strip().splitlines()[-1]
        assert last_line.startswith("Error: cannot use Kafka at") and all(s in last_line for s in says), done.stderr
        assert SECRET not in done.stdout + done.stderr
