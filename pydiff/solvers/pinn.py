"""A per-instance physics-informed solver: the Deep Galerkin Method on one source image.

A network ``y(x)`` (:class:`pydiff.solvers.dgm.DGM`) is fitted to the continuous stationary equation
of the lattice problem, ``D lap(u) - gamma u + f = 0``, where ``f`` interpolates the image
bilinearly between cell centres (cell ``(i, j)`` at the point ``(i, j)``) and the walls are where
the lattice's are:

- ``dirichlet``: ``u = 0`` on the square through the ghost cells, ``[-1, L]^2`` (the lattice's
  zero values one cell outside);
- ``neumann``: no flux through the outer faces, ``du/dn = 0`` on ``[-1/2, L - 1/2]^2``;
- ``periodic``: period ``L``; the network's input features make it periodic exactly.

In the network's coordinates ``x_hat`` in [-1, 1]^2 (``x = low + h (x_hat + 1)``) the equation
reads ``lap_hat(v) - kappa^2 v + f / max f = 0`` with ``u = (h^2 / D) max(f) v`` and
``kappa^2 = gamma h^2 / D``: every term of order one, whatever the lattice.  Dirichlet walls are
built into the network, ``v = (1 - x_hat^2)(1 - y_hat^2) N(x_hat)`` (zero on the walls exactly,
a well-known improvement on a penalty); Neumann walls are a penalty on the normal derivative.
The stored field is ``v`` at the cell centres divided by its maximum, as the data's.

As the primer advises: fresh collocation points every iteration (uniform in the domain, and as
many again around the sources, where the field bends most), Adam with a learning rate decaying
by a factor of 100 (cosine), Xavier-initialised tanh layers, boundary conditions as penalties.
Only constant D: with a discontinuous D(x) the strong form's derivatives miss the jumps (that
would need the weak form).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..errors import ConfigError
from .dgm import DGM
from ..problem import Problem
from ..registry import PINN_DEFAULTS
from ..seeds import check_seed


def _domain(problem: Problem) -> tuple[float, float]:
    """(low, high) of the continuous domain per axis, in cell coordinates."""
    L = problem.lattice
    return (-1.0, float(L)) if problem.boundary == "dirichlet" else (-0.5, L - 0.5)


def bilinear(image: torch.Tensor, points: torch.Tensor, boundary: str) -> torch.Tensor:
    """The (L, L) image at (n, 2) points in cell coordinates, interpolated between cell centres:
    0 beyond the cells (dirichlet), the edge value (neumann), wrapped (periodic)."""
    L = image.shape[0]
    low = torch.floor(points)
    t = points - low
    low = low.long()
    out = torch.zeros(len(points), dtype=image.dtype, device=image.device)
    for di in (0, 1):
        for dj in (0, 1):
            i, j = low[:, 0] + di, low[:, 1] + dj
            weight = (t[:, 0] if di else 1 - t[:, 0]) * (t[:, 1] if dj else 1 - t[:, 1])
            if boundary == "periodic":
                i, j, inside = i % L, j % L, torch.ones_like(weight, dtype=torch.bool)
            elif boundary == "neumann":
                i, j, inside = i.clamp(0, L - 1), j.clamp(0, L - 1), torch.ones_like(weight, dtype=torch.bool)
            else:
                inside = (i >= 0) & (i < L) & (j >= 0) & (j < L)
                i, j = i.clamp(0, L - 1), j.clamp(0, L - 1)
            out = out + torch.where(inside, weight * image[i, j], torch.zeros_like(weight))
    return out


def check_lr(lr: float) -> None:
    """Refuse a learning rate Adam cannot use (negative, NaN) or one that makes every weight NaN
    (infinite)."""
    if not (math.isfinite(lr) and lr > 0):
        raise ConfigError(f"--lr must be a positive number, got {lr:g}")


def fit_pinn(image: np.ndarray, problem: Problem, iterations: int = int(PINN_DEFAULTS["iterations"]),
             width: int = int(PINN_DEFAULTS["width"]), layers: int = int(PINN_DEFAULTS["layers"]),
             points: int = int(PINN_DEFAULTS["points"]), lr: float = PINN_DEFAULTS["lr"], seed: int = 0,
             device: str | torch.device = "cpu", progress: bool = False) -> tuple[np.ndarray, dict]:
    """Fit the stationary field of one (L, L) source image.

    Args:
        image: (L, L) source image (values on cell centres).
        problem: D, gamma and the walls (constant D, production sources; ``lattice`` = L).
        iterations: Adam steps.
        width, layers: the DGM network's size.
        points: collocation points per step in the domain (as many again near the sources).
        lr: the first learning rate (cosine to lr / 100).
        seed: the network's initialisation and the points drawn.

    Returns:
        ``(field, info)``: the (L, L) float32 field at the cell centres, peak 1; ``info`` with
        ``seconds``, ``iterations`` and the final ``loss`` and its ``residual`` part (in the
        scaled units above).
    """
    image = np.asarray(image, dtype=np.float64)
    L = problem.lattice
    if image.shape != (L, L):
        raise ConfigError(f"expected a ({L}, {L}) source image, got {image.shape}")
    if problem.diffusivity != "constant" or problem.source_model != "production":
        raise ConfigError("pydiff pinn solves constant D with production sources (a discontinuous D(x) would need "
                          "the weak form); use an exact backend or a surrogate for the varied family")
    if not (image > 0).any():
        raise ConfigError("the source image is zero everywhere: its field is zero")
    if iterations < 1:
        raise ConfigError(f"--iterations must be >= 1, got {iterations}")
    check_lr(lr)
    seed = check_seed(seed)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    dtype, device = torch.float32, torch.device(device)
    low, high = _domain(problem)
    half = (high - low) / 2  # x = low + half (x_hat + 1), x_hat in [-1, 1]
    source = torch.as_tensor(image / image.max(), dtype=dtype, device=device)  # f / max f: the scaled equation's
    source_cells = torch.as_tensor(np.argwhere(image > 0), dtype=dtype, device=device)
    network = DGM(width, layers, periodic=problem.boundary == "periodic").to(device)
    optimiser = torch.optim.Adam(network.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, iterations, eta_min=lr / 100)
    kappa2 = problem.gamma * half**2 / problem.D
    to_hat = lambda x: (x - low) / half - 1

    def field(x_hat: torch.Tensor) -> torch.Tensor:
        v = network(x_hat)
        if problem.boundary == "dirichlet":  # zero on the walls by construction
            v = v * (1 - x_hat[:, 0] ** 2) * (1 - x_hat[:, 1] ** 2)
        return v

    def residual(x: torch.Tensor) -> torch.Tensor:
        x_hat = to_hat(x).requires_grad_()
        v = field(x_hat)
        (grad,) = torch.autograd.grad(v.sum(), x_hat, create_graph=True)
        lap = sum(torch.autograd.grad(grad[:, k].sum(), x_hat, create_graph=True)[0][:, k] for k in range(2))
        return lap - kappa2 * v + bilinear(source, x, problem.boundary)

    def wall_term(n: int) -> torch.Tensor:
        if problem.boundary != "neumann":  # built in (dirichlet, periodic)
            return torch.zeros((), device=device)
        along = low + (high - low) * torch.rand(n, generator=generator).to(device, dtype)
        side = torch.randint(0, 4, (n,), generator=generator).to(device)
        wall = torch.where(side % 2 == 0, torch.full_like(along, low), torch.full_like(along, high))
        x_hat = to_hat(torch.where((side < 2)[:, None], torch.stack([wall, along], 1),
                                   torch.stack([along, wall], 1))).requires_grad_()
        (grad,) = torch.autograd.grad(field(x_hat).sum(), x_hat, create_graph=True)
        return torch.where(side < 2, grad[:, 0], grad[:, 1]).pow(2).mean()

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=iterations, unit="step", desc="pinn")
    start = time.perf_counter()
    network.train()
    try:
        for step in range(iterations):
            uniform = low + (high - low) * torch.rand(points, 2, generator=generator).to(device, dtype)
            pick = torch.randint(0, len(source_cells), (points,), generator=generator).to(device)
            near = source_cells[pick] + 3 * (torch.rand(points, 2, generator=generator).to(device, dtype) - 0.5)
            near = near.clamp(low, high)
            pde = torch.cat([residual(uniform), residual(near)]).pow(2).mean()
            loss = pde + wall_term(points // 4)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            if bar is not None and (step % 50 == 0 or step == iterations - 1):
                bar.update(step + 1 - bar.n)
                bar.set_postfix(loss=f"{loss.item():.3g}")
    finally:
        if bar is not None:
            bar.close()
    with torch.no_grad():
        grid = torch.stack(torch.meshgrid(torch.arange(L, dtype=dtype), torch.arange(L, dtype=dtype), indexing="ij"),
                           -1).reshape(-1, 2).to(device)
        values = field(to_hat(grid)).reshape(L, L).cpu().numpy().astype(np.float64)
    info = {"seconds": time.perf_counter() - start, "iterations": iterations, "loss": float(loss.detach()),
            "residual": float(pde.detach())}
    if not np.isfinite(values).all() or values.max() <= 0:  # no field to normalise: say so, write nothing
        raise ConfigError(f"the fit diverged (final loss {info['loss']:.3g}): lower --lr (now {lr:g})")
    return (values / values.max()).astype(np.float32), info
