"""Timing harness behind ``pydiff bench`` and ``benchmarks/``: measured, never asserted.

Speed targets live here and in the README, not in tests: a timed test fails on a busy machine
and proves nothing on a fast one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import tempfile
import time
import tracemalloc
from pathlib import Path

from ..problem import Problem


def machine() -> str:
    """A one-line description of this machine, for the README's tables."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def bench_generate(backends=("spectral",), n: int = 20000, batch_size: int = 500,
                   problem: Problem | None = None, memory_batches: int = 3) -> "list[dict]":
    """Time ``pydiff.generate`` end to end (file written) for each backend.

    Each backend writes ``n`` samples to a temporary file; a second, short run of
    ``memory_batches`` batches under tracemalloc gives the peak of numpy/Python memory, which
    stays at a few batches whatever ``n`` because the file is streamed.

    Returns:
        One dict per backend: samples, seconds, samples_per_second, peak_traced_MB, file_MB.
    """
    from ..datasets.writer import generate

    problem = problem or Problem()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            out = Path(tmp) / f"{backend}.h5"
            start = time.perf_counter()
            generate(out, n, problem, backend=backend, batch_size=batch_size, progress=False)
            seconds = time.perf_counter() - start
            size = out.stat().st_size / 1e6
            out.unlink()
            tracemalloc.start()
            generate(out, min(n, memory_batches * batch_size), problem, backend=backend,
                     batch_size=batch_size, progress=False)
            peak = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
            out.unlink()
            rows.append({"backend": backend, "samples": n, "batch_size": batch_size, "seconds": seconds,
                         "samples_per_second": n / seconds, "peak_traced_MB": peak, "file_MB": size})
    return rows


def bench_read(path, batch_size: int = 50, batches: int = 20, seed: int = 0) -> dict:
    """Training-time read speed of a data file: random batches of ``batch_size`` samples
    (inputs and fields) read as streamed training reads them (:class:`pydiff.datasets.batches.StreamedSamples`,
    one batch ahead in a thread), to the CPU.  Cold pages of a file bigger than the page cache
    read at disk speed; a small file measured twice reads from memory the second time.

    Returns:
        samples_per_second, MB_per_second (both arrays), lattice, samples, batch_size.
    """
    import numpy as np
    import torch

    from ..datasets.batches import Rows, StreamedSamples
    from ..datasets.hdf5 import load

    data = load(path, lazy=True)
    try:
        n = len(data)
        rng = np.random.default_rng(seed)
        order = torch.from_numpy(rng.permutation(n)[: batch_size * batches])
        samples = StreamedSamples(Rows(data.inputs), Rows(data.fields), np.arange(n), torch.device("cpu"))
        start = time.perf_counter()
        read = sum(len(x) for x, _ in samples.epoch_batches(0, list(order.split(batch_size))))
        seconds = time.perf_counter() - start
    finally:
        data.close()
    L = data.problem.lattice
    return {"file": str(path), "lattice": L, "samples": read, "batch_size": batch_size,
            "samples_per_second": read / seconds, "MB_per_second": read * 2 * L * L * 4 / 1e6 / seconds}


def time_solver(backend: str, n: int, problem: Problem | None = None, seed: int = 0) -> float:
    """δ: seconds per sample of ``backend`` on ``n`` random inputs (start-up and warm-up excluded)."""
    from ..problem import sample_sources, source_images
    from ..problem.diffusivity import diffusivity_maps
    from ..solvers import make_solver, timed_solve

    problem = problem or Problem()
    images = source_images(problem, sample_sources(problem, n, seed))
    with make_solver(backend, problem) as solver:
        return timed_solve(solver, images, diffusivity_maps(problem, range(n), seed))[1]


def time_forward(model, lattice: int, batch_size: int = 1, device="cpu", repeats: int = 5, amp: bool = True,
                 in_channels: int = 1) -> float:
    """Seconds per sample of ``model``'s forward pass on (batch, 1, L, L) inputs (eval mode, no
    gradients, best of ``repeats`` after one warm-up call), in the precision prediction uses
    (bf16 autocast on a GPU when ``amp``)."""
    import torch

    from ..device import autocast, synchronize

    device = torch.device(device)
    model = model.to(device).eval()
    x = torch.rand(batch_size, in_channels, lattice, lattice, device=device)
    best = float("inf")
    with torch.no_grad(), autocast(device, amp):
        for _ in range(repeats + 1):  # the first call warms up
            synchronize(device)
            start = time.perf_counter()
            model(x)
            synchronize(device)
            best = min(best, time.perf_counter() - start)
    return best / batch_size


