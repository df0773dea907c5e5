"""The calibrated bound: split conformal by hand, its coverage on held-out samples within the
binomial tolerance, and answers that never serve a sample whose bound exceeds the asked error."""

import json
import math

import h5py
import numpy as np
import pytest

from pydiff.datasets.hdf5 import load
from pydiff.datasets.writer import generate
from pydiff.errors import ConfigError
from pydiff.evaluation.bound import conformal_quantile
from pydiff.problem import Problem
from pydiff.solvers import make_solver, normalise
from pydiff.training.config import config_for
from pydiff.training.run import train

from .cli import assert_clean_failure, pydiff


def test_the_conformal_quantile_by_hand():
    ratios = np.arange(19.0, 0.0, -1.0)  # 19 ratios, 1..19, in any order
    assert conformal_quantile(ratios, 0.1) == 18.0  # ceil(20 * 0.9) = 18th smallest
    assert conformal_quantile(ratios, 0.05) == 19.0  # ceil(20 * 0.95) = 19
    assert conformal_quantile(ratios, 0.01) == math.inf  # rank 20 of 19: no finite bound
    with pytest.raises(ConfigError, match="alpha must be in"):
        conformal_quantile(ratios, 1.5)


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2])
def test_the_bound_covers_held_out_samples_within_the_binomial_tolerance(alpha):
    # An estimator that is right up to a random factor: error = score * Z, Z log-normal.
    rng = np.random.default_rng(11)
    n_cal, n_test = 1000, 20000
    score = rng.lognormal(-3, 1, n_cal + n_test)
    error = score * rng.lognormal(0, 0.5, n_cal + n_test)
    q = conformal_quantile(error[:n_cal] / score[:n_cal], alpha)
    coverage = np.mean(error[n_cal:] <= q * score[n_cal:])
    tolerance = 3 * math.sqrt(alpha * (1 - alpha)) * (1 / math.sqrt(n_cal) + 1 / math.sqrt(n_test))
    assert abs(coverage - (1 - alpha)) <= tolerance
    # and served at EPS, the joint rate of served-and-wrong stays within alpha
    eps = np.quantile(q * score[n_cal:], 0.5)
    served = q * score[n_cal:] <= eps
    assert np.mean(served & (error[n_cal:] > eps)) <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / n_test)


@pytest.fixture(scope="module")
def varied_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bound")
    problem = Problem(lattice=32, radius=3, n_sources=4, min_sources=1, setup="paper2024", diffusivity="inclusions")
    data = generate(root / "d.h5", 80, problem, seed=0, progress=False)
    held_out = generate(root / "new.h5", 12, problem, seed=99, progress=False)
    train(config_for(None, "quick-varied", data=str(data), n_samples=80, width=1 / 32, epochs=2, batch_size=8,
                     split=(0.5, 0.25, 0.25)), root / "run", progress=False)
    return root, held_out


def test_calibrate_then_predict_serves_only_samples_bounded_by_the_asked_error(varied_run, tmp_path):
    root, held_out = varied_run
    run = root / "run"
    assert_clean_failure(pydiff("predict", run, "--inputs", held_out, "--out", tmp_path / "x.h5", "--max-error", 0.1),
                         2, "pydiff calibrate")
    result = pydiff("calibrate", run, "--alpha", 0.1, "--iterations", 40)
    assert result.returncode == 0, result.stderr
    calibration = json.loads((run / "calibration.json").read_text())
    # the 20 test samples (val chose the best epoch), halved: 10 fit the bound, 10 check it
    assert calibration["n_calibration"] == 10 and math.isfinite(calibration["quantile"])
    assert calibration["test"]["n"] == 10 and len(calibration["test"]["by_max_error"]) == 5
    # choose EPS between the bounds, so that some samples are served and some solved
    plain = tmp_path / "plain.h5"
    assert pydiff("predict", run, "--inputs", held_out, "--out", plain).returncode == 0
    data = load(held_out)
    with h5py.File(plain) as f:
        prediction = f["prediction"][()]
    from pydiff.evaluation.bound import estimated_max_errors

    bound = calibration["quantile"] * estimated_max_errors(prediction, data.inputs[()], data.problem,
                                                           data.diffusivity[()], 40)
    eps = float(np.median(bound))
    result = pydiff("predict", run, "--inputs", held_out, "--out", tmp_path / "a.h5", "--max-error", eps)
    assert result.returncode == 0, result.stderr
    assert "served by the network" in result.stdout
    with h5py.File(tmp_path / "a.h5") as f:
        answers, served, written_bound = f["prediction"][()], f["served"][()], f["bound"][()]
        assert f.attrs["max_error"] == eps and f.attrs["alpha"] == 0.1
    np.testing.assert_allclose(written_bound, bound, rtol=1e-4)
    assert 0 < served.sum() < len(served)
    assert (written_bound[served] <= eps).all() and (written_bound[~served] > eps).all()
    np.testing.assert_array_equal(answers[served], prediction[served])
    with make_solver("direct", data.problem) as direct:  # the others are the exact fields
        exact, _ = normalise(direct(data.inputs[()][~served], data.diffusivity[()][~served]))
    np.testing.assert_allclose(answers[~served], exact, atol=1e-6)
    assert_clean_failure(pydiff("predict", run, "--inputs", held_out, "--out", tmp_path / "b.h5", "--max-error", -1),
                         2, "must be a positive finite number")


def test_uncertainty_beside_served_answers_is_named_as_the_networks(varied_run, tmp_path):
    # With --max-error some answers are exact solves: the spread and the residual, which are of
    # the network's own prediction, must not pass as the answers'.
    root, held_out = varied_run
    run = root / "run"
    assert pydiff("calibrate", run, "--alpha", 0.1, "--out", tmp_path / "c.json").returncode == 0
    plain, served = tmp_path / "plain.h5", tmp_path / "served.h5"
    assert pydiff("predict", run, "--inputs", held_out, "--out", plain, "--uncertainty", "--samples", 3).returncode == 0
    result = pydiff("predict", run, "--inputs", held_out, "--out", served, "--uncertainty", "--samples", 3,
                    "--calibration", tmp_path / "c.json", "--max-error", 1e-9)  # every sample solved exactly
    assert result.returncode == 0, result.stderr
    assert "mean_network_mc_dropout_std" in result.stdout
    with h5py.File(plain) as p, h5py.File(served) as s:
        assert {"mc_dropout_std", "physics_residual"} <= set(p) and "network_physics_residual" not in p
        assert not {"mc_dropout_std", "physics_residual"} & set(s) and not s["served"][()].any()
        np.testing.assert_array_equal(s["network_physics_residual"][()], p["physics_residual"][()])
        np.testing.assert_array_equal(s["network_mc_dropout_std"][()], p["mc_dropout_std"][()])
