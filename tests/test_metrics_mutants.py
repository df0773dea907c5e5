"""The accuracy measures (pydiff.evaluation.metrics) where mutation testing found them unchecked:
batches that add up, empty and edge cases, exact histogram ranks, and the densities' bins
(benchmarks/mutation.py, docs/mutation.md)."""

import math
import warnings

import numpy as np
import pytest

from pydiff.evaluation.metrics import (JOINT_BINS, JOINT_RANGE, PDF_BINS, RESIDUAL_BINS, RESIDUAL_RANGE, FieldMetrics,
                                       RegionErrors, n_min)

WIDTH = RESIDUAL_RANGE / RESIDUAL_BINS  # one bin of the residual histogram


def measured(pred, true, batches=1, slices=(10, 20)):
    m = FieldMetrics(slices=slices)
    for p, t in zip(np.array_split(np.asarray(pred), batches), np.array_split(np.asarray(true), batches)):
        m.update(p, t)
    return m


def test_every_measure_adds_up_over_batches():
    rng = np.random.default_rng(3)
    true = rng.random((9, 6, 6)) * (rng.random((9, 6, 6)) > 0.2)  # some zeros: the relative residual skips them
    pred = true + rng.normal(0, 0.1, true.shape)
    one, three = measured(pred, true), measured(pred, true, batches=3)
    a, b = one.result(), three.result()
    for key in ("n_pixels", "mean_res", "p99_res", "max_res", "mean_rel_res", "grad_res", "rel_l2", "rmse",
                "median_max_res"):
        assert b[key] == pytest.approx(a[key], rel=1e-12), key
    for n in ("10", "20"):
        for row, same in zip(a["slices"][n], b["slices"][n]):
            assert same == pytest.approx(row, nan_ok=True)
    assert a["pdf"] == b["pdf"]
    np.testing.assert_array_equal(one.joint, three.joint)
    # and each is the whole set's own value, computed here directly
    r = np.abs(pred - true)
    assert a["n_pixels"] == true.size
    assert a["mean_rel_res"] == pytest.approx((r[true > 0] / true[true > 0]).mean())
    assert a["rmse"] == pytest.approx(math.sqrt((r * r).mean()))
    assert a["median_max_res"] == pytest.approx(np.median(r.max(axis=(1, 2))))
    assert sum(row["count"] for row in a["slices"]["10"]) == true.size
    across = (pred - true) / math.sqrt(2)  # each pixel's offset across the diagonal
    assert sum(row["mean"] * row["count"] for row in a["slices"]["20"] if row["count"]) == pytest.approx(across.sum())
    assert sum((row["std"] ** 2 + row["mean"] ** 2) * row["count"] for row in a["slices"]["20"] if row["count"]) == \
        pytest.approx((across ** 2).sum())


def test_nothing_measured_is_nan_and_warns_of_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 RuntimeWarning on the way to NaN
        result = FieldMetrics().result()
        for key in ("mean_res", "p99_res", "mean_rel_res", "grad_res", "rel_l2", "rmse", "median_max_res"):
            assert math.isnan(result[key]), key
        assert result["n_pixels"] == 0 and result["max_res"] == 0.0
        # an empty slice has no mean and no spread
        row = measured(np.full((1, 2, 2), 0.5), np.full((1, 2, 2), 0.5)).slice_table(10)[0]
        assert row["count"] == 0 and math.isnan(row["mean"]) and math.isnan(row["std"])
        # and a region that holds no pixel has no mean error
        regions = RegionErrors()
        regions.update(np.zeros((1, 2, 2)), np.full((1, 2, 2), 0.5), np.zeros((1, 2, 2)), [1])
        (row,) = regions.table()
        assert math.isnan(row["inside sources"]) and row["y>=0.2"] == 0.5


def at_bins(*bins):
    """One pixel per residual, each at the centre of histogram bin ``k`` (the estimate is exact there)."""
    r = (np.asarray(bins, dtype=np.float64) + 0.5) * WIDTH
    return measured(r.reshape(1, 1, -1), np.zeros((1, 1, len(bins))))


