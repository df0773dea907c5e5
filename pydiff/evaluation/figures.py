"""The paper's figures (matplotlib, PNG) from a run's metrics and log.

Figures are written atomically into the run directory under the names in
:data:`pydiff.training.checkpoint.FIGURES`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import replacing
from ..training.checkpoint import FIGURES, REGIONS_FIGURE, read_log
from .metrics import JOINT_RANGE


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    try:
        with replacing(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    finally:
        _pyplot().close(fig)
    return path


def plot_examples(examples: dict, path: Path, n: int = 6, title: str = "") -> Path:
    """Figs. 5-7: input, truth, prediction, residual and relative residual for n test samples."""
    plt = _pyplot()
    n = min(n, len(examples["inputs"]))
    x, y, p = (np.asarray(examples[k][:n]) for k in ("inputs", "truth", "prediction"))
    r = np.abs(p - y)
    rel = np.where(y > 1e-3, r / np.maximum(y, 1e-3), np.nan)
    rows = [("input", x, "viridis"), ("truth", y, "viridis"), ("prediction", p, "viridis"),
            ("residual", r, "magma"), ("relative residual", rel, "magma")]
    fig, axes = plt.subplots(len(rows), n, figsize=(2.0 * n + 1, 2.0 * len(rows)), squeeze=False)
    for i, (label, images, cmap) in enumerate(rows):
        vmax = np.nanpercentile(images, 99.5) if label.startswith("relative") else np.nanmax(images)
        vmin = min(0.0, float(np.nanmin(images)))  # an untrained network may predict negative values
        vmax = vmax if vmax > vmin else vmin + 1.0  # and a constant: still a valid colour scale
        for j in range(n):
            ax = axes[i, j]
            im = ax.imshow(images[j].T, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label)
        fig.colorbar(im, ax=axes[i, :].tolist(), shrink=0.8)
    fig.suptitle(title or "test samples (x right, y up)")
    return _save(fig, path)


def plot_joint(joint: np.ndarray, path: Path, title: str = "") -> Path:
    """Fig. 8: density of (truth, prediction) pixels with marginal PDFs."""
    plt = _pyplot()
    fig = plt.figure(figsize=(6, 6))
    grid = fig.add_gridspec(4, 4, hspace=0.05, wspace=0.05)
    main = fig.add_subplot(grid[1:, :3])
    top = fig.add_subplot(grid[0, :3], sharex=main)
    right = fig.add_subplot(grid[1:, 3], sharey=main)
    lo, hi = JOINT_RANGE
    counts = np.asarray(joint, dtype=float)
    main.imshow(np.log10(counts.T + 1), origin="lower", extent=[lo, hi, lo, hi], aspect="auto", cmap="viridis")
    main.plot([0, 1], [0, 1], "w--", lw=0.8)
    main.set_xlabel("ground truth")
    main.set_ylabel("prediction")
    centres = np.linspace(lo, hi, counts.shape[0] + 1)
    centres = (centres[1:] + centres[:-1]) / 2
    top.semilogy(centres, counts.sum(axis=1) + 1, color="tab:red")
    right.semilogx(counts.sum(axis=0) + 1, centres, color="tab:blue")
    top.set_title(title or "truth vs prediction (log10 pixel count)")
    for ax in (top, right):
        ax.tick_params(labelbottom=False, labelleft=False)
    return _save(fig, path)


def plot_slices(by_split: dict[str, dict], path: Path, n: str = "10", title: str = "") -> Path:
    """Fig. 9: per-slice mean of a = (y_hat - y)/sqrt(2), with +/- one standard deviation."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = {"test": "tab:blue", "train": "tab:red", "val": "tab:green"}
    for split, result in by_split.items():
        rows = result["slices"][n]
        s = np.array([row["slice"] for row in rows])
        mean = np.array([row["mean"] for row in rows], dtype=float)
        std = np.array([row["std"] for row in rows], dtype=float)
        ax.plot(s, mean, "o-", color=colors.get(split), label=split)
        ax.fill_between(s, mean - std, mean + std, color=colors.get(split), alpha=0.25)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(f"slice (field value in [(i-1)/{n}, i/{n}))")
    ax.set_ylabel("mean residual across y = x")
    ax.set_title(title or "residual per slice")
    ax.legend()
    return _save(fig, path)


def plot_pdfs(result: dict, path: Path, title: str = "") -> Path:
    """Figs. 10-11: probability densities of predicted and true field values."""
    plt = _pyplot()
    edges = np.asarray(result["pdf"]["edges"])
    centres = (edges[1:] + edges[:-1]) / 2
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(centres, result["pdf"]["truth"], color="tab:red", label="ground truth")
    ax.semilogy(centres, result["pdf"]["prediction"], color="tab:blue", label="prediction")
    ax.set_xlabel("field value")
    ax.set_ylabel("PDF")
    ax.set_title(title or "field value densities (test set)")
    ax.legend()
    return _save(fig, path)


