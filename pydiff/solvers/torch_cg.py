"""Batched, matrix-free preconditioned conjugate gradients in PyTorch, on CPU or CUDA: exact
stationary fields of varied problems where the tensors live (fresh samples in training).

Each sample solves ``A u = s``, ``A = gamma I - div(D grad)`` (the harmonic-mean fluxes of
:mod:`pydiff.problem.operator`), with its own step lengths; the whole batch moves together and
a sample stops changing once its relative residual is below ``tol``.  The preconditioner is the
exact inverse of the same operator with a constant D, the geometric mean of the sample's map,
applied in the wall condition's own basis (:class:`pydiff.solvers.torch_transforms.Transform`): the
preconditioned operator's condition number is then of the order of the contrast, not of
``8 max D / gamma``, and CG needs about a hundred iterations to 1e-10 (64^2, inclusions of
contrast 10) instead of thousands.
"""

from __future__ import annotations

import numpy as np
import torch

from ..device import pick_device
from ..errors import ConfigError, NotConverged
from ..problem import Problem
from .base import Solver
from .spectral import eigenvalues
from .torch_transforms import Transform

# approximate() stops early only where a sample's residual falls below this fraction of its
# right-hand side's norm: float64 round-off, not a tolerance
ROUND_OFF = 1e-13


