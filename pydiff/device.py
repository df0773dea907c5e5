"""Where and in which precision tensors live: the device choice and bf16 autocast."""

from __future__ import annotations

import contextlib
import os

import torch

from .errors import ConfigError


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``; :class:`ConfigError` otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but PyTorch sees no CUDA device here")
    return device


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA when ``enabled``; full float32 everywhere else."""
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (for timing); nothing on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def memory_budget(device: torch.device) -> float:
    """Bytes of data a run may hold where it trains: half the GPU's memory on CUDA (the rest is
    for the network, its activations and Adam), half the machine's memory otherwise."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory / 2
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): assume it fits
        return float("inf")
