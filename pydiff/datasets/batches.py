"""Where training batches come from: a fixed set on the device, one read from its file as it
goes, or fresh exact samples.

Each gives :class:`~pydiff.training.trainer.Trainer` an epoch's batches from the same global batches of
positions ``0 .. n-1`` (its shuffle decides them), so one training loop serves all three, and
the held-out set is read the same way.

Online data (``--data online``): position ``p`` of epoch ``e`` is sample ``j = e * n + p`` of an
endless stream; sample ``j``'s sources come from its own seed ``(seed, STREAM, j)`` and have
``min + j mod k`` disks (every count equally often), and its field is solved on the training
device by the spectral solver in PyTorch.  So a sample is the same whatever the batch size, the
number of data-parallel ranks or the point where a run resumed, and a run never sees a sample
twice.  The stream's seeds differ from those of ``pydiff generate`` (one generator per file),
so the held-out samples of the data file are not drawn again.
"""

from __future__ import annotations

import math

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import numpy as np
import torch

from ..problem import Problem, SourceDraw, sample_sources, source_images
from ..problem.diffusivity import diffusivity_channel, diffusivity_maps
from ..problem.walls import constant_walls, for_each_wall, sample_walls, wall_planes
from ..solvers.torch_mg import TorchMGSolver
from ..solvers.torch_spectral import TorchSpectralSolver


class Rows:
    """Rows of an (n, L, L) array, in memory or an HDF5 data set read on indexing, given as
    (k, 1, L, L) float32 numpy arrays (``transform`` applied): the same code reads either."""

    def __init__(self, array, transform=None) -> None:
        self.array, self.transform = array, transform

    def __len__(self) -> int:
        return len(self.array)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.array, np.ndarray)

    def __getitem__(self, index) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64)
        if self.in_memory:
            rows = self.array[index][:, None]
        else:
            # One read per sample into its place: h5py's fancy indexing of a list of rows is ~20x
            # slower (37 against 800 inputs/s at 512^2, per-sample chunks, measured).
            rows = np.empty((len(index), 1, *self.array.shape[1:]), dtype=np.float32)
            for k, i in enumerate(index):
                self.array.read_direct(rows, np.s_[i : i + 1], np.s_[k, 0:1])
        return rows if self.transform is None else self.transform(rows)


class Channels:
    """Several :class:`Rows` of the same samples side by side: (k, C, L, L) (the source image and
    the diffusivity channel of the varied family)."""

    def __init__(self, *rows: Rows) -> None:
        self.rows = rows
        self.array = rows[0].array

    def __len__(self) -> int:
        return len(self.rows[0])

    @property
    def in_memory(self) -> bool:
        return all(r.in_memory for r in self.rows)

    def __getitem__(self, index) -> np.ndarray:
        return np.concatenate([r[index] for r in self.rows], axis=1)


STREAM = 0x6F6E6C  # "onl": keeps the online stream apart from any other use of the run's seed


