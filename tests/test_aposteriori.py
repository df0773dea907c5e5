"""The a-posteriori error estimate: the true error where the error equation is solved exactly."""

import numpy as np
import pytest

from pydiff.errors import ConfigError
from pydiff.evaluation.aposteriori import error_estimate, implied_fields
from pydiff.problem import Problem, sample_sources, source_images
from pydiff.problem.diffusivity import diffusivity_maps
from pydiff.solvers import make_solver, normalise


def damaged(fields: np.ndarray, seed: int) -> np.ndarray:
    """Predictions with errors a network makes: a smooth bias and noise where the field is."""
    rng = np.random.default_rng(seed)
    L = fields.shape[-1]
    bias = 0.03 * np.sin(np.arange(L) / 5.0)[None, :, None] * rng.uniform(0.5, 2.0, (len(fields), 1, 1))
    return (fields + bias + 0.05 * fields * rng.standard_normal(fields.shape)).astype(np.float32)


def exact(problem: Problem, n: int, seed: int, backend: str):
    images = source_images(problem, sample_sources(problem, n, seed))
    maps = None if problem.diffusivity == "constant" else diffusivity_maps(problem, range(n), seed)
    with make_solver(backend, problem) as solver:
        return images, maps, normalise(solver(images, maps))[0]


def test_with_constant_d_the_estimate_is_the_true_error_of_the_papers_problem(small_problem):
    # the papers' target is u(t_max), not the stationary field: equal to its 1e-6 transient
    images, _, fields = exact(small_problem, 6, 0, "spectral")
    prediction = damaged(fields, 1)
    estimate = error_estimate(prediction, images, small_problem, iterations=0)
    truth = np.abs(prediction - fields)
    assert truth.max(axis=(1, 2)).min() > 0.02  # the errors are not small
    np.testing.assert_allclose(estimate, truth, atol=1e-5)


@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
def test_with_constant_d_and_other_walls_the_estimate_is_the_true_error(boundary):
    problem = Problem(lattice=32, radius=3, n_sources=4, min_sources=1, setup="paper2024", boundary=boundary)
    images, _, fields = exact(problem, 4, 2, "spectral")
    prediction = damaged(fields, 3)
    np.testing.assert_allclose(error_estimate(prediction, images, problem, iterations=0),
                               np.abs(prediction - fields), atol=1e-5)


@pytest.mark.parametrize("diffusivity", ["inclusions", "lognormal"])
def test_where_d_varies_the_estimate_converges_to_the_true_error(diffusivity):
    problem = Problem(lattice=40, radius=3, n_sources=4, min_sources=1, setup="paper2024", diffusivity=diffusivity)
    images, maps, fields = exact(problem, 6, 4, "direct")
    prediction = damaged(fields, 5)
    truth = np.abs(prediction - fields)
    np.testing.assert_allclose(error_estimate(prediction, images, problem, maps, iterations=80), truth, atol=1e-5)
    # and a few steps already give each sample's worst error to its first digit or better
    few = error_estimate(prediction, images, problem, maps, iterations=15).max(axis=(1, 2))
    assert np.abs(few / truth.max(axis=(1, 2)) - 1).max() < 0.2
    # while the constant-D inverse alone (0 steps) is not the answer where D varies
    assert np.abs(error_estimate(prediction, images, problem, maps, iterations=0) - truth).max() > 1e-3


def test_an_exact_prediction_implies_itself(small_problem):
    images, _, fields = exact(small_problem, 3, 6, "spectral")
    np.testing.assert_allclose(implied_fields(fields, images, small_problem, iterations=0), fields, atol=1e-5)


def test_clamped_sources_are_refused_in_one_line():
    problem = Problem(lattice=24, radius=3, n_sources=2, source_model="clamped")
    with pytest.raises(ConfigError, match="production source model"):
        error_estimate(np.zeros((1, 24, 24)), np.zeros((1, 24, 24)), problem)


@pytest.mark.parametrize("boundary", ["dirichlet", "neumann", "periodic"])
def test_a_few_multigrid_steps_give_what_tens_of_spectral_ones_give_where_d_varies(boundary):
    problem = Problem(lattice=40, radius=3, n_sources=4, min_sources=1, setup="paper2024", diffusivity="inclusions",
                      contrast=100.0, boundary=boundary)
    images, maps, fields = exact(problem, 4, 3, "direct")
    prediction = damaged(fields, 2)
    truth = np.abs(prediction - fields)

    def distance(iterations, preconditioner):
        estimate = error_estimate(prediction, images, problem, maps, iterations, preconditioner=preconditioner)
        return np.abs(estimate - truth).max()

    multigrid = distance(3, "multigrid")
    assert multigrid < 1e-2 * truth.max()  # three V-cycle steps: the true error to two digits or better
    assert multigrid < distance(3, "spectral") / 10  # the constant-D inverse is far from it after three
    assert distance(12, "multigrid") < 1e-6  # and it converges to the true error
    with pytest.raises(ConfigError, match="unknown preconditioner"):
        error_estimate(prediction, images, problem, maps, 1, preconditioner="jacobi")


@pytest.mark.parametrize("boundary", ["dirichlet", "neumann", "periodic"])
def test_the_guaranteed_bound_holds_for_every_sample_and_tightens_with_correction_steps(boundary):
    from pydiff.evaluation.aposteriori import guaranteed_max_errors

    problem = Problem(lattice=32, radius=3, n_sources=4, min_sources=1, setup="paper2024", diffusivity="inclusions",
                      boundary=boundary)
    images, maps, fields = exact(problem, 6, 4, "direct")
    prediction = damaged(fields, 5)
    for answers in (prediction, fields.astype(np.float64) + 1e-7,
                    *(implied_fields(prediction, images, problem, maps, k, preconditioner="multigrid") for k in (1, 3))):
        bound = guaranteed_max_errors(answers, images, problem, maps)
        assert (np.abs(answers - fields).reshape(6, -1).max(axis=1) <= bound).all()
    refined = implied_fields(prediction, images, problem, maps, 4, preconditioner="multigrid")
    assert guaranteed_max_errors(refined, images, problem, maps).max() < 0.1 < guaranteed_max_errors(
        prediction, images, problem, maps).min()


@pytest.mark.parametrize("boundary", ["dirichlet", "neumann", "periodic"])
def test_the_residual_on_the_device_is_the_numpy_one(boundary):
    import torch

    from pydiff.evaluation.aposteriori import torch_residual
    from pydiff.problem.residual import stationary_residual

    problem = Problem(lattice=20, radius=2, n_sources=3, min_sources=1, setup="paper2024", diffusivity="inclusions",
                      boundary=boundary)
    images, maps, fields = exact(problem, 3, 8, "direct")
    prediction = damaged(fields, 9).astype(np.float64)
    expected, _ = stationary_residual(prediction, images, problem, maps)
    y, img = (torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in (prediction, images))
    got = torch_residual(y, img, problem, torch.as_tensor(maps))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)
    # the multigrid estimate's residual, from its V-cycle's own fine operator (built in float64
    # while the hierarchy below it is float32)
    from pydiff.solvers.torch_mg import TorchMGSolver

    cycle = TorchMGSolver(problem, device="cpu").preconditioner(torch.as_tensor(maps), y)
    np.testing.assert_allclose(torch_residual(y, img, problem, None, cycle.operator).numpy(), expected, atol=1e-12)
