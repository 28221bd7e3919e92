"""The worker's model: resolved from the registry, loaded in the inference processes, hot-swapped between batches.

The event loop only awaits: ``predict`` hands a micro-batch to one of ``EMOSTREAM_INFERENCE_PROCESSES`` child processes
(``stream.inference``), so Kafka heartbeats, fetches and sends go on while the model works, and neither side waits for
the other's GIL.

The model in service is one record (version, folder, what the children reported). A hot swap (``swap``, driven by
announcements on ``emotion.models``) first loads the new version in the children while the old one serves, then waits
until the batches already on the old model are done and holds new ones back meanwhile, so the version changes at one
boundary and no event is dropped or labelled twice.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import structlog

from emostream.settings import Settings
from models.prediction import Prediction
from models.registry import ModelRegistry
from stream.inference import InferencePool, ModelInfo

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """The model in service: the version name that goes into every output record, its checkpoint folder, and what
    the inference processes reported when they loaded it."""

    version: str
    path: str
    info: ModelInfo


class ModelServer:
    """Serves the configured model from the inference processes without blocking the event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = ModelRegistry(settings.registry_dir)
        self._served: ServedModel | None = None
        self._pool = InferencePool(settings, settings.inference_processes)
        self._gate = asyncio.Condition()  # guards the two fields below
        self._in_flight = 0  # predictions running on the model in service
        self._swapping = False  # a new model waits for those to finish; new predictions wait for it
        self._resolving = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-resolver")
        self._changing_model = asyncio.Lock()  # one load or swap at a time

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
            )
        return self._served

    async def _resolve(self, ref: str) -> tuple[str, str]:
        """The version name and verified folder of ``ref`` (checksums are read off the event loop)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._resolving, resolve_model, self.registry, ref)

    async def swap(self, announcement: dict) -> bool:
        """Load an announced version in the inference processes and put it in service between two batches.

        A version that fails to load (unknown, corrupt, unreadable) is logged as an error and the current model keeps
        serving. Returns whether the model changed.
        """
        async with self._changing_model:
            return await self._swap(announcement)

    async def _swap(self, announcement: dict) -> bool:
        version = str(announcement.get("version", ""))
        if self._served is not None and version == self._served.version:
            return False
        ref = version if (self.registry.versions_dir / version).is_dir() else str(announcement.get("path", ""))
        started = time.perf_counter()
        current = self._served
        try:
            resolved_version, path = await self._resolve(ref)
            info = await self._pool.load(path, keep=current.path if current else None)
        except Exception as exc:
            log.error(
                "model swap failed: the current model keeps serving",
                announced=version,
                error=str(exc),
                model_version=current.version if current else None,
            )
            return False
        async with self._gate:
            self._swapping = True
            await self._gate.wait_for(lambda: self._in_flight == 0)
            self._served = ServedModel(version or resolved_version, path, info)
            self._swapping = False
            self._gate.notify_all()
        log.info(
            "model swapped",
            model_version=self._served.version,
            previous=current.version if current else None,
            load_seconds=round(time.perf_counter() - started, 2),
            labels=list(info.labels),
        )
        return True

    async def catch_up(self) -> bool:
        """Swap to the registry's current version if it moved while no announcement could reach this worker."""
        if self.settings.model != "current":
            return False
        current = self.registry.current_version()
        if current is None or (self._served is not None and self._served.version == current):
            return False
        return await self.swap({"version": current})

    async def predict(self, texts: list[str]) -> tuple[list[Prediction], str]:
        """Predictions for ``texts`` and the version that made them (one model for the whole batch)."""
        async with self._gate:
            await self._gate.wait_for(lambda: not self._swapping)
            served = self.loaded
            self._in_flight += 1
        try:
            predictions = await self._pool.predict(served.path, texts)
        finally:
            async with self._gate:
                self._in_flight -= 1
                self._gate.notify_all()
        return predictions, served.version

    def close(self) -> None:
        """Stop the inference processes."""
        self._pool.close()
        self._resolving.shutdown(wait=False)


def resolve_model(registry: ModelRegistry, ref: str) -> tuple[str, str]:
    """The version name and verified folder of ``ref``: ``current``, a version, or a checkpoint folder (named after
    the folder)."""
    version = registry.current_version() if ref == "current" else None
    path = registry.resolve(version or ref)
    return version or Path(path).name, str(path)
