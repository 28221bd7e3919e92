"""The worker's topics, named by the settings. Values are raw bytes: the stream encodes and decodes JSON with orjson."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from emostream.settings import Settings


@dataclass(frozen=True)
class Topics:
    """Input, outputs and the internal re-keyed stream that feeds the aggregates."""

    texts: faust.TopicT
    labelled: faust.TopicT
    aggregates: faust.TopicT
    dlq: faust.TopicT
    late: faust.TopicT
    drift: faust.TopicT
    review: faust.TopicT
    aggregation_input: faust.TopicT

    @classmethod
    def declare(cls, app: faust.App, settings: Settings) -> Topics:
        """Declare every topic on ``app`` (Faust creates missing ones with ``settings.partitions`` partitions)."""

        def topic(name: str, *, internal: bool = False) -> faust.TopicT:
            return app.topic(
                name,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
                partitions=settings.partitions,
                internal=internal,
            )

        return cls(
            texts=topic(settings.topic_texts),
            labelled=topic(settings.topic_labelled),
            aggregates=topic(settings.topic_aggregates),
            dlq=topic(settings.topic_dlq),
            late=topic(settings.topic_late),
            drift=topic(settings.topic_drift),
            review=topic(settings.topic_review),
            # Per batch and aggregation key (a source, or "*"): the [label, score, ts, id, source] of its labelled
            # events, keyed so that each key's windows live in one partition of the state table; and the window ticks
            # (stream.ticks), unkeyed, one to each partition.
            aggregation_input=topic(f"{settings.app_id}-aggregation-input", internal=True),
        )
