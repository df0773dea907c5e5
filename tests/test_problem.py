"""Source sampling and images, against hand counts and an independent construction."""

import numpy as np
import pytest

from pydiff.errors import ConfigError
from pydiff.problem import Problem, SourceDraw, sample_sources, source_images


def disks_by_broadcasting(problem, draw):
    """The genData.jl recipe written with whole-lattice masks (independent of the stencil code)."""
    x = np.arange(1, problem.lattice + 1)
    out = []
    for centers, mult in zip(draw.centers, draw.multipliers):
        img = np.zeros((problem.lattice, problem.lattice))
        for (xs, ys), u in zip(centers, mult):
            img = img * u + ((x[:, None] - xs) ** 2 + (x[None, :] - ys) ** 2 <= problem.radius**2)
        out.append(img / img.max())
    return np.array(out)


def test_centres_are_uniform_integers_in_range():
    problem = Problem()
    draw = sample_sources(problem, 4000, seed=0)
    assert draw.centers.dtype == np.int16 and draw.centers.shape == (4000, 2, 2)
    assert draw.centers.min() == 5 and draw.centers.max() == 95
    # 91 equally likely values: each of them appears, none grossly over-represented.
    counts = np.bincount(draw.centers.ravel(), minlength=96)[5:]
    assert counts.min() > 0 and counts.max() < 3 * counts.mean()


def test_disk_has_81_cells_and_values_follow_the_original_recipe():
    problem = Problem()
    draw = SourceDraw(np.array([[[20, 20], [70, 60]]], dtype=np.int16), np.array([[0.3, 0.7]]))
    img = source_images(problem, draw)[0]
    assert img.dtype == np.float32
    first = img[19 - 5 : 19 + 6, 19 - 5 : 19 + 6]
    second = img[69 - 5 : 69 + 6, 59 - 5 : 59 + 6]
    # img = (0 * 0.3 + disk1) * 0.7 + disk2: the earlier disk has 0.7, the last one 1.
    assert np.count_nonzero(img) == 2 * 81
    np.testing.assert_allclose(first[first > 0], 0.7, rtol=1e-7)
    np.testing.assert_allclose(second[second > 0], 1.0)
    np.testing.assert_allclose(draw.values, [[0.7, 1.0]])


def test_disk_at_the_border_is_clipped():
    problem = Problem()
    draw = SourceDraw(np.array([[[5, 5], [95, 50]]], dtype=np.int16), np.array([[0.5, 0.5]]))
    img = source_images(problem, draw)[0]
    # Radius 5 from x = 5 reaches x = 0, one cell outside: two cells of each such disk are lost.
    assert np.count_nonzero(img[:20, :20]) == 79
    assert np.count_nonzero(img[80:, 40:60]) == 81


def test_overlapping_disks_add_then_normalise():
    problem = Problem()
    draw = SourceDraw(np.array([[[50, 50], [52, 50]]], dtype=np.int16), np.array([[0.9, 0.5]]))
    img = source_images(problem, draw)[0]
    assert img.max() == 1.0
    np.testing.assert_allclose(img[49, 49], 1.0)  # in both disks: (0.5 + 1) / 1.5
    np.testing.assert_allclose(img[45, 49], 0.5 / 1.5, rtol=1e-6)  # first disk only


def test_images_match_the_broadcast_construction():
    problem = Problem()
    draw = sample_sources(problem, 50, seed=11)
    np.testing.assert_allclose(source_images(problem, draw), disks_by_broadcasting(problem, draw), rtol=1e-7)


def test_same_seed_same_draw_different_seed_different_draw():
    problem = Problem()
    a, b, c = (sample_sources(problem, 20, s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.centers, b.centers)
    np.testing.assert_array_equal(a.multipliers, b.multipliers)
    assert not np.array_equal(a.centers, c.centers)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"radius": 50}, "radius must be smaller than lattice/2"),
        ({"n_sources": 0}, "n_sources"),
        ({"D": -1.0}, "D must be a positive"),
        ({"gamma": -0.1}, "gamma must be a non-negative"),
        ({"t_max": 0.0}, "t_max"),
        ({"source_model": "sink"}, "source_model"),
        ({"lattice": 2}, "lattice"),
    ],
)
def test_impossible_parameters_are_rejected(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Problem(**kwargs)


def test_problem_round_trips_through_attributes():
    problem = Problem(lattice=40, radius=4, gamma=0.01, source_model="clamped")
    assert Problem.from_attrs(problem.to_attrs()) == problem
