"""The levers of the ``cpu-hour`` preset, one at a time: model 9 on the paper's data (20,000
samples, 80/20), each lever changed alone from the preset (one pair together), every run the
same number of epochs; the test mean residual each reaches and its curve of error against minutes.

    OMP_NUM_THREADS=1 nice python benchmarks/cpu_hour.py --epochs 5 [--levers base,lr3e-3]
    python benchmarks/cpu_hour.py --report            # the table and the figure of what has run

Each lever is a ``pydiff reproduce --preset cpu-hour --model 9`` run with its options
(``runs/cpu-hour/model09-seed0-epochs5-lr0.003``): cached, resumable, evaluated on the test split
as Table 2 is.  The curve is log.csv's held-out mean residual per epoch (with the training-mode
BatchNorm statistics, or with those recomputed each epoch in the preset and the ``recal`` levers)
against the run's cumulative training seconds; the table gives the evaluated test mean, 99th
percentile and maximum of the best epoch.  Writes
``runs/cpu-hour/levers.csv`` and ``levers.png``.

Measured on this project's 2-core Intel Xeon: docs/table2.md ("cpu-hour").
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from pydiff import atomic
from pydiff.benchmarking.machine import machine
from pydiff.pipelines.reproduce import reproduce, run_dir_for
from pydiff.training.checkpoint import read_log
from pydiff.training.config import config_for

MODEL = 9
PRESET = "cpu-hour"
# One lever at a time, each against the preset as it was on 2026-12-01/02 ("base": width 1/8, its
# epochs picked on the training-mode BatchNorm statistics): the options each changes.
BEFORE = {"width": 0.125, "recalibrate_each_epoch": 0}
LEVERS: dict[str, dict] = {
    "base": BEFORE,
    "lr3e-3": {**BEFORE, "lr": 3e-3},
    "lr3e-4": {**BEFORE, "lr": 3e-4},
    "batch32": {**BEFORE, "batch_size": 32},
    "batch8": {**BEFORE, "batch_size": 8},
    "width0.25": {**BEFORE, "width": 0.25},
    "constant-lr": {**BEFORE, "lr_schedule": "constant"},
    "half-data": {**BEFORE, "n_samples": 10000},
    "mse": {**BEFORE, "loss": "MSE"},
    "tanh-mae": {**BEFORE, "loss": "tanh-MAE", "w": 1.0},
    # epochs picked on statistics recomputed over 2,000 training inputs: the same training
    "recal-each-epoch": {"width": 0.125},
    # both: the preset as it is now
    "width0.25+recal": {},
    # whole hours, whatever --epochs says: the preset of 2026-12-01/02, and its epochs picked on
    # recalibrated statistics (bit for bit the same training)
    "hour-before": {**BEFORE, "epochs": 27},
    "hour-recal": {"width": 0.125, "epochs": 27},
}


def lever_dir(runs_dir: Path, options: dict) -> Path:
    config = config_for(MODEL, PRESET, **options)
    return run_dir_for(runs_dir, PRESET, MODEL, 0, config)


def report(runs_dir: Path, levers: dict[str, dict]) -> list[dict]:
    """One row per finished run of ``levers`` (name: options): its minutes, epochs and test
    metrics."""
    rows = []
    for name, options in levers.items():
        run = lever_dir(runs_dir, options)
        metrics_file = run / "metrics.json"
        if not metrics_file.is_file():
            continue
        metrics = json.loads(metrics_file.read_text())
        training, test = metrics["training"], metrics["test"]
        rows.append({"lever": name, "run": str(run), "epochs": metrics["config"]["epochs"],
                     "minutes": training["seconds"] / 60, "best_epoch": training["best_epoch"],
                     "mean_res": test["mean_res"], "p99_res": test["p99_res"], "max_res": test["max_res"]})
    return rows


def curves(rows: list[dict]) -> dict[str, list[tuple[int, float, float]]]:
    """Each run's (epoch, cumulative minutes, held-out mean residual) per logged epoch, from its
    log.csv."""
    out = {}
    for row in rows:
        minutes, points = 0.0, []
        for r in read_log(row["run"]):
            minutes += float(r["seconds"]) / 60
            if r.get("val_mean_residual"):
                points.append((int(r["epoch"]), minutes, float(r["val_mean_residual"])))
        out[row["lever"]] = points
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ends = {row["lever"]: row for row in rows}
    for name, points in curves(rows).items():
        if points:
            line, = ax.plot([p[1] for p in points], [p[2] for p in points], marker="o", ms=3, label=name)
            # the evaluated test mean of the best epoch, its BatchNorm statistics recalibrated
            ax.plot([ends[name]["minutes"]], [ends[name]["mean_res"]], marker="*", ms=12, color=line.get_color())
    ax.axhline(2.5e-3, color="k", ls="--", lw=0.8, label="goal 2.5e-3")
    ax.axhline(2.08e-3, color="k", ls=":", lw=0.8, label="paper 2.08e-3")
    ax.set_xlabel("training minutes")
    ax.set_ylabel("mean residual: held-out per epoch (o), test at the end (*)")
    ax.set_yscale("log")
    ax.set_title(f"model {MODEL}, preset {PRESET}: one lever at a time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def table_text(rows: list[dict], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--levers", default=",".join(LEVERS), help=f"comma-separated names of levers, of {', '.join(LEVERS)}")
    parser.add_argument("--epochs", type=positive, default=5, help="epochs of every lever run (not the hour-* levers: "
                                                                   "27, a whole hour)")
    parser.add_argument("--runs", default="runs", help="runs directory (the runs go to RUNS/cpu-hour/)")
    parser.add_argument("--data", default="data", help="data directory")
    parser.add_argument("--report", action="store_true", help="only tabulate and plot the finished runs")
    parser.add_argument("--reference", help="write the preset run's curve (epoch, minutes, val_mean_residual) "
                                            "here: the CPU curve benchmarks/device_check.py compares a GPU with")
    args = parser.parse_args(argv)
    names = [n for n in args.levers.split(",") if n]
    unknown = [n for n in names if n not in LEVERS]
    if unknown:
        parser.error(f"unknown lever(s) {', '.join(unknown)}; choose from {', '.join(LEVERS)}")
    levers = {name: {"epochs": args.epochs, **LEVERS[name]} for name in names}  # a lever's own epochs stay
    runs_dir = Path(args.runs)
    if runs_dir.exists() and not runs_dir.is_dir():
        parser.error(f"--runs {runs_dir} is a file, not a directory")
    if args.report and not (runs_dir / PRESET).is_dir():
        print(f"cpu_hour.py: error: no runs of the {PRESET} preset under {runs_dir} (nothing to report; "
              f"run the levers first, without --report)", file=sys.stderr)
        return 2
    if not args.report:
        for name, options in levers.items():
            print(f"== lever {name}: {options}", flush=True)
            reproduce(MODEL, PRESET, runs_dir=runs_dir, data_dir=args.data, **options)
    # the preset itself, whole (pydiff reproduce --model 9 --preset cpu-hour), when it has run
    rows = report(runs_dir, {"preset": {}, **levers})
    if not rows:
        print(f"cpu_hour.py: error: no finished run of these levers under {runs_dir / PRESET}", file=sys.stderr)
        return 2
    out = runs_dir / PRESET
    atomic.write_text(table_text(rows, ["lever", "epochs", "minutes", "best_epoch", "mean_res", "p99_res", "max_res",
                                        "run"]), out / "levers.csv")
    plot(rows, out / "levers.png")
    print(f"{machine()}")
    name_width = max(len("lever"), *(len(r["lever"]) for r in rows))
    print(f"{'lever':{name_width}s} {'epochs':>6s} {'minutes':>8s} {'mean':>9s} {'p99':>9s} {'max':>7s}")
    for r in rows:
        print(f"{r['lever']:{name_width}s} {r['epochs']:6d} {r['minutes']:8.1f} {r['mean_res']:9.2e} {r['p99_res']:9.2e} "
              f"{r['max_res']:7.3f}")
    if args.reference:
        if rows[0]["lever"] != "preset":
            print(f"cpu_hour.py: error: no reference written: the whole preset run (pydiff reproduce --model {MODEL} "
                  f"--preset {PRESET} --runs {runs_dir}) has not finished", file=sys.stderr)
            return 2
        points = [{"epoch": epoch, "minutes": f"{minutes:.2f}", "val_mean_residual": f"{value:.4e}"}
                  for epoch, minutes, value in curves(rows[:1])["preset"]]
        atomic.write_text(table_text(points, ["epoch", "minutes", "val_mean_residual"]), Path(args.reference))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
