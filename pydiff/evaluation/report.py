"""Tables beside the published numbers, and the report of one evaluated run.

Everything here reads what evaluation and training wrote; nothing trains.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import atomic
from ..registry import table2
from ..seeds import check_seed
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


# --- Several seeds of a row: mean ± spread, rank agreement with an interval, the findings ---------

# A run directory of `pydiff reproduce`: modelNN-seedS, then the options that differ from the
# preset's (pydiff.pipelines.reproduce.run_dir_for).
SEEDED_RUN = re.compile(r"^model(?P<model>\d+)-seed(?P<seed>\d+)(?P<options>.*)$")
RESULT_KEYS = tuple(key for key, _ in RESULT_COLUMNS)


@dataclass(frozen=True)
class SeedGroup:
    """The evaluated runs of one Table 2 model that differ in their seed alone.

    ``variant`` names the set-up the group shares with the groups of other models (its preset's
    directory and options: ``quick/modelNN-seedS``, ``quick/modelNN-seedS-epochs5``); the rank
    agreement and the findings compare the groups of one variant.  A run directory that
    ``reproduce`` did not name (``compare/surrogate``) is a group and a variant of its own.
    """

    model: int
    variant: str
    name: str  # the table's run column: quick/model09-seed0,1,2
    seeds: tuple[int, ...]  # ascending; a run that names no seed counts as seed -1
    values: dict[str, tuple[float, ...]]  # mean_res, p99_res, max_res of each seed, in seeds' order

    def mean(self, key: str) -> float:
        return float(np.mean(self.values[key]))

    def spread(self, key: str) -> float:
        """The sample standard deviation over the seeds (n - 1 in the denominator); NaN for one."""
        return float(np.std(self.values[key], ddof=1)) if len(self.seeds) > 1 else math.nan

    def by_seed(self, key: str) -> dict[int, float]:
        return dict(zip(self.seeds, self.values[key]))


def group_runs(runs) -> list[SeedGroup]:
    """The runs ``[(model id, run path relative to the runs root, test metrics), ...]`` (as
    :func:`collect_runs` finds them) grouped by model and variant (:class:`SeedGroup`): the runs
    ``quick/model09-seed0`` and ``quick/model09-seed1`` are one group, ``quick/model09-seed0-epochs5``
    another, ``compare/surrogate`` a third.  Sorted by model, then name."""
    found: dict[tuple[int, str], dict[int, dict]] = {}
    names: dict[tuple[int, str], tuple[str, str]] = {}
    for model_id, run, metrics in runs:
        parent, _, name = str(run).replace("\\", "/").rpartition("/")
        match = SEEDED_RUN.match(name)
        if match is None:
            key, seed, naming = (int(model_id), str(run)), -1, (str(run), "")
        else:
            prefix = f"{parent}/" if parent else ""
            key = (int(model_id), f"{prefix}modelNN-seedS{match['options']}")
            seed, naming = int(match["seed"]), (f"{prefix}model{match['model']}-seed", match["options"])
        found.setdefault(key, {})[seed] = metrics
        names[key] = naming
    groups = []
    for (model_id, variant), by_seed in found.items():
        seeds = tuple(sorted(by_seed))
        head, options = names[(model_id, variant)]
        name = head if seeds == (-1,) else head + ",".join(map(str, seeds)) + options
        groups.append(SeedGroup(model_id, variant, name, seeds,
                                {key: tuple(float(by_seed[s][key]) for s in seeds) for key in RESULT_KEYS}))
    return sorted(groups, key=lambda g: (g.model, g.name))


def seed_table(groups: list[SeedGroup], models=range(1, 15), runs_column: bool = True) -> pd.DataFrame:
    """Table 2 with our test-set residuals beside the published ones, one row per
    :class:`SeedGroup`: the mean over its seeds and, when some group has several, the number of
    seeds and the sample standard deviation (``LABEL (std)``).  A model without a run shows NaN.
    With one seed per group it is :func:`comparison_table` of the same runs."""
    several = any(len(g.seeds) > 1 for g in groups)
    runs_column = runs_column or len({(g.model) for g in groups}) < len(groups)
    paper = table2()
    rows = []
    for model_id in models:
        ref = paper[model_id]
        mine: list[SeedGroup | None] = [g for g in groups if g.model == model_id] or [None]
        for group in mine:
            row = {"model": model_id, **({"run": group.name if group else ""} if runs_column else {}),
                   **({"seeds": len(group.seeds) if group else 0} if several else {}),
                   "w": ref.w, "p1": int(ref.p1), "p2": int(ref.p2),
                   **{f"D{i + 1}": _dropout_text(d) for i, d in enumerate(ref.dropout)}, "loss": ref.loss}
            for key, label in RESULT_COLUMNS:
                value = group.mean(key) if group else math.nan
                published = getattr(ref, key)
                row[f"{label} (ours)"] = value
                if several:
                    row[f"{label} (std)"] = group.spread(key) if group else math.nan
                row[f"{label} (paper)"] = published
                row[f"{label} ratio"] = value / published
            rows.append(row)
    return pd.DataFrame(rows)


def format_seed_table(df: pd.DataFrame, fmt: str = "text") -> str:
    """:func:`format_table` of a :func:`seed_table`; in text, markdown and latex, each ``LABEL
    (ours)`` cell reads ``mean ± std`` where the table has a ``LABEL (std)`` column (csv keeps the
    two numbers apart)."""
    if fmt == "csv" or not any(column.endswith("(std)") for column in df.columns):
        return format_table(df, fmt)
    shown = df.copy()
    for _, label in RESULT_COLUMNS:
        spec = ".3g" if label.startswith("max") else ".2e"

        def cell(mean, std, spec=spec):
            if mean != mean:
                return "missing"
            return format(mean, spec) + ("" if std != std else f" ± {std:{spec}}")

        shown[f"{label} (ours)"] = [cell(m, s) for m, s in zip(df[f"{label} (ours)"], df[f"{label} (std)"])]
        shown = shown.drop(columns=f"{label} (std)")
    return format_table(shown, fmt)


def spearman(x, y) -> np.ndarray:
    """Spearman's rank correlation of ``x`` and ``y`` along their last axis (ties: average ranks),
    as :func:`scipy.stats.spearmanr` gives it for one pair; NaN where either has no spread."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x, axis=-1), rankdata(y, axis=-1)
    rx, ry = rx - rx.mean(axis=-1, keepdims=True), ry - ry.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((rx * rx).sum(axis=-1) * (ry * ry).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rx * ry).sum(axis=-1) / np.where(denominator > 0, denominator, 1), np.nan)


