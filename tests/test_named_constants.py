"""Numbers with a name (issue 24, section 3): each constant is the one place its value is written,
and what depends on it reads it from there."""

import inspect
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pydiff.errors import ConfigError
from pydiff.problem import Problem, sample_sources, source_images
from pydiff.problem.diffusivity import diffusivity_maps
from pydiff.registry import PRESETS
from pydiff.training.config import config_for


def test_bench_varied_without_a_run_takes_the_named_m_and_e(monkeypatch):
    # cli/bench.py wrote 10000 and 3600.0 beside bench_varied's own defaults
    import pydiff.benchmarking.varied as varied
    from pydiff.cli import main

    defaults = inspect.signature(varied.bench_varied).parameters
    assert (defaults["M"].default, defaults["E"].default) == (varied.ASSUMED_M, varied.ASSUMED_E)
    seen = {}

    def fake(problem, lattices, backends, networks, width, samples, **options):
        seen.update(options)
        return [{"lattice": lattices[0]}]

    monkeypatch.setattr(varied, "bench_varied", fake)
    result = CliRunner().invoke(main, ["bench", "varied", "--diffusivity", "inclusions", "--lattices", "16"])
    assert result.exit_code == 0, result.output
    assert (seen["M"], seen["E"]) == (varied.ASSUMED_M, varied.ASSUMED_E)
    assert f"M = {varied.ASSUMED_M} samples, E = {varied.ASSUMED_E:.0f} s" in result.output


def test_an_epoch_without_a_data_file_or_a_size_counts_the_named_samples():
    from pydiff.training.data import SAMPLES_WITHOUT_A_FILE, epoch_sizes

    assert SAMPLES_WITHOUT_A_FILE == PRESETS["paper"]["n_samples"]  # the paper's data set
    config = config_for(None, "quick2024", n_samples=None)  # no file, all of it: as large as the paper's
    assert epoch_sizes(config) == (round(0.8 * SAMPLES_WITHOUT_A_FILE), round(0.1 * SAMPLES_WITHOUT_A_FILE))


def test_the_bound_divides_by_the_named_floor_only_where_an_estimate_is_below_it():
    from pydiff.evaluation.bound import ERROR_FLOOR, error_ratios

    ratios = error_ratios(np.array([0.2, 1e-3, 0.0]), np.array([0.1, 0.0, 0.0]))
    np.testing.assert_array_equal(ratios, [2.0, 1e-3 / ERROR_FLOOR, 0.0])
    assert np.isfinite(ratios).all()


def test_trust_helpers_take_their_named_sizes():
    from pydiff.pipelines.trust import INVERSE_EPOCHS, LEARNED_MIN_VAL, _learned, inverse_config

    run = config_for(9, "smoke", n_samples=None, width=0.5)
    inverse = inverse_config(run)
    assert inverse.epochs == INVERSE_EPOCHS and inverse.inverse
    assert inverse.n_samples is None  # all of the run's file, as the run (a None override was dropped: 10,000)
    assert inverse.width == PRESETS["quick2024"]["width"]  # width None: the preset's
    too_few = SimpleNamespace(arrays=SimpleNamespace(split={"val": np.arange(LEARNED_MIN_VAL - 1)}), run_dir="RUN")
    with pytest.raises(ConfigError, match=f"{LEARNED_MIN_VAL} or more samples to fit on; RUN has {LEARNED_MIN_VAL - 1}"):
        _learned(too_few)


def test_torch_cg_approximate_stops_at_the_named_round_off():
    from pydiff.solvers.torch_cg import ROUND_OFF, TorchCGSolver

    problem = Problem(lattice=24, radius=2, n_sources=3, min_sources=1, setup="paper2024", diffusivity="inclusions",
                      gamma=1 / 400, target="stationary")
    images = torch.as_tensor(source_images(problem, sample_sources(problem, 2, seed=3)), dtype=torch.float64)
    maps = torch.as_tensor(diffusivity_maps(problem, range(2), 3))
    solver = TorchCGSolver(problem)
    u = solver.approximate(images, maps, 100_000)  # every step asked for, short of round-off
    assert 0 < solver.iterations < 100_000
    A, _ = solver.operator(maps, images)
    relative = (images - A(u)).flatten(1).norm(dim=1) / images.flatten(1).norm(dim=1)
    assert (relative <= ROUND_OFF).all()
    assert not solver.approximate(torch.zeros_like(images), maps, 100_000).any() and solver.iterations == 0
