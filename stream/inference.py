"""Forward passes in child processes, so the model and the worker's event loop never wait for each other's GIL.

Each child is a fresh interpreter (``multiprocessing`` spawn, which is also what CUDA needs) that runs one forward pass
at a time on an equal share of the CPU's threads and keeps at most two models: the one in service and, during a hot
swap, the next one. Only texts go in, and predictions come back in columns (``models.prediction.PredictionColumns``).
With the model on threads of the worker process, Faust's per-event work and the forward passes took turns on one GIL
and about 145% of two cores was in use during ``bench/stream_throughput.py``; in children the cores stay busy
(docs/benchmarks.md).

A child that dies (killed, out of memory) is replaced and the batch it had is retried once on the new one; a batch that
kills its child twice fails, and the agent dead-letters it.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import structlog

from emostream.settings import Settings
from models.prediction import PredictionColumns

log = structlog.get_logger(__name__)

PARENT_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class ModelInfo:
    """What a child reports about a model it loaded."""

    labels: tuple[str, ...]
    device: str
    quantized: bool
    pass_overhead_tokens: float | None = None  # on CPU, what one more forward pass costs (models.pass_planning)


# --- in a child process ----------------------------------------------------------------------------------------------

_settings: Settings | None = None
_models: dict[str, Any] = {}  # checkpoint folder -> EmotionClassifier


def _start_child(settings: Settings, torch_threads: int) -> None:
    global _settings
    import torch

    _settings = settings
    torch.set_num_threads(torch_threads)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A worker killed with SIGKILL cannot stop its children: they stop themselves when it is gone."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def _load(path: str, keep: str | None) -> ModelInfo:
    stale = [p for p in _models if p not in (path, keep)]
    if stale:
        # Frozen objects (below) are never searched for reference cycles: thaw them, so that a dropped model held in
        # one is freed too (a BERT is freed by reference counting alone; other architectures need not be).
        gc.unfreeze()
        for loaded in stale:
            del _models[loaded]
        gc.collect()
    if path not in _models:
        assert _settings is not None, "child not started"
        from models.classifier import load_classifier  # torch is imported in the children only

        classifier = load_classifier(path, _settings)
        if classifier.device.type == "cpu":
            # Timed for this machine now, while the other processes serve, rather than inside a micro-batch's latency.
            classifier.time_pass_overhead()
        _models[path] = classifier
    # torch, transformers and the model are objects that live as long as the model: kept out of the collector's way
    # (each full collection walked them all, about 0.13 s, several times a minute under load; docs/benchmarks.md).
    gc.freeze()
    classifier = _models[path]
    overhead = round(classifier.pass_overhead, 1) if classifier.device.type == "cpu" else None
    return ModelInfo(classifier.labels, str(classifier.device), classifier.quantized, overhead)


def _predict(path: str, texts: list[str]) -> PredictionColumns:
    return _models[path].predict_columns(texts)


# --- in the worker ----------------------------------------------------------------------------------------------------


class _Child:
    """One child process behind a one-worker pool (so that a call can be aimed at it), and its calls in flight."""

    def __init__(self, settings: Settings, torch_threads: int) -> None:
        self.settings = settings
        self.torch_threads = torch_threads
        self.pending = 0
        self.replacing = asyncio.Lock()
        self.executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_child,
            initargs=(self.settings, self.torch_threads),
        )

    async def call(self, function: Any, *args: Any) -> Any:
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
        finally:
            self.pending -= 1

    async def replace(self, broken: ProcessPoolExecutor, path: str) -> None:
        """Start a new process in place of ``broken`` (once, however many calls saw it die) and load ``path``."""
        async with self.replacing:
            if self.executor is broken:
                broken.shutdown(wait=False, cancel_futures=True)
                self.executor = self._new_executor()
                await self.call(_load, path, None)

    def alive(self) -> bool:
        """Whether the child's process runs (or has not been started yet: the pool starts it on the first call).
        Reads ``ProcessPoolExecutor``'s process table, which the standard library keeps as ``_processes``."""
        processes = getattr(self.executor, "_processes", None) or {}
        return all(process.is_alive() for process in processes.values())

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class InferencePool:
    """``processes`` children that serve one model (by its checkpoint folder) and can load the next."""

    def __init__(self, settings: Settings, processes: int) -> None:
        if processes < 1:
            raise ValueError("at least one inference process is needed")
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        torch_threads = max(1, cpus // processes)
        self._children = [_Child(settings, torch_threads) for _ in range(processes)]

    async def load(self, path: str, keep: str | None = None) -> ModelInfo:
        """Load ``path`` in every child, one child at a time so the others go on serving; drop models other than
        ``path`` and ``keep``. Raises what loading raised (the children keep the models they had)."""
        info = None
        for child in self._children:
            info = await child.call(_load, path, keep)
        assert info is not None
        return info

    async def predict(self, path: str, texts: list[str]) -> PredictionColumns:
        """Predictions of the loaded model ``path`` for ``texts``, on the child with the fewest calls in flight."""
        child = min(self._children, key=lambda c: c.pending)
        executor = child.executor
        try:
            return await child.call(_predict, path, texts)
        except BrokenProcessPool:
            log.error("an inference process died: starting a new one and retrying its batch", size=len(texts))
            await child.replace(executor, path)
            return await child.call(_predict, path, texts)

    def alive(self) -> list[bool]:
        """Per child, whether its process runs (a dead one is replaced on its next call)."""
        return [child.alive() for child in self._children]

    def close(self) -> None:
        """Stop the children (calls still queued are cancelled)."""
        for child in self._children:
            child.close()
