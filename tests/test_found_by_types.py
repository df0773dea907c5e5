"""Bugs the type check found (2026-12-01), each with the test that failed before its fix."""

import numpy as np
import torch

from pydiff.datasets.batches import OnlineSamples
from pydiff.problem import Problem
from pydiff.problem.walls import for_each_wall, walls_from_planes
from pydiff.solvers import make_solver

MIXED = Problem(lattice=24, radius=3, n_sources=3, min_sources=1, setup="paper2024", diffusivity="inclusions",
                boundary="mixed")


def test_zero_samples_of_mixed_walls_give_empty_results_not_none():
    with make_solver("direct", MIXED) as solver:
        out = solver(np.zeros((0, 24, 24)), np.ones((0, 24, 24)), np.zeros(0, dtype=np.uint8))
    assert out.shape == (0, 24, 24)
    empty = for_each_wall(MIXED, np.zeros(0, dtype=np.uint8), lambda one, a: a * 2, np.zeros((0, 3)))
    assert empty.shape == (0, 3)


def test_online_samples_give_wall_planes_to_a_network_of_walls_on_data_of_one_wall():
    neumann = Problem(lattice=24, radius=3, n_sources=3, min_sources=1, setup="paper2024", diffusivity="inclusions",
                      boundary="neumann")
    x, y = OnlineSamples(neumann, 4, seed=1, device=torch.device("cpu"), in_channels=4).samples(np.arange(4))
    assert x.shape == (4, 4, 24, 24)
    assert (walls_from_planes(x[:, 2:]) == 1).all()  # every sample neumann


def test_the_eq4_bench_of_a_run_that_uses_its_whole_data_file(tmp_path):
    from pydiff.benchmarking.eq4 import bench_eq4
    from pydiff.datasets.writer import generate
    from pydiff.training.config import config_for
    from pydiff.training.run import train

    data = generate(tmp_path / "d.h5", 30, Problem(), seed=0, progress=False)
    train(config_for(9, "smoke", data=str(data), n_samples=None, epochs=1), tmp_path / "run", progress=False)
    rows = bench_eq4(run_dir=tmp_path / "run", width=1 / 16, backends=("spectral",), n_delta=2, batch_sizes=(1,))
    assert next(r for r in rows if r["quantity"].startswith("M:"))["measured"] == 30