@dataclass(frozen=True)
class RankInterval:
    """Spearman's rank correlation of our means with the published values, and its bootstrap
    percentile interval (``level``, from ``resamples`` resamples seeded by ``seed``)."""

    rho: float
    low: float
    high: float
    resamples: int
    level: float
    seed: int


def rank_intervals(groups: list[SeedGroup], resamples: int = 2000, level: float = 0.95,
                   seed: int = 0) -> dict[str, RankInterval]:
    """Spearman's rank correlation between our mean residuals (over each model's seeds) and the
    published ones, over the models of ``groups`` (one group per model: one variant), with a
    bootstrap interval: each resample draws as many of its seeds, with replacement, for every model,
    and as many models as there are, with replacement, then ranks the drawn models' means against
    their published values (a model drawn twice counts twice, with the same draw of seeds: tied in
    both rankings); the interval is the central ``level`` of those correlations (resamples without
    any ranking, every draw the same model, are left out).  Reproducible: ``seed`` seeds the draws,
    and the three columns share them.  Keys: :data:`RESULT_COLUMNS`' labels."""
    if len({g.model for g in groups}) != len(groups):
        raise ValueError("rank_intervals takes one group per model (one variant)")
    paper = table2()
    rng = np.random.default_rng(check_seed(seed, "the bootstrap seed"))
    n = len(groups)
    seed_draws = [rng.integers(0, len(g.seeds), size=(resamples, len(g.seeds))) for g in groups]
    picks = rng.integers(0, n, size=(resamples, n))
    rows = np.arange(resamples)[:, None]
    out = {}
    for key, label in RESULT_COLUMNS:
        ours = np.array([g.mean(key) for g in groups])
        published = np.array([getattr(paper[g.model], key) for g in groups])
        rho = float(spearman(ours, published)) if n >= 3 else math.nan
        # [b, i]: model i's mean over the seeds resample b draws
        drawn = np.stack([np.asarray(g.values[key])[d].mean(axis=-1) for g, d in zip(groups, seed_draws)], axis=1)
        boot = spearman(drawn[rows, picks], published[picks]) if n >= 3 else np.array([])
        boot = boot[np.isfinite(boot)]
        tail = 100 * (1 - level) / 2
        low, high = (np.percentile(boot, [tail, 100 - tail]) if boot.size and rho == rho else (math.nan, math.nan))
        out[label] = RankInterval(rho, float(low), float(high), resamples, level, seed)
    return out


# Table 2's findings, each as comparisons (a model, the models it should be worse than by mean
# residual): the pairs that differ in the named setting alone (docs/table2.md).
_NN2 = tuple(m for m in range(1, 15) if m not in (6, 7))
FINDINGS: tuple[tuple[str, tuple[tuple[int, tuple[int, ...]], ...]], ...] = (
    ("MAE beats MSE", ((2, (10,)), (3, (11,)), (5, (12,)))),
    ("less dropout in NN2 wins", ((4, (5,)), (13, (14,)), (2, (3,)), (10, (11,)), (8, (9,)))),
    ("a larger w wins", ((2, (1,)), (10, (8,)), (11, (9,)), (12, (14,)))),
    ("NN1 alone is worse than every model with NN2", ((6, _NN2), (7, _NN2))),
)


