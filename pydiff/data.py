"""The arrays a run trains and is evaluated on: its data file's first n samples and the seeded
train/test/validation split."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .config import TrainConfig
from .dataset import load
from .errors import DataFileError
from .registry import LATTICE


def split_indices(n: int, fractions, seed: int) -> dict[str, np.ndarray]:
    """A seeded random split of ``range(n)`` into train, test and validation index arrays."""
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_test = int(round(fractions[1] * n))
    return {"train": np.sort(order[:n_train]), "test": np.sort(order[n_train : n_train + n_test]),
            "val": np.sort(order[n_train + n_test :])}


class RunArrays(NamedTuple):
    """A run's data: inputs and fields as numpy (n, 1, L, L) float32, the split, and the (n,)
    number of sources of each sample."""

    inputs: np.ndarray
    fields: np.ndarray
    split: dict
    source_count: np.ndarray


def load_arrays(config: TrainConfig) -> RunArrays:
    """The first ``n_samples`` of the run's data file and its seeded split, read once."""
    data = load(config.data)
    if config.network == "surrogate" and data.problem.lattice != LATTICE:
        raise DataFileError(
            f"{config.data}: lattice {data.problem.lattice}, but the networks of Table 1 need {LATTICE}x{LATTICE} images"
        )
    n = len(data) if config.n_samples is None else min(config.n_samples, len(data))
    if n < 3:
        raise DataFileError(f"{config.data}: {n} samples are too few to split")
    split = split_indices(n, config.split, config.seed)
    return RunArrays(data.inputs[:n, None], data.fields[:n, None], split, data.source_count[:n])
