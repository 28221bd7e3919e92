"""Temperature scaling and the expected calibration error, on synthetic scores whose calibration is known; and the
classifier applying a checkpoint's temperature."""

from __future__ import annotations

import numpy as np
import pytest

from models.calibration import expected_calibration_error, fit_temperature, softmax, with_temperature
from models.classifier import TEMPERATURE_KEY, EmotionClassifier


def sampled(temperature: float, n: int = 6000, labels: int = 6, seed: int = 0):
    """Logits, and gold labels drawn from softmax(logits / temperature): scores at that temperature are calibrated."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n, labels))
    truth = softmax(logits / temperature)
    gold = np.array([rng.choice(labels, p=row) for row in truth])
    return logits, gold


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_the_fitted_temperature_recovers_the_one_that_calibrates(true_temperature):
    logits, gold = sampled(true_temperature)
    fitted = fit_temperature(softmax(logits), gold)
    assert fitted == pytest.approx(true_temperature, rel=0.1)


def test_calibration_lowers_the_error_of_over_confident_scores_and_keeps_every_prediction():
    logits, gold = sampled(2.5)
    over_confident = softmax(logits)
    calibrated = with_temperature(over_confident, fit_temperature(over_confident, gold))
    assert expected_calibration_error(over_confident, gold) > 0.1
    assert expected_calibration_error(calibrated, gold) < 0.03
    assert (calibrated.argmax(axis=1) == over_confident.argmax(axis=1)).all()


def test_expected_calibration_error_by_hand():
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    gold = [0, 1, 0, 0]  # bin 0.9: accuracy 0.5 vs 0.9; bin 0.6: accuracy 1.0 vs 0.6
    assert expected_calibration_error(probabilities, gold) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert expected_calibration_error(np.empty((0, 2)), []) == 0.0 and fit_temperature(np.empty((0, 2)), []) == 1.0


def test_the_classifier_applies_its_checkpoints_temperature(make_tiny_bert):
    model, tokenizer = make_tiny_bert(["joy", "sadness", "anger"])
    texts = ["what a day", "i am so sad", "this makes me furious"]
    plain = EmotionClassifier(model, tokenizer, device="cpu").predict_proba(texts)
    setattr(model.config, TEMPERATURE_KEY, 3.0)
    warm = EmotionClassifier(model, tokenizer, device="cpu").predict_proba(texts)
    np.testing.assert_allclose(warm, with_temperature(plain, 3.0), atol=1e-5)
    assert (warm.argmax(axis=1) == plain.argmax(axis=1)).all() and warm.max() < plain.max()
