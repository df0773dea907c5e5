"""Every backend against closed forms, dense linear algebra, and each other."""

import numpy as np
import pytest

from pydiff.errors import ConfigError
from pydiff.problem import Problem, sample_sources, source_images
from pydiff.solvers import BACKENDS, make_solver, normalise, solve
from pydiff.solvers.timestep import apply_operator

from . import problems

PRODUCTION_BACKENDS = ["spectral", "timestep", "direct"]
TRANSIENT_BACKENDS = ["spectral", "timestep"]  # those that integrate to a finite t_max


# Tight tolerances where a test checks the transient itself (RKC2's global error ~ rtol^(2/3)).
TIGHT = {"spectral": {}, "timestep": {"rtol": 1e-9, "atol": 1e-11}, "direct": {}}


def run(backend, problem, images, **options):
    with make_solver(backend, problem, **options) as solver:
        return solver(np.asarray(images)[None] if np.ndim(images) == 2 else np.asarray(images))


def test_registry_names_every_backend():
    assert set(BACKENDS) == {"spectral", "timestep", "direct", "julia", "torch", "multigrid", "torch-cg", "torch-mg"}
    with pytest.raises(ConfigError, match="unknown backend 'fourier'"):
        make_solver("fourier", Problem())


def test_operator_matches_dense_matrix(small_problem, rng):
    u = rng.random((2, small_problem.lattice, small_problem.lattice))
    K = problems.dense_operator(small_problem)
    L = small_problem.lattice
    expected = (K @ u.reshape(2, L * L).T).T.reshape(2, L, L)
    np.testing.assert_allclose(apply_operator(u.copy(), small_problem.D, small_problem.gamma), expected, atol=1e-13)


@pytest.mark.parametrize("backend", TRANSIENT_BACKENDS)
@pytest.mark.parametrize("t_max", [0.5, 20.0, 3000.0])
@pytest.mark.parametrize("mode", [(1, 1), (3, 2), (7, 11)])
def test_single_sine_mode_in_time(backend, t_max, mode):
    problem = Problem(lattice=16, radius=2, t_max=t_max, gamma=0.01)
    source, exact = problems.sine_mode_solution(problem, *mode)
    u = run(backend, problem, source, **TIGHT[backend])[0]
    tol = 1e-12 if backend == "spectral" else 5e-7
    np.testing.assert_allclose(u, exact, atol=tol * np.abs(exact).max())


def test_timestep_converges_as_tolerance_tightens():
    problem = Problem(lattice=16, radius=2, t_max=20.0, gamma=0.01)
    source, exact = problems.sine_mode_solution(problem, 1, 1)
    errors = [np.abs(run("timestep", problem, source, rtol=r, atol=r / 100)[0] - exact).max() for r in (1e-6, 1e-8)]
    assert errors[1] < errors[0] / 5


