"""The retraining side job (``emostream trainer``): a plain process, never inside a worker's event loop.

It rebuilds the feedback snapshot from ``emotion.feedback``, dead-letters invalid feedback once, and when enough new
examples arrived (``EMOSTREAM_TRAINER_MIN_NEW``) or a period passed with some (``EMOSTREAM_TRAINER_EVERY``), runs a
cycle (``models.retraining``); a promoted version is announced on ``emotion.models`` so workers swap it in. Its small
state (what it trained on, which offsets it dead-lettered) lives in the registry folder, written atomically; the topic
stays the source of truth. Killed mid-cycle, it leaves the registry untouched: versions appear by one rename.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path

import orjson
import structlog

from emostream.settings import Settings
from models.data import load_splits
from models.registry import ModelRegistry
from models.retraining import CycleConfig, CycleResult, run_cycle
from stream.announcements import announce
from stream.feedback import FeedbackExample, parse_feedback, read_topic, snapshot
from stream.schemas import InputLimits
from stream.tools import send_values

log = structlog.get_logger(__name__)


class TrainerJob:
    """Feedback in, retraining cycles out."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = ModelRegistry(settings.registry_dir)
        self.state_path = self.registry.root / "trainer-state.json"

    def load_state(self) -> dict:
        """What the last run left: examples trained on, time of the last cycle, dead-lettered offsets."""
        try:
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"trained_on": 0, "last_cycle": 0.0, "dead_lettered": {}}

    def save_state(self, state: dict) -> None:
        """Write the state atomically."""
        self.registry.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(f".trainer-state.{os.getpid()}")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.state_path)

    async def collect(self, state: dict) -> list[FeedbackExample]:
        """Read the whole feedback topic; dead-letter invalid records not dead-lettered before."""
        settings = self.settings
        examples, letters = [], []
        for partition, offset, value in await read_topic(settings.broker_url, settings.topic_feedback):
            parsed = parse_feedback(
                value,
                topic=settings.topic_feedback,
                partition=partition,
                offset=offset,
                limits=InputLimits.from_settings(settings),
            )
            if isinstance(parsed, FeedbackExample):
                examples.append(parsed)
            elif offset >= state["dead_lettered"].get(str(partition), 0):
                letters.append(parsed)
        if letters:
            await send_values(settings.broker_url, settings.topic_dlq, [orjson.dumps(d.to_record()) for d in letters])
            for letter in letters:
                log.warning("invalid feedback", error=letter.error, reason=letter.reason, offset=letter.offset)
                done = state["dead_lettered"].get(str(letter.partition), 0)
                state["dead_lettered"][str(letter.partition)] = max(done, letter.offset + 1)
            self.save_state(state)
        return examples

    def due(self, state: dict, examples: int, *, now: float) -> bool:
        """Whether a cycle should run now."""
        new = examples - state["trained_on"]
        if new <= 0:
            return False
        return new >= self.settings.trainer_min_new or now - state["last_cycle"] >= self.settings.trainer_every

    async def run_once(self, *, force: bool = False) -> CycleResult | None:
        """Collect feedback and, if due (or ``force`` and there is any), run one cycle."""
        self._clean_leftovers()
        state = self.load_state()
        examples = await self.collect(state)
        if not examples or not (force or self.due(state, len(examples), now=time.time())):
            log.info("no retraining due", feedback=len(examples), trained_on=state["trained_on"])
            return None
        settings = self.settings
        base = load_splits(settings.base_data or str(Path(settings.data_dir) / "emotion"))
        config = CycleConfig(
            tolerance=settings.retrain_tolerance,
            replay=settings.retrain_replay,
            epochs=settings.retrain_epochs,
            max_length=settings.max_length,
            device=settings.device,
        )
        result = await asyncio.to_thread(run_cycle, self.registry, snapshot(examples), base, config)
        state.update(trained_on=len(examples), last_cycle=time.time())
        self.save_state(state)
        if result.decision.promoted:
            await announce(settings.broker_url, settings.topic_models, result.version)
        log.info(
            "cycle done",
            version=result.version.version,
            promoted=result.decision.promoted,
            reason=result.decision.reason,
            new_labels=result.new_labels,
        )
        return result

    async def run_forever(self) -> None:
        """Check for a due cycle every ``EMOSTREAM_TRAINER_POLL`` seconds, unattended."""
        log.info(
            "trainer running",
            feedback=self.settings.topic_feedback,
            min_new=self.settings.trainer_min_new,
            every=self.settings.trainer_every,
        )
        while True:
            await self.run_once()
            await asyncio.sleep(self.settings.trainer_poll)

    def _clean_leftovers(self) -> None:
        """Remove scratch folders of a cycle that was killed (they are never versions)."""
        if self.registry.root.is_dir():
            for leftover in self.registry.root.glob(".retrain-*"):
                shutil.rmtree(leftover, ignore_errors=True)
