"""Training configuration and batching logic (the real fine-tune is in tests/integration)."""

from __future__ import annotations

import random

import pytest

from models.finetuning import RECIPES, TrainingConfig, TrainingConfigError, length_grouped_batches


def test_recipes_build_valid_configs():
    for name in RECIPES:
        config = TrainingConfig.from_recipe(name, "base")
        assert config.recipe == name and config.base_model == "base"


def test_overrides_apply_and_none_is_ignored():
    config = TrainingConfig.from_recipe("quick", "base", epochs=5, learning_rate=None)
    assert config.epochs == 5 and config.learning_rate == RECIPES["quick"]["learning_rate"]


@pytest.mark.parametrize(
    "bad", [{"epochs": 0}, {"learning_rate": 2.0}, {"batch_size": -1}, {"max_train": 0}, {"warmup_ratio": 1.0}]
)
def test_out_of_range_values_are_refused(bad):
    with pytest.raises(TrainingConfigError):
        TrainingConfig.from_recipe("quick", "base", **bad)


def test_unknown_recipe():
    with pytest.raises(TrainingConfigError, match="unknown recipe"):
        TrainingConfig.from_recipe("turbo", "base")


def test_length_grouped_batches_cover_everything_once_and_group_lengths():
    rng = random.Random(0)
    lengths = [rng.randint(1, 100) for _ in range(1000)]
    batches = list(length_grouped_batches(lengths, 16, random.Random(1)))
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 10  # grouped: random batches of 16 would span ~85 tokens
    assert batches != list(length_grouped_batches(lengths, 16, random.Random(2)))
