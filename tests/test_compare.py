"""`pydiff compare`: four models on one footing, the resolution transfer, the time budget."""

import json

import numpy as np
import pandas as pd
import pytest

from pydiff.errors import ConfigError
from pydiff.pipelines.compare import MODELS, compare, finer_problem
from pydiff.pipelines.steps import output_dir
from pydiff.problem import Problem
from pydiff.solvers import solve
from pydiff.training.distributed import Context

from .cli import assert_clean_failure, pydiff

pytest.importorskip("neuralop")


def test_the_finer_problem_is_the_same_field_sampled_twice_as_fine():
    problem = Problem(lattice=40, radius=3, n_sources=1)
    finer = finer_problem(problem)
    assert (finer.lattice, finer.radius, finer.D, finer.gamma) == (80, 6, 4.0, problem.gamma)
    # one centred disk: the fine field averaged over 2x2 blocks is close to the coarse one
    coarse_img = np.zeros((1, 40, 40), np.float32)
    coarse_img[0, 17:23, 17:23] = 1
    fine_img = np.zeros((1, 80, 80), np.float32)
    fine_img[0, 34:46, 34:46] = 1
    coarse, _ = solve(coarse_img, problem)
    fine, _ = solve(fine_img, finer)
    blocks = fine[0].reshape(40, 2, 40, 2).mean(axis=(1, 3))
    assert np.abs(blocks - coarse[0]).max() < 0.05


SMALL = {"transfer_samples": 6, "timing_batch": 4, "progress": False}


@pytest.fixture
def no_figures(monkeypatch):
    """Each run's figures (tested with reproduce) cost seconds here, four runs at a time."""
    from pydiff.evaluation import report

    monkeypatch.setattr(report, "write_figures", lambda *args: [])


def test_compare_trains_every_model_on_one_footing(tmp_path, no_figures):
    # In-process with a small transfer set and timing batch: the FNO runs at full resolution in
    # every layer, which costs seconds per 256-sample batch on a 2-core CPU.
    table = compare(MODELS, "smoke", tmp_path / "cmp", tmp_path / "data", epochs=1, n_samples=30, **SMALL)
    assert table.model.tolist() == ["surrogate", "encdec", "unet", "fno"]
    assert pd.read_csv(tmp_path / "cmp" / "compare.csv").model.tolist() == table.model.tolist()
    assert set(table.columns) >= {"params", "mean_res", "p99_res", "max_res", "train_s", "infer_ms_b1",
                                  "infer_ms_b4", "mean_res_2x"}
    from pydiff.nn.cnn2024 import EncoderDecoder

    assert (table.epochs == 1).all()
    assert table.params[1] == sum(p.numel() for p in EncoderDecoder(0.0625).parameters())
    assert np.isnan(table.mean_res_2x[0]) and table.mean_res_2x[1:].notna().all()  # the surrogate is 100x100 only
    configs = [json.loads((tmp_path / "cmp" / m / "config.json").read_text()) for m in table.model]
    assert len({(c["data"], c["loss"], c["w"], tuple(c["split"]), c["lr"], c["batch_size"]) for c in configs}) == 1
    meta = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert meta["neuraloperator"] and meta["budget"] == "1 epochs per model"
    assert (tmp_path / "cmp" / "compare.md").read_text().startswith("| model |")


def test_a_time_budget_sets_each_models_epochs_from_its_speed(tmp_path, no_figures):
    table = compare(("encdec",), "smoke", tmp_path / "cmp", tmp_path / "data", budget_minutes=0.05,
                    n_samples=40, **SMALL)
    assert (table.epochs >= 1).all()
    assert "0.05 minutes per model" in json.loads((tmp_path / "cmp" / "compare.json").read_text())["budget"]
    # asked again, the run keeps the epochs its budget gave it (the timing is not repeated)
    again = compare(("encdec",), "smoke", tmp_path / "cmp", tmp_path / "data", budget_minutes=0.05,
                    n_samples=40, **SMALL)
    assert again.epochs.tolist() == table.epochs.tolist()
    with pytest.raises(ConfigError, match="budget of 0.05 minutes, not 5"):
        compare(("encdec",), "smoke", tmp_path / "cmp", tmp_path / "data", budget_minutes=5, n_samples=40, **SMALL)


def test_the_runs_directory_is_created_with_its_parents_but_not_over_a_file(tmp_path):
    # the documented `pydiff compare --runs runs/compare` must work where runs/ does not exist yet
    assert output_dir(tmp_path / "runs" / "compare", Context()).is_dir()
    (tmp_path / "file").write_text("keep")
    with pytest.raises(ConfigError, match="not a directory"):
        output_dir(tmp_path / "file", Context())
    assert (tmp_path / "file").read_text() == "keep"


def test_an_unknown_model_fails_in_one_line(tmp_path):
    result = pydiff("compare", "--models", "surrogate,transformer", "--runs", tmp_path / "cmp",
                    "--data-dir", tmp_path / "data")
    assert_clean_failure(result, 2, "unknown model(s) transformer")
    assert not (tmp_path / "data").exists()


def test_epochs_replace_the_default_budget_and_a_budget_with_epochs_is_refused(tmp_path):
    from pydiff.pipelines.compare import budget_epochs
    from pydiff.training.config import config_for

    # quick's default budget (12 minutes) must not override epochs the user asked for
    with pytest.raises(ConfigError, match="not both"):
        compare(("encdec",), "quick", tmp_path / "cmp", tmp_path / "data", budget_minutes=5, epochs=2, **SMALL)
    # a run keeps the epochs its budget gave it, and refuses another budget
    run = tmp_path / "run"
    run.mkdir()
    (run / "budget.json").write_text(json.dumps({"budget_minutes": 3.0, "epochs": 4}))
    (run / "config.json").write_text(json.dumps(config_for(None, "quick2024", epochs=4).to_json()))
    assert budget_epochs(config_for(None, "quick2024"), run, 3.0, Context()) == 4
    with pytest.raises(ConfigError, match="budget of 3 minutes, not 5"):
        budget_epochs(config_for(None, "quick2024"), run, 5.0, Context())


def test_the_budget_counts_the_samples_an_epoch_really_visits(tmp_path):
    # bench_train's epoch time must follow the split of the data file: the training fraction,
    # the split that picks the best epoch (the test split for paper2024) and its absence.
    from pydiff.datasets.writer import generate
    from pydiff.training.config import config_for
    from pydiff.training.data import epoch_sizes, load_arrays

    problem = Problem(lattice=24, radius=3, n_sources=4, min_sources=1, setup="paper2024")
    path = str(generate(tmp_path / "d.h5", 103, problem, progress=False))
    for options in ({}, {"train_fraction": 0.5}, {"select_on": "test"}, {"split": (0.8, 0.2, 0.0)},
                    {"train_fraction": 0.3, "select_on": "test", "split": (0.6, 0.3, 0.1)}):
        config = config_for(None, "quick2024", data=path, **options)
        split = load_arrays(config).split
        held_out = len(split[config.select_on]) or len(split["train"])
        assert epoch_sizes(config) == (len(split["train"]), held_out), options
