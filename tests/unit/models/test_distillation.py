"""Distillation: the teachers' softened scores, the blended loss, and a run that learns from its teachers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from models.distillation import blended_loss, distillation_loss, teacher_probabilities
from models.finetuning import FineTuner, TrainingConfig, TrainingConfigError

TEXTS = ["so happy today", "what a lovely gift", "i am scared", "this is terrifying"]


def scored_by(teachers: list[str], temperature: float = 2.0) -> np.ndarray:
    """The teachers' mean probabilities for TEXTS, over the student's labels joy and fear."""
    return teacher_probabilities(
        teachers, TEXTS, ["joy", "fear"], temperature=temperature, device="cpu", max_length=16, batch_size=8
    )


def test_the_distillation_term_is_the_kl_divergence_at_the_temperature_scaled_by_its_square():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    targets = torch.softmax(logits / 2.0, dim=-1)
    assert float(distillation_loss(logits, targets, 2.0)) == pytest.approx(0.0, abs=1e-6)  # the student matches

    soft = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    student = torch.softmax(logits / 3.0, dim=-1)
    expected = (soft * (soft.log() - student.log())).sum(dim=-1).mean() * 9.0
    assert float(distillation_loss(logits, soft, 3.0)) == pytest.approx(float(expected), rel=1e-5)


def test_the_blend_weighs_the_gold_labels_loss_against_the_distillation_term():
    logits = torch.tensor([[1.0, -1.0]])
    soft = torch.tensor([[0.2, 0.8]])
    hard = torch.tensor(0.9)
    term = float(distillation_loss(logits, soft, 2.0))
    assert float(blended_loss(hard, logits, soft, weight=1.0, temperature=2.0)) == pytest.approx(term)
    mixed = float(blended_loss(hard, logits, soft, weight=0.25, temperature=2.0))
    assert mixed == pytest.approx(0.75 * 0.9 + 0.25 * term)


@pytest.fixture
def save_teacher(make_tiny_bert, tmp_path):
    """``save_teacher(name, labels, bias=None, **config) -> folder``: a tiny classifier saved as a teacher; ``bias``
    sets its head's bias (large values make it predict one label whatever the text)."""

    def save(name: str, labels: list[str], bias: list[float] | None = None, **config_extra) -> str:
        model, tokenizer = make_tiny_bert(labels, layers=1, **config_extra)
        if bias is not None:
            with torch.no_grad():
                model.classifier.weight.zero_()
                model.classifier.bias.copy_(torch.tensor(bias))
        model.save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
        return str(tmp_path / name)

    return save


def test_teacher_probabilities_are_the_mean_of_the_teachers_softened_scores_in_the_students_label_order(save_teacher):
    from models.classifier import EmotionClassifier

    one = save_teacher("one", ["joy", "fear"])
    two = save_teacher("two", ["fear", "anger", "joy"])  # another order, and a label the student does not have
    mean = scored_by([one, two])
    assert mean.shape == (4, 2) and np.allclose(mean.sum(axis=1), 1.0)

    expected = []
    for path, columns in ((one, [0, 1]), (two, [2, 0])):
        teacher = EmotionClassifier.from_pretrained(path, device="cpu", quantize="off")
        with torch.inference_mode():
            encoded = teacher.tokenizer(TEXTS, padding=True, return_tensors="pt")
            logits = teacher.model(**encoded).logits[:, columns]
        expected.append(torch.softmax(logits / 2.0, dim=-1).numpy())  # anger's share dropped, the rest renormalised
    assert np.allclose(mean, np.mean(expected, axis=0), atol=1e-5)


def test_teacher_probabilities_ignore_the_teachers_calibration(save_teacher, tmp_path):
    import json

    from models.classifier import TEMPERATURE_KEY

    plain = save_teacher("plain", ["joy", "fear"], bias=[1.0, -1.0])
    calibrated = save_teacher("calibrated", ["joy", "fear"], bias=[1.0, -1.0])
    config_file = tmp_path / "calibrated" / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), TEMPERATURE_KEY: 5.0}))
    assert np.allclose(scored_by([plain]), scored_by([calibrated]))


def test_a_teacher_without_one_of_the_labels_or_a_multi_label_one_is_refused(save_teacher):
    narrow = save_teacher("narrow", ["joy"])
    with pytest.raises(TrainingConfigError, match="lacks the labels fear"):
        scored_by([narrow])
    multi = save_teacher("multi", ["joy", "fear"], problem_type="multi_label_classification")
    with pytest.raises(TrainingConfigError, match="multi-label"):
        scored_by([multi])


@pytest.mark.parametrize("bad", [{"distill_weight": 0.0}, {"distill_weight": 1.5}, {"distill_temperature": 0.0}])
def test_out_of_range_distillation_settings_are_refused(bad):
    with pytest.raises(TrainingConfigError):
        TrainingConfig.from_recipe("quick", "base", **bad)


def test_distillation_is_refused_for_multi_label_runs():
    with pytest.raises(TrainingConfigError, match="single-label"):
        TrainingConfig.from_recipe("quick", "base", teachers=("t",), multi_label=True)


@pytest.mark.parametrize("taught", ["joy", "fear"])
def test_a_student_distilled_alone_learns_what_its_teacher_says_not_the_gold_labels(save_teacher, taught):
    """Half the gold labels are joy, half fear; a teacher that says ``taught`` whatever the text, with all the loss on
    it, makes the student say the same for every text. Only the teacher differs between the two cases."""
    from models.data import LabelledTexts, Splits

    base = save_teacher("base", ["joy", "fear"])
    teacher = save_teacher("teacher", ["joy", "fear"], bias=[6.0, -6.0] if taught == "joy" else [-6.0, 6.0])
    data = LabelledTexts(TEXTS * 4, [(0,), (0,), (1,), (1,)] * 4, ("joy", "fear"), source="tiny")
    config = TrainingConfig(
        base_model=base,
        epochs=2,
        learning_rate=5e-3,
        batch_size=4,
        eval_batch_size=8,
        max_length=16,
        device="cpu",
        teachers=(teacher,),
        distill_weight=1.0,
        distill_temperature=1.0,
    )
    tuner = FineTuner(config, Splits(data, data.subset(range(6))))
    run = tuner.prepare()
    assert run.soft_targets is not None and run.soft_targets.shape == (16, 2)
    assert run.soft_targets[:, 0 if taught == "joy" else 1].min() > 0.99
    result = tuner.train()
    assert {prediction.label for prediction in result.classifier.predict(TEXTS)} == {taught}
    assert result.config.hyperparameters()["teachers"] == [teacher]


def test_without_teachers_a_run_has_no_soft_targets(save_teacher):
    from models.data import LabelledTexts, Splits

    base = save_teacher("base", ["joy", "fear"])
    data = LabelledTexts(TEXTS, [(0,), (0,), (1,), (1,)], ("joy", "fear"), source="tiny")
    config = TrainingConfig(base_model=base, epochs=1, batch_size=4, eval_batch_size=8, max_length=16, device="cpu")
    assert FineTuner(config, Splits(data, data)).prepare().soft_targets is None
    assert FineTuner(replace(config, teachers=(base,)), Splits(data, data)).prepare().soft_targets is not None
