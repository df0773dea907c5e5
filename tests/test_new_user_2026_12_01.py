"""What a new user found trying Darcy flow, refine, the prior and the Eq. 4 bench (2026-12-01):
each a test that failed before its fix."""

import json

import pytest

from pydiff.datasets.writer import generate
from pydiff.problem import Problem
from pydiff.training.config import config_for
from pydiff.training.run import train

from .cli import assert_clean_failure, pydiff

VARIED = dict(lattice=32, radius=3, n_sources=4, min_sources=1, setup="paper2024", diffusivity="inclusions")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("found")
    varied = generate(root / "v.h5", 80, Problem(**VARIED), seed=0, progress=False)
    darcy = generate(root / "d.h5", 30, Problem.for_setup("darcy", lattice=11, solve_lattice=41), seed=0, progress=False)
    train(config_for(None, "quick-varied", data=str(varied), width=1 / 32, epochs=1, batch_size=8), root / "varied",
          progress=False)
    train(config_for(None, "darcy85", data=str(darcy), network="encdec", width=1 / 32, epochs=1, batch_size=8),
          root / "darcy", progress=False)
    return root


def test_bench_varied_takes_m_from_the_samples_the_run_used(runs):
    # Before: M = 10000, the preset's n_samples, for a run of 80 samples.
    result = pydiff("bench", "varied", "--setup", "paper2024", "--lattice", 32, "--n-sources", "1-4", "--diffusivity",
                    "inclusions", "--lattices", 32, "--samples", 1, "--backends", "direct", "--run", runs / "varied")
    assert result.returncode == 0, result.stderr
    assert "M = 80 samples" in result.stdout
    assert_clean_failure(pydiff("bench", "varied", "--diffusivity", "inclusions", "--lattices", ""), 2, "--lattices")


def test_evaluate_on_a_file_of_another_equation_is_refused(runs):
    # Before: relative L2 46.8 for Darcy data on the varied run, with exit status 0.
    assert_clean_failure(pydiff("evaluate", runs / "varied", "--data", runs / "d.h5"), 2, "another equation")
    assert_clean_failure(pydiff("evaluate", runs / "darcy", "--data", runs / "v.h5"), 2, "another equation")


@pytest.mark.parametrize("option", [["--training-data", "online"], ["--physics-weight", 1]])
def test_a_refused_darcy_run_leaves_no_run_directory_behind(runs, tmp_path, option):
    # Before: online samples of Darcy flow died in a traceback, and a refused physics weight left
    # a config.json that blocked the same --out.
    out = tmp_path / "r"
    result = pydiff("train", "--preset", "darcy85", "--data", runs / "d.h5", "--out", out, "--epochs", 1, "--network",
                    "encdec", "--width", 1 / 32, *option)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert not (out / "config.json").exists()


def test_what_darcy_runs_cannot_do_says_so_first(runs, tmp_path):
    # Before: too few samples, no calibration.json, or 'measure it with evaluate' inside evaluate
    assert_clean_failure(pydiff("calibrate", runs / "darcy"), 2, "Darcy flow")
    assert_clean_failure(pydiff("trust", runs / "darcy"), 2, "Darcy flow")
    assert_clean_failure(pydiff("predict", runs / "darcy", "--inputs", runs / "d.h5", "--out", tmp_path / "p.h5",
                                "--max-error", 0.1), 2, "Darcy flow")
    assert_clean_failure(pydiff("evaluate", runs / "darcy", "--data", runs / "d.h5", "--refine", 2), 2, "without --refine")
    assert_clean_failure(pydiff("bench", "varied", "--setup", "darcy", "--lattice", 11, "--solve-lattice", 41,
                                "--lattices", 11), 2, "Darcy flow")


def test_compare_refuses_the_2021_surrogate_on_another_lattice_before_any_work(tmp_path):
    # Before: the data were generated, the surrogate skipped silently, and empty tables written.
    result = pydiff("compare", "--preset", "quick2024", "--models", "surrogate", "--runs", tmp_path / "runs",
                    "--data-dir", tmp_path / "data")
    assert_clean_failure(result, 2, "100x100")
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())
