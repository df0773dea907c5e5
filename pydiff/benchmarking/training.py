"""Training throughput of a configuration on its device (``pydiff bench train``, and the epoch budgets of
``pydiff compare``): samples/s on the optimiser step training runs, the projected hours of the whole
run, and the bytes its checkpoints write per epoch."""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time

from ..problem import Problem


def bench_train(config, steps: int = 5, warmup: int = 2, lattice: int | None = None) -> dict:
    """Training throughput of ``config`` (a :class:`~pydiff.training.config.TrainConfig`) on its device,
    timed on real steps (:func:`pydiff.training.step.train_step`, the function ``train`` runs), with the
    projected wall time of the whole run and the bytes its checkpoints write per epoch.  The inputs
    have the lattice of the preset's problem, or ``lattice``.

    The data are random tensors already on the device, as ``train`` keeps the whole training
    set there, on the lattice of the config's preset; with ``training_data`` "online" every step
    draws and solves its own fresh samples, as training does, and ``online_share_of_step`` is
    the part of a step that costs.  The step uses the config's autocast, channels-last and
    compile settings.  The
    checkpoint size comes from writing a real last.pt and model.safetensors of this model and optimiser
    to a temporary directory.

    Returns:
        samples_per_second (training), eval_samples_per_second (held-out forward passes),
        epoch_seconds (one epoch's training, its BatchNorm recalibration if any, and held-out
        pass), recalibration_seconds (the BatchNorm recalibration pass at the end, 0 without one),
        projected_hours (``epochs`` epochs of the config's split and the recalibration), state_MB (weights and Adam
        moments), checkpoint_MB, bytes_per_epoch_MB and its ratio to the state.
    """
    import numpy as np
    import torch

    from ..datasets.batches import OnlineSamples
    from ..device import autocast, fast_paths, pick_device, synchronize
    from ..registry import preset_problem
    from ..training import checkpoint
    from ..training.batchnorm import batchnorms
    from ..training.data import epoch_sizes
    from ..training.distributed import Context
    from ..training.run import build_network
    from ..training.snapshots import SnapshotPool
    from ..training.step import loss_function, make_optimizer, train_step

    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    problem = Problem.for_setup(**preset_problem(config.preset)) if config.preset else Problem()
    if lattice is not None:
        problem = dataclasses.replace(problem, lattice=lattice)
    model, network = build_network(config, Context(device=device), problem)
    optimizer = make_optimizer(model, config, device)
    b = config.batch_size
    loss_sum = loss_function(config, problem)
    L = problem.lattice
    x = torch.rand(b, config.in_channels, L, L, device=device)
    y = torch.rand(b, 1, L, L, device=device)
    scale = 1.0 / (b * L * L)
    online = OnlineSamples(problem, b, config.seed, device, config.in_channels) if config.training_data == "online" else None

    def batch(step):  # online: the step draws and solves its own fresh samples, as in training
        return online.samples(np.arange(step * b, (step + 1) * b)) if online is not None else (x, y)

    network.train()
    for step in range(warmup):  # compilation, cuDNN autotuning, Adam state
        inputs, targets = batch(step)
        train_step(network, optimizer, inputs, targets, loss_sum, scale, device, config.amp)
    synchronize(device)
    start = time.perf_counter()
    for step in range(steps):
        inputs, targets = batch(step)
        train_step(network, optimizer, inputs, targets, loss_sum, scale, device, config.amp)
    synchronize(device)
    train_sps = steps * b / (time.perf_counter() - start)
    online_share = math.nan
    if online is not None:  # the part of a step spent making its samples
        start = time.perf_counter()
        for step in range(steps):
            batch(step)
        synchronize(device)
        online_share = (time.perf_counter() - start) * train_sps / (steps * b)

    network.eval()
    xe = torch.rand(config.eval_batch_size, config.in_channels, L, L, device=device)
    with torch.no_grad(), autocast(device, config.amp):
        network(xe)
        synchronize(device)
        start = time.perf_counter()
        for _ in range(max(1, steps // 2)):
            network(xe)
        synchronize(device)
    eval_sps = max(1, steps // 2) * len(xe) / (time.perf_counter() - start)

    n_train, n_held_out = epoch_sizes(config)
    norms = bool(batchnorms(model))
    recalibrated = min(config.recalibrate_each_epoch, n_train) if norms else 0  # before each evaluation
    epoch_s = n_train / train_sps + (n_held_out + recalibrated) / eval_sps
    # the end-of-training BatchNorm recalibration is one more forward pass over the training split
    # (none after per-epoch ones: the best epoch's statistics are already recomputed)
    end_pass = config.recalibrate_bn and not config.recalibrate_each_epoch and norms
    recalibration_s = n_train / eval_sps if end_pass else 0.0
    hours = (config.epochs * epoch_s + recalibration_s) / 3600

    state_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values() if torch.is_tensor(t))
    state_bytes += sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                       if torch.is_tensor(t))
    pool = SnapshotPool(model, optimizer)
    pool.capture(0, {})
    with tempfile.TemporaryDirectory() as tmp:
        last = checkpoint.save_checkpoint({"state": pool.state(0), "best": {"model": model.state_dict()}}, tmp)
        best = checkpoint.save_model(model.state_dict(), tmp)
    per_epoch = (last + best) / config.checkpoint_every
    return {"model": config.model, "network": config.network, "lattice": L, "width": config.width,
            "device": str(device), "batch_size": b, "training_data": config.training_data,
            "online_share_of_step": online_share,
            "amp": config.amp and fast_paths(device), "compile": config.compile,
            "samples_per_second": train_sps, "eval_samples_per_second": eval_sps,
            "epoch_seconds": epoch_s, "recalibration_seconds": recalibration_s,
            "epochs": config.epochs, "projected_hours": hours, "state_MB": state_bytes / 1e6,
            "checkpoint_MB": (last + best) / 1e6, "bytes_per_epoch_MB": per_epoch / 1e6,
            "bytes_per_epoch_over_state": per_epoch / state_bytes}
