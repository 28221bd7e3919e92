"""The prediction contract, on a tiny randomly initialised BERT with the packaged tokenizer (real code path, fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import pipeline
from transformers.utils import logging as hf_logging

from models.classifier import (
    MULTI_LABEL,
    EmotionClassifier,
    Prediction,
    PredictionColumns,
    pad_batch,
    quiet_transformers,
    truncating_encoder,
)
from models.device import autocast_dtype
from models.pass_planning import FIXED_OVERHEAD_TOKENS, plan_passes

LABELS = ["sadness", "joy", "anger"]
TEXTS = [
    "i feel wonderful today",
    "no",
    "this is a much longer sentence about how annoyed i was when the train was late again and again",
    "scared",
    "what a lovely surprise to see you here after all these years",
]


def tiny_model(make_tiny_bert, *, multi_label=False, thresholds=None):
    problem = MULTI_LABEL if multi_label else "single_label_classification"
    model, tokenizer = make_tiny_bert(LABELS, problem_type=problem)
    if thresholds:
        model.config.label_thresholds = thresholds
    return model, tokenizer


@pytest.fixture
def classifier(make_tiny_bert):
    model, tokenizer = tiny_model(make_tiny_bert)
    return EmotionClassifier(model, tokenizer, device="cpu", batch_size=2)


def test_predictions_keep_input_order_across_length_buckets(classifier):
    batched = classifier.predict_proba(TEXTS)
    one_by_one = np.vstack([classifier.predict_proba([text]) for text in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_prediction_fields(classifier):
    predictions = classifier.predict(TEXTS)
    assert len(predictions) == len(TEXTS)
    for prediction in predictions:
        assert isinstance(prediction, Prediction)
        assert set(prediction.scores) == set(LABELS)
        assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert prediction.label == max(prediction.scores, key=prediction.scores.get)
        assert prediction.score == prediction.scores[prediction.label]
        assert prediction.labels is None and "labels" not in prediction.to_dict()


def test_columns_are_the_predictions_of_predict(classifier, make_tiny_bert):
    # The worker's labelled records come from the columns: they must say exactly what predict says.
    assert classifier.predict_columns(TEXTS) == PredictionColumns.of(classifier.predict(TEXTS))
    model, tokenizer = tiny_model(make_tiny_bert, multi_label=True, thresholds={"sadness": 0.0, "joy": 1.1})
    multi_label = EmotionClassifier(model, tokenizer, device="cpu")
    columns = multi_label.predict_columns(TEXTS)
    assert columns == PredictionColumns.of(multi_label.predict(TEXTS))
    assert columns.labels is not None and all("sadness" in chosen for chosen in columns.labels)
    assert classifier.predict_columns([]) == PredictionColumns([], [], [], [], None)


def test_empty_and_wrong_input(classifier):
    assert classifier.predict([]) == []
    with pytest.raises(TypeError):
        classifier.predict("a single string")


def test_multi_label_uses_per_label_thresholds(make_tiny_bert):
    model, tokenizer = tiny_model(make_tiny_bert, multi_label=True, thresholds={"sadness": 0.0, "joy": 1.1})
    classifier = EmotionClassifier(model, tokenizer, device="cpu")
    for prediction in classifier.predict(TEXTS):
        assert prediction.labels[0] == "sadness" or prediction.scores["sadness"] < prediction.scores["anger"]
        assert "sadness" in prediction.labels and "joy" not in prediction.labels
        assert all(0 <= p <= 1 for p in prediction.scores.values())


def test_save_load_round_trip_and_pipeline(classifier, tmp_path):
    classifier.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = EmotionClassifier.from_pretrained(tmp_path, device="cpu", quantize="off")
    assert loaded.labels == tuple(LABELS)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), classifier.predict_proba(TEXTS), atol=1e-5)
    hf = pipeline("text-classification", model=str(tmp_path), device="cpu")
    assert [r["label"] for r in hf(TEXTS)] == [p.label for p in classifier.predict(TEXTS)]


def test_saving_prints_no_progress_bar(classifier, tmp_path, capfd):
    # transformers draws a "Writing model shards" bar on stderr, in the middle of `emostream train`'s own output.
    classifier.save_pretrained(tmp_path)
    captured = capfd.readouterr()
    assert "Writing model shards" not in captured.err + captured.out
    assert (tmp_path / "model.safetensors").is_file()


def test_quiet_transformers_puts_progress_bars_back_as_they_were():
    try:
        for enabled in (True, False):
            (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()
            with quiet_transformers():
                with quiet_transformers():
                    assert not hf_logging.is_progress_bar_enabled()
                assert not hf_logging.is_progress_bar_enabled()  # the enclosing block is still quiet
            assert hf_logging.is_progress_bar_enabled() is enabled
    finally:
        hf_logging.enable_progress_bar()


def test_quantization_follows_the_checkpoint_approval(make_tiny_bert, tmp_path):
    model, tokenizer = tiny_model(make_tiny_bert)
    EmotionClassifier(model, tokenizer, device="cpu").save_pretrained(tmp_path)
    assert not EmotionClassifier.from_pretrained(tmp_path, device="cpu").quantized  # not approved: fp32
    forced = EmotionClassifier.from_pretrained(tmp_path, device="cpu", quantize="on")
    assert forced.quantized
    assert len(forced.predict(TEXTS)) == len(TEXTS)
    with pytest.raises(RuntimeError, match="quantized"):
        forced.save_pretrained(tmp_path / "again")


@pytest.mark.parametrize(
    ("precision", "bf16_supported", "expected"),
    [
        ("auto", True, torch.bfloat16),
        ("auto", False, torch.float16),
        ("fp16", True, torch.float16),
        ("bf16", True, torch.bfloat16),
        ("fp32", True, None),  # no autocast at all
        ("fp32", False, None),
    ],
)
def test_gpu_precision_picks_the_autocast_dtype(precision, bf16_supported, expected):
    assert autocast_dtype(precision, bf16_supported=bf16_supported) == expected


def test_gpu_precision_refuses_what_the_gpu_or_the_name_cannot_be(make_tiny_bert):
    with pytest.raises(RuntimeError, match="does not support"):
        autocast_dtype("bf16", bf16_supported=False)
    model, tokenizer = tiny_model(make_tiny_bert)
    with pytest.raises(ValueError, match="expected one of auto, bf16, fp16, fp32"):  # on CPU too
        EmotionClassifier(model, tokenizer, device="cpu", precision="half")
    # On CPU every precision predicts in fp32: the same scores whatever was asked for.
    fp32 = EmotionClassifier(model, tokenizer, device="cpu", precision="fp32").predict_proba(TEXTS)
    auto = EmotionClassifier(model, tokenizer, device="cpu", precision="auto").predict_proba(TEXTS)
    np.testing.assert_array_equal(fp32, auto)


def test_passes_on_cpu_follow_the_timed_overhead_and_padding(make_tiny_bert):
    model, tokenizer = tiny_model(make_tiny_bert)
    classifier = EmotionClassifier(model, tokenizer, device="cpu", batch_size=4)
    assert classifier.pass_overhead == FIXED_OVERHEAD_TOKENS  # the same texts are always cut the same way
    timed = classifier.time_pass_overhead()  # as the worker's inference processes do
    assert 0 <= timed <= 4 * classifier.max_length and classifier.pass_overhead == timed
    lengths = [3, 10, 1, 7, 7, 2]
    passes = classifier.passes(lengths)
    assert [p.tolist() for p in passes] == [p.tolist() for p in plan_passes(lengths, 4, classifier.pass_overhead)]
    # Whatever the plan, each text's probabilities are those of the text on its own.
    alone = np.concatenate([classifier.predict_proba([text]) for text in TEXTS])
    np.testing.assert_allclose(classifier.predict_proba(TEXTS), alone, atol=1e-5)
    # Given an overhead, the same texts are always cut the same way: nothing is timed.
    fixed = EmotionClassifier(model, tokenizer, device="cpu", batch_size=4, pass_overhead=0.0)
    assert [sorted(p.tolist()) for p in fixed.passes(lengths)] == [[1], [3, 4], [0], [5], [2]]
    input_ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert input_ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]


@pytest.mark.parametrize("side", ["right", "left"])
def test_token_ids_are_the_tokenizers_own(make_tiny_bert, side):
    """The backend path (``truncating_encoder``) gives the ids calling the tokenizer gives, truncated alike."""
    model, tokenizer = tiny_model(make_tiny_bert)
    tokenizer.truncation_side = side
    classifier = EmotionClassifier(model, tokenizer, device="cpu", max_length=16)
    texts = ["i feel fine", "word " * 300, "Émoji 😀 and ẞ", "  \u200b spaced\tout  ", "x", "a.b,c!d?" * 20]
    expected = tokenizer(texts, truncation=True, max_length=16)["input_ids"]
    assert truncating_encoder(tokenizer, 16) is not None  # the packaged tokenizer is a fast one
    assert classifier.tokenize(texts) == expected
    tokenizer(texts, truncation=True, max_length=64)  # changes the tokenizer's own backend, not the classifier's
    assert classifier.tokenize(texts) == expected
    assert max(len(ids) for ids in expected) == 16
