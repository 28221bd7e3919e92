"""Training configuration and batching logic (the real fine-tune is in tests/integration)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from models.finetuning import RECIPES, TrainingConfig, TrainingConfigError, length_grouped_batches


def test_recipes_build_valid_configs():
    for name in RECIPES:
        config = TrainingConfig.from_recipe(name, "base")
        assert config.recipe == name and config.base_model == "base"


def test_overrides_apply_and_none_is_ignored():
    config = TrainingConfig.from_recipe("quick", "base", epochs=5, learning_rate=None)
    assert config.epochs == 5 and config.learning_rate == RECIPES["quick"]["learning_rate"]


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0},
        {"learning_rate": 2.0},
        {"batch_size": -1},
        {"max_train": 0},
        {"warmup_ratio": 1.0},
        {"patience": 0},
        {"average_last": 0},
        {"label_smoothing": 1.0},
        {"label_smoothing": 0.1, "multi_label": True},
        {"layer_decay": 0.0},
        {"layer_decay": 1.5},
    ],
)
def test_out_of_range_values_are_refused(bad):
    with pytest.raises(TrainingConfigError):
        TrainingConfig.from_recipe("quick", "base", **bad)


def test_unknown_recipe():
    with pytest.raises(TrainingConfigError, match="unknown recipe"):
        TrainingConfig.from_recipe("turbo", "base")


def test_length_grouped_batches_cover_everything_once_and_group_lengths():
    rng = random.Random(0)
    lengths = [rng.randint(1, 100) for _ in range(1000)]
    batches = list(length_grouped_batches(lengths, 16, random.Random(1)))
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 10  # grouped: random batches of 16 would span ~85 tokens
    assert batches != list(length_grouped_batches(lengths, 16, random.Random(2)))


@pytest.fixture
def tiny_run(make_tiny_bert, tmp_path):
    """A saved tiny classifier (joy, fear) to continue from, and small separable train and validation data."""
    from models.data import LabelledTexts, Splits

    model, tokenizer = make_tiny_bert(["joy", "fear"], layers=1)
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    texts = ["so happy today", "what a lovely gift", "i am scared", "this is terrifying"] * 4
    targets = [(0,), (0,), (1,), (1,)] * 4
    data = LabelledTexts(texts, targets, ("joy", "fear"), source="tiny")
    config = TrainingConfig(
        base_model=str(tmp_path / "base"), epochs=5, batch_size=4, eval_batch_size=8, max_length=16, device="cpu"
    )
    return config, Splits(data, data.subset(range(6)))


def test_patience_stops_after_epochs_without_a_better_selection_score(tiny_run):
    from dataclasses import replace

    from models.finetuning import FineTuner

    config, splits = tiny_run
    seen_shapes = []
    scores = iter([0.5, 0.7, 0.6, 0.9, 0.95])  # epoch 3 is worse than epoch 2: with patience 1, epoch 4 never runs

    def select_by(probabilities):
        seen_shapes.append(probabilities.shape)
        return next(scores)

    result = FineTuner(replace(config, patience=1), splits, select_by=select_by).train()
    assert [r["epoch"] for r in result.history] == [1, 2, 3] and result.best_epoch == 2
    assert [r["selection_score"] for r in result.history] == [0.5, 0.7, 0.6]
    assert seen_shapes == [(6, 2)] * 3  # validation rows x labels
    assert result.train_examples * 3 / result.train_seconds == pytest.approx(result.examples_per_second)


def test_average_weights_means_float_tensors_and_keeps_the_last_of_the_others():
    import torch

    from models.finetuning import average_weights

    snapshots = [
        {"w": torch.tensor([1.0, 2.0]), "ids": torch.tensor([0, 1])},
        {"w": torch.tensor([3.0, 6.0]), "ids": torch.tensor([0, 1])},
        {"w": torch.tensor([5.0, 1.0]), "ids": torch.tensor([7, 8])},
    ]
    averaged = average_weights(snapshots)
    assert torch.equal(averaged["w"], torch.tensor([3.0, 3.0])) and torch.equal(averaged["ids"], torch.tensor([7, 8]))


@pytest.mark.parametrize(("average_score", "kept"), [(0.9, True), (0.6, False)])
def test_a_checkpoint_average_replaces_the_best_epoch_only_when_it_validates_better(tiny_run, average_score, kept):
    from dataclasses import replace

    import torch

    from models.finetuning import FineTuner, average_weights

    config, splits = tiny_run
    scores = iter([0.5, 0.8, 0.7, 0.65, 0.6, average_score])  # 5 epochs (epoch 2 is the best), then the average
    snapshots = []

    class Recording(FineTuner):
        def average_last_epochs(self, run, best, history):
            snapshots.extend(run.last_weights)
            return super().average_last_epochs(run, best, history)

    result = Recording(replace(config, average_last=3), splits, select_by=lambda _: next(scores)).train()
    assert len(snapshots) == 3 and [r["epoch"] for r in result.history] == [1, 2, 3, 4, 5]
    assert result.averaging["epochs"] == [3, 4, 5] and result.averaging["kept"] is kept
    assert result.averaging["selection_score"] == average_score and result.averaging["best_single_epoch"] == 2
    assert result.best_epoch == (5 if kept else 2)
    served = result.classifier.model.state_dict()
    averaged = average_weights(snapshots)
    name = next(n for n, t in averaged.items() if t.is_floating_point() and not torch.equal(t, snapshots[-1][n]))
    assert torch.allclose(served[name].cpu(), averaged[name]) is kept


def test_a_run_shorter_than_the_average_averages_the_epochs_it_ran(tiny_run):
    from dataclasses import replace

    from models.finetuning import FineTuner

    config, splits = tiny_run
    result = FineTuner(replace(config, epochs=2, average_last=3), splits).train()
    assert result.averaging["epochs"] == [1, 2]
    one = FineTuner(replace(config, epochs=1, average_last=3), splits).train()
    assert one.averaging == {}  # nothing to average


def test_head_warm_up_fits_the_output_layer_alone(tiny_run):
    import torch

    from models.finetuning import FineTuner, output_head

    config, splits = tiny_run
    tuner = FineTuner(config, splits)
    run = tuner.prepare()
    model = run.classifier.model
    head = output_head(model)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    report = tuner.warm_up_head(run)
    assert report["loss_after"] < report["loss_before"]
    head_names = {name for name, p in model.named_parameters() if any(p is q for q in head.parameters())}
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter, before[name]) != (name in head_names), name  # only the head moved


def test_a_continued_classifier_starts_uncalibrated_and_is_calibrated_on_its_best_epoch(tiny_run):
    import json
    from dataclasses import replace

    from models.classifier import TEMPERATURE_KEY
    from models.finetuning import FineTuner

    config, splits = tiny_run
    config_file = Path(config.base_model) / "config.json"
    saved = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**saved, TEMPERATURE_KEY: 7.0}))  # the model continued from was calibrated
    tuner = FineTuner(replace(config, epochs=1), splits)
    assert tuner.prepare().classifier.temperature == 1.0  # trained and selected on raw scores
    result = tuner.train()
    assert result.classifier.temperature == pytest.approx(result.calibration["temperature"], abs=1e-4)
    assert getattr(result.classifier.model.config, TEMPERATURE_KEY) == result.classifier.temperature


def test_label_smoothing_and_layer_decay_reach_the_loss_and_the_optimizer(tiny_run):
    from dataclasses import replace

    from models.finetuning import FineTuner

    config, splits = tiny_run
    run = FineTuner(replace(config, label_smoothing=0.1, layer_decay=0.5), splits).prepare()
    assert run.loss_fn.label_smoothing == 0.1
    # one encoder layer: embeddings, the layer, then pooler and head, each at half the rate of the one above
    assert sorted({group["initial_lr"] for group in run.optimizer.param_groups}) == pytest.approx([2.5e-5, 5e-5, 1e-4])


def test_label_smoothing_is_refused_for_multi_label_data(tiny_run):
    from dataclasses import replace

    from models.data import LabelledTexts, Splits
    from models.finetuning import FineTuner

    config, _ = tiny_run
    data = LabelledTexts(["happy and scared", "so happy"], [(0, 1), (0,)], ("joy", "fear"), multi_label=True)
    with pytest.raises(TrainingConfigError, match="single-label"):
        FineTuner(replace(config, label_smoothing=0.1), Splits(data, data))


def test_a_multi_label_run_predicts_with_its_tuned_thresholds_in_process_as_when_served(tiny_run, tmp_path):
    import numpy as np

    from models.classifier import EmotionClassifier
    from models.data import LabelledTexts, Splits
    from models.evaluation import evaluate_classifier
    from models.finetuning import FineTuner

    config, _ = tiny_run
    texts = ["so happy today", "happy yet scared", "i am scared", "this is terrifying and lovely"] * 4
    data = LabelledTexts(texts, [(0,), (0, 1), (1,), (0, 1)] * 4, ("joy", "fear"), multi_label=True)
    result = FineTuner(config, Splits(data, data)).train()
    tuned = result.classifier.model.config.label_thresholds
    assert any(value != 0.5 for value in tuned.values())  # else this test could not tell the two apart
    assert result.classifier.thresholds.tolist() == [tuned[name] for name in result.classifier.labels]

    result.classifier.model.save_pretrained(tmp_path / "saved")
    result.classifier.tokenizer.save_pretrained(tmp_path / "saved")
    served = EmotionClassifier.from_pretrained(tmp_path / "saved", device="cpu", quantize="off")
    assert np.array_equal(served.thresholds, result.classifier.thresholds)
    assert evaluate_classifier(result.classifier, data) == evaluate_classifier(served, data)


def test_a_multi_label_run_keeps_the_epoch_that_validates_best_at_its_tuned_thresholds(tiny_run):
    from dataclasses import replace

    from models.data import LabelledTexts, Splits
    from models.finetuning import FineTuner

    config, _ = tiny_run
    texts = ["so happy today", "happy yet scared", "i am scared", "this is terrifying and lovely"] * 4
    data = LabelledTexts(texts, [(0,), (0, 1), (1,), (0, 1)] * 4, ("joy", "fear"), multi_label=True)
    result = FineTuner(replace(config, epochs=4, average_last=1), Splits(data, data)).train()
    scores = [record["selection_score"] for record in result.history]
    assert result.best_epoch == scores.index(max(scores)) + 1
    # The saved model's validation figure (thresholds tuned again on the kept weights) is the score it was chosen by.
    assert round(result.validation["macro_f1"], 5) == max(scores)
