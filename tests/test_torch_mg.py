"""torch-mg: CG preconditioned by a geometric multigrid V-cycle.  Its fields against sparse LU and
the spectral closed form, its coarse operators against the dense Galerkin product, the V-cycle's
symmetry (what makes CG valid), and iteration counts that do not grow with the lattice."""

import numpy as np
import pytest
import torch

from pydiff.errors import NotConverged
from pydiff.problem import Problem, sample_sources, source_images
from pydiff.problem.diffusivity import diffusivity_maps
from pydiff.solvers import make_solver, normalise, resolve_backend
from pydiff.solvers.torch_mg import Interpolation, TorchMGSolver, VCycle, fine_stencil, galerkin, ghosts

BOUNDARIES = ("dirichlet", "neumann", "periodic")


def varied(lattice=40, boundary="dirichlet", diffusivity="inclusions", contrast=10.0, sources="disks"):
    return Problem(lattice=lattice, radius=max(2, lattice // 16), n_sources=4, min_sources=1, setup="paper2024",
                   diffusivity=diffusivity, contrast=contrast, boundary=boundary, gamma=1 / 400, target="stationary",
                   sources=sources)


def inputs(problem, n=3, seed=7):
    return source_images(problem, sample_sources(problem, n, seed)), diffusivity_maps(problem, range(n), seed)


def dense(apply, n_in: int, batch: int) -> torch.Tensor:
    """The (batch, out, n_in^2) matrices of a linear map of (batch, n_in, n_in) fields, column by column."""
    columns = []
    for k in range(n_in * n_in):
        unit = torch.zeros(batch, n_in * n_in, dtype=torch.float64)
        unit[:, k] = 1.0
        columns.append(apply(unit.reshape(batch, n_in, n_in)).reshape(batch, -1))
    return torch.stack(columns, dim=-1)


def operator(stencil):
    """``u -> A u`` for (b, n, n) fields, through the ghost ring the stencil reads."""
    def apply(u):
        x = torch.nn.functional.pad(u, (1, 1, 1, 1))
        ghosts(x, stencil.periodic)
        return stencil.times(x)
    return apply


def prolongation(P):
    """``uc -> P uc`` as one (b, n, n) field (the V-cycle keeps it by sublattice)."""
    def apply(uc):
        out = uc.new_zeros(uc.shape[0], P.n, P.n)
        P.prolong(uc, {(p, q): out[:, p::2, q::2] for p in (0, 1) for q in (0, 1)})
        return out
    return apply


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("diffusivity", ["constant", "inclusions", "lognormal"])
def test_fields_equal_sparse_lu(boundary, diffusivity):
    problem = varied(40, boundary, diffusivity, contrast=1000.0 if diffusivity == "inclusions" else 30.0,
                     sources="mixed")
    images, maps = inputs(problem)
    with make_solver("direct", problem) as direct, make_solver("torch-mg", problem, device="cpu", chunk=2) as mg:
        exact = normalise(direct(images, maps))[0]
        assert np.abs(normalise(mg(images, maps))[0] - exact).max() < 1e-6


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_an_odd_lattice_equals_sparse_lu(boundary):
    """45 -> 23 -> 12: both edge cells coarse on every level; on a ring the wrap joins two coarse
    cells, on the fine 5-point level and on the 9-point one below it."""
    problem = varied(45, boundary, contrast=1000.0)
    images, maps = inputs(problem)
    with make_solver("direct", problem) as direct, make_solver("torch-mg", problem, device="cpu") as mg:
        assert np.abs(normalise(mg(images, maps))[0] - normalise(direct(images, maps))[0]).max() < 1e-6


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_constant_d_is_the_spectral_field(boundary):
    problem = varied(36, boundary, "constant")
    images, _ = inputs(problem)
    with make_solver("spectral", problem, method="matrix") as spectral, \
            make_solver("torch-mg", problem, device="cpu") as mg:
        reference = spectral(images)
        np.testing.assert_allclose(mg(images), reference, rtol=0, atol=1e-8 * np.abs(reference).max())


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("n", [13, 14, 26])
def test_coarse_operators_are_the_galerkin_product(boundary, n):
    """``galerkin`` sums P^T A P cell by cell; here against the dense product, on the 5-point fine
    level and (26 -> 13 -> 7) on a 9-point one, odd and even, every wall."""
    D = torch.exp(2 * torch.randn(2, n, n, generator=torch.Generator().manual_seed(n), dtype=torch.float64))
    stencil = fine_stencil(D, 1 / 400, boundary)
    if n == 26:
        stencil = galerkin(stencil, Interpolation(stencil))
    P = Interpolation(stencil)
    m, nc = stencil.n, P.nc
    dense_P = dense(prolongation(P), nc, 2)
    expected = dense_P.transpose(1, 2) @ dense(operator(stencil), m, 2) @ dense_P
    coarse = dense(operator(galerkin(stencil, P)), nc, 2)
    assert (coarse - expected).abs().max() < 1e-13 * expected.abs().max()
    assert torch.equal(coarse, coarse.transpose(1, 2))


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_the_v_cycle_is_symmetric_positive_definite(boundary):
    """``<x, M y> = <M x, y>`` and ``<x, M x> > 0``: what CG's preconditioner must be (in
    float64; the float32 cycle is so to its rounding)."""
    problem = varied(45, boundary, contrast=1000.0)
    _, maps = inputs(problem, n=2)
    M = VCycle(torch.as_tensor(maps), problem.gamma, boundary, dtype=torch.float64)
    assert len(M.levels) == 2
    generator = torch.Generator().manual_seed(3)
    x, y = (torch.randn(2, 45, 45, generator=generator, dtype=torch.float64) for _ in range(2))
    xMy, Mxy = (x * M(y)).sum(dim=(1, 2)), (M(x) * y).sum(dim=(1, 2))
    assert ((xMy - Mxy).abs() <= 1e-10 * xMy.abs()).all()
    assert ((x * M(x)).sum(dim=(1, 2)) > 0).all()


@pytest.mark.parametrize("boundary", ["dirichlet", "periodic"])
@pytest.mark.parametrize("contrast, most", [(10.0, 15), (1000.0, 30)])
def test_iterations_are_few_and_do_not_grow_with_the_lattice(boundary, contrast, most):
    counts = {}
    for L in (32, 64):
        problem = varied(L, boundary, contrast=contrast)
        images, maps = (torch.as_tensor(a) for a in inputs(problem, n=2, seed=3))
        solver, counts[L] = TorchMGSolver(problem, device="cpu"), 0
        for k in range(2):  # one at a time: a batch runs until its slowest sample is done
            solver.fields_of(images[k:k + 1], maps[k:k + 1])
            counts[L] = max(counts[L], solver.iterations)
    assert max(counts.values()) <= most and abs(counts[64] - counts[32]) <= 2, counts


def test_a_warm_start_from_the_answer_takes_at_most_one_iteration():
    problem = varied(40, "neumann", contrast=1000.0)
    images, maps = inputs(problem)
    with make_solver("direct", problem) as direct:
        exact = direct(images, maps)
    solver = TorchMGSolver(problem, device="cpu")
    u = solver.fields_of(torch.as_tensor(images), torch.as_tensor(maps), torch.as_tensor(exact))
    assert solver.iterations <= 1
    np.testing.assert_allclose(u.numpy(), exact, rtol=0, atol=1e-9 * np.abs(exact).max())
    solver.fields_of(torch.as_tensor(images), torch.as_tensor(maps))
    assert solver.iterations >= 8  # from zero


def test_too_few_iterations_raise_not_converged():
    problem = varied(40)
    images, maps = inputs(problem)
    with pytest.raises(NotConverged, match="torch-mg did not reach a relative residual of 1e-10 in 2 iterations"):
        TorchMGSolver(problem, device="cpu", max_iterations=2)(images, maps)


def test_approximate_gains_about_a_digit_per_step():
    problem = varied(40, "periodic", contrast=1000.0)
    images, maps = (torch.as_tensor(a) for a in inputs(problem))
    solver = TorchMGSolver(problem, device="cpu")
    exact = solver.fields_of(images, maps)
    errors = [float(((solver.approximate(images, maps, k) - exact).norm() / exact.norm())) for k in range(3)]
    assert errors[0] < 0.3 and errors[1] < errors[0] / 5 and errors[2] < errors[1] / 5, errors


def test_auto_takes_torch_mg_above_64_cells_where_d_varies():
    assert resolve_backend("auto", varied(64)) == "direct"
    assert resolve_backend("auto", varied(65)) == "torch-mg"
    assert resolve_backend("auto", varied(512, diffusivity="constant")) == "spectral"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_fields():
    problem = varied(45, "periodic", contrast=1000.0)
    images, maps = (torch.as_tensor(a) for a in inputs(problem))
    cpu = TorchMGSolver(problem, device="cpu").fields_of(images, maps)
    cuda = TorchMGSolver(problem, device="cuda").fields_of(images.cuda(), maps.cuda())
    assert (cuda.cpu() - cpu).abs().max() < 1e-8 * cpu.abs().max()
