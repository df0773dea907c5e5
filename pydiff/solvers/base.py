"""What every backend is: a callable from source images to ``u(t_max)``, usable as a context."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..problem import Problem


class Solver:
    """Base class of the backends.

    Subclasses set ``name`` and ``source_models`` and implement :meth:`_solve`; :meth:`__call__`
    checks the input's shape first.  ``close`` releases whatever the backend holds.
    """

    name: str = ""
    source_models: tuple[str, ...] = ("production",)

    def __init__(self, problem: Problem) -> None:
        self.problem = problem

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """``u(t_max)`` of each image: (b, L, L) in, (b, L, L) out (unnormalised; float64, or
        float32 where a backend documents that it is exact to 1e-6 that way)."""
        images = np.asarray(images)
        L = self.problem.lattice
        if images.ndim != 3 or images.shape[1:] != (L, L):
            raise ConfigError(f"expected source images of shape (batch, {L}, {L}), got {images.shape}")
        return self._solve(images)

    def _solve(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (worker processes, factorisations)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def laplacian_eigenvalues(L: int) -> np.ndarray:
    """Eigenvalues of the 1-D Dirichlet second difference Tridiagonal(1, -2, 1) of size L.

    Mode ``p = 1..L`` (eigenvector ``sin(p * pi * x / (L + 1))``) has ``-4 sin^2(p pi / (2(L+1)))``.
    """
    p = np.arange(1, L + 1)
    return -4.0 * np.sin(p * np.pi / (2.0 * (L + 1))) ** 2
