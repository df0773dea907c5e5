"""`pydiff reproduce`, `evaluate` and `table` end to end on the smoke preset."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from pydiff.evaluation.report import comparison_table, format_table
from pydiff.training.checkpoint import FIGURES, load_model
from pydiff.training.data import load_arrays

from .cli import assert_clean_failure, pydiff
from .pictures import assert_figure


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    root = tmp_path_factory.mktemp("repro")
    first = pydiff("reproduce", "--model", 9, "--preset", "smoke", cwd=root)
    return root, first


def test_reproduce_writes_table_json_and_every_figure(reproduced, monkeypatch):
    root, result = reproduced
    monkeypatch.chdir(root)  # the run names its data file relative to where reproduce ran
    assert result.returncode == 0, result.stderr
    run = root / "runs" / "smoke" / "model09-seed0"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["model"] == 9 and metrics["preset"] == "smoke"
    assert len(metrics["test"]["slices"]["10"]) == 10 and len(metrics["test"]["slices"]["20"]) == 20
    # The test metrics recomputed here from the saved model and the run's test split: the
    # residual r = |prediction - truth| of every pixel, its mean, 99th percentile and maximum.
    model, config = load_model(run)
    arrays = load_arrays(config)
    for split in ("test", "train"):
        index = arrays.split[split]
        with torch.no_grad():
            prediction = model.eval()(torch.as_tensor(arrays.inputs[index])).double().numpy()
        r = np.abs(prediction - arrays.fields[index])
        ours = metrics[split]
        assert ours["n_samples"] == len(index) and ours["n_pixels"] == r.size == len(index) * 100 * 100
        assert ours["mean_res"] == pytest.approx(r.mean(), rel=1e-5), split
        assert ours["max_res"] == pytest.approx(r.max(), rel=1e-5), split
        assert ours["p99_res"] == pytest.approx(np.percentile(r, 99), abs=1e-5), split  # to a histogram bin
        assert ours["rmse"] == pytest.approx(np.sqrt((r * r).mean()), rel=1e-5), split
    # training's own record: the log's epochs, and the best epoch the lowest held-out loss
    training = json.loads((run / "result.json").read_text())
    assert metrics["training"] == training
    log = pd.read_csv(run / "log.csv")
    assert log.epoch.tolist() == list(range(training["epochs_run"])) == list(range(config.epochs))
    kept = log[~log.rolled_back.astype(bool)]
    assert training["best_epoch"] == kept.epoch[kept.val_loss.idxmin()]
    assert training["best_val_loss"] == pytest.approx(kept.val_loss.min(), rel=1e-12)
    # table.csv: our test residuals beside Table 2's row of model 9
    row = pd.read_csv(run / "table.csv")
    assert row["model"].tolist() == [9] and row["mean res (paper)"].iloc[0] == pytest.approx(2.08e-3)
    for key, label in (("mean_res", "mean res"), ("p99_res", "99-P res"), ("max_res", "max res")):
        assert row[f"{label} (ours)"].iloc[0] == pytest.approx(metrics["test"][key], rel=1e-12)
        assert row[f"{label} ratio"].iloc[0] == pytest.approx(metrics["test"][key] / row[f"{label} (paper)"].iloc[0])
    assert "mean res (ours)" in result.stdout and "2.08e-03" in result.stdout
    assert f"{metrics['test']['mean_res']:.2e}" in result.stdout
    for name in FIGURES:
        assert_figure(run / name)
    assert list((root / "data").glob("*.h5"))


def test_second_call_reuses_data_and_run(reproduced):
    root, _ = reproduced
    run = root / "runs" / "smoke" / "model09-seed0"
    data = next((root / "data").glob("*.h5"))
    stamps = {p: p.stat().st_mtime_ns for p in (data, run / "model.safetensors", run / "metrics.json")}
    again = pydiff("reproduce", "--model", 9, "--preset", "smoke", cwd=root)
    assert again.returncode == 0, again.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert "mean res (ours)" in again.stdout


def test_other_options_train_a_run_of_their_own(reproduced):
    # The cached run of the defaults must not answer for other options: they train into a run
    # directory that names them, and the default run stays as it was.
    root, _ = reproduced
    default = root / "runs" / "smoke" / "model09-seed0"
    stamp = (default / "model.safetensors").stat().st_mtime_ns
    other = pydiff("reproduce", "--model", 9, "--preset", "smoke", "--lr", 0.05, "--epochs", 2, cwd=root)
    assert other.returncode == 0, other.stderr
    run = root / "runs" / "smoke" / "model09-seed0-epochs2-lr0.05"
    config = json.loads((run / "config.json").read_text())
    assert (config["lr"], config["epochs"]) == (0.05, 2)
    assert json.loads((run / "result.json").read_text())["epochs_run"] == 2
    assert (default / "model.safetensors").stat().st_mtime_ns == stamp
    assert f"run directory: {run.relative_to(root)}" in other.stdout


def test_a_cached_run_of_other_options_is_refused_not_reused(tmp_path):
    from pydiff.errors import ConfigError
    from pydiff.pipelines.steps import ensure_data, train_and_evaluate
    from pydiff.training.config import config_for
    from pydiff.training.distributed import Context

    data = ensure_data(tmp_path, 40, 0, progress=False)
    config = config_for(9, "smoke", data=str(data), epochs=1)
    train_and_evaluate(config, tmp_path / "run", Context(), splits=("test",), progress=False)
    with pytest.raises(ConfigError, match=r"other options \(lr 0.001 -> 0.002\)"):
        train_and_evaluate(config_for(9, "smoke", data=str(data), epochs=1, lr=2e-3), tmp_path / "run", Context(),
                           splits=("test",), progress=False)


def test_evaluate_and_table(reproduced):
    root, _ = reproduced
    run = root / "runs" / "smoke" / "model09-seed0"
    result = pydiff("evaluate", run, cwd=root)
    assert result.returncode == 0, result.stderr
    assert "mean residual" in result.stdout
    table = pydiff("table", root / "runs", "--format", "csv")
    assert table.returncode == 0, table.stderr
    rows = pd.read_csv(__import__("io").StringIO(table.stdout))
    assert sorted(set(rows.model)) == list(range(1, 15))  # every model, the missing ones empty
    assert rows[rows.model == 9]["mean res (ours)"].notna().all() and rows[rows.model != 9]["mean res (ours)"].isna().all()
    markdown = pydiff("table", root / "runs", "--format", "markdown")
    assert markdown.stdout.count("missing") >= 13 * 3 and markdown.stdout.startswith("| model")


def test_comparison_table_ratios():
    table = comparison_table({9: {"mean_res": 4.16e-3, "p99_res": 2.02e-2, "max_res": 0.6}}, models=[9, 6])
    assert table.loc[0, "mean res ratio"] == pytest.approx(2.0)
    assert table.loc[0, "max res ratio"] == pytest.approx(2.0)
    assert table.loc[1, "D3"] == "-" and pd.isna(table.loc[1, "mean res (ours)"])
    assert "missing" in format_table(table, "text")
    assert "\\begin{tabular}" in format_table(table, "latex")


def test_rank_agreement_by_hand():
    from pydiff.evaluation.report import rank_agreement

    # published mean residuals of models 1, 6, 9: 2.77e-3, 75.8e-3, 2.08e-3 (ranks 2, 3, 1)
    same_order = {1: {"mean_res": 2e-3, "p99_res": 1, "max_res": 1}, 6: {"mean_res": 9e-2, "p99_res": 2, "max_res": 1},
                  9: {"mean_res": 1e-3, "p99_res": 3, "max_res": 1}}
    agreement = rank_agreement(comparison_table(same_order, models=[1, 6, 9, 12]))
    assert agreement["mean res"] == pytest.approx(1.0)
    # 99-P: published 2.26e-2, 16.5e-2, 2.02e-2 (ranks 2, 3, 1) against ours 1, 2, 3 (ranks 1, 2, 3):
    # d = -1, -1, 2, rho = 1 - 6 * 6 / (3 * 8) = -0.5
    assert agreement["99-P res"] == pytest.approx(-0.5)
    assert np.isnan(agreement["max res"])  # ours all equal: no ranking
    assert np.isnan(rank_agreement(comparison_table({9: same_order[9]}, models=[9]))["mean res"])


def test_table_shows_every_run_of_a_model(tmp_path):
    # Two seeds of model 9, the same with other options, and compare's surrogate (model 9 too): the
    # seeds make one row (their mean), the others a row each, none hiding another.
    for run, mean in (("quick/model09-seed0", 5e-3), ("quick/model09-seed1", 6e-3), ("compare/surrogate", 7e-3),
                      ("quick/model09-seed0-lr0.05", 8e-3)):
        (tmp_path / run).mkdir(parents=True)
        metrics = {"model": 9, "preset": "quick", "test": {"mean_res": mean, "p99_res": 0.05, "max_res": 0.6}}
        (tmp_path / run / "metrics.json").write_text(json.dumps(metrics))
    result = pydiff("table", tmp_path, "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = pd.read_csv(__import__("io").StringIO(result.stdout))
    nine = rows[rows.model == 9]
    assert sorted(zip(nine.run, nine.seeds, nine["mean res (ours)"])) == [
        ("compare/surrogate", 1, 7e-3), ("quick/model09-seed0,1", 2, pytest.approx(5.5e-3)),
        ("quick/model09-seed0-lr0.05", 1, 8e-3)]
    assert len(rows) == 13 + 3


@pytest.mark.parametrize(
    "args, match",
    [
        (["reproduce", "--model", "0", "--preset", "smoke"], "unknown model id 0"),
        (["reproduce", "--preset", "smoke"], "either --model N or --all"),
        (["evaluate", "nowhere"], "no config.json"),
    ],
)
def test_bad_input(tmp_path, args, match):
    assert_clean_failure(pydiff(*args, cwd=tmp_path), 2, match)


def test_evaluate_without_checkpoint(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"data": "x.h5", "model": 9}))
    assert_clean_failure(pydiff("evaluate", run), 2, "no model.safetensors")


def test_reproduce_refuses_a_foreign_cached_data_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "two_sources-L100-n40-seed0-spectral.h5").write_bytes(b"not hdf5")
    assert_clean_failure(pydiff("reproduce", "--model", 9, "--preset", "smoke", cwd=tmp_path), 2, "not an HDF5 file")


def test_reproduce_all_is_resumable_whatever_model_a_ctrl_c_stops(tmp_path, monkeypatch):
    # Every model of Table 2, each stopped by a real SIGINT in its second epoch and continued by
    # running the same command again: models 4-7 and 12-14 (one network, dropouts None) included.
    import os
    import signal

    from pydiff.evaluation import report
    from pydiff.training.trainer import Trainer

    stopped = []
    one_epoch = Trainer.train_one_epoch

    def ctrl_c_once_per_run(trainer, epoch):
        if epoch == 1 and trainer.run_dir not in stopped:
            stopped.append(trainer.run_dir)
            os.kill(os.getpid(), signal.SIGINT)  # pydiff's handler records it; the epoch stops at its next step
        return one_epoch(trainer, epoch)

    monkeypatch.setattr(Trainer, "train_one_epoch", ctrl_c_once_per_run)
    monkeypatch.setattr(report, "write_figures", lambda *args: [])  # figures: tested above, seconds each
    command = ("reproduce", "--all", "--preset", "smoke", "--epochs", 2, "--width", 0.03125, "--split", "0.6,0.3,0.1")
    for attempt in range(14):
        result = pydiff(*command, cwd=tmp_path)
        assert result.returncode == 130, (attempt, result.stderr)
        assert result.stderr.strip().splitlines()[-1].startswith("pydiff: error: stopped by SIGINT after epoch")
    assert len(set(stopped)) == 14
    result = pydiff(*command, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Spearman rank correlation with the paper over 14 models" in result.stdout
    table = pydiff("table", tmp_path / "runs", "--format", "csv")
    rows = pd.read_csv(__import__("io").StringIO(table.stdout))
    assert rows["model"].tolist() == list(range(1, 15)) and rows["mean res (ours)"].notna().all()
    run = tmp_path / "runs" / "smoke" / "model14-seed0-width0.03125-split0.6,0.3,0.1-epochs2"
    assert json.loads((run / "config.json").read_text())["split"] == [0.6, 0.3, 0.1]
    log = pd.read_csv(run / "log.csv")
    assert log.epoch.tolist() == [0, 1]  # resumed, and no epoch logged twice


def test_evaluate_with_a_damaged_checkpoint(reproduced, tmp_path):
    import shutil

    root, _ = reproduced
    run = tmp_path / "copy"
    shutil.copytree(root / "runs" / "smoke" / "model09-seed0", run)
    (run / "model.safetensors").write_bytes(b"garbage")
    assert_clean_failure(pydiff("evaluate", run, cwd=root), 2, "cannot be loaded")
    (run / "config.json").write_text("{not json")
    assert_clean_failure(pydiff("evaluate", run, cwd=root), 2, "unreadable run configuration")


def test_reproduce_parses_labels_as_train_does(tmp_path):
    # --labels none is parsed (not passed on as the text "none"): the config refuses it in one line
    # without --physics-weight, before any data is generated.
    assert_clean_failure(pydiff("reproduce", "--model", 9, "--preset", "smoke", "--labels", "none", cwd=tmp_path),
                         2, "give --physics-weight > 0")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("options", [["--preset", "quick-varied"], ["--preset", "smoke", "--network", "encdec"]])
def test_reproduce_refuses_a_network_that_is_not_the_table2_row(tmp_path, options):
    # Before: reproduce --preset quick-varied --model 9 trained an encoder-decoder and printed it
    # as Table 2's model 9, beside the paper's row and its NN1 + NN2 settings.
    result = pydiff("reproduce", "--model", 9, *options, "--runs", tmp_path / "runs", "--data-dir", tmp_path / "data")
    assert_clean_failure(result, 2, "Table 2's rows")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()
