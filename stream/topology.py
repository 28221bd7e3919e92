"""A watch on the topics the worker reads and writes: a broker that lost them must not swallow the outputs in silence.

Tansu's memory engine loses every topic when it restarts, and then accepts records for topics that no longer exist
without storing them; a topic deleted by hand does the same on a broker that creates topics on demand. The worker
would acknowledge such outputs, commit its input and report success. The watch lists the broker's topics every few
seconds; when some of the worker's that it saw before are missing it says so as an error (which topics, that records
sent to them since are gone, and that durable storage avoids it) and creates them again with their partitions, so what
follows is kept. Topics nothing has written to yet are simply created. The worker's own clients never create a topic
by using it (``stream.kafka.metadata``): a lost topic stays missing, and sends to it wait, until the watch creates it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream.kafka.connection import KafkaConnection, client_options
from stream.kafka.refusals import start_client

log = structlog.get_logger(__name__)

CHECK_SECONDS = 5.0
REPEAT_SECONDS = 60.0  # while topics stay missing, the error is repeated this often, not at every check


@dataclass(frozen=True)
class TopicSpec:
    """A topic the worker needs: its name, partitions and whether it is compacted (a table's changelog)."""

    name: str
    partitions: int
    compacted: bool = False

    def new_topic(self) -> NewTopic:
        """The creation request (replication 1: what Faust declares with the worker's settings)."""
        configs = {"cleanup.policy": "compact"} if self.compacted else {}
        return NewTopic(self.name, self.partitions, 1, topic_configs=configs)


def missing(needed: list[TopicSpec], existing: set[str]) -> list[TopicSpec]:
    """The specs whose topic is not among ``existing``."""
    return [spec for spec in needed if spec.name not in existing]


async def watch_topics(broker: str | KafkaConnection, needed: list[TopicSpec], interval: float = CHECK_SECONDS) -> None:
    """Check at once, then every ``interval`` seconds, that the ``needed`` topics exist, and create missing ones (runs
    until cancelled). A topic that was there at an earlier check, or that this created, and is gone is reported as lost
    (an error, repeated once a minute while it stays gone); one never seen is only created (a topic that nothing has
    written to yet). A broker that cannot be reached is left to the clients that use it (they retry and log)."""
    admin = AIOKafkaAdminClient(**client_options(broker))
    await start_client(admin, broker)
    watch = _TopicWatch(admin, needed)
    try:
        while True:
            await watch.check()
            await asyncio.sleep(interval)
    finally:
        await admin.close()


async def ensure_topics(broker: str | KafkaConnection, needed: list[TopicSpec]) -> None:
    """Create the ``needed`` topics that do not exist yet, once, before the worker subscribes to its input: the worker's
    clients do not create topics by using them, and its consumer would only notice a topic created later at its next
    metadata refresh (minutes). A broker that cannot be reached is logged and left to :func:`watch_topics`."""
    admin = AIOKafkaAdminClient(**client_options(broker))
    try:
        await start_client(admin, broker)
        await _TopicWatch(admin, needed).check()
    except Exception as exc:
        log.warning("could not check the worker's topics before starting", error=repr(exc))
    finally:
        await admin.close()


class _TopicWatch:
    """The state of :func:`watch_topics` between checks: which topics existed, and what was last reported."""

    def __init__(self, admin: AIOKafkaAdminClient, needed: list[TopicSpec]) -> None:
        self.admin = admin
        self.needed = needed
        self.seen: set[str] = set()
        self.reported: tuple[frozenset[str], float] = (frozenset(), float("-inf"))

    async def check(self) -> None:
        try:
            existing = set(await self.admin.list_topics())
        except Exception as exc:  # the broker is away: nothing to compare with
            log.debug("topic check skipped", error=repr(exc))
            return
        gone = missing(self.needed, existing)
        self.seen |= {spec.name for spec in self.needed} & existing
        if not gone:
            return
        lost = frozenset(spec.name for spec in gone if spec.name in self.seen)
        now = asyncio.get_running_loop().time()
        if lost and (lost != self.reported[0] or now - self.reported[1] >= REPEAT_SECONDS):
            self.reported = (lost, now)
            log.error(
                "topics missing on the broker: records sent to them since they went are lost; creating them again "
                "(a broker on durable storage keeps its topics across restarts)",
                topics=sorted(lost),
            )
        elif not lost:
            log.info("creating topics the worker writes to", topics=[spec.name for spec in gone])
        try:
            await self.admin.create_topics([spec.new_topic() for spec in gone])
        except TopicAlreadyExistsError:
            pass  # another worker of the group was first
        except Exception as exc:
            log.warning("could not create the missing topics yet", error=repr(exc))
            return
        # They exist now: if one is gone at the next check, it was lost, even though no check saw it listed.
        self.seen |= {spec.name for spec in gone}
