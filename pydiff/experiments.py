"""Table 2's fourteen models and the presets that train them.

A preset is a set of defaults (data size, width, optimiser, epochs); every value can be
overridden.  ``paper`` is the original code's set-up; ``quick`` trains one model on a 2-core CPU
in minutes (width 1/8, 2,000 samples, He initialisation, Adam 1e-3 with a cosine schedule,
final BatchNorms started at the targets' spread and mean; Table 1's layer structure
unchanged); ``smoke`` takes seconds and exists for the tests.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

TABLE2_CSV = Path(__file__).resolve().parents[1] / "data" / "paper_table2.csv"


@dataclass(frozen=True)
class PaperModel:
    """One row of Table 2: hyper-parameters and the published test-set residuals."""

    model: int
    w: float
    p1: float
    p2: float
    dropout: tuple[float, float, float, float]  # NaN where the network is off
    loss: str
    mean_res: float
    p99_res: float
    max_res: float


def _float(text: str) -> float:
    return float(text) if text.strip() else math.nan


def table2() -> dict[int, PaperModel]:
    """The published Table 2, read from ``data/paper_table2.csv``."""
    if not TABLE2_CSV.is_file():
        raise ConfigError(f"{TABLE2_CSV} is missing; install pydiff from its repository (pip install -e .)")
    rows = {}
    with open(TABLE2_CSV, newline="") as f:
        for r in csv.DictReader(f):
            rows[int(r["model"])] = PaperModel(
                model=int(r["model"]), w=float(r["w"]), p1=float(r["p1"]), p2=float(r["p2"]),
                dropout=tuple(_float(r[k]) for k in ("D1", "D2", "D3", "D4")), loss=r["loss"],
                mean_res=float(r["mean_res"]), p99_res=float(r["p99_res"]), max_res=float(r["max_res"]),
            )
    return rows


def paper_model(model_id: int) -> PaperModel:
    """Row ``model_id`` of Table 2; :class:`ConfigError` for an id outside 1..14."""
    rows = table2()
    if model_id not in rows:
        raise ConfigError(f"unknown model id {model_id}; Table 2 has models {min(rows)}-{max(rows)}")
    return rows[model_id]


# Values of the original code for `paper`; see DESIGN.md, "Training fast", for `quick`.
PRESETS: dict[str, dict] = {
    "paper": {
        "n_samples": 20000, "width": 1.0, "batch_size": 25, "lr": 5e-6, "lr_schedule": "constant",
        "epochs": 800, "output_scale": None, "rollback": "paper",
    },
    "quick": {
        "n_samples": 2000, "width": 0.125, "batch_size": 16, "lr": 1e-3, "lr_schedule": "cosine",
        "epochs": 50, "output_scale": 0.14, "output_shift": 0.095, "init": "kaiming", "rollback": "paper",
    },
    "smoke": {
        "n_samples": 40, "width": 0.0625, "batch_size": 8, "lr": 1e-3, "lr_schedule": "cosine",
        "epochs": 3, "output_scale": 0.14, "output_shift": 0.095, "init": "kaiming", "rollback": "paper",
    },
}


def preset(name: str) -> dict:
    """A copy of preset ``name``'s values; :class:`ConfigError` for an unknown name."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def data_path(data_dir, n: int, seed: int, backend: str = "spectral") -> Path:
    """Where the cached ground truth of ``n`` samples and ``seed`` lives (paper's problem)."""
    return Path(data_dir) / f"two_sources-L100-n{n}-seed{seed}-{backend}.h5"


def ensure_data(data_dir, n: int, seed: int, backend: str = "spectral", progress=True) -> Path:
    """The cached data set, generated (or an interrupted generation finished) when needed.

    ``generate(..., resume=True)`` does all of it: it returns a complete file after checking
    that it was made with these parameters, finishes a ``.partial`` one, or starts afresh.
    """
    from .dataset import generate

    Path(data_dir).mkdir(parents=True, exist_ok=True)
    return generate(data_path(data_dir, n, seed, backend), n, seed=seed, backend=backend, resume=True,
                    progress=progress)


def evaluate_run(run_dir, splits=("test", "train"), device: str = "auto") -> dict:
    """Metrics of a trained run on its splits, written with its figures; returns metrics.json."""
    from .metrics import evaluate
    from .report import write_run_report
    from .train import read_config, read_result

    by_split = evaluate(run_dir, splits=splits, device=device)
    if "test" not in by_split:
        raise ConfigError(f"{run_dir}: its split has no test samples")
    return write_run_report(run_dir, by_split, read_config(run_dir), read_result(run_dir))


def reproduce(model_id: int, preset_name: str = "quick", runs_dir="runs", data_dir="data", seed: int = 0,
              backend: str = "spectral", progress=True, **overrides) -> dict:
    """One row of Table 2 end to end: data (cached), training (resumable), metrics, figures.

    Returns metrics.json's contents plus ``run_dir``.  A second call with the same arguments
    reuses the data, the trained run and its metrics; an interrupted one continues.
    """
    import dataclasses

    from .train import config_for, read_result, train

    config = config_for(model_id, preset_name, seed=seed, **overrides)
    data = ensure_data(data_dir, config.n_samples, seed, backend, progress=progress)
    config = dataclasses.replace(config, data=str(data))
    run_dir = Path(runs_dir) / preset_name / f"model{model_id:02d}-seed{seed}"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    if read_result(run_dir) is None:
        train(config, run_dir, resume=(run_dir / "last.pt").is_file(), progress=progress)
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file() and metrics_file.stat().st_mtime >= (run_dir / "result.json").stat().st_mtime:
        import json

        metrics = json.loads(metrics_file.read_text())
    else:
        metrics = evaluate_run(run_dir, device=config.device)
    metrics["run_dir"] = str(run_dir)
    return metrics
