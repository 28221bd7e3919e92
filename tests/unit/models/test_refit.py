"""Refitting on train + validation (models.refit) on a tiny classifier: the same training as a plain run on the
combined texts up to the selected epoch, and the selection run's calibration and validation figures kept."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from models.artifacts import export_run
from models.classifier import TEMPERATURE_KEY
from models.data import LabelledTexts, Splits
from models.finetuning import FineTuner
from models.refit import RefitTuner, Selection, refit


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    theirs = b.state_dict()
    return all(torch.equal(tensor, theirs[name]) for name, tensor in a.state_dict().items())


def test_a_refit_trains_as_a_run_on_train_plus_validation_would_up_to_the_selected_epoch(tiny_run):
    config, splits = tiny_run
    config = replace(config, epochs=4, average_last=1)
    refitted = RefitTuner(config, splits, splits.train.labels, Selection(epochs=2, temperature=1.5)).train()

    combined = Splits(splits.train.concat(splits.validation), splits.validation)
    scores = iter([0.9, 1.0, 0.5, 0.4])  # epoch 2 is kept; the schedule spans all 4 epochs in both runs
    plain = FineTuner(config, combined, select_by=lambda _: next(scores)).train()
    assert plain.best_epoch == 2
    assert same_weights(refitted.classifier.model, plain.classifier.model)
    assert [record["refit_epoch"] for record in refitted.history] == [1, 2]  # epochs 3 and 4 never ran
    assert refitted.train_examples == len(splits.train) + len(splits.validation) == 22
    assert refitted.classifier.temperature == 1.5
    assert getattr(refitted.classifier.model.config, TEMPERATURE_KEY) == 1.5  # saved with the model


def test_a_refit_averages_the_epochs_the_selection_averaged(tiny_run):
    config, splits = tiny_run
    config = replace(config, epochs=3, average_last=2)
    combined = Splits(splits.train.concat(splits.validation), splits.validation)
    scores = iter([0.1, 0.2, 0.3, 0.9])  # three epochs, then the average of epochs 2-3 wins
    plain = FineTuner(config, combined, select_by=lambda _: next(scores)).train()
    assert plain.averaging["kept"]

    selection = Selection.of(plain)
    assert selection == Selection(epochs=3, averaged=(2, 3), temperature=plain.calibration["temperature"])
    refitted = RefitTuner(config, splits, splits.train.labels, selection).train()
    assert same_weights(refitted.classifier.model, plain.classifier.model)
    assert refitted.refit["averaged_epochs"] == [2, 3]


def test_refit_keeps_the_selection_runs_validation_figures_and_thresholds(tiny_run, tmp_path):
    config, _ = tiny_run
    texts = ["so happy today", "happy yet scared", "i am scared", "this is terrifying and lovely"] * 4
    data = LabelledTexts(texts, [(0,), (0, 1), (1,), (0, 1)] * 4, ("joy", "fear"), multi_label=True)
    splits = Splits(data, data.subset(range(8)))
    selected = FineTuner(replace(config, epochs=2, average_last=1), splits).train()
    tuned = dict(selected.classifier.model.config.label_thresholds)

    refitted = refit(selected, splits)
    assert refitted.classifier is not selected.classifier
    assert refitted.classifier.model.config.label_thresholds == tuned
    assert refitted.classifier.thresholds.tolist() == selected.classifier.thresholds.tolist()
    assert refitted.validation == selected.validation  # the only held-out figure there is
    assert refitted.refit["train_examples"] == 16 + 8 and refitted.refit["epochs"] == selected.best_epoch
    assert len(refitted.history) == len(selected.history) + selected.best_epoch
    assert refitted.summary()["refit"] == refitted.refit
    assert refitted.calibration == {}  # multi-label: thresholds, no temperature (the model card tells them apart)
    # Time and speed are the whole run's: 16 texts for each selection epoch, then 24 for each refit epoch.
    assert refitted.train_seconds > selected.train_seconds
    total = 16 * len(selected.history) + 24 * selected.best_epoch
    assert refitted.examples_per_second * refitted.train_seconds == pytest.approx(total)

    card = (export_run(refitted, tmp_path / "run", data_source="tiny") / "README.md").read_text()
    assert "trained again the same way" in card
