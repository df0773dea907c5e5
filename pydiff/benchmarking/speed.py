"""Seconds per sample: of an exact solver (δ of Eq. 4) and of a network's forward pass (ε), in the
precision prediction uses."""

from __future__ import annotations

import dataclasses
import time

from ..problem import Problem


def time_solver(backend: str, n: int, problem: Problem | None = None, seed: int = 0) -> float:
    """δ: seconds per sample of ``backend`` on ``n`` random inputs (start-up and warm-up excluded)."""
    from ..problem import sample_sources, source_images
    from ..problem.diffusivity import diffusivity_maps
    from ..solvers import make_solver
    from ..solvers.timing import timed_solve

    problem = problem or Problem()
    images = source_images(problem, sample_sources(problem, n, seed))
    with make_solver(backend, problem) as solver:
        return timed_solve(solver, images, diffusivity_maps(problem, range(n), seed))[1]


def time_forward(model, lattice: int, batch_size: int = 1, device="cpu", repeats: int = 5, amp: bool = True,
                 in_channels: int = 1) -> float:
    """Seconds per sample of ``model``'s forward pass on (batch, 1, L, L) inputs (eval mode, no
    gradients, best of ``repeats`` after one warm-up call), in the precision prediction uses
    (bf16 autocast on a GPU when ``amp``)."""
    import torch

    from ..device import autocast, synchronize

    device = torch.device(device)
    model = model.to(device).eval()
    x = torch.rand(batch_size, in_channels, lattice, lattice, device=device)
    best = float("inf")
    with torch.no_grad(), autocast(device, amp):
        for _ in range(repeats + 1):  # the first call warms up
            synchronize(device)
            start = time.perf_counter()
            model(x)
            synchronize(device)
            best = min(best, time.perf_counter() - start)
    return best / batch_size


def bench_infer(config, lattice: int, batch_sizes=(1, 256), repeats: int = 5) -> "list[dict]":
    """Milliseconds per sample of ``config``'s network (a :class:`~pydiff.training.config.TrainConfig`:
    network, width, Table 2 row) predicting (b, 1, L, L) inputs on its device, per batch size."""
    import torch

    from ..device import pick_device
    from ..nn.build import build_model
    from ..registry import preset_problem

    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    problem = Problem.for_setup(**preset_problem(config.preset)) if config.preset else Problem()
    model = build_model(config, dataclasses.replace(problem, lattice=lattice))
    params = sum(p.numel() for p in model.parameters())
    return [{"network": config.network, "model": config.model, "width": config.width, "lattice": lattice,
             "parameters": params, "device": str(device), "batch_size": b,
             "ms_per_sample": 1e3 * time_forward(model, lattice, b, device, repeats, config.amp, config.in_channels)}
            for b in batch_sizes]


def time_surrogate(width: float = 1.0, batch_size: int = 1, device: str = "cpu", repeats: int = 5,
                   model_id: int = 9) -> float:
    """ε: seconds per sample of a Table 2 model's forward pass (eval mode, best of ``repeats``)."""
    from ..nn.surrogate2021 import Surrogate
    from ..registry import paper_model

    row = paper_model(model_id)
    return time_forward(Surrogate(row.p1, row.p2, row.dropout, width), 100, batch_size, device, repeats)
