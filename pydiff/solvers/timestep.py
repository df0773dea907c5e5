"""Time integration of the ODE to t_max with a damped Runge-Kutta-Chebyshev method.

This backend shares nothing with the spectral one but the problem: it applies the stencil
directly and integrates ``du/dt = div(D grad u) - gamma u + s`` from ``u(0) = s``, as the
original code did with ROCK2 (the five-point Laplacian for constant D and Dirichlet walls, else
the harmonic-mean fluxes of :mod:`pydiff.problem.operator`, any walls).  The method is RKC2 (Sommeijer, Shampine & Verwer, 1997), a
stabilised explicit second-order scheme whose stability interval grows as the square of its
number of stages, with their embedded error estimate and step-size control.  One step size is
shared by the whole batch (the largest error decides).
"""

from __future__ import annotations

import math

import numpy as np

from ..problem import Problem
from ..problem.operator import divergence
from .base import Solver

_DAMPING = 2.0 / 13.0
_MAX_STAGES = 400


def apply_operator(u: np.ndarray, D: float, gamma: float) -> np.ndarray:
    """``D * lap(u) - gamma * u`` on (b, L, L) arrays, zero values outside the lattice."""
    out = (-4.0 * D - gamma) * u
    out[:, 1:, :] += D * u[:, :-1, :]
    out[:, :-1, :] += D * u[:, 1:, :]
    out[:, :, 1:] += D * u[:, :, :-1]
    out[:, :, :-1] += D * u[:, :, 1:]
    return out


def _rkc_coefficients(stages: int):
    """Per-stage (mu, nu, mu_tilde, gamma_tilde) of damped RKC2 with ``stages`` stages."""
    s = stages
    w0 = 1.0 + _DAMPING / s**2
    # Chebyshev T_j(w0) and its first two derivatives, j = 0..s.
    T = np.zeros(s + 1)
    dT = np.zeros(s + 1)
    d2T = np.zeros(s + 1)
    T[0], T[1], dT[1] = 1.0, w0, 1.0
    for j in range(2, s + 1):
        T[j] = 2 * w0 * T[j - 1] - T[j - 2]
        dT[j] = 2 * T[j - 1] + 2 * w0 * dT[j - 1] - dT[j - 2]
        d2T[j] = 4 * dT[j - 1] + 2 * w0 * d2T[j - 1] - d2T[j - 2]
    w1 = dT[s] / d2T[s]
    b = np.zeros(s + 1)
    b[2:] = d2T[2:] / dT[2:] ** 2
    b[0] = b[1] = b[2]
    coeffs = [(None, None, b[1] * w1, None)]  # stage 1: Y1 = Y0 + mu_t1 h F0
    for j in range(2, s + 1):
        mu = 2 * w0 * b[j] / b[j - 1]
        nu = -b[j] / b[j - 2]
        mu_t = 2 * w1 * b[j] / b[j - 1]
        gamma_t = -(1.0 - b[j - 1] * T[j - 1]) * mu_t
        coeffs.append((mu, nu, mu_t, gamma_t))
    return coeffs


def stages_for(h_rho: float) -> int:
    """Stages that make RKC2 stable for step ``h`` times spectral radius ``rho`` (RKC's rule)."""
    return max(2, 1 + int(math.ceil(math.sqrt(1.0 + 1.54 * h_rho))))


class TimestepSolver(Solver):
    """RKC2 with error control (``rtol``, ``atol``) to ``t_max``; batched, float64."""

    name = "timestep"
    targets = ("t_max",)

    def __init__(self, problem: Problem, rtol: float = 1e-7, atol: float = 1e-9) -> None:
        super().__init__(problem)
        self.rtol, self.atol = rtol, atol
        self.n_steps = 0
        self.n_rejected = 0
        self.n_evaluations = 0
        self.D: float | np.ndarray = problem.D  # an (b, L, L) array while solving maps of D

    def _rhs(self, u: np.ndarray, source: np.ndarray) -> np.ndarray:
        self.n_evaluations += 1
        p = self.problem
        if p.diffusivity == "constant" and p.boundary == "dirichlet":  # the papers' stencil, as always
            return apply_operator(u, p.D, p.gamma) + source
        return divergence(u, self.D, p.boundary) - p.gamma * u + source

    def _step(self, y: np.ndarray, f0: np.ndarray, h: float, source: np.ndarray) -> np.ndarray:
        coeffs = _rkc_coefficients(stages_for(h * self.rho))
        y_prev2 = y
        y_prev = y + coeffs[0][2] * h * f0
        for mu, nu, mu_t, gamma_t in coeffs[1:]:
            f = self._rhs(y_prev, source)
            y_next = (1 - mu - nu) * y + mu * y_prev + nu * y_prev2 + mu_t * h * f + gamma_t * h * f0
            y_prev2, y_prev = y_prev, y_next
        return y_prev

    def _solve(self, images: np.ndarray, diffusivity: np.ndarray | None) -> np.ndarray:
        self.D = self.problem.D if diffusivity is None else diffusivity
        # Gershgorin bound of the spectral radius of div(D grad) - gamma (walls included).
        self.rho = 8.0 * float(np.max(self.D)) + self.problem.gamma
        source = images.astype(np.float64)
        y = source.copy()
        t, t_end = 0.0, self.problem.t_max
        f0 = self._rhs(y, source)
        h = min(t_end, 1e-2 / self.rho)
        max_h = t_end
        while t < t_end:
            h = min(h, t_end - t)
            # Cap the step so that the stage count (and so its rounding) stays bounded.
            h = min(h, (((_MAX_STAGES - 1) ** 2 - 1) / 1.54) / self.rho, max_h)
            y_new = self._step(y, f0, h, source)
            f_new = self._rhs(y_new, source)
            estimate = 0.8 * (y - y_new) + 0.4 * h * (f0 + f_new)
            scale = self.atol + self.rtol * np.maximum(np.abs(y), np.abs(y_new))
            err = float(np.sqrt(np.mean((estimate / scale) ** 2, axis=(1, 2))).max())
            if err <= 1.0:
                t += h
                y, f0 = y_new, f_new
                self.n_steps += 1
            else:
                self.n_rejected += 1
            h *= min(10.0, max(0.1, 0.8 * (err if err > 0 else 1e-12) ** (-1.0 / 3.0)))
        return y
