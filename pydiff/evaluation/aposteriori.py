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
from ..problem.operator import stationary_operator
from ..problem.residual import require_normalised, stationary_residual
from ..problem.walls import for_each_wall
from ..registry import PRECONDITIONERS
from ..solvers.torch_cg import TorchCGSolver, TorchOperator

ITERATIONS = 20  # preconditioned CG steps on the error equation with the spectral preconditioner
# The preconditioner of those steps: "spectral", the constant-D inverse (exact where D is constant:
# then no step is needed), "multigrid", one V-cycle of torch-mg (each step ~10x closer where D
# varies), or "auto": spectral where D is constant, multigrid where it varies.
# The steps each takes unless told: 20 spectral ones (Spearman 1.00 with the true max error on
# quick-varied), none after the V-cycle's own answer, whose estimate is within a few per cent of
# the true max error and costs about a third of an exact torch-mg solve at 512^2 (README).
DEFAULT_STEPS = {"spectral": ITERATIONS, "multigrid": 0}


def check_preconditioner(preconditioner: str) -> str:
    """``preconditioner`` if it is one of :data:`PRECONDITIONERS`; :class:`ConfigError` otherwise."""
    if preconditioner not in PRECONDITIONERS:
        raise ConfigError(f"unknown preconditioner {preconditioner!r}; choose one of {', '.join(PRECONDITIONERS)}")
    return preconditioner


def estimator(problem: Problem, preconditioner: str = "auto", iterations: int | None = None) -> tuple[str, int]:
    """The estimate's preconditioner and CG steps for ``problem``: ``"auto"`` is
    :func:`correction_preconditioner`'s choice, ``iterations`` None its :data:`DEFAULT_STEPS`."""
    chosen = correction_preconditioner(problem) if check_preconditioner(preconditioner) == "auto" else preconditioner
    steps = DEFAULT_STEPS[chosen] if iterations is None else iterations
    if steps < 0:
        raise ConfigError(f"the estimate's CG steps must be >= 0, got {steps}")
    return chosen, steps


def correction_preconditioner(problem: Problem) -> str:
    """The preconditioner of correction steps that must converge fast (refined answers, the
    guaranteed bound): the constant-D inverse where it is exact, a V-cycle where D varies."""
    return "spectral" if problem.diffusivity == "constant" else "multigrid"


def error_solver(problem: Problem, preconditioner: str = "auto", device: str = "cpu"):
    """The solver whose ``approximate`` solves the error equation: torch-cg (the constant-D
    inverse as preconditioner) or torch-mg (a V-cycle)."""
    if estimator(problem, preconditioner)[0] == "multigrid":
        from ..solvers.torch_mg import TorchMGSolver

        return TorchMGSolver(problem, device=device)
    return TorchCGSolver(problem, device=device)


def implied_fields(prediction: np.ndarray, images: np.ndarray, problem: Problem, diffusivity: np.ndarray | None = None,
                   iterations: int | None = None, device: str = "cpu", batch_size: int = 64, walls=None,
                   preconditioner: str = "auto") -> np.ndarray:
    """The fields the equation implies from predictions: ``(y_hat + A^-1 R) / peak`` per sample.

    Args:
        prediction: (n, [1,] L, L) predicted normalised fields.
        images: (n, [1,] L, L) their source images.
        problem: the equation (constants, walls); production sources only.
        diffusivity: (n, [1,] L, L) maps where D varies (None: the constant ``problem.D``).
        iterations: CG steps on the error equation (see the module's text; None: the
            preconditioner's :data:`DEFAULT_STEPS`).
        device: where the steps run (``"cpu"``, ``"cuda"``, ``"auto"``).
        batch_size: samples per batch (memory: about 12 float64 fields of L^2 each).
        walls: (n,) each sample's walls where the problem mixes them (:mod:`pydiff.problem.walls`).
        preconditioner: of the CG steps, one of :data:`PRECONDITIONERS` (:func:`estimator`).

    Returns:
        (n, L, L) float32 fields, peak 1: the exact fields when the error equation is solved exactly.
    """
    if problem.source_model != "production":
        raise ConfigError("the a-posteriori estimate needs the production source model (clamped sources "
                          "hold cells at fixed values: no error equation on the whole lattice)")
    require_normalised(problem)
    L = problem.lattice
    y = np.asarray(prediction, dtype=np.float64).reshape(-1, L, L)
    img = np.asarray(images, dtype=np.float64).reshape(-1, L, L)
    maps = None if diffusivity is None else np.asarray(diffusivity, dtype=np.float64).reshape(-1, L, L)
    if problem.boundary == "mixed":  # each wall's samples with that wall's operator
        return for_each_wall(problem, walls, lambda one, *parts: implied_fields(
            parts[0], parts[1], one, parts[2], iterations, device, batch_size, preconditioner=preconditioner), y, img, maps)
    preconditioner, iterations = estimator(problem, preconditioner, iterations)
    solver = error_solver(problem, preconditioner, device)
    if preconditioner == "multigrid":  # a V-cycle's batch stays near the caches, as torch-mg's own solves do
        batch_size = min(batch_size, solver.chunk)
    out = np.empty(y.shape, dtype=np.float32)
    for start in range(0, len(y), batch_size):
        part = slice(start, start + batch_size)
        y_t, img_t = (torch.from_numpy(a[part]).to(solver.device) for a in (y, img))
        D = None if maps is None else torch.from_numpy(maps[part]).to(solver.device)
        if preconditioner == "multigrid":  # the V-cycle's own fine operator gives the residual: one set-up
            # Without CG steps the operator serves the residual alone, which the cycle's precision
            # resolves to its first digits (a float32 prediction's): the whole set-up in float32.
            cycle = solver.preconditioner(D, y_t, torch.float64 if iterations else solver.cycle_dtype)
            correction = solver.approximate(torch_residual(y_t, img_t, problem, D, cycle.operator), iterations=iterations,
                                            cycle=cycle)
        else:
            correction = solver.approximate(torch_residual(y_t, img_t, problem, D), D, iterations)
        w = y_t + correction
        flat = w.flatten(1)
        peak = flat.gather(1, flat.abs().argmax(dim=1, keepdim=True))[:, 0]
        out[part] = (w / torch.where(peak != 0, peak, torch.ones_like(peak))[:, None, None]).cpu().numpy()
    return out


