"""Algebraic-multigrid-preconditioned conjugate gradients (pyamg), for large lattices.

The stationary field solves ``A u = s`` with ``A = gamma I - div(D grad)`` symmetric positive
definite (:mod:`pydiff.solvers.sparse`).  A smoothed-aggregation hierarchy of ``A`` (pyamg)
preconditions CG, which stops at a relative residual ``|s - A u| / |s|`` of ``tol`` (1e-10 by
default; the field's relative error is at most that times the condition number of ``A``, a
few thousand here, so well under the 1e-6 the backends agree to).  Sparse LU (``direct``) costs
more than O(L^2) per sample, its fill growing with L; multigrid stays near O(L^2).

With constant D one hierarchy serves every sample; with a map per sample each gets its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import BackendUnavailable, ConfigError, NotConverged
from ..problem import Problem
from .base import Solver
from .sparse import stationary_matrix


def _pyamg():
    try:
        import pyamg
    except ImportError:
        raise BackendUnavailable('the multigrid backend needs pyamg: pip install "pydiff[varied]" (or pip install pyamg)') from None
    return pyamg


class MultigridSolver(Solver):
    """Backend ``multigrid``: pyamg smoothed aggregation + CG to a relative residual ``tol``."""

    name = "multigrid"
    targets = ("stationary",)

    def __init__(self, problem: Problem, tol: float = 1e-10, max_iterations: int = 500) -> None:
        super().__init__(problem)
        if not 0 < tol < 1:
            raise ConfigError(f"the multigrid tolerance must be in (0, 1), got {tol}")
        self.tol, self.max_iterations = tol, max_iterations
        self.pyamg = _pyamg()
        self._constant: Any = None  # pyamg's hierarchy of the constant D, built on first use
        self.iterations: list[int] = []  # CG iterations of every sample solved

    def _hierarchy(self, D):
        A = stationary_matrix(D, self.problem.lattice, self.problem.gamma, self.problem.boundary)
        return self.pyamg.smoothed_aggregation_solver(A, symmetry="symmetric")

    def _solve(self, images: np.ndarray, diffusivity: np.ndarray | None) -> np.ndarray:
        b, L, _ = images.shape
        out = np.empty((b, L * L))
        if diffusivity is None and self._constant is None:
            self._constant = self._hierarchy(self.problem.D)
        for k in range(b):
            hierarchy = self._constant if diffusivity is None else self._hierarchy(diffusivity[k])
            residuals: list[float] = []
            rhs = images[k].reshape(-1).astype(np.float64)
            out[k] = hierarchy.solve(rhs, tol=self.tol, accel="cg", maxiter=self.max_iterations,
                                     residuals=residuals)
            self.iterations.append(len(residuals) - 1)
            if residuals and residuals[-1] > self.tol * max(float(np.linalg.norm(rhs)), 1e-300) * 10:
                raise NotConverged(f"multigrid CG did not reach a relative residual of {self.tol:g} in "
                                  f"{self.max_iterations} iterations (reached {residuals[-1] / np.linalg.norm(rhs):.2e})")
        return out.reshape(b, L, L)
