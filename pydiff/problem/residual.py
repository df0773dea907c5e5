"""The stationary equation's residual of a field: a label-free check of a prediction.

The ground truth ``y = u / max(u)`` solves ``D lap(u) - gamma u + img = 0`` (to the decayed
transient, ~1e-6 relative for the paper's constants), so

    r = D lap(y_hat) - gamma y_hat + c img

vanishes for the exact field with ``c = 1 / max(u)``.  That normalisation is unknown for a
prediction, so ``c`` is fitted per sample by least squares (the value that makes the residual
smallest); what remains is the part of the prediction no source strength can explain.  The
Laplacian is the five-point stencil with zero values outside the lattice, as in the solvers.

Where D varies, or the walls are not Dirichlet, ``D lap`` is the operator of
:mod:`pydiff.problem.operator` (harmonic-mean fluxes, the problem's walls) with the sample's map.

With ``source_model="clamped"`` the disk cells are held at their values instead: the equation
``D lap(u) - gamma u = 0`` holds outside them only, with no source term and no scale to fit, so
the residual is that of the free cells and 0 on the held ones.

Arrays: (n, L, L) or (n, 1, L, L) float arrays, a sample per row; units of the field per unit
time (the problem's ``D`` and ``gamma``).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .operator import divergence
from .parameters import Problem
from .walls import for_each_wall


def five_point_laplacian(fields: np.ndarray) -> np.ndarray:
    """``lap(y)[i, j] = y[i+1, j] + y[i-1, j] + y[i, j+1] + y[i, j-1] - 4 y[i, j]`` with zero
    walls, for (..., L, L) arrays (float64)."""
    y = np.asarray(fields, dtype=np.float64)
    padded = np.pad(y, [(0, 0)] * (y.ndim - 2) + [(1, 1), (1, 1)])
    return padded[..., 2:, 1:-1] + padded[..., :-2, 1:-1] + padded[..., 1:-1, 2:] + padded[..., 1:-1, :-2] - 4 * y


def require_normalised(problem: Problem, instead: str = "measure such a run with pydiff evaluate") -> None:
    """:class:`ConfigError` for a problem whose fields are not normalised (Darcy flow): the
    residual, the a-posteriori estimate, the bound, refined answers and the physics loss are
    built for fields of peak 1 solved where they are stored.  ``instead``: what the user can do."""
    if not problem.normalised:
        raise ConfigError("Darcy flow's fields are u itself, kept every r-th cell of a finer lattice: the residual, "
                          "the a-posteriori estimate, the bound and the physics loss are built for normalised fields "
                          f"solved where they are stored; {instead}")


def stationary_residual(prediction: np.ndarray, image: np.ndarray, problem: Problem,
                        diffusivity: np.ndarray | None = None, walls=None) -> tuple[np.ndarray, np.ndarray]:
    """The residual maps ``div(D grad y) - gamma y + c img`` of predicted fields and the fitted ``c``.

    Args:
        prediction: (n, [1,] L, L) predicted normalised fields.
        image: (n, [1,] L, L) their source images (the network's inputs).
        problem: the constants ``D`` and ``gamma`` and the walls.
        diffusivity: (n, [1,] L, L) maps where D varies (None: the constant ``problem.D``).
        walls: (n,) each sample's walls where the problem mixes them (:mod:`pydiff.problem.walls`).

    Returns:
        ``(residual, c)``: (n, L, L) float64 maps and the (n,) least-squares source factors (0 for
        clamped sources, whose held cells have residual 0).
    """
    require_normalised(problem)
    L = problem.lattice
    y = np.asarray(prediction, dtype=np.float64).reshape(-1, L, L)
    img = np.asarray(image, dtype=np.float64).reshape(-1, L, L)
    if problem.boundary == "mixed":
        maps = None if diffusivity is None else np.asarray(diffusivity).reshape(-1, L, L)
        return for_each_wall(problem, walls, lambda one, y_part, img_part, maps_part:
                             stationary_residual(y_part, img_part, one, maps_part),
                             y, img, maps)
    if diffusivity is None and problem.boundary == "dirichlet":
        without_source = problem.D * five_point_laplacian(y) - problem.gamma * y
    else:
        D = problem.D if diffusivity is None else np.asarray(diffusivity, dtype=np.float64).reshape(-1, L, L)
        without_source = divergence(y, D, problem.boundary) - problem.gamma * y
    if problem.source_model == "clamped":  # held cells obey no equation; free cells have no source
        return np.where(img > 0, 0.0, without_source), np.zeros(len(y))
    power = (img * img).sum(axis=(1, 2))
    c = -(without_source * img).sum(axis=(1, 2)) / np.where(power > 0, power, 1.0)
    return without_source + c[:, None, None] * img, c


def residual_score(prediction: np.ndarray, image: np.ndarray, problem: Problem,
                   diffusivity: np.ndarray | None = None, walls=None) -> np.ndarray:
    """(n,) mean absolute stationary residual per sample: 0 for exact fields, larger the less
    a prediction obeys the equation."""
    residual, _ = stationary_residual(prediction, image, problem, diffusivity, walls)
    return np.abs(residual).mean(axis=(1, 2))
