"""The worker's model: resolved from the registry, loaded in the inference processes, hot-swapped between batches.

The event loop only awaits: ``predict`` hands a micro-batch to one of ``EMOSTREAM_INFERENCE_PROCESSES`` child processes
(``stream.inference``), so Kafka heartbeats, fetches and sends go on while the model works, and neither side waits for
the other's GIL.

The model in service is one record (version, folder, what the children reported). A hot swap (``follow_registry``,
driven by announcements on ``emotion.models``) first loads the new version in the children while the old one serves,
then waits until the batches already on the old model are done and holds new ones back meanwhile, so the version
changes at one boundary and no event is dropped or labelled twice.

The announcements topic is not trusted: anyone who can write to it could otherwise make a worker load any folder. An
announcement only says *when* to look; *what* to serve is the registry's ``current`` pointer, and only a registered
version whose manifest verifies is loaded. Malformed announcements, and ones that do not match the registry, are
logged and ignored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from emostream.settings import Settings
from models.prediction import PredictionColumns
from models.registry import VERSION_PATTERN, ModelRegistry
from stream.inference import InferencePool, ModelInfo

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """The model in service: the version name that goes into every output record, its checkpoint folder, and what
    the inference processes reported when they loaded it."""

    version: str
    path: str
    info: ModelInfo


class SwapGate:
    """The one switch point of a hot swap: a swap waits until the predictions running on the old model are done and
    holds new ones back meanwhile, so every prediction runs wholly on one model and the version changes at one
    boundary."""

    def __init__(self) -> None:
        self._condition = asyncio.Condition()  # guards the two fields below
        self._in_flight = 0  # predictions running on the model in service
        self._swapping = False  # a new model waits for those to finish; new predictions wait for it

    @property
    def in_flight(self) -> int:
        """Predictions running now."""
        return self._in_flight

    @asynccontextmanager
    async def prediction(self) -> AsyncIterator[None]:
        """Run a prediction: waits while a swap is under way, then counts as in flight until the block ends."""
        async with self._condition:
            await self._condition.wait_for(lambda: not self._swapping)
            self._in_flight += 1
        try:
            yield
        finally:
            async with self._condition:
                self._in_flight -= 1
                self._condition.notify_all()

    @asynccontextmanager
    async def swap(self) -> AsyncIterator[None]:
        """Change the model: the block runs once no prediction is in flight, with new ones held back until it ends."""
        async with self._condition:
            self._swapping = True
            try:
                await self._condition.wait_for(lambda: self._in_flight == 0)
                yield
            finally:
                self._swapping = False
                self._condition.notify_all()


class ModelServer:
    """Serves the configured model from the inference processes without blocking the event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = ModelRegistry(settings.registry_dir)
        self._served: ServedModel | None = None
        self._pool = InferencePool(settings, settings.inference_processes)
        self._gate = SwapGate()
        self._resolving = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-resolver")
        self._changing_model = asyncio.Lock()  # one load or swap at a time
        self.swap_outcomes = {"swapped": 0, "failed": 0}  # hot swaps since the start (GET /metrics)

    @property
    def is_loaded(self) -> bool:
        """Whether a model is in service."""
        return self._served is not None

    @property
    def loaded(self) -> ServedModel:
        """The model in service; raises if :meth:`ensure_loaded` has not run."""
        if self._served is None:
            raise RuntimeError("no model loaded yet")
        return self._served

    async def ensure_loaded(self) -> ServedModel:
        """Load the configured model once (every agent actor asks; the first one loads it)."""
        async with self._changing_model:
            if self._served is not None:
                return self._served
            version, path = await self._resolve(self.settings.model)
            self._served = ServedModel(version, path, await self._pool.load(path))
            log.info(
                "model loaded",
                model_version=version,
                labels=list(self._served.info.labels),
                device=self._served.info.device,
                int8=self._served.info.quantized,
                inference_processes=self.settings.inference_processes,
                pass_overhead_tokens=self._served.info.pass_overhead_tokens,  # as the last process timed it
            )
        return self._served

    async def _resolve(self, ref: str) -> tuple[str, str]:
        """The version name and verified folder of ``ref`` (checksums are read off the event loop)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._resolving, resolve_model, self.registry, ref)

    async def on_announcement(self, announcement: Any) -> bool:
        """Check an announcement from ``emotion.models`` and follow the registry if it is one. Returns whether the
        model changed; never raises for what the record holds."""
        problem = announcement_problem(announcement)
        if problem is not None:
            log.error("model announcement ignored", reason=problem, announcement=repr(announcement)[:200])
            return False
        if self.settings.model != "current":
            log.warning(
                "model announcement ignored: this worker serves a pinned model",
                announced=announcement["version"],
                model=self.settings.model,
            )
            return False
        return await self.follow_registry(announced=announcement["version"])

    async def follow_registry(self, announced: str | None = None) -> bool:
        """Put the registry's ``current`` version in service between two batches, if it is not already.

        A version that fails to load (missing, corrupt, unreadable) is logged as an error and the current model keeps
        serving. Returns whether the model changed.
        """
        async with self._changing_model:
            return await self._swap_to_current(announced)

    async def _swap_to_current(self, announced: str | None) -> bool:
        current = self._served
        started = time.perf_counter()
        try:
            pointer = self.registry.current_version()  # a few bytes: read before any checksum is computed
            if announced is not None and announced != pointer:
                log.warning(
                    "announced version is not the registry's current one: following the registry",
                    announced=announced,
                    current=pointer,
                )
            if current is not None and pointer == current.version:
                return False  # a repeated announcement costs no verification
            version, path = await self._resolve(pointer or "current")
            info = await self._pool.load(path, keep=current.path if current else None)
        except Exception as exc:
            self.swap_outcomes["failed"] += 1
            log.error(
                "model swap failed: the current model keeps serving",
                announced=announced,
                error=str(exc),
                model_version=current.version if current else None,
            )
            return False
        async with self._gate.swap():
            self._served = ServedModel(version, path, info)
        self.swap_outcomes["swapped"] += 1
        log.info(
            "model swapped",
            model_version=self._served.version,
            previous=current.version if current else None,
            load_seconds=round(time.perf_counter() - started, 2),
            labels=list(info.labels),
            pass_overhead_tokens=info.pass_overhead_tokens,
        )
        return True

    def processes_alive(self) -> list[bool]:
        """Per inference process, whether it runs."""
        return self._pool.alive()

    async def catch_up(self) -> bool:
        """Swap to the registry's current version if it moved while no announcement could reach this worker."""
        if self.settings.model != "current":
            return False
        return await self.follow_registry()

    async def predict(self, texts: list[str]) -> tuple[PredictionColumns, str]:
        """Predictions for ``texts`` and the version that made them (one model for the whole batch)."""
        async with self._gate.prediction():
            served = self.loaded
            predictions = await self._pool.predict(served.path, texts)
        return predictions, served.version

    def close(self) -> None:
        """Stop the inference processes."""
        self._pool.close()
        self._resolving.shutdown(wait=False)


def announcement_problem(announcement: Any) -> str | None:
    """What is wrong with a decoded announcement record, or None: it must be an object whose ``version`` is a version
    name (its other fields are informational)."""
    if not isinstance(announcement, dict):
        return f"not a JSON object but {type(announcement).__name__}"
    version = announcement.get("version")
    if not isinstance(version, str) or not VERSION_PATTERN.match(version):
        return "no valid 'version' (v0001, v0002, ...)"
    return None


def resolve_model(registry: ModelRegistry, ref: str) -> tuple[str, str]:
    """The version name and verified folder of ``ref``: ``current``, a version, or a checkpoint folder (named after
    the folder)."""
    version = registry.current_version() if ref == "current" else None
    path = registry.resolve(version or ref)
    return version or Path(path).name, str(path)
