"""Training: Adam on the weighted loss, roll-back (Eq. 3), best-epoch selection, checkpoints.

Read top to bottom: :func:`train_step` is one optimiser step (``pydiff bench train`` times the
same function); :class:`Trainer` is handed a built model, optimiser and data and runs the epochs
(:meth:`Trainer.train_one_epoch`, :meth:`Trainer.evaluate`, :meth:`Trainer.checkpoint` apart);
:func:`train` builds those objects from a :class:`~pydiff.config.TrainConfig` and runs them.

Fast on a GPU: the data set lives on the device, an epoch never waits for the host (losses are
summed on the device and read once per epoch), Adam is fused, the forward pass runs in bf16
autocast with channels-last layout, and ``compile`` hands the model to torch.compile
("reduce-overhead" adds CUDA graphs).

Checkpoints that cost little and lose nothing: every ``checkpoint_every`` epochs, on SIGINT or
SIGTERM, on any error and at the end, last.pt receives *one* training state, the oldest that a
roll-back can still return to (epoch e, up to s epochs back), with the loop's bookkeeping at e
(roll-back history, random-number states) and, as of the last finished epoch c, the best weights
and the log.  A resumed run restarts from e and recomputes epochs e+1..c, which on CPU gives
exactly the states (roll-backs included) that the uninterrupted run held; it logs nothing twice.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from . import distributed, rundir
from .config import TrainConfig, describe_differences, resumable
from .data import load_arrays
from .device import autocast, memory_budget
from .errors import ConfigError, Interrupted
from .losses import make_loss
from .problem import Problem
from .rollback import RollBack
from .samples import OnlineSamples, StreamedSamples, TensorSamples
from .signals import StopRequest, stop_on_signals
from .snapshots import SnapshotPool


def lr_at(config: TrainConfig, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based): constant, or cosine from lr to lr/100.

    A closed form of the epoch, so that roll-backs and resumes never disturb the schedule."""
    if config.lr_schedule == "cosine":
        low = config.lr * 1e-2
        return low + (config.lr - low) * (1 + math.cos(math.pi * epoch / config.epochs)) / 2
    return config.lr


