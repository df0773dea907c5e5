"""Accuracy measures of the paper (Section 3), computed in one streaming pass over batches.

For prediction ``y_hat`` and truth ``y`` (fields in [0, 1]) the residual is ``r = |y_hat - y|``
per pixel.  :class:`FieldMetrics` accumulates, batch by batch, everything Table 2 and Figs. 6-11
need, so a test set never has to be in memory twice:

- mean, 99th percentile (from a fine histogram: exact to its bin width, 1.4e-6) and maximum
  of ``r``;
- mean relative residual ``r / y`` over pixels with ``y > 0``;
- per-slice statistics along the diagonal (Fig. 9): each pixel is the point (y, y_hat); rotated
  by 45 degrees it has ``a = (y_hat - y)/sqrt(2)`` across the diagonal and lies at field value
  ``(y_hat + y)/2`` along it; slice ``i`` holds the points whose field value is in
  ``[(i - 1) / n, i / n)`` (the last slice also takes 1 and above, the first anything below 0),
  and gets the mean and standard deviation of ``a``; n = 10 (the paper) and 20 (its supplement);
- probability densities of ``y_hat`` and ``y`` (Figs. 10-11) and their joint histogram (Fig. 8);
- gradient residual: mean ``|grad y_hat - grad y|`` with forward differences along x and y;
- the operator-learning field's measure, relative L2 per sample ``|y_hat - y|_2 / |y|_2``
  averaged over samples (the FNO paper's; PDEBench's nRMSE is the same quantity), and the
  root-mean-square error over all pixels;
- the median over samples of each sample's max residual (what a bound on the max error, and
  serving under it, is about).

Also Eq. 4, the break-even number of surrogate uses, :func:`n_min`.
"""

from __future__ import annotations

import math

import numpy as np

RESIDUAL_RANGE = 1.5  # residuals of fields in [0, 1] stay below this; larger ones go to the top bin
RESIDUAL_BINS = 2**20
PDF_BINS = 100
JOINT_BINS = 200
JOINT_RANGE = (-0.05, 1.05)


class FieldMetrics:
    """Streaming accumulator: call :meth:`update` per batch, then :meth:`result`."""

    def __init__(self, slices=(10, 20)) -> None:
        self.slices = tuple(slices)
        self.count = 0
        self.sum_r = 0.0
        self.max_r = 0.0
        self.r_hist = np.zeros(RESIDUAL_BINS, dtype=np.int64)
        self.sum_rel = 0.0
        self.count_rel = 0
        self.sum_grad = 0.0
        self.count_grad = 0
        self.sum_rel_l2 = 0.0
        self.samples = 0
        self.sum_squares = 0.0
        self.sample_max: list[float] = []  # each sample's max residual (their median: a serving figure)
        self.slice_sums = {n: np.zeros((3, n)) for n in self.slices}  # count, sum a, sum a^2
        self.pdf_pred = np.zeros(PDF_BINS, dtype=np.int64)
        self.pdf_true = np.zeros(PDF_BINS, dtype=np.int64)
        self.joint = np.zeros((JOINT_BINS, JOINT_BINS), dtype=np.int64)

    def update(self, prediction: np.ndarray, truth: np.ndarray) -> None:
        """Add a batch: arrays of the same shape, (b, L, L) or (b, 1, L, L)."""
        p = np.asarray(prediction, dtype=np.float64)
        y = np.asarray(truth, dtype=np.float64)
        if p.shape != y.shape:
            raise ValueError(f"prediction {p.shape} and truth {y.shape} differ in shape")
        p = p.reshape(-1, *p.shape[-2:])
        y = y.reshape(-1, *y.shape[-2:])
        if not len(p):  # an empty split's batch: nothing to add (the reshapes below need a sample)
            return
        r = np.abs(p - y)
        norms = np.sqrt((y * y).sum(axis=(1, 2)))
        errors = np.sqrt((r * r).sum(axis=(1, 2)))
        self.sum_rel_l2 += float((errors / np.where(norms > 0, norms, np.nan)).sum())
        self.samples += len(r)
        self.sum_squares += float((errors * errors).sum())
        self.sample_max.extend(r.reshape(len(r), -1).max(axis=1).tolist())
        self.count += r.size
        self.sum_r += float(r.sum())
        self.max_r = max(self.max_r, float(r.max()) if r.size else 0.0)
        index = np.minimum((r * (RESIDUAL_BINS / RESIDUAL_RANGE)).astype(np.int64), RESIDUAL_BINS - 1)
        self.r_hist += np.bincount(index.ravel(), minlength=RESIDUAL_BINS)
        positive = y > 0
        self.sum_rel += float((r[positive] / y[positive]).sum())
        self.count_rel += int(positive.sum())
        for axis in (1, 2):
            g = np.abs(np.diff(p, axis=axis) - np.diff(y, axis=axis))
            self.sum_grad += float(g.sum())
            self.count_grad += g.size
        a = (p - y) / math.sqrt(2.0)
        along = (p + y) / 2.0
        for n, sums in self.slice_sums.items():
            k = np.clip(np.floor(along * n).astype(np.int64), 0, n - 1).ravel()
            sums[0] += np.bincount(k, minlength=n)
            sums[1] += np.bincount(k, weights=a.ravel(), minlength=n)
            sums[2] += np.bincount(k, weights=(a * a).ravel(), minlength=n)
        self.pdf_pred += np.histogram(np.clip(p, 0, 1), bins=PDF_BINS, range=(0, 1))[0]
        self.pdf_true += np.histogram(np.clip(y, 0, 1), bins=PDF_BINS, range=(0, 1))[0]
        self.joint += np.histogram2d(np.clip(y, *JOINT_RANGE).ravel(), np.clip(p, *JOINT_RANGE).ravel(),
                                     bins=JOINT_BINS, range=[JOINT_RANGE, JOINT_RANGE])[0].astype(np.int64)

    def percentile(self, q: float) -> float:
        """The q-th percentile of the residuals, numpy's definition (rank q (n - 1)), to within
        one histogram bin: values are taken as evenly spread inside their bin."""
        if self.count == 0:
            return math.nan
        rank = q / 100.0 * (self.count - 1)  # 0-based, fractional
        cumulative = np.cumsum(self.r_hist)
        k = int(np.searchsorted(cumulative, rank, side="right"))  # bin holding that rank
        below = cumulative[k - 1] if k > 0 else 0
        width = RESIDUAL_RANGE / RESIDUAL_BINS
        return min((k + (rank - below + 0.5) / self.r_hist[k]) * width, self.max_r)

    def slice_table(self, n: int) -> "list[dict]":
        """Per-slice count, mean and standard deviation of ``a`` for ``n`` slices."""
        count, total, squares = self.slice_sums[n]
        rows = []
        for i in range(n):
            mean = total[i] / count[i] if count[i] else math.nan
            var = squares[i] / count[i] - mean * mean if count[i] else math.nan
            rows.append({"slice": i + 1, "low": i / n, "high": (i + 1) / n, "count": int(count[i]),
                         "mean": mean, "std": math.sqrt(max(var, 0.0)) if count[i] else math.nan})
        return rows

    def result(self) -> dict:
        """Scalars, slices and densities as plain Python values (JSON-ready)."""
        edges = np.linspace(0, 1, PDF_BINS + 1)
        density = lambda h: (h / max(h.sum(), 1) * PDF_BINS).tolist()  # noqa: E731
        return {
            "n_pixels": self.count,
            "mean_res": self.sum_r / self.count if self.count else math.nan,
            "p99_res": self.percentile(99.0),
            "max_res": self.max_r,
            "mean_rel_res": self.sum_rel / self.count_rel if self.count_rel else math.nan,
            "grad_res": self.sum_grad / self.count_grad if self.count_grad else math.nan,
            "rel_l2": self.sum_rel_l2 / self.samples if self.samples else math.nan,
            "rmse": math.sqrt(self.sum_squares / self.count) if self.count else math.nan,
            "median_max_res": float(np.median(self.sample_max)) if self.sample_max else math.nan,
            "slices": {str(n): self.slice_table(n) for n in self.slices},
            "pdf": {"edges": edges.tolist(), "prediction": density(self.pdf_pred), "truth": density(self.pdf_true)},
        }


