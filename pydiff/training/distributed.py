"""Data-parallel training over K processes started by ``torchrun``.

``torchrun --nproc-per-node=K -m pydiff train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`setup` reads them and joins the process group (NCCL on CUDA, gloo on
CPU).  Rank r takes the r-th slice of every global batch (:func:`rank_slice`), so K ranks with
B/K samples each follow the single-process run of batch B: BatchNorm statistics are computed
over the global batch (:func:`sync_batchnorm`) and the loss is divided by the global batch.
Only rank 0 writes files.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..device import pick_device
from ..errors import ConfigError


@dataclass(frozen=True)
class Context:
    """This process's place: ``rank`` of ``world_size``, on ``device``."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def backend(self) -> str | None:
        return dist.get_backend() if self.world_size > 1 else None


def setup(device_name: str = "auto") -> Context:
    """The process group of a ``torchrun`` launch (joined once), or a single-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Context(0, 1, pick_device(device_name))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if dist.get_world_size() != world_size:
        raise ConfigError(f"WORLD_SIZE={world_size} but the process group has {dist.get_world_size()} ranks")
    return Context(rank, world_size, device)


def launched_rank() -> int:
    """This process's rank in a torchrun launch (0 outside one): for deciding who prints."""
    return int(os.environ.get("RANK", "0"))


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: Context) -> None:
    if ctx.world_size > 1:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Sum of ``tensor`` over the ranks (in place; returned for chaining)."""
    if ctx.world_size > 1:
        dist.all_reduce(tensor)
    return tensor


def any_rank(flag: bool, ctx: Context) -> bool:
    """True on every rank when ``flag`` is true on at least one."""
    if ctx.world_size == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def from_main(value, ctx: Context):
    """Rank 0's ``value`` on every rank (a decision made once, such as epochs from a timing)."""
    if ctx.world_size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def rank_slice(index: torch.Tensor, ctx: Context) -> torch.Tensor:
    """This rank's part of a global batch: the r-th of K nearly equal consecutive slices
    (the first ``len % K`` slices are one longer; a slice may be empty)."""
    if ctx.world_size == 1:
        return index
    return torch.tensor_split(index, ctx.world_size)[ctx.rank]


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the global batch of all ranks.

    The same semantics as :class:`torch.nn.SyncBatchNorm` (biased variance for normalising,
    unbiased for the running estimate, both over every rank's samples), written with the
    differentiable :func:`torch.distributed.nn.functional.all_reduce`, so it runs on gloo (CPU),
    where SyncBatchNorm refuses.  Two passes in float64 (mean, then squared deviations) keep it
    as exact as PyTorch's own CPU BatchNorm, so that 2 ranks follow 1 process to ~1e-7.  With one process it is plain BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized() or dist.get_world_size() == 1:
            return super().forward(x)
        dims = (0, 2, 3)
        # Statistics accumulate in float64, as PyTorch's own CPU BatchNorm does: a channel whose
        # values sit far from zero with a small spread (the last BatchNorm's input) loses its
        # variance to float32 cancellation otherwise.
        xd = x.double()
        count = torch.tensor([x.shape[0] * x.shape[2] * x.shape[3]], dtype=torch.float64, device=x.device)
        sums = all_reduce(torch.cat([xd.sum(dims), count]))
        n = sums[-1]
        mean = sums[:-1] / n
        var = all_reduce((xd - mean[None, :, None, None]).pow(2).sum(dims)) / n
        if self.track_running_stats:
            # buffers that track_running_stats makes (Optional in BatchNorm's annotations)
            assert self.num_batches_tracked is not None
            assert self.running_mean is not None and self.running_var is not None
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach().to(self.running_mean.dtype), alpha=m)
                self.running_var.mul_(1 - m).add_((var.detach() * (n / (n - 1))).to(self.running_var.dtype), alpha=m)
        out = (x - mean.to(x.dtype)[None, :, None, None]) * torch.rsqrt(var + self.eps).to(x.dtype)[None, :, None, None]
        if self.affine:
            out = out * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return out


def all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable sum over the ranks (its gradient is the sum of the ranks' gradients)."""
    from torch.distributed.nn.functional import all_reduce as differentiable_all_reduce

    with warnings.catch_warnings():  # torch >= 2.9 flags it deprecated; it is the documented autograd op
        warnings.simplefilter("ignore", FutureWarning)
        return differentiable_all_reduce(tensor)


def sync_batchnorm(model: nn.Module, ctx: Context) -> nn.Module:
    """Every BatchNorm2d of ``model`` normalised over the global batch: torch's SyncBatchNorm on
    NCCL, :class:`GlobalBatchNorm2d` on gloo; unchanged for one process."""
    if ctx.world_size == 1:
        return model
    if ctx.backend == "nccl":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in list(model.named_children()):
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, GlobalBatchNorm2d):
            replacement = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                            child.track_running_stats)
            replacement.load_state_dict(child.state_dict())
            setattr(model, name, replacement)
        else:
            sync_batchnorm(child, ctx)
    return model


def wrap(model: nn.Module, ctx: Context) -> nn.Module:
    """``model`` in DistributedDataParallel (gradients averaged over ranks); as is for one process."""
    if ctx.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # Buffers (BatchNorm running statistics) are equal on every rank by construction.
    return DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)
