"""The training-set-size study end to end on a miniature, its fit, and online training that
resumes exactly."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from pydiff.datasets.writer import generate
from pydiff.pipelines.study import COLUMNS, fit_log
from pydiff.problem import Problem
from pydiff.training.checkpoint import load_model
from pydiff.training.config import config_for
from pydiff.training.data import load_arrays
from pydiff.training.run import train

from .cli import assert_clean_failure, pydiff
from .pictures import assert_figure
from .test_train import Interrupt, assert_same_run, interrupt_at

TINY = ["--n-samples", 200, "--epochs", 1, "--width", 0.03125, "--batch-size", 16]


def test_the_log_fit_recovers_a_and_b():
    n = np.array([100, 200, 400, 800, 1600] * 2)
    fit = fit_log(n, 0.05 - 0.004 * np.log(n))
    assert (fit.a, fit.b, fit.r2, fit.points) == (pytest.approx(0.05), pytest.approx(-0.004), pytest.approx(1.0), 10)
    noisy = fit_log(n, 0.05 - 0.004 * np.log(n) + np.tile([1e-3, -1e-3], 5))
    assert 0.5 < noisy.r2 < 1.0
    assert math.isnan(fit_log([100, 100], [0.1, 0.2]).b)  # one size: no slope


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A two-fraction, two-seed study of file and online data through the command line."""
    from pydiff.evaluation import report
    from pydiff.evaluation.figures import plot_regions

    root = tmp_path_factory.mktemp("study")
    args = ("study", "train-size", "--runs", root / "s", "--data-dir", root / "data", "--fractions", "0.25,1",
            "--seeds", "0,1", "--data", "both", *TINY)
    with pytest.MonkeyPatch.context() as patch:  # of each run's figures, only the one of the 2024 papers
        patch.setattr(report, "write_figures", lambda run_dir, by_split, label: [
            plot_regions(by_split["test"]["regions"], run_dir / "fig_regions.png", label)])
        first = pydiff(*args)
    return root, args, first


def test_the_study_writes_its_table_figure_and_fit(study):
    root, _, result = study
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(root / "s" / "train_size.csv")
    assert tuple(table.columns) == COLUMNS and len(table) == 8
    # 200 samples of 1-20 sources, 0.8 of each count for training: 8 per count, 160 in all; a
    # quarter of each count: 2 per count.
    assert sorted(set(table.n_train)) == [40, 160]
    assert set(table.data) == {"file", "online"} and set(table.seed) == {0, 1}
    same_steps = table.pivot_table(index=["fraction", "seed"], columns="data", values="steps")
    assert (same_steps.file == same_steps.online).all()
    assert ((table.mean_res > 0) & (table.mean_res <= table.max_res)).all()
    fits = json.loads((root / "s" / "train_size_fit.json").read_text())
    expected = fit_log(table[table.data == "file"].n_train, table[table.data == "file"].mean_res)
    assert fits["file"]["b"] == pytest.approx(expected.b)
    assert "file: mean_res = " in result.stdout and "R^2" in result.stdout
    # Every row is its run's: the options it trained with, what training and evaluation wrote.
    for row in table.itertuples():
        run = root / "s" / row.data / f"fraction{row.fraction:g}-seed{row.seed}"
        assert row.run_dir == str(run)
        config = json.loads((run / "config.json").read_text())
        assert (config["training_data"], config["train_fraction"], config["seed"]) == (row.data, row.fraction, row.seed)
        training = json.loads((run / "result.json").read_text())
        assert (row.n_train, row.epochs, row.best_epoch) == (training["n_train"], training["epochs_run"],
                                                             training["best_epoch"])
        assert row.train_s == pytest.approx(training["seconds"], rel=1e-12)
        assert row.steps == row.epochs * math.ceil(row.n_train / 16)  # --batch-size 16
        test = json.loads((run / "metrics.json").read_text())["test"]
        for key in ("mean_res", "p99_res", "max_res", "rel_l2"):
            assert getattr(row, key) == pytest.approx(test[key], rel=1e-12), (run, key)
    # and that run's mean residual is its saved model's on the test split, recomputed here
    run = root / "s" / "file" / "fraction1-seed0"
    model, config = load_model(run)
    arrays = load_arrays(config)
    test = arrays.split["test"]
    with torch.no_grad():
        prediction = model.eval()(torch.as_tensor(arrays.inputs[test])).double().numpy()
    mean_res = np.abs(prediction - arrays.fields[test]).mean()
    assert table[table.run_dir == str(run)].mean_res.item() == pytest.approx(mean_res, rel=1e-5)
    assert_figure(root / "s" / "train_size.png")
    assert_figure(run / "fig_regions.png")  # 20 source counts: the error per count and region
    metrics = json.loads((run / "metrics.json").read_text())
    assert [row["n_sources"] for row in metrics["test"]["regions"]] == list(range(1, 21))


def test_a_finished_study_is_read_back_not_retrained(study):
    root, args, _ = study
    results = sorted((root / "s").glob("*/*/result.json"))
    stamps = [p.stat().st_mtime_ns for p in results]
    before = pd.read_csv(root / "s" / "train_size.csv")
    again = pydiff(*args)
    assert again.returncode == 0, again.stderr
    assert [p.stat().st_mtime_ns for p in results] == stamps
    pd.testing.assert_frame_equal(pd.read_csv(root / "s" / "train_size.csv"), before)


@pytest.mark.parametrize("args, match", [
    (["--fractions", "0,0.5"], "fractions must be in (0, 1]"),
    (["--fractions", "a,b"], "--fractions must be a comma-separated list"),
    (["--seeds", "1,1"], "distinct seeds"),
])
def test_bad_study_options_fail_in_one_line(tmp_path, args, match):
    result = pydiff("study", "train-size", "--runs", tmp_path / "s", "--data-dir", tmp_path / "data", *args)
    assert_clean_failure(result, 2, match)
    assert not (tmp_path / "data").exists()


def test_online_training_resumes_exactly(tmp_path):
    path = generate(tmp_path / "many.h5", 40, Problem(lattice=32, radius=3, n_sources=4, min_sources=1,
                                                      setup="paper2024"), progress=False)

    def config():
        return config_for(None, "quick2024", data=str(path), n_samples=40, width=1 / 32, epochs=4, batch_size=8,
                          training_data="online", checkpoint_every=1)

    whole = train(config(), tmp_path / "whole", progress=False)
    with pytest.raises(Interrupt):
        train(config(), tmp_path / "parts", progress=interrupt_at(1))
    train(config(), tmp_path / "parts", resume=True, progress=False)
    assert_same_run(tmp_path / "whole", tmp_path / "parts")
    # fresh samples: the training loss differs from training on the file's 32 samples
    fixed = train(config_for(None, "quick2024", data=str(path), n_samples=40, width=1 / 32, epochs=4, batch_size=8),
                  tmp_path / "fixed", progress=False)
    assert [r["train_loss"] for r in fixed.history] != [r["train_loss"] for r in whole.history]


def test_the_2024_presets():
    from pydiff.registry import preset_problem

    paper = config_for(None, "paper2024")
    assert (paper.network, paper.width, paper.lr, paper.batch_size, paper.epochs, paper.select_on) == (
        "encdec", 1.0, 1e-4, 50, 100, "test")
    assert Problem(**preset_problem("paper2024")) == Problem(lattice=512, n_sources=20, min_sources=1, setup="paper2024")
    # 20,000 per count, 16,000 of them for training: the 2024 code's sizes
    assert paper.n_samples * paper.split[0] / 20 == 16000
    assert preset_problem("quick") == {} and config_for(9, "quick").network == "surrogate"
