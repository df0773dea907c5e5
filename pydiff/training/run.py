"""A training run from its configuration: the data, the network, the optimiser and the run
directory built, then handed to the :class:`~pydiff.training.trainer.Trainer`.

Fast on a GPU: Adam is fused, the forward pass runs in bf16 autocast with channels-last layout,
cuDNN picks its kernels, and ``compile`` hands the model to torch.compile ("reduce-overhead" adds
CUDA graphs).  Under ``torchrun`` the network is DistributedDataParallel with BatchNorm over the
global batch.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Callable, cast

import numpy as np
import torch

from ..datasets.batches import OnlineSamples, PartlyLabelled, StreamedSamples, TensorSamples
from ..device import fast_paths, memory_budget
from ..errors import ConfigError
from ..nn.build import build_model
from ..nn.physics import PhysicsLoss
from . import checkpoint, distributed
from .config import TrainConfig, describe_differences, resumable, with_absolute_data
from .data import load_arrays
from .step import make_optimizer
from .trainer import RunModel, Trainer, TrainResult


def build_network(config: TrainConfig, ctx: distributed.Context, problem=None) -> RunModel:
    """The run's model on its device: the ``module`` that is saved and the ``network`` the steps
    run (:class:`~pydiff.training.trainer.RunModel`): BatchNorm over the global batch, channels-last and cuDNN autotuning on CUDA,
    DistributedDataParallel under torchrun, torch.compile when asked.  ``train`` and
    ``pydiff bench train`` both build it here, so the benchmark times what training runs.
    ``problem``: the data's, which a constant-D prior solves."""
    module = distributed.sync_batchnorm(build_model(config, problem), ctx).to(ctx.device)
    if fast_paths(ctx.device) or config.network != "fno":
        # Channels-last: tensor cores on CUDA; on a CPU oneDNN runs the convolutions of few channels
        # 3-7x faster in it (a 1-channel 3x3 at 100^2, forward and backward: 2.6 against 17.8 ms),
        # training 1.6-3x faster.  Only for training: at batch 1 (serving) PyTorch's CPU
        # convolutions leave oneDNN, and there the layout costs 1.8x, so loaded models stay
        # contiguous.  (Module.to takes memory_format; torch's overloads omit it.)
        module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if ctx.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # the shapes repeat: let cuDNN pick its fastest kernels
    network = distributed.wrap(module, ctx)
    if config.compile != "off":
        # a compiled Module is a Module (OptimizedModule); torch.compile's annotations say a callable
        mode = None if config.compile == "default" else config.compile
        network = cast(torch.nn.Module, torch.compile(network, mode=mode))
    return RunModel(module, network)


def file_samples(arrays, index: np.ndarray, device: torch.device):
    """Samples ``index`` of the data file: on the device when the file's arrays were read into
    memory, else read from the file batch by batch."""
    if arrays.in_memory:
        return TensorSamples(*(torch.as_tensor(a[index]).to(device) for a in (arrays.inputs, arrays.fields)))
    return StreamedSamples(arrays.inputs, arrays.fields, index, device)


def training_samples(config: TrainConfig, arrays, device: torch.device):
    """The run's training batches: its training split, or (``training_data`` "online") as many
    fresh exact samples per epoch of the file's problem."""
    train = arrays.split["train"]
    if config.training_data == "online":
        return OnlineSamples(arrays.problem, len(train), config.seed, device, config.in_channels,
                             labelled=config.labels > 0)
    samples = file_samples(arrays, train, device)
    if config.labels < 1:
        samples = PartlyLabelled(samples, labelled_positions(len(train), config.labels, config.seed))
    return samples


LABELS = 0x6C6162  # "lab": the labelled subset's own random stream


def labelled_positions(n: int, fraction: float, seed: int) -> np.ndarray:
    """(n,) bool: which of ``n`` training samples keep their labels, ``round(fraction n)`` of
    them chosen at random by ``seed``."""
    keep = np.zeros(n, dtype=bool)
    keep[np.random.default_rng([seed, LABELS]).permutation(n)[: round(fraction * n)]] = True
    return keep