def bench_infer(config, lattice: int, batch_sizes=(1, 256), repeats: int = 5) -> "list[dict]":
    """Milliseconds per sample of ``config``'s network (a :class:`~pydiff.training.config.TrainConfig`:
    network, width, Table 2 row) predicting (b, 1, L, L) inputs on its device, per batch size."""
    import torch

    from ..device import pick_device
    from ..nn.build import build_model
    from ..registry import preset_problem

    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    problem = Problem.for_setup(**preset_problem(config.preset)) if config.preset else Problem()
    model = build_model(config, dataclasses.replace(problem, lattice=lattice))
    params = sum(p.numel() for p in model.parameters())
    return [{"network": config.network, "model": config.model, "width": config.width, "lattice": lattice,
             "parameters": params, "device": str(device), "batch_size": b,
             "ms_per_sample": 1e3 * time_forward(model, lattice, b, device, repeats, config.amp, config.in_channels)}
            for b in batch_sizes]


def time_surrogate(width: float = 1.0, batch_size: int = 1, device: str = "cpu", repeats: int = 5,
                   model_id: int = 9) -> float:
    """ε: seconds per sample of a Table 2 model's forward pass (eval mode, best of ``repeats``)."""
    from ..nn.surrogate2021 import Surrogate
    from ..registry import paper_model

    row = paper_model(model_id)
    return time_forward(Surrogate(row.p1, row.p2, row.dropout, width), 100, batch_size, device, repeats)


PAPER = {"delta": 1.16, "speedup": 1000.0, "E": 12 * 3600.0, "M": 20000, "N_min": 57300.0}


def samples_made(config, result: dict) -> int:
    """Eq. 4's M for a finished run: the samples of its data file it used (its first
    ``n_samples``, or all of them), or, where the file is gone, those it trained on."""
    from ..datasets.hdf5 import load

    if config.data and Path(config.data).is_file():
        with load(config.data, lazy=True) as data:
            return len(data) if config.n_samples is None else min(config.n_samples, len(data))
    return int(config.n_samples or result["n_train"])


def bench_eq4(run_dir=None, width: float = 1.0, backends=("spectral", "direct"), n_delta: int = 200,
              batch_sizes=(1, 256)) -> "list[dict]":
    """δ, ε, M, E and N_min (Eq. 4) measured here, beside the paper's values.

    M and E come from a finished run (its data size and training seconds) when ``run_dir`` is
    given, else the paper's (20,000 samples, 12 h) are used and marked as such.
    """
    import torch

    from ..training.checkpoint import read_config, read_result
    from .metrics import n_min

    rows = []
    deltas = {}
    for backend in backends:
        deltas[backend] = time_solver(backend, n_delta if backend != "timestep" else 4)
        rows.append({"quantity": f"delta: {backend} solver, s/sample", "measured": deltas[backend], "paper": PAPER["delta"]})
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    epsilons = {}
    for device in devices:
        for b in batch_sizes:
            epsilons[(device, b)] = time_surrogate(width, b, device)
            rows.append({"quantity": f"epsilon: model 9 width {width:g}, {device}, batch {b}, s/sample",
                         "measured": epsilons[(device, b)], "paper": PAPER["delta"] / PAPER["speedup"]})
    M: float
    if run_dir is not None:
        config, result = read_config(run_dir), read_result(run_dir)
        if result is None:
            from ..errors import DataFileError

            raise DataFileError(f"{run_dir}: the run is not finished (no result.json)")
        M, E, source = samples_made(config, result), result["seconds"], f"run {run_dir}"
    else:
        M, E, source = PAPER["M"], PAPER["E"], "paper's M and E"
    rows.append({"quantity": f"M: samples generated ({source})", "measured": M, "paper": PAPER["M"]})
    rows.append({"quantity": f"E: training seconds ({source})", "measured": E, "paper": PAPER["E"]})
    best_eps = min(epsilons.values())
    for backend, delta in deltas.items():
        rows.append({"quantity": f"delta/epsilon ({backend}, best epsilon)", "measured": delta / best_eps,
                     "paper": PAPER["speedup"]})
        rows.append({"quantity": f"N_min ({backend}, best epsilon)",
                     "measured": n_min(M, E, delta, best_eps),
                     "paper": PAPER["N_min"]})
    rows.append({"quantity": "N_min (paper's delta = 1.16 s, best epsilon here)",
                 "measured": n_min(M, E, PAPER["delta"], best_eps),
                 "paper": PAPER["N_min"]})
    return rows