def _describe(finding: str, model_id: int) -> str:
    ref = table2()[model_id]
    if finding.startswith("MAE"):
        return ref.loss
    if finding.startswith("less dropout"):
        return "D " + "/".join(_dropout_text(d) for d in ref.dropout)
    if finding.startswith("a larger w"):
        return f"w {ref.w:g}"
    return "NN1 alone" if ref.p2 == 0 else "NN2"


def findings(groups: list[SeedGroup], key: str = "mean_res") -> pd.DataFrame:
    """Each comparison of :data:`FINDINGS` among ``groups`` (one group per model: one variant)
    whose first model and at least one of the others have a run: in how many of the seeds both
    sides have the first model worse (``key`` larger) than the others (than the best of them
    when several), whether our means over the seeds and the paper's values agree; a comparison
    with no run of its models is left out."""
    by_model = {g.model: g for g in groups}
    paper = table2()
    rows = []
    for finding, comparisons in FINDINGS:
        for worse, better in comparisons:
            present = [m for m in better if m in by_model]
            if worse not in by_model or not present:
                continue
            seeds = set(by_model[worse].seeds).intersection(*(by_model[m].seeds for m in present))
            agree = sum(by_model[worse].by_seed(key)[s] > max(by_model[m].by_seed(key)[s] for m in present)
                        for s in seeds)
            ours_better = min(by_model[m].mean(key) for m in present)
            paper_better = min(getattr(paper[m], key) for m in present)
            if len(better) == 1:
                what = f"{worse} vs {better[0]} ({_describe(finding, worse)} vs {_describe(finding, better[0])})"
            else:
                what = f"{worse} vs the best of {len(present)} models with NN2"
            rows.append({
                "finding": finding, "comparison": what, "seeds agreeing": f"{agree} of {len(seeds)}",
                "ours": f"{by_model[worse].mean(key):.2e} vs {ours_better:.2e}",
                "ours agrees": "yes" if by_model[worse].mean(key) > ours_better else "no",
                "paper": f"{getattr(paper[worse], key):.2e} vs {paper_better:.2e}",
                "paper agrees": "yes" if getattr(paper[worse], key) > paper_better else "no",
            })
    return pd.DataFrame(rows)


def _two(value: float) -> str:
    return "n/a" if value != value else f"{value:.2f}"


def seed_report(runs, fmt: str = "text", models=range(1, 15), runs_column: bool = True, resamples: int = 2000,
                seed: int = 0) -> str:
    """Table 2 from the evaluated runs ``[(model id, run path, test metrics), ...]`` aggregated
    over seeds (:func:`seed_table`); in text and markdown, for each variant with three or more
    models, the rank agreement with its bootstrap interval (:func:`rank_intervals`) and, for
    each variant with a comparison, the findings with how many seeds agree (:func:`findings`).
    csv and latex: the table alone."""
    models = list(models)
    check_seed(seed, "the bootstrap seed")  # before any of the table is made
    groups = [g for g in group_runs(runs) if g.model in models]
    parts = [format_seed_table(seed_table(groups, models, runs_column), fmt)]
    if fmt not in ("text", "markdown"):
        return parts[0]
    if any(len(g.seeds) > 1 for g in groups):
        parts.append("ours: the mean ± the sample standard deviation over the seeds (n - 1 in its denominator)")
    variants: dict[str, list[SeedGroup]] = {}
    for g in groups:
        variants.setdefault(g.variant, []).append(g)
    several = len(variants) > 1
    for variant, members in variants.items():
        counts = sorted({len(g.seeds) for g in members})
        seeds = (f"{counts[0]} seed{'s' if counts[0] > 1 else ''} each" if len(counts) == 1
                 else f"{counts[0]}-{counts[-1]} seeds each")
        of = f" of {variant}" if several else ""
        if len(members) >= 3:
            intervals = rank_intervals(members, resamples=resamples, seed=seed)
            level = next(iter(intervals.values())).level
            parts.append(f"Spearman rank correlation with the paper over {len(members)} models{of} ({seeds}): "
                         + ", ".join(f"{label} {_two(r.rho)} [{_two(r.low)}, {_two(r.high)}]"
                                     for label, r in intervals.items())
                         + f"\n(in brackets its {100 * level:g} % bootstrap interval: {resamples} resamples of the "
                         f"models and of each model's seeds, seed {seed})")
        found = findings(members)
        if len(found):
            parts.append(f"Table 2's findings{of} by mean residual ({seeds}; seeds agreeing: the seeds in which "
                         "the first model is worse than the other, or than the best of the others):")
            parts.append(format_table(found, fmt))
    return "\n\n".join(parts)


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