def make_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam (eps 1e-8, as Flux's ADAM); the fused CUDA kernel on a GPU."""
    return torch.optim.Adam(model.parameters(), lr=config.lr, eps=1e-8, fused=device.type == "cuda")


def loss_function(config: TrainConfig) -> Callable:
    """The run's loss with its weights, summed over the batch (callers divide)."""
    return make_loss(config.loss, config.w, config.loss_w2, reduction="sum", delta=config.loss_delta)


def train_step(model, optimizer, x: torch.Tensor, y: torch.Tensor, loss_sum: Callable, scale: float,
               device: torch.device, amp: bool = True) -> torch.Tensor:
    """One optimiser step on a batch; returns the batch's summed loss, detached, on the device.

    The loss that is differentiated is ``scale`` times the sum: ``1 / (B * pixels)`` gives Eq. 2's
    mean over a global batch of B (times K under DistributedDataParallel, which averages K ranks).
    """
    with autocast(device, amp):
        prediction = model(x)
    total = loss_sum(prediction.float(), y)
    optimizer.zero_grad(set_to_none=True)
    (total * scale).backward()
    optimizer.step()
    return total.detach()


def batchnorms(module: torch.nn.Module) -> list[torch.nn.Module]:
    """Every BatchNorm layer of ``module`` (none in an FNO)."""
    return [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(network, module, input_batches: Iterable[torch.Tensor], device: torch.device,
                          amp: bool = True) -> None:
    """Recompute every BatchNorm's running statistics of ``module`` over ``input_batches`` (this
    rank's part of each global batch), dropout off.

    Table 1 puts element-wise dropout right before BatchNorms (D1 and D2 in NN1, D4 before NN2's
    last layers).  During training those BatchNorms record the variance of dropped-out inputs;
    at evaluation, without dropout, the variance is smaller, and normalising it by the recorded
    one shrinks the output towards its mean: the peaks come out low (the "variance shift" of
    dropout before batch normalisation).  One pass over the training inputs in evaluation mode
    for dropout and training mode for the BatchNorms, averaging all batches equally, records the
    statistics that evaluation actually meets.
    """
    norms = batchnorms(module)
    if not norms:  # nothing to recalibrate (an FNO): no pass over the training inputs
        return
    saved = [m.momentum for m in norms]
    network.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches
        norm.train()
    try:
        for x in input_batches:
            with autocast(device, amp):  # every rank takes part in every batch's statistics
                network(x)
    finally:
        for norm, momentum in zip(norms, saved):
            norm.momentum = momentum
        network.eval()


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    rollbacks: int
    seconds: float
    bytes_written: int = 0
    history: list = field(default_factory=list)


class _Stop(Exception):
    """A stop signal arrived; raised between steps and turned into :class:`Interrupted`."""


class Trainer:
    """Runs the epochs of one training run on built objects.

    Args:
        config: the run's configuration (epochs, batch size, roll-back rule, ...).
        run_dir: where files go (rank 0 only).
        model: the network, already on the device (``module`` is used for saving; ``network``,
            possibly DDP-wrapped or compiled, for steps).
        optimizer: its optimiser.
        train_data: where the training batches come from (:mod:`pydiff.samples`: the fixed
            training set on the device or read from its file, or fresh exact samples).
        val_data: the held-out samples that pick the best epoch, likewise.
        ctx: this process's place in a data-parallel run.
        progress: True (a progress bar), False, or a callable given each epoch's log row.
        problem: the problem the data poses, recorded with the saved model.
    """

    def __init__(self, config: TrainConfig, run_dir, module: torch.nn.Module, network, optimizer,
                 train_data, val_data, ctx: distributed.Context, progress: bool | Callable = True,
                 problem: Problem | None = None) -> None:
        self.config, self.run_dir, self.problem = config, Path(run_dir), problem
        self.module, self.network, self.optimizer, self.ctx = module, network, optimizer, ctx
        self.train_data = train_data
        self.val_data = val_data
        self.progress = progress
        self.device = ctx.device
        self.loss_sum = loss_function(config)
        self.pixels = train_data.pixels
        self.pool = SnapshotPool(module, optimizer)
        self.rollback = RollBack(config.rollback, config.rollback_C, config.rollback_m, config.rollback_s)
        self.shuffle = torch.Generator().manual_seed(config.seed)
        self.log: list[dict] = []
        self.start_epoch, self.replay_until, self.last_epoch = 0, -1, -1
        self.best_val, self.best_epoch, self.best_weights, self.best_saved = math.inf, -1, None, True
        self.seconds_before, self.bytes_written, self.clock = 0.0, 0, time.perf_counter()
        self.stop = StopRequest()  # set by SIGINT/SIGTERM during fit
        self.fixed_batches = None
        if config.shuffle == "batches":  # DiffSolve.jl: consecutive batches of one permutation, fixed
            order = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(config.seed + 1))
            self.fixed_batches = torch.split(order, config.batch_size)

    # --- One epoch -----------------------------------------------------------------------------

    def _batches(self) -> list[torch.Tensor]:
        """This epoch's global batches of training indices (the shuffle generator advances)."""
        if self.fixed_batches is not None:
            return [self.fixed_batches[i] for i in torch.randperm(len(self.fixed_batches), generator=self.shuffle)]
        return list(torch.split(torch.randperm(len(self.train_data), generator=self.shuffle), self.config.batch_size))

    def train_one_epoch(self, epoch: int) -> float:
        """One pass over the training set; returns the mean training loss (one host sync)."""
        self.network.train()
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.config, epoch)
        total = torch.zeros((), device=self.device)
        single = self.ctx.world_size == 1
        global_batches = self._batches()
        mine = [distributed.rank_slice(batch, self.ctx) for batch in global_batches]
        batches = self.train_data.epoch_batches(epoch, mine)
        for (x, y), batch in zip(batches, global_batches):
            if single and self.stop.signum is not None:
                raise _Stop
            scale = self.ctx.world_size / (len(batch) * self.pixels)
            total += train_step(self.network, self.optimizer, x, y, self.loss_sum, scale, self.device, self.config.amp)
        distributed.all_reduce_sum(total, self.ctx)
        return float(total) / (len(self.train_data) * self.pixels)

    @torch.no_grad()
    def evaluate(self) -> float:
        """Held-out loss (eval mode), the mean of Eq. 2 over the held-out samples."""
        n = len(self.val_data)
        if n == 0:
            return math.nan
        self.network.eval()
        total = torch.zeros((), device=self.device)
        for x, y in self.val_data.epoch_batches(0, self._eval_batches(n)):
            with autocast(self.device, self.config.amp):
                prediction = self.network(x)
            total += self.loss_sum(prediction.float(), y)
        distributed.all_reduce_sum(total, self.ctx)
        return float(total) / (n * self.pixels)

    def _eval_batches(self, n: int) -> list[torch.Tensor]:
        """This rank's part of consecutive evaluation batches over positions 0 .. n-1."""
        mine = distributed.rank_slice(torch.arange(n), self.ctx)
        return list(torch.split(mine, self.config.eval_batch_size))

    # --- Roll-back and snapshots ---------------------------------------------------------------

    def _meta(self, epoch: int) -> dict:
        """The loop's bookkeeping at the end of ``epoch``: what a replay from here needs."""
        return {"epoch": epoch, "rollback": self.rollback.state_dict(), "shuffle_rng": self.shuffle.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                "python_rng": random.getstate()}

    def _roll(self, epoch: int, train_loss: float):
        """Apply the roll-back decision for ``epoch``.  Every kept epoch's state is captured; the
        pool keeps what a later roll-back may restore and the current state (a checkpoint's
        source), nothing else."""
        decision = self.rollback.update(train_loss, epoch)
        if decision is None:
            self.pool.retain(self.rollback.live_keys() - {epoch})
            self.pool.capture(epoch, self._meta(epoch))
        else:
            self.pool.restore(decision.key, optimizer=decision.optimizer)
            self.pool.retain(self.rollback.live_keys() | {decision.key})
        return decision

    # --- Checkpoints ---------------------------------------------------------------------------

    def checkpoint(self) -> dict:
        """What last.pt holds: the oldest kept state (epoch e) and its bookkeeping; the best
        weights, log and clock as of the last finished epoch."""
        e = min(self.pool.entries)
        return {"config": self.config.to_json(), "replay_from": e, "resume_epoch": max(self.last_epoch, self.replay_until),
                "state": self.pool.state(e), "meta": self.pool.meta(e),
                "best": {"model": self.best_weights, "epoch": self.best_epoch, "val_loss": self.best_val},
                "log": self.log, "seconds": self.seconds(), "bytes_written": self.bytes_written}

    def save(self) -> None:
        """Write last.pt, and model.safetensors when the best weights changed (rank 0; nothing
        before the first epoch)."""
        if not self.ctx.is_main or not self.pool.entries:
            return
        if not self.best_saved and self.best_weights is not None:
            self.bytes_written += rundir.save_model(self.best_weights, self.run_dir, self.best_epoch, self.best_val,
                                                    self.problem)
            self.best_saved = True
        self.bytes_written += rundir.save_checkpoint(self.checkpoint(), self.run_dir)

    def resume(self, checkpoint: dict) -> None:
        """Continue from a checkpoint: load state e, its bookkeeping, and replay up to c."""
        state, meta = checkpoint["state"], checkpoint["meta"]
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rollback.load_state_dict(meta["rollback"])
        self.shuffle.set_state(meta["shuffle_rng"])
        torch.set_rng_state(meta["torch_rng"])
        random.setstate(meta["python_rng"])
        if self.device.type == "cuda" and meta["cuda_rng"] is not None:
            torch.cuda.set_rng_state(meta["cuda_rng"], self.device)
        e = checkpoint["replay_from"]
        self.pool.capture(e, meta)
        best = checkpoint["best"]
        self.best_weights, self.best_epoch, self.best_val = best["model"], best["epoch"], best["val_loss"]
        self.log = list(checkpoint["log"])
        self.start_epoch, self.replay_until = e + 1, checkpoint["resume_epoch"]
        self.last_epoch = e
        self.seconds_before, self.bytes_written = checkpoint["seconds"], checkpoint["bytes_written"]
        self.clock = time.perf_counter()

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.clock

    # --- The loop ------------------------------------------------------------------------------

    def _remember_best(self, epoch: int, val_loss: float) -> None:
        weights = self.module.state_dict()
        if self.best_weights is None:
            self.best_weights = {k: v.detach().clone() if torch.is_tensor(v) else v for k, v in weights.items()}
        else:
            for k, v in weights.items():
                if torch.is_tensor(v):
                    self.best_weights[k].copy_(v)
        self.best_val, self.best_epoch, self.best_saved = val_loss, epoch, False

    def fit(self) -> TrainResult:
        config, main = self.config, self.ctx.is_main
        bar = None
        if self.progress is True and main:
            from tqdm.auto import tqdm

            bar = tqdm(total=config.epochs, initial=min(self.replay_until + 1, config.epochs), unit="epoch",
                       desc=f"train {self.run_dir.name}")
        try:
            with stop_on_signals(self.stop):  # SIGINT/SIGTERM: stop at the next step, with a checkpoint
                for epoch in range(self.start_epoch, config.epochs):
                    tic = time.perf_counter()
                    train_loss = self.train_one_epoch(epoch)
                    decision = self._roll(epoch, train_loss)
                    val_loss = self.evaluate()
                    improved = decision is None and val_loss < self.best_val
                    if improved:
                        self._remember_best(epoch, val_loss)
                    self.last_epoch = epoch
                    if epoch > self.replay_until:  # a replayed epoch was logged before the interruption
                        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                               "lr": lr_at(config, epoch), "seconds": time.perf_counter() - tic,
                               "rolled_back": decision is not None,
                               "restored_to": decision.key if decision is not None else "", "best": improved,
                               "bytes_written": self.bytes_written}
                        self.log.append(row)
                        if (epoch + 1) % config.checkpoint_every == 0 and epoch + 1 < config.epochs:
                            self.save()
                            row["bytes_written"] = self.bytes_written
                        if main:
                            self.bytes_written += rundir.write_log(self.log, self.run_dir)
                        if bar is not None:
                            bar.set_postfix(train=f"{train_loss:.3g}", val=f"{val_loss:.3g}",
                                            rollbacks=self.rollback.count)
                            bar.update(1)
                        elif callable(self.progress) and main:
                            self.progress(row)
                    if distributed.any_rank(self.stop.signum is not None, self.ctx):
                        raise _Stop
                    if config.early_stop and epoch - self.best_epoch >= config.early_stop:
                        break
        except BaseException as exc:
            self.save()  # an interruption loses nothing that a checkpoint can hold
            if isinstance(exc, _Stop):
                raise Interrupted(f"stopped by {self.stop.name} after epoch {self.last_epoch}; checkpoint in "
                                  f"{self.run_dir / rundir.LAST}; continue with --resume", self.stop.exit_code) from None
            raise
        finally:
            if bar is not None:
                bar.close()
        if config.recalibrate_bn and self.best_weights is not None:
            self.module.load_state_dict(self.best_weights)
            batches = [distributed.rank_slice(b, self.ctx)
                       for b in torch.split(torch.arange(len(self.train_data)), config.eval_batch_size)]
            inputs = (x for x, _ in self.train_data.epoch_batches(0, batches))
            recalibrate_batchnorm(self.network, self.module, inputs, self.device, config.amp)
            self._remember_best(self.best_epoch, self.best_val)
        self.save()
        result = TrainResult(self.run_dir, self.best_epoch, self.best_val, self.last_epoch + 1, self.rollback.count,
                             self.seconds(), self.bytes_written, self.log)
        if main:
            rundir.write_result({"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
                                 "epochs_run": result.epochs_run, "rollbacks": result.rollbacks,
                                 "seconds": result.seconds, "bytes_written": self.bytes_written,
                                 "n_train": len(self.train_data), "device": str(self.device),
                                 "world_size": self.ctx.world_size}, self.run_dir)
        return result


