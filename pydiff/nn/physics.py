"""The physics loss: how far a predicted field is from solving the discrete stationary equation.

The target ``y = u / max(u)`` solves ``A y = img / max(u)`` with ``A = gamma I - div(D grad)``
(:mod:`pydiff.problem.operator`; the papers' t_max field to its 1e-6 transient).  Two things make
a usable loss of that:

- **The residual is filtered by the constant-D inverse** ``P^-1`` (``D`` the geometric mean of
  the sample's map, the problem's walls; :meth:`pydiff.solvers.torch_cg.TorchCGSolver.constant_inverse`,
  a fixed spectral filter, not a solve of the sample's equation).  The raw residual ``A y_hat -
  c img`` is dominated by the high frequencies ``A`` amplifies: a trained encoder-decoder whose
  fields are off by 4 % on average scores as badly on it as a field shifted by 0.05 or a random
  one (measured on quick-varied: the normalised raw residual was 1.02, 0.95 and ~1), so it cannot
  guide training.  Filtered, it measures the error in a norm equivalent to the field's own (within
  the contrast): with constant D, ``P^-1 A y_hat = y_hat`` and the loss below is the squared
  relative error of the prediction after the best scaling — physics-only training there is
  supervised training in disguise (the Green's function is known).  Where D varies it is not.
- **The unknown scale is handled explicitly.**  With ``w = P^-1 A y_hat`` and ``z = P^-1 img``
  the shape term is ``|w - c z|^2 / |w|^2``, ``c = <w, z> / <z, z>``: the squared sine of the
  angle between ``w`` and ``z``, zero exactly when ``y_hat`` solves the equation up to scale, at
  most 1, no units.  The scale term ``(max y_hat - 1)^2`` fixes the peak (the data's fields have
  peak 1); without it the zero field would be a perfect answer.

Both vanish on exact fields and nowhere else (``A`` is invertible).  The diffusivity map is read
back from the network's second input channel (``log10(D / problem.D)``,
:func:`pydiff.problem.diffusivity.diffusivity_channel`), so the loss needs nothing but the
network's inputs: no labels, no solver.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..problem import Problem
from ..problem.walls import PLANES, for_each_wall, walls_from_planes
from ..solvers.torch_cg import TorchCGSolver

TINY = 1e-12  # keeps 0/0 of an all-zero prediction at 0 (its peak term is then 1)


class PhysicsLoss:
    """``loss(prediction, x)`` -> (b,) per-sample physics losses of (b, 1, L, L) predicted fields
    for (b, C, L, L) network inputs (channel 0 the source image; channel 1, where D varies, the
    diffusivity channel; the last two, where the walls are mixed, each sample's wall planes,
    :func:`pydiff.problem.walls.wall_planes`: each wall's samples get that wall's operator)."""

    def __init__(self, problem: Problem) -> None:
        if problem.source_model != "production":
            raise ConfigError("the physics loss needs the production source model (clamped sources hold "
                              "cells at fixed values, with no source term to balance)")
        if not problem.normalised:
            raise ConfigError("the physics loss is built for fields of peak 1; Darcy flow's are u itself: train it on "
                              "its labels (--loss rel-L2), without --physics-weight")
        self.problem = problem
        self._filters: dict = {}  # (walls, device, dtype) -> the constant-D inverse

    def _filter(self, problem: Problem, device: torch.device, dtype: torch.dtype) -> TorchCGSolver:
        key = (problem.boundary, str(device), dtype)
        if key not in self._filters:
            self._filters[key] = TorchCGSolver(problem, device=str(device), dtype=dtype)
        return self._filters[key]

    def __call__(self, prediction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        walls = walls_from_planes(x[:, -PLANES:]) if self.problem.boundary == "mixed" else None
        return for_each_wall(self.problem, walls, self._loss, prediction, x)

    def _loss(self, p: Problem, prediction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        y = prediction[:, 0]
        image = x[:, 0].to(y.dtype)
        # the diffusivity channel (None: the constant problem.D); 2 or 4 channels carry one, 3 and 4 the walls
        D = p.D * torch.pow(torch.tensor(10.0, dtype=y.dtype, device=x.device), x[:, 1].to(y.dtype)) \
            if x.shape[1] in (2, 4) else None
        inverse = self._filter(p, y.device, y.dtype)
        A, mean_D = inverse.operator(D, y)
        w = inverse.constant_inverse(A(y), mean_D)
        z = inverse.constant_inverse(image, mean_D)
        c = (w * z).sum(dim=(1, 2)) / (z * z).sum(dim=(1, 2)).clamp_min(TINY)
        residual = w - c[:, None, None] * z
        shape = (residual * residual).sum(dim=(1, 2)) / ((w * w).sum(dim=(1, 2)) + TINY)
        scale = (y.amax(dim=(1, 2)) - 1.0) ** 2
        return shape + scale
