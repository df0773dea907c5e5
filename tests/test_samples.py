"""Training data: the split per source count, nested training fractions, and online samples
that equal the numpy solver's, independent of how they are batched."""

import numpy as np
import torch

from pydiff.datasets.batches import OnlineSamples, TensorSamples
from pydiff.datasets.hdf5 import load
from pydiff.datasets.split import split_indices, training_subset
from pydiff.datasets.writer import generate
from pydiff.problem import Problem, sample_sources, source_images
from pydiff.solvers import solve

MANY = Problem(lattice=32, radius=3, n_sources=5, min_sources=1, setup="paper2024")


def test_one_source_count_splits_as_before():
    # The 2021 data (one count) keep the plain seeded permutation of range(n).
    order = np.random.default_rng(7).permutation(50)
    split = split_indices(50, (0.6, 0.2, 0.2), 7, np.full(50, 2))
    assert np.array_equal(split["train"], np.sort(order[:30]))
    assert np.array_equal(split["test"], np.sort(order[30:40]))
    assert np.array_equal(split["val"], np.sort(order[40:]))
    assert all(np.array_equal(split[k], split_indices(50, (0.6, 0.2, 0.2), 7)[k]) for k in split)


def test_each_source_count_is_split_alike():
    counts = 1 + np.arange(200) % 5  # 40 samples of each count
    split = split_indices(200, (0.8, 0.2, 0.0), 3, counts)
    for name, share in (("train", 32), ("test", 8)):
        assert np.bincount(counts[split[name]], minlength=6)[1:].tolist() == [share] * 5
    assert len(split["val"]) == 0
    assert len(np.unique(np.concatenate([split["train"], split["test"]]))) == 200


def test_training_fractions_are_nested_balanced_and_seeded():
    counts = 1 + np.arange(400) % 4
    train = split_indices(400, (0.5, 0.5, 0.0), 0, counts)["train"]  # 50 per count
    small, large = (training_subset(train, counts, f, seed=1) for f in (0.1, 0.4))
    assert np.bincount(counts[small], minlength=5)[1:].tolist() == [5] * 4
    assert np.bincount(counts[large], minlength=5)[1:].tolist() == [20] * 4
    assert set(small) <= set(large) <= set(train)
    assert np.array_equal(small, training_subset(train, counts, 0.1, seed=1))
    assert not np.array_equal(small, training_subset(train, counts, 0.1, seed=2))
    assert np.array_equal(training_subset(train, counts, 1.0, seed=1), train)
    tiny = training_subset(train, counts, 0.001, seed=1)  # never a count without a sample
    assert np.bincount(counts[tiny], minlength=5)[1:].tolist() == [1] * 4


def test_online_samples_are_exact_fields_of_their_sources():
    online = OnlineSamples(MANY, n=12, seed=5, device=torch.device("cpu"))
    ids = np.arange(20, 32)
    x, y = online.samples(ids)
    draw = online.draw(ids)
    images = source_images(MANY, draw)
    fields, _ = solve(images, MANY, "direct")  # an independent sparse solve
    assert x.shape == y.shape == (12, 1, 32, 32) and x.dtype == y.dtype == torch.float32
    np.testing.assert_array_equal(x[:, 0].numpy(), images)
    np.testing.assert_allclose(y[:, 0].numpy(), fields, atol=1e-5)
    # sample j has min + j mod k sources
    assert draw.source_count.tolist() == [1 + j % 5 for j in ids]


def test_an_online_sample_does_not_depend_on_its_batch():
    online = OnlineSamples(MANY, n=10, seed=5, device=torch.device("cpu"))
    x_all, y_all = online.samples(np.arange(10))
    x_part, y_part = online.samples(np.array([3, 4]))
    assert torch.equal(x_all[3:5], x_part) and torch.equal(y_all[3:5], y_part)
    # epoch e, position p is stream sample e * n + p; no two epochs repeat
    (x1, _), = online.epoch_batches(1, [torch.tensor([3, 4])])
    assert torch.equal(x1, online.samples(np.array([13, 14]))[0])
    assert not torch.equal(x1, x_part)
    # other seed, other stream; and not the samples `generate` makes from the same seed
    other = OnlineSamples(MANY, n=10, seed=6, device=torch.device("cpu"))
    assert not torch.equal(other.samples(np.arange(3))[0], x_all[:3])
    file_images = source_images(MANY, sample_sources(MANY, 3, 5))
    assert not np.array_equal(file_images, x_all[:3, 0].numpy())


def test_a_rank_with_an_empty_share_gets_an_empty_batch():
    online = OnlineSamples(MANY, n=4, seed=0, device=torch.device("cpu"))
    batches = list(online.epoch_batches(0, [torch.tensor([0, 1]), torch.tensor([], dtype=torch.long)]))
    assert batches[0][0].shape == (2, 1, 32, 32) and batches[1][0].shape == (0, 1, 32, 32)


def test_tensor_samples_index_the_training_set(tmp_path):
    data = load(generate(tmp_path / "d.h5", 6, MANY, progress=False))
    samples = TensorSamples(torch.as_tensor(data.inputs[:, None]), torch.as_tensor(data.fields[:, None]))
    (x, y), = samples.epoch_batches(0, [torch.tensor([4, 1])])
    assert torch.equal(y[:, 0], torch.as_tensor(data.fields[[4, 1]])) and samples.pixels == 32 * 32
