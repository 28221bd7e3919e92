"""The worker's clients ask for metadata without creating topics (``stream.kafka.metadata``)."""

from __future__ import annotations

from aiokafka import client as aiokafka_client
from aiokafka.protocol.metadata import MetadataRequest, MetadataRequest_v1, MetadataRequest_v5

from stream.kafka.metadata import MetadataRequestWithoutAutoCreate, stop_auto_create


def test_metadata_requests_leave_auto_creation_off_unless_asked(monkeypatch):
    monkeypatch.setattr(aiokafka_client, "MetadataRequest", MetadataRequest)  # put back after the test
    stop_auto_create()
    request = aiokafka_client.MetadataRequest(["emotion.labelled"])
    assert isinstance(request, MetadataRequestWithoutAutoCreate)
    assert request.build(MetadataRequest_v5).allow_auto_topic_creation is False
    assert request.build(MetadataRequest_v1).topics == ["emotion.labelled"]  # older versions carry no such flag
    assert MetadataRequestWithoutAutoCreate(None, True).build(MetadataRequest_v5).allow_auto_topic_creation is True
