"""The retraining side job (``emostream trainer``): a plain process, never inside a worker's event loop.

It rebuilds the feedback snapshot from ``emotion.feedback``, dead-letters invalid feedback once, and when enough new
examples arrived (``EMOSTREAM_TRAINER_MIN_NEW``) or a period passed with some (``EMOSTREAM_TRAINER_EVERY``), runs
a cycle (``models.retraining_cycle``); a promoted version is announced on ``emotion.models`` so workers swap it in, and
old versions are pruned (``EMOSTREAM_REGISTRY_KEEP``, ``EMOSTREAM_REGISTRY_KEEP_REJECTED``). Its small state
(the offsets it trained on and dead-lettered, per topic and partition) lives in the registry folder, written
atomically; the topic stays the source of truth. Killed mid-cycle, it leaves the registry untouched: versions
appear by one rename.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import structlog

from emostream.settings import Settings
from models.data import load_splits
from models.registry import ModelRegistry
from models.retraining_cycle import MIN_FEEDBACK, CycleConfig, CycleResult, run_cycle
from stream.announcements import announce_current
from stream.feedback import FeedbackExample, TopicContents, parse_feedback, read_topic, snapshot
from stream.kafka.connection import KafkaConnection
from stream.schemas import InputLimits
from stream.tools import send_values
from stream.trainer_state import TopicMarks, TrainerState

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Skipped:
    """A check that ran no cycle, and why."""

    reason: str


class RetrainingJob:
    """Feedback in, retraining cycles out.

    Its state (``stream.trainer_state``) says, per feedback topic and partition, up to which offset the examples were
    trained on and invalid records dead-lettered.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = ModelRegistry(settings.registry_dir)
        self.state_path = self.registry.root / "trainer-state.json"

    def load_state(self) -> TrainerState:
        """What the last run left (``stream.trainer_state``)."""
        return TrainerState.load(self.state_path)

    def save_state(self, state: TrainerState) -> None:
        """Write the state atomically."""
        state.save(self.state_path)

    def topic_marks(self, state: TrainerState, ends: dict[int, int]) -> TopicMarks:
        """The feedback topic's marks in ``state`` (new if the topic is new; reset if it was recreated)."""
        topic = self.settings.topic_feedback
        marks, behind = state.marks(topic, ends)
        if behind:
            log.warning("feedback topic was recreated: reading it as new", topic=topic, partitions=behind)
        return marks

    async def collect(self, contents: TopicContents, marks: TopicMarks) -> list[FeedbackExample]:
        """The valid examples of ``contents``; invalid records past the dead-letter marks go to the dead-letter topic
        (and the marks move past them)."""
        settings = self.settings
        limits = InputLimits.from_settings(settings)
        examples, letters = [], []
        for partition, offset, value in contents.records:
            parsed = parse_feedback(
                value, topic=settings.topic_feedback, partition=partition, offset=offset, limits=limits
            )
            if isinstance(parsed, FeedbackExample):
                examples.append(parsed)
            elif marks.needs_dead_letter(partition, offset):
                letters.append(parsed)
        if letters:
            await send_values(
                KafkaConnection.of(settings), settings.topic_dlq, [orjson.dumps(d.to_record()) for d in letters]
            )
            for letter in letters:
                log.warning("invalid feedback", error=letter.error, reason=letter.reason[:200], offset=letter.offset)
                marks.dead_lettered_to(letter.partition, letter.offset)
        return examples

    def due(self, state: TrainerState, new: int, *, now: float) -> bool:
        """Whether ``new`` examples since the last cycle start one now (enough of them, or the period is over)."""
        if new <= 0:
            return False
        return new >= self.settings.trainer_min_new or now - state.last_cycle >= self.settings.trainer_every

    async def run_once(self, *, force: bool = False) -> CycleResult | Skipped:
        """Collect feedback and, if a cycle is due (or ``force``: whenever there is something new), run one."""
        self._clean_leftovers()
        settings = self.settings
        state = self.load_state()
        contents = await read_topic(KafkaConnection.of(settings), settings.topic_feedback)
        marks = self.topic_marks(state, contents.ends)
        examples = await self.collect(contents, marks)
        self.save_state(state)
        new = [e for e in examples if marks.is_new(e.partition, e.offset)]
        examples_now = snapshot(examples)
        if not new:
            return self._skip("nothing new since the last cycle", feedback=len(examples_now))
        if len(examples_now) < MIN_FEEDBACK:
            return self._skip(f"waiting for at least {MIN_FEEDBACK} examples", feedback=len(examples_now))
        if not (force or self.due(state, len(new), now=time.time())):
            return self._skip("no retraining due yet", new=len(new), min_new=settings.trainer_min_new)
        base = load_splits(settings.base_data or str(Path(settings.data_dir) / "emotion"))
        config = CycleConfig(
            tolerance=settings.retrain_tolerance,
            replay=settings.retrain_replay,
            epochs=settings.retrain_epochs,
            max_length=settings.max_length,
            device=settings.device,
        )
        previous = self.registry.current_version()
        result = await asyncio.to_thread(run_cycle, self.registry, examples_now, base, config)
        marks.trained_to(contents.ends)
        state.last_cycle = time.time()
        self.save_state(state)
        await announce_current(KafkaConnection.of(settings), settings.topic_models, result.version, previous)
        log.info(
            "cycle done",
            version=result.version.version,
            promoted=result.decision.promoted,
            reason=result.decision.reason,
            new_labels=result.new_labels,
        )
        pruned = self.registry.prune(settings.registry_keep, settings.registry_keep_rejected)
        if pruned:
            log.info("old versions removed", versions=pruned)
        return result

    async def run_forever(self) -> None:
        """Check for a due cycle every ``EMOSTREAM_TRAINER_POLL`` seconds, unattended; a failed check or cycle is
        logged and tried again at the next one (the service does not exit on it)."""
        log.info(
            "trainer running",
            feedback=self.settings.topic_feedback,
            min_new=self.settings.trainer_min_new,
            every=self.settings.trainer_every,
        )
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("retraining check failed: trying again later", retry_in=self.settings.trainer_poll)
            await asyncio.sleep(self.settings.trainer_poll)

    @staticmethod
    def _skip(reason: str, **details: int) -> Skipped:
        log.info("no retraining", reason=reason, **details)
        return Skipped(reason)

    def _clean_leftovers(self) -> None:
        """Remove scratch folders of a cycle that was killed (they are never versions)."""
        if self.registry.root.is_dir():
            for leftover in self.registry.root.glob(".retrain-*"):
                shutil.rmtree(leftover, ignore_errors=True)
