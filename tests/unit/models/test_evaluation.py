"""Metrics, threshold tuning and the confusion-matrix picture, on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from models.evaluation import (
    apply_thresholds,
    indicator_matrix,
    multi_label_metrics,
    save_confusion_matrix,
    score,
    single_label_metrics,
    tune_thresholds,
)


def test_single_label_metrics_by_hand():
    labels = ["a", "b", "c"]
    m = single_label_metrics([0, 0, 1, 2], [0, 1, 1, 2], labels)
    assert m["n"] == 4
    assert m["accuracy"] == pytest.approx(0.75)
    # a: P=1 R=.5 F=2/3; b: P=.5 R=1 F=2/3; c: F=1
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert m["weighted_f1"] == pytest.approx((2 * 2 / 3 + 2 / 3 + 1) / 4)
    assert m["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_labels_absent_from_the_data_still_get_rows():
    m = single_label_metrics([0, 0], [0, 0], ["a", "b"])
    assert m["per_class"]["b"]["support"] == 0
    assert m["macro_f1"] == 1.0  # averaged over the labels that occur
    assert m["confusion_matrix"] == [[2, 0], [0, 0]]


def test_multi_label_metrics_and_cooccurrence():
    gold = np.array([[1, 1, 0], [0, 1, 0]])
    pred = np.array([[1, 0, 0], [0, 1, 0]])
    m = multi_label_metrics(gold, pred, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.5)  # exact match
    assert m["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))
    assert m["confusion_matrix"][1] == [1, 1, 0]  # texts labelled b were predicted a once and b once


def test_tune_thresholds_finds_the_separating_cut():
    probabilities = np.array([[0.9, 0.2], [0.35, 0.1], [0.3, 0.8], [0.1, 0.05]])
    gold = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    thresholds = tune_thresholds(probabilities, gold)
    assert 0.3 < thresholds[0] <= 0.35
    assert 0.2 < thresholds[1] <= 0.8
    assert (apply_thresholds(probabilities, thresholds) == np.array([[1, 0], [1, 0], [0, 1], [1, 0]])).all()


def test_apply_thresholds_never_leaves_a_row_empty():
    out = apply_thresholds(np.array([[0.1, 0.3], [0.9, 0.95]]), np.array([0.5, 0.5]))
    assert out.tolist() == [[0, 1], [1, 1]]


def test_score_dispatches_on_kind():
    probabilities = np.array([[0.7, 0.3], [0.2, 0.8]])
    assert score(probabilities, [(0,), (0,)], ["a", "b"], multi_label=False)["accuracy"] == 0.5
    multi = score(probabilities, [(0,), (0, 1)], ["a", "b"], multi_label=True, thresholds=np.array([0.5, 0.5]))
    assert multi["accuracy"] == 0.5
    assert indicator_matrix([(0,), (0, 1)], 2).tolist() == [[1, 0], [1, 1]]


def test_confusion_matrix_png(tmp_path):
    path = save_confusion_matrix([[3, 1], [0, 4]], ["joy", "anger"], tmp_path / "cm.png", "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
