"""The worker's model: loaded from the registry off the event loop, called on dedicated inference threads.

The event loop only awaits: ``predict`` hands a micro-batch to an inference thread, so Kafka heartbeats, fetches and
sends go on while the model works. On CPU, ``EMOSTREAM_INFERENCE_THREADS`` micro-batches run side by side and torch's
own threads are divided among them. With one forward pass on two torch threads next to the event loop, about 145% of
the two cores was in use during ``bench/stream_throughput.py``; two passes on one thread each raised the end-to-end
rate from 0.52 to 0.68-0.73 of the model-bound rate (docs/benchmarks.md).

The classifier and its version are kept as one pair. A hot swap (``swap``, driven by announcements on
``emotion.models``) waits until the batches already on the old model are done and holds new ones back meanwhile, so
the version changes at one boundary and no event is dropped or labelled twice.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import structlog
import torch

from emostream.settings import Settings
from models.classifier import EmotionClassifier, Prediction
from models.registry import ModelRegistry

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A classifier with the version name that goes into every output record."""

    classifier: EmotionClassifier
    version: str


class ModelServer:
    """Loads the configured model and runs predictions without blocking the event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = ModelRegistry(settings.registry_dir)
        self._loaded: LoadedModel | None = None
        self._inference = ThreadPoolExecutor(max_workers=settings.inference_threads, thread_name_prefix="inference")
        self._gate = asyncio.Condition()  # guards the two fields below
        self._in_flight = 0  # predictions running on the model in service
        self._swapping = False  # a new model waits for those to finish; new predictions wait for it
        self._loading = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader")

    @property
    def is_loaded(self) -> bool:
        """Whether a model is in service."""
        return self._loaded is not None

    @property
    def loaded(self) -> LoadedModel:
        """The model in service; raises if :meth:`ensure_loaded` has not run."""
        if self._loaded is None:
            raise RuntimeError("no model loaded yet")
        return self._loaded

    async def ensure_loaded(self) -> LoadedModel:
        """Load the configured model once (off the event loop)."""
        if self._loaded is None:
            loop = asyncio.get_running_loop()
            self._loaded = await loop.run_in_executor(self._loading, self.load, self.settings.model)
            share_cpu_threads(self._loaded.classifier, self.settings.inference_threads)
            log.info(
                "model loaded",
                model_version=self._loaded.version,
                labels=list(self._loaded.classifier.labels),
                device=str(self._loaded.classifier.device),
                int8=self._loaded.classifier.quantized,
            )
        return self._loaded

    def load(self, ref: str) -> LoadedModel:
        """Resolve ``ref`` (``current``, a version or a folder), verify it and load it (blocking)."""
        version = self.registry.current_version() if ref == "current" else None
        path = self.registry.resolve(version or ref)
        settings = self.settings
        classifier = EmotionClassifier.from_pretrained(
            path,
            device=settings.device,
            max_length=settings.max_length,
            batch_size=settings.batch_size,
            quantize=settings.quantize,
        )
        return LoadedModel(classifier, version or Path(path).name)

    async def swap(self, announcement: dict) -> bool:
        """Load an announced version off the event loop and put it in service between two batches.

        A version that fails to load (unknown, corrupt, unreadable) is logged as an error and the current model keeps
        serving. Returns whether the model changed.
        """
        version = str(announcement.get("version", ""))
        if self._loaded is not None and version == self._loaded.version:
            return False
        ref = version if (self.registry.versions_dir / version).is_dir() else str(announcement.get("path", ""))
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            loaded = await loop.run_in_executor(self._loading, self.load, ref)
        except Exception as exc:
            log.error(
                "model swap failed: the current model keeps serving",
                announced=version,
                error=str(exc),
                model_version=self._loaded.version if self._loaded else None,
            )
            return False
        async with self._gate:
            self._swapping = True
            await self._gate.wait_for(lambda: self._in_flight == 0)
            previous, self._loaded = self._loaded, LoadedModel(loaded.classifier, version or loaded.version)
            self._swapping = False
            self._gate.notify_all()
        log.info(
            "model swapped",
            model_version=self._loaded.version,
            previous=previous.version if previous else None,
            load_seconds=round(time.perf_counter() - started, 2),
            labels=list(loaded.classifier.labels),
        )
        return True

    async def catch_up(self) -> bool:
        """Swap to the registry's current version if it moved while no announcement could reach this worker."""
        if self.settings.model != "current":
            return False
        current = self.registry.current_version()
        if current is None or (self._loaded is not None and self._loaded.version == current):
            return False
        return await self.swap({"version": current})

    async def predict(self, texts: list[str]) -> tuple[list[Prediction], str]:
        """Predictions for ``texts`` and the version that made them (one model for the whole batch)."""
        async with self._gate:
            await self._gate.wait_for(lambda: not self._swapping)
            loaded = self.loaded
            self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            predictions = await loop.run_in_executor(self._inference, loaded.classifier.predict, texts)
        finally:
            async with self._gate:
                self._in_flight -= 1
                self._gate.notify_all()
        return predictions, loaded.version


def share_cpu_threads(classifier: EmotionClassifier, inference_threads: int) -> None:
    """On CPU, give each of the ``inference_threads`` concurrent forward passes an equal share of torch's threads."""
    if classifier.device.type == "cpu" and inference_threads > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // inference_threads))
