"""Training end to end on a tiny data set: it learns, it resumes exactly, it refuses bad input."""

import csv
import dataclasses
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from pydiff.datasets.split import split_indices
from pydiff.datasets.writer import generate
from pydiff.errors import ConfigError, DataFileError
from pydiff.problem import Problem
from pydiff.training.checkpoint import load_model, read_config, read_model_file
from pydiff.training.config import config_for
from pydiff.training.data import load_arrays
from pydiff.training.run import train

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
    # No BatchNorm recalibration at the end: the saved weights are then exactly the best epoch's.
    config = smoke(data, epochs=6, lr=3e-3, recalibrate_bn=False)
    result = train(config, tmp_path / "run", progress=False)
    losses = [row["val_loss"] for row in result.history]
    assert min(losses[1:]) < losses[0]
    with open(tmp_path / "run" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(6))
    assert [float(r["val_loss"]) for r in rows] == pytest.approx(losses, rel=1e-12)
    # the best epoch is the lowest held-out loss of an epoch that was not rolled back
    kept = [(float(r["val_loss"]), int(r["epoch"])) for r in rows if r["rolled_back"] == "False"]
    assert (result.best_val_loss, result.best_epoch) == min(kept)
    model, saved = load_model(tmp_path / "run")
    assert saved == config
    # The saved model is that epoch's: its loss on the validation samples, Eq. 2 computed here
    # (model 9: w = 100, MAE), is the loss it was selected by.
    arrays = load_arrays(config)
    val = arrays.split["val"]
    x, y = torch.as_tensor(arrays.inputs[val]), torch.as_tensor(arrays.fields[val]).double()
    with torch.no_grad():
        prediction = model.eval()(x).double()
    eq2 = (torch.exp(-(1 - y) / 100) * (prediction - y).abs()).mean().item()
    assert eq2 == pytest.approx(result.best_val_loss, rel=1e-5)
    # log.csv's val_mean_residual (the error-against-minutes curve) is that epoch's mean |r|
    best_row = rows[result.best_epoch]
    assert float(best_row["val_mean_residual"]) == pytest.approx((prediction - y).abs().mean().item(), rel=1e-5)
    assert float(best_row["val_mean_residual"]) != pytest.approx(eq2, rel=1e-3)  # not the weighted loss


class Interrupt(KeyboardInterrupt):
    pass


def interrupt_at(epoch):
    def progress(row):
        if row["epoch"] == epoch:
            raise Interrupt

    return progress


def log_rows(run):
    """log.csv without the columns that measure time and bytes."""
    with open(run / "log.csv") as f:
        return [{k: v for k, v in row.items() if k not in ("seconds", "bytes_written")} for row in csv.DictReader(f)]


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def assert_same_run(run_a, run_b):
    """Two run directories hold the same training, bit for bit: log, best weights, last state."""
    assert log_rows(run_a) == log_rows(run_b)
    (best_a, meta_a), (best_b, meta_b) = (read_model_file(r) for r in (run_a, run_b))
    assert meta_a["epoch"] == meta_b["epoch"] and same_weights(best_a, best_b)
    last_a, last_b = (torch.load(r / "last.pt", weights_only=True) for r in (run_a, run_b))
    assert last_a["replay_from"] == last_b["replay_from"]
    assert same_weights(last_a["state"]["model"], last_b["state"]["model"])
    moments = lambda last: [t for s in last["state"]["optimizer"]["state"].values() for t in s.values()]  # noqa: E731
    assert all(torch.equal(x, y) for x, y in zip(moments(last_a), moments(last_b)))


def test_resumed_run_equals_uninterrupted_run(data, tmp_path):
    whole = train(smoke(data, epochs=4), tmp_path / "whole", progress=False)
    with pytest.raises(Interrupt):
        train(smoke(data, epochs=4), tmp_path / "parts", progress=interrupt_at(1))
    assert not (tmp_path / "parts" / "result.json").exists()
    parts = train(smoke(data, epochs=4), tmp_path / "parts", resume=True, progress=False)
    assert [r["train_loss"] for r in parts.history] == [r["train_loss"] for r in whole.history]
    assert [r["val_loss"] for r in parts.history] == [r["val_loss"] for r in whole.history]
    assert_same_run(tmp_path / "whole", tmp_path / "parts")