def build_network(config: TrainConfig, ctx: distributed.Context) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The run's model on its device (``module``: what is saved) and the ``network`` the steps
    run: BatchNorm over the global batch, channels-last and cuDNN autotuning on CUDA,
    DistributedDataParallel under torchrun, torch.compile when asked.  ``train`` and
    ``pydiff bench train`` both build it here, so the benchmark times what training runs."""
    module = distributed.sync_batchnorm(rundir.build_model(config), ctx).to(ctx.device)
    if ctx.device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)  # faster convolutions on tensor cores
        torch.backends.cudnn.benchmark = True  # the shapes repeat: let cuDNN pick its fastest kernels
    network = distributed.wrap(module, ctx)
    if config.compile != "off":
        network = torch.compile(network, mode=None if config.compile == "default" else config.compile)
    return module, network


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
        return OnlineSamples(arrays.problem, len(train), config.seed, device)
    return file_samples(arrays, train, device)


def _check_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> bool:
    """Whether to resume from last.pt; refuses an existing run without ``resume`` or of another config."""
    if not run_dir.parent.is_dir():
        raise ConfigError(f"directory {run_dir.parent} does not exist")
    has_run = (run_dir / rundir.CONFIG).is_file()
    if has_run and not resume:
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    if has_run:
        blocking = resumable(rundir.read_config(run_dir), config)
        if blocking:
            raise ConfigError(f"{run_dir} was trained with other options ({describe_differences(blocking)}); "
                              "use the same options or a new --out")
    return (run_dir / rundir.LAST).is_file()


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
    run_dir = Path(run_dir)
    ctx = distributed.setup(config.device)
    from_checkpoint = _check_run_dir(config, run_dir, resume)
    checkpoint = rundir.load_checkpoint(run_dir, ctx.device) if from_checkpoint else None
    if checkpoint is not None and checkpoint["resume_epoch"] + 1 > config.epochs:
        raise ConfigError(f"{run_dir} has trained {checkpoint['resume_epoch'] + 1} epochs already; "
                          f"ask for at least as many, not {config.epochs}")
    arrays = load_arrays(config, memory_budget(ctx.device) if config.stream == "auto" else
                         {"always": 0, "never": math.inf}[config.stream])
    if ctx.is_main:
        run_dir.mkdir(exist_ok=True)
        rundir.write_config(config, run_dir)

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

    module, network = build_network(config, ctx)
    trainer = Trainer(config, run_dir, module, network, make_optimizer(module, config, ctx.device),
                      train_data, val_data, ctx, progress, arrays.problem)
    if checkpoint is not None:
        trainer.resume(checkpoint)
    return trainer.fit()
