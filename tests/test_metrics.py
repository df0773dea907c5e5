"""Metrics against values computed by hand on small arrays."""

import math

import numpy as np
import pytest

from pydiff.evaluation.metrics import FieldMetrics, n_min


def metrics_of(pred, true, batches=1):
    m = FieldMetrics(slices=(10, 20))
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    for p, t in zip(np.array_split(pred, batches), np.array_split(true, batches)):
        m.update(p, t)
    return m.result(), m


def test_scalars_by_hand():
    true = np.array([[[0.0, 0.5], [1.0, 0.25]]])
    pred = np.array([[[0.1, 0.3], [1.0, 0.75]]])
    result, _ = metrics_of(pred, true)
    # residuals 0.1, 0.2, 0, 0.5
    assert result["mean_res"] == pytest.approx(0.8 / 4)
    assert result["max_res"] == pytest.approx(0.5)
    # relative, over y > 0 only: 0.2/0.5, 0/1, 0.5/0.25
    assert result["mean_rel_res"] == pytest.approx((0.4 + 0.0 + 2.0) / 3)
    # gradients: along x (rows) d_pred = [0.9, 0.45], d_true = [1.0, -0.25]; along y [0.2, -0.25] vs [0.5, -0.75]
    assert result["grad_res"] == pytest.approx((0.1 + 0.7 + 0.3 + 0.5) / 4)
    # relative L2: |(0.1, -0.2, 0, 0.5)| / |(0, 0.5, 1, 0.25)| = sqrt(0.30) / sqrt(1.3125); RMSE sqrt(0.30 / 4)
    assert result["rel_l2"] == pytest.approx(math.sqrt(0.30 / 1.3125))
    assert result["rmse"] == pytest.approx(math.sqrt(0.30 / 4))


def test_relative_l2_is_the_mean_over_samples_whatever_the_batches():
    true = np.stack([np.full((3, 3), 1.0), np.full((3, 3), 2.0), np.full((3, 3), 4.0)])
    pred = true + np.stack([np.full((3, 3), 0.1), np.full((3, 3), 0.1), np.full((3, 3), 0.0)])
    for batches in (1, 3):  # per sample 0.1, 0.05 and 0: a mean over samples, not a pooled norm
        assert metrics_of(pred, true, batches)[0]["rel_l2"] == pytest.approx((0.1 + 0.05 + 0.0) / 3)
        # each sample's max residual: 0.1, 0.1, 0; their median 0.1
        assert metrics_of(pred, true, batches)[0]["median_max_res"] == pytest.approx(0.1)


def test_percentile_matches_numpy_and_is_batch_independent():
    rng = np.random.default_rng(0)
    true = rng.random((40, 8, 8))
    pred = true + rng.normal(0, 0.05, true.shape)
    r = np.abs(pred - true)
    one, _ = metrics_of(pred, true, batches=1)
    many, _ = metrics_of(pred, true, batches=7)
    assert one["p99_res"] == pytest.approx(np.percentile(r, 99), abs=5e-6)
    assert many["p99_res"] == one["p99_res"] and many["mean_res"] == pytest.approx(one["mean_res"])
    assert one["mean_res"] == pytest.approx(r.mean())


def test_slice_binning_and_edges():
    # Points (y, y_hat): field value along the diagonal (y + y_hat)/2 picks the slice.
    true = np.array([[[0.0, 0.1, 0.3, 0.95, 1.0, 0.2]]])
    pred = np.array([[[0.0, 0.1, 0.3, 1.05, 1.0, 0.0]]])
    # along: 0, 0.1, 0.3, 1.0, 1.0, 0.1  -> slices (1-based, n = 10): 1, 2, 4, 10, 10, 2
    result, _ = metrics_of(pred, true)
    rows = result["slices"]["10"]
    counts = [row["count"] for row in rows]
    assert counts == [1, 2, 0, 1, 0, 0, 0, 0, 0, 2]
    # slice 2 holds a = 0 and a = -0.2/sqrt(2): mean -0.1/sqrt(2), std 0.1/sqrt(2)
    assert rows[1]["mean"] == pytest.approx(-0.1 / math.sqrt(2))
    assert rows[1]["std"] == pytest.approx(0.1 / math.sqrt(2))
    # slice 10 holds a = 0.1/sqrt(2) and 0
    assert rows[9]["mean"] == pytest.approx(0.05 / math.sqrt(2))
    assert math.isnan(rows[2]["mean"])
    assert (rows[3]["low"], rows[3]["high"]) == (0.3, 0.4)
    assert sum(row["count"] for row in result["slices"]["20"]) == 6
    assert [row["count"] for row in result["slices"]["20"]][6] == 1  # 0.3 -> [0.30, 0.35)


def test_negative_and_overshooting_predictions_land_in_the_end_slices():
    result, _ = metrics_of(np.array([[[-0.4, 1.6]]]), np.array([[[0.0, 1.0]]]))
    counts = [row["count"] for row in result["slices"]["10"]]
    assert counts[0] == 1 and counts[-1] == 1


def test_pdfs_are_densities():
    rng = np.random.default_rng(1)
    true = rng.random((5, 10, 10))
    result, m = metrics_of(true * 0.5, true)
    width = 1 / len(result["pdf"]["truth"])
    assert sum(result["pdf"]["truth"]) * width == pytest.approx(1.0)
    assert sum(result["pdf"]["prediction"][50:]) == 0  # predictions are all below 0.5
    assert m.joint.sum() == true.size


def test_n_min_reproduces_the_paper():
    # delta = 1.16 s, E = 12 h, M = 20,000 (16,000 trained on), delta/epsilon = 1000 -> ~57,300
    value = n_min(M=20000, E=12 * 3600, delta=1.16, epsilon=1.16e-3)
    assert 57000 < value < 57400
    assert n_min(M=10, E=1, delta=1.0, epsilon=2.0) == math.inf


def test_region_errors_by_hand():
    from pydiff.evaluation.metrics import RegionErrors

    truth = np.array([[[1.0, 0.3, 0.15], [0.07, 0.01, 0.0]], [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]])
    inputs = np.array([[[1.0, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]])
    prediction = truth + np.array([[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], [[1.0] * 3, [1.0] * 3]])
    regions = RegionErrors()
    regions.update(prediction[:1], truth[:1], inputs[:1], [3])
    regions.update(prediction[1:], truth[1:], inputs[1:], [5])
    three, five = regions.table()
    assert three["n_sources"] == 3 and five["n_sources"] == 5
    assert three["inside sources"] == pytest.approx(0.1)
    assert three["y>=0.2"] == pytest.approx(0.2)  # the source pixel counts inside, not in a band
    assert three["0.1<=y<0.2"] == pytest.approx(0.3) and three["0.05<=y<0.1"] == pytest.approx(0.4)
    assert three["y<0.05"] == pytest.approx((0.5 + 0.6) / 2) and three["all"] == pytest.approx(2.1 / 6)
    assert five["y>=0.2"] == pytest.approx(1.0) and np.isnan(five["inside sources"])
