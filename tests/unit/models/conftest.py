"""Fixtures shared by the training tests: a tiny classifier to continue from and small separable data."""

from __future__ import annotations

import pytest

from models.finetuning import TrainingConfig


@pytest.fixture
def tiny_run(make_tiny_bert, tmp_path):
    """A saved tiny classifier (joy, fear) to continue from, and small separable train and validation data."""
    from models.data import LabelledTexts, Splits

    model, tokenizer = make_tiny_bert(["joy", "fear"], layers=1)
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    texts = ["so happy today", "what a lovely gift", "i am scared", "this is terrifying"] * 4
    targets = [(0,), (0,), (1,), (1,)] * 4
    data = LabelledTexts(texts, targets, ("joy", "fear"), source="tiny")
    config = TrainingConfig(
        base_model=str(tmp_path / "base"), epochs=5, batch_size=4, eval_batch_size=8, max_length=16, device="cpu"
    )
    return config, Splits(data, data.subset(range(6)))
