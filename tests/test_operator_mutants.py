"""The matrix-free operator (pydiff.problem.operator) where mutation testing found it unchecked:
its default walls, batches of fields, and float64 arithmetic whatever the inputs' precision
(benchmarks/mutation.py, docs/mutation.md)."""

import numpy as np
import pytest

from pydiff.problem.operator import divergence, harmonic_mean, stationary_operator


def test_the_default_walls_are_dirichlet_by_hand():
    # u = 1 on 3 x 3 cells, D = 1: no flux between cells; each wall face takes D u = 1 away, so a
    # corner (two faces) has -2, an edge cell -1 and the centre 0.  Neumann walls take nothing.
    ones = np.ones((3, 3))
    expected = -np.array([[2.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 2.0]])
    np.testing.assert_array_equal(divergence(ones, 1.0), expected)
    np.testing.assert_array_equal(stationary_operator(ones, 1.0, 0.5), 0.5 - expected)
    np.testing.assert_array_equal(divergence(ones, 1.0, "neumann"), np.zeros((3, 3)))


@pytest.mark.parametrize("boundary", ["dirichlet", "neumann", "periodic"])
def test_a_batch_is_each_field_on_its_own(boundary):
    rng = np.random.default_rng(5)
    u, D = rng.random((3, 5, 4)), rng.uniform(0.5, 2.0, (3, 5, 4))
    together = stationary_operator(u, D, 0.3, boundary)
    for k in range(3):
        np.testing.assert_allclose(together[k], stationary_operator(u[k], D[k], 0.3, boundary), rtol=0, atol=1e-15)


@pytest.mark.parametrize("boundary", ["dirichlet", "neumann", "periodic"])
def test_float32_and_integer_inputs_are_computed_in_float64(boundary):
    # Data files hold float32 fields and maps: the operator works on their exact float64 values, so
    # an exact field's residual is not float32 rounding of the operator itself.
    rng = np.random.default_rng(6)
    u32, D32 = rng.random((2, 6, 6)).astype(np.float32), rng.uniform(0.1, 10.0, (2, 6, 6)).astype(np.float32)
    for function, args in ((divergence, ()), (stationary_operator, (0.1,))):
        got = function(u32, D32, *args, boundary)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, function(u32.astype(np.float64), D32.astype(np.float64), *args, boundary))
    # an integer image (a count, a 0/1 mask) is a field like any other
    counts = np.arange(36).reshape(6, 6) % 3
    np.testing.assert_array_equal(stationary_operator(counts, 2, 0.25, boundary),
                                  stationary_operator(counts.astype(float), 2.0, 0.25, boundary))


def test_the_harmonic_mean_by_hand():
    assert harmonic_mean(1.0, 1.0) == 1.0
    assert harmonic_mean(1.0, 3.0) == 1.5  # 2 * 3 / 4
    assert harmonic_mean(2.0, 1e-12) == pytest.approx(2e-12)  # the weak cell sets the conductance
