"""Registry: versions, the atomic current pointer, promote/rollback, and refusing corrupt or unsafe versions.

The registry only moves and checks files, so these tests use small stand-in checkpoint folders.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from models.registry import CorruptVersionError, ModelRegistry, RegistryError, _remove_if_abandoned


def make_run(folder, accuracy=0.9):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights" * 100)
    (folder / "tokenizer_config.json").write_text("{}")
    (folder / "labels.json").write_text(json.dumps(["joy", "anger"]))
    (folder / "metrics.json").write_text(json.dumps({"test": {"accuracy": accuracy, "macro_f1": accuracy - 0.1}}))
    return folder


@pytest.fixture
def registry(tmp_path):
    return ModelRegistry(tmp_path / "registry")


def test_register_numbers_versions_and_first_promotion(registry, tmp_path):
    assert registry.versions() == [] and registry.current_version() is None
    first = registry.register(make_run(tmp_path / "r1"), promote=True)
    second = registry.register(make_run(tmp_path / "r2"))
    assert (first.version, second.version) == ("v0001", "v0002")
    assert registry.current_version() == "v0001"
    assert [v.is_current for v in registry.versions()] == [True, False]
    assert registry.info("v0001").to_dict()["test_accuracy"] == 0.9
    assert registry.resolve("current") == registry.versions_dir / "v0001"
    assert not list((registry.root / ".staging").iterdir())


def test_promote_and_rollback_follow_the_history(registry, tmp_path):
    for i in range(3):
        registry.register(make_run(tmp_path / f"r{i}"), promote=True)
    assert registry.current_version() == "v0003"
    assert registry.rollback().version == "v0002"
    assert registry.rollback().version == "v0001"
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback()
    registry.promote("v0003")
    assert registry.current_version() == "v0003"
    assert registry.rollback().version == "v0001"
    actions = [json.loads(line)["action"] for line in (registry.root / "history.jsonl").read_text().splitlines()]
    assert actions.count("register") == 3 and actions.count("rollback") == 3


def test_unknown_version_and_empty_registry(registry):
    with pytest.raises(RegistryError, match="no current model"):
        registry.resolve("current")
    with pytest.raises(RegistryError, match="no version"):
        registry.promote("v0042")


@pytest.mark.parametrize("damage", ["truncate", "delete", "manifest", "pickle"])
def test_corrupt_version_is_refused(registry, tmp_path, damage):
    info = registry.register(make_run(tmp_path / "r"), promote=True)
    weights = info.path / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:-10])
    elif damage == "delete":
        weights.unlink()
    elif damage == "manifest":
        (info.path / "manifest.json").unlink()
    else:
        (info.path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(CorruptVersionError):
        registry.resolve("current")
    with pytest.raises(CorruptVersionError):
        registry.promote(info.version)


def test_incomplete_or_pickled_run_cannot_be_registered(registry, tmp_path):
    run = make_run(tmp_path / "r")
    (run / "model.safetensors").unlink()
    with pytest.raises(CorruptVersionError, match="missing"):
        registry.register(run)
    (run / "model.safetensors").write_bytes(b"w")
    (run / "optimizer.pt").write_bytes(b"p")
    with pytest.raises(CorruptVersionError, match="pickle"):
        registry.register(run)
    assert registry.versions() == []


def test_concurrent_registrations_get_distinct_versions(registry, tmp_path):
    runs = [make_run(tmp_path / f"r{i}") for i in range(6)]
    threads = [threading.Thread(target=registry.register, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [v.version for v in registry.versions()] == [f"v{i:04d}" for i in range(1, 7)]


def test_a_lock_file_removed_since_the_listing_is_not_made_again(tmp_path):
    # What concurrent registrations met: one clean-up removed a copy's lock file before it was locked, the copy went
    # on (locked on the removed file), and a second clean-up that had listed the file made it again and deleted the
    # copy under its writer.
    copy = tmp_path / ".staging" / "tmpcopy"
    copy.mkdir(parents=True)
    _remove_if_abandoned(copy.with_suffix(".lock"))
    assert copy.is_dir() and not copy.with_suffix(".lock").exists()


def test_current_pointer_is_replaced_not_rewritten(registry, tmp_path):
    registry.register(make_run(tmp_path / "a"), promote=True)
    before = (registry.root / "current").stat().st_ino
    registry.register(make_run(tmp_path / "b"), promote=True)
    assert (registry.root / "current").stat().st_ino != before  # a new file was renamed over the old one
    assert registry.current_version() == "v0002"


@pytest.mark.parametrize("name", ["../../x", "/abs/path", "v0001/../../x", "v0001\n", "current", "", "v1"])
def test_a_name_that_is_not_a_version_name_is_refused_before_it_touches_a_path(registry, tmp_path, name):
    registry.register(make_run(tmp_path / "r"), promote=True)
    make_run(tmp_path / "x")  # a real checkpoint outside the registry, where "../../x" would lead
    for call in (registry.promote, registry.info, registry.verify):
        with pytest.raises(RegistryError):
            call(name)
    assert registry.current_version() == "v0001"


def test_a_current_pointer_outside_the_registry_is_refused(registry, tmp_path):
    registry.register(make_run(tmp_path / "r"), promote=True)
    (registry.root / "current").write_text("../../elsewhere\n")
    with pytest.raises(CorruptVersionError, match="not a version name"):
        registry.resolve("current")


def test_a_folder_that_is_not_a_checkpoint_is_refused_without_walking_it(registry, tmp_path):
    with pytest.raises(RegistryError, match="not a checkpoint folder"):
        registry.resolve("/")  # a walk of the whole file system would take minutes
    run = make_run(tmp_path / "plain")
    assert registry.resolve(str(run)) == run


def test_a_copy_left_by_a_killed_register_is_removed_by_the_next_one(registry, tmp_path):
    import subprocess
    import sys

    registry.register(make_run(tmp_path / "r1"), promote=True)
    staging = registry.root / ".staging"
    # A process that starts a copy the way register does and is killed in the middle of it.
    script = (
        "import fcntl, os, sys, tempfile, pathlib, time\n"
        f"h, name = tempfile.mkstemp(dir={str(staging)!r}, suffix='.lock')\n"
        "fcntl.flock(h, fcntl.LOCK_EX)\n"
        "d = pathlib.Path(name).with_suffix(''); d.mkdir(); (d / 'model.safetensors').write_bytes(b'x' * 1000)\n"
        "print('copying', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"copying\n"
    registry.register(make_run(tmp_path / "r2"))
    assert len(list(staging.iterdir())) == 2  # the running copy is left alone
    child.kill()
    child.wait()
    registry.register(make_run(tmp_path / "r3"))
    assert list(staging.iterdir()) == []
    assert [v.version for v in registry.versions()] == ["v0001", "v0002", "v0003"]


def test_prune_keeps_current_recent_previous_operator_versions_and_young_rejects(registry, tmp_path):
    def rejected_run(name):
        run = make_run(tmp_path / name)
        metrics = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**metrics, "gate": {"promoted": False}}))
        return run

    for i in range(1, 5):
        registry.register(make_run(tmp_path / f"p{i}"), promote=True)  # v0001..v0004, each current in turn
    registry.register(rejected_run("rejected"))  # v0005: a gate-rejected candidate
    registry.register(make_run(tmp_path / "manual"))  # v0006: registered by an operator, never promoted
    now = time.time()
    assert registry.prune(keep_previous=2, keep_rejected_seconds=3600, now=now) == ["v0001"]
    assert [v.version for v in registry.versions()] == ["v0002", "v0003", "v0004", "v0005", "v0006"]
    assert registry.rollback().version == "v0003"  # what rollback needs is still there
    assert registry.prune(keep_previous=1, keep_rejected_seconds=3600, now=now + 7200) == ["v0002", "v0005"]
    assert [v.version for v in registry.versions()] == ["v0003", "v0004", "v0006"]
    assert registry.current_version() == "v0003"
