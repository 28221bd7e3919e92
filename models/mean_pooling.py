"""A BERT sequence classifier whose head reads the mean of the token states, not the ``[CLS]`` state.

The packaged base encoder (all-MiniLM-L6-v2) was trained by sentence-transformers with mean pooling: its ``[CLS]``
state was never trained to stand for the sentence and its pooler weights were never trained at all. Transformers'
``BertForSequenceClassification`` reads exactly those, so fine-tuning has to teach them first; mean pooling starts
from the representation the encoder was trained to give (frozen features, ``bench/pooling_probe.py``: 0.607 validation
macro-F1 on emotion with a logistic head, against 0.508 for the pooler's output). After the ``full`` recipe's six epochs
it was no better (docs/benchmarks.md, session 19), so it is an option (``TrainingConfig.pooling``), off by default.

The classifier has its own ``model_type``, registered with transformers' Auto classes when this module is imported
(``models.classifier`` and ``models.finetuning`` do), so every loader here, ``AutoModelForSequenceClassification``
and ``transformers.pipeline`` in a process that imported it load the right class. A process that did not fails with
transformers' "unrecognized model type" instead of silently reading the ``[CLS]`` state with a head trained on means.
Weights keep BERT's names (``bert.*``, ``classifier.*``), less the unused pooler.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput

MEAN_POOLED_BERT = "emostream_mean_pooled_bert"
POOLINGS = ("cls", "mean")


class MeanPooledBertConfig(BertConfig):
    """BERT's config under its own model type, so that loaders pick :class:`MeanPooledBertForSequenceClassification`."""

    model_type = MEAN_POOLED_BERT


class MeanPooledBertForSequenceClassification(BertForSequenceClassification):
    """BERT's sequence classifier with the head on the attention-masked mean of the last layer's token states."""

    config_class = MeanPooledBertConfig

    def __init__(self, config: MeanPooledBertConfig) -> None:
        super().__init__(config)
        self.bert.pooler = None  # never read: without it no [CLS] dense layer is computed or saved

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        states = outputs.last_hidden_state
        logits = self.classifier(self.dropout(masked_mean(states, attention_mask)))
        return SequenceClassifierOutput(
            loss=None if labels is None else self._loss(logits, labels),
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.config.problem_type == "multi_label_classification":
            return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))


def masked_mean(states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The mean over each row's real tokens (``attention_mask`` 1); over all of them without a mask."""
    if attention_mask is None:
        return states.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def pooling_of(config) -> str:
    """``mean`` for a mean-pooled classifier's config, ``cls`` for any other."""
    return "mean" if getattr(config, "model_type", None) == MEAN_POOLED_BERT else "cls"


def mean_pooled_config(base_config: BertConfig, **changes) -> MeanPooledBertConfig:
    """A mean-pooled classifier's config from a BERT encoder's (or classifier's) config, with ``changes`` on top."""
    if base_config.model_type not in ("bert", MEAN_POOLED_BERT):
        raise ValueError(
            f"mean pooling is built for BERT encoders; this base is {base_config.model_type!r} (use pooling 'cls')"
        )
    values = base_config.to_dict()
    for key in ("model_type", "architectures", "transformers_version"):
        values.pop(key, None)
    return MeanPooledBertConfig(**{**values, **changes})


AutoConfig.register(MEAN_POOLED_BERT, MeanPooledBertConfig, exist_ok=True)
AutoModelForSequenceClassification.register(
    MeanPooledBertConfig, MeanPooledBertForSequenceClassification, exist_ok=True
)
