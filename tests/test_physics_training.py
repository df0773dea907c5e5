"""Learning from the equation: the physics loss, training with few or no labels."""

import numpy as np
import pytest
import torch

from pydiff.datasets.batches import PartlyLabelled, TensorSamples
from pydiff.datasets.writer import generate
from pydiff.errors import ConfigError
from pydiff.nn.physics import PhysicsLoss
from pydiff.problem import Problem, sample_sources, source_images
from pydiff.problem.diffusivity import diffusivity_channel, diffusivity_maps
from pydiff.solvers import make_solver, normalise
from pydiff.training.config import config_for
from pydiff.training.run import labelled_positions, train
from pydiff.training.step import loss_function

from .cli import assert_clean_failure, pydiff


def exact_batch(problem: Problem, n: int, seed: int, backend: str):
    images = source_images(problem, sample_sources(problem, n, seed))
    maps = None if problem.diffusivity == "constant" else diffusivity_maps(problem, range(n), seed)
    with make_solver(backend, problem) as solver:
        fields, _ = normalise(solver(images, maps))
    x = images[:, None]
    if maps is not None:
        x = np.concatenate([x, diffusivity_channel(maps, problem)[:, None]], axis=1)
    return torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(fields[:, None], dtype=torch.float64)


@pytest.mark.parametrize("problem, backend", [
    (Problem(lattice=32, radius=3, n_sources=2), "spectral"),  # the papers' problem: u(t_max)
    (Problem(lattice=32, radius=3, n_sources=4, min_sources=1, setup="paper2024", diffusivity="inclusions"), "direct"),
    (Problem(lattice=32, radius=3, n_sources=4, min_sources=1, setup="paper2024", boundary="neumann"), "spectral"),
], ids=["papers", "inclusions", "neumann"])
def test_the_physics_loss_is_zero_on_exact_fields_and_positive_on_perturbed_ones(problem, backend):
    x, fields = exact_batch(problem, 4, 1, backend)
    loss = PhysicsLoss(problem)
    assert loss(fields, x).max() < 1e-8  # the t_max transient and the float32 channel: ~1e-12
    bumped = fields + 0.01 * torch.sin(torch.arange(32.0, dtype=torch.float64) / 3)[None, None, :, None]
    assert (loss(bumped, x) > 1e-4).all()
    assert (loss(2 * fields, x) - 1).abs().max() < 1e-6  # right shape, wrong scale: the peak term, (2 - 1)^2
    assert (loss(torch.zeros_like(fields), x) == 1).all()  # the zero field is no answer


def test_a_sample_without_a_label_adds_only_its_physics_loss(small_problem):
    x, fields = exact_batch(small_problem, 4, 2, "spectral")
    config = config_for(None, "smoke", network="encdec", physics_weight=0.5, labels=0.5, loss="MSE", w=1000.0)
    total = loss_function(config, small_problem)
    prediction = (fields + 0.05).requires_grad_()
    hidden = fields.clone()
    hidden[2:] = float("nan")
    pixels = 24 * 24
    physics = 0.5 * pixels * PhysicsLoss(small_problem)(prediction, x).sum()
    data = (torch.exp(-(1 - fields[:2]) / 1000.0) * (prediction[:2] - fields[:2]) ** 2).sum()
    value = total(prediction, hidden, x)
    assert torch.isclose(value, physics + data, rtol=1e-9)
    value.backward()
    assert torch.isfinite(prediction.grad).all()  # NaN labels never reach the gradient


def test_the_labelled_samples_are_a_seeded_fraction():
    keep = labelled_positions(100, 0.25, seed=3)
    assert keep.sum() == 25 and np.array_equal(keep, labelled_positions(100, 0.25, seed=3))
    assert not np.array_equal(keep, labelled_positions(100, 0.25, seed=4))
    samples = PartlyLabelled(TensorSamples(torch.zeros(6, 1, 2, 2), torch.ones(6, 1, 2, 2)),
                             np.array([1, 0, 1, 0, 0, 1], dtype=bool))
    (_, y), = samples.epoch_batches(0, [torch.tensor([5, 1, 0])])
    assert torch.isfinite(y[:, 0, 0, 0]).tolist() == [True, False, True]


def test_physics_only_training_runs_no_solver_at_all(tmp_path, monkeypatch):
    problem = Problem(lattice=32, radius=3, n_sources=4, min_sources=1, setup="paper2024", diffusivity="inclusions")
    data = generate(tmp_path / "d.h5", 30, problem, seed=0, progress=False)
    from pydiff.solvers import torch_cg, torch_mg

    def no_solver(*args, **kwargs):
        raise AssertionError("a solver ran in physics-only training")

    for solver in (torch_cg.TorchCGSolver, torch_mg.TorchMGSolver):  # online samples are solved by torch-mg
        monkeypatch.setattr(solver, "fields_of", no_solver)
    config = config_for(None, "quick-varied", data=str(data), n_samples=30, width=1 / 32, epochs=6, batch_size=6,
                        training_data="online", labels=0.0, physics_weight=1.0, lr=1e-2)
    result = train(config, tmp_path / "run", progress=False)
    import pandas as pd

    log = pd.read_csv(tmp_path / "run" / "log.csv")
    # it learns from the equation alone: the held-out physics loss (the same samples each epoch) falls
    assert log.val_loss.iloc[-1] < 0.95 * log.val_loss.iloc[0]
    assert result.epochs_run == 6


def test_label_options_are_checked_in_one_line(tmp_path):
    data = generate(tmp_path / "d.h5", 20, Problem(lattice=24, radius=3, n_sources=2), seed=0, progress=False)
    common = ("train", "--network", "encdec", "--preset", "smoke", "--data", data)
    assert_clean_failure(pydiff(*common, "--out", tmp_path / "a", "--labels", "some"), 2, "--labels takes all, none")
    assert_clean_failure(pydiff(*common, "--out", tmp_path / "b", "--labels", "none"), 2, "--physics-weight > 0")
    assert_clean_failure(pydiff(*common, "--out", tmp_path / "c", "--labels", "0.5", "--physics-weight", "1",
                                "--training-data", "online"), 2, "all labelled or none")
    assert_clean_failure(pydiff(*common, "--out", tmp_path / "d", "--physics-weight", "-1"), 2, "physics weight")


def test_the_physics_loss_without_its_problem_is_a_config_error():
    config = config_for(None, "quick2024", physics_weight=1.0)
    with pytest.raises(ConfigError, match="the physics loss needs the problem"):
        loss_function(config, None)
