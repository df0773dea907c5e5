"""What only a GPU can show, measured in one run of at most about 8 minutes; written as JSON.

    benchmarks/device-check.sh [OUT.json]          # on a machine with a CUDA GPU

1. ``pydiff bench train --preset paper`` (model 9, width 1, batch 25), eager in bf16 and fp32
   and with ``--compile reduce-overhead`` (CUDA graphs), with the paper preset's projected hours;
2. the 2024 encoder-decoder at 512^2 (``paper2024``, batch 50), eager, on the file and on fresh
   online samples (the share of a step spent making them);
3. inference per sample at batch 1 and 256: model 9 (width 1, 100^2), the encoder-decoder at
   512^2 (width 1 and 1/8);
4. the cost of one fresh exact sample at 512^2 on the GPU (1-20 sources), and torch-mg's batched
   solve of the varied family there (seconds per sample, iterations, equal to the CPU's);
5. a short real paper-preset run: ``pydiff reproduce --model 9 --preset paper --epochs E``, its
   seconds per epoch and Table 2 row (after E of the paper's 800 epochs);
6. the ``cpu-hour`` preset's model 9, its whole schedule, on the GPU: its seconds and its held-out
   mean residual after every epoch beside the CPU's at the same epoch (the reference curve of
   this project's CPU run, ``benchmarks/cpu_hour_curve.csv``);
7. NCCL: two ranks of ``torchrun`` against one process, when the machine has two GPUs.

Every figure is also printed as it comes.  ``--cpu-smoke`` runs every step with tiny sizes on a
CPU in seconds: the check itself is tested without a GPU (tests/test_device_check.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

import pydiff
from pydiff.benchmarking.speed import bench_infer
from pydiff.benchmarking.training import bench_train
from pydiff.datasets.batches import OnlineSamples
from pydiff.pipelines.reproduce import reproduce
from pydiff.problem import Problem
from pydiff.training.checkpoint import read_log
from pydiff.training.config import config_for


def log(name: str, value) -> None:
    print(f"{name}: {json.dumps(value, default=str)}", flush=True)


def train_speed(config, steps: int) -> dict:
    row = bench_train(config, steps=steps, warmup=3)
    keep = ("samples_per_second", "epoch_seconds", "projected_hours", "online_share_of_step", "amp", "compile",
            "batch_size", "lattice", "network", "width", "device", "checkpoint_MB")
    return {k: row[k] for k in keep}


def online_sample_cost(lattice: int, n: int, device: torch.device) -> float:
    """Seconds per fresh exact sample (1-20 sources, images built and solved) on ``device``."""
    samples = OnlineSamples(Problem(lattice=lattice, n_sources=20, min_sources=1, setup="paper2024"), n, 0, device)
    samples.samples(range(4))  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    samples.samples(range(4, 4 + n))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / n


def multigrid_on_device(lattice: int, n: int, device: torch.device) -> dict:
    """torch-mg on ``device``: seconds per sample of a batch of ``n`` varied samples, its
    iterations, and its largest difference from the same solve on the CPU (normalised fields)."""
    from pydiff.problem import sample_sources, source_images
    from pydiff.problem.diffusivity import diffusivity_maps
    from pydiff.solvers import make_solver, normalise

    problem = Problem(lattice=lattice, radius=max(1, lattice // 100), n_sources=20, min_sources=1, setup="paper2024",
                      diffusivity="inclusions")
    images = source_images(problem, sample_sources(problem, n, 0))
    maps = diffusivity_maps(problem, range(n), 0)
    with make_solver("torch-mg", problem, device=str(device)) as solver:
        solver(images[:1], maps[:1])  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        here = solver(images, maps)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds, iterations = (time.perf_counter() - start) / n, solver.iterations
    with make_solver("torch-mg", problem, device="cpu") as solver:
        cpu = solver(images, maps)
    return {"seconds_per_sample": seconds, "iterations": iterations,
            "max_difference_from_cpu": float(abs(normalise(here)[0] - normalise(cpu)[0]).max())}


CPU_CURVE = Path(__file__).with_name("cpu_hour_curve.csv")  # epoch, minutes, val_mean_residual of the CPU run


def cpu_hour_on_device(device: torch.device, smoke: bool) -> dict:
    """The cpu-hour preset's model 9, its whole schedule, on ``device``: training seconds, test
    row, and per epoch the held-out mean residual beside the CPU reference run's at that epoch."""
    import csv

    overrides = {"width": 1 / 32, "n_samples": 40, "eval_batch_size": 8, "epochs": 2} if smoke else {}
    reference = {}
    if CPU_CURVE.is_file():
        with open(CPU_CURVE, newline="") as f:
            reference = {int(r["epoch"]): float(r["val_mean_residual"]) for r in csv.DictReader(f)}
    with tempfile.TemporaryDirectory() as tmp:
        metrics = reproduce(9, "cpu-hour", Path(tmp) / "runs", Path(tmp) / "data", device=str(device),
                            progress=False, **overrides)
        log_rows = read_log(metrics["run_dir"])
    training = metrics["training"]
    return {"epochs": training["epochs_run"], "train_seconds": training["seconds"],
            **{k: metrics["test"][k] for k in ("mean_res", "p99_res", "max_res")},
            "curve": [(int(r["epoch"]), float(r["val_mean_residual"]), reference.get(int(r["epoch"])))
                      for r in log_rows]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default="device-check.json", help="JSON file to write")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU (tests the check itself)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the short paper-preset run")
    parser.add_argument("--cpu-hour", action=argparse.BooleanOptionalAction, default=True,
                        help="run the cpu-hour preset's model 9 on the GPU and compare its curve with the CPU's")
    args = parser.parse_args(argv)
    smoke = args.cpu_smoke
    if not smoke and not torch.cuda.is_available():
        print("device-check: PyTorch sees no CUDA device here; nothing to measure (run it on a GPU machine)",
              file=sys.stderr)
        return 2
    device = torch.device("cpu" if smoke else "cuda")
    # tiny stand-ins for the CPU smoke run; the real sizes otherwise
    width, lattice_2024 = (1 / 32, 32) if smoke else (1.0, 512)
    steps, batches = (1, (1, 4)) if smoke else (20, (1, 256))
    figures: dict = {"pydiff": pydiff.__version__, "torch": torch.__version__, "python": platform.python_version(),
                     "date": time.strftime("%Y-%m-%d"), "device": str(device),
                     "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                     "gpu_count": torch.cuda.device_count() if device.type == "cuda" else 0}
    log("machine", figures)

    paper = config_for(9, "paper", width=width, device=str(device), **({"n_samples": 40} if smoke else {}))
    figures["paper_train_eager"] = train_speed(paper, steps)
    log("paper preset, eager", figures["paper_train_eager"])
    figures["paper_train_fp32"] = train_speed(dataclasses.replace(paper, amp=False), steps)  # bf16 is the default
    log("paper preset, eager, fp32 (--no-amp)", figures["paper_train_fp32"])
    if not smoke:  # CUDA graphs: CUDA only
        graphs = dataclasses.replace(paper, compile="reduce-overhead")
        figures["paper_train_reduce_overhead"] = train_speed(graphs, steps)
        log("paper preset, --compile reduce-overhead", figures["paper_train_reduce_overhead"])

    encdec = config_for(None, "paper2024", width=width, device=str(device), batch_size=4 if smoke else 50,
                        **({"n_samples": 400} if smoke else {}))
    for kind in ("file", "online"):
        config = dataclasses.replace(encdec, training_data=kind)
        row = bench_train(config, steps=steps, warmup=2, lattice=lattice_2024)
        figures[f"paper2024_train_{kind}"] = {k: row[k] for k in ("samples_per_second", "online_share_of_step",
                                                                 "projected_hours", "lattice")}
        log(f"paper2024 encoder-decoder at {lattice_2024}^2, {kind} data", figures[f"paper2024_train_{kind}"])

    figures["inference_ms_per_sample"] = []
    for config, lattice in ((config_for(9, "paper", width=width, device=str(device)), 100),
                            (dataclasses.replace(encdec, width=width), lattice_2024),
                            (dataclasses.replace(encdec, width=width / 8), lattice_2024)):
        rows = bench_infer(config, lattice, batches, repeats=2 if smoke else 5)
        figures["inference_ms_per_sample"] += rows
        log("inference", [(r["network"], r["width"], r["lattice"], r["batch_size"], round(r["ms_per_sample"], 4))
                          for r in rows])

    figures["online_sample_seconds"] = online_sample_cost(lattice_2024, 4 if smoke else 200, device)
    log(f"one fresh exact sample at {lattice_2024}^2 (s)", figures["online_sample_seconds"])

    figures["torch_mg"] = multigrid_on_device(lattice_2024, 2 if smoke else 16, device)
    log(f"torch-mg at {lattice_2024}^2, inclusions of contrast 10 (s per sample, iterations, max |device - cpu|)",
        figures["torch_mg"])

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        overrides = {"width": width, "n_samples": 40, "eval_batch_size": 8} if smoke else {}
        metrics = reproduce(9, "paper", Path(tmp) / "runs", Path(tmp) / "data", epochs=args.epochs,
                            device=str(device), progress=False, **overrides)
        training = metrics["training"]
        figures["paper_run"] = {"epochs": training["epochs_run"], "train_seconds": training["seconds"],
                                "seconds_per_epoch": training["seconds"] / training["epochs_run"],
                                "wall_seconds": time.perf_counter() - start,
                                **{k: metrics["test"][k] for k in ("mean_res", "p99_res", "max_res")}}
    log(f"paper preset, {args.epochs} epochs of model 9", figures["paper_run"])

    if args.cpu_hour:
        figures["cpu_hour_run"] = cpu_hour_on_device(device, smoke)
        log("cpu-hour preset's model 9 on this device (epoch, held-out mean residual here, on the CPU)",
            figures["cpu_hour_run"])
    figures["nccl"] = ("not run: one GPU (NCCL needs a device per rank)" if figures["gpu_count"] < 2 else
                       "run tests/test_distributed.py's torchrun check with --nproc-per-node=2 on cuda")

    Path(args.out).write_text(json.dumps(figures, indent=2, default=str))
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
