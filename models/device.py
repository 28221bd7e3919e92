"""Device choice for inference and training: ``auto`` takes the GPU when there is one, and its best half precision."""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def resolve_device(device: str = "auto") -> torch.device:
    """Map ``auto``/``cpu``/``cuda`` (or ``cuda:N``) to a torch device; asking for CUDA without one is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for, but torch sees no CUDA GPU (use auto or cpu)")
    return resolved


def autocast(dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """CUDA autocast in ``dtype``; nothing for ``None`` (CPU, or fp32 asked for). Resolve ``dtype`` once, with
    :func:`device_autocast_dtype`, not per forward pass."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type="cuda", dtype=dtype)


def device_autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``device``: ``None`` on CPU (fp32 there is the fast path), else :func:`autocast_dtype`
    for this GPU."""
    if device.type != "cuda":
        autocast_dtype(precision, bf16_supported=True)  # the name is still checked: a typo fails on CPU too
        return None
    return autocast_dtype(precision, bf16_supported=torch.cuda.is_bf16_supported())


def autocast_dtype(precision: str, *, bf16_supported: bool) -> torch.dtype | None:
    """The autocast dtype of a GPU ``precision``, or ``None`` for plain fp32: ``auto`` is bf16 where the GPU has it,
    else fp16. One probe on an H200 ran MiniLM faster in fp32 (docs/notes.md, not yet a benchmark), which is why the
    choice is the operator's (``EMOSTREAM_GPU_PRECISION``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"GPU precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16" and not bf16_supported:
        raise RuntimeError("bf16 was asked for, but this GPU does not support it (use auto, fp16 or fp32)")
    if precision == "fp16" or (precision == "auto" and not bf16_supported):
        return torch.float16
    return torch.bfloat16