def harmonic(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 2.0 * a * b / (a + b)


class TorchOperator:
    """``A u`` for a batch of diffusivity maps (b, L, L), matrix-free, on their device."""

    def __init__(self, D: torch.Tensor, gamma: float, boundary: str) -> None:
        self.boundary, self.gamma = boundary, gamma
        if boundary == "periodic":
            self.hx = harmonic(D, torch.roll(D, -1, 1))  # between cell i and i+1 (wrapping)
            self.hy = harmonic(D, torch.roll(D, -1, 2))
        else:
            self.hx = harmonic(D[:, :-1], D[:, 1:])
            self.hy = harmonic(D[:, :, :-1], D[:, :, 1:])
        self.wall = torch.zeros_like(D)
        if boundary == "dirichlet":  # a ghost cell at 0 with the cell's own D, per wall face
            self.wall[:, 0] += D[:, 0]
            self.wall[:, -1] += D[:, -1]
            self.wall[:, :, 0] += D[:, :, 0]
            self.wall[:, :, -1] += D[:, :, -1]

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        out = (self.gamma + self.wall) * u
        if self.boundary == "periodic":
            fx = self.hx * (torch.roll(u, -1, 1) - u)
            fy = self.hy * (torch.roll(u, -1, 2) - u)
            return out - fx + torch.roll(fx, 1, 1) - fy + torch.roll(fy, 1, 2)
        fx = self.hx * (u[:, 1:] - u[:, :-1])
        fy = self.hy * (u[:, :, 1:] - u[:, :, :-1])
        out[:, :-1] -= fx
        out[:, 1:] += fx
        out[:, :, :-1] -= fy
        out[:, :, 1:] += fy
        return out


class TorchCGSolver(Solver):
    """Backend ``torch-cg``: stationary fields of any diffusivity and walls, batched on ``device``.

    :meth:`fields_of` maps (b, L, L) images and maps on the device to the fields on the device;
    calling the solver with numpy arrays goes through it.  ``iterations`` records the CG
    iterations of the last batch.
    """

    name = "torch-cg"
    targets = ("stationary",)

    def __init__(self, problem: Problem, device: str = "auto", dtype: torch.dtype = torch.float64, tol: float = 1e-10,
                 max_iterations: int = 1000) -> None:
        super().__init__(problem)
        if not 0 < tol < 1:
            raise ConfigError(f"the CG tolerance must be in (0, 1), got {tol}")
        self.device, self.dtype, self.tol, self.max_iterations = pick_device(device), dtype, tol, max_iterations
        L = problem.lattice
        self.transform = Transform(L, problem.boundary, self.device, dtype)
        ev = torch.as_tensor(eigenvalues(L, problem.boundary), dtype=dtype, device=self.device)
        self.modes = ev[:, None] + ev[None, :]  # (L, L), <= 0
        self.iterations = 0

    def constant_inverse(self, r: torch.Tensor, mean_D: torch.Tensor) -> torch.Tensor:
        """The exact inverse of ``gamma - mean_D lap`` (each sample its own constant D) applied to
        (b, L, L) ``r``: CG's preconditioner, and the physics loss's filter (:mod:`pydiff.nn.physics`)."""
        r_hat = self.transform.forward(r)
        r_hat = r_hat / (self.problem.gamma - mean_D[:, None, None] * self.modes)  # out of place: autograd
        return self.transform.inverse(r_hat)

    def operator(self, diffusivity: torch.Tensor | None, like: torch.Tensor) -> tuple[TorchOperator, torch.Tensor]:
        """The batch's operator and the geometric mean of each map (the D of :meth:`constant_inverse`);
        ``diffusivity`` None: the constant ``problem.D``, shaped like ``like``."""
        D = (torch.full_like(like, self.problem.D) if diffusivity is None
             else diffusivity.to(device=self.device, dtype=self.dtype))
        return TorchOperator(D, self.problem.gamma, self.problem.boundary), torch.exp(torch.log(D).mean(dim=(1, 2)))

    def _cg(self, A: TorchOperator, mean_D: torch.Tensor, rhs: torch.Tensor, u: torch.Tensor, target: torch.Tensor,
            max_iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Preconditioned CG on ``A u = rhs`` from ``u`` until every sample's residual norm is at
        most ``target`` (b,) or ``max_iterations`` have run: ``(u, r)``."""
        r = rhs - A(u)
        self.iterations = 0
        if bool((r.flatten(1).norm(dim=1) <= target).all()):
            return u, r
        z = self.constant_inverse(r, mean_D)
        p = z.clone()
        rz = (r * z).sum(dim=(1, 2))
        for self.iterations in range(1, max_iterations + 1):
            Ap = A(p)
            alpha = rz / (p * Ap).sum(dim=(1, 2))
            active = (r.flatten(1).norm(dim=1) > target).to(self.dtype)  # converged samples stay put
            alpha = alpha * active
            u += alpha[:, None, None] * p
            r -= alpha[:, None, None] * Ap
            if bool((r.flatten(1).norm(dim=1) <= target).all()):
                break
            z = self.constant_inverse(r, mean_D)
            rz_new = (r * z).sum(dim=(1, 2))
            beta = torch.where(active > 0, rz_new / rz, torch.zeros_like(rz))
            p = z + beta[:, None, None] * p
            rz = torch.where(active > 0, rz_new, rz)
        return u, r

    @torch.no_grad()
    def fields_of(self, images: torch.Tensor, diffusivity: torch.Tensor | None = None,
                  initial: torch.Tensor | None = None) -> torch.Tensor:
        """Stationary fields of (b, L, L) images (and maps; None: the constant ``problem.D``).

        ``initial``: (b, L, L) first guesses of the unnormalised fields (a network's prediction
        times its scale: a warm start); None: the constant-D answer, itself a close guess."""
        s = images.to(device=self.device, dtype=self.dtype)
        A, mean_D = self.operator(diffusivity, s)
        u = (self.constant_inverse(s, mean_D) if initial is None
             else initial.to(device=self.device, dtype=self.dtype).clone())
        target = self.tol * s.flatten(1).norm(dim=1)
        u, r = self._cg(A, mean_D, s, u, target, self.max_iterations)
        if bool((r.flatten(1).norm(dim=1) <= target).all()):
            return u
        worst = float((r.flatten(1).norm(dim=1) / s.flatten(1).norm(dim=1)).max())
        raise NotConverged(f"torch-cg did not reach a relative residual of {self.tol:g} in {self.max_iterations} "
                          f"iterations (reached {worst:.2e})")

    @torch.no_grad()
    def approximate(self, rhs: torch.Tensor, diffusivity: torch.Tensor | None = None, iterations: int = 3) -> torch.Tensor:
        """``A^-1 rhs`` after ``iterations`` preconditioned CG steps from the constant-D answer
        (0 steps: that answer alone, exact where D is constant): a cheap solve of an error
        equation, where the first digits are what matter.  No tolerance, no error."""
        if iterations < 0:
            raise ConfigError(f"iterations must be >= 0, got {iterations}")
        r = rhs.to(device=self.device, dtype=self.dtype)
        A, mean_D = self.operator(diffusivity, r)
        round_off = ROUND_OFF * r.flatten(1).norm(dim=1)  # every step asked for, short of round-off (or a zero rhs)
        return self._cg(A, mean_D, r, self.constant_inverse(r, mean_D), round_off, iterations)[0]

    def _solve(self, images: np.ndarray, diffusivity: np.ndarray | None) -> np.ndarray:
        return fields_in_chunks(self, images, diffusivity)


def fields_in_chunks(solver, images: np.ndarray, diffusivity: np.ndarray | None = None,
                     initial: np.ndarray | None = None, chunk: int | None = None) -> np.ndarray:
    """(n, L, L) float64 fields of numpy ``images`` (and maps) by a batched torch solver's
    ``fields_of``, ``chunk`` samples at a time (None: all at once), each chunk from its part of
    ``initial`` (unnormalised first guesses; None: the solver's own).  ``solver.iterations`` is
    then the slowest chunk's, as for one batch."""
    chunk = chunk or max(len(images), 1)
    out, slowest = np.empty(np.shape(images)), 0
    for start in range(0, len(images), chunk):
        part = slice(start, start + chunk)
        out[part] = solver.fields_of(*(None if a is None else torch.as_tensor(np.asarray(a[part]))
                                       for a in (images, diffusivity, initial))).cpu().numpy()
        slowest = max(slowest, solver.iterations)
    solver.iterations = slowest
    return out