def stopped_at(problem: Problem, images, maps, target: float, backend: str = "torch-mg",
               most: int = 50) -> dict:
    """The equal-accuracy baseline of McGreivy & Hakim (2024): the fastest iterative solver
    stopped at the network's own error.  The fewest preconditioned CG steps ``k`` (from the
    preconditioner's own first answer, :meth:`approximate`) whose normalised answers have a median
    per-sample max error of at most ``target``, timed with its set-up.

    Returns ``iterations`` k, ``seconds_per_sample`` and ``median_max_error`` reached.
    """
    import numpy as np
    import torch

    from ..solvers import make_solver, normalise

    images_t = torch.as_tensor(np.asarray(images, dtype=np.float64))
    maps_t = None if maps is None else torch.as_tensor(maps)
    with make_solver(backend, problem) as solver:
        exact, _ = normalise(solver.fields_of(images_t, maps_t).cpu().numpy())
        for k in range(most + 1):
            start = time.perf_counter()
            u = solver.approximate(images_t, maps_t, k).cpu().numpy()
            seconds = time.perf_counter() - start
            error = float(np.median(np.abs(normalise(u)[0] - exact).reshape(len(u), -1).max(axis=1)))
            if error <= target:
                return {"iterations": k, "seconds_per_sample": seconds / len(u), "median_max_error": error}
    return {"iterations": math.nan, "seconds_per_sample": math.nan, "median_max_error": error}


def median_max_error(run_dir, device: str = "cpu") -> float:
    """The median over a run's test samples of the per-sample max error of its best network: the
    accuracy an equal-accuracy baseline is stopped at."""
    import numpy as np
    import torch

    from ..device import memory_budget
    from ..training import checkpoint
    from ..training.data import load_arrays
    from .predict import predict

    model, config = checkpoint.load_model(run_dir, "best", device)
    arrays = load_arrays(config, memory_budget(torch.device("cpu")))
    test = arrays.split["test"]
    prediction = predict(model, arrays.inputs[test], config.eval_batch_size, device, config.amp)
    return float(np.median(np.abs(prediction - arrays.fields[test]).reshape(len(test), -1).max(axis=1)))


def bench_varied(problem: Problem, lattices=(64, 128, 256, 512), backends=("torch-mg", "multigrid", "direct"),
                 networks=("encdec",), width: float = 0.125, n_delta: int = 4, batch_sizes=(1, 16),
                 M: int = 10000, E: float = 3600.0, seed: int = 0, network_error: float | None = None,
                 config=None) -> "list[dict]":
    """Eq. 4 where the exact solve is expensive, against the strongest baseline at equal accuracy.

    At each lattice: δ of each exact solver (to a relative residual of 1e-10); the fastest
    iterative one (torch-mg) stopped at ``network_error``, the network's median per-sample max
    error (:func:`stopped_at`; skipped when None); ε of each network reading the map (or of
    ``config``, a trained run's configuration); and for each network δ/ε and N_min (``M``
    training samples made in ``E`` seconds) against the fastest exact solver and against the
    equal-accuracy baseline.  N_min is infinite where the network is not faster.
    """
    import dataclasses as dc

    from ..problem import sample_sources, source_images
    from ..problem.diffusivity import diffusivity_maps
    from ..training.config import config_for
    from .metrics import n_min

    rows = []
    for L in lattices:
        at_L = dc.replace(problem, lattice=L, radius=max(1, round(problem.radius * L / problem.lattice)))
        deltas = {}
        for backend in backends:
            deltas[backend] = time_solver(backend, n_delta, at_L, seed)
            rows.append({"lattice": L, "method": backend, "kind": "exact solver", "batch_size": 1,
                         "seconds_per_sample": deltas[backend]})
        fastest = min(deltas.values())
        baseline = math.nan
        if network_error is not None:
            images = source_images(at_L, sample_sources(at_L, n_delta, seed))
            stopped = stopped_at(at_L, images, diffusivity_maps(at_L, range(n_delta), seed), network_error)
            baseline = stopped["seconds_per_sample"]
            rows.append({"lattice": L, "method": f"torch-mg stopped at {network_error:.3g}", "kind": "equal accuracy",
                         "batch_size": n_delta, "seconds_per_sample": baseline, "iterations": stopped["iterations"],
                         "median_max_error": stopped["median_max_error"]})
        configs = [config] if config is not None else [
            config_for(None, "quick-varied", network=network, width=width, device="cpu", in_channels=2)
            for network in networks]
        for network_config in configs:
            for row in bench_infer(network_config, L, batch_sizes, repeats=3):
                eps = row["ms_per_sample"] / 1e3
                rows.append({"lattice": L, "method": f"{network_config.network} x{network_config.width:g}",
                             "kind": "network", "batch_size": row["batch_size"], "seconds_per_sample": eps,
                             "delta_over_epsilon": fastest / eps, "N_min": n_min(M, E, fastest, eps),
                             "equal_accuracy_over_epsilon": baseline / eps,
                             "N_min_equal_accuracy": n_min(M, E, baseline, eps) if baseline == baseline else math.nan})
    return rows


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
        epoch_seconds (one epoch's training and held-out pass), recalibration_seconds (the
        BatchNorm recalibration pass at the end, 0 without one),
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
    epoch_s = n_train / train_sps + n_held_out / eval_sps
    # the end-of-training BatchNorm recalibration is one more forward pass over the training split
    recalibration_s = n_train / eval_sps if config.recalibrate_bn and batchnorms(model) else 0.0
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
