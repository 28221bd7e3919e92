"""Which of the worker's topics a broker lost, and how they are created again."""

from __future__ import annotations

from stream.topology import TopicSpec, missing


def test_missing_topics_and_their_creation_requests():
    needed = [TopicSpec("emotion.labelled", 4), TopicSpec("app-state-changelog", 4, compacted=True)]
    assert missing(needed, {"emotion.labelled", "other"}) == [needed[1]]
    assert missing(needed, {"emotion.labelled", "app-state-changelog"}) == []
    request = needed[1].new_topic()
    assert (request.name, request.num_partitions, request.topic_configs) == (
        "app-state-changelog",
        4,
        {"cleanup.policy": "compact"},
    )
    assert needed[0].new_topic().topic_configs == {}
