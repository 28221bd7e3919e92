"""A finished training run into the registry: exported to a scratch folder inside the registry (same file system, so
the registry's copy-then-rename stays cheap), registered as the next version, promoted or not.

The one path for ``emostream train --register`` and a retraining cycle; announcing the new current version to running
workers is the caller's (``stream.announcements.announce_current``: models never talk to Kafka).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from models.artifacts import export_run
from models.finetuning import TrainingResult
from models.registry import ModelRegistry, VersionInfo


def register_run(
    registry: ModelRegistry,
    result: TrainingResult,
    *,
    data_source: str,
    promote: bool,
    test_metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    out: Path | None = None,
    scratch_prefix: str = ".run-",
) -> VersionInfo:
    """Export ``result`` (to ``out`` if given, to be kept; else to a scratch folder named ``scratch_prefix...``) and
    register it; it becomes current if ``promote`` or if the registry has no current version yet."""
    registry.root.mkdir(parents=True, exist_ok=True)
    promote = promote or registry.current_version() is None
    with tempfile.TemporaryDirectory(dir=registry.root, prefix=scratch_prefix) as scratch:
        run_dir = export_run(
            result, out or Path(scratch), data_source=data_source, test_metrics=test_metrics, extra=extra
        )
        return registry.register(run_dir, promote=promote)
