"""Data-parallel training: 2 CPU ranks (gloo) follow 1 process, batch for batch.

Both tests launch real ranks with ``torchrun`` (``python -m torch.distributed.run``), as a user
on a cluster would, on the loopback interface; the second through the command line.
"""

import csv
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pydiff.datasets.writer import generate
from pydiff.problem import Problem
from pydiff.training.config import config_for
from pydiff.training.run import train


def torchrun(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


# What two gloo ranks run, in one launch (a launch costs seconds): the global BatchNorm against
# BatchNorm on the whole batch, a decision of rank 0 sent to every rank, and two short trainings
# (on the file's samples and on fresh online samples) whose logs the test compares with one
# process's.
TWO_RANKS = textwrap.dedent("""
    import sys
    import time
    import torch
    import torch.distributed as dist
    from pydiff.training.config import config_for
    from pydiff.training.distributed import GlobalBatchNorm2d, from_main, rank_slice, setup
    from pydiff.training.run import train

    ctx = setup("cpu")
    torch.manual_seed(0)
    x = torch.randn(5, 3, 4, 4) * 3 + 1   # a global batch of 5: rank 0 takes 3 samples, rank 1 two
    weight = torch.randn(3, 4, 4)         # a loss that weighs every output differently
    reference = torch.nn.BatchNorm2d(3)
    local = GlobalBatchNorm2d(3)
    with torch.no_grad():
        for bn in (reference, local):
            bn.weight.copy_(torch.tensor([0.5, 1.5, 2.0]))
            bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    full = x.clone().requires_grad_()
    expected = reference(full)
    (expected * weight).sum().backward()
    mine = rank_slice(torch.arange(5), ctx)
    part = x[mine].clone().requires_grad_()
    out = local(part)
    (out * weight).sum().backward()
    grads = torch.cat([local.weight.grad, local.bias.grad])
    dist.all_reduce(grads)                # what DDP sums (before its division by K)
    checks = {
        "output": torch.allclose(out, expected[mine].detach(), atol=1e-5),
        "input grad": torch.allclose(part.grad, full.grad[mine], atol=1e-5),
        "affine grads": torch.allclose(grads, torch.cat([reference.weight.grad, reference.bias.grad]), atol=1e-4),
        "running mean": torch.allclose(local.running_mean, reference.running_mean, atol=1e-6),
        "running var": torch.allclose(local.running_var, reference.running_var, atol=1e-6),
        "rank 0 decides": from_main(17 if ctx.rank == 0 else ctx.rank, ctx) == 17,
    }
    failed = [name for name, ok in checks.items() if not ok]
    print(f"rank {ctx.rank}: " + ("ok" if not failed else "FAILED " + ", ".join(failed)), flush=True)
    data, out = sys.argv[1], sys.argv[2]
    for kind in ("file", "online"):
        # Rank 1 looks into the run directory late, as it may on a busy machine: before the ranks
        # waited for each other there, it found rank 0's fresh config.json and refused the
        # directory as "already holds a run" (one full suite in four on 2 cores).
        if ctx.rank == 1:
            time.sleep(0.5)
        train(config_for(9, "smoke", data=data, dropout_all=0.0, training_data=kind, **OPTIONS), f"{out}/{kind}",
              progress=False)
    dist.destroy_process_group()
    sys.exit(1 if failed else 0)
""")

# 42 training samples in global batches of 41: every epoch has a batch split 21/20 and a last
# batch of one sample, which leaves rank 1 with nothing (its loss and statistics count zero).
# PyTorch's initialisation, not the smoke preset's: that one starts NN2's last BatchNorm on
# values near 1 with a spread of 0.002, where any two float32 summation orders already differ by
# 1e-5 (a property of float32, not of data parallelism).  Online, each rank makes only its own
# share of each batch's fresh samples.
OPTIONS = {"epochs": 3, "batch_size": 41, "n_samples": 60, "init": "default", "device": "cpu"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "ddp.h5"
    generate(path, 60, Problem(), seed=0, progress=False)
    return path


def failure(stderr):
    """What a failed launch says: each rank's error line (torchrun's summary below them names
    only exit codes), then the end of the output."""
    errors = [line for line in stderr.splitlines() if line.startswith("[rank") and "Error" in line]
    return "\n".join(errors) + "\n" + stderr[-3000:]


def losses(run):
    with open(run / "log.csv") as f:
        rows = list(csv.DictReader(f))
    return np.array([[float(r["train_loss"]), float(r["val_loss"])] for r in rows])


def test_two_gloo_ranks_follow_the_single_process_run(data, tmp_path):
    script = tmp_path / "two_ranks.py"
    script.write_text(f"OPTIONS = {OPTIONS!r}\n" + TWO_RANKS)
    (tmp_path / "ddp").mkdir()
    (tmp_path / "single").mkdir()
    result = torchrun(script, data, tmp_path / "ddp", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + failure(result.stderr)
    assert result.stdout.count(": ok") == 2, result.stdout  # GlobalBatchNorm2d and from_main, on each rank
    for kind in ("file", "online"):
        single_run = tmp_path / "single" / kind
        train(config_for(9, "smoke", data=str(data), dropout_all=0.0, training_data=kind, **OPTIONS), single_run,
              progress=False)
        single, ddp = losses(single_run), losses(tmp_path / "ddp" / kind)
        assert single.shape == ddp.shape == (3, 2)
        np.testing.assert_allclose(ddp, single, rtol=1e-5, err_msg=kind)
        assert {p.name for p in (tmp_path / "ddp" / kind).iterdir()} == {
            "config.json", "last.pt", "model.safetensors", "log.csv", "result.json"}
        assert json.loads((tmp_path / "ddp" / kind / "result.json").read_text())["world_size"] == 2


def test_reproduce_under_torchrun_makes_the_data_once_and_reports_once(tmp_path):
    result = torchrun("-m", "pydiff", "reproduce", "--model", 9, "--preset", "smoke", "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("== model 9") == 1 and result.stdout.count("mean res (ours)") == 1
    run = tmp_path / "runs" / "smoke" / "model09-seed0"
    assert json.loads((run / "result.json").read_text())["world_size"] == 2
    assert (run / "metrics.json").is_file() and len(list((tmp_path / "data").glob("*.h5"))) == 1
