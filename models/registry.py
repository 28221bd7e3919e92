"""The model registry: versioned checkpoint folders, a ``current`` pointer switched atomically, promote and rollback.

Layout of ``EMOSTREAM_REGISTRY_DIR``::

    versions/v0001/   HF checkpoint (safetensors only) + metrics.json + README.md (card) + labels.json
                      + confusion_matrix.png + manifest.json (size and sha256 of every file, written last)
    current           the served version's name; replaced with os.replace, so readers see the old or the new one
    history.jsonl     append-only log of register/promote/rollback/prune; rollback replays it
    .staging/         versions being copied in; a folder appears under versions/ only once complete (one rename).
                      Each copy holds a lock on its ``<name>.lock`` while it runs, so copies left by a killed process
                      are told apart from running ones and removed by the next ``register``.

Retention (:meth:`ModelRegistry.prune`): the current version, the last few that were current before it, versions never
promoted nor rejected (an operator's), and gate-rejected candidates for a while are kept; the rest is removed.

A version whose manifest is missing, whose files differ from it, or that holds a pickle-based weight file is refused
with :class:`CorruptVersionError`. Version names are checked against ``VERSION_PATTERN`` wherever they are read (the
command line, the ``current`` pointer, the history, announcements), so a name never walks out of the registry.
Mutations hold an exclusive lock on ``.lock``, so concurrent trainers and CLI calls do not interleave.
"""

from __future__ import annotations

import calendar
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import CorruptVersionError, RegistryError

MANIFEST = "manifest.json"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer_config.json")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
VERSION_PATTERN = re.compile(r"^v(\d{4,9})\Z")