def test_percentiles_at_bin_centres_are_numpys_exactly():
    # a rank that is a whole number falls on one residual: numpy's value, to well inside a bin
    m = at_bins(1000, 1001, 1002)
    assert m.percentile(50) == pytest.approx(1001.5 * WIDTH, abs=WIDTH / 4)  # the one in the middle
    assert m.percentile(0) == pytest.approx(1000.5 * WIDTH, abs=WIDTH / 4)
    assert m.percentile(100) == pytest.approx(1002.5 * WIDTH, abs=WIDTH / 4)
    m = at_bins(100, 200, 300, 400, 500)
    assert m.percentile(25) == pytest.approx(200.5 * WIDTH, abs=WIDTH / 4)  # rank 1 of 0..4
    m = at_bins(0, 1)  # the first two bins
    assert m.percentile(100) == pytest.approx(1.5 * WIDTH, abs=WIDTH / 4)
    # three residuals in bin 1 spread evenly over it, at 1/6, 3/6 and 5/6 of its width: rank 1 is the first
    m = at_bins(0, 1, 1, 1, 5)
    assert m.percentile(25) == pytest.approx((1 + 1 / 6) * WIDTH, abs=WIDTH / 12)
    # a single residual is its own every percentile
    m = at_bins(700)
    assert m.percentile(99) == pytest.approx(700.5 * WIDTH, abs=WIDTH / 4)


def test_percentiles_inside_one_bin_stay_inside_it_and_are_never_negative():
    # exact predictions: residuals 0, in the first bin with two others
    m = measured(np.array([[[0.0, 0.0, 0.5]]]), np.zeros((1, 1, 3)))
    assert 0.0 <= m.percentile(0) <= WIDTH / 2  # two residuals spread over bin 0: the first at a quarter
    assert m.percentile(0) == pytest.approx(WIDTH / 4, abs=WIDTH / 8)
    m = measured(np.zeros((1, 1, 1)), np.zeros((1, 1, 1)))
    assert 0.0 <= m.percentile(50) <= WIDTH


def test_residuals_beyond_the_histogram_go_to_its_top_bin():
    m = measured(np.full((1, 2, 2), 2.0), np.zeros((1, 2, 2)))  # residual 2 > RESIDUAL_RANGE
    assert m.r_hist[-1] == 4 and m.r_hist.sum() == 4
    assert m.percentile(99) == pytest.approx(RESIDUAL_RANGE, abs=WIDTH / 2)
    top = measured(np.full((1, 1, 1), RESIDUAL_RANGE - WIDTH / 2), np.zeros((1, 1, 1)))
    assert top.r_hist[-1] == 1 and top.percentile(50) == pytest.approx(RESIDUAL_RANGE - WIDTH / 2, abs=WIDTH / 4)


def test_gradients_along_each_axis_apart():
    true = np.zeros((1, 3, 3))
    ramp = 0.1 * np.arange(3.0)
    # an error growing along x (the rows): 6 differences of 0.1 along x, 6 of 0 along y
    assert measured(true + ramp[None, :, None], true).result()["grad_res"] == pytest.approx(0.6 / 12)
    assert measured(true + ramp[None, None, :], true).result()["grad_res"] == pytest.approx(0.6 / 12)
    assert measured(true + ramp[None, :, None] + 2 * ramp[None, None, :], true).result()["grad_res"] == \
        pytest.approx((0.6 + 1.2) / 12)


def test_relative_l2_of_small_fields_and_of_a_zero_one():
    true = np.full((1, 2, 2), 0.1)  # |y|_2 = 0.2 < 1
    assert measured(true * 1.5, true).result()["rel_l2"] == pytest.approx(0.5)
    # a zero truth has no relative error: the mean over samples says so (NaN), it is not infinite
    assert math.isnan(measured(np.ones((1, 2, 2)), np.zeros((1, 2, 2))).result()["rel_l2"])


def test_integer_arrays_are_measured_as_numbers_without_wrapping_around():
    true = np.array([[[0, 1, 0], [1, 0, 1]]], dtype=np.uint8)  # a 0/1 mask
    pred = np.array([[[1, 1, 0], [0, 0, 1]]], dtype=np.uint8)
    result = measured(pred, true).result()
    assert result["max_res"] == 1.0 and result["mean_res"] == pytest.approx(2 / 6)
    as_floats = measured(pred.astype(float), true.astype(float)).result()
    for key in ("grad_res", "rel_l2", "rmse", "mean_rel_res"):
        assert result[key] == pytest.approx(as_floats[key]), key
    regions = RegionErrors()
    regions.update(pred, true, np.zeros_like(true), [1])
    assert regions.table()[0]["all"] == pytest.approx(2 / 6)


def test_shapes_that_differ_are_named():
    with pytest.raises(ValueError, match=r"prediction \(1, 2, 2\) and truth \(1, 3, 3\) differ in shape"):
        FieldMetrics().update(np.zeros((1, 2, 2)), np.zeros((1, 3, 3)))