def torch_residual(y: torch.Tensor, images: torch.Tensor, problem: Problem, D: torch.Tensor | None,
                   operator=None) -> torch.Tensor:
    """(b, L, L) ``c img - A y`` with the least-squares ``c``, on the tensors' device: what
    :func:`~pydiff.problem.residual.stationary_residual` gives (production sources, one wall
    condition), without leaving the device (at 512^2 on a CPU, 30 ms per sample in numpy).
    ``operator``: ``A`` itself where the caller holds it already (a V-cycle's
    :meth:`~pydiff.solvers.torch_mg.VCycle.operator`); else made from ``D``."""
    A = operator or TorchOperator(torch.full_like(y, problem.D) if D is None else D, problem.gamma, problem.boundary)
    Ay = A(y)
    power = (images * images).sum(dim=(1, 2))
    c = (Ay * images).sum(dim=(1, 2)) / torch.where(power > 0, power, torch.ones_like(power))
    return c[:, None, None] * images - Ay


def error_estimate(prediction: np.ndarray, images: np.ndarray, problem: Problem, diffusivity: np.ndarray | None = None,
                   iterations: int | None = None, device: str = "cpu", walls=None,
                   preconditioner: str = "auto") -> np.ndarray:
    """(n, L, L) estimated absolute errors ``|y_hat - y|`` of predictions, without their ground
    truth (:func:`implied_fields`)."""
    L = problem.lattice
    implied = implied_fields(prediction, images, problem, diffusivity, iterations, device, walls=walls,
                             preconditioner=preconditioner)
    return np.abs(np.asarray(prediction, dtype=np.float32).reshape(-1, L, L) - implied)


def smallest_eigenvalue_bound(problem: Problem, diffusivity: np.ndarray | None, n: int) -> np.ndarray:
    """(n,) lower bounds of the smallest eigenvalue of each sample's ``A = gamma I - div(D grad)``:
    ``gamma + min(D) mu_1``, with ``mu_1`` the smallest eigenvalue of the unit-D operator of the
    walls (``8 sin^2(pi / (2 (L + 1)))`` with Dirichlet walls, 0 without).  Every face
    conductance (a harmonic mean) and every wall term is at least ``min(D)``, so
    ``u^T A u >= gamma |u|^2 + min(D) u^T A_1 u``."""
    L = problem.lattice
    mu = 8.0 * np.sin(np.pi / (2.0 * (L + 1))) ** 2 if problem.boundary == "dirichlet" else 0.0
    d_min = np.full(n, problem.D) if diffusivity is None else \
        np.asarray(diffusivity, dtype=np.float64).reshape(n, -1).min(axis=1)
    return problem.gamma + d_min * mu


