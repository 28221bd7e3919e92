"""The optimizer's parameter groups: weight decay on weight matrices only, layer-wise learning-rate decay by depth."""

from __future__ import annotations

import pytest

from models.parameter_groups import depth, parameter_groups


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bert.embeddings.word_embeddings.weight", 0),
        ("bert.embeddings.LayerNorm.bias", 0),
        ("bert.encoder.layer.0.attention.self.query.weight", 1),
        ("bert.encoder.layer.5.output.LayerNorm.weight", 6),
        ("roberta.encoder.layers.11.fc1.weight", 12),  # the plural some encoders use
        ("bert.pooler.dense.weight", 7),
        ("classifier.weight", 7),
    ],
)
def test_depth_orders_embeddings_layers_and_head(name, expected):
    assert depth(name, num_layers=6) == expected


def rates_and_decay(model, groups):
    """Each named parameter's learning rate and weight decay, read back from the groups."""
    of = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    return {name: of[id(p)] for name, p in model.named_parameters() if id(p) in of}


def test_without_layer_decay_every_parameter_learns_at_the_base_rate(make_tiny_bert):
    model, _ = make_tiny_bert(["joy", "fear"], layers=2)
    seen = rates_and_decay(model, parameter_groups(model, 1e-4, 0.01))
    assert len(seen) == len(list(model.parameters()))
    assert {lr for lr, _ in seen.values()} == {1e-4}
    assert seen["classifier.weight"][1] == 0.01
    assert seen["classifier.bias"][1] == 0.0
    assert seen["bert.encoder.layer.0.output.LayerNorm.weight"][1] == 0.0


def test_layer_decay_lowers_the_rate_one_factor_per_layer_down(make_tiny_bert):
    model, _ = make_tiny_bert(["joy", "fear"], layers=2)
    seen = rates_and_decay(model, parameter_groups(model, 1e-4, 0.01, layer_decay=0.5))
    assert seen["classifier.weight"] == (1e-4, 0.01)
    assert seen["bert.pooler.dense.weight"][0] == pytest.approx(1e-4)
    assert seen["bert.encoder.layer.1.attention.self.query.weight"][0] == pytest.approx(5e-5)
    assert seen["bert.encoder.layer.0.attention.self.query.weight"][0] == pytest.approx(2.5e-5)
    assert seen["bert.embeddings.word_embeddings.weight"] == (pytest.approx(1.25e-5), 0.01)
    assert seen["bert.embeddings.LayerNorm.weight"] == (pytest.approx(1.25e-5), 0.0)


def test_frozen_parameters_are_left_out(make_tiny_bert):
    model, _ = make_tiny_bert(["joy", "fear"], layers=1)
    model.get_input_embeddings().weight.requires_grad_(False)
    groups = parameter_groups(model, 1e-4, 0.01, layer_decay=0.8)
    assert all(p is not model.get_input_embeddings().weight for g in groups for p in g["params"])
