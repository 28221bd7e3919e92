"""The optimizer's parameter groups for fine-tuning: weight decay only on weight matrices, and optionally layer-wise
learning-rate decay (each encoder layer learns at a fixed fraction of the rate of the layer above it).

Layer-wise decay keeps the lower layers, which hold the general language features of pre-training, closer to where
they started while the top layers and the new head adapt (ULMFiT's discriminative fine-tuning; ELECTRA and BEiT use
it). Depth is read from the parameter names the Hugging Face encoders use: ``embeddings`` at the bottom,
``layer.<i>`` in between, everything else (pooler, classification head) on top.
"""

from __future__ import annotations

import re
from typing import Any

import torch

LAYER_INDEX = re.compile(r"\.layers?\.(\d+)\.")


def depth(name: str, num_layers: int) -> int:
    """0 for the embeddings, ``i + 1`` for encoder layer ``i``, ``num_layers + 1`` for the rest (pooler, head)."""
    if "embeddings" in name:
        return 0
    match = LAYER_INDEX.search(name)
    if match:
        return int(match.group(1)) + 1
    return num_layers + 1


def parameter_groups(
    model: torch.nn.Module, learning_rate: float, weight_decay: float, layer_decay: float = 1.0
) -> list[dict[str, Any]]:
    """AdamW groups for the trainable parameters: biases and LayerNorm weights without weight decay; with
    ``layer_decay`` < 1, a parameter at depth ``d`` (see :func:`depth`) learns at ``learning_rate * layer_decay **
    (top - d)``, the head at the full rate. Schedulers scale each group's rate from these."""
    num_layers = int(getattr(model.config, "num_hidden_layers", 0))
    top = num_layers + 1
    groups: dict[tuple[int, bool], list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        decayed = parameter.ndim >= 2 and "LayerNorm" not in name
        # Without decay every depth shares one rate: two groups, not one per layer (fewer optimizer launches).
        level = depth(name, num_layers) if layer_decay != 1.0 else top
        groups.setdefault((level, decayed), []).append(parameter)
    return [
        {
            "params": params,
            "lr": learning_rate * layer_decay ** (top - level),
            "weight_decay": weight_decay if decayed else 0.0,
        }
        for (level, decayed), params in sorted(groups.items())
    ]
