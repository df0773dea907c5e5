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


def test_2024_recipe_cycles_the_source_counts_and_adds_amplitudes():
    problem = Problem(lattice=64, n_sources=4, min_sources=1, setup="paper2024")
    draw = sample_sources(problem, 12, seed=1)
    assert draw.source_count.tolist() == [1, 2, 3, 4] * 3  # every count equally often
    present = np.arange(4)[None, :] < draw.source_count[:, None]
    assert np.all((draw.multipliers[present] >= 0.01) & (draw.multipliers[present] <= 1.0))
    assert np.all(draw.multipliers[~present] == 0) and np.all(draw.centers[~present] == 0)
    assert np.all((draw.centers[present] >= 5) & (draw.centers[present] <= 59))
    np.testing.assert_array_equal(draw.values, draw.multipliers.astype(np.float32))


def test_2024_images_add_each_disk_with_its_amplitude():
    problem = Problem(lattice=40, radius=3, n_sources=2, setup="paper2024")
    draw = SourceDraw(np.array([[[10, 10], [14, 10]]], np.int16), np.array([[0.6, 0.3]]), np.array([2]), "paper2024")
    image = source_images(problem, draw)[0]
    # By hand: cell (12, 10) lies in both disks (distance 2 from each): 0.6 + 0.3 = 0.9, the maximum.
    assert image[11, 9] == pytest.approx(1.0)
    assert image[9, 9] == pytest.approx(0.6 / 0.9)  # the first centre, in the first disk only
    assert image[16, 9] == pytest.approx(0.3 / 0.9)  # x = 17 is in the second disk only
    assert image[30, 30] == 0


def test_a_range_of_counts_needs_the_2024_recipe():
    with pytest.raises(ConfigError, match="paper2024"):
        Problem(n_sources=20, min_sources=1)
    with pytest.raises(ConfigError, match="smallest source count"):
        Problem(n_sources=3, min_sources=5, setup="paper2024")
    with pytest.raises(ConfigError, match="setup"):
        Problem(setup="paper2023")


def test_a_solve_lattice_equal_to_the_lattice_is_the_same_problem_as_none():
    from pydiff.problem import Problem

    assert Problem(lattice=32, solve_lattice=32) == Problem(lattice=32)
    assert Problem.from_attrs({**Problem(lattice=32).to_attrs(), "solve_lattice": 32}) == Problem(lattice=32)


@pytest.mark.parametrize("sources", ["disks", "ellipses", "mixed"])
def test_sources_of_radius_0_are_one_cell_each_always_on_the_lattice(sources):
    # Radius 0 drew centres in [0, L]: cell 0 is off the lattice, and a sample whose sources all
    # landed there (or an ellipse of radius 0, which covered no cell) had an empty, NaN image.
    problem = Problem(lattice=8, radius=0, n_sources=2, setup="paper2024", sources=sources)
    draw = sample_sources(problem, 2000, seed=0)
    assert draw.centers.min() == 1 and draw.centers.max() == 8
    images = source_images(problem, draw)
    assert np.isfinite(images).all() and (images.max(axis=(1, 2)) == 1).all()
    assert ((images > 0).sum(axis=(1, 2)) <= 2).all()


def test_radius_1_and_up_draw_the_published_centres_still():
    draw = sample_sources(Problem(lattice=20, radius=1), 4000, seed=0)
    assert draw.centers.min() == 1 and draw.centers.max() == 19


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_sources": 3, "min_sources": 0, "setup": "paper2024"}, "the smallest source count must be in 1..3, got 0"),
        ({"correlation_length": 0.0, "diffusivity": "lognormal", "setup": "paper2024"},
         "correlation length must be positive"),
        ({"lattice": 32, "correlation_length": 33.0, "diffusivity": "lognormal", "setup": "paper2024"},
         "correlation length must be at most the lattice"),
    ],
)
def test_zero_is_not_a_way_to_leave_a_parameter_unset(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Problem(**kwargs)
    # not given: every sample has n_sources disks, and the correlation length is L / 10
    problem = Problem(lattice=40, n_sources=3)
    assert problem.min_sources == 3 and problem.correlation_length == 4.0
    assert Problem.from_attrs(problem.to_attrs()) == problem


def test_a_correlation_length_up_to_the_lattice_still_reaches_the_contrast():
    from pydiff.problem.diffusivity import lognormal_map

    D = lognormal_map(Problem(lattice=32, correlation_length=32.0, diffusivity="lognormal", setup="paper2024"),
                      np.random.default_rng(0))
    assert D.max() / D.min() == pytest.approx(10.0)
