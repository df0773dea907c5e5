"""Physics in the input: the constant-D answer as a prior that the network corrects.

A sample's map D(x) is replaced by one number, its geometric mean ``D_g``.  The stationary field
of the same sources with ``D_g`` everywhere has a closed form: one spectral solve in the wall
condition's own basis (:meth:`pydiff.solvers.torch_cg.TorchCGSolver.constant_inverse`), a few
FFTs.  Normalised to peak 1, this ``y0`` is already close to the field where the contrast is
moderate, and exact where D is constant.  The network reads it as one more input channel and
predicts only the correction:

    y = y0 + network([x, y0])

It learns what the inclusions change, not the whole field.  ``y0`` is computed from the network's
own inputs inside the model: channel 0 is the source image, channel 1 ``log10(D / problem.D)``
(where D varies), and the last two the wall planes (where the walls are mixed).  So training,
prediction, calibration and serving all see the same prior, and no data file stores it.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..problem import Problem
from ..problem.walls import PLANES, for_each_wall, walls_from_planes
from ..solvers.torch_cg import TorchCGSolver
from .names import PRIORS


class ConstantDPrior(nn.Module):
    """``network`` (reading ``C + 1`` channels) plus the constant-D prior of ``problem``'s
    equation (its ``gamma``, walls and background ``D``)."""

    def __init__(self, network: nn.Module, problem: Problem) -> None:
        super().__init__()
        self.network, self.problem = network, problem
        self._inverses: dict = {}  # (lattice, walls, device) -> the constant-D inverse

    def _inverse(self, problem: Problem, lattice: int, device: torch.device) -> TorchCGSolver:
        key = (lattice, problem.boundary, str(device))
        if key not in self._inverses:
            self._inverses[key] = TorchCGSolver(dataclasses.replace(problem, lattice=lattice), device=str(device))
        return self._inverses[key]

    @torch.no_grad()
    def prior(self, x: torch.Tensor) -> torch.Tensor:
        """(b, 1, L, L) the normalised constant-D field of each sample of (b, C, L, L) inputs."""
        p = self.problem
        image = x[:, 0].double()
        if x.shape[1] in (2, 4):  # the diffusivity channel
            mean_D = p.D * torch.pow(10.0, x[:, 1].double().mean(dim=(1, 2)))  # 10^mean(log10 D/D0): the geometric mean
        else:
            mean_D = torch.full((len(x),), p.D, dtype=torch.float64, device=x.device)
        walls = walls_from_planes(x[:, -PLANES:]) if p.boundary == "mixed" else None

        def one(wall_problem: Problem, image: torch.Tensor, mean_D: torch.Tensor) -> torch.Tensor:
            u = self._inverse(wall_problem, x.shape[-1], x.device).constant_inverse(image, mean_D)
            return u / u.amax(dim=(1, 2), keepdim=True).clamp_min(1e-300)

        return for_each_wall(p, walls, one, image, mean_D).to(x.dtype)[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y0 = self.prior(x)
        return y0 + self.network(torch.cat([x, y0], dim=1))