def inverse_row_sums(problem: Problem, diffusivity: np.ndarray | None, n: int, device: str = "cpu",
                     walls=None) -> np.ndarray:
    """(n,) upper bounds of ``|A^-1|_inf``, each sample's largest row sum of ``A^-1``
    (``walls``: each sample's, where the problem mixes them).

    ``A`` is an M-matrix (non-positive couplings, a diagonal that dominates them by ``gamma``
    and the wall terms), so ``A^-1 >= 0`` entry by entry.  For any ``v`` with ``A v >= m 1``,
    ``m > 0``: ``A^-1 1 <= v / m``, so ``|A^-1|_inf <= max v / m``.  ``v`` is two correction steps
    towards ``A^-1 1`` (any ``v`` would do; a close one makes the bound tight), and ``A v`` is
    checked, not assumed.  Where ``m <= 0`` (never seen) the bound is infinite.  It depends on
    the maps alone: one computation serves every answer to the same samples."""
    if problem.boundary == "mixed":
        return for_each_wall(problem, walls, lambda one, index, maps_part:
                             inverse_row_sums(one, maps_part, len(index), device), np.arange(n), diffusivity)
    L = problem.lattice
    maps = None if diffusivity is None else torch.as_tensor(np.asarray(diffusivity, dtype=np.float64).reshape(n, L, L))
    solver = error_solver(problem, correction_preconditioner(problem), device)
    chunk = getattr(solver, "chunk", n) or 1  # a V-cycle's batch stays near the caches
    v = np.empty((n, L, L))
    for start in range(0, n, chunk):
        part = slice(start, min(start + chunk, n))
        ones = torch.ones((part.stop - start, L, L), dtype=torch.float64)
        v[part] = solver.approximate(ones, None if maps is None else maps[part], 2).cpu().numpy()
    D = problem.D if diffusivity is None else np.asarray(diffusivity, dtype=np.float64).reshape(n, L, L)
    m = stationary_operator(v, D, problem.gamma, problem.boundary).reshape(n, -1).min(axis=1)
    with np.errstate(divide="ignore"):
        return np.where(m > 0, v.reshape(n, -1).max(axis=1) / m, np.inf)


def guaranteed_max_errors(answers: np.ndarray, images: np.ndarray, problem: Problem,
                          diffusivity: np.ndarray | None = None, walls=None, device: str = "cpu",
                          row_sums: np.ndarray | None = None) -> np.ndarray:
    """(n,) a deterministic bound on each normalised answer's max error, from its residual alone.

    With ``c`` the fitted source factor and ``r = c img - A y_hat`` the residual
    (:func:`~pydiff.problem.residual.stationary_residual`), ``y_c = A^-1 (c img)`` is the exact
    field times ``M = max y_c``, and ``|y_hat - y_c|_inf <= E``, the smaller of
    ``|A^-1|_inf |r|_inf`` (:func:`inverse_row_sums`) and ``|r|_2 / lambda_min``
    (:func:`smallest_eigenvalue_bound`).  Then ``|M - max y_hat| <= E`` and, with ``y = y_c / M``,

        |y_hat - y| <= (E + |y_hat|_inf (|max y_hat - 1| + E)) / (max y_hat - E)

    (infinite where ``max y_hat <= E`` or ``c <= 0``).  No statistics: it holds for every sample,
    of any family.  Loose for a network's raw prediction (its residual is large where ``A``
    amplifies high frequencies), tight after a few correction steps (:func:`implied_fields`).
    ``row_sums``: :func:`inverse_row_sums` of these samples, where the caller has them already.
    """
    L = problem.lattice
    y = np.asarray(answers, dtype=np.float64).reshape(-1, L, L)
    maps = None if diffusivity is None else np.asarray(diffusivity, dtype=np.float64).reshape(-1, L, L)
    if row_sums is None:
        row_sums = inverse_row_sums(problem, maps, len(y), device, walls)
    if problem.boundary == "mixed":
        return for_each_wall(problem, walls, lambda one, y_part, img_part, maps_part, sums_part:
                             guaranteed_max_errors(y_part, img_part, one, maps_part, device=device, row_sums=sums_part),
                             y, np.asarray(images, dtype=np.float64).reshape(-1, L, L), maps, row_sums)
    residual, c = stationary_residual(y, images, problem, maps)
    flat = residual.reshape(len(y), -1)
    E = np.minimum(np.abs(flat).max(axis=1) * row_sums,
                   np.sqrt((flat * flat).sum(axis=1)) / smallest_eigenvalue_bound(problem, maps, len(y)))
    peak, largest = y.max(axis=(1, 2)), np.abs(y).max(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = (E + largest * (np.abs(peak - 1.0) + E)) / (peak - E)
    return np.where((peak > E) & (c > 0), bound, np.inf)
