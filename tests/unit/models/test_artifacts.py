"""The model card says which weights were saved: the best epoch, or the checkpoint average that beat it, and whether
they were trained again on train + validation."""

from __future__ import annotations

from models.artifacts import selected_weights


def test_the_best_epoch_unless_an_average_was_kept():
    training = {"best_epoch": 3, "averaging": {"epochs": [4, 5, 6], "best_single_epoch": 3, "kept": False}}
    assert selected_weights(training, 6) == "best epoch 3 of 6 by validation macro-F1"
    assert selected_weights({"best_epoch": 2}, 2) == "best epoch 2 of 2 by validation macro-F1"  # no averaging run

    kept = {"best_epoch": 6, "averaging": {"epochs": [4, 5, 6], "best_single_epoch": 5, "kept": True}}
    text = selected_weights(kept, 6)
    assert "epochs 4-6 of 6" in text and "best single epoch (5)" in text


def test_a_refitted_model_says_it_was_trained_again_on_validation_too():
    training = {"best_epoch": 5, "refit": {"train_examples": 18000, "epochs": 5, "averaged_epochs": []}}
    text = selected_weights(training, 6)
    assert text.startswith("best epoch 5 of 6 by validation macro-F1, then trained again")
    assert "training plus validation texts (18000 texts" in text
