"""Splitting a data set: seeded train/test/validation indices per source count, and nested
training subsets (the 2024 study's fractions)."""

from __future__ import annotations

import numpy as np


def split_indices(n: int, fractions, seed: int, source_count=None) -> dict[str, np.ndarray]:
    """A seeded random split of ``range(n)`` into train, test and validation index arrays.

    With ``source_count`` ((n,) counts), each count is split on its own, so that every split
    holds the same share of every count (the 2024 code's 16,000 / 4,000 per count); one count
    (the 2021 data) gives the plain split of ``range(n)``.
    """
    rng = np.random.default_rng(seed)
    counts = np.zeros(n, dtype=np.int64) if source_count is None else np.asarray(source_count)[:n]
    parts: dict[str, list[np.ndarray]] = {"train": [], "test": [], "val": []}
    for count in np.unique(counts):
        group = np.flatnonzero(counts == count)
        order = group[rng.permutation(len(group))]
        n_train = int(round(fractions[0] * len(group)))
        n_test = int(round(fractions[1] * len(group)))
        parts["train"].append(order[:n_train])
        parts["test"].append(order[n_train : n_train + n_test])
        parts["val"].append(order[n_train + n_test :])
    return {name: np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for name, p in parts.items()}


def smallest_group(fractions) -> int:
    """The fewest samples a source count needs for :func:`split_indices`, which rounds each
    count's shares, to give every split of positive fraction at least one of them."""
    for size in range(1, 1_000_000):
        n_train, n_test = int(round(fractions[0] * size)), int(round(fractions[1] * size))
        if all(part >= 1 for part, fraction in zip((n_train, n_test, size - n_train - n_test), fractions) if fraction > 0):
            return size
    raise ValueError(f"no group size splits {fractions} into non-empty parts")


def training_subset(train: np.ndarray, source_count: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The first ``fraction`` of the training indices of every source count, in a seeded order.

    Nested: a smaller fraction's subset is part of every larger one's, so a study's points differ
    only by the samples added.  At least one sample of each count is kept.
    """
    if fraction >= 1:
        return train
    rng = np.random.default_rng([seed, 1])
    counts = np.asarray(source_count)[train]
    chosen = []
    for count in np.unique(counts):
        group = train[counts == count]
        keep = max(1, int(round(fraction * len(group))))
        chosen.append(group[rng.permutation(len(group))[:keep]])
    return np.sort(np.concatenate(chosen))
