"""The emotion classifier behind a small contract: load once, ``predict(texts) -> list[Prediction]``.

A checkpoint is a standard Hugging Face folder (``save_pretrained``), so ``transformers.pipeline`` loads it too.
Inference is batched in forward passes of texts of similar length (each padded only to its own longest text; on CPU cut
where another pass costs less than the padding it saves, ``models.pass_planning``), runs under
``torch.inference_mode()``, uses bf16/fp16 autocast on a GPU and, on CPU, int8 dynamic quantization of the Linear layers
when the checkpoint's own accuracy check approved it (see ``models.finetuning``). Softmax scores use the checkpoint's
calibration temperature (``models.calibration``).
"""

from __future__ import annotations

import contextlib
import itertools
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

import models.mean_pooling  # noqa: F401  (registers the mean-pooled classifier with transformers' Auto classes)
from models.device import autocast, device_autocast_dtype, resolve_device
from models.pass_planning import FIXED_OVERHEAD_TOKENS, full_passes, overhead_in_tokens, plan_passes
from models.prediction import Prediction, PredictionColumns

MULTI_LABEL = "multi_label_classification"
DEFAULT_THRESHOLD = 0.5
TEMPERATURE_KEY = "calibration_temperature"  # in config.json; not `temperature`, a generation setting in transformers


