"""The GPU path, on a CPU: every part of it PyTorch also offers there (bf16 autocast,
channels-last, fused Adam, torch.compile, roll-backs and checkpoints of a compiled model,
streamed and online data) runs a few steps on a tiny network, so that a first GPU run can fail
only on what is CUDA-only (CUDA graphs, NCCL)."""

import math

import pytest
import torch

from pydiff.datasets.writer import generate
from pydiff.device import autocast, cuda_paths_on_cpu, fast_paths
from pydiff.problem import Problem
from pydiff.training.checkpoint import load_model, read_model_file
from pydiff.training.config import config_for
from pydiff.training.distributed import Context
from pydiff.training.run import build_network, train
from pydiff.training.step import make_optimizer

from .test_train import Interrupt, assert_same_run, interrupt_at, same_weights

CPU = torch.device("cpu")


@pytest.fixture
def compiled(monkeypatch):
    """torch.compile as the library calls it, traced with the aot_eager backend: dynamo's graph
    capture and autograd, without generating kernels (inductor needs a minute per network on a
    CPU, and its CPU kernels are not the GPU's anyway).  Records the modes asked for."""
    modes, real = [], torch.compile

    def compile_traced(model, mode=None, **_):
        modes.append(mode)
        return real(model, backend="aot_eager")

    monkeypatch.setattr(torch, "compile", compile_traced)
    return modes


def test_the_fast_paths_switch_on_inside_the_block_only():
    config = config_for(9, "smoke", width=1 / 32)
    assert not fast_paths(CPU)
    with cuda_paths_on_cpu():
        assert fast_paths(CPU)
        module, _ = build_network(config, Context(device=CPU))
        assert module.nn2.encoder[0][0].weight.is_contiguous(memory_format=torch.channels_last)
        assert make_optimizer(module, config, CPU).defaults["fused"]
        with autocast(CPU):
            assert module(torch.rand(2, 1, 100, 100)).dtype == torch.bfloat16
    assert not fast_paths(CPU) and not make_optimizer(module, config, CPU).defaults["fused"]


def test_a_bf16_run_with_roll_backs_and_streamed_data_resumes_exactly(tmp_path):
    data = generate(tmp_path / "d.h5", 30, Problem(), seed=0, progress=False)
    # frequent roll-backs (a threshold just under the last loss), checkpoints every epoch
    options = dict(data=str(data), n_samples=30, width=1 / 32, epochs=4, batch_size=6, lr_schedule="constant",
                   rollback_C=0.975, rollback_m=1, rollback_s=1, checkpoint_every=1, stream="always")
    with cuda_paths_on_cpu():
        whole = train(config_for(9, "smoke", **options), tmp_path / "whole", progress=False)
        with pytest.raises(Interrupt):
            train(config_for(9, "smoke", **options), tmp_path / "parts", progress=interrupt_at(1))
        train(config_for(9, "smoke", **options), tmp_path / "parts", resume=True, progress=False)
    assert whole.rollbacks > 0
    assert_same_run(tmp_path / "whole", tmp_path / "parts")


def test_a_compiled_network_follows_the_states_its_snapshots_restore(compiled):
    # Roll-backs and resumes copy saved tensors into the module's parameters in place; the
    # compiled network must compute with them (not with weights it captured when it compiled).
    from pydiff.training.snapshots import SnapshotPool

    config = config_for(9, "smoke", width=1 / 32, compile="default")
    x = torch.rand(4, 1, 100, 100)
    with cuda_paths_on_cpu():
        module, network = build_network(config, Context(device=CPU))
        optimizer = make_optimizer(module, config, CPU)
        pool = SnapshotPool(module, optimizer)
        network.eval()
        with torch.no_grad(), autocast(CPU):
            before = network(x)
        pool.capture(0, {})
        network.train()
        for _ in range(2):
            with autocast(CPU):
                loss = network(x).float().abs().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        network.eval()
        with torch.no_grad(), autocast(CPU):
            moved = network(x)
            pool.restore(0)
            restored = network(x)
    assert compiled == [None] and not torch.equal(moved, before)
    assert torch.equal(restored, before)


def test_a_compiled_network_trains_on_online_samples_with_roll_backs(tmp_path, compiled):
    # Compiled bf16 training is not bit-reproducible from one compilation to the next (neither is
    # a GPU's); what must hold is that it trains, rolls back and checkpoints.
    problem = Problem(lattice=32, radius=3, n_sources=4, min_sources=1, setup="paper2024")
    data = generate(tmp_path / "d.h5", 32, problem, progress=False)  # 8 per source count: every split gets one
    config = config_for(None, "quick2024", data=str(data), n_samples=32, width=1 / 32, epochs=3, batch_size=8,
                        training_data="online", compile="reduce-overhead", rollback="paper", rollback_C=0.975,
                        rollback_m=1, rollback_s=1, checkpoint_every=1)
    run = tmp_path / "run"
    with cuda_paths_on_cpu():
        result = train(config, run, progress=False)
    assert compiled == ["reduce-overhead"] and result.epochs_run == 3
    log = result.history
    assert [r["epoch"] for r in log] == [0, 1, 2]
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in log)
    # It rolls back: a rolled-back epoch's held-out loss is that of the state it returned to, so
    # the compiled network computed with the restored weights.
    rolled = [r for r in log if r["rolled_back"]]
    assert len(rolled) == result.rollbacks > 0
    for r in rolled:
        assert r["val_loss"] == pytest.approx(log[r["restored_to"]]["val_loss"], rel=1e-6)
    kept = [(r["val_loss"], r["epoch"]) for r in log if not r["rolled_back"]]
    assert (result.best_val_loss, result.best_epoch) == min(kept)
    # It checkpoints: last.pt holds, as of the last epoch, a kept state to continue from and the
    # best weights, the same weights model.safetensors holds; each loads into the network.
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["resume_epoch"] == 2 and last["replay_from"] in [e for _, e in kept]
    assert last["best"]["epoch"] == result.best_epoch
    assert [r["epoch"] for r in last["log"]] == [0, 1, 2]
    best, metadata = read_model_file(run)
    assert int(metadata["epoch"]) == result.best_epoch and same_weights(best, last["best"]["model"])
    assert same_weights(load_model(run, "last")[0].state_dict(), last["state"]["model"])
    assert same_weights(load_model(run)[0].state_dict(), best)
