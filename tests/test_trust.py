"""Label-free error estimates and predictions for users' own images."""

import dataclasses

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from pydiff.datasets.hdf5 import load
from pydiff.datasets.writer import generate
from pydiff.evaluation.predict import predict, predict_mc_dropout
from pydiff.nn.surrogate2021 import Surrogate
from pydiff.pipelines.trust import flag_quality
from pydiff.problem import Problem
from pydiff.training.checkpoint import load_model
from pydiff.training.config import config_for
from pydiff.training.run import train

from .cli import assert_clean_failure, pydiff
from .pictures import assert_figure


def test_mc_dropout_has_zero_spread_without_dropout_and_some_with_it():
    x = torch.rand(3, 1, 100, 100)
    torch.manual_seed(0)
    still = Surrogate(1.0, 1.0, (0.0, 0.0, 0.0, 0.0), width=0.0625)
    mean, spread = predict_mc_dropout(still, x, samples=4)
    assert spread.shape == (3, 1, 100, 100) and np.all(spread == 0)
    np.testing.assert_allclose(mean, predict(still, x), atol=1e-6)
    torch.manual_seed(0)
    noisy = Surrogate(1.0, 1.0, (0.3, 0.3, 0.3, 0.3), width=0.0625)
    _, spread = predict_mc_dropout(noisy, x, samples=4)
    assert spread.mean() > 0 and not noisy.training
    assert all(not m.training for m in noisy.modules())  # dropout is off again afterwards


