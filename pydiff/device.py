"""Where and in which precision tensors live: the device choice, and the fast paths a GPU takes
(bf16 autocast, channels-last layout, fused Adam).

PyTorch offers those paths on a CPU too.  :func:`cuda_paths_on_cpu` makes a CPU run take them,
so that a machine without a GPU can check every part of the GPU path but what only CUDA has
(CUDA graphs, NCCL); ordinary CPU runs stay in float32.
"""

from __future__ import annotations

import contextlib
import os

import torch

from .errors import ConfigError


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N`` (or a torch.device);
    :class:`ConfigError` otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but PyTorch sees no CUDA device here")
    return device


_cpu_takes_cuda_paths = False


@contextlib.contextmanager
def cuda_paths_on_cpu():
    """Within the block, runs on the CPU take the GPU's fast paths where PyTorch has them on a
    CPU: bf16 autocast, channels-last layout, fused Adam (for checking them without a GPU)."""
    global _cpu_takes_cuda_paths
    before, _cpu_takes_cuda_paths = _cpu_takes_cuda_paths, True
    try:
        yield
    finally:
        _cpu_takes_cuda_paths = before


def fast_paths(device: torch.device) -> bool:
    """Whether work on ``device`` takes the GPU's fast paths: on CUDA, or on a CPU inside
    :func:`cuda_paths_on_cpu`."""
    return device.type == "cuda" or (device.type == "cpu" and _cpu_takes_cuda_paths)


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast where the fast paths apply and ``enabled``; full float32 everywhere else."""
    if enabled and fast_paths(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
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
