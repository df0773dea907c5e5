"""Darcy flow as the FNO paper poses it: the random field by hand, the field against an
independent finite-volume solve on the unit square, the subsampling, and the measures and the
loss of that literature."""

import math

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg
import torch

from pydiff.datasets.hdf5 import load
from pydiff.datasets.writer import generate
from pydiff.errors import ConfigError
from pydiff.nn.losses import make_loss
from pydiff.problem import Problem
from pydiff.problem.darcy import gaussian_random_field
from pydiff.problem.diffusivity import STREAM

SMALL = dict(lattice=11, solve_lattice=41)


def test_the_random_field_is_the_published_karhunen_loeve_sum():
    s, alpha, tau = 6, 2.0, 3.0
    field = gaussian_random_field(s, np.random.default_rng(5))
    xi = np.random.default_rng(5).standard_normal((s, s))
    x = (np.arange(s) + 0.5) / s  # cell centres: the orthonormal DCT-II's cosine modes
    expected = np.zeros((s, s))
    for k1 in range(s):
        for k2 in range(s):
            if k1 == k2 == 0:
                continue  # the constant mode is zeroed
            coefficient = s * tau ** (alpha - 1) * (math.pi ** 2 * (k1 ** 2 + k2 ** 2) + tau ** 2) ** (-alpha / 2)
            c1, c2 = (math.sqrt((1 if k == 0 else 2) / s) for k in (k1, k2))
            expected += coefficient * xi[k1, k2] * c1 * c2 * np.outer(np.cos(math.pi * k1 * x), np.cos(math.pi * k2 * x))
    np.testing.assert_allclose(field, expected, atol=1e-12)


def unit_square_solution(a: np.ndarray) -> np.ndarray:
    """-div(a grad u) = 1 on the unit square, u = 0 outside, by finite volumes written out here:
    cells of width h = 1/S, the harmonic mean of a on each face between cells, and on each wall
    face a ghost cell at 0 with the cell's own a."""
    S = len(a)
    h = 1.0 / S
    index = np.arange(S * S).reshape(S, S)
    rows, cols, values = [], [], []
    diagonal = np.zeros((S, S))
    for di, dj in ((1, 0), (0, 1)):
        for i in range(S - di):
            for j in range(S - dj):
                g = 2 * a[i, j] * a[i + di, j + dj] / (a[i, j] + a[i + di, j + dj]) / h ** 2
                p, q = index[i, j], index[i + di, j + dj]
                rows += [p, q]
                cols += [q, p]
                values += [-g, -g]
                diagonal[i, j] += g
                diagonal[i + di, j + dj] += g
    # each wall face: the ghost cell at 0 with the cell's own a (the scheme of pydiff.problem.operator)
    for edge in (0, -1):
        diagonal[edge, :] += a[edge, :] / h ** 2
        diagonal[:, edge] += a[:, edge] / h ** 2
    matrix = scipy.sparse.coo_matrix((values, (rows, cols)), shape=(S * S, S * S)).tocsr()
    matrix = matrix + scipy.sparse.diags(diagonal.ravel())
    return scipy.sparse.linalg.spsolve(matrix.tocsc(), np.ones(S * S)).reshape(S, S)


def test_darcy_fields_are_the_unit_square_solution_kept_every_rth_cell(tmp_path):
    problem = Problem.for_setup("darcy", **SMALL)
    assert (problem.D, problem.contrast, problem.gamma, problem.stride) == (3.0, 4.0, 0.0, 4)
    data = load(generate(tmp_path / "d.h5", 3, problem, seed=2, progress=False))
    assert data.inputs.shape == data.fields.shape == data.diffusivity.shape == (3, 11, 11)
    assert (data.inputs == 1).all() and set(np.unique(data.diffusivity)) == {3.0, 12.0}
    for k in range(3):
        rng = np.random.default_rng([2, STREAM, k])
        psi = gaussian_random_field(41, rng)
        a = np.where(psi >= 0, 12.0, 3.0)
        u = unit_square_solution(a)
        np.testing.assert_array_equal(data.diffusivity[k], a[::4, ::4])
        np.testing.assert_allclose(data.fields[k], u[::4, ::4], rtol=1e-5, atol=1e-9)  # u itself, not normalised
        assert data.field_max[k] == pytest.approx(u[::4, ::4].max(), rel=1e-5)