@dataclass(frozen=True)
class VersionInfo:
    """One registered version."""

    version: str
    path: Path
    created_at: str
    labels: list[str]
    metrics: dict[str, Any]
    is_current: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (headline metrics only)."""
        test = self.metrics.get("test") or {}
        validation = self.metrics.get("validation") or {}
        return {
            "version": self.version,
            "current": self.is_current,
            "created_at": self.created_at,
            "labels": self.labels,
            "path": str(self.path),
            "test_accuracy": test.get("accuracy"),
            "test_macro_f1": test.get("macro_f1"),
            "validation_macro_f1": validation.get("macro_f1"),
            "gate": self.metrics.get("gate"),
        }


class ModelRegistry:
    """Versioned model folders under ``root`` (created on first use)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"

    # --- reading ----------------------------------------------------------------------------------------------------

    def current_version(self) -> str | None:
        """The served version's name, or None before the first promotion."""
        try:
            name = (self.root / "current").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if not name:
            return None
        if not VERSION_PATTERN.match(name):
            raise CorruptVersionError(f"{self.root / 'current'} holds {name[:80]!r}, not a version name")
        return name

    def versions(self) -> list[VersionInfo]:
        """All versions, oldest first."""
        if not self.versions_dir.is_dir():
            return []
        current = self.current_version()
        names = sorted(p.name for p in self.versions_dir.iterdir() if VERSION_PATTERN.match(p.name))
        return [self._info(name, current) for name in names]

    def info(self, version: str) -> VersionInfo:
        """One version's summary (not verified; see :meth:`verify`)."""
        return self._info(self._existing(version).name, self.current_version())

    def resolve(self, ref: str | Path) -> Path:
        """A loadable checkpoint folder for ``current`` or a version name (verified against its manifest), or for a
        plain checkpoint folder given by path (an operator's choice: checked for the checkpoint files and pickles)."""
        ref = str(ref)
        if ref == "current":
            version = self.current_version()
            if version is None:
                raise RegistryError(f"no current model in {self.root}: train one with `emostream train --register`")
            return self.verify(version)
        if VERSION_PATTERN.match(ref):
            return self.verify(ref)
        path = Path(ref)
        if path.is_dir():
            missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
            if missing:  # checked before anything walks the folder: `/` or `..` fail here, at once
                raise RegistryError(f"{ref!r} is not a checkpoint folder: it has no {', '.join(missing)}")
            refuse_pickles(path)
            return path
        raise RegistryError(f"{ref!r} is neither `current`, a version name (v0001...), nor a checkpoint folder")

    def verify(self, version: str) -> Path:
        """Check a version against its manifest; return its folder or raise :class:`CorruptVersionError`."""
        folder = self._existing(version)
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CorruptVersionError(f"{version}: {MANIFEST} is missing (incomplete copy?)") from None
        except json.JSONDecodeError as exc:
            raise CorruptVersionError(f"{version}: {MANIFEST} is not valid JSON ({exc})") from None
        refuse_pickles(folder)
        for required in REQUIRED_FILES:
            if required not in manifest.get("files", {}):
                raise CorruptVersionError(f"{version}: {required} is not in the manifest")
        for name, expected in manifest["files"].items():
            file = folder / name
            if not file.is_file():
                raise CorruptVersionError(f"{version}: {name} is missing")
            if file.stat().st_size != expected["size"] or sha256(file) != expected["sha256"]:
                raise CorruptVersionError(f"{version}: {name} does not match its manifest (altered or truncated)")
        return folder

    # --- writing ----------------------------------------------------------------------------------------------------

    def register(self, checkpoint_dir: str | Path, *, promote: bool = False) -> VersionInfo:
        """Copy a finished run folder in as the next version (and make it current if ``promote``)."""
        source = Path(checkpoint_dir)
        refuse_pickles(source)
        missing = [name for name in REQUIRED_FILES if not (source / name).is_file()]
        if missing:
            raise CorruptVersionError(f"{source}: not a complete checkpoint, missing {missing}")
        staging_root = self.root / ".staging"
        staging_root.mkdir(parents=True, exist_ok=True)
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_copies(staging_root)
        handle, lock_name = tempfile.mkstemp(dir=staging_root, suffix=".lock")
        fcntl.flock(handle, fcntl.LOCK_EX)  # held while the copy runs: tells it from one a killed process left
        staging = Path(lock_name).with_suffix("")
        staging.mkdir()
        try:
            for file in sorted(p for p in source.rglob("*") if p.is_file() and p.name != MANIFEST):
                target = staging / file.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)
            files = {
                str(p.relative_to(staging)): {"size": p.stat().st_size, "sha256": sha256(p)}
                for p in sorted(staging.rglob("*"))
                if p.is_file()
            }
            _write_json(staging / MANIFEST, {"created_at": _now(), "files": files})
            with self._lock():
                version = self._next_version()
                os.rename(staging, self.versions_dir / version)
                self._log("register", version)
                if promote:
                    self._set_current(version, "promote")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            Path(lock_name).unlink(missing_ok=True)
            os.close(handle)
        return self.info(version)

    def promote(self, version: str) -> VersionInfo:
        """Verify ``version`` and make it current."""
        with self._lock():
            self.verify(version)
            self._set_current(version, "promote")
        return self.info(version)

    def rollback(self) -> VersionInfo:
        """Make the version that was current before the present one current again."""
        with self._lock():
            stack = self._promotion_stack()
            if len(stack) < 2:
                raise RegistryError("nothing to roll back to: fewer than two promotions in the history")
            target = stack[-2]
            self.verify(target)
            self._set_current(target, "rollback")
        return self.info(target)

    def prune(self, keep_previous: int, keep_rejected_seconds: float, *, now: float | None = None) -> list[str]:
        """Remove the versions nobody needs any more; return their names.

        Kept: the current version; the ``keep_previous`` versions most recently current before it (what rollback goes
        back to); versions never current and not rejected by the promotion gate (an operator registered them); and
        gate-rejected candidates younger than ``keep_rejected_seconds`` (for inspection). Removed: versions that were
        current once and are older than that, and rejected candidates past their time.
        """
        now = time.time() if now is None else now
        removed = []
        with self._lock():
            current = self.current_version()
            served = [v for v in self._ever_current() if v != current]  # most recently current first
            keep = {current, *served[:keep_previous]}
            for info in self.versions():
                if info.version in keep:
                    continue
                gate = info.metrics.get("gate")
                rejected = isinstance(gate, dict) and gate.get("promoted") is False
                expired = rejected and now - _epoch(info.created_at) > keep_rejected_seconds
                if info.version not in served and not expired:
                    continue
                trash = self.root / f".trash-{info.version}-{os.getpid()}"
                os.rename(info.path, trash)  # gone from versions/ in one step, then deleted
                shutil.rmtree(trash, ignore_errors=True)
                self._log("prune", info.version)
                removed.append(info.version)
        return removed

    # --- internals --------------------------------------------------------------------------------------------------

    def _ever_current(self) -> list[str]:
        """Every version that was ever made current (promoted or rolled back to), most recently current first."""
        last: dict[str, int] = {}
        for index, event in enumerate(self._history()):
            if event.get("action") in ("promote", "rollback"):
                last[event["version"]] = index
        return sorted(last, key=last.__getitem__, reverse=True)

    def _history(self) -> list[dict[str, Any]]:
        history = self.root / "history.jsonl"
        if not history.is_file():
            return []
        return [json.loads(line) for line in history.read_text(encoding="utf-8").splitlines() if line.strip()]

    def _existing(self, version: str) -> Path:
        """The folder of the registered version ``version``; a name that is not a version name is refused before it
        is joined to any path."""
        if not isinstance(version, str) or not VERSION_PATTERN.match(version):
            raise RegistryError(f"{str(version)[:80]!r} is not a version name (v0001, v0002, ...)")
        folder = self.versions_dir / version
        if not folder.is_dir():
            raise RegistryError(f"no version {version!r} in {self.root}")
        return folder

    def _info(self, version: str, current: str | None) -> VersionInfo:
        folder = self.versions_dir / version
        metrics = _read_json(folder / "metrics.json") or {}
        manifest = _read_json(folder / MANIFEST) or {}
        labels = _read_json(folder / "labels.json") or []
        return VersionInfo(version, folder, manifest.get("created_at", ""), labels, metrics, version == current)

    def _next_version(self) -> str:
        numbers = [int(m.group(1)) for p in self.versions_dir.iterdir() if (m := VERSION_PATTERN.match(p.name))]
        return f"v{max(numbers, default=0) + 1:04d}"

    def _set_current(self, version: str, action: str) -> None:
        previous = self.current_version()
        pointer = self.root / "current"
        tmp = pointer.with_name(f".current.{os.getpid()}")
        tmp.write_text(version + "\n", encoding="utf-8")
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, pointer)
        self._log(action, version, previous=previous)

    def _promotion_stack(self) -> list[str]:
        stack: list[str] = []
        for event in self._history():
            if event["action"] == "promote":
                stack.append(event["version"])
            elif event["action"] == "rollback" and stack:
                stack.pop()
        return stack

    def _log(self, action: str, version: str, **extra: Any) -> None:
        line = json.dumps({"at": _now(), "action": action, "version": version, **extra})
        with (self.root / "history.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_abandoned_copies(staging_root: Path) -> None:
    """Delete copies into ``.staging`` whose process is gone (killed inside ``register``): a copy's lock file is
    locked for as long as its process runs."""
    for lock_path in staging_root.glob("*.lock"):
        _remove_if_abandoned(lock_path)
    for folder in staging_root.iterdir():  # copies from before the lock files: no copy runs for an hour
        with contextlib.suppress(FileNotFoundError):  # renamed into versions/ (or removed) since the listing
            if (
                folder.is_dir()
                and not folder.with_suffix(".lock").exists()
                and time.time() - folder.stat().st_mtime > 3600
            ):
                shutil.rmtree(folder, ignore_errors=True)


def _remove_if_abandoned(lock_path: Path) -> None:
    """Delete the copy of ``lock_path`` (and the lock file) unless a running ``register`` holds its lock."""
    # Opened without creating it: a lock file another clean-up removed since the listing must stay gone. Opening it
    # for appending created it again, unlocked, and the copy it belonged to (which still runs on the removed file's
    # lock) was deleted under its writer: concurrent registrations lost a version now and then.
    with contextlib.suppress(FileNotFoundError), lock_path.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a copy in progress
        shutil.rmtree(lock_path.with_suffix(""), ignore_errors=True)
        lock_path.unlink(missing_ok=True)


def _epoch(created_at: str) -> float:
    """Seconds since 1970 of a manifest's ``created_at`` (0 when it is missing or unreadable: counts as old)."""
    try:
        return float(calendar.timegm(time.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return 0.0


def refuse_pickles(folder: Path) -> None:
    """Raise :class:`CorruptVersionError` if ``folder`` holds a pickle-based weight file (never unpickled here)."""
    unsafe = sorted(p.name for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if unsafe:
        raise CorruptVersionError(f"{folder}: refusing pickle-based files {unsafe}; only safetensors are loaded")


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