@pytest.mark.parametrize("mode", [(1, 1), (5, 2)])
def test_direct_single_sine_mode_is_steady_state(mode):
    problem = Problem(lattice=16, radius=2, gamma=0.01)
    source = problems.sine_mode(16, *mode)
    steady = source / -problems.sine_mode_eigenvalue(problem, *mode)
    np.testing.assert_allclose(run("direct", problem, source)[0], steady, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", TRANSIENT_BACKENDS)
def test_transient_against_dense_matrix_exponential(backend, rng):
    problem = Problem(lattice=7, radius=1, t_max=1.5, gamma=0.3, D=0.7)
    source = rng.random((7, 7))
    exact = problems.dense_solution(problem, source)
    tol = 1e-11 if backend == "spectral" else 5e-7
    np.testing.assert_allclose(run(backend, problem, source, **TIGHT[backend])[0], exact, atol=tol * np.abs(exact).max())


@pytest.mark.parametrize("backend", PRODUCTION_BACKENDS)
def test_point_source_symmetry(backend):
    L, c = 15, 8  # the centre cell of an odd lattice
    u = run(backend, Problem(lattice=L, radius=2, t_max=500.0), problems.point_source(L, c, c))[0]
    assert u.argmax() == np.ravel_multi_index((c - 1, c - 1), (L, L))
    for image in (u.T, u[::-1, :], u[:, ::-1], np.rot90(u)):
        np.testing.assert_allclose(image, u, rtol=1e-7, atol=1e-12)
    # The field decays away from the source along every axis.
    assert np.all(np.diff(u[c - 1, c - 1 :]) < 0)


@pytest.mark.parametrize("backend", PRODUCTION_BACKENDS)
def test_off_centre_source_keeps_its_orientation(backend):
    """A source at x = 3, y = 10 peaks at array index [2, 9], not its transpose."""
    u = run(backend, Problem(lattice=15, radius=2), problems.point_source(15, 3, 10))[0]
    assert np.unravel_index(u.argmax(), u.shape) == (2, 9)


@pytest.mark.parametrize("backend", PRODUCTION_BACKENDS)
def test_linearity_in_the_source_image(backend, small_problem, rng):
    L = small_problem.lattice
    a, b = rng.random((2, L, L))
    u = run(backend, small_problem, np.stack([a, b, 2.0 * a - 3.0 * b]))
    np.testing.assert_allclose(u[2], 2.0 * u[0] - 3.0 * u[1], atol=1e-6 * np.abs(u).max())


def test_backends_agree_on_random_paper_inputs():
    """The paper's problem: the three Python backends give the same normalised field to 1e-5."""
    problem = Problem()
    images = source_images(problem, sample_sources(problem, 3, seed=7))
    fields = {name: solve(images, problem, name)[0] for name in PRODUCTION_BACKENDS}
    for name in ("timestep", "direct"):
        assert np.abs(fields[name] - fields["spectral"]).max() <= 1e-5, name


def test_spectral_is_batch_independent(small_problem):
    images = source_images(small_problem, sample_sources(small_problem, 6, seed=3))
    together = run("spectral", small_problem, images)
    alone = np.concatenate([run("spectral", small_problem, images[k : k + 1]) for k in range(6)])
    np.testing.assert_allclose(together, alone, rtol=1e-13, atol=1e-13)


def test_clamped_steady_state_against_dense_solve():
    problem = Problem(lattice=12, radius=2, source_model="clamped")
    images = source_images(problem, sample_sources(problem, 2, seed=5)).astype(np.float64)
    u = run("direct", problem, images)
    for k in range(2):
        np.testing.assert_allclose(u[k], problems.dense_clamped_steady_state(problem, images[k]), atol=1e-12)
        held = images[k] > 0
        np.testing.assert_array_equal(u[k][held], images[k][held])


@pytest.mark.parametrize("backend", ["spectral", "timestep"])
def test_clamped_needs_the_direct_backend(backend):
    with pytest.raises(ConfigError, match="cannot solve source model 'clamped'.*direct"):
        make_solver(backend, Problem(source_model="clamped"))


def test_normalise_gives_unit_maximum(rng):
    u = rng.random((3, 5, 5)) * np.array([2.0, 5.0, 0.5])[:, None, None]
    fields, field_max = normalise(u)
    assert fields.dtype == np.float32 and field_max.dtype == np.float32
    np.testing.assert_allclose(fields.max(axis=(1, 2)), 1.0)
    np.testing.assert_allclose(fields * field_max[:, None, None], u, rtol=1e-6)
    u32 = u.astype(np.float32)
    same, same_max = normalise(u32.copy(), in_place=True)
    np.testing.assert_array_equal(same, normalise(u32)[0])
    np.testing.assert_array_equal(same_max, normalise(u32)[1])
    kept = u.copy()
    normalise(kept, in_place=True)  # float64 is never overwritten: the fields are a new float32 array
    np.testing.assert_array_equal(kept, u)


def test_wrong_image_shape_is_a_config_error(small_problem):
    with pytest.raises(ConfigError, match=r"shape \(batch, 24, 24\)"):
        run("spectral", small_problem, np.zeros((2, 10, 10)))


def many_source_images(L, counts, seed=0):
    """Images of 1-20 radius-5 disks with amplitudes in [0.01, 1], added up (the 2024 recipe)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[1 : L + 1, 1 : L + 1]
    images = np.zeros((len(counts), L, L))
    for s, k in enumerate(counts):
        for _ in range(k):
            cx, cy = rng.integers(5, L - 4, 2)
            images[s] += rng.uniform(0.01, 1.0) * (((x - cx) ** 2 + (y - cy) ** 2) <= 25)
        images[s] /= images[s].max()
    return images.astype(np.float32)


@pytest.mark.parametrize("L", [100, 131])
def test_fft_and_matrix_forms_of_the_spectral_solver_agree(L):
    images = many_source_images(L, [1, 2, 7, 20])
    fft, _ = solve(images, Problem(lattice=L), "spectral", method="fft")
    matrix, _ = solve(images, Problem(lattice=L), "spectral", method="matrix")
    assert np.abs(fft - matrix).max() < 2e-6


def test_fields_at_L128_with_1_to_20_sources_equal_an_independent_sparse_solve():
    # The sparse LU steady state differs from u(3000) by the transient left at t = 3000, ~7e-6 here.
    problem = Problem(lattice=128)
    images = many_source_images(128, [1, 2, 5, 10, 15, 20], seed=3)
    fft, _ = solve(images, problem, "spectral", method="fft")
    sparse, _ = solve(images, problem, "direct")
    assert np.abs(fft - sparse).max() < 1e-5


def test_spectral_method_choice():
    assert make_solver("spectral", Problem()).method == "matrix"
    assert make_solver("spectral", Problem(lattice=300)).method == "fft"
    with pytest.raises(ConfigError, match="spectral method"):
        make_solver("spectral", Problem(), method="dct")


TORCH_DEVICES = ["cpu"] + (["cuda"] if __import__("torch").cuda.is_available() else [])


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("L", [24, 100])
def test_the_torch_spectral_solver_equals_the_numpy_one(device, L):
    import torch

    problem = Problem(lattice=L, radius=3 if L < 50 else 5)
    images = source_images(problem, sample_sources(problem, 5, seed=2))
    with make_solver("spectral", problem) as reference, make_solver("torch", problem, device=device) as solver:
        expected = reference(images)
        on_device = solver.fields_of(torch.as_tensor(images, device=device))
        assert on_device.device.type == device and on_device.dtype == torch.float64
        np.testing.assert_allclose(on_device.cpu().numpy(), expected, rtol=1e-12, atol=1e-12 * expected.max())
        np.testing.assert_allclose(solver(images), expected, rtol=1e-12, atol=1e-12 * expected.max())


def test_each_wrong_diffusivity_map_is_told_apart_in_one_line():
    # one message for all three: "diffusivity maps must be positive and shaped like the images",
    # even for the unwritten (zero) rows of an incomplete data file
    problem = Problem(lattice=12, radius=2, n_sources=2, min_sources=1, setup="paper2024", diffusivity="inclusions",
                      target="stationary")
    images = source_images(problem, sample_sources(problem, 3, seed=0))

    def maps(k=None, value=None):
        out = np.ones((3, 12, 12))
        if k is not None:
            out[k] = 0.0 if value == "row" else 1.0
            if value != "row":
                out[k, 4, 5] = value
        return out

    cases = [(maps()[:2], r"diffusivity maps of shape \(2, 12, 12\) for images of shape \(3, 12, 12\)"),
             (maps(1, "row"), "diffusivity map 1 is all zero: an incomplete data file"),
             (maps(2, np.nan), "diffusivity map 2 holds NaN"),
             (maps(0, -0.5), r"diffusivity map 0 holds a value <= 0 \(-0.5\)")]
    with make_solver("direct", problem) as solver:
        np.testing.assert_array_equal(solver(images, maps()).shape, (3, 12, 12))
        for bad, message in cases:
            with pytest.raises(ConfigError, match=message) as error:
                solver(images, bad)
            assert "\n" not in str(error.value)
        assert solver(images[:0], maps()[:0]).shape == (0, 12, 12)  # no samples, nothing to refuse
