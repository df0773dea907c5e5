"""The FFT form of the wall conditions' transforms against the dense matrix form, and the torch
solvers that use it against the numpy ones."""

import numpy as np
import pytest
import torch

import pydiff.solvers.torch_transforms as torch_transforms
from pydiff.errors import ConfigError
from pydiff.problem import Problem, sample_sources, source_images
from pydiff.problem.diffusivity import diffusivity_maps
from pydiff.solvers import make_solver
from pydiff.solvers.spectral import basis
from pydiff.solvers.torch_transforms import BOUNDARIES, FFT_FROM, Transform, largest_prime_factor

LATTICES = [1, 2, 5, 8, 17, 24, 100]  # odd, even, prime, and the degenerate cases


def dense(u: np.ndarray, boundary: str) -> tuple[np.ndarray, np.ndarray]:
    """The forward and inverse transforms of (..., L, L) ``u`` by the matrix, in float64."""
    B = basis(u.shape[-1], boundary)
    return B @ u @ B.T, B.T @ u @ B


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("L", LATTICES)
def test_the_fft_form_is_the_matrix_form_in_float64(boundary, L):
    u = np.random.default_rng(L).normal(size=(2, 3, L, L))
    forward, inverse = dense(u, boundary)
    transform = Transform(L, boundary, method="fft")
    for got, expected in ((transform.forward(torch.as_tensor(u)), forward),
                          (transform.inverse(torch.as_tensor(u)), inverse)):
        assert got.dtype == torch.float64 and got.shape == u.shape and got.is_contiguous()
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("L", [5, 24, 100])
def test_the_fft_form_in_float32(boundary, L):
    u = np.random.default_rng(L).normal(size=(3, L, L))
    forward, inverse = dense(u, boundary)
    transform = Transform(L, boundary, dtype=torch.float32, method="fft")
    x = torch.as_tensor(u, dtype=torch.float32)
    for got, expected in ((transform.forward(x), forward), (transform.inverse(x), inverse)):
        assert got.dtype == torch.float32
        np.testing.assert_allclose(got.double().numpy(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("method", ["fft", "matrix"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_orthonormal_each_others_inverse_and_batched(boundary, method):
    L = 17
    u = torch.as_tensor(np.random.default_rng(0).normal(size=(2, 3, L, L)))
    transform = Transform(L, boundary, method=method)
    v = transform.forward(u)
    torch.testing.assert_close(transform.inverse(v), u, rtol=0, atol=1e-13)
    torch.testing.assert_close(transform.forward(transform.inverse(u)), u, rtol=0, atol=1e-13)
    torch.testing.assert_close(v.flatten(-2).norm(dim=-1), u.flatten(-2).norm(dim=-1), rtol=1e-14, atol=0)  # Parseval
    # a batch is its samples, whatever the leading dimensions; one field needs none
    torch.testing.assert_close(v[1, 2], transform.forward(u[1, 2]), rtol=0, atol=1e-14)
    torch.testing.assert_close(transform.forward(u.reshape(6, L, L)), v.reshape(6, L, L), rtol=0, atol=1e-14)
    # and any strides
    torch.testing.assert_close(transform.forward(u.mT), torch.as_tensor(dense(u.mT.numpy(), boundary)[0]), rtol=0,
                               atol=1e-13)
    torch.testing.assert_close(transform.inverse(u[:, ::2]), torch.as_tensor(dense(u[:, ::2].numpy(), boundary)[1]),
                               rtol=0, atol=1e-13)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_a_cpu_batch_transformed_a_block_at_a_time_is_the_whole(boundary, monkeypatch):
    L = 8
    u = torch.as_tensor(np.random.default_rng(1).normal(size=(7, L, L)))
    whole = Transform(L, boundary, method="fft")
    monkeypatch.setattr(torch_transforms, "BLOCK", 3 * L * L)  # blocks of 3, 3 and 1 samples
    blocks = Transform(L, boundary, method="fft")
    for name in ("forward", "inverse"):
        expected = getattr(whole, name)(u)
        torch.testing.assert_close(getattr(blocks, name)(u), expected, rtol=0, atol=1e-14)
        torch.testing.assert_close(getattr(blocks, name)(u[None, :, None]), expected[None, :, None], rtol=0, atol=1e-14)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("L", [5, 6])
def test_gradients_by_finite_differences(boundary, L):
    transform = Transform(L, boundary, method="fft")
    u = torch.as_tensor(np.random.default_rng(L).normal(size=(2, L, L)), dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(transform.forward, (u,))
    assert torch.autograd.gradcheck(transform.inverse, (u,))


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_the_gradient_is_the_transposed_map(boundary):
    # an orthogonal map's adjoint is its inverse: d<w, forward(u)>/du = inverse(w), in float32 too
    L = 12
    rng = np.random.default_rng(3)
    for dtype, tol in ((torch.float64, 1e-13), (torch.float32, 1e-5)):
        transform = Transform(L, boundary, dtype=dtype, method="fft")
        u = torch.as_tensor(rng.normal(size=(2, L, L)), dtype=dtype).requires_grad_()
        w = torch.as_tensor(rng.normal(size=(2, L, L)), dtype=dtype)
        (transform.forward(u) * w).sum().backward()
        torch.testing.assert_close(u.grad, transform.inverse(w), rtol=0, atol=tol)


def test_the_method_choice():
    assert largest_prime_factor(1) == 1 and largest_prime_factor(2 * 513) == 19 and largest_prime_factor(257) == 257
    for boundary in BOUNDARIES:
        assert Transform(64, boundary).method == "matrix"
        assert Transform(512, boundary).method == "fft"
        assert Transform(512, boundary, method="matrix").method == "matrix"
        assert Transform(512, boundary, "meta").method == "matrix"  # not measured off the CPU
    assert Transform(FFT_FROM["periodic"], "periodic").method == "fft"
    assert Transform(FFT_FROM["neumann"], "neumann").method == "fft"
    # not where the FFT's length has a large prime factor: 2 (256 + 1) = 2 * 257, 257, 511 = 7 * 73
    assert Transform(256, "dirichlet").method == "matrix" and Transform(257, "neumann").method == "matrix"
    assert Transform(511, "periodic").method == "matrix"
    assert Transform(512, "periodic", dtype=torch.bfloat16).method == "matrix"
    with pytest.raises(ConfigError, match="transform method"):
        Transform(8, method="dct")
    with pytest.raises(ConfigError, match="float32 or float64"):
        Transform(8, method="fft", dtype=torch.float16)
    with pytest.raises(ConfigError, match="no fast transform for the boundary 'mixed'"):
        Transform(8, "mixed")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_the_fft_form_on_cuda(boundary):
    L = 24
    u = np.random.default_rng(4).normal(size=(3, L, L))
    forward, inverse = dense(u, boundary)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        transform = Transform(L, boundary, "cuda", dtype, method="fft")
        x = torch.as_tensor(u, dtype=dtype, device="cuda")
        np.testing.assert_allclose(transform.forward(x).double().cpu().numpy(), forward, rtol=0, atol=tol)
        np.testing.assert_allclose(transform.inverse(x).double().cpu().numpy(), inverse, rtol=0, atol=tol)


# --- The torch solvers with the FFT form (at these small lattices "auto" takes the matrix form,
# which tests/test_solvers.py and tests/test_varied.py check) -------------------------------------


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_the_torch_spectral_solver_with_ffts_equals_the_numpy_one(boundary):
    problem = Problem(lattice=24, radius=3, boundary=boundary)
    images = source_images(problem, sample_sources(problem, 3, seed=2))
    with make_solver("spectral", problem, method="matrix") as reference:
        expected = reference(images)
    with make_solver("torch", problem, device="cpu") as solver:
        solver.transform = Transform(problem.lattice, boundary, method="fft")
        np.testing.assert_allclose(solver(images), expected, rtol=0, atol=1e-12 * expected.max())


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_torch_cg_with_ffts_equals_the_direct_solver(boundary):
    problem = Problem(lattice=24, radius=3, n_sources=3, min_sources=1, setup="paper2024", diffusivity="inclusions",
                      boundary=boundary)
    images = source_images(problem, sample_sources(problem, 2, 5))
    maps = diffusivity_maps(problem, range(2), 5)
    with make_solver("direct", problem) as direct, make_solver("torch-cg", problem, device="cpu") as solver:
        solver.transform = Transform(problem.lattice, boundary, method="fft")
        expected = direct(images, maps)
        np.testing.assert_allclose(solver(images, maps), expected, rtol=0, atol=1e-8 * np.abs(expected).max())


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_the_constant_inverse_and_its_gradient_do_not_depend_on_the_method(boundary):
    # the physics loss differentiates through it (pydiff.nn.physics)
    problem = Problem(lattice=16, radius=2, boundary=boundary, target="stationary")
    rng = np.random.default_rng(6)
    r = torch.as_tensor(rng.normal(size=(2, 16, 16)), dtype=torch.float32)
    mean_D = torch.tensor([0.5, 2.0])
    with make_solver("torch-cg", problem, device="cpu", dtype=torch.float32) as solver:
        results = []
        for method in ("matrix", "fft"):
            solver.transform = Transform(16, boundary, dtype=torch.float32, method=method)
            x = r.clone().requires_grad_()
            z = solver.constant_inverse(x, mean_D)
            (z * z).sum().backward()
            results.append((z.detach(), x.grad))
        for matrix, fft in zip(*results):
            torch.testing.assert_close(fft, matrix, rtol=1e-5, atol=1e-5 * float(matrix.abs().max()))
