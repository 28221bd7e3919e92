"""The promotion gate and label growth (known classes keep their head weights)."""

from __future__ import annotations

import torch
from transformers import AutoModelForSequenceClassification

from models.finetuning import keep_known_classes, output_head
from models.retraining_cycle import decide


def test_gate_promotes_only_on_better_new_data_within_tolerance():
    assert decide(0.8, 0.6, 0.895, 0.90, 0.01).promoted
    assert not decide(0.6, 0.6, 0.95, 0.90, 0.01).promoted  # no improvement on the new data
    rejected = decide(0.9, 0.6, 0.88, 0.90, 0.01)
    assert not rejected.promoted and "dropped" in rejected.reason
    assert decide(0.9, 0.6, 0.891, 0.90, 0.01).promoted  # a drop of 0.9 point is within one point


def test_known_classes_keep_their_weights_when_the_head_grows(make_tiny_bert, base_model_path, tmp_path):
    old, _ = make_tiny_bert(["joy", "anger"], layers=1)
    old.save_pretrained(tmp_path)
    grown = AutoModelForSequenceClassification.from_pretrained(
        tmp_path,
        num_labels=3,
        id2label={0: "anger", 1: "joy", 2: "disgust"},
        label2id={"anger": 0, "joy": 1, "disgust": 2},
        ignore_mismatched_sizes=True,
    )
    assert sorted(keep_known_classes(grown, str(tmp_path))) == ["anger", "joy"]
    old_head, new_head = output_head(old), output_head(grown)
    assert torch.equal(new_head.weight[0], old_head.weight[1]) and torch.equal(new_head.bias[1], old_head.bias[0])
    assert keep_known_classes(grown, base_model_path) == []  # a plain encoder has no head to carry over
