"""Small problems with known answers, shared by the solver tests.

Each function returns inputs and the exact answer computed without any pydiff solver code:
closed forms for the discrete operator, or dense linear algebra on tiny lattices.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from pydiff.problem import Problem


def sine_mode(L: int, p: int, q: int) -> np.ndarray:
    """(L, L) eigenvector sin(p pi x / (L+1)) sin(q pi y / (L+1)), x, y = 1..L."""
    x = np.arange(1, L + 1)
    return np.outer(np.sin(p * np.pi * x / (L + 1)), np.sin(q * np.pi * x / (L + 1)))


def sine_mode_eigenvalue(problem: Problem, p: int, q: int) -> float:
    """Eigenvalue of D * lap - gamma for mode (p, q): a hand formula."""
    L = problem.lattice
    lam_1d = lambda k: 2.0 * np.cos(k * np.pi / (L + 1)) - 2.0  # noqa: E731
    return problem.D * (lam_1d(p) + lam_1d(q)) - problem.gamma


def sine_mode_solution(problem: Problem, p: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    """A single-mode source and its exact u(t_max): s (e^{lam t} + (e^{lam t} - 1) / lam)."""
    s = sine_mode(problem.lattice, p, q)
    lam = sine_mode_eigenvalue(problem, p, q)
    t = problem.t_max
    return s, s * (np.exp(lam * t) + (np.exp(lam * t) - 1.0) / lam)


def dense_operator(problem: Problem) -> np.ndarray:
    """D * lap - gamma as a dense (L*L, L*L) matrix, built cell by cell (index i * L + j)."""
    L = problem.lattice
    K = np.zeros((L * L, L * L))
    for i in range(L):
        for j in range(L):
            row = i * L + j
            K[row, row] = -4.0 * problem.D - problem.gamma
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                if 0 <= i + di < L and 0 <= j + dj < L:
                    K[row, (i + di) * L + (j + dj)] = problem.D
    return K


def dense_solution(problem: Problem, source: np.ndarray) -> np.ndarray:
    """u(t_max) = e^{Kt} s + K^{-1} (e^{Kt} - I) s with a dense matrix exponential."""
    L = problem.lattice
    K = dense_operator(problem)
    s = source.reshape(L * L)
    E = scipy.linalg.expm(K * problem.t_max)
    u = E @ s + np.linalg.solve(K, E @ s - s)
    return u.reshape(L, L)


def dense_clamped_steady_state(problem: Problem, source: np.ndarray) -> np.ndarray:
    """Steady state with the cells where ``source > 0`` held at their values (dense solve)."""
    L = problem.lattice
    K = dense_operator(problem)
    s = source.reshape(L * L)
    held = s > 0
    free = ~held
    u = s.copy()
    u[free] = np.linalg.solve(K[np.ix_(free, free)], -K[np.ix_(free, held)] @ s[held])
    return u.reshape(L, L)


def point_source(L: int, x: int, y: int) -> np.ndarray:
    """A unit source at 1-based cell (x, y)."""
    img = np.zeros((L, L))
    img[x - 1, y - 1] = 1.0
    return img
