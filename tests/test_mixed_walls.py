"""Each sample's walls, where a data set mixes them: the residual, the a-posteriori estimate,
the physics loss and online samples all use the operator of the sample's own walls."""

import numpy as np
import pytest
import torch

from pydiff.datasets.batches import STREAM, OnlineSamples
from pydiff.datasets.hdf5 import load
from pydiff.datasets.writer import generate
from pydiff.evaluation.aposteriori import implied_fields
from pydiff.nn.physics import PhysicsLoss
from pydiff.problem import Problem
from pydiff.problem.diffusivity import diffusivity_channel
from pydiff.problem.residual import stationary_residual
from pydiff.problem.walls import for_each_wall, sample_walls, wall_planes, wall_problem, walls_from_planes
from pydiff.solvers import make_solver, normalise

MIXED = Problem(lattice=24, radius=3, n_sources=3, min_sources=1, setup="paper2024", diffusivity="inclusions",
                boundary="mixed")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    data = load(generate(tmp_path_factory.mktemp("mixed") / "m.h5", 12, MIXED, seed=4, progress=False))
    assert set(data.walls.tolist()) == {0, 1, 2}
    return data


def wrong(walls):
    return (walls + 1) % 3  # every sample given another wall condition


def test_for_each_wall_puts_results_back_in_sample_order():
    walls = np.array([2, 0, 1, 0, 2])
    values = np.arange(5.0)
    out = for_each_wall(MIXED, walls, lambda one, v: v * 10 + ["dirichlet", "neumann", "periodic"].index(one.boundary),
                        values)
    np.testing.assert_array_equal(out, values * 10 + walls)
    planes = wall_planes(walls, 4)
    np.testing.assert_array_equal(walls_from_planes(planes), walls)
    np.testing.assert_array_equal(walls_from_planes(torch.from_numpy(planes)), walls)


def test_the_residual_and_the_estimate_vanish_on_exact_fields_only_with_each_samples_walls(mixed):
    residual, _ = stationary_residual(mixed.fields, mixed.inputs, MIXED, mixed.diffusivity, mixed.walls)
    assert np.abs(residual).max() < 1e-5  # the float32 fields' rounding, times D up to 10
    other, _ = stationary_residual(mixed.fields, mixed.inputs, MIXED, mixed.diffusivity, wrong(mixed.walls))
    assert np.abs(other).max() > 1e-3
    implied = implied_fields(mixed.fields, mixed.inputs, MIXED, mixed.diffusivity, iterations=3, walls=mixed.walls)
    np.testing.assert_allclose(implied, mixed.fields, atol=1e-5)
    # a perturbed prediction: the estimate with each sample's walls is the per-wall estimate
    noisy = mixed.fields + 0.01 * np.sin(np.arange(24))[None, :, None]
    together = implied_fields(noisy, mixed.inputs, MIXED, mixed.diffusivity, iterations=3, walls=mixed.walls)
    for k in range(len(noisy)):
        alone = implied_fields(noisy[k:k + 1], mixed.inputs[k:k + 1], wall_problem(MIXED, mixed.walls[k]),
                               mixed.diffusivity[k:k + 1], iterations=3)
        np.testing.assert_allclose(together[k], alone[0], atol=1e-12)


def test_the_physics_loss_reads_each_samples_walls_from_its_planes(mixed):
    def inputs(walls):
        channel = diffusivity_channel(mixed.diffusivity, MIXED)[:, None]
        return torch.from_numpy(np.concatenate([mixed.inputs[:, None], channel, wall_planes(walls, 24)], axis=1))

    loss = PhysicsLoss(MIXED)
    fields = torch.from_numpy(mixed.fields[:, None]).double()
    assert float(loss(fields, inputs(mixed.walls).double()).max()) < 1e-9
    assert float(loss(fields, inputs(wrong(mixed.walls)).double()).min()) > 1e-4


def test_online_samples_of_mixed_walls_are_each_walls_exact_fields():
    online = OnlineSamples(MIXED, 6, seed=3, device=torch.device("cpu"), in_channels=4)
    x, y = online.samples(np.arange(6))
    walls = sample_walls(MIXED, range(6), [3, STREAM])
    np.testing.assert_array_equal(walls_from_planes(x[:, 2:]), walls)
    maps = MIXED.D * 10.0 ** x[:, 1].double().numpy()
    for k in range(6):
        with make_solver("direct", wall_problem(MIXED, walls[k])) as direct:
            expected, _ = normalise(direct(x[k:k + 1, 0].double().numpy(), maps[k:k + 1]))
        np.testing.assert_allclose(y[k, 0].numpy(), expected[0], atol=1e-5)


@pytest.mark.parametrize("walls", [[0.5, 1.0], [-1, 0], [0, 3], [0.0, float("nan")], [[0, 1]]])
def test_walls_read_for_predict_are_each_0_1_or_2(tmp_path, walls):
    import h5py

    from pydiff.errors import DataFileError
    from pydiff.evaluation.inference import read_walls

    path = tmp_path / "inputs.h5"
    with h5py.File(path, "w") as f:
        f["walls"] = np.asarray(walls)
    with pytest.raises(DataFileError, match=r"walls must be \(2,\) values 0 \(dirichlet\)"):
        read_walls(path, 2)
    with h5py.File(path, "w") as f:
        f["walls"] = np.asarray([2.0, 0.0])  # whole numbers stored as floats are the walls they name
    assert read_walls(path, 2).tolist() == [2, 0] and read_walls(path, 2).dtype == np.uint8  # as data files hold them
