"""The per-instance physics-informed solver on cases with known answers."""

import h5py
import numpy as np

from pydiff.problem import Problem
from pydiff.training.pinn import bilinear, fit_pinn

from .cli import assert_clean_failure, pydiff
from .problems import sine_mode


def test_bilinear_interpolation_by_hand():
    import torch

    image = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    points = torch.tensor([[0.0, 0.0], [0.5, 0.5], [1.0, 0.25], [-1.0, 0.0], [1.5, 1.0]])
    # zero beyond the cells (dirichlet): (-1, 0) is a ghost cell; (1.5, 1) halfway to one
    np.testing.assert_allclose(bilinear(image, points, "dirichlet").numpy(), [0.0, 1.5, 2.25, 0.0, 1.5])
    np.testing.assert_allclose(bilinear(image, points, "neumann").numpy(), [0.0, 1.5, 2.25, 0.0, 3.0])
    np.testing.assert_allclose(bilinear(image, points, "periodic").numpy(), [0.0, 1.5, 2.25, 2.0, 2.0])


def test_a_sine_mode_source_is_its_own_field_and_the_pinn_finds_it(tmp_path):
    # A sine mode of the Dirichlet square is an eigenfunction of the continuous and of the
    # discrete operator alike: its stationary field is the mode itself, normalised.
    L = 16
    image = sine_mode(L, 1, 1)
    problem = Problem(lattice=L, radius=2, n_sources=1)
    field, info = fit_pinn(image, problem, iterations=150, width=16, layers=2, points=64, lr=1e-2)
    exact = image / image.max()
    assert np.abs(field - exact).max() < 0.01, np.abs(field - exact).max()  # 5 steps: 0.16; 150: 1e-3
    assert info["iterations"] == 150 and info["seconds"] > 0


def test_pinn_writes_fields_and_refuses_bad_input(tmp_path):
    L = 12
    np.save(tmp_path / "img.npy", sine_mode(L, 1, 1)[None].repeat(2, axis=0))
    result = pydiff("pinn", "--inputs", tmp_path / "img.npy", "--out", tmp_path / "f.h5", "--iterations", 20,
                    "--width", 8, "--points", 32)
    assert result.returncode == 0, result.stderr
    with h5py.File(tmp_path / "f.h5") as f:
        assert f["field"].shape == (2, L, L) and f["seconds"].shape == (2,)
        np.testing.assert_allclose(f["field"][()].max(axis=(1, 2)), 1.0)
    np.save(tmp_path / "zero.npy", np.zeros((L, L)))
    assert_clean_failure(pydiff("pinn", "--inputs", tmp_path / "zero.npy", "--out", tmp_path / "g.h5"), 2,
                         "zero everywhere")
    assert not (tmp_path / "g.h5").exists()
    assert_clean_failure(pydiff("pinn", "--inputs", tmp_path / "img.npy", "--out", tmp_path / "f.h5"), 2, "exists")
