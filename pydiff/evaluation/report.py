"""Tables beside the published numbers, and the report of one evaluated run.

Everything here reads what evaluation and training wrote; nothing trains.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from .. import atomic
from ..registry import table2
from ..training import checkpoint
from .figures import write_figures

RESULT_COLUMNS = [("mean_res", "mean res"), ("p99_res", "99-P res"), ("max_res", "max res")]


def _dropout_text(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def comparison_table(results, models=range(1, 15)) -> pd.DataFrame:
    """Table 2 with our test-set residuals beside the published ones.

    Args:
        results: ``{model id: test metrics}`` (mean_res, p99_res, max_res), or a list of
            ``(model id, run name, test metrics)``: several runs of one model (seeds, a compare
            run) give one row each, named in a ``run`` column.  A model without a run shows NaN.
    """
    runs = [(m, None, r) for m, r in results.items()] if isinstance(results, dict) else list(results)
    named = any(name is not None for _, name, _ in runs)
    rows = []
    paper = table2()
    for model_id in models:
        ref = paper[model_id]
        mine = [(name, r) for m, name, r in runs if m == model_id] or [(None, None)]
        for name, ours in mine:
            row = {"model": model_id, **({"run": name or ""} if named else {}), "w": ref.w, "p1": int(ref.p1),
                   "p2": int(ref.p2), **{f"D{i + 1}": _dropout_text(d) for i, d in enumerate(ref.dropout)},
                   "loss": ref.loss}
            for key, label in RESULT_COLUMNS:
                value = ours[key] if ours else math.nan
                published = getattr(ref, key)
                row[f"{label} (ours)"] = value
                row[f"{label} (paper)"] = published
                row[f"{label} ratio"] = value / published if ours else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


def rank_agreement(table: pd.DataFrame) -> dict[str, float]:
    """Spearman rank correlation between our and the published values of each residual column,
    over the models of a :func:`comparison_table` that have a run (the mean over a model's runs
    when it has several); NaN with fewer than 3 models or a column without spread.  Does the reproduction order the models
    as the paper does?"""
    from scipy.stats import spearmanr

    agreement = {}
    for _, label in RESULT_COLUMNS:
        ours = table.groupby("model")[[f"{label} (ours)", f"{label} (paper)"]].mean().dropna()
        ranked = len(ours) >= 3 and ours.iloc[:, 0].nunique() > 1 and ours.iloc[:, 1].nunique() > 1
        agreement[label] = float(spearmanr(ours.iloc[:, 0], ours.iloc[:, 1]).statistic) if ranked else math.nan
    return agreement


def format_table(df: pd.DataFrame, fmt: str = "text", formats: dict[str, str] | None = None,
                 nan: str = "missing") -> str:
    """Render a table as text, csv, markdown or latex.  Float columns take their format spec from
    ``formats`` (column -> spec) or the Table 2 defaults; NaN shows as ``nan``."""
    if fmt == "csv":
        return df.to_csv(index=False)
    shown = df.copy()
    formats = formats or {}
    for column in shown.columns:
        if shown[column].dtype.kind == "f" and column != "w":
            spec = formats.get(column) or (".2f" if column.endswith("ratio") else
                                           ".3g" if column.startswith("max") else ".2e")
            shown[column] = shown[column].map(lambda v, spec=spec: nan if v != v else format(v, spec))
    if "w" in shown.columns:
        shown["w"] = shown["w"].map(lambda v: f"{v:g}")
    if fmt == "text":
        with pd.option_context("display.max_columns", None, "display.width", 10_000):
            return shown.to_string(index=False)
    if fmt == "markdown":
        header = "| " + " | ".join(map(str, shown.columns)) + " |"
        rule = "|" + "|".join("---" for _ in shown.columns) + "|"
        body = ["| " + " | ".join(map(str, row)) + " |" for row in shown.itertuples(index=False)]
        return "\n".join([header, rule, *body])
    if fmt == "latex":
        return shown.to_latex(index=False)
    raise ValueError(f"unknown format {fmt!r}")


def collect_runs(root) -> dict[str, list[tuple[int, str, dict]]]:
    """``{preset: [(model id, run name, metrics.json contents), ...]}`` for every evaluated run of a
    Table 2 model under ``root``, the run named by its directory relative to ``root``."""
    found: dict[str, list] = {}
    root = Path(root)
    for path in sorted(root.rglob(checkpoint.METRICS)):
        metrics = json.loads(path.read_text())
        model_id = metrics.get("model")
        if model_id is None:
            continue
        run = str(path.parent.relative_to(root))
        found.setdefault(metrics.get("preset") or "custom", []).append((int(model_id), run, metrics))
    return found


def _jsonable(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("examples", "joint")}


def write_run_report(run_dir, by_split: dict[str, dict], config, training: dict | None) -> dict:
    """metrics.json, table.csv (our row beside the paper's) and the figures of one run."""
    run_dir = Path(run_dir)
    label = f"model {config.model}" if config.model else run_dir.name
    metrics = {"model": config.model, "preset": config.preset, "run_dir": str(run_dir),
               "config": config.to_json(), "training": training,
               **{split: _jsonable(result) for split, result in by_split.items()}}
    atomic.write_text(json.dumps(metrics, indent=2), run_dir / checkpoint.METRICS)
    if config.model:
        table = comparison_table({config.model: by_split["test"]}, models=[config.model])
        atomic.write_text(table.to_csv(index=False), run_dir / checkpoint.TABLE)
    write_figures(run_dir, by_split, label)
    return metrics


def write_transfer_report(run_dir, data_path, device: str = "auto", refine: int = 0) -> tuple[dict, Path]:
    """A run's metrics on every sample of another data file, written to ``RUN/on-NAME.json``
    (with that file's problem): the generalisation table's row; with ``refine`` steps, of the
    refined answers, to ``RUN/on-NAME-refineK.json``."""
    from ..datasets.hdf5 import inspect
    from .evaluate import evaluate_on

    result = evaluate_on(run_dir, data_path, device=device, refine=refine)
    f, _, problem = inspect(data_path)
    f.close()
    path = Path(run_dir) / f"on-{Path(data_path).stem}{f'-refine{refine}' if refine else ''}.json"
    atomic.write_text(json.dumps({"data": str(data_path), "problem": problem.to_attrs(), **_jsonable(result)},
                                 indent=2), path)
    return result, path
