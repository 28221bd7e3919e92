"""The promotion gate, label growth (known classes keep their head weights) and the cycle's epoch selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from models.finetuning import keep_known_classes, output_head
from models.retraining_cycle import HeldOutSelection, decide, new_data_macro_f1


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


def one_hot_rows(predicted: list[int], width: int) -> np.ndarray:
    rows = np.full((len(predicted), width), 0.01, dtype=np.float32)
    rows[np.arange(len(predicted)), predicted] = 0.9
    return rows


def test_held_out_selection_scores_the_feedback_and_guards_the_base():
    # Labels: 0 joy, 1 fear (base), 2 disgust (new). Rows: 4 held-out feedback texts, then 4 base validation texts.
    selection = HeldOutSelection(holdout_gold=(2, 2, 0, 0), base_gold=(0, 1, 0, 1), base_columns=(0, 1), base_floor=0.5)
    held_out = [2, 0, 0, 0]  # disgust: P 1, R 0.5 -> F1 2/3; joy: P 2/3, R 1 -> F1 0.8
    base = one_hot_rows([0, 1, 0, 1], 3)
    base[0, 2] = 0.95  # disgust is the top column for a base row, but the base is scored over its own labels only
    probabilities = np.vstack([one_hot_rows(held_out, 3), base])
    assert selection.scores(probabilities) == pytest.approx(((2 / 3 + 0.8) / 2, 1.0))
    assert selection(probabilities) == pytest.approx((2 / 3 + 0.8) / 2)
    forgetting = np.vstack([one_hot_rows(held_out, 3), one_hot_rows([1, 0, 1, 0], 3)])  # base macro-F1 0
    assert selection(forgetting) == pytest.approx((2 / 3 + 0.8) / 2 - 1.0)  # below any epoch within the tolerance


def test_held_out_macro_f1_matches_the_gate_computation(make_tiny_bert):
    """The selection's held-out score is what new_data_macro_f1 (the gate's) gives for the same predictions."""
    from models.classifier import EmotionClassifier
    from models.data import LabelledTexts

    model, tokenizer = make_tiny_bert(["joy", "fear", "disgust"], layers=1)
    classifier = EmotionClassifier(model, tokenizer, device="cpu")
    texts = ["i am so happy", "this is scary", "gross", "what a day", "ugh no", "lovely", "terrifying", "meh"]
    holdout = LabelledTexts(texts, [(i % 3,) for i in range(len(texts))], ("joy", "fear", "disgust"), source="h")
    selection = HeldOutSelection(tuple(holdout.label_ids), base_gold=(0, 1), base_columns=(0, 1), base_floor=-1.0)
    held_out, _ = selection.scores(classifier.predict_proba([*texts, "base one", "base two"]))
    assert held_out == pytest.approx(new_data_macro_f1(classifier, holdout))