class EmotionClassifier:
    """A fine-tuned sequence classifier with batched, length-bucketed inference.

    Build it with :meth:`from_pretrained`; the constructor takes an already loaded model and tokenizer.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        device: str | torch.device = "auto",
        max_length: int = 128,
        batch_size: int = 64,
        quantized: bool = False,
        precision: str = "auto",
        pass_overhead: float = FIXED_OVERHEAD_TOKENS,
    ) -> None:
        if max_length <= 2 or batch_size <= 0:
            raise ValueError("max_length must be above 2 and batch_size positive")
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self._encoder = truncating_encoder(tokenizer, max_length)
        self.batch_size = batch_size
        self.quantized = quantized
        self.precision = precision
        self._autocast_dtype = device_autocast_dtype(self.device, precision)  # None on CPU; fails if the GPU lacks it
        self.model = model.to(self.device).eval()
        config = model.config
        self.labels: tuple[str, ...] = tuple(config.id2label[i] for i in range(config.num_labels))
        self.multi_label = config.problem_type == MULTI_LABEL
        thresholds = getattr(config, "label_thresholds", None) or {}
        self.thresholds = np.array([thresholds.get(name, DEFAULT_THRESHOLD) for name in self.labels], dtype=np.float32)
        # Fitted on validation after training (models.calibration); softmax scores only, 1.0 for older checkpoints.
        self.temperature = 1.0 if self.multi_label else float(getattr(config, TEMPERATURE_KEY, None) or 1.0)
        # On CPU, what one more forward pass costs, in tokens' worth of compute (models.pass_planning). Fixed, so that
        # the same texts are always cut into the same passes and score the same (int8 quantizes each pass's
        # activations at its own scale); the worker's inference processes time it for their machine
        # (time_pass_overhead).
        self.pass_overhead = pass_overhead

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | Path,
        *,
        device: str = "auto",
        max_length: int = 128,
        batch_size: int = 64,
        quantize: str = "auto",
        precision: str = "auto",
    ) -> EmotionClassifier:
        """Load a checkpoint folder or hub id.

        Args:
            path_or_id: an HF folder (safetensors weights) or a hub id.
            device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
            max_length: tokens kept per text.
            batch_size: texts per forward pass.
            quantize: ``auto`` (int8 on CPU when the checkpoint approved it), ``on`` (int8 on CPU) or ``off``.
            precision: on a GPU, ``auto`` (bf16 where supported, else fp16), ``bf16``, ``fp16`` or ``fp32``.
        """
        resolved = resolve_device(device)
        device_autocast_dtype(resolved, precision)  # a precision this device cannot run fails before the weights load
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                str(path_or_id), use_safetensors=True, dtype=torch.float32
            )
            tokenizer = AutoTokenizer.from_pretrained(str(path_or_id))
        approved = bool(getattr(model.config, "int8_validated", False))
        use_int8 = resolved.type == "cpu" and (quantize == "on" or (quantize == "auto" and approved))
        if use_int8:
            model = quantize_int8(model)
        return cls(
            model,
            tokenizer,
            device=resolved,
            max_length=max_length,
            batch_size=batch_size,
            quantized=use_int8,
            precision=precision,
        )

    def save_pretrained(self, path: str | Path) -> None:
        """Write a standard HF checkpoint (safetensors) with its tokenizer."""
        if self.quantized:
            raise RuntimeError("a quantized classifier cannot be saved; save the fp32 model it was made from")
        with quiet_transformers():  # no "Writing model shards" bar in the middle of `emostream train`'s own output
            self.model.save_pretrained(str(path), safe_serialization=True)
            self.tokenizer.save_pretrained(str(path))

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One :class:`Prediction` per text, in order."""
        probabilities = self.predict_proba(texts)
        tops = probabilities.argmax(axis=1).tolist()
        return [self._to_prediction(row, top) for row, top in zip(probabilities, tops, strict=True)]

    def predict_columns(self, texts: Sequence[str]) -> PredictionColumns:
        """The predictions :meth:`predict` makes, as :class:`PredictionColumns` (what the stream's inference processes
        send their worker)."""
        return self._to_columns(self.predict_proba(texts))

    def _to_columns(self, probabilities: np.ndarray) -> PredictionColumns:
        tops = probabilities.argmax(axis=1).tolist()
        if len(self.labels) > 1:
            # In float64, as score_margin subtracts the scores once they are Python floats: the same margins exactly.
            ordered = np.sort(probabilities.astype(np.float64), axis=1)
            margins = (ordered[:, -1] - ordered[:, -2]).tolist()
        else:
            margins = [1.0] * len(tops)
        names, scores, scores_json = [], [], []
        for row, top in zip(probabilities, tops, strict=True):
            values = row.tolist()  # row by row, as in _to_prediction
            names.append(self.labels[top])
            scores.append(values[top])
            scores_json.append(orjson.dumps(dict(zip(self.labels, values, strict=True))))
        chosen = None
        if self.multi_label:
            chosen = [self._chosen(row, top) for row, top in zip(probabilities, tops, strict=True)]
        return PredictionColumns(names, scores, margins, scores_json, chosen)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, shape ``(len(texts), len(labels))``, rows in the order of ``texts``."""
        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts, not a single string")
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        if not texts:
            return out
        token_ids = self.tokenize(texts)
        with torch.inference_mode():
            for indices in self.passes([len(ids) for ids in token_ids]):
                out[indices] = self.forward([token_ids[i] for i in indices])
        return out

    def passes(self, lengths: Sequence[int]) -> list[np.ndarray]:
        """The forward passes for texts of ``lengths`` tokens: index arrays of at most ``batch_size`` texts of similar
        length. On a GPU full passes (a pass costs mostly its fixed overhead there: cutting passes short made one worker
        5x slower on an H200, docs/benchmarks.md); on CPU the plan of ``models.pass_planning`` for
        :attr:`pass_overhead`."""
        if self.device.type != "cpu":
            return full_passes(lengths, self.batch_size)
        return plan_passes(lengths, self.batch_size, self.pass_overhead)

    def time_pass_overhead(self, texts: int = 8, length: int = 16, rounds: int = 7) -> float:
        """Time this model's cost of one more pass, in tokens, on this machine, and plan passes with it from now on
        (returned): from the quickest of ``rounds`` passes of one text and of ``texts`` texts, ``length`` tokens each,
        taken in turn so that other load slows both alike."""
        ids = (self.tokenize(["a word " * length])[0] * length)[:length]
        batches = ([ids], [ids] * texts)
        quickest = [float("inf"), float("inf")]
        with torch.inference_mode():
            for batch in batches:
                self.forward(batch)  # a new shape's first pass allocates
            for _ in range(rounds):
                for which, batch in enumerate(batches):
                    started = time.perf_counter()
                    self.forward(batch)
                    quickest[which] = min(quickest[which], time.perf_counter() - started)
        ceiling = float(self.batch_size * self.max_length)
        self.pass_overhead = overhead_in_tokens(*quickest, texts, length, ceiling=ceiling)
        return self.pass_overhead

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, truncated to ``max_length``, unpadded: the ids calling the tokenizer gives, read
        straight from its Rust backend when it has one (see :func:`truncating_encoder`)."""
        if self._encoder is not None:
            return [encoding.ids for encoding in self._encoder.encode_batch_fast(list(texts))]
        return self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]

    def forward(self, batch: list[list[int]]) -> np.ndarray:
        """Probabilities for one batch of token id lists (padded here to the batch's longest)."""
        input_ids, attention_mask = pad_batch(batch, self.tokenizer.pad_token_id or 0)
        with autocast(self._autocast_dtype):
            logits = self.model(
                input_ids=input_ids.to(self.device, non_blocking=True),
                attention_mask=attention_mask.to(self.device, non_blocking=True),
            ).logits
        logits = logits.float()
        probabilities = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits / self.temperature, dim=-1)
        return probabilities.cpu().numpy()

    def _to_prediction(self, row: np.ndarray, top: int) -> Prediction:
        # The row's Python floats at once: 1.3 us per text against 1.8 converting each score on its own
        # (bench/classify_steps.py). Row by row, not the whole batch's tolist(): a list per text alive at once made
        # the collector walk the heap over and over.
        values = row.tolist()
        scores = dict(zip(self.labels, values, strict=True))
        return Prediction(self.labels[top], values[top], scores, self._chosen(row, top) if self.multi_label else None)

    def _chosen(self, row: np.ndarray, top: int) -> tuple[str, ...]:
        """A multi-label model's labels at or above their threshold, most probable first (the top one if none is)."""
        above = np.flatnonzero(row >= self.thresholds)
        return tuple(self.labels[i] for i in above[np.argsort(-row[above])]) or (self.labels[top],)


