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
from stream.kafka.refusals import BrokerRefused
from stream.schemas import InputLimits
from stream.tools import send_values
from stream.trainer_metrics import TrainerStats, serve
from stream.trainer_state import TopicMarks, TrainerState

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Skipped:
    """A check that ran no cycle, and why (``kind``: the reason's name in metrics)."""

    reason: str
    kind: str


class RetrainingJob:
    """Feedback in, retraining cycles out.

    Its state (``stream.trainer_state``) says, per feedback topic and partition, up to which offset the examples were
    trained on and invalid records dead-lettered.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = ModelRegistry(settings.registry_dir)
        self.state_path = self.registry.root / "trainer-state.json"
        self.connection = KafkaConnection.of(settings)  # built once: it reads the password file
        self.stats = TrainerStats()

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
        self.stats.dead_letters += len(letters)
        if letters:
            await send_values(self.connection, settings.topic_dlq, [orjson.dumps(d.to_record()) for d in letters])
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
        settings, stats = self.settings, self.stats
        stats.checks += 1
        stats.current_version = self.registry.current_version()
        state = self.load_state()
        contents = await read_topic(self.connection, settings.topic_feedback)
        marks = self.topic_marks(state, contents.ends)
        examples = await self.collect(contents, marks)
        self.save_state(state)
        new = [e for e in examples if marks.is_new(e.partition, e.offset)]
        examples_now = snapshot(examples)
        stats.feedback_examples, stats.feedback_backlog = len(examples_now), len(new)
        if not new:
            return self._skip("nothing_new", "nothing new since the last cycle", feedback=len(examples_now))
        if len(examples_now) < MIN_FEEDBACK:
            return self._skip(
                "too_little_feedback", f"waiting for at least {MIN_FEEDBACK} examples", feedback=len(examples_now)
            )
        if not (force or self.due(state, len(new), now=time.time())):
            return self._skip("not_due", "no retraining due yet", new=len(new), min_new=settings.trainer_min_new)
        base = load_splits(settings.base_data or str(Path(settings.data_dir) / "emotion"))
        config = CycleConfig(
            tolerance=settings.retrain_tolerance,
            replay_ratio=settings.retrain_replay_ratio,
            epochs=settings.retrain_epochs,
            max_length=settings.max_length,
            device=settings.device,
        )
        previous = self.registry.current_version()
        started = time.monotonic()
        stats.cycle_running = True
        try:
            result = await asyncio.to_thread(run_cycle, self.registry, examples_now, base, config)
        finally:
            stats.cycle_running = False
        stats.count_cycle(result.decision.promoted, time.monotonic() - started)
        stats.current_version = self.registry.current_version()
        marks.trained_to(contents.ends)
        state.last_cycle = time.time()
        self.save_state(state)
        await announce_current(self.connection, settings.topic_models, result.version, previous)
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
        logged and tried again at the next one (the service does not exit on it). Serves ``/metrics`` and ``/health``
        on ``EMOSTREAM_TRAINER_PORT`` meanwhile."""
        settings = self.settings
        runner = await serve(self.stats, settings.web_host, settings.trainer_port) if settings.trainer_port else None
        log.info(
            "trainer running",
            feedback=settings.topic_feedback,
            min_new=settings.trainer_min_new,
            every=settings.trainer_every,
            metrics=f"http://{settings.web_host}:{settings.trainer_port}/metrics" if runner else None,
        )
        try:
            while True:
                try:
                    await self.run_once()
                    self.stats.consecutive_failures = 0
                except BrokerRefused as refused:
                    if refused.permanent:
                        raise  # a TLS or SASL setting is wrong: retrying cannot help, the service stops saying why
                    self._count_failure(refused)
                except Exception as exc:
                    self._count_failure(exc)
                await asyncio.sleep(settings.trainer_poll)
        finally:
            if runner is not None:
                await runner.cleanup()

    def _count_failure(self, exc: Exception) -> None:
        self.stats.check_failures += 1
        self.stats.consecutive_failures += 1
        log.error(
            "retraining check failed: trying again later",
            retry_in=self.settings.trainer_poll,
            error=repr(exc),
            exc_info=not isinstance(exc, BrokerRefused),
        )

    def _skip(self, kind: str, reason: str, **details: int) -> Skipped:
        self.stats.count_skip(kind)
        log.info("no retraining", reason=reason, **details)
        return Skipped(reason, kind)

    def _clean_leftovers(self) -> None:
        """Remove scratch folders of a cycle that was killed (they are never versions)."""
        if self.registry.root.is_dir():
            for leftover in self.registry.root.glob(".retrain-*"):
                shutil.rmtree(leftover, ignore_errors=True)
