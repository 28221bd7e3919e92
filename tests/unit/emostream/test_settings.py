"""The typed settings: parsing from the environment, validation, and the README's configuration reference."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import get_args

import pytest

from emostream.settings import REPO_ROOT, SECTIONS, GpuPrecision, Settings, SettingsError


def test_defaults_without_environment():
    settings = Settings.from_env({})
    assert settings.device == "auto" and settings.quantize == "auto"
    assert settings.registry_dir == REPO_ROOT / "registry"
    assert Path(settings.base_model, "config.json").is_file()  # the packaged MiniLM


def test_values_are_parsed_and_typed(tmp_path):
    settings = Settings.from_env(
        {
            "EMOSTREAM_REGISTRY_DIR": str(tmp_path),
            "EMOSTREAM_DEVICE": "CPU",
            "EMOSTREAM_BATCH_SIZE": "16",
            "EMOSTREAM_GPU_PRECISION": "FP32",
            "EMOSTREAM_BASE_MODEL": "some/hub-id",
            "EMOSTREAM_UNRELATED": "x",
        }
    )
    assert settings.registry_dir == tmp_path and settings.device == "cpu" and settings.batch_size == 16
    assert settings.base_model == "some/hub-id" and settings.gpu_precision == "fp32"
    with pytest.raises(AttributeError):
        settings.device = "cuda"  # frozen


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("EMOSTREAM_DEVICE", "tpu", "expected one of auto, cpu, cuda"),
        ("EMOSTREAM_BATCH_SIZE", "many", "not an integer"),
        ("EMOSTREAM_MAX_LENGTH", "0", "must be positive"),
        ("EMOSTREAM_QUANTIZE", "maybe", "EMOSTREAM_QUANTIZE"),
        ("EMOSTREAM_GPU_PRECISION", "fp8", "EMOSTREAM_GPU_PRECISION='fp8': expected one of auto, bf16, fp16, fp32"),
        ("EMOSTREAM_RETRAIN_REPLAY_RATIO", "-1", "must not be negative"),
        ("EMOSTREAM_RETRAIN_EPOCHS", "0", "must be positive"),
        # It held a count before it became a ratio: refused, not silently ignored.
        (
            "EMOSTREAM_RETRAIN_REPLAY",
            "2000",
            "EMOSTREAM_RETRAIN_REPLAY is no longer read: set EMOSTREAM_RETRAIN_REPLAY_RATIO",
        ),
    ],
)
def test_bad_values_name_the_variable(variable, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({variable: value})


def test_the_gpu_precisions_are_the_ones_models_know():
    # models/ does not import the settings, so the two lists are kept equal here.
    from models.device import PRECISIONS

    assert get_args(GpuPrecision) == PRECISIONS


def test_every_setting_is_in_one_section_in_the_order_of_the_fields():
    names = [f.name for f in fields(Settings)]
    assert [name for section in SECTIONS.values() for name in section] == names


def test_the_readme_configuration_reference_is_the_generated_one():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- settings:start")
    block = readme[readme.index("\n", start) + 1 : readme.index("<!-- settings:end -->")]
    assert block == Settings.reference_markdown(), "run `python -m emostream.settings` and paste it into the README"
    for _, variable, _, _ in Settings.reference():
        assert f"`{variable}`" in block