def test_the_model_file_holds_weights_and_the_problem_only(data, tmp_path):
    result = train(smoke(data, epochs=2), tmp_path / "run", progress=False)
    weights, metadata = read_model_file(tmp_path / "run")
    assert all(torch.is_tensor(v) for v in weights.values())
    assert int(metadata["epoch"]) == result.best_epoch and float(metadata["val_loss"]) == result.best_val_loss
    assert Problem.from_attrs(json.loads(metadata["problem"])) == Problem()
    model, _ = load_model(tmp_path / "run")
    assert same_weights(weights, model.state_dict())
    last, _ = load_model(tmp_path / "run", "last")
    assert same_weights(torch.load(tmp_path / "run" / "last.pt", weights_only=True)["state"]["model"],
                        last.state_dict())


class Payload:
    """Unpickling this object runs ``touch MARKER``: what a tampered checkpoint could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.marker)],))


def test_a_tampered_checkpoint_runs_nothing_and_fails_in_one_line(data, tmp_path):
    run = tmp_path / "run"
    train(smoke(data, epochs=1), run, progress=False)
    marker = tmp_path / "pwned"
    checkpoint = torch.load(run / "last.pt", weights_only=True)
    checkpoint["meta"]["python_rng"] = Payload(marker)
    torch.save(checkpoint, run / "last.pt")
    with pytest.raises(DataFileError, match="unreadable checkpoint"):
        train(smoke(data, epochs=1), run, resume=True, progress=False)
    for command in (["evaluate", run], ["predict", run, "--inputs", data, "--out", tmp_path / "p.h5"]):
        (run / "model.safetensors").unlink(missing_ok=True)
        torch.save({"model": Payload(marker), "epoch": 0, "val_loss": 0.0}, run / "best.pt")  # a pydiff 0.1 run
        assert_clean_failure(pydiff(*command), 2, "cannot be loaded")
    (run / "best.pt").unlink()
    (run / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    assert_clean_failure(pydiff("evaluate", run), 2, "cannot be loaded")
    assert not marker.exists() and not (tmp_path / "p.h5").exists()


def test_a_damaged_or_foreign_checkpoint_is_refused_in_one_line(data, tmp_path):
    train(smoke(data, epochs=1), tmp_path / "run", progress=False)
    (tmp_path / "run" / "last.pt").write_bytes(b"garbage")
    with pytest.raises(DataFileError, match="unreadable checkpoint"):
        train(smoke(data, epochs=1), tmp_path / "run", resume=True, progress=False)
    torch.save({"model": {}, "optimizer": {}, "rollback": {}}, tmp_path / "run" / "last.pt")
    with pytest.raises(DataFileError, match="first format"):
        train(smoke(data, epochs=1), tmp_path / "run", resume=True, progress=False)


def test_checkpoints_write_at_most_a_fifth_of_the_training_state_per_epoch(data, tmp_path):
    run = tmp_path / "run"
    result = train(smoke(data, epochs=20, n_samples=16, width=1 / 32), run, progress=False)  # a checkpoint every 10 epochs
    model, _ = load_model(run)
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    moments = 2 * sum(p.numel() * p.element_size() for p in model.parameters())
    with open(run / "log.csv") as f:
        during = int(list(csv.DictReader(f))[-1]["bytes_written"])  # before the final files
    assert 0 < during / 20 <= (weights + moments) / 5
    assert result.bytes_written > during  # the final last.pt, model file and log were counted too


# --- Interruptions a real user meets: Ctrl-C, a scheduler's SIGTERM, a killed process ----------

# A threshold just under the loss of the epoch before (C = 0.975, m = 1) makes roll-backs frequent.
RUN_OPTIONS = {"epochs": 12, "checkpoint_every": 3, "lr_schedule": "constant", "rollback_C": 0.975,
               "rollback_m": 1, "rollback_s": 2, "width": 0.03125, "n_samples": 24}


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("whole") / "run"
    result = train(smoke(data, **RUN_OPTIONS), run, progress=False)
    assert result.rollbacks > 0, "the comparison must cover roll-backs"
    return run


def start_training(data, run, epochs=400):
    """`pydiff train` in a subprocess, with RUN_OPTIONS except a long run to interrupt."""
    args = ["--model", 9, "--data", data, "--out", run, "--preset", "smoke", "--epochs", epochs,
            "--checkpoint-every", 3, "--lr-schedule", "constant", "--rollback-C", 0.975, "--rollback-m", 1,
            "--rollback-s", 2, "--width", 0.03125, "--n-samples", 24]
    return subprocess.Popen([sys.executable, "-m", "pydiff", "train", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_epochs(process, run, n, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        log = run / "log.csv"
        if log.is_file() and len(log.read_text().splitlines()) > n:
            return
        time.sleep(0.01)
    process.kill()
    raise AssertionError("training did not start")


def test_a_killed_run_resumes_exactly_from_its_last_checkpoint(data, tmp_path, uninterrupted):
    run = tmp_path / "run"
    process = start_training(data, run)
    wait_for_epochs(process, run, 5)
    process.kill()  # SIGKILL: no chance to write anything; last.pt is the last periodic checkpoint
    process.communicate()
    checkpoint = torch.load(run / "last.pt", weights_only=True)
    assert checkpoint["resume_epoch"] % 3 == 2 and checkpoint["resume_epoch"] < 11
    assert checkpoint["replay_from"] < checkpoint["resume_epoch"]  # it replays a few epochs
    train(smoke(data, **RUN_OPTIONS), run, resume=True, progress=False)
    assert_same_run(uninterrupted, run)


# SIGTERM here, in a real process; a real SIGINT (Ctrl-C) stops every model of Table 2 in
# test_reproduce.py, through the same handler.
@pytest.mark.parametrize("signum", [signal.SIGTERM])
def test_a_stop_signal_writes_a_checkpoint_and_the_run_resumes_exactly(data, tmp_path, uninterrupted, signum):
    run = tmp_path / "run"
    process = start_training(data, run)
    wait_for_epochs(process, run, 3)
    process.send_signal(signum)  # a scheduler's pre-emption, or Ctrl-C
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr
    last = stderr.strip().splitlines()[-1]  # after the progress bar
    assert last.startswith(f"pydiff: error: stopped by {signal.Signals(signum).name} after epoch"), stderr
    assert "--resume" in last and "Traceback" not in stderr
    checkpoint = torch.load(run / "last.pt", weights_only=True)
    assert checkpoint["resume_epoch"] < 11 and not (run / "result.json").exists()
    train(smoke(data, **RUN_OPTIONS), run, resume=True, progress=False)
    assert_same_run(uninterrupted, run)


def test_resume_with_another_config_is_refused(data, tmp_path):
    train(smoke(data, epochs=1), tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="other options \\(lr 0.001 -> 0.0001\\)"):
        train(smoke(data, epochs=1, lr=1e-4), tmp_path / "run", resume=True, progress=False)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(smoke(data, epochs=2), tmp_path / "run", progress=False)


def test_epochs_may_change_on_resume_only_under_a_constant_learning_rate(data, tmp_path):
    # The cosine rate of every epoch depends on the total: a resumed run with other epochs would
    # equal neither run, so it is refused.  A constant rate makes the longer run the one that
    # would have been asked for from the start: it equals an uninterrupted run of that length.
    # (A run interrupted early may also be ended sooner: the killed-run tests below do that.)
    train(smoke(data, epochs=2), tmp_path / "cosine", progress=False)
    with pytest.raises(ConfigError, match="epochs 2 -> 3"):
        train(smoke(data, epochs=3), tmp_path / "cosine", resume=True, progress=False)
    constant = dict(lr_schedule="constant", rollback="off", recalibrate_bn=False, checkpoint_every=1)
    train(smoke(data, epochs=2, **constant), tmp_path / "short", progress=False)
    with pytest.raises(ConfigError, match="has trained 2 epochs already"):
        train(smoke(data, epochs=1, **constant), tmp_path / "short", resume=True, progress=False)
    with pytest.raises(Interrupt):  # continued, the run is unfinished again until it ends
        train(smoke(data, epochs=4, **constant), tmp_path / "short", resume=True, progress=interrupt_at(2))
    assert not (tmp_path / "short" / "result.json").exists()
    extended = train(smoke(data, epochs=3, **constant), tmp_path / "short", resume=True, progress=False)
    whole = train(smoke(data, epochs=3, **constant), tmp_path / "whole", progress=False)
    assert [r["train_loss"] for r in extended.history] == [r["train_loss"] for r in whole.history]


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


def test_batchnorm_recalibration_records_the_statistics_evaluation_meets():
    from pydiff.training.batchnorm import recalibrate_batchnorm

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.Dropout(0.5), torch.nn.BatchNorm2d(3))
    x = torch.randn(40, 1, 8, 8)
    net.train()
    for _ in range(20):  # training-mode statistics: variance inflated by the dropout
        net(x[torch.randperm(40)[:10]])
    inflated = net[2].running_var.clone()
    recalibrate_batchnorm(net, net, x.split(10), torch.device("cpu"))
    with torch.no_grad():
        clean = net[0](x)
    per_batch_var = torch.stack([clean[i:i + 10].var(dim=(0, 2, 3)) for i in range(0, 40, 10)])
    torch.testing.assert_close(net[2].running_mean, clean.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(net[2].running_var, per_batch_var.mean(0))  # unbiased, batches averaged
    assert torch.all(net[2].running_var < inflated) and net[2].momentum == 0.1 and not net.training
    # a network without BatchNorm (the FNO) costs no pass over the training inputs
    read = []
    plain = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.Dropout(0.5))
    recalibrate_batchnorm(plain, plain, (read.append(b) or b for b in x.split(10)), torch.device("cpu"))
    assert read == []


def test_recalibrating_each_epoch_changes_the_selection_statistics_not_the_training(data, tmp_path):
    from pydiff.training.batchnorm import recalibrate_batchnorm
    from pydiff.training.run import file_samples

    plain = dict(epochs=4, recalibrate_bn=False)  # model 9: dropout before its BatchNorms
    without = train(smoke(data, **plain), tmp_path / "without", progress=False)
    config = smoke(data, recalibrate_each_epoch=12, **plain)
    within = train(config, tmp_path / "within", progress=False)
    # BatchNorm's running statistics never enter a training-mode step: the same training, bit for bit
    assert [r["train_loss"] for r in within.history] == [r["train_loss"] for r in without.history]
    assert [r["val_loss"] for r in within.history] != [r["val_loss"] for r in without.history]
    # the best weights carry the statistics of the first 12 training inputs, dropout off
    saved, _ = read_model_file(tmp_path / "within")
    arrays = load_arrays(config)
    model, _ = load_model(tmp_path / "within")
    for name, buffer in model.named_buffers():
        if "running" in name:
            buffer.fill_(7.0)  # overwritten by the recalibration below, or the comparison fails
    inputs = file_samples(arrays, arrays.split["train"][:12], torch.device("cpu")).inputs
    model = model.to(memory_format=torch.channels_last)  # as training ran it: the same summation order
    recalibrate_batchnorm(model, model, inputs.split(config.eval_batch_size), torch.device("cpu"), amp=False)
    recomputed = model.state_dict()
    assert any("running_var" in k for k in saved)
    for key in saved:
        torch.testing.assert_close(recomputed[key], saved[key], rtol=1e-5, atol=1e-6)
    # and the logged held-out loss of the best epoch is that of those weights with those statistics
    held_out = file_samples(arrays, arrays.split[config.select_on], torch.device("cpu"))
    x, y = held_out.inputs, held_out.fields
    model.eval()
    with torch.no_grad():
        prediction = model(x)
    assert float((prediction - y).abs().mean()) == pytest.approx(within.history[within.best_epoch]["val_mean_residual"],
                                                                 rel=1e-4)
    # interrupted and resumed, the same run
    with pytest.raises(Interrupt):
        train(config, tmp_path / "parts", progress=interrupt_at(1))
    train(config, tmp_path / "parts", resume=True, progress=False)
    assert_same_run(tmp_path / "within", tmp_path / "parts")


@pytest.mark.parametrize("network, loss", [("encdec", "exp-MAE"), ("unet", "tanh-MSE"), ("fno", "tanh-Huber")])
def test_the_2024_networks_train_on_any_lattice_with_the_2024_losses(tmp_path, network, loss):
    path = generate(tmp_path / "many.h5", 30, Problem(lattice=40, radius=3, n_sources=3, min_sources=1,
                                                      setup="paper2024"), progress=False)
    config = config_for(None, "smoke", data=str(path), network=network, loss=loss, w=1.0, width=1 / 16,
                        n_samples=30, epochs=4, lr=3e-3)
    result = train(config, tmp_path / "run", progress=False)
    losses = [row["val_loss"] for row in result.history]
    assert min(losses[1:]) < losses[0]
    model, saved = load_model(tmp_path / "run")
    assert saved.network == network and type(model).__name__ == {"encdec": "EncoderDecoder", "unet": "UNet",
                                                                 "fno": "FNO"}[network]
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 1, 40, 40)).shape == (1, 1, 40, 40)
    if network == "encdec":  # per source count and region, through the command line
        result = pydiff("evaluate", tmp_path / "run")
        assert result.returncode == 0, result.stderr
        assert "per number of sources and region" in result.stdout and "inside sources" in result.stdout
        metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
        assert [row["n_sources"] for row in metrics["test"]["regions"]] == [1, 2, 3]


def test_cli_train_needs_a_model_for_the_surrogate(data, tmp_path):
    result = pydiff("train", "--data", data, "--out", tmp_path / "run", "--preset", "smoke")
    assert_clean_failure(result, 2, "give --model N")
    result = pydiff("train", "--data", data, "--out", tmp_path / "run", "--preset", "smoke", "--network", "encdec",
                    "--loss", "exp-MAE", "--width", 0.0625, "--epochs", 1)
    assert result.returncode == 0, result.stderr
    assert "trained encdec" in result.stdout
    # the 2024 presets' network is the encoder-decoder: no --network needed
    result = pydiff("train", "--data", data, "--out", tmp_path / "run2024", "--preset", "quick2024", "--width", 0.0625,
                    "--epochs", 1, "--n-samples", 20)
    assert result.returncode == 0, result.stderr
    assert "trained encdec" in result.stdout


def test_streaming_the_data_from_its_file_trains_exactly_as_holding_it_in_memory(data, tmp_path):
    # The held-out set is streamed too; recalibration (smoke preset) reads the training set again.
    held = train(smoke(data, epochs=3, stream="never", eval_batch_size=7), tmp_path / "memory", progress=False)
    streamed = train(smoke(data, epochs=3, stream="always", eval_batch_size=7), tmp_path / "streamed", progress=False)
    assert [r["val_loss"] for r in held.history] == [r["val_loss"] for r in streamed.history]
    assert [r["train_loss"] for r in held.history] == [r["train_loss"] for r in streamed.history]
    best = [read_model_file(r)[0] for r in (tmp_path / "memory", tmp_path / "streamed")]
    assert same_weights(*best)


def test_an_unknown_network_name_is_refused_not_built_as_the_surrogate():
    from pydiff.nn.build import build_model

    config = dataclasses.replace(config_for(9, "smoke"), network="resnet")  # as a hand-edited config.json gives
    with pytest.raises(ConfigError, match="unknown network 'resnet'"):
        build_model(config)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"learning_rate": 0.1}, "unknown setting 'learning_rate'"),  # a key this pydiff does not know
        ({"lr": -1}, "learning rate must be positive"),  # a value no run could have trained with
        ({"network": "resnet"}, "unknown network 'resnet'"),
    ],
)
def test_a_run_configuration_with_an_unknown_key_or_impossible_value_is_refused(tmp_path, change, match):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({**config_for(9, "smoke").to_json(), **change}))
    with pytest.raises(DataFileError, match=match) as error:
        read_config(run)
    assert str(run / "config.json") in str(error.value)
    assert_clean_failure(pydiff("evaluate", run), 2, match)


def test_a_data_file_that_exists_but_cannot_be_read_is_refused_when_configuring(tmp_path):
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(b"not hdf5")
    with pytest.raises(DataFileError, match="not an HDF5 file"):
        config_for(None, "quick2024", data=str(damaged))  # not silently a network of 1 input channel
    # No data yet (pydiff bench train, or a pipeline before it generates its data): the file decides later.
    assert config_for(None, "quick2024", data=str(tmp_path / "later.h5")).in_channels == 1
    assert config_for(None, "quick2024").in_channels == 1


def test_only_a_damaged_file_is_reported_as_damaged(data, tmp_path, monkeypatch):
    import pydiff.training.checkpoint as checkpoint

    run = tmp_path / "run"
    train(smoke(data, epochs=1), run, progress=False)
    last = (run / "last.pt").read_bytes()
    # What damage raises is still one line: a truncated checkpoint, weights of another shape, a
    # pydiff 0.1 best.pt holding something else than weights.
    (run / "last.pt").write_bytes(last[: len(last) // 2])
    with pytest.raises(DataFileError, match="unreadable checkpoint"):
        checkpoint.load_checkpoint(run)
    (run / "last.pt").write_bytes(last)
    other = config_for(9, "smoke", width=0.5).to_json()
    (run / "config.json").write_text(json.dumps(other))
    with pytest.raises(DataFileError, match="cannot be loaded as this run's model"):
        load_model(run)
    (run / "config.json").write_text(json.dumps(smoke(data, epochs=1).to_json()))
    model_file = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").unlink()
    torch.save(torch.zeros(3), run / "best.pt")
    with pytest.raises(DataFileError, match="cannot be loaded"):
        read_model_file(run)
    (run / "best.pt").unlink()
    (run / "model.safetensors").write_bytes(model_file)

    # An error that is not the file's (no memory, a bug) is not disguised as a damaged file.
    def no_memory(*args, **kwargs):
        raise MemoryError

    for name in ("_torch_load", "load_file"):
        with monkeypatch.context() as patch:
            patch.setattr(checkpoint, name, no_memory)
            with pytest.raises(MemoryError):
                checkpoint.load_checkpoint(run) if name == "_torch_load" else read_model_file(run)
    monkeypatch.setattr(torch.nn.Module, "load_state_dict", no_memory)
    with pytest.raises(MemoryError):
        load_model(run)


def test_an_error_whose_checkpoint_cannot_be_saved_is_still_the_error_raised(data, tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pydiff.training.checkpoint.save_checkpoint", disk_full)
    with pytest.raises(Interrupt) as error:  # not the OSError of the save that followed it
        train(smoke(data, epochs=2), tmp_path / "run", progress=interrupt_at(0))
    assert "No space left on device" in " ".join(getattr(error.value, "__notes__", []))


def test_a_run_whose_held_out_loss_is_nan_stops_with_a_clear_error(data, tmp_path):
    result = pydiff("train", "--model", 9, "--data", data, "--out", tmp_path / "run", "--preset", "smoke",
                    "--epochs", 2, "--lr", 1e6)
    # stderr holds the progress bar too: the error is its last line
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "the loss is NaN from epoch 0: lower --lr" in result.stderr.splitlines()[-1], result.stderr
    with pytest.raises(ConfigError, match="the loss is NaN from epoch 0"):
        train(smoke(data, epochs=2, lr=1e6), tmp_path / "library", progress=False)
    assert not (tmp_path / "run" / "result.json").exists() and not (tmp_path / "run" / "model.safetensors").exists()


def test_a_split_per_source_count_that_leaves_a_split_empty_is_refused(tmp_path):
    from pydiff.training.data import run_split

    # 100 samples of 20 source counts: 5 per count, of which round(0.5) = 0 go to the test split
    counts = np.arange(100) % 20 + 1
    config = config_for(None, "quick2024", split=(0.8, 0.1, 0.1))
    with pytest.raises(ConfigError, match=r"leaves the test split empty: each of the 20 source counts is split on "
                                          r"its own, and needs at least 8 samples \(160 in all\); here 5"):
        run_split(config, counts)
    assert len(run_split(config, np.arange(160) % 20 + 1)["test"]) == 20
    assert len(run_split(config_for(None, "quick2024", split=(0.8, 0.2, 0.0)), counts)["val"]) == 0  # asked for
    path = generate(tmp_path / "many.h5", 100, Problem(lattice=8, radius=1, n_sources=20, min_sources=1,
                                                       setup="paper2024"), progress=False)
    result = pydiff("train", "--preset", "quick2024", "--data", path, "--out", tmp_path / "run", "--split", "0.8,0.1,0.1")
    assert_clean_failure(result, 2, "leaves the test split empty")
    assert not (tmp_path / "run").exists()


def test_train_creates_the_parent_directories_of_its_out(data, tmp_path):
    result = pydiff("train", "--model", 9, "--data", data, "--out", "runs/quick/x", "--preset", "smoke", "--epochs", 1,
                    "--n-samples", 10, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "runs" / "quick" / "x" / "model.safetensors").is_file()
    (tmp_path / "file").write_text("")
    assert_clean_failure(pydiff("train", "--model", 9, "--data", data, "--out", tmp_path / "file" / "x", "--preset",
                                "smoke", "--epochs", 1), 2, "cannot create")


def test_a_trainer_is_built_from_keywords_and_is_given_the_model_once():
    # issue 24: ten positional arguments, the model among them twice (as saved, as stepped)
    import inspect

    from pydiff.training.distributed import Context
    from pydiff.training.run import build_network
    from pydiff.training.trainer import RunModel, Trainer

    parameters = inspect.signature(Trainer).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters), [p.name for p in parameters]
    assert "model" in {p.name for p in parameters} and not {"module", "network"} & {p.name for p in parameters}
    built = build_network(config_for(9, "smoke", width=1 / 32), Context(device=torch.device("cpu")))
    assert isinstance(built, RunModel) and built.network is built.module  # one process, not compiled
