"""Data sets made in parts: ``pydiff generate --shard i/k`` writes part i of k (one job of a
Slurm array or any batch system); :func:`merge` joins complete parts into one file.

The merged file holds HDF5 *virtual* data sets that point into the parts, so merging copies no
sample and takes a moment whatever the size; every HDF5 reader (h5py, pydiff's :func:`load`)
takes it as one data set.  Keep the parts beside it: the merged file stores their names
relative to its own directory when they live there, so the directory can be moved whole.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from ..errors import ConfigError, DataFileError
from .hdf5 import _arrays, _attrs, inspect, partial_path

SHARD_ATTRS = ("shard_index", "shard_count", "first_sample", "total")
# Attributes every part of one data set shares (n, n_complete and the shard's own differ).
SHARED_IGNORED = ("n", "n_complete", "pydiff_version", *SHARD_ATTRS)


def _describe(path: Path) -> dict:
    f, attrs, _ = inspect(path)
    f.close()
    if not all(key in attrs for key in SHARD_ATTRS):
        raise DataFileError(f"{path}: not a shard (made without --shard)")
    if int(attrs["n_complete"]) != int(attrs["n"]):
        raise DataFileError(f"{path}: incomplete shard ({attrs['n_complete']} of {attrs['n']} samples); finish it with pydiff generate --shard ... --resume")
    return attrs


def merge(parts, out, overwrite: bool = False) -> Path:
    """Join complete shards of one data set into ``out`` (virtual data sets, no copy).

    The parts may come in any order; together they must cover samples 0..n-1 exactly once,
    and share every parameter (problem, backend, seed, total).

    Raises:
        DataFileError: a part that is not a complete shard, or parts that do not fit together.
        ConfigError: ``out`` exists without ``overwrite``.
    """
    out = Path(out)
    paths = [Path(p) for p in parts]
    if not paths:
        raise ConfigError("give the shard files to merge")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise ConfigError(f"output directory {out.parent} does not exist; create it first")
    if any(out.resolve() == p.resolve() for p in paths):
        raise ConfigError(f"{out} is one of the parts to merge; write the merged file under another name")
    described = sorted(((p, _describe(p)) for p in paths), key=lambda item: int(item[1]["first_sample"]))
    first = described[0][1]
    shared = {k: v for k, v in first.items() if k not in SHARED_IGNORED}
    total = int(first["total"])
    expected_start = 0
    for path, attrs in described:
        other = {k: v for k, v in attrs.items() if k not in SHARED_IGNORED}
        if other != shared or int(attrs["total"]) != total:
            differing = sorted(k for k in set(other) | set(shared) if other.get(k) != shared.get(k))
            raise DataFileError(f"{path} belongs to another data set ({', '.join(differing) or 'total'} differ)")
        start = int(attrs["first_sample"])
        if start != expected_start:
            what = "overlaps the part before it" if start < expected_start else f"leaves samples {expected_start}..{start - 1} missing"
            raise DataFileError(f"{path} {what}")
        expected_start = start + int(attrs["n"])
    if expected_start != total:
        raise DataFileError(f"the parts cover samples 0..{expected_start - 1} of {total}; samples {expected_start}.. are missing")

    tmp = partial_path(out)
    with h5py.File(described[0][0], "r") as f0, h5py.File(tmp, "w") as merged:
        for name in _arrays(_attrs(f0)):
            layout = h5py.VirtualLayout(shape=(total, *f0[name].shape[1:]), dtype=f0[name].dtype)
            for path, attrs in described:
                start, rows = int(attrs["first_sample"]), int(attrs["n"])
                source = _relative(path, out)
                layout[start : start + rows] = h5py.VirtualSource(source, name, shape=(rows, *f0[name].shape[1:]))
            merged.create_virtual_dataset(name, layout)
        merged.attrs.update({k: v for k, v in _attrs(f0).items() if k not in SHARD_ATTRS})
        merged.attrs["n"] = total
        merged.attrs["n_complete"] = total
        merged.attrs["merged_from"] = len(described)
    os.replace(tmp, out)
    return out


def _relative(path: Path, out: Path) -> str:
    """A part's name as the merged file stores it: relative when it sits beside ``out``."""
    if path.resolve().parent == out.resolve().parent:
        return path.name
    return str(path.resolve())