def plot_loss(rows: list[dict], path: Path, title: str = "") -> Path:
    """Fig. 4: training and held-out loss per epoch (rows of log.csv), roll-back events circled."""
    plt = _pyplot()
    epoch = np.array([int(r["epoch"]) for r in rows])
    train = np.array([float(r["train_loss"]) for r in rows])
    val = np.array([float(r["val_loss"]) for r in rows])
    rolled = np.array([r["rolled_back"] == "True" for r in rows])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(epoch, train, color="tab:blue", label="training loss")
    ax.semilogy(epoch, val, color="tab:orange", label="held-out loss")
    if rolled.any():
        ax.scatter(epoch[rolled], train[rolled], s=80, facecolors="none", edgecolors="tab:green",
                   label=f"roll-back ({rolled.sum()})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (Eq. 2)")
    ax.set_title(title or "training")
    ax.legend()
    return _save(fig, path)


def plot_regions(regions: list[dict], path: Path, title: str = "") -> Path:
    """The 2024 papers' error per region: mean absolute error against the number of sources,
    one line per region (inside the sources, field bands outside them, all pixels)."""
    plt = _pyplot()
    counts = [row["n_sources"] for row in regions]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in [k for k in regions[0] if k != "n_sources"]:
        ax.semilogy(counts, [row[name] for row in regions], "o-", ms=3, label=name,
                    color="k" if name == "all" else None)
    ax.set_xlabel("number of sources")
    ax.set_ylabel("mean absolute error")
    ax.set_xticks(counts)
    ax.set_title(title or "error per number of sources and region (test)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_train_size(table, fits: dict, path: Path, title: str = "") -> Path:
    """Test error against training-set size (log axis): every run, the mean over seeds with its
    spread, and the fit ``a + b ln(n)`` per kind of training data."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    styles = {"file": ("tab:blue", "fixed training set"), "online": ("tab:orange", "online: fresh samples, same steps")}
    for kind, rows in table.groupby("data", sort=False):
        color, label = styles.get(kind, ("tab:gray", kind))
        ax.scatter(rows.n_train, rows.mean_res, s=12, color=color, alpha=0.5)
        by_size = rows.groupby("n_train").mean_res
        mean, spread = by_size.mean(), by_size.std().fillna(0.0)
        ax.errorbar(mean.index, mean.values, yerr=spread.values, color=color, marker="o", capsize=3, label=label)
        fit = fits.get(kind)
        if fit is not None and np.isfinite(fit.b):
            n = np.geomspace(rows.n_train.min(), rows.n_train.max(), 50)
            ax.plot(n, fit(n), "--", color=color, lw=1,
                    label=f"{fit.a:.3g} {'+' if fit.b >= 0 else '-'} {abs(fit.b):.3g} ln n  (R$^2$ {fit.r2:.2f})")
    ax.set_xscale("log")
    ax.set_xlabel("training samples n (online: samples per epoch)")
    ax.set_ylabel("mean absolute test error")
    ax.set_title(title or "error against training-set size")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_trust(scores: dict, error, path: Path, title: str = "", spearman: dict | None = None) -> Path:
    """Each label-free score against the true mean residual of every test sample (log axes),
    the worst 5 % by true error in red; ``spearman`` (method -> rank correlation) titles each panel."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    short = FuncFormatter(lambda v, _: f"{v:.2g}")  # "0.002": fits where 2×10⁻³ labels collide

    error = np.asarray(error)
    worst = error >= np.quantile(error, 0.95)
    fig, axes = plt.subplots(1, len(scores), figsize=(4.4 * len(scores), 3.8), squeeze=False, layout="constrained")
    for ax, (method, score) in zip(axes[0], scores.items()):
        ax.scatter(error[~worst], score[~worst], s=4, alpha=0.5, color="tab:blue")
        ax.scatter(error[worst], score[worst], s=6, color="tab:red", label="worst 5 %")
        ax.set_xscale("log")
        log_axes = [ax.xaxis]
        if np.all(np.asarray(score) > 0):
            ax.set_yscale("log")
            log_axes.append(ax.yaxis)
        for axis in log_axes:  # scores and errors span one or two decades: label 1, 2 and 5 of each
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(short)
            axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("true mean residual")
        ax.set_ylabel(f"{method} score")
        if spearman is not None and method in spearman:
            ax.set_title(f"{method}: Spearman {spearman[method]:.2f}", fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(title or "error estimates without ground truth")
    return _save(fig, path)


def write_figures(run_dir: Path, by_split: dict[str, dict], label: str) -> list[Path]:
    """Every figure of a run into its directory; returns their paths.  Data with several source
    counts (the 2024 problem) also get the error per count and region."""
    run_dir = Path(run_dir)
    test = by_split["test"]
    paths = [
        plot_loss(read_log(run_dir), run_dir / FIGURES[0], f"{label}: loss per epoch"),
        plot_examples(test["examples"], run_dir / FIGURES[1], title=f"{label}: test samples"),
        plot_joint(test["joint"], run_dir / FIGURES[2], f"{label}: truth vs prediction (test)"),
        plot_slices(by_split, run_dir / FIGURES[3], title=f"{label}: residual per slice"),
        plot_pdfs(test, run_dir / FIGURES[4], f"{label}: field PDFs (test)"),
    ]
    if len(test.get("regions", [])) > 1:
        paths.append(plot_regions(test["regions"], run_dir / REGIONS_FIGURE, f"{label}: error per region (test)"))
    return paths
