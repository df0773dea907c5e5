"""The HDF5 data set: its layout, its versions, and checked reading.

Format version 3 (versions 1 and 2 are read too; docs/problem.md): datasets ``inputs`` and
``fields`` (n, L, L) float32, ``centers`` (n, k, 2) int16 (1-based x, y), ``values`` (n, k)
float32, ``field_max`` (n,) float32 and ``source_count`` (n,) int16; where D varies
``diffusivity`` (n, L, L) float32, where sources are not all disks ``source_shapes`` (n, k, 2)
float32 (aspect ratio, orientation), and where the walls are mixed ``walls`` (n,) uint8 (each
sample's, an index into ``dirichlet, neumann, periodic``); the problem (wall condition, diffusivity model, contrast,
source shape and target included), the backend, the seed and ``n_complete`` (rows that are
final) as file attributes.  A merged file
(:mod:`pydiff.datasets.shards`) holds virtual data sets pointing into its parts.

:func:`pydiff.datasets.writer.generate` writes a file under ``NAME.partial`` and renames it to
``NAME`` only once every row is final, so a file under its own name is always complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import DataFileError
from ..problem import Problem

FORMAT = "pydiff.dataset"
FORMAT_VERSION = 3  # 3: the varied family (diffusivity, source_shapes); 2: setup, min_sources, source_count
READABLE_VERSIONS = (1, 2, 3)
ARRAYS = ("inputs", "fields", "centers", "values", "field_max", "source_count")
ARRAYS_V1 = ARRAYS[:-1]
OPTIONAL_ARRAYS = ("diffusivity", "source_shapes", "walls")  # version 3, where the problem has them
PARTIAL_SUFFIX = ".partial"


def partial_path(path: Path) -> Path:
    """Where a file is written until it is complete."""
    return path.with_name(path.name + PARTIAL_SUFFIX)


# Storage, measured on 2 cores (2026-11-25): source images are mostly zeros, and gzip level 1
# stores them 100x (L = 100) to 216x (L = 512) smaller while writing at 400-600 MB/s and reading
# at 700-1000 MB/s; fields are smooth float32, where the best filter (shuffle + gzip) saves only
# 1.3-1.5x and writes at ~50 MB/s, slower than the solver: they stay uncompressed.  One chunk
# per sample, so that a training loader reading random samples decompresses nothing extra.
INPUT_FILTER: dict[str, Any] = {"compression": "gzip", "compression_opts": 1}


def _plain(value):
    """An HDF5 attribute as a plain Python value (str, int, float)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class GroundTruth:
    """A pydiff data set, read back.

    ``inputs``, ``fields`` (n, L, L), ``centers`` (n, k, 2), ``values`` (n, k), ``field_max``
    and ``source_count`` (n,) are numpy arrays, or, when loaded with ``lazy=True``, h5py datasets
    read on indexing (a version-1 file's ``source_count`` is made up: all ``n_sources``);
    ``diffusivity`` (n, L, L), ``source_shapes`` (n, k, 2) and ``walls`` (n,) likewise, or None
    where the D is constant, the sources are disks and the walls are one condition.
    ``ds[i]`` gives ``(input, field)`` as (1, L, L) float32 arrays, so a GroundTruth is a map-style
    data set for ``torch.utils.data.DataLoader``.
    """

    path: Path
    attrs: dict
    problem: Problem
    inputs: np.ndarray
    fields: np.ndarray
    centers: np.ndarray
    values: np.ndarray
    field_max: np.ndarray
    source_count: np.ndarray
    diffusivity: np.ndarray | None = None
    source_shapes: np.ndarray | None = None
    walls: np.ndarray | None = None
    _file: h5py.File | None = None

    def __len__(self) -> int:
        return int(self.attrs["n_complete"])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.asarray(self.inputs[index], dtype=np.float32)[None],
            np.asarray(self.fields[index], dtype=np.float32)[None],
        )

    @property
    def complete(self) -> bool:
        return int(self.attrs["n_complete"]) == int(self.attrs["n"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _attrs(f: h5py.File) -> dict:
    return {key: _plain(value) for key, value in f.attrs.items()}


def _arrays(attrs: dict) -> tuple[str, ...]:
    """The data sets a file of this format version and problem holds."""
    if attrs.get("format_version") == 1:
        return ARRAYS_V1
    return ARRAYS + optional_arrays(Problem.from_attrs(attrs))


def optional_arrays(problem: Problem) -> tuple[str, ...]:
    """The version-3 data sets ``problem`` needs: ``diffusivity`` where D varies,
    ``source_shapes`` where sources are not all disks, ``walls`` where the walls are mixed."""
    return (("diffusivity",) if problem.diffusivity != "constant" else ()) + \
        (("source_shapes",) if problem.sources != "disks" else ()) + \
        (("walls",) if problem.boundary == "mixed" else ())


def inspect(path: str | os.PathLike) -> tuple[h5py.File, dict, Problem]:
    """Open ``path`` read-only and check that it is a pydiff data set of a known version.

    Returns the open file, its attributes and its problem; raises :class:`DataFileError` naming
    what is wrong otherwise.  A partial file is accepted here (``n_complete`` says how far it is).
    """
    path = Path(path)
    if not path.exists():
        hint = f" (an interrupted run left {partial_path(path)}; finish it with pydiff generate --resume)" if partial_path(path).exists() else ""
        raise DataFileError(f"{path}: no such file{hint}")
    if not h5py.is_hdf5(path):
        raise DataFileError(f"{path}: not an HDF5 file (truncated or of another kind)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be opened as HDF5 ({exc})") from None
    try:
        attrs = _attrs(f)
        if attrs.get("format") != FORMAT:
            raise DataFileError(f"{path}: not a pydiff data set (format attribute {attrs.get('format')!r})")
        if attrs.get("format_version") not in READABLE_VERSIONS:
            raise DataFileError(
                f"{path}: format version {attrs.get('format_version')!r}; this pydiff reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))}"
            )
        missing = [name for name in _arrays(attrs) if name not in f]
        if missing or "n_complete" not in attrs or "n" not in attrs:
            raise DataFileError(f"{path}: incomplete pydiff data set (missing {', '.join(missing) or 'attributes'})")
        try:
            problem = Problem.from_attrs(attrs)
        except (KeyError, ValueError) as exc:
            raise DataFileError(f"{path}: bad problem attributes ({exc})") from None
        n, L, k = int(attrs["n"]), problem.lattice, problem.n_sources
        expected = {"inputs": (n, L, L), "fields": (n, L, L), "centers": (n, k, 2), "values": (n, k), "field_max": (n,),
                    "source_count": (n,), "diffusivity": (n, L, L), "source_shapes": (n, k, 2), "walls": (n,)}
        for name in _arrays(attrs):
            shape = expected[name]
            if f[name].shape != shape:
                raise DataFileError(f"{path}: dataset {name} has shape {f[name].shape}, expected {shape}")
        if not 0 <= int(attrs["n_complete"]) <= n:
            raise DataFileError(f"{path}: n_complete={attrs['n_complete']} out of range 0..{n}")
        _check_parts(f, path, _arrays(attrs))
    except BaseException:
        f.close()
        raise
    return f, attrs, problem


def part_location(name: str, merged: Path) -> Path:
    """Where HDF5 finds the part ``name`` of a virtual data set in the file ``merged``: an
    absolute name as it is, a relative one beside the merged file or else from the working
    directory (HDF5's own search order)."""
    part = Path(name)
    if part.is_absolute():
        return part
    beside = merged.parent / part
    return beside if beside.exists() or not part.exists() else part


def _check_parts(f: h5py.File, path: Path, names) -> None:
    """Every part a merged file's virtual data sets point into is there and holds its data set.

    HDF5 reads an unreachable part as its fill value: a merged file with a part moved away would
    read as zeros where that part's samples were, without an error.
    """
    checked = set()
    for name in names:
        dataset = f[name]
        if not dataset.is_virtual:
            continue
        for source in dataset.virtual_sources():
            if source.file_name == "." or (source.file_name, source.dset_name) in checked:
                continue
            checked.add((source.file_name, source.dset_name))
            part = part_location(source.file_name, path)
            if not part.is_file():
                raise DataFileError(f"{path}: {part}, a part of this merged data set, is missing; put it back beside "
                                    "the merged file (or merge the parts again)")
            try:
                with h5py.File(part, "r") as g:
                    present = source.dset_name.lstrip("/") in g
            except OSError:
                present = False
            if not present:
                raise DataFileError(f"{path}: {part}, a part of this merged data set, is not the pydiff data set it "
                                    f"was (no {source.dset_name}); merge the parts again")


def load(path: str | os.PathLike, lazy: bool = False, allow_partial: bool = False) -> GroundTruth:
    """Read a data set written by :func:`generate`.

    Args:
        path: the HDF5 file.
        lazy: keep the arrays on disk (h5py datasets, read on indexing) instead of loading them;
            close the result (or use it as a context manager) when done.
        allow_partial: accept a file whose ``n_complete`` is below ``n`` (an interrupted run);
            only the complete rows are returned.

    Raises:
        DataFileError: missing, truncated, foreign, wrong-version or incomplete file.
    """
    f, attrs, problem = inspect(path)
    if int(attrs["n_complete"]) < int(attrs["n"]) and not allow_partial:
        f.close()
        raise DataFileError(f"{path}: incomplete ({attrs['n_complete']} of {attrs['n']} samples); finish it with pydiff generate --resume")
    m = int(attrs["n_complete"])
    made_up = {} if "source_count" in _arrays(attrs) else \
        {"source_count": np.full(int(attrs["n"]), problem.n_sources, dtype=np.int16)}
    if lazy:
        arrays = {name: f[name] for name in _arrays(attrs)}
        return GroundTruth(Path(path), attrs, problem, **arrays, **made_up, _file=f)
    try:
        arrays = {name: f[name][:m] for name in _arrays(attrs)}
    finally:
        f.close()
    return GroundTruth(Path(path), attrs, problem, **arrays, **{k: v[:m] for k, v in made_up.items()})


def summary(path: str | os.PathLike, block: int = 1024) -> tuple[dict, "list[dict]"]:
    """Attributes and per-array (shape, dtype, min, max) of a data set, read block by block."""
    f, attrs, _ = inspect(path)
    rows = []
    with f:
        m = int(attrs["n_complete"])
        for name in _arrays(attrs):
            ds = f[name]
            lo, hi = np.inf, -np.inf
            for start in range(0, m, block):
                part = ds[start : min(m, start + block)]
                lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
            rows.append({"array": name, "shape": str(ds.shape), "dtype": str(ds.dtype),
                         "min": lo if m else float("nan"), "max": hi if m else float("nan")})
    return attrs, rows
