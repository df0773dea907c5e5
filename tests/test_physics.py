"""The stationary residual: zero on exact fields, positive on perturbed ones, the Laplacian by hand."""

import numpy as np
import pytest

from pydiff.problem import Problem, sample_sources, source_images
from pydiff.problem.residual import five_point_laplacian, residual_score, stationary_residual
from pydiff.solvers import solve


def test_the_laplacian_by_hand():
    y = np.zeros((1, 3, 3))
    y[0, 1, 1] = 1.0
    lap = five_point_laplacian(y)[0]
    assert lap.tolist() == [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
    corner = np.zeros((3, 3))
    corner[0, 0] = 2.0  # the walls hold zero: two of its neighbours are outside
    assert five_point_laplacian(corner)[0, 0] == -8.0 and five_point_laplacian(corner)[0, 1] == 2.0


@pytest.fixture(scope="module")
def exact():
    problem = Problem(lattice=32, radius=3, n_sources=4, min_sources=1, setup="paper2024")
    images = source_images(problem, sample_sources(problem, 6, 1))
    return problem, images


def test_zero_on_the_exact_stationary_field_with_c_the_inverse_maximum(exact):
    problem, images = exact
    fields, field_max = solve(images, problem, "direct")  # the steady state itself
    residual, c = stationary_residual(fields, images, problem)
    np.testing.assert_allclose(c, 1.0 / field_max, rtol=1e-5)
    # float32 fields: the residual is float32 rounding, ~1e-8 against terms of ~1e-3
    assert np.abs(residual).max() < 1e-6 * np.abs(images).max() / field_max.min()
    # u(t_max) of the ODE, as the data sets hold it, is stationary to the decayed transient
    at_t_max, _ = solve(images, problem, "spectral")
    assert residual_score(at_t_max, images, problem).max() < 1e-6


def test_positive_and_growing_on_perturbed_fields(exact):
    problem, images = exact
    fields, _ = solve(images, problem, "spectral")
    base = residual_score(fields, images, problem)
    noise = np.random.default_rng(0).normal(size=fields.shape)
    small = residual_score(fields + 1e-3 * noise, images, problem)
    large = residual_score(fields + 1e-2 * noise, images, problem)
    assert np.all(small > 100 * base) and np.all(large > 5 * small)
    # a smooth error the sources cannot explain (a wrong decay length) is seen too
    blurred = residual_score(fields ** 1.5, images, problem)
    assert np.all(blurred > 100 * base)


def test_clamped_sources_are_masked_and_the_free_cells_checked():
    # Held disk cells obey no equation and the free cells have no source term: the production
    # residual would flag every exact clamped field at its disks.
    problem = Problem(lattice=24, radius=3, source_model="clamped")
    images = source_images(problem, sample_sources(problem, 3, 2))
    fields, _ = solve(images, problem, "direct")
    production = Problem(lattice=24, radius=3)
    assert residual_score(fields, images, production).min() > 1e-4
    residual, c = stationary_residual(fields, images, problem)
    assert np.abs(residual).max() < 1e-6 and np.all(c == 0)
    assert np.all(residual[images > 0] == 0)
    noisy = fields + 1e-3 * np.random.default_rng(0).normal(size=fields.shape)
    assert np.all(residual_score(noisy, images, problem) > 1e-4)


def test_zero_on_exact_fields_of_varied_problems_and_positive_on_perturbed_ones():
    from pydiff.problem.diffusivity import diffusivity_maps

    for boundary in ("dirichlet", "neumann", "periodic"):
        problem = Problem(lattice=32, radius=3, n_sources=4, min_sources=1, setup="paper2024",
                          diffusivity="inclusions", boundary=boundary)
        images = source_images(problem, sample_sources(problem, 3, 1))
        maps = diffusivity_maps(problem, range(3), 1)
        fields, field_max = solve(images, problem, "direct", diffusivity=maps)
        residual, c = stationary_residual(fields, images, problem, maps)
        np.testing.assert_allclose(c, 1.0 / field_max, rtol=1e-5)
        exact = residual_score(fields, images, problem, maps)
        # float32 fields times D up to 10: rounding of ~1e-6 against a source term of c ~ 0.04
        assert exact.max() < 1e-5 * np.abs(images).max() / field_max.min()
        # the constant-D residual does not hold for the varied field, the map's one does
        assert residual_score(fields, images, problem, np.ones_like(maps)).min() > 100 * exact.max()
        noisy = fields + 1e-3 * np.random.default_rng(0).normal(size=fields.shape)
        assert np.all(residual_score(noisy, images, problem, maps) > 100 * exact)
