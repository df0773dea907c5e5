"""The per-instance physics-informed solver on cases with known answers."""

import h5py
import numpy as np
import pytest

from pydiff.problem import Problem
from pydiff.solvers.pinn import bilinear, fit_pinn

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
                         "image 0 is all zero")
    assert not (tmp_path / "g.h5").exists()
    assert_clean_failure(pydiff("pinn", "--inputs", tmp_path / "img.npy", "--out", tmp_path / "f.h5"), 2, "exists")


def quick(*args):
    """``pydiff pinn ARGS`` at a size that runs in a blink."""
    return pydiff("pinn", *args, "--iterations", 5, "--width", 4, "--points", 8)


@pytest.mark.parametrize("lr", ["-1", "0", "nan", "inf"])
def test_pinn_refuses_a_learning_rate_that_is_not_a_positive_number(tmp_path, lr):
    np.save(tmp_path / "img.npy", sine_mode(12, 1, 1))
    assert_clean_failure(quick("--inputs", tmp_path / "img.npy", "--out", tmp_path / "f.h5", "--lr", lr), 2,
                         f"--lr must be a positive number, got {float(lr):g}")
    assert not (tmp_path / "f.h5").exists()


def test_a_diverging_fit_is_an_error_not_a_file_of_nan(tmp_path):
    np.save(tmp_path / "img.npy", sine_mode(12, 1, 1))
    result = quick("--inputs", tmp_path / "img.npy", "--out", tmp_path / "f.h5", "--lr", 1e30)
    # stderr holds the fit's progress bar too: the error is its last line
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "image 0: the fit diverged" in result.stderr.splitlines()[-1] and "lower --lr" in result.stderr
    assert not (tmp_path / "f.h5").exists()


def test_pinn_messages_name_only_its_own_options(tmp_path):
    # An 8 x 8 image was refused for a source radius of 5, an option pinn does not have.
    np.save(tmp_path / "img.npy", sine_mode(8, 1, 1))
    result = quick("--inputs", tmp_path / "img.npy", "--out", tmp_path / "f.h5")
    assert result.returncode == 0, result.stderr


def test_pinn_refuses_a_data_file_of_another_equation_than_it_solves(tmp_path):
    from pydiff.datasets.writer import generate

    common = {"lattice": 12, "radius": 2, "n_sources": 1, "setup": "paper2024"}
    for problem, match in [
        (Problem(**common, diffusivity="inclusions"), "holds diffusivity maps; pinn solves a constant D"),
        (Problem(**common, boundary="mixed"), "walls of each sample"),
        (Problem(**common, boundary="neumann"), "boundary 'neumann' (expected 'dirichlet')"),
        (Problem(**common, D=0.5, gamma=0.01, target="stationary"), "D 0.5 (expected 1.0), gamma 0.01 (expected 0.0025)"),
    ]:
        data = generate(tmp_path / f"{problem.boundary}-{problem.diffusivity}-{problem.D}.h5", 3, problem, progress=False)
        assert_clean_failure(quick("--inputs", data, "--out", tmp_path / "f.h5"), 2, match)
        assert not (tmp_path / "f.h5").exists()
    # given the file's own equation, it solves it
    result = quick("--inputs", data, "--out", tmp_path / "f.h5", "--D", 0.5, "--gamma", 0.01)
    assert result.returncode == 0, result.stderr
