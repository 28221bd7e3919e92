"""The mean-pooled classifier: what its head reads, how it is trained, saved, served and continued from."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from models.finetuning import TrainingConfig, TrainingConfigError


def test_masked_mean_averages_only_the_real_tokens():
    from models.mean_pooling import masked_mean

    states = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert masked_mean(states, mask).tolist() == [[2.0, 3.0], [7.0, 8.0]]
    assert masked_mean(states, None).tolist() == states.mean(dim=1).tolist()


@pytest.fixture
def encoder_and_data(make_tiny_bert, tmp_path):
    """A tiny plain BERT encoder saved as a base (no classifier head), and small separable data."""
    from models.data import LabelledTexts, Splits

    classifier, tokenizer = make_tiny_bert(["joy", "fear"], layers=1)
    classifier.bert.save_pretrained(tmp_path / "encoder")  # what a pre-trained encoder's folder holds
    tokenizer.save_pretrained(tmp_path / "encoder")
    texts = ["so happy today", "what a lovely gift", "i am scared", "this is terrifying"] * 4
    data = LabelledTexts(texts, [(0,), (0,), (1,), (1,)] * 4, ("joy", "fear"), source="tiny")
    config = TrainingConfig(
        base_model=str(tmp_path / "encoder"),
        epochs=2,
        batch_size=4,
        eval_batch_size=8,
        max_length=16,
        device="cpu",
        pooling="mean",
    )
    return config, Splits(data, data.subset(range(6)))


def test_a_mean_pooled_run_trains_saves_and_serves_the_same_scores(encoder_and_data, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from models.classifier import EmotionClassifier
    from models.finetuning import FineTuner
    from models.mean_pooling import MEAN_POOLED_BERT, MeanPooledBertForSequenceClassification

    config, splits = encoder_and_data
    result = FineTuner(config, splits).train()
    model = result.classifier.model
    assert isinstance(model, MeanPooledBertForSequenceClassification)
    assert not any("pooler" in name for name, _ in model.named_parameters())  # the [CLS] layer is gone
    assert result.config.hyperparameters()["pooling"] == "mean"

    result.classifier.save_pretrained(tmp_path / "saved")
    served = EmotionClassifier.from_pretrained(tmp_path / "saved", device="cpu", quantize="off")
    assert served.model.config.model_type == MEAN_POOLED_BERT
    texts = list(splits.validation.texts)
    assert np.allclose(served.predict_proba(texts), result.classifier.predict_proba(texts), atol=1e-6)
    # transformers' own loader, in a process that imported models, picks the same class
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")
    assert type(loaded) is MeanPooledBertForSequenceClassification
    int8 = EmotionClassifier.from_pretrained(tmp_path / "saved", device="cpu", quantize="on")
    assert int8.quantized and np.allclose(int8.predict_proba(texts).sum(axis=1), 1.0, atol=1e-5)


def test_padding_does_not_change_what_the_head_reads(encoder_and_data):
    from models.finetuning import FineTuner

    config, splits = encoder_and_data
    classifier = FineTuner(replace(config, epochs=1), splits).train().classifier
    alone = classifier.predict_proba(["so happy today"])
    beside_a_longer_one = classifier.predict_proba(["so happy today", "this is a much longer text than the other one"])
    assert np.allclose(alone[0], beside_a_longer_one[0], atol=1e-5)


def test_a_classifier_continued_from_keeps_its_own_pooling(encoder_and_data, tmp_path, make_tiny_bert):
    from models.finetuning import FineTuner

    config, splits = encoder_and_data
    mean_classifier = FineTuner(replace(config, epochs=1), splits).train().classifier
    mean_classifier.save_pretrained(tmp_path / "mean")
    continued = FineTuner(replace(config, base_model=str(tmp_path / "mean"), pooling="cls", epochs=1), splits)
    assert continued.config.pooling == "mean"
    assert continued.prepare().classifier.model.config.model_type == "emostream_mean_pooled_bert"

    cls_classifier, tokenizer = make_tiny_bert(["joy", "fear"], layers=1)
    cls_classifier.save_pretrained(tmp_path / "cls")
    tokenizer.save_pretrained(tmp_path / "cls")
    assert FineTuner(replace(config, base_model=str(tmp_path / "cls")), splits).config.pooling == "cls"


def test_mean_pooling_is_refused_for_an_encoder_it_was_not_built_for(encoder_and_data, tmp_path):
    import json

    from models.finetuning import FineTuner

    config, splits = encoder_and_data
    config_file = tmp_path / "encoder" / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "model_type": "distilbert"}))
    with pytest.raises(TrainingConfigError, match="BERT encoders"):
        FineTuner(config, splits)


def test_an_unknown_pooling_is_refused():
    with pytest.raises(TrainingConfigError, match="pooling"):
        TrainingConfig.from_recipe("quick", "base", pooling="max")
