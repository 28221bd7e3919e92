"""Device choice for inference and training: ``auto`` takes the GPU when there is one, and its best half precision."""

from __future__ import annotations

import contextlib

import torch


def resolve_device(device: str = "auto") -> torch.device:
    """Map ``auto``/``cpu``/``cuda`` (or ``cuda:N``) to a torch device; asking for CUDA without one is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for, but torch sees no CUDA GPU (use auto or cpu)")
    return resolved


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on GPUs that support it, fp16 on older ones, nothing on CPU (fp32 there is the fast path)."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)
