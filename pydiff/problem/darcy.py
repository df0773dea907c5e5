"""Darcy flow as the operator-learning field poses it (Li et al. 2020, the FNO paper), in
pydiff's finite-volume scheme.

    -div(a grad u) = f  on the unit square,  u = 0 outside,  f = 1.

The coefficient is a two-phase medium: ``a = D * contrast`` (12) where a Gaussian random field
``psi`` is >= 0 and ``D`` (3) where it is negative.  ``psi`` ~ N(0, C) with the covariance
``C = tau^(2 alpha - 2) (-Delta + tau^2 I)^(-alpha)``, Delta the Laplacian with zero Neumann walls,
``alpha = 2``, ``tau = 3``, sampled as the published generator (data_generation/darcy/GRF.m in
neuraloperator) does: standard normal Karhunen-Loeve coefficients ``xi`` on an s x s grid of
cosine modes ``k = 0..s-1``, scaled by ``s tau^(alpha-1) (pi^2 |k|^2 + tau^2)^(-alpha/2)``, the
constant mode zeroed, and an inverse orthonormal 2-D DCT-II.

Differences from the published data files, all deliberate and stated in docs/darcy.md:

- the lattice is cell-centred (cell i of ``s`` has its centre at ``(i + 1/2) / s``; ``h = 1/s``)
  and the walls sit half a cell outside the first and last cells (ghost cells at 0), where the
  published solver puts its nodes on the walls (``u = 0`` at the first and last rows);
- the face conductances are harmonic means of the two cells' ``a``; the published solver smooths
  ``a`` with splines and averages faces arithmetically;
- the paper's low value is 3; the published script uses 4 (``--D 4 --contrast 3``).

Sample ``j`` draws its field from ``(seed, STREAM, j)`` (:mod:`pydiff.problem.diffusivity`), on
the solve lattice; :func:`subsample` keeps every ``stride``-th cell of it for storage.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from .parameters import Problem

ALPHA = 2.0  # smoothness of the random field
TAU = 3.0  # inverse length scale of the random field


def gaussian_random_field(s: int, rng: np.random.Generator, alpha: float = ALPHA, tau: float = TAU) -> np.ndarray:
    """(s, s) float64 sample of the mean-zero Gaussian random field of the published generator."""
    k = np.arange(s)
    k1, k2 = np.meshgrid(k, k, indexing="ij")
    coefficients = tau ** (alpha - 1) * (np.pi**2 * (k1**2 + k2**2) + tau**2) ** (-alpha / 2)
    modes = s * coefficients * rng.standard_normal((s, s))
    modes[0, 0] = 0.0
    return scipy.fft.idctn(modes, type=2, norm="ortho")


def darcy_map(problem: Problem, rng: np.random.Generator) -> np.ndarray:
    """(S, S) coefficient ``a`` on the solve lattice S: ``D * contrast`` where the field is
    non-negative, ``D`` elsewhere."""
    psi = gaussian_random_field(problem.fine_lattice, rng)
    return np.where(psi >= 0, problem.D * problem.contrast, problem.D)


def subsample(arrays: np.ndarray, problem: Problem) -> np.ndarray:
    """Every ``problem.stride``-th cell of (..., S, S) arrays on the solve lattice, from the
    first: (..., L, L) on the stored lattice."""
    r = problem.stride
    return arrays[..., ::r, ::r] if r > 1 else arrays