class TensorSamples:
    """A fixed training set: (n, 1, L, L) inputs and fields, already on the device."""

    def __init__(self, inputs: torch.Tensor, fields: torch.Tensor) -> None:
        self.inputs, self.fields = inputs, fields

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def pixels(self) -> int:
        return int(np.prod(self.fields.shape[1:]))

    def epoch_batches(self, epoch: int, batches: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(inputs, fields) of each batch of positions, with one host-to-device copy of the
        epoch's indices (a copy per step would wait for the GPU)."""
        if not batches:
            return
        indices = torch.cat(batches).to(self.inputs.device, non_blocking=True).split([len(b) for b in batches])
        for index in indices:
            yield self.inputs[index], self.fields[index]


class StreamedSamples:
    """A training or held-out set too large for memory, read from its HDF5 file batch by batch
    (per-sample chunks make a batch ``B`` small reads).  A background thread reads the next batch
    while the device trains on this one; the copy to a GPU is from pinned memory.

    Args:
        inputs, fields: the file's :class:`~pydiff.datasets.batches.Rows` (read on indexing).
        index: the samples of the file this set holds (positions ``p`` are ``index[p]``).
        device: where the batches go.
    """

    def __init__(self, inputs, fields, index: np.ndarray, device: torch.device) -> None:
        self.inputs, self.fields, self.index = inputs, fields, np.asarray(index)
        self.device = torch.device(device)
        self.pixels = int(np.prod(fields.array.shape[1:]))

    def __len__(self) -> int:
        return len(self.index)

    def _read(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.index[positions.numpy()]
        x, y = torch.from_numpy(self.inputs[rows]), torch.from_numpy(self.fields[rows])
        if self.device.type == "cuda":
            x, y = x.pin_memory(), y.pin_memory()
        return x, y

    def epoch_batches(self, epoch: int, batches: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not batches:
            return
        with ThreadPoolExecutor(max_workers=1) as reader:
            pending = reader.submit(self._read, batches[0])
            for k in range(len(batches)):
                x, y = pending.result()
                if k + 1 < len(batches):
                    pending = reader.submit(self._read, batches[k + 1])
                yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def _concatenate(draws: list[SourceDraw]) -> SourceDraw:
    return SourceDraw(np.concatenate([d.centers for d in draws]), np.concatenate([d.multipliers for d in draws]),
                      np.concatenate([d.source_count for d in draws]), draws[0].setup)


class OnlineSamples:
    """``n`` fresh exact samples of ``problem`` per epoch, made on ``device`` as they are needed.

    Args:
        problem: what to sample (lattice, source counts, recipe, diffusivity, walls): the data
            file's problem.
        n: samples per epoch (the training split's size it replaces, so the steps match).
        seed: the stream's seed.
        device: where the fields are solved and the batches live: by the spectral solver in
            PyTorch where D is constant, by :mod:`pydiff.solvers.torch_mg` where it varies (the
            fastest exact backend there, about 10 iterations whatever the lattice).
        in_channels: what the network reads besides the image: 2 each sample's diffusivity
            channel, 3 its wall planes, 4 both (the walls of a mixed problem drawn per sample,
            :func:`pydiff.problem.walls.sample_walls`, each wall's samples solved by its own backend).
        labelled: False: no solver at all, the fields are NaN (physics-informed training
            learns from the images and maps alone).
    """

    def __init__(self, problem: Problem, n: int, seed: int, device: torch.device, in_channels: int = 1,
                 labelled: bool = True) -> None:
        self.problem, self.n, self.seed, self.device = problem, int(n), int(seed), torch.device(device)
        self.in_channels, self.labelled = in_channels, labelled
        self._solvers: dict = {}  # walls -> the backend that solves them
        L = problem.lattice
        self.pixels = L * L

    def _fields(self, problem: Problem, images: torch.Tensor, maps) -> torch.Tensor:
        """Unnormalised exact fields of one wall condition's samples, on the device."""
        if problem.boundary not in self._solvers:
            solver = TorchSpectralSolver if problem.diffusivity == "constant" else TorchMGSolver
            self._solvers[problem.boundary] = solver(problem, device=str(self.device))
        return self._solvers[problem.boundary].fields_of(images, maps)

    def __len__(self) -> int:
        return self.n

    def draw(self, sample_ids) -> SourceDraw:
        """The sources of stream samples ``sample_ids`` (each from its own seed)."""
        return _concatenate([sample_sources(self.problem, 1, [self.seed, STREAM, int(j)], first=int(j))
                             for j in sample_ids])

    def samples(self, sample_ids) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, C, L, L) float32 inputs and (b, 1, L, L) fields of stream samples ``sample_ids`` on the device."""
        images = torch.from_numpy(source_images(self.problem, self.draw(sample_ids))).to(self.device)
        maps = diffusivity_maps(self.problem, sample_ids, [self.seed, STREAM])
        walls = sample_walls(self.problem, sample_ids, [self.seed, STREAM])  # None unless mixed
        if not self.labelled:
            fields = torch.full_like(images, math.nan)
        else:
            u = for_each_wall(self.problem, walls, self._fields, images, None if maps is None else torch.from_numpy(maps))
            fields = (u / u.amax(dim=(-2, -1), keepdim=True)).float()
        inputs = [images[:, None]]
        if self.in_channels in (2, 4):  # the diffusivity channel
            inputs.append(torch.from_numpy(diffusivity_channel(maps, self.problem)).to(self.device)[:, None])
        if self.in_channels >= 3:  # the wall planes
            # walls: a network reading wall planes is trained on mixed walls, whose samples have them
            if walls is None:  # data of one wall condition: every sample's planes the same
                walls = constant_walls(self.problem, len(images))
            inputs.append(torch.from_numpy(wall_planes(walls, self.problem.lattice)).to(self.device))
        return torch.cat(inputs, dim=1) if len(inputs) > 1 else inputs[0], fields[:, None]

    def epoch_batches(self, epoch: int, batches: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        first = epoch * self.n
        for positions in batches:
            if len(positions) == 0:  # a rank's empty share of a small global batch
                L = self.problem.lattice
                yield (torch.zeros((0, self.in_channels, L, L), device=self.device),
                       torch.zeros((0, 1, L, L), device=self.device))
                continue
            yield self.samples(first + positions.numpy())


class PartlyLabelled:
    """Samples of which only some keep their fields: the others' are NaN, for a loss that learns
    from them without labels (:func:`pydiff.training.step.loss_function`).

    Args:
        samples: any of the sample sets above.
        labelled: (n,) bool, per position of ``samples``.
    """

    def __init__(self, samples, labelled: np.ndarray) -> None:
        self.samples, self.labelled = samples, torch.as_tensor(np.asarray(labelled, dtype=bool))
        self.pixels = samples.pixels

    def __len__(self) -> int:
        return len(self.samples)

    def epoch_batches(self, epoch: int, batches: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for (x, y), positions in zip(self.samples.epoch_batches(epoch, batches), batches):
            keep = self.labelled[positions].to(y.device)[:, None, None, None]
            yield x, torch.where(keep, y, torch.full_like(y, math.nan))
