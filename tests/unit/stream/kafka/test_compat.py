"""The start-up check of ``stream.kafka.compat``: the pinned versions, and every private name the overrides use."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from emostream.settings import Settings
from stream.kafka import compat
from stream.kafka.compat import PINNED, IncompatibleKafkaLibraries, check_installed, require_attributes

PYPROJECT = Path(__file__).resolve().parents[4] / "pyproject.toml"


def test_pyproject_pins_exactly_the_versions_the_check_expects():
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pins = dict(re.fullmatch(r"([\w-]+)==([\w.]+)", d).groups() for d in dependencies if "==" in d)
    assert {name: pins.get(name) for name in PINNED} == PINNED


def test_the_installed_libraries_pass_the_check():
    check_installed()


def test_another_version_is_refused_with_the_pin_named(monkeypatch):
    real = metadata.version
    monkeypatch.setattr(compat.metadata, "version", lambda name: "0.16.0" if name == "faust-streaming" else real(name))
    with pytest.raises(IncompatibleKafkaLibraries, match=r"faust-streaming==0\.15\.3.*faust-streaming 0\.16\.0 is"):
        check_installed()


def test_a_missing_private_name_is_refused_with_what_relies_on_it(monkeypatch):
    from faust.transport import consumer as faust_consumer

    monkeypatch.delattr(faust_consumer.Consumer, "_new_offset")  # where the aiokafka driver's class inherits it from
    with pytest.raises(IncompatibleKafkaLibraries, match=r"_new_offset is gone \(no commit past a record in flight\)"):
        check_installed()


def test_a_changed_signature_is_refused(monkeypatch):
    from faust.transport.drivers import aiokafka as faust_aiokafka

    async def getmany(self, partitions, timeout, max_records):  # a future shape
        return {}

    monkeypatch.setattr(faust_aiokafka.AIOKafkaConsumerThread, "getmany", getmany)
    with pytest.raises(IncompatibleKafkaLibraries, match="getmany takes other arguments"):
        check_installed()


def test_missing_instance_state_is_refused():
    class Thing:
        present = 1

    require_attributes(Thing(), ["present"], "a test")
    with pytest.raises(IncompatibleKafkaLibraries, match=r"has no _acked \(a test\)"):
        require_attributes(Thing(), ["present", "_acked"], "a test")


def test_the_worker_app_refuses_to_start_on_other_versions(monkeypatch, tmp_path):
    from stream.app import create_app

    real = metadata.version
    monkeypatch.setattr(compat.metadata, "version", lambda name: "0.15.0" if name == "aiokafka" else real(name))
    with pytest.raises(IncompatibleKafkaLibraries, match=r"aiokafka 0\.15\.0 is installed"):
        create_app(Settings(broker_url="kafka://127.0.0.1:9", state_dir=tmp_path))
