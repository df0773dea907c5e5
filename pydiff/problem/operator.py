"""The discrete diffusion operator of every problem, applied matrix-free (numpy).

Cell-centred lattice, unit spacing.  Between neighbouring cells i and j a flux
``h_ij (u_j - u_i)`` with the harmonic mean ``h_ij = 2 D_i D_j / (D_i + D_j)``; walls:

- ``dirichlet``: each wall face of a boundary cell i adds ``D_i (0 - u_i)`` (a ghost cell at
  value 0 with the cell's own D; with constant D this is the papers' five-point Laplacian with
  zero values outside the lattice);
- ``neumann``: nothing (no flux through the walls);
- ``periodic``: the lattice wraps, the last cell of a row neighbours the first.

``divergence(u, D)`` is ``sum_j h_ij (u_j - u_i)`` plus the wall terms, so the stationary field
solves ``divergence(u, D) - gamma u + img = 0`` and the time-dependent one
``du/dt = divergence(u, D) - gamma u + img``.  docs/problem.md states the same.

Arrays: (..., L, L), the last two axes the lattice (``a[..., i, j]`` is cell x = i + 1, y = j + 1);
``D`` is a number (constant) or an array broadcastable to ``u``.
"""

from __future__ import annotations

import numpy as np


def harmonic_mean(a, b):
    """``2 a b / (a + b)``: the conductance between two cells of diffusivities a and b."""
    return 2.0 * a * b / (a + b)


def divergence(u: np.ndarray, D, boundary: str = "dirichlet") -> np.ndarray:
    """``sum_j h_ij (u_j - u_i)`` plus the wall terms of ``boundary``, for every cell of ``u``."""
    u = np.asarray(u, dtype=np.float64)
    D = np.broadcast_to(np.asarray(D, dtype=np.float64), u.shape)
    out = np.zeros_like(u)
    for axis in (-2, -1):
        if boundary == "periodic":
            following_u, following_D = np.roll(u, -1, axis), np.roll(D, -1, axis)
            flux = harmonic_mean(D, following_D) * (following_u - u)  # into each cell from the next
            out += flux
            out -= np.roll(flux, 1, axis)  # what a cell gains from its neighbour, the neighbour loses
            continue
        first, rest = _split(u, axis)
        first_D, rest_D = _split(D, axis)
        flux = harmonic_mean(first_D, rest_D) * (rest - first)
        _slice(out, axis, slice(None, -1))[...] += flux
        _slice(out, axis, slice(1, None))[...] -= flux
        if boundary == "dirichlet":
            for edge in (0, -1):
                _slice(out, axis, edge)[...] -= _slice(D, axis, edge) * _slice(u, axis, edge)
    return out


def stationary_operator(u: np.ndarray, D, gamma: float, boundary: str = "dirichlet") -> np.ndarray:
    """``A u = gamma u - divergence(u, D)``: the symmetric positive definite matrix whose
    solution of ``A u = img`` is the stationary field."""
    return gamma * np.asarray(u, dtype=np.float64) - divergence(u, D, boundary)


def _slice(array: np.ndarray, axis: int, index):
    key = [slice(None)] * array.ndim
    key[axis] = index
    return array[tuple(key)]


def _split(array: np.ndarray, axis: int):
    """The lattice without its last and without its first row (or column): the two cells of every
    interior face."""
    return _slice(array, axis, slice(None, -1)), _slice(array, axis, slice(1, None))