def load_classifier(path: str | Path, settings: Any) -> EmotionClassifier:
    """Load the checkpoint folder ``path`` the way the worker serves it: ``settings`` (``emostream.settings.Settings``)
    gives the device, token length, forward-pass size, int8 policy and GPU precision."""
    return EmotionClassifier.from_pretrained(
        path,
        device=settings.device,
        max_length=settings.max_length,
        batch_size=settings.batch_size,
        quantize=settings.quantize,
        precision=settings.gpu_precision,
    )


def truncating_encoder(tokenizer: PreTrainedTokenizerBase, max_length: int) -> Any:
    """A copy of a fast tokenizer's Rust backend (``tokenizers.Tokenizer``) that truncates as
    ``tokenizer(texts, truncation=True, max_length=max_length)`` does and never pads; None for a tokenizer without one
    (then the tokenizer itself is called). Calling the tokenizer turns every encoding into Python dicts of ids, type ids
    and masks, and asks for offsets: 35 us of CPU per emotion text against 27 us here (``bench/tokenize_cost.py``).
    A copy, because the tokenizer's own backend changes its truncation whenever it is called with other settings."""
    backend = getattr(tokenizer, "backend_tokenizer", None) if tokenizer.is_fast else None
    if backend is None or not hasattr(backend, "encode_batch_fast"):
        return None
    from tokenizers import Tokenizer

    encoder = Tokenizer.from_str(backend.to_str())
    encoder.no_padding()
    encoder.enable_truncation(max_length, direction=tokenizer.truncation_side)
    return encoder


def pad_batch(batch: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists to the longest one: ``(input_ids, attention_mask)``. Filled in one numpy assignment:
    a tensor slice assignment per row cost 7 us per text, a tenth of a small model's inference."""
    lengths = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch))
    attention_mask = np.arange(lengths.max()) < lengths[:, None]
    input_ids = np.full(attention_mask.shape, pad_id, dtype=np.int64)
    input_ids[attention_mask] = np.fromiter(itertools.chain.from_iterable(batch), dtype=np.int64, count=lengths.sum())
    return torch.from_numpy(input_ids), torch.from_numpy(attention_mask.astype(np.int64))


def quantize_int8(model: PreTrainedModel) -> PreTrainedModel:
    """int8 dynamic quantization of every Linear layer, weights per output channel (CPU inference only).

    Per-channel weight scales keep accuracy where one scale per tensor does not: on the emotion test split the quick
    model lost 1.0 point with per-tensor scales and 0.05 with per-channel ones, at the same speed (docs/benchmarks.md).
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    # torch.ao's eager quantization warns that it is deprecated in favour of torchao; it is still the dependency-free
    # path in torch 2.13 (see docs/notes.md).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
        return quantize_dynamic(model.cpu().eval(), {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bars while loading (a new head is expected to be missing) or
    saving; then put both back as they were (bars an operator turned off, or an enclosing quiet block, stay off)."""
    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
