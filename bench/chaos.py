"""Faults against a real worker under a steady stream, repeated: events sent, labelled (unique), lost, duplicated, and
the time to recover, per fault and run. Not part of CI (the integration suite keeps one run of the worker faults).

Faults (``--faults``, all by default):

- ``worker-kill``: SIGKILL of the worker mid-stream, then a new worker. Recovery: from the kill to the first record
  the new worker labels.
- ``inference-kill``: SIGKILL of one inference process mid-batch. Recovery: from the kill to the next record labelled.
- ``rebalance-kill``: a second worker joins the group and the first is SIGKILLed while the group rebalances; the
  second takes everything over. Recovery: from the kill to the first record labelled after it.
- ``worker-join``: a second worker joins mid-stream and both go on (a clean rebalance: nobody dies). Nothing may be
  labelled twice, and the aggregate agents, summed over both workers (``/stats`` ``aggregated``), may count no more
  events than there are labelled records (the note says how many more they counted). Recovery: the longest gap
  between records (the pause of the rebalance).
- ``corrupt-promote``: under load, the registry's ``current`` is pointed at a version whose weights were damaged
  after registration, and announced; the worker must refuse it and go on with the old model (and ``promote`` of a
  version that does not exist must fail). Recovery: none needed; the column shows the longest gap between records.
- ``trainer-kill``: the retraining job (``trainer --once`` on 200 feedback examples) SIGKILLed during its cycle (the
  runs kill 0, 40, 80... ms after the cycle starts); the registry and ``current`` must be untouched (or hold one more
  whole version) and the next cycle must complete with nothing left over. "Events" are the feedback examples;
  recovery is the next cycle's duration.
- ``broker-restart``: a broker of the run's own is stopped for 5 s and started again on the same port. On durable
  storage (``--storage s3``, the default: Tansu on a local moto S3 server) nothing may be lost. On memory storage its
  topics and committed offsets are gone, so the run counts what the worker says (it must report the lost topics,
  not spin or die) and what it labels of the events sent from 5 s after the restart.

    python bench/chaos.py [--runs 10] [--faults worker-kill,inference-kill,...] [--rate 100] [--events 1200]

Every run has its own consumer group and topics on one broker (one per run for ``broker-restart``), and a 1-layer
random model (``bench.harness.tiny_model``): the stream path is under test, not the model.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness import LABELS  # noqa: E402

FAULTS = (
    "worker-kill",
    "inference-kill",
    "rebalance-kill",
    "worker-join",
    "corrupt-promote",
    "trainer-kill",
    "broker-restart",
)


@dataclass
class RunResult:
    fault: str
    sent: int
    unique: int
    lost: int
    duplicates: int
    recovery: float  # seconds; see the module docstring per fault
    note: str = ""


def labelled(broker_url: str, topic: str) -> list[dict]:
    from stream.tools import collect_records

    return [json.loads(value) for _, value, _ in asyncio.run(collect_records(broker_url, topic, timeout=2.0))]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.5)


def until_all(broker_url: str, topic: str, ids: set[str], timeout: float = 180.0) -> list[dict]:
    """Read the labelled topic again until every id of ``ids`` is in it (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        records = labelled(broker_url, topic)
        if {r["id"] for r in records} >= ids or time.monotonic() > deadline:
            return records


def first_after(records: list[dict], moment: float) -> float | None:
    """Seconds from ``moment`` to the first record processed after it."""
    after = [r["processed_at"] / 1000 for r in records if r["processed_at"] / 1000 > moment]
    return min(after) - moment if after else None


def count(fault: str, sent: int, records: list[dict], recovery: float | None, note: str = "") -> RunResult:
    ids = Counter(r["id"] for r in records)
    wanted = {f"e{i}" for i in range(sent)}
    lost = len(wanted - set(ids))
    duplicates = sum(n - 1 for key, n in ids.items() if key in wanted)
    return RunResult(fault, sent, len(wanted & set(ids)), lost, duplicates, recovery or float("nan"), note)


@dataclass
class Run:
    """One run under way: its registry, environment, folder, first worker, stream and labelled topic."""

    registry: object
    env: dict
    folder: Path
    worker: object
    stream: object
    topic: str


class Bench:
    """One broker, one registry with a tiny model, and what each fault needs."""

    def __init__(self, scratch: Path, broker, texts: list[str], rate: float, events: int) -> None:
        from bench.harness import tiny_model
        from models.registry import ModelRegistry

        self.scratch, self.broker, self.texts, self.rate, self.events = scratch, broker, texts, rate, events
        self.s3 = None  # an S3Store when the broker restarts on durable storage
        tiny_model(scratch / "tiny")
        self.registry_template = ModelRegistry(scratch / "registry-template")
        self.registry_template.register(scratch / "tiny", promote=True)

    def setup(self, run_id: str):
        """A fresh registry copy, environment and log folder for one run."""
        from bench.harness import worker_env
        from models.registry import ModelRegistry

        folder = self.scratch / run_id
        shutil.copytree(self.registry_template.root, folder / "registry")
        app_id = f"chaos-{os.getpid()}-{run_id}"
        env = worker_env(self.broker.url, app_id, folder / "registry", folder / "state")
        return ModelRegistry(folder / "registry"), env, folder

    def start_worker(self, env: dict, folder: Path, name: str):
        from stream.broker import free_port
        from stream.process import WorkerProcess

        worker = WorkerProcess.start({**env, "EMOSTREAM_WEB_PORT": str(free_port())}, folder / f"{name}.log")
        worker.wait_assigned(env["EMOSTREAM_TOPIC_TEXTS"])
        return worker

    def stream(self, env: dict):
        from bench.harness import SteadyStream

        return SteadyStream(self.broker.url, env["EMOSTREAM_TOPIC_TEXTS"], self.texts, self.rate, limit=self.events)

    def finish(
        self, fault: str, env: dict, stream, moment: float | None, workers, note: str = "", aggregated: bool = False
    ) -> RunResult:
        topic = env["EMOSTREAM_TOPIC_LABELLED"]
        sent = stream.join(timeout=self.events / self.rate + 600)
        records = until_all(self.broker.url, topic, {f"e{i}" for i in range(sent)})
        if aggregated:
            beyond = aggregated_beyond(workers, len(records))
            note = f"{note} aggregated beyond the labelled records: {beyond}".strip()
        for worker in workers:
            worker.stop()
        # The stall guard's rewinds (docs/notes.md, "restarted worker receives nothing"): how often a run needed one.
        rewinds = sum(worker.log(10**8).count("input stalled below its end") for worker in workers)
        if rewinds:
            note = f"{note} stall-guard rewinds: {rewinds}".strip()
        recovery = first_after(records, moment) if moment is not None else longest_gap(records)
        return count(fault, sent, records, recovery, note)

    # --- the faults ---------------------------------------------------------------------------------------------

    def begin(self, run_id: str) -> Run:
        """A run's registry and worker, and the steady stream flowing: a fifth of the events already labelled."""
        registry, env, folder = self.setup(run_id)
        worker = self.start_worker(env, folder, "worker-0")
        stream = self.stream(env)
        topic = env["EMOSTREAM_TOPIC_LABELLED"]
        wait_for(lambda: len(labelled(self.broker.url, topic)) >= self.events // 5, 120, "first records")
        return Run(registry, env, folder, worker, stream, topic)

    def worker_kill(self, run_id: str) -> RunResult:
        run = self.begin(run_id)
        killed_at = time.time()
        run.worker.kill()
        second = self.start_worker(run.env, run.folder, "worker-1")
        return self.finish("worker-kill", run.env, run.stream, killed_at, [second])

    def inference_kill(self, run_id: str) -> RunResult:
        run = self.begin(run_id)
        pid = run.worker.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        inference = [int(c) for c in children if b"multiprocessing" in Path(f"/proc/{c}/cmdline").read_bytes()]
        killed_at = time.time()
        os.kill(inference[0], signal.SIGKILL)
        return self.finish("inference-kill", run.env, run.stream, killed_at, [run.worker])

    def rebalance_kill(self, run_id: str) -> RunResult:
        from stream.broker import free_port
        from stream.process import WorkerProcess

        run = self.begin(run_id)
        # The second worker joins (the group starts rebalancing once it subscribes); the first dies in the middle.
        second = WorkerProcess.start({**run.env, "EMOSTREAM_WEB_PORT": str(free_port())}, run.folder / "worker-1.log")
        killed_at = time.time()
        run.worker.kill()
        return self.finish("rebalance-kill", run.env, run.stream, killed_at, [second])

    def worker_join(self, run_id: str) -> RunResult:
        run = self.begin(run_id)
        second = self.start_worker(run.env, run.folder, "worker-1")  # the group rebalances once it subscribes
        # Assigned means rebalanced: with the stream over by then there was nothing in flight to count twice (a worker
        # takes 10-20 s to start here; --events 5000 at 100/s leaves room).
        late = run.stream.next_id >= self.events
        note = "joined after the stream ended: measures nothing, raise --events" if late else ""
        return self.finish("worker-join", run.env, run.stream, None, [run.worker, second], note, aggregated=True)

    def corrupt_promote(self, run_id: str) -> RunResult:
        from models.registry import RegistryError
        from stream.announcements import announce

        run = self.begin(run_id)
        registry = run.registry
        try:
            registry.promote("v0042")
            note = "promote of a missing version succeeded"
        except RegistryError:
            note = ""
        broken = registry.register(registry.resolve("current"))
        registry.promote(broken.version)
        weights = broken.path / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])  # damaged after promotion: the manifest check must catch it
        asyncio.run(announce(self.broker.url, run.env["EMOSTREAM_TOPIC_MODELS"], broken))
        wait_for(lambda: "model swap failed" in run.worker.log(1_000_000), 120, "the refusal")
        result = self.finish("corrupt-promote", run.env, run.stream, None, [run.worker], note)
        versions = {r["model_version"] for r in labelled(self.broker.url, run.topic)}
        if versions != {"v0001"}:
            result.note += f" served {sorted(versions)}"
        return result

    def trainer_kill(self, run_id: str) -> RunResult:
        """The retraining job SIGKILLed during a cycle: the registry and ``current`` must be as before
        (or hold one more whole version), and the next cycle must work. Recovery: that next cycle's duration."""
        import subprocess

        from stream.tools import send_values

        registry, env, folder = self.setup(run_id)
        base = folder / "base"
        base.mkdir()
        rows = [json.dumps({"text": t, "label": LABELS[i % len(LABELS)]}) for i, t in enumerate(self.texts)]
        (base / "train.jsonl").write_text("\n".join(rows[:400]) + "\n")
        (base / "validation.jsonl").write_text("\n".join(rows[400:600]) + "\n")
        feedback = [
            json.dumps({"id": f"f{i}", "text": t, "label": LABELS[i % 3]}).encode()
            for i, t in enumerate(self.texts[:200])
        ]
        asyncio.run(send_values(self.broker.url, env["EMOSTREAM_TOPIC_FEEDBACK"], feedback))
        env = {
            **env,
            "EMOSTREAM_BASE_DATA": str(base),
            "EMOSTREAM_LOG_LEVEL": "info",  # the kill waits for the cycle's "retraining" line
            "EMOSTREAM_RETRAIN_REPLAY_RATIO": "1",
            "EMOSTREAM_RETRAIN_EPOCHS": "1",
        }
        before = (registry.current_version(), [v.version for v in registry.versions()])
        log_path = folder / "trainer.log"
        with log_path.open("wb") as log_file:
            trainer = subprocess.Popen(
                [sys.executable, "-m", "emostream", "trainer", "--once"],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 300
        while b'"retraining"' not in log_path.read_bytes() and trainer.poll() is None:  # polled finely: the cycle
            if time.monotonic() > deadline:  # of the tiny model is over in well under a second
                raise TimeoutError("the cycle did not start within 300 s")
            time.sleep(0.005)
        # The cycle proper (train, gate, export, register) takes a fraction of a second with the tiny model: the runs
        # spread their kills over it, 40 ms apart, so that each phase is hit.
        time.sleep(0.04 * (int(run_id.rsplit("-", 1)[1]) % 10))
        trainer.kill()
        trainer.wait()
        after = (registry.current_version(), [v.version for v in registry.versions()])
        intact = after == before or (after[0] == before[0] and after[1][: len(before[1])] == before[1])
        for version in after[1]:
            registry.verify(version)  # every version there is whole
        started = time.monotonic()
        again = subprocess.run([sys.executable, "-m", "emostream", "trainer", "--once"], env=env, capture_output=True)
        seconds = time.monotonic() - started
        summary = json.loads(again.stdout.decode().strip().splitlines()[-1]) if again.returncode == 0 else {}
        leftovers = list(registry.root.glob(".retrain-*")) + list((registry.root / ".staging").glob("*"))
        finished_before_kill = len(after[1]) > len(before[1])  # the kill came after the cycle registered its version
        next_ok = summary.get("ran") or (finished_before_kill and summary.get("reason", "").startswith("nothing new"))
        ok = intact and next_ok and not leftovers
        note = "killed after its cycle" if finished_before_kill else "killed mid-cycle"
        if not ok:
            note += f"; intact {intact}, next cycle {summary or again.stderr[-300:]}, leftovers {leftovers}"
        return RunResult("trainer-kill", len(feedback), len(feedback), 0 if ok else -1, 0, seconds, note)

    def broker_restart(self, run_id: str) -> RunResult:
        """Durable storage (``--storage s3``): nothing may be lost. Memory storage: everything before the restart is
        gone with the broker; the worker must say so and label what is sent 5 s after it."""
        from stream.broker import EmbeddedBroker

        options = self.s3.bucket(f"chaos-{run_id}") if self.s3 else {}
        shared, self.broker = self.broker, EmbeddedBroker(**options).start()  # a broker of its own, to restart
        worker = None
        try:
            run = self.begin(run_id)
            env, worker, stream, topic = run.env, run.worker, run.stream, run.topic
            self.broker.stop()
            time.sleep(5)  # the outage
            self.broker.start()
            restarted_at = time.time()
            if self.s3:
                return self.finish("broker-restart", env, stream, restarted_at, [worker])
            reported = wait_for(lambda: "topics missing on the broker" in worker.log(10**7), 120, "the report")
            stream.stop()  # its producer may have failed with the broker; everything it sent is gone with it anyway
            time.sleep(5)
            after = self.stream(env)  # a producer's events from 5 s after the restart: the worker must label these
            wanted = {f"e{i}" for i in range(after.join(timeout=self.events / self.rate + 600))}
            records = until_all(self.broker.url, topic, wanted, timeout=120)
            alive = worker.process.poll() is None
            worker.stop()
            errors = sum('"level": "error"' in line or " ERROR " in line for line in worker.log(10**8).splitlines())
            ids = Counter(r["id"] for r in records)
            note = (
                f"memory storage: reported {reported}, alive {alive}, {errors} error lines; events sent from 5 s after"
            )
            return RunResult(
                "broker-restart",
                len(wanted),
                len(wanted & set(ids)),
                len(wanted - set(ids)),
                sum(n - 1 for key, n in ids.items() if key in wanted),
                first_after(records, restarted_at) or float("nan"),
                note,
            )
        finally:
            if worker is not None:
                worker.stop()
            self.broker.stop()
            self.broker = shared


def aggregated_beyond(workers, labelled: int, settle: float = 5.0, timeout: float = 120.0) -> int:
    """Events the workers' aggregate agents counted (``/stats`` ``aggregated``, summed) beyond ``labelled``, the
    labelled records (each one, a duplicate too, is counted once), once the sum has not moved for ``settle`` s."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        total, now = sum(worker.get("/stats")["aggregated"] for worker in workers), time.monotonic()
        if total != last:
            last, since = total, now
        if (total >= labelled and now - since >= settle) or now > deadline:
            return total - labelled
        time.sleep(0.5)


def longest_gap(records: list[dict]) -> float:
    times = sorted(r["processed_at"] / 1000 for r in records)
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--events", type=int, default=1200, help="events per run")
    parser.add_argument("--data", default=str(REPO.parent / "shared/datasets/emotion/test.jsonl"))
    parser.add_argument("--keep", type=Path, help="keep every run's logs and registry in this folder")
    parser.add_argument(
        "--storage", choices=("memory", "s3"), default="s3", help="the restarted broker's storage (s3: a moto server)"
    )
    args = parser.parse_args()

    from bench.harness import S3Store
    from models.data import load_file
    from stream.broker import EmbeddedBroker

    texts = load_file(args.data).texts
    results: list[RunResult] = []
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as scratch:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
        bench = Bench(args.keep or Path(scratch), broker, texts, args.rate, args.events)
        if "broker-restart" in args.faults and args.storage == "s3":
            bench.s3 = S3Store()
        for fault in args.faults.split(","):
            run = getattr(bench, fault.replace("-", "_"))
            for i in range(args.runs):
                try:
                    result = run(f"{fault}-{i}")
                except Exception as exc:  # a run that could not finish is a finding, not a crash of the bench
                    result = RunResult(fault, 0, 0, -1, -1, float("nan"), f"run failed: {exc!r}"[:300])
                results.append(result)
                print(json.dumps(result.__dict__), file=sys.stderr, flush=True)
        if bench.s3:
            bench.s3.close()

    print(
        f"{args.runs} runs per fault; {args.rate:.0f} events/s, {args.events} events per run; {os.cpu_count()} cores\n"
    )
    print("| fault | runs | events sent | lost | duplicates per run (median, max) | recovery s (median, max) | notes |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for fault in args.faults.split(","):
        rows = [r for r in results if r.fault == fault]
        recoveries = [r.recovery for r in rows if r.recovery == r.recovery]
        duplicates = [r.duplicates for r in rows]
        notes = "; ".join(sorted({r.note for r in rows if r.note}))[:400]
        print(
            f"| {fault} | {len(rows)} | {sum(r.sent for r in rows)} | {sum(r.lost for r in rows)} | "
            f"{statistics.median(duplicates):.0f}, {max(duplicates)} | "
            f"{statistics.median(recoveries) if recoveries else float('nan'):.1f}, "
            f"{max(recoveries) if recoveries else float('nan'):.1f} | {notes} |"
        )


if __name__ == "__main__":
    main()
