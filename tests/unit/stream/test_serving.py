"""What a worker accepts from the announcements topic (anyone who can write to it can send anything)."""

from __future__ import annotations

import pytest

from stream.serving import announcement_problem


@pytest.mark.parametrize(
    "record",
    [
        [1, 2],
        None,
        "v0002",
        {},
        {"version": None},
        {"version": 2},
        {"version": "totally-legit", "path": "/tmp/evil"},
        {"version": "../../x"},
        {"version": "/abs/path"},
        {"version": "v0002\n"},
    ],
)
def test_anything_but_an_object_with_a_version_name_is_refused(record):
    assert announcement_problem(record)


def test_an_announcement_with_a_version_name_is_accepted_whatever_else_it_says():
    assert announcement_problem({"version": "v0002", "path": "/ignored", "labels": ["joy"]}) is None
