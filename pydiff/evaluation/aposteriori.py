"""An a-posteriori estimate of a prediction's error, from the equation it should satisfy.

The exact field is ``y = u / max(u)`` with ``A u = img``, ``A = gamma I - div(D grad)``
(:mod:`pydiff.problem.operator`).  A prediction ``y_hat`` leaves the residual

    R = c img - A y_hat        (c fitted per sample: :func:`pydiff.problem.residual.stationary_residual`)

and ``w = y_hat + A^-1 R`` solves ``A w = c img``, so ``w = c u`` and ``y = w / w_peak`` (the
value of ``w`` of largest magnitude: ``u >= 0`` peaks where ``|w|`` does, whatever the sign of
``c``).  The error of the prediction is then ``y_hat - y``, whatever the prediction was.

``A^-1 R`` is the expensive part.  It is approximated with a few preconditioned CG steps
(:meth:`pydiff.solvers.torch_cg.TorchCGSolver.approximate`): the preconditioner is the exact
inverse for constant D (the estimate is then the true error, to the t_max transient's 1e-6 for
the papers' problem); where D varies, each step brings the estimate closer.  An error needs its
first digit, not ten: on quick-varied (64^2, inclusions of contrast 10) 10 steps rank a trained
encoder-decoder's errors at Spearman 0.94 with the true max error, 20 steps at 1.00, for a
fraction of an exact solve (measured by ``pydiff trust``; see the README).

Arrays: (n, [1,] L, L); fields in the normalised units of the data (peak 1).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..problem import Problem
from ..problem.residual import stationary_residual
from ..problem.walls import for_each_wall
from ..solvers.torch_cg import TorchCGSolver

ITERATIONS = 20  # preconditioned CG steps on the error equation (0: the preconditioner's answer alone)
# The preconditioner of those steps: "spectral", the constant-D inverse (exact where D is constant:
# then no step is needed), or "multigrid", one V-cycle of torch-mg (each step ~10x closer where D varies).
PRECONDITIONERS = ("spectral", "multigrid")


def error_solver(problem: Problem, preconditioner: str = "spectral", device: str = "cpu"):
    """The solver whose ``approximate`` solves the error equation: torch-cg (the constant-D
    inverse as preconditioner) or torch-mg (a V-cycle)."""
    if preconditioner not in PRECONDITIONERS:
        raise ConfigError(f"unknown preconditioner {preconditioner!r}; choose one of {', '.join(PRECONDITIONERS)}")
    if preconditioner == "multigrid":
        from ..solvers.torch_mg import TorchMGSolver

        return TorchMGSolver(problem, device=device)
    return TorchCGSolver(problem, device=device)


def implied_fields(prediction: np.ndarray, images: np.ndarray, problem: Problem, diffusivity: np.ndarray | None = None,
                   iterations: int = ITERATIONS, device: str = "cpu", batch_size: int = 64, walls=None,
                   preconditioner: str = "spectral") -> np.ndarray:
    """The fields the equation implies from predictions: ``(y_hat + A^-1 R) / peak`` per sample.

    Args:
        prediction: (n, [1,] L, L) predicted normalised fields.
        images: (n, [1,] L, L) their source images.
        problem: the equation (constants, walls); production sources only.
        diffusivity: (n, [1,] L, L) maps where D varies (None: the constant ``problem.D``).
        iterations: CG steps on the error equation (see the module's text).
        device: where the steps run (``"cpu"``, ``"cuda"``, ``"auto"``).
        batch_size: samples per batch (memory: about 12 float64 fields of L^2 each).
        walls: (n,) each sample's walls where the problem mixes them (:mod:`pydiff.problem.walls`).
        preconditioner: of the CG steps, one of :data:`PRECONDITIONERS`.

    Returns:
        (n, L, L) float32 fields, peak 1: the exact fields when the error equation is solved exactly.
    """
    if problem.source_model != "production":
        raise ConfigError("the a-posteriori estimate needs the production source model (clamped sources "
                          "hold cells at fixed values: no error equation on the whole lattice)")
    L = problem.lattice
    y = np.asarray(prediction, dtype=np.float64).reshape(-1, L, L)
    img = np.asarray(images, dtype=np.float64).reshape(-1, L, L)
    maps = None if diffusivity is None else np.asarray(diffusivity, dtype=np.float64).reshape(-1, L, L)
    if problem.boundary == "mixed":  # each wall's samples with that wall's operator
        return for_each_wall(problem, walls, lambda one, *parts: implied_fields(
            parts[0], parts[1], one, parts[2], iterations, device, batch_size, preconditioner=preconditioner), y, img, maps)
    solver = error_solver(problem, preconditioner, device)
    out = np.empty(y.shape, dtype=np.float32)
    for start in range(0, len(y), batch_size):
        part = slice(start, start + batch_size)
        residual, _ = stationary_residual(y[part], img[part], problem, None if maps is None else maps[part])
        correction = solver.approximate(torch.from_numpy(residual),
                                        None if maps is None else torch.from_numpy(maps[part]), iterations)
        w = y[part] + correction.cpu().numpy()
        flat = w.reshape(len(w), -1)
        peak = flat[np.arange(len(w)), np.abs(flat).argmax(axis=1)]
        out[part] = w / np.where(peak != 0, peak, 1.0)[:, None, None]
    return out


def error_estimate(prediction: np.ndarray, images: np.ndarray, problem: Problem, diffusivity: np.ndarray | None = None,
                   iterations: int = ITERATIONS, device: str = "cpu", walls=None,
                   preconditioner: str = "spectral") -> np.ndarray:
    """(n, L, L) estimated absolute errors ``|y_hat - y|`` of predictions, without their ground
    truth (:func:`implied_fields`)."""
    L = problem.lattice
    implied = implied_fields(prediction, images, problem, diffusivity, iterations, device, walls=walls,
                             preconditioner=preconditioner)
    return np.abs(np.asarray(prediction, dtype=np.float32).reshape(-1, L, L) - implied)
