"""What every backend is: a callable from source images (and their diffusivity maps) to the
unnormalised field, usable as a context."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..problem import Problem
from ..problem.parameters import DIFFUSIVITIES


class Solver:
    """Base class of the backends.

    Subclasses set ``name`` and what they solve (``source_models``, ``diffusivities``,
    ``boundaries``, ``targets``; :meth:`unsupported` says why a problem is outside them) and
    implement :meth:`_solve`; :meth:`__call__` checks the inputs first.  ``close`` releases
    whatever the backend holds.
    """

    name: str = ""
    source_models: tuple[str, ...] = ("production",)
    diffusivities: tuple[str, ...] = DIFFUSIVITIES
    boundaries: tuple[str, ...] = ("dirichlet", "neumann", "periodic")
    targets: tuple[str, ...] = ("t_max", "stationary")

    def __init__(self, problem: Problem) -> None:
        self.problem = problem

    @classmethod
    def unsupported(cls, problem: Problem) -> str | None:
        """Why this backend cannot solve ``problem`` (None: it can)."""
        for what, value, able in (("source model", problem.source_model, cls.source_models),
                                  ("diffusivity", problem.diffusivity, cls.diffusivities),
                                  ("boundary", problem.boundary, cls.boundaries),
                                  ("target", problem.target, cls.targets)):
            if value not in able:
                return f"{what} {value!r}"
        return None

    def __call__(self, images: np.ndarray, diffusivity: np.ndarray | None = None) -> np.ndarray:
        """The field of each image: (b, L, L) in, (b, L, L) out (unnormalised; float64, or
        float32 where a backend documents that it is exact to 1e-6 that way).  ``diffusivity``:
        the (b, L, L) maps of a problem whose D varies (None: the constant ``problem.D``)."""
        images = np.asarray(images)
        L = self.problem.lattice
        if images.ndim != 3 or images.shape[1:] != (L, L):
            raise ConfigError(f"expected source images of shape (batch, {L}, {L}), got {images.shape}")
        if diffusivity is None and self.problem.diffusivity != "constant":
            raise ConfigError(f"a problem with {self.problem.diffusivity} diffusivity needs each sample's map")
        if diffusivity is not None:
            diffusivity = np.asarray(diffusivity, dtype=np.float64)
            check_maps(diffusivity, images.shape)
        return self._solve(images, diffusivity)

    def _solve(self, images: np.ndarray, diffusivity: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (worker processes, factorisations)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_maps(maps: np.ndarray, shape: tuple) -> None:
    """Raise :class:`ConfigError`, in one line, for diffusivity ``maps`` that are not one positive
    map per image of ``shape``: of another shape; all zero (the unwritten rows of an incomplete
    data file); holding NaN; holding a value <= 0 (the first wrong map named)."""
    if maps.shape != tuple(shape):
        raise ConfigError(f"diffusivity maps of shape {maps.shape} for images of shape {tuple(shape)}: one map per image")
    flat = maps.reshape(len(maps), -1) if len(maps) else maps.reshape(0, 0)  # zero samples: nothing to check
    wrong = ~(flat > 0).all(axis=1)  # NaN, zero and negative values alike
    if not wrong.any():
        return
    k = int(np.argmax(wrong))
    row = flat[k]
    if not row.any():
        raise ConfigError(f"diffusivity map {k} is all zero: an incomplete data file leaves its unwritten rows so "
                          "(pydiff info says; finish it with pydiff generate --resume)")
    if np.isnan(row).any():
        raise ConfigError(f"diffusivity map {k} holds NaN")
    raise ConfigError(f"diffusivity map {k} holds a value <= 0 ({row.min():g}); D must be positive everywhere")


def laplacian_eigenvalues(L: int) -> np.ndarray:
    """Eigenvalues of the 1-D Dirichlet second difference Tridiagonal(1, -2, 1) of size L.

    Mode ``p = 1..L`` (eigenvector ``sin(p * pi * x / (L + 1))``) has ``-4 sin^2(p pi / (2(L+1)))``.
    """
    p = np.arange(1, L + 1)
    return -4.0 * np.sin(p * np.pi / (2.0 * (L + 1))) ** 2
