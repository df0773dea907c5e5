"""pydiff as users install it: a wheel in a fresh place runs the main job from an empty
directory, and the models it ships load by name and predict as their recorded metrics say."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pydiff
from pydiff.evaluation.predict import predict
from pydiff.training.checkpoint import model_problem
from pydiff.training.pretrained import load_pretrained, pretrained_dir, pretrained_names

from .cli import assert_clean_failure
from .cli import pydiff as run_cli

ROOT = Path(__file__).resolve().parents[1]


def test_a_wheel_installed_elsewhere_reproduces_from_an_empty_directory(tmp_path):
    pytest.importorskip("hatchling")
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("pydiff-*.whl"))
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}  # the wheel's pydiff first; its dependencies from here
    where = subprocess.run([sys.executable, "-c", "import pydiff, pydiff.solvers.julia as j, pydiff.registry as r; "
                            "print(pydiff.__file__, j.julia_source(), len(r.table2()), pydiff.__version__, "
                            "pydiff.pretrained_names())"], capture_output=True, text=True, cwd=empty, env=env)
    assert where.returncode == 0, where.stderr
    module, julia, rows, version, names = where.stdout.split(maxsplit=4)
    assert module.startswith(str(site)) and julia.startswith(str(site)) and rows == "14"
    assert version == pydiff.__version__ and eval(names) == pretrained_names()
    result = subprocess.run([sys.executable, "-m", "pydiff", "reproduce", "--model", "9", "--preset", "smoke"],
                            capture_output=True, text=True, cwd=empty, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "2.08e-03" in result.stdout  # the published value, from the table the wheel carries
    assert (empty / "runs" / "smoke" / "model09-seed0" / "model.safetensors").is_file()


@pytest.mark.parametrize("name", ["quick-model9", "quick2024-encdec"])
def test_a_shipped_model_predicts_fresh_samples_as_well_as_its_record_says(name):
    assert name in pretrained_names()
    model, config = load_pretrained(name)
    problem = model_problem(pretrained_dir(name))
    record = json.loads((pretrained_dir(name) / "metrics.json").read_text())
    images = pydiff.source_images(problem, pydiff.sample_sources(problem, 200, seed=12345))
    fields, _ = pydiff.solve(images, problem)
    error = np.abs(predict(model, images[:, None], 50)[:, 0] - fields).mean()
    assert 0.5 < error / record["test"]["mean_res"] < 2.0, (error, record["test"]["mean_res"])
    assert not model.training and config.data == ""


def test_predict_with_a_shipped_model_and_a_bad_name(tmp_path):
    problem = model_problem(pretrained_dir("quick-model9"))
    np.save(tmp_path / "images.npy", pydiff.source_images(problem, pydiff.sample_sources(problem, 3, seed=1)))
    result = run_cli("predict", "--pretrained", "quick-model9", "--inputs", tmp_path / "images.npy",
                     "--out", tmp_path / "fields.h5")
    assert result.returncode == 0, result.stderr
    assert "3 predictions of 100x100" in result.stdout
    failure = run_cli("predict", "--pretrained", "nope", "--inputs", tmp_path / "images.npy", "--out", tmp_path / "x.h5")
    assert_clean_failure(failure, 2, "no pretrained model 'nope'; choose one of quick-model9, quick2024-encdec")
    assert_clean_failure(run_cli("predict", "--inputs", tmp_path / "images.npy", "--out", tmp_path / "x.h5"), 2,
                         "give either a run directory or --pretrained NAME")


def test_export_writes_a_model_that_loads_without_its_run(tmp_path):
    from pydiff.pipelines.steps import ensure_data, train_and_evaluate
    from pydiff.training.config import config_for
    from pydiff.training.distributed import Context

    data = ensure_data(tmp_path / "data", 40, 0, progress=False)
    train_and_evaluate(config_for(9, "smoke", data=str(data), epochs=1), tmp_path / "run", Context(),
                       splits=("test",), progress=False)
    result = run_cli("export", tmp_path / "run", tmp_path / "shared")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["config.json", "metrics.json", "model.safetensors"]
    (tmp_path / "data").rename(tmp_path / "gone")  # the shared model does not need the data file
    shared, config = pydiff.load_model(tmp_path / "shared")
    original, _ = pydiff.load_model(tmp_path / "run")
    assert config.data == "" and all((a == b).all() for a, b in zip(shared.state_dict().values(),
                                                                   original.state_dict().values()))
    assert_clean_failure(run_cli("export", tmp_path / "run", tmp_path / "shared"), 2, "exists; pass --overwrite")
    # a calibrated run's bound travels with it, valid for the same weights wherever they go
    (tmp_path / "gone").rename(tmp_path / "data")
    assert run_cli("calibrate", tmp_path / "run", "--alpha", 0.5).returncode == 0
    assert run_cli("export", tmp_path / "run", tmp_path / "bounded").returncode == 0
    from pydiff.evaluation.bound import read_calibration

    assert read_calibration(tmp_path / "bounded")["alpha"] == 0.5


def fake_evaluated_run(run, **metrics):
    """A run directory as export reads it: config, best model and test metrics (untrained weights)."""
    from pydiff.nn.build import build_model
    from pydiff.training.checkpoint import save_model, write_config
    from pydiff.training.config import config_for

    run.mkdir(parents=True)
    config = config_for(9, "smoke", width=1 / 32)
    write_config(config, run)
    save_model(build_model(config).state_dict(), run)
    (run / "metrics.json").write_text(json.dumps({"test": {"n_samples": 4, "mean_res": 0.01, **metrics}}))
    return run


def test_export_refuses_to_write_over_its_own_run_or_a_directory_around_it(tmp_path):
    run = fake_evaluated_run(tmp_path / "runs" / "quick" / "model09")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    (tmp_path / "link").symlink_to(run)
    for out, cwd in [(run, None), ("quick/model09", tmp_path / "runs"), (tmp_path / "link", None),
                     (tmp_path / "runs", None)]:
        assert_clean_failure(run_cli("export", run, out, "--overwrite", cwd=cwd), 2, "would replace the run")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_export_overwrite_replaces_the_old_model_and_a_failure_keeps_it(tmp_path, monkeypatch):
    import shutil

    old = fake_evaluated_run(tmp_path / "old", mean_res=0.5)
    (old / "calibration.json").write_text("{}")  # the old model's bound: it must not outlive it
    assert run_cli("export", old, tmp_path / "shared").returncode == 0
    new = fake_evaluated_run(tmp_path / "new", mean_res=0.25)
    assert run_cli("export", new, tmp_path / "shared", "--overwrite").returncode == 0
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["config.json", "metrics.json", "model.safetensors"]
    assert json.loads((tmp_path / "shared" / "metrics.json").read_text())["test"]["mean_res"] == 0.25
    # a failure while writing leaves the previous OUT as it was, and nothing beside it
    before = {p.name: p.read_bytes() for p in (tmp_path / "shared").iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", disk_full)
    from pydiff.training.pretrained import export_model

    with pytest.raises(OSError):
        export_model(old, tmp_path / "shared", overwrite=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "shared").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "old", "shared"]
    monkeypatch.undo()
    # a directory that is not a shared model is not replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert_clean_failure(run_cli("export", new, tmp_path / "mine", "--overwrite"), 2, "not a shared model")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
