"""The model card says which weights were saved: the best epoch, or the checkpoint average that beat it."""

from __future__ import annotations

from models.artifacts import selected_weights


def test_the_best_epoch_unless_an_average_was_kept():
    training = {"best_epoch": 3, "averaging": {"epochs": [4, 5, 6], "best_single_epoch": 3, "kept": False}}
    assert selected_weights(training, 6) == "best epoch 3 of 6 by validation macro-F1"
    assert selected_weights({"best_epoch": 2}, 2) == "best epoch 2 of 2 by validation macro-F1"  # no averaging run

    kept = {"best_epoch": 6, "averaging": {"epochs": [4, 5, 6], "best_single_epoch": 5, "kept": True}}
    text = selected_weights(kept, 6)
    assert "epochs 4-6 of 6" in text and "best single epoch (5)" in text
