"""The spectral solver in PyTorch, on CPU or CUDA: exact fields where the tensors already live.

The same closed form as :mod:`pydiff.solvers.spectral` (an orthonormal transform diagonalises
the constant-D operator of each wall condition), the transforms done by
:class:`pydiff.solvers.torch_transforms.Transform`: FFTs on a CPU at large L, batched products
with the basis matrix elsewhere.  On a GPU those products cost microseconds per sample even at
512^2, so training can draw fresh exact samples every step instead of reading a file.  float64
by default: float32 products on recent GPUs may run in TF32 (10-bit mantissa), far from the
1e-6 the numpy solver reaches.
"""

from __future__ import annotations

import numpy as np
import torch

from ..device import pick_device
from ..problem import Problem
from .base import Solver
from .spectral import transfer_function
from .torch_transforms import Transform


class TorchSpectralSolver(Solver):
    """Backend ``torch``: the spectral solution on ``device`` (``auto``: CUDA when present).

    :meth:`fields_of` maps a (b, L, L) tensor on the device to u(t_max) on the device; calling
    the solver with numpy arrays (what ``generate`` does) goes through it.
    """

    name = "torch"
    diffusivities = ("constant",)

    def __init__(self, problem: Problem, device: str = "auto", dtype: torch.dtype = torch.float64) -> None:
        super().__init__(problem)
        self.device, self.dtype = pick_device(device), dtype
        self.transform = Transform(problem.lattice, problem.boundary, self.device, dtype)
        self.transfer = torch.as_tensor(transfer_function(problem), dtype=dtype, device=self.device)

    @torch.no_grad()
    def fields_of(self, images: torch.Tensor, diffusivity: None = None) -> torch.Tensor:
        """The field of (b, L, L) source images, unnormalised, in the solver's dtype and device
        (``diffusivity``: None, the problem's constant D; the argument is :mod:`torch_cg`'s)."""
        u = self.transform.forward(images.to(device=self.device, dtype=self.dtype))  # to the modes
        u *= self.transfer
        return self.transform.inverse(u)  # and back

    def _solve(self, images: np.ndarray, diffusivity: np.ndarray | None) -> np.ndarray:
        return self.fields_of(torch.as_tensor(np.asarray(images))).cpu().numpy()