def test_solving_on_the_stored_lattice_directly_and_the_published_variant(tmp_path):
    direct = load(generate(tmp_path / "a.h5", 2, Problem.for_setup("darcy", lattice=21, solve_lattice=21), seed=0,
                           progress=False))
    a = direct.diffusivity[0].astype(np.float64)
    np.testing.assert_allclose(direct.fields[0], unit_square_solution(a), rtol=1e-5)
    published = Problem.for_setup("darcy", D=4.0, contrast=3.0, **SMALL)  # the script's 4 and 12
    assert set(np.unique(load(generate(tmp_path / "b.h5", 2, published, seed=0, progress=False)).diffusivity)) == {4.0, 12.0}


@pytest.mark.parametrize("values, match", [
    (dict(lattice=32), "lattices 85, 141, 211 or 421"),
    (dict(lattice=11, solve_lattice=41, boundary="neumann"), "dirichlet walls"),
    (dict(lattice=11, solve_lattice=41, diffusivity="inclusions"), "darcy diffusivity"),
    (dict(lattice=11, solve_lattice=41, gamma=0.1), "no decay"),  # a decay in lattice units, not the square's
])
def test_impossible_darcy_problems_are_refused(values, match):
    with pytest.raises(ConfigError, match=match):
        Problem.for_setup("darcy", **values)
    with pytest.raises(ConfigError, match="belong to --setup darcy"):
        Problem(lattice=11, solve_lattice=41)


def test_the_relative_l2_loss_is_the_mean_over_samples_in_both_reductions():
    target = torch.stack([torch.full((1, 4, 4), 0.01), torch.full((1, 4, 4), 2.0)])
    prediction = target * torch.tensor([1.1, 0.5])[:, None, None, None]  # 10 % and 50 % off
    assert float(make_loss("rel-L2", 1.0)(prediction, target)) == pytest.approx(0.3)
    summed = make_loss("rel-L2", 1.0, reduction="sum")(prediction, target)
    assert float(summed) / (2 * 16) == pytest.approx(0.3)  # what the trainer divides by: batch x pixels


def test_the_halving_schedule_and_the_field_scale():
    from pydiff.training.config import config_for
    from pydiff.training.step import lr_at

    config = config_for(None, "darcy85", lr_halve_every=3, epochs=10)
    assert [lr_at(config, e) for e in (0, 2, 3, 8, 9)] == [1e-3, 1e-3, 5e-4, 2.5e-4, 1.25e-4]
    pytest.importorskip("neuralop")
    from pydiff.nn.build import build_model

    model = build_model(config_for(None, "darcy85", width=1 / 32, fno_modes=4, in_channels=2))
    plain = model.network
    x = torch.rand(2, 2, 11, 11)
    torch.testing.assert_close(model(x), 0.01 * plain(x))


def test_what_needs_normalised_fields_refuses_darcy_flow_in_one_line(tmp_path):
    from pydiff.nn.physics import PhysicsLoss
    from pydiff.problem.residual import stationary_residual

    from .cli import assert_clean_failure, pydiff

    problem = Problem.for_setup("darcy", **SMALL)
    with pytest.raises(ConfigError, match="Darcy flow's fields are u itself"):
        stationary_residual(np.ones((1, 11, 11)), np.ones((1, 11, 11)), problem, np.full((1, 11, 11), 3.0))
    with pytest.raises(ConfigError, match="without --physics-weight"):
        PhysicsLoss(problem)
    from pydiff.evaluation.aposteriori import implied_fields

    with pytest.raises(ConfigError, match="Darcy flow's fields are u itself"):  # the estimate, called directly
        implied_fields(np.ones((1, 11, 11)), np.ones((1, 11, 11)), problem, np.full((1, 11, 11), 3.0), 1)
    data = generate(tmp_path / "d.h5", 30, problem, seed=0, progress=False)
    result = pydiff("train", "--preset", "darcy85", "--data", data, "--out", tmp_path / "run", "--epochs", 1,
                    "--network", "encdec", "--width", 1 / 32)
    assert result.returncode == 0, result.stderr
    assert "relative L2" in pydiff("evaluate", tmp_path / "run").stdout
    assert_clean_failure(pydiff("calibrate", tmp_path / "run", "--alpha", 0.5), 2, "Darcy flow's fields are u itself")


def test_the_darcy85_fno_keeps_the_fno_papers_modes():
    # The paper's 12 modes: frequencies -12..11 by 0..11 per layer (its weights1 and weights2);
    # neuraloperator counts both signs, so n_modes 24 (12 kept a quarter of them)
    pytest.importorskip("neuralop")
    from pydiff.nn.build import build_model
    from pydiff.training.config import config_for

    model = build_model(config_for(None, "darcy85", in_channels=2)).network
    weight = model.fno_blocks.convs[0].weight
    shape = tuple((weight.tensor if hasattr(weight, "tensor") else weight).shape)
    assert shape == (32, 32, 24, 13)
