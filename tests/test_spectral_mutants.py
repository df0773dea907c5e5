"""The spectral solver (pydiff.solvers.spectral) for every wall, target and method, against dense
linear algebra on tiny lattices: where mutation testing found only the Dirichlet transient checked
(benchmarks/mutation.py, docs/mutation.md)."""

import numpy as np
import pytest
import scipy.linalg

from pydiff.errors import ConfigError
from pydiff.problem import Problem
from pydiff.problem.operator import stationary_operator
from pydiff.solvers import make_solver
from pydiff.solvers.spectral import basis, eigenvalues

BOUNDARIES = ["dirichlet", "neumann", "periodic"]


def second_difference(L, boundary):
    """The 1-D second difference of L cells, by hand: Dirichlet's ghost cells hold 0, Neumann's
    no flux drops the outer face, periodic wraps."""
    T = np.diag(np.full(L, -2.0)) + np.diag(np.ones(L - 1), 1) + np.diag(np.ones(L - 1), -1)
    if boundary == "neumann":
        T[0, 0] = T[-1, -1] = -1.0
    if boundary == "periodic":
        T[0, -1] = T[-1, 0] = 1.0
    return T


@pytest.mark.parametrize("L", [5, 6])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_the_basis_diagonalises_the_second_difference_with_the_eigenvalues_in_its_order(boundary, L):
    B = basis(L, boundary)
    np.testing.assert_allclose(B @ B.T, np.eye(L), atol=1e-13)
    np.testing.assert_allclose(B @ second_difference(L, boundary) @ B.T, np.diag(eigenvalues(L, boundary)), atol=1e-13)


def test_the_default_walls_are_dirichlet():
    np.testing.assert_array_equal(eigenvalues(5), eigenvalues(5, "dirichlet"))
    np.testing.assert_array_equal(basis(5), basis(5, "dirichlet"))


def dense_field(problem, images):
    """The exact field from the matrix of pydiff.problem.operator, built column by column:
    ``A u = s`` (stationary) or ``du/dt = s - A u``, ``u(0) = s``, at ``t_max``."""
    L = problem.lattice
    A = np.stack([stationary_operator(e.reshape(L, L), problem.D, problem.gamma, problem.boundary).ravel()
                  for e in np.eye(L * L)], axis=1)
    s = images.reshape(len(images), L * L).T
    if problem.target == "stationary":
        u = np.linalg.solve(A, s)
    else:
        E = scipy.linalg.expm(-A * problem.t_max)
        u = E @ s + np.linalg.solve(A, s - E @ s)
    return u.T.reshape(images.shape)


@pytest.mark.parametrize("method", ["matrix", "fft"])
@pytest.mark.parametrize("target", ["stationary", "t_max"])
@pytest.mark.parametrize("L", [6, 7])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_every_wall_target_and_method_gives_the_dense_solution(boundary, L, target, method):
    problem = Problem(lattice=L, radius=1, n_sources=1, D=0.7, gamma=0.05, t_max=4.0, boundary=boundary,
                      target=target)
    images = np.random.default_rng(L).random((3, L, L))  # three different images: a batch, not one
    expected = dense_field(problem, images)
    with make_solver("spectral", problem, method=method) as solver:
        assert solver.method == method
        u = solver(images)  # float64 images: the FFT form still computes in float32
    # the matrix form in float64, the FFT form in float32 (pydiff.solvers.spectral's doc)
    assert u.shape == images.shape and u.dtype == (np.float32 if method == "fft" else np.float64)
    tolerance = 2e-6 if method == "fft" else 1e-12
    np.testing.assert_allclose(u, expected, rtol=0, atol=tolerance * np.abs(expected).max())


def test_auto_takes_the_matrix_form_up_to_l_256_and_names_the_methods_it_knows():
    assert make_solver("spectral", Problem(lattice=256)).method == "matrix"
    assert make_solver("spectral", Problem(lattice=257)).method == "fft"
    with pytest.raises(ConfigError, match="choose one of auto, matrix, fft"):
        make_solver("spectral", Problem(), method="dct")