def test_the_densities_bins_by_hand():
    # one pixel at 0.25, one below 0 and one above 1 (clipped into the end bins); the truth likewise at 0.75
    pred = np.array([[[0.255, -0.3, 1.4]]])
    true = np.array([[[0.755, -0.2, 1.3]]])
    result = measured(pred, true).result()
    edges = result["pdf"]["edges"]
    assert len(edges) == PDF_BINS + 1 and edges[0] == 0.0 and edges[-1] == 1.0
    assert edges[25] == pytest.approx(0.25)
    prediction, truth = np.array(result["pdf"]["prediction"]), np.array(result["pdf"]["truth"])
    width = 1.0 / PDF_BINS
    assert prediction.sum() * width == pytest.approx(1.0) and truth.sum() * width == pytest.approx(1.0)
    assert np.flatnonzero(prediction).tolist() == [0, 25, PDF_BINS - 1]
    assert np.flatnonzero(truth).tolist() == [0, 75, PDF_BINS - 1]
    # a single pixel is a density too
    single = np.array(measured(np.full((1, 1, 1), 0.5), np.full((1, 1, 1), 0.5)).result()["pdf"]["truth"])
    assert single.sum() * width == pytest.approx(1.0)


def test_the_joint_histogram_counts_every_pixel_in_its_cell():
    pred = np.array([[[0.5, -0.5, 2.0]]])
    true = np.array([[[0.5, 0.5, -1.0]]])
    m = measured(pred, true)
    assert m.joint.sum() == 3
    cell = lambda v: min(int((np.clip(v, *JOINT_RANGE) - JOINT_RANGE[0]) / (JOINT_RANGE[1] - JOINT_RANGE[0])  # noqa: E731
                             * JOINT_BINS), JOINT_BINS - 1)
    for y, p in ((0.5, 0.5), (0.5, -0.5), (-1.0, 2.0)):
        assert m.joint[cell(y), cell(p)] >= 1, (y, p)
    assert m.joint[0, JOINT_BINS - 1] == 1  # truth below the range, prediction above it: a corner


def test_slices_are_numbered_from_one():
    rows = measured(np.full((1, 1, 1), 0.55), np.full((1, 1, 1), 0.55)).result()["slices"]["10"]
    assert [row["slice"] for row in rows] == list(range(1, 11)) and rows[5]["count"] == 1


def test_region_errors_of_a_batch_of_mixed_counts_and_band_edges():
    # two samples of different source counts in one update; fields exactly at the band edges
    truth = np.array([[[0.2, 0.1, 0.05, 0.0]], [[0.2, 0.1, 0.05, 0.0]]])
    error = np.array([[[0.1, 0.2, 0.3, 0.4]], [[1.0, 2.0, 3.0, 4.0]]])
    inputs = np.zeros_like(truth)
    regions = RegionErrors()
    regions.update(truth + error, truth, inputs, [2, 7])
    regions.update(truth + error, truth, inputs, [2, 7])  # the same again: the means stay, the counts add
    two, seven = regions.table()
    assert (two["n_sources"], seven["n_sources"]) == (2, 7)
    assert two["y>=0.2"] == pytest.approx(0.1) and two["0.1<=y<0.2"] == pytest.approx(0.2)
    assert two["0.05<=y<0.1"] == pytest.approx(0.3) and two["y<0.05"] == pytest.approx(0.4)
    assert seven["y>=0.2"] == pytest.approx(1.0) and seven["y<0.05"] == pytest.approx(4.0)
    assert regions.sums[2][1].tolist() == [0, 2, 2, 2, 2, 8]  # pixels: none inside sources, 2 per band, 8 in all
    # (b, 1, L, L) arrays are the same samples
    again = RegionErrors()
    again.update((truth + error)[:, None], truth[:, None], inputs[:, None], [2, 7])
    again.update((truth + error)[:, None], truth[:, None], inputs[:, None], [2, 7])
    np.testing.assert_array_equal(again.sums[7], regions.sums[7])


def test_n_min_by_hand():
    assert n_min(M=100, E=50.0, delta=2.0, epsilon=1.0) == pytest.approx(250.0)  # (100 + 25) / (1 - 1/2)
    assert n_min(M=0, E=10.0, delta=1.0, epsilon=0.75) == pytest.approx(40.0)
    assert n_min(M=10, E=1.0, delta=1.0, epsilon=1.0) == math.inf  # as fast as the solver: never pays off


def test_an_empty_batch_adds_nothing():
    """A batch of no samples (an empty split's) changes no metric; it raised in reshape."""
    from pydiff.evaluation.metrics import FieldMetrics

    rng = np.random.default_rng(0)
    y = rng.random((3, 8, 8))
    p = y + 0.01 * rng.standard_normal(y.shape)
    alone, with_empty = FieldMetrics(), FieldMetrics()
    alone.update(p, y)
    with_empty.update(p[:0], y[:0])
    with_empty.update(p, y)
    assert with_empty.samples == alone.samples == 3 and with_empty.count == alone.count
    assert with_empty.sample_max == alone.sample_max and with_empty.max_r == alone.max_r