FIELD_BANDS = (("y>=0.2", 0.2, math.inf), ("0.1<=y<0.2", 0.1, 0.2), ("0.05<=y<0.1", 0.05, 0.1),
               ("y<0.05", -math.inf, 0.05))


class RegionErrors:
    """Mean absolute error per number of sources and per region, as the 2024 papers report it:
    inside the sources (pixels where the input is non-zero) and, outside them, in the bands of
    the true field y >= 0.2, 0.1-0.2, 0.05-0.1 and below 0.05.  Streaming, like FieldMetrics."""

    REGIONS = ("inside sources", *(name for name, _, _ in FIELD_BANDS), "all")

    def __init__(self) -> None:
        self.sums: dict[int, np.ndarray] = {}  # count -> (2, regions): residual sums, pixel counts

    def update(self, prediction, truth, inputs, counts) -> None:
        """Add a batch: (b, L, L) or (b, 1, L, L) arrays and the (b,) source counts."""
        shape = np.shape(truth)[-2:]
        p, y, x = (np.asarray(a, dtype=np.float64).reshape(-1, *shape) for a in (prediction, truth, inputs))
        r = np.abs(p - y)
        inside = x > 0
        masks = [inside] + [~inside & (y >= low) & (y < high) for _, low, high in FIELD_BANDS] + [np.ones_like(inside)]
        for count in np.unique(counts):
            rows = np.asarray(counts) == count
            sums = self.sums.setdefault(int(count), np.zeros((2, len(masks))))
            for k, mask in enumerate(masks):
                selected = mask[rows]
                sums[0, k] += r[rows][selected].sum()
                sums[1, k] += selected.sum()

    def table(self) -> list[dict]:
        """One row per source count: the mean absolute error in each region (NaN where empty)."""
        rows = []
        for count in sorted(self.sums):
            total, pixels = self.sums[count]
            rows.append({"n_sources": count, **{name: (t / c if c else math.nan)
                                                for name, t, c in zip(self.REGIONS, total, pixels)}})
        return rows


def n_min(M: float, E: float, delta: float, epsilon: float) -> float:
    """Eq. 4: uses of the surrogate after which it beats the direct solver in total time.

    Args:
        M: training samples (each costs ``delta`` to generate).
        E: training time, seconds.
        delta: direct solver, seconds per sample.
        epsilon: surrogate, seconds per sample.

    Returns ``(M + E / delta) / (1 - epsilon / delta)``, or infinity when the surrogate is not
    faster than the solver (``epsilon >= delta``).
    """
    if epsilon >= delta:
        return math.inf
    return (M + E / delta) / (1.0 - epsilon / delta)