def _check_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> bool:
    """Whether to resume from last.pt; refuses an existing run without ``resume`` or of another
    config.  Missing parent directories are made with the run's (``--out runs/x`` where runs/ is
    not there yet), once the data has been read."""
    has_run = (run_dir / checkpoint.CONFIG).is_file()
    if has_run and not resume:
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    if has_run:
        blocking = resumable(checkpoint.read_config(run_dir), config)
        if blocking:
            raise ConfigError(f"{run_dir} was trained with other options ({describe_differences(blocking)}); "
                              "use the same options or a new --out")
    return (run_dir / checkpoint.LAST).is_file()


def check_trainable(config: TrainConfig, problem) -> None:
    """:class:`ConfigError` for what ``problem``'s data cannot give ``config``, before a run
    directory is written: online samples and the physics loss need fields solved where they are
    stored and normalised to peak 1 (not Darcy flow's)."""
    if config.physics_weight > 0:
        PhysicsLoss(problem)  # refuses what it cannot measure
    if config.training_data == "online" and not problem.normalised:
        raise ConfigError("online samples of Darcy flow are not built (its fields are solved on a finer lattice): "
                          "train on the data file, without --training-data online")


def train(config: TrainConfig, run_dir, resume: bool = False, progress: bool | Callable = True) -> TrainResult:
    """Train ``config`` into ``run_dir`` (created); ``resume`` continues from its last.pt.

    Under ``torchrun`` every rank calls this; rank r trains on the r-th slice of each batch and
    only rank 0 writes files.

    Raises:
        ConfigError: bad values, an existing run without ``resume``, or a run of another config.
        DataFileError: a missing or unusable data file or checkpoint.
        Interrupted: SIGINT or SIGTERM arrived; a checkpoint was written.
    """
    config.validate()
    config = with_absolute_data(config)  # config.json works from any working directory
    run_dir = Path(run_dir)
    ctx = distributed.setup(config.device)
    from_checkpoint = _check_run_dir(config, run_dir, resume)
    distributed.barrier(ctx)  # every rank has looked at the run directory before rank 0 writes into it
    saved = checkpoint.load_checkpoint(run_dir, ctx.device) if from_checkpoint else None
    if saved is not None and saved["resume_epoch"] + 1 > config.epochs:
        raise ConfigError(f"{run_dir} has trained {saved['resume_epoch'] + 1} epochs already; "
                          f"ask for at least as many, not {config.epochs}")
    arrays = load_arrays(config, memory_budget(ctx.device) if config.stream == "auto" else
                         {"always": 0, "never": math.inf}[config.stream])
    check_trainable(config, arrays.problem)
    if ctx.is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where a directory should be, no permission
            raise ConfigError(f"cannot create {run_dir}: {exc.strerror or exc}") from None
        checkpoint.write_config(config, run_dir)
        (run_dir / checkpoint.RESULT).unlink(missing_ok=True)  # a run continued (more epochs) is unfinished again

    torch.manual_seed(config.seed)
    random.seed(config.seed)
    train_data = training_samples(config, arrays, ctx.device)
    held_out = arrays.split[config.select_on]
    if len(held_out) > 0:
        val_data = file_samples(arrays, held_out, ctx.device)
    elif config.training_data == "file":  # no validation split (the paper's 80/20): select on the training loss
        val_data = train_data  # the same samples: one copy on the device
    else:
        val_data = file_samples(arrays, arrays.split["train"], ctx.device)
    # without labels the Trainer hides the held-out fields from the loss that picks the best epoch

    model = build_network(config, ctx, arrays.problem)
    trainer = Trainer(config=config, run_dir=run_dir, model=model,
                      optimizer=make_optimizer(model.module, config, ctx.device), train_data=train_data,
                      val_data=val_data, ctx=ctx, progress=progress, problem=arrays.problem)
    if saved is not None:
        trainer.resume(saved)
    result = trainer.fit()
    if ctx.is_main:  # result.json: its presence marks the run finished
        checkpoint.write_result({"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
                                 "epochs_run": result.epochs_run, "rollbacks": result.rollbacks,
                                 "seconds": result.seconds, "bytes_written": result.bytes_written,
                                 "n_train": len(train_data), "device": str(ctx.device),
                                 "world_size": ctx.world_size}, run_dir)
    return result
