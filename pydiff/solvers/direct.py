"""Sparse direct solve of the stationary field (SuperLU).

``production``: ``A u = s`` with ``A = gamma I - div(D grad)`` (:mod:`pydiff.solvers.sparse`):
one LU factorisation reused for every image of a run when D is constant, one per sample when
each sample has its own diffusivity map.  ``clamped`` (the paper's "constant-value sources",
the papers' problem only): the cells inside the disks are held at their image values and
``D lap u - gamma u = 0`` holds on the others; the reduced matrix depends on the disks, so it is
factorised per image.

For the papers' problem, whose target is u(t_max), the stationary field differs by the decayed
transient, about ``exp(-t_max * (gamma + 2 pi^2 D / (L+1)^2))``: 2e-6 relative for the paper's
constants; the backend accepts that target for that problem only.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..problem import Problem
from .base import Solver
from .sparse import stationary_matrix


def operator_matrix(problem: Problem, diffusivity=None) -> sp.csc_matrix:
    """``A = gamma I - div(D grad)`` on the flattened lattice (index ``i * L + j``), sparse, SPD."""
    if diffusivity is None and problem.boundary == "dirichlet":  # the papers' matrix, entry for entry as ever
        L = problem.lattice
        second = sp.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(L, L))
        eye = sp.identity(L)
        lap = sp.kron(second, eye) + sp.kron(eye, second)
        return (problem.gamma * sp.identity(L * L) - problem.D * lap).tocsc()
    D = problem.D if diffusivity is None else diffusivity
    return stationary_matrix(D, problem.lattice, problem.gamma, problem.boundary).tocsc()


class DirectSolver(Solver):
    """Stationary field by sparse LU; the only backend for the clamped source model."""

    name = "direct"
    source_models = ("production", "clamped")
    targets = ("stationary",)

    @classmethod
    def unsupported(cls, problem: Problem) -> str | None:
        if problem.target == "t_max" and problem.papers_family:
            return None  # the t_max -> infinity limit, 2e-6 away (module doc)
        return super().unsupported(problem)

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem)
        self.matrix = operator_matrix(problem)
        constant = problem.source_model == "production" and problem.diffusivity == "constant"
        self._lu = spla.splu(self.matrix) if constant else None

    def _solve(self, images: np.ndarray, diffusivity: np.ndarray | None) -> np.ndarray:
        b, L, _ = images.shape
        flat = images.reshape(b, L * L).astype(np.float64)
        if self._lu is not None:
            return self._lu.solve(flat.T).T.reshape(b, L, L)
        out = np.empty_like(flat)
        if diffusivity is not None:  # a matrix per sample
            for k in range(b):
                out[k] = spla.splu(operator_matrix(self.problem, diffusivity[k])).solve(flat[k])
            return out.reshape(b, L, L)
        csr = self.matrix.tocsr()
        for k in range(b):
            held = flat[k] > 0
            free = ~held
            rhs = -(csr[free][:, held] @ flat[k, held])
            out[k, held] = flat[k, held]
            out[k, free] = spla.splu(csr[free][:, free].tocsc()).solve(rhs)
        return out.reshape(b, L, L)