def test_flagging_by_hand():
    error = np.arange(100.0)  # the worst 5 are 95..99
    score = error.copy()
    score[99] = -1  # one of the worst is missed, sample 94 flagged instead
    assert flag_quality(score, error) == (0.8, 0.8)
    assert flag_quality(error, error) == (1.0, 1.0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust")
    data = generate(root / "d.h5", 120, Problem(), seed=0, progress=False)
    train(config_for(9, "smoke", data=str(data), n_samples=120, epochs=2), root / "run", progress=False)
    return root


def test_trust_scores_every_method(run):
    result = pydiff("trust", run / "run", "--method", "all", "--samples", 4, "--inverse-epochs", 1,
                    "--ensemble-size", 2, "--ensemble-epochs", 1)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(run / "run" / "trust.csv")
    methods = ["mc-dropout", "physics", "inverse", "a-posteriori", "learned", "ensemble"]
    assert table.method.tolist() == methods + ["exact"]
    assert table.samples.tolist() == [24] * 7
    assert (table.ms_per_sample > 0).all() and table.solver.iloc[-1] == "spectral"
    assert_figure(run / "run" / "trust.png")
    table = table.iloc[:-1]
    scores = pd.read_csv(run / "run" / "trust_scores.csv")
    assert len(scores) == 24 and scores["sample"].is_unique
    for row in table.itertuples():  # each method's mean score is the mean of its samples' scores
        assert row.mean_score == pytest.approx(scores[row.method].mean(), rel=1e-9)
    # Computed here without pydiff's scoring: the true errors of the test samples, the physics
    # score (a hand-written five-point residual with the source factor fitted by least squares),
    # and the flag of the worst 5 % (one sample of 24: the highest score hits when it is the worst).
    model, config = load_model(run / "run")
    data = load(run / "d.h5")
    x, y = data.inputs[scores["sample"]], data.fields[scores["sample"]]
    prediction = predict(model, x[:, None])[:, 0].astype(np.float64)
    error = np.abs(prediction - y)
    np.testing.assert_allclose(scores.mean_res, error.mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(scores.max_res, error.max(axis=(1, 2)), rtol=1e-5)
    padded = np.pad(prediction, ((0, 0), (1, 1), (1, 1)))
    lap = padded[:, 2:, 1:-1] + padded[:, :-2, 1:-1] + padded[:, 1:-1, 2:] + padded[:, 1:-1, :-2] - 4 * prediction
    rest = data.problem.D * lap - data.problem.gamma * prediction
    c = -(rest * x).sum(axis=(1, 2)) / (x * x).sum(axis=(1, 2))
    np.testing.assert_allclose(scores.physics, np.abs(rest + c[:, None, None] * x).mean(axis=(1, 2)), rtol=1e-5)
    # with constant D the a-posteriori estimate is the true error (to the t_max transient)
    np.testing.assert_allclose(scores["a-posteriori"], scores.mean_res, atol=1e-5)
    np.testing.assert_allclose(scores["a-posteriori_max"], scores.max_res, atol=1e-5)
    assert (scores.learned > 0).all() and (scores.ensemble > 0).all()
    for row in table.itertuples():
        assert spearmanr(scores[row.method], scores.mean_res).statistic == pytest.approx(row.spearman_mean)
        assert spearmanr(scores[f"{row.method}_max"], scores.max_res).statistic == pytest.approx(row.spearman_max)
        hit = float(scores[row.method].idxmax() == scores.mean_res.idxmax())
        assert row.precision_worst5 == row.recall_worst5 == hit
        hit = float(scores[f"{row.method}_max"].idxmax() == scores.max_res.idxmax())
        assert row.precision_worst5_max == row.recall_worst5_max == hit
    # The networks the scores came from, read back from their run directories: the inverse
    # network maps the prediction back to sources, scored by their distance to the true image;
    # each ensemble member (the run's options, seeds 1 and 2, the same split) predicts again, and
    # the score is the root-mean-square distance of the run's prediction to theirs.
    inverse_model, inverse = load_model(run / "run" / "inverse")
    assert inverse.inverse and inverse.network == "encdec"
    sources = predict(inverse_model, prediction[:, None].astype(np.float32))[:, 0].astype(np.float64)
    np.testing.assert_allclose(scores.inverse, np.abs(sources - x).mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(scores.inverse_max, np.abs(sources - x).max(axis=(1, 2)), rtol=1e-5)
    squares = []
    for k in (0, 1):
        member, member_config = load_model(run / "run" / "ensemble" / f"member-{k}")
        assert member_config.seed == config.seed + 1 + k and member_config.split_seed == config.seed
        assert member_config.epochs == 1  # --ensemble-epochs 1; the rest is the run's configuration
        assert dataclasses.replace(member_config, seed=config.seed, split_seed=None, epochs=config.epochs,
                                   device=config.device) == config
        squares.append((prediction - predict(member, x[:, None])[:, 0].astype(np.float64)) ** 2)
    distance = np.sqrt(np.mean(squares, axis=0))
    np.testing.assert_allclose(scores.ensemble, distance.mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(scores.ensemble_max, distance.max(axis=(1, 2)), rtol=1e-5)


def test_trust_reuses_the_inverse_network_and_refuses_other_epochs(run):
    result = pydiff("trust", run / "run", "--method", "inverse")  # trains (1 epoch) or reuses it
    assert result.returncode == 0, result.stderr
    trained = load_model(run / "run" / "inverse")[1].epochs
    before = (run / "run" / "inverse" / "model.safetensors").stat().st_mtime_ns
    assert_clean_failure(pydiff("trust", run / "run", "--method", "inverse", "--inverse-epochs", trained + 1), 2,
                         f"trained for {trained} epochs")
    assert (run / "run" / "inverse" / "model.safetensors").stat().st_mtime_ns == before


def test_bad_trust_method_fails_in_one_line(run):
    assert_clean_failure(pydiff("trust", run / "run", "--method", "oracle"), 2, "unknown trust method")


def test_predict_writes_the_predictions_and_score_maps(run, tmp_path):
    data = load(run / "d.h5")
    np.save(tmp_path / "mine.npy", data.inputs[:5])
    result = pydiff("predict", run / "run", "--inputs", tmp_path / "mine.npy", "--out", tmp_path / "out.h5",
                    "--uncertainty", "--samples", 3)
    assert result.returncode == 0, result.stderr
    model, _ = load_model(run / "run")
    with h5py.File(tmp_path / "out.h5") as f:
        np.testing.assert_allclose(f["prediction"][()], predict(model, data.inputs[:5, None])[:, 0], atol=1e-6)
        assert f["mc_dropout_std"].shape == f["physics_residual"].shape == (5, 100, 100)
        assert f["mc_dropout_std"][()].mean() > 0 and f.attrs["mc_dropout_samples"] == 3
    # a pydiff data file works as input too; no --uncertainty, no maps
    result = pydiff("predict", run / "run", "--inputs", run / "d.h5", "--out", tmp_path / "all.h5")
    assert result.returncode == 0, result.stderr
    with h5py.File(tmp_path / "all.h5") as f:
        assert set(f) == {"prediction"} and f["prediction"].shape == (120, 100, 100)


@pytest.mark.parametrize("array, match", [
    (np.ones((2, 3, 3)), "lattice 3"),
    (np.zeros((2, 4, 5)), "must be (n, L, L)"),
    (np.full((1, 100, 100), np.nan), "NaN"),
])
def test_predict_refuses_bad_images_in_one_line(run, tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    result = pydiff("predict", run / "run", "--inputs", tmp_path / "bad.npy", "--out", tmp_path / "out.h5")
    assert_clean_failure(result, 2, match)
    assert not list(tmp_path.glob("out.h5*"))
