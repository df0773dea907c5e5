"""Data-parallel training: 2 CPU ranks (gloo) follow 1 process, batch for batch.

Both tests launch real ranks with ``torchrun`` (``python -m torch.distributed.run``), as a user
on a cluster would, on the loopback interface.
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


GLOBAL_BATCHNORM_CHECK = textwrap.dedent('''
    import sys
    import torch
    import torch.distributed as dist
    from pydiff.training.distributed import GlobalBatchNorm2d, rank_slice, setup

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
    }
    failed = [name for name, ok in checks.items() if not ok]
    print(f"rank {ctx.rank}: " + ("ok" if not failed else "FAILED " + ", ".join(failed)))
    dist.destroy_process_group()
    sys.exit(1 if failed else 0)
''')


def test_global_batchnorm_on_two_ranks_equals_batchnorm_on_the_whole_batch(tmp_path):
    script = tmp_path / "check.py"
    script.write_text(GLOBAL_BATCHNORM_CHECK)
    result = torchrun(script, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": ok") == 2, result.stdout


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "ddp.h5"
    generate(path, 60, Problem(), seed=0, progress=False)
    return path


def losses(run):
    with open(run / "log.csv") as f:
        rows = list(csv.DictReader(f))
    return np.array([[float(r["train_loss"]), float(r["val_loss"])] for r in rows])


@pytest.mark.parametrize("training_data", ["file", "online"])
def test_two_gloo_ranks_follow_the_single_process_run(data, tmp_path, training_data):
    # 42 training samples in global batches of 41: every epoch has a batch split 21/20 and a last
    # batch of one sample, which leaves rank 1 with nothing (its loss and statistics count zero).
    # PyTorch's initialisation, not the smoke preset's: that one starts NN2's last BatchNorm on
    # values near 1 with a spread of 0.002, where any two float32 summation orders already differ
    # by 1e-5 (a property of float32, not of data parallelism).  Online, each rank makes only
    # its own share of each batch's fresh samples.
    options = {"epochs": 3, "batch_size": 41, "n_samples": 60, "init": "default", "device": "cpu",
               "training_data": training_data}
    train(config_for(9, "smoke", data=str(data), dropout_all=0.0, **options), tmp_path / "single", progress=False)
    flags = [x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", v)]
    result = torchrun("-m", "pydiff", "train", "--model", 9, "--data", data, "--out", tmp_path / "ddp",
                      "--preset", "smoke", "--dropout", 0, *flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained model 9") == 1  # rank 0 reports
    single, ddp = losses(tmp_path / "single"), losses(tmp_path / "ddp")
    assert single.shape == ddp.shape == (3, 2)
    np.testing.assert_allclose(ddp, single, rtol=1e-5)
    assert {p.name for p in (tmp_path / "ddp").iterdir()} == {"config.json", "last.pt", "model.safetensors", "log.csv",
                                                              "result.json"}
    assert json.loads((tmp_path / "ddp" / "result.json").read_text())["world_size"] == 2


def test_reproduce_under_torchrun_makes_the_data_once_and_reports_once(tmp_path):
    result = torchrun("-m", "pydiff", "reproduce", "--model", 9, "--preset", "smoke", "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("== model 9") == 1 and result.stdout.count("mean res (ours)") == 1
    run = tmp_path / "runs" / "smoke" / "model09-seed0"
    assert json.loads((run / "result.json").read_text())["world_size"] == 2
    assert (run / "metrics.json").is_file() and len(list((tmp_path / "data").glob("*.h5"))) == 1
