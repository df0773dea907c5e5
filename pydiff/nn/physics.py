"""The physics loss: how far a predicted field is from solving the discrete stationary equation.

The target ``y = u / max(u)`` solves ``A y = img / max(u)`` with ``A = gamma I - div(D grad)``
(:mod:`pydiff.problem.operator`; the papers' t_max field to its 1e-6 transient).  The unknown
scale ``1 / max(u)`` is handled explicitly, in two parts:

- the *shape*: ``A y_hat`` must be a multiple of the source image.  The part of it orthogonal to
  ``img`` is the residual ``R = A y_hat - c img`` with ``c = <A y_hat, img> / <img, img>`` (the
  least-squares source factor, :func:`pydiff.problem.residual.stationary_residual`), and
  ``|R|^2 / |A y_hat|^2`` is the squared sine of the angle between ``A y_hat`` and ``img``: 0 for
  an exact field whatever its scale, at most 1, no units;
- the *scale*: the field's peak is 1, so ``(max y_hat - 1)^2``.  Without it the zero field
  would be a perfect answer.

Both vanish on exact fields and nowhere else (``A`` is invertible).  The diffusivity map is read
back from the network's second input channel (``log10(D / problem.D)``,
:func:`pydiff.problem.diffusivity.diffusivity_channel`), so the loss needs nothing but the
network's inputs: no solver, no labels.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..problem import Problem
from ..solvers.torch_cg import TorchOperator

TINY = 1e-12  # keeps 0/0 of an all-zero prediction at 0 (its peak term is then 1)


class PhysicsLoss:
    """``loss(prediction, x)`` -> (b,) per-sample physics losses of (b, 1, L, L) predicted fields
    for (b, C, L, L) network inputs (channel 0 the source image; channel 1, where D varies, the
    diffusivity channel)."""

    def __init__(self, problem: Problem) -> None:
        if problem.source_model != "production":
            raise ConfigError("the physics loss needs the production source model (clamped sources hold "
                              "cells at fixed values, with no source term to balance)")
        self.problem = problem

    def operator(self, x: torch.Tensor, dtype: torch.dtype) -> TorchOperator:
        p = self.problem
        if x.shape[1] > 1:  # the diffusivity channel
            D = p.D * torch.pow(torch.tensor(10.0, dtype=dtype, device=x.device), x[:, 1].to(dtype))
        else:
            D = torch.full_like(x[:, 0], p.D, dtype=dtype)
        return TorchOperator(D, p.gamma, p.boundary)

    def __call__(self, prediction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        y = prediction[:, 0]
        image = x[:, 0].to(y.dtype)
        Ay = self.operator(x, y.dtype)(y)
        c = (Ay * image).sum(dim=(1, 2)) / (image * image).sum(dim=(1, 2)).clamp_min(TINY)
        residual = Ay - c[:, None, None] * image
        shape = (residual * residual).sum(dim=(1, 2)) / ((Ay * Ay).sum(dim=(1, 2)) + TINY)
        scale = (y.amax(dim=(1, 2)) - 1.0) ** 2
        return shape + scale
