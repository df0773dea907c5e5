"""The stationary operator ``A = gamma I - div(D grad)`` of one sample as a sparse matrix.

The same discretisation as :mod:`pydiff.problem.operator` (harmonic-mean face conductances,
Dirichlet ghost cells with the cell's own D, Neumann walls without flux, periodic wrapping),
assembled for the sparse solvers: symmetric positive definite, five non-zeros per row, index
``i * L + j`` for cell ``[i, j]``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..problem.operator import harmonic_mean


def stationary_matrix(D, lattice: int, gamma: float, boundary: str = "dirichlet") -> sp.csr_matrix:
    """``A`` for diffusivity ``D`` (a number, or an (L, L) array) on an ``lattice`` x ``lattice``
    lattice: CSR, float64."""
    L = lattice
    D = np.broadcast_to(np.asarray(D, dtype=np.float64), (L, L))
    index = np.arange(L * L).reshape(L, L)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    values: list[np.ndarray] = []
    a: np.ndarray
    b: np.ndarray
    h: np.ndarray
    diagonal = np.full(L * L, float(gamma))
    for axis in (0, 1):
        if boundary == "periodic":
            a, b = index, np.roll(index, -1, axis)
            h = harmonic_mean(D, np.roll(D, -1, axis))
        else:
            a, b = (index[:-1], index[1:]) if axis == 0 else (index[:, :-1], index[:, 1:])
            Da, Db = (D[:-1], D[1:]) if axis == 0 else (D[:, :-1], D[:, 1:])
            h = harmonic_mean(Da, Db)
            if boundary == "dirichlet":  # the two walls across this axis: a ghost cell at 0
                edges = (index[0], index[-1]) if axis == 0 else (index[:, 0], index[:, -1])
                edge_D = (D[0], D[-1]) if axis == 0 else (D[:, 0], D[:, -1])
                for cells, wall_D in zip(edges, edge_D):
                    np.add.at(diagonal, cells.ravel(), wall_D.ravel())
        a, b, h = a.ravel(), b.ravel(), h.ravel()
        rows += [a, b]
        cols += [b, a]
        values += [-h, -h]
        np.add.at(diagonal, a, h)
        np.add.at(diagonal, b, h)
    rows.append(np.arange(L * L))
    cols.append(np.arange(L * L))
    values.append(diagonal)
    matrix = sp.coo_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(L * L, L * L))
    return matrix.tocsr()  # duplicates (none but on tiny periodic lattices) are summed
