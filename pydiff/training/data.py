"""A run's data: its file's first n samples, the seeded split per source count with the training
fraction a study asks for, read into memory or left in the file when it does not fit."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..datasets.batches import Channels, Rows
from ..datasets.hdf5 import load
from ..datasets.split import smallest_group, split_indices, training_subset
from ..errors import ConfigError, DataFileError
from ..problem import Problem
from ..problem.diffusivity import diffusivity_channel
from ..problem.walls import constant_walls, wall_planes
from ..registry import LATTICE, PRESETS
from .config import TrainConfig, channel_layout, option_text

# The samples an epoch is sized from when a configuration names neither a data file nor a size
# (``pydiff bench train`` of n_samples None): the paper's data set.
SAMPLES_WITHOUT_A_FILE: int = PRESETS["paper"]["n_samples"]


class RunArrays(NamedTuple):
    """A run's data: inputs (:class:`Rows`, or :class:`Channels` of the image and the diffusivity
    channel) and fields (:class:`Rows`), read as (k, C, L, L) float32 (in memory, or from the
    file on indexing when they do not fit), the split, the (n,) number of sources of each
    sample, and the problem the file poses."""

    inputs: Rows | Channels
    fields: Rows
    split: dict
    source_count: np.ndarray
    problem: Problem

    @property
    def in_memory(self) -> bool:
        return self.inputs.in_memory


def run_split(config: TrainConfig, source_count: np.ndarray) -> dict[str, np.ndarray]:
    """The split of a run's first ``n_samples`` samples (the file's (n,) ``source_count``), with
    its training fraction taken.  A split asked for (a positive fraction) that the rounding per
    source count leaves empty is refused: a run would otherwise select or report on nothing."""
    n = len(source_count) if config.n_samples is None else min(config.n_samples, len(source_count))
    split_seed = config.seed if config.split_seed is None else config.split_seed
    counts = np.asarray(source_count[:n])
    split = split_indices(n, config.split, split_seed, counts)
    empty = [name for name, fraction in zip(("train", "test", "val"), config.split) if fraction > 0 and not len(split[name])]
    if empty:
        groups = np.unique(counts, return_counts=True)[1]
        need = smallest_group(config.split)
        each = (f"each of the {len(groups)} source counts is split on its own, and needs" if len(groups) > 1
                else "it needs")
        raise ConfigError(f"the split {option_text(config.split)} of {n} samples leaves the {' and '.join(empty)} split"
                          f"{'s' * (len(empty) > 1)} empty: {each} at least {need} samples ({need * len(groups)} in all); "
                          f"here {groups.min()}: give more samples or other fractions (--split)")
    split["train"] = training_subset(split["train"], counts, config.train_fraction, split_seed)
    return split


def epoch_sizes(config: TrainConfig) -> tuple[int, int]:
    """Samples per epoch of ``config``: trained on, and evaluated to pick the best epoch.

    Exact from the run's data file (its split per source count, the training fraction, the
    selection split, the training set itself when that split is empty); from the preset's
    fractions of ``n_samples`` (None: :data:`SAMPLES_WITHOUT_A_FILE`) when the config names no
    file yet (``pydiff bench train``)."""
    if config.data:
        with load(config.data, lazy=True) as data:
            split = run_split(config, np.asarray(data.source_count[: len(data)]))
        sizes = {name: len(index) for name, index in split.items()}
    else:
        n = SAMPLES_WITHOUT_A_FILE if config.n_samples is None else config.n_samples
        n_train, n_test = round(config.split[0] * n), round(config.split[1] * n)
        sizes = {"train": max(1, round(config.train_fraction * n_train)), "test": n_test, "val": n - n_train - n_test}
    return sizes["train"], sizes[config.select_on] or sizes["train"]


def load_arrays(config: TrainConfig, memory_budget: float = math.inf) -> RunArrays:
    """The first ``n_samples`` of the run's data file and its seeded split, read once.

    The arrays are read into memory when their size is at most ``memory_budget`` bytes; larger
    ones (the full 2024 data: 400,000 fields of 1 MB) stay in the file and are read batch by
    batch.
    """
    data = load(config.data, lazy=True)
    try:
        if config.network == "surrogate" and data.problem.lattice != LATTICE:
            raise DataFileError(
                f"{config.data}: lattice {data.problem.lattice}, but the networks of Table 1 need {LATTICE}x{LATTICE} images"
            )
        n = len(data) if config.n_samples is None else min(config.n_samples, len(data))
        if n < 3:
            raise DataFileError(f"{config.data}: {n} samples are too few to split")
        reads_map, reads_walls = channel_layout(config.in_channels)
        if reads_map and data.diffusivity is None:
            raise DataFileError(f"{config.data}: its D is constant; this run reads diffusivity maps "
                                f"(in_channels {config.in_channels})")
        counts = np.asarray(data.source_count[:n])
        split = run_split(config, counts)
        lattice = data.problem.lattice
        walls = (np.asarray(data.walls[:n]) if data.walls is not None else constant_walls(data.problem, n)) \
            if reads_walls else None
        arrays = 2 + reads_map
        if arrays * n * lattice * lattice * 4 <= memory_budget:
            inputs, fields = data.inputs[:n], data.fields[:n]
            maps = data.diffusivity[:n] if reads_map and data.diffusivity is not None else None  # reads_map: not None
            data.close()
        else:  # h5py keeps the file open while its data sets are referenced
            inputs, fields, maps = data.inputs, data.fields, data.diffusivity
    except BaseException:
        data.close()
        raise
    if config.inverse:  # the network maps the field back to its sources
        inputs, fields = fields, inputs
    problem = data.problem
    rows = [Rows(inputs)]
    if reads_map:  # the image and the scaled log of the map, side by side
        rows.append(Rows(maps, lambda D: diffusivity_channel(D, problem)))
    if reads_walls:  # and each sample's walls, two constant planes
        rows.append(Rows(walls, lambda w: wall_planes(w[:, 0], lattice)))
    return RunArrays(rows[0] if len(rows) == 1 else Channels(*rows), Rows(fields), split, counts, problem)


def network_inputs(data, in_channels: int, index=slice(None)) -> np.ndarray:
    """(k, C, L, L) float32 inputs of a :class:`~pydiff.datasets.hdf5.GroundTruth`'s samples
    ``index``, as a network of ``in_channels`` reads them (:func:`~pydiff.training.config.channel_layout`:
    the image; the diffusivity channel; the walls, the file's own where it has one condition)."""
    images = np.asarray(data.inputs[index], dtype=np.float32)[:, None]
    reads_map, reads_walls = channel_layout(in_channels)
    channels = [images]
    if reads_map:
        if data.diffusivity is None:
            raise DataFileError(f"{data.path}: its D is constant; this network reads diffusivity maps")
        channels.append(diffusivity_channel(np.asarray(data.diffusivity[index]), data.problem)[:, None])
    if reads_walls:
        walls = np.asarray(data.walls[index]) if data.walls is not None else constant_walls(data.problem, len(images))
        channels.append(wall_planes(walls, data.problem.lattice))
    return channels[0] if len(channels) == 1 else np.concatenate(channels, axis=1)


def sample_maps(config: TrainConfig, indices) -> np.ndarray | None:
    """The (k, L, L) diffusivity maps of a run's samples ``indices`` as stored (not the network's
    scaled channel: the equation needs D itself); None where D is constant."""
    with load(config.data, lazy=True) as data:
        if data.diffusivity is None:
            return None
        return np.stack([data.diffusivity[i] for i in indices]) if len(indices) else None


def sample_walls(config: TrainConfig, indices) -> np.ndarray | None:
    """The (k,) walls of a run's samples ``indices`` where its data file mixes them; None otherwise."""
    with load(config.data, lazy=True) as data:
        if data.walls is None:
            return None
        return np.asarray(data.walls[: len(data)])[np.asarray(indices, dtype=np.int64)]
