"""Baselines on the same footing: the 2021 surrogate, the 2024 encoder-decoder and U-Net, and
neuraloperator's FNO, each trained on the same data, split, loss and budget.

The budget is either the preset's epochs for every model, or the same wall time
(``budget_minutes``): then each model's epochs are set before it trains, from its own measured
step and evaluation speed (:func:`pydiff.benchmarking.training.bench_train`), so a slower network gets fewer
epochs and the learning-rate schedule still runs to its end.  The epochs chosen are recorded.

Each model is a cached, resumable run (``DIR/<model>``); ``DIR/compare.csv`` has one row per
model: parameters, test residuals, training seconds, inference milliseconds per sample at batch
1 and 256, and the resolution transfer: the mean residual on the same problem sampled on a
lattice twice as fine (radius and diffusion length doubled in cells), with weights trained on
the original lattice.  ``DIR/compare.md`` is the same table in markdown, ``compare.json`` the
rule, versions and device.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from .. import atomic
from ..benchmarking.speed import time_forward
from ..benchmarking.training import bench_train
from ..datasets.hdf5 import load
from ..device import pick_device
from ..errors import ConfigError
from ..evaluation.predict import predict
from ..evaluation.report import format_table
from ..nn.build import NETWORKS
from ..nn.fno import neuraloperator_version
from ..problem import Problem
from ..registry import COMPARE_BUDGET_MINUTES, LATTICE, preset_problem
from ..training import checkpoint, distributed
from ..training.config import config_for, with_data
from ..training.data import network_inputs
from .steps import data_path, ensure_data, output_dir, train_and_evaluate

MODELS = NETWORKS
CSV, TABLE, META = "compare.csv", "compare.md", "compare.json"
TRANSFER_SAMPLES = 200


def format_compare(table: pd.DataFrame, fmt: str = "markdown") -> str:
    """compare.csv as a readable table: seconds and milliseconds in 3 figures, and "n/a" where a
    model cannot run (the 2021 surrogate on the finer lattice)."""
    formats = {column: ".3g" for column in table.columns if column == "train_s" or column.startswith("infer_ms")}
    return format_table(table, fmt, formats, nan="n/a")


def finer_problem(problem: Problem) -> Problem:
    """The same physical problem on a lattice twice as fine: L, the radius, the diffusion length
    (sqrt(D / gamma), in cells) and the lognormal field's correlation length doubled (inclusion
    radii are fractions of L already).  Darcy flow lives on the unit square already: the next
    finer lattice its solve lattice keeps (85 -> 106 -> 141 -> 211 -> 421)."""
    if problem.setup == "darcy":
        finer = [L for L in range(problem.lattice + 1, problem.solve_lattice + 1)
                 if (problem.solve_lattice - 1) % (L - 1) == 0]
        return dataclasses.replace(problem, lattice=finer[0] if finer else problem.lattice)
    assert problem.correlation_length is not None  # set in Problem.__post_init__
    return dataclasses.replace(problem, lattice=2 * problem.lattice, radius=2 * problem.radius, D=4 * problem.D,
                               correlation_length=2 * problem.correlation_length)


def epochs_for_budget(config, budget_minutes: float) -> int:
    """Epochs of ``config`` that fit ``budget_minutes`` at its measured speed on its device."""
    speed = bench_train(config, steps=5, warmup=2)
    return max(1, int((budget_minutes * 60 - speed["recalibration_seconds"]) / speed["epoch_seconds"]))


BUDGET = "budget.json"  # in each run directory: the budget that set its epochs


def budget_epochs(config, run_dir, budget_minutes: float, ctx: distributed.Context) -> int:
    """The epochs ``budget_minutes`` give ``config``: timed once, on rank 0, and sent to every rank
    (ranks that timed on their own could disagree and wait for each other forever); a run that
    exists keeps the epochs its budget gave it, and refuses another budget."""
    stored = Path(run_dir) / BUDGET
    if stored.is_file():
        made_with = json.loads(stored.read_text())["budget_minutes"]
        if made_with != budget_minutes:
            raise ConfigError(f"{run_dir} was trained on a budget of {made_with:g} minutes, not {budget_minutes:g}; "
                              "remove it, or give another --runs directory")
        return checkpoint.read_config(run_dir).epochs
    epochs = epochs_for_budget(config, budget_minutes) if ctx.is_main else None
    epochs = distributed.from_main(epochs, ctx)
    if ctx.is_main:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        atomic.write_text(json.dumps({"budget_minutes": budget_minutes, "epochs": epochs}), stored)
    return epochs


def compare(models=MODELS, preset_name: str = "quick", runs_dir="runs/compare", data_dir="data", seed: int = 0,
            budget_minutes: float | None = None, backend: str = "auto", progress=True,
            on_model: Callable[[dict], None] | None = None, transfer_samples: int = TRANSFER_SAMPLES,
            timing_batch: int = 256, **overrides) -> pd.DataFrame | None:
    """Train and evaluate every model of ``models`` under one preset and budget; the table.

    ``overrides`` replace the preset's values for every model (``width`` sizes all of them).
    ``budget_minutes``: None takes the preset's default (:data:`~pydiff.registry.COMPARE_BUDGET_MINUTES`)
    unless ``epochs`` is given, 0 the preset's (or the given) epochs; a budget and epochs together
    are refused.  ``transfer_samples`` test samples on the finer lattice; inference is timed at batch 1 and
    ``timing_batch``.
    """
    models = tuple(models)
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ConfigError(f"unknown model(s) {', '.join(unknown) or '(none)'}; choose among {', '.join(MODELS)}")
    if budget_minutes is not None and budget_minutes > 0 and overrides.get("epochs") is not None:
        raise ConfigError("give either a time budget or epochs per model, not both")
    if budget_minutes is None:  # the preset's default budget, unless epochs were asked for
        budget_minutes = 0.0 if overrides.get("epochs") is not None else COMPARE_BUDGET_MINUTES.get(preset_name, 0.0)
    if not budget_minutes >= 0:
        raise ConfigError(f"the time budget must be positive (or 0: the preset's epochs), got {budget_minutes} minutes")
    budget_minutes = budget_minutes or None
    if "fno" in models:
        fno_version = neuraloperator_version()  # fails here, before any work, when it is missing
    problem_values = preset_problem(preset_name)
    problem = Problem.for_setup(**problem_values)
    if "surrogate" in models and problem.lattice != LATTICE:
        raise ConfigError(f"the 2021 surrogate takes {LATTICE}x{LATTICE} images (Table 1's shapes); preset "
                          f"{preset_name} is {problem.lattice}x{problem.lattice}: leave it out of --models")
    # The 2021 presets' loss, split and optimiser are Table 2 model 9's; the 2024 ones their own.
    base = config_for(None if problem_values else 9, preset_name, seed=seed, **overrides)
    ctx = distributed.setup(base.device)
    runs_dir = output_dir(runs_dir, ctx)
    finer = finer_problem(problem)
    if base.n_samples is None:  # every preset sets it; None (all of a file) cannot size the file made here
        raise ConfigError("n_samples None means all of a data file; this pipeline generates its file: give a number")
    if ctx.is_main:
        ensure_data(data_dir, base.n_samples, seed, backend, progress=progress, problem=problem)
        ensure_data(data_dir, transfer_samples, seed + 1, backend, progress=progress, problem=finer)
    distributed.barrier(ctx)
    base = with_data(base, data_path(data_dir, base.n_samples, seed, backend, problem))
    transfer = load(data_path(data_dir, transfer_samples, seed + 1, backend, finer))

    rows = []
    for name in models:
        if name == "surrogate" and problem.lattice != LATTICE:
            continue  # Table 1's shapes fix the 2021 networks to 100 x 100
        config = dataclasses.replace(base, network=name, model=base.model if name == "surrogate" else None)
        run_dir = runs_dir / name
        if budget_minutes is not None:
            config = dataclasses.replace(config, epochs=budget_epochs(config, run_dir, budget_minutes, ctx))
        metrics = train_and_evaluate(config, run_dir, ctx, splits=("test",), progress=progress)
        if metrics is None:
            continue
        device = pick_device(config.device)
        model, _ = checkpoint.load_model(run_dir, "best", device)
        test, training = metrics["test"], metrics["training"]
        row = {"model": name, "params": sum(p.numel() for p in model.parameters()),
               "mean_res": test["mean_res"], "p99_res": test["p99_res"], "max_res": test["max_res"],
               "rel_l2": test["rel_l2"], "epochs": training["epochs_run"], "train_s": training["seconds"],
               "infer_ms_b1": 1e3 * time_forward(model, problem.lattice, 1, device, in_channels=config.in_channels),
               f"infer_ms_b{timing_batch}": 1e3 * time_forward(model, problem.lattice, timing_batch, device,
                                                               in_channels=config.in_channels),
               "mean_res_2x": math.nan}
        if name != "surrogate":  # any lattice: the resolution transfer
            inputs = network_inputs(transfer, config.in_channels)
            prediction = predict(model, inputs, config.eval_batch_size, device, config.amp)
            row["mean_res_2x"] = float(np.abs(prediction[:, 0] - transfer.fields).mean())
        rows.append(row)
        if on_model is not None:
            on_model(row)
    if not ctx.is_main:
        return None
    table = pd.DataFrame(rows)
    atomic.write_text(table.to_csv(index=False), runs_dir / CSV)
    atomic.write_text(format_compare(table) + "\n", runs_dir / TABLE)
    meta = {"preset": preset_name, "budget": f"{budget_minutes} minutes per model (epochs from measured speed)"
            if budget_minutes is not None else f"{base.epochs} epochs per model",
            "lattice": problem.lattice, "transfer_lattice": finer.lattice, "seed": seed,
            "torch": torch.__version__, "neuraloperator": fno_version if "fno" in models else None,
            "device": str(pick_device(base.device)), "machine": platform.processor() or platform.machine()}
    atomic.write_text(json.dumps(meta, indent=2), runs_dir / META)
    return table

