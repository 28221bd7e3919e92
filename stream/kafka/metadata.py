"""Change 6: the worker's Kafka clients never create a topic by asking for its metadata.

aiokafka asks for the metadata of the topics a client uses with ``allow_auto_topic_creation`` on (every request of
version 4 and up), and a broker that allows auto-creation (Tansu; Apache Kafka's default) then creates any topic it
lacks, with the broker's defaults: another partition count, and no compaction for a changelog. So a topic deleted by
an operator, or lost in a broker restart on memory storage, came back within a fraction of a second, emptied, with
records sent meanwhile gone and nothing to show for it: the worker's check for lost topics (``stream.topology``) could
not see a gap that short (the lost-topic integration test failed whenever the check missed it).

With auto-creation off in the worker, a lost topic stays missing until the check reports it and creates it again with
the worker's own settings; sends to it wait for it meanwhile instead of landing in a topic that nothing reports. The
worker creates every topic it needs itself (Faust declares the input and internal ones, ``stream.topology`` the
outputs), so it never relied on auto-creation. Upstream: aiokafka offers no setting for it (the Java clients have
``allow.auto.create.topics``).
"""

from __future__ import annotations

from aiokafka import client as aiokafka_client
from aiokafka.protocol.metadata import MetadataRequest


class MetadataRequestWithoutAutoCreate(MetadataRequest):
    """aiokafka's metadata request with topic auto-creation off unless asked for."""

    def __init__(self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = False) -> None:
        super().__init__(topics, allow_auto_topic_creation)


def stop_auto_create() -> None:
    """Make every aiokafka client of this process ask for metadata without creating topics (the worker's process)."""
    aiokafka_client.MetadataRequest = MetadataRequestWithoutAutoCreate
