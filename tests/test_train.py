"""Training end to end on a tiny data set: it learns, it resumes exactly, it refuses bad input."""

import csv
import json

import numpy as np
import pytest
import torch

from pydiff.dataset import generate
from pydiff.errors import ConfigError, DataFileError
from pydiff.problem import Problem
from pydiff.train import config_for, load_model, split_indices, train

from .cli import assert_clean_failure, pydiff


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "smoke.h5"
    generate(path, 60, Problem(), seed=0, progress=False)
    return path


def smoke(data, **overrides):
    return config_for(9, "smoke", data=str(data), **overrides)


def test_split_is_seeded_disjoint_and_complete():
    a = split_indices(100, (0.7, 0.2, 0.1), seed=3)
    assert [len(a[k]) for k in ("train", "test", "val")] == [70, 20, 10]
    assert len(np.unique(np.concatenate(list(a.values())))) == 100
    b = split_indices(100, (0.7, 0.2, 0.1), seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_smoke_training_lowers_the_held_out_loss(data, tmp_path):
    result = train(smoke(data, epochs=6, lr=3e-3), tmp_path / "run", progress=False)
    losses = [row["val_loss"] for row in result.history]
    assert min(losses[1:]) < losses[0]
    for name in ("config.json", "best.pt", "last.pt", "log.csv"):
        assert (tmp_path / "run" / name).is_file()
    with open(tmp_path / "run" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and set(rows[0]) >= {"epoch", "train_loss", "val_loss", "rolled_back"}
    model, config = load_model(tmp_path / "run")
    assert config.model == 9 and isinstance(model, torch.nn.Module)


class Interrupt(KeyboardInterrupt):
    pass


def interrupt_at(epoch):
    def progress(row):
        if row["epoch"] == epoch:
            raise Interrupt

    return progress


def test_resumed_run_equals_uninterrupted_run(data, tmp_path):
    whole = train(smoke(data, epochs=4), tmp_path / "whole", progress=False)
    with pytest.raises(Interrupt):
        train(smoke(data, epochs=4), tmp_path / "parts", progress=interrupt_at(1))
    parts = train(smoke(data, epochs=4), tmp_path / "parts", resume=True, progress=False)
    assert [r["train_loss"] for r in parts.history] == [r["train_loss"] for r in whole.history]
    assert [r["val_loss"] for r in parts.history] == [r["val_loss"] for r in whole.history]
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "parts" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_another_config_is_refused(data, tmp_path):
    train(smoke(data, epochs=1), tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="another configuration \\(lr differ"):
        train(smoke(data, epochs=2, lr=1e-4), tmp_path / "run", resume=True, progress=False)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(smoke(data, epochs=2), tmp_path / "run", progress=False)


def test_config_json_round_trip(data, tmp_path):
    config = smoke(data, epochs=1)
    train(config, tmp_path / "run", progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"] == 9 and saved["loss"] == "MAE" and saved["w"] == 100.0


def test_wrong_lattice_is_a_data_error(tmp_path):
    path = generate(tmp_path / "small.h5", 6, Problem(lattice=20, radius=3), progress=False)
    with pytest.raises(DataFileError, match="lattice 20"):
        train(config_for(9, "smoke", data=str(path)), tmp_path / "run", progress=False)


@pytest.mark.parametrize(
    "args, match",
    [
        (["--model", "15"], "unknown model id 15"),
        (["--lr", "-0.1"], "learning rate must be positive"),
        (["--data", "missing.h5"], "no such file"),
        (["--split", "0.5,x,0.5"], "--split"),
    ],
)
def test_cli_bad_input(data, tmp_path, args, match):
    base = {"--model": "9", "--data": str(data), "--out": str(tmp_path / "run"), "--preset": "smoke"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    result = pydiff("train", *[x for kv in base.items() for x in kv], cwd=tmp_path)
    assert_clean_failure(result, 2, match)
    assert not (tmp_path / "run").exists()


def test_cli_wrong_lattice(tmp_path):
    path = generate(tmp_path / "small.h5", 6, Problem(lattice=20, radius=3), progress=False)
    result = pydiff("train", "--model", 9, "--data", path, "--out", tmp_path / "run", "--preset", "smoke")
    assert_clean_failure(result, 2, "lattice 20")


def test_cli_train_and_model(data, tmp_path):
    result = pydiff("train", "--model", 12, "--data", data, "--out", tmp_path / "run", "--preset", "smoke", "--epochs", 1)
    assert result.returncode == 0, result.stderr
    assert "trained model 12" in result.stdout
    table = pydiff("model", "--id", 9)
    assert table.returncode == 0 and "2048 x 1 x 1" in table.stdout and "ConvT 4x4" in table.stdout
