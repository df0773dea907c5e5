"""The training loop: epochs of steps, roll-back (Eq. 3), best-epoch selection, checkpoints.

:class:`Trainer` is handed a built model, optimiser and data and runs the epochs
(:meth:`~Trainer.train_one_epoch`, :meth:`~Trainer.evaluate` and the checkpoint apart); it knows
nothing of how they were built (:func:`pydiff.training.run.train` does that) nor of the file
formats (:mod:`pydiff.training.checkpoint`).

Fast on a GPU: the data set lives on the device, an epoch never waits for the host (losses are
summed on the device and read once per epoch).

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
from typing import Any, Callable, NamedTuple

import torch

from ..device import autocast
from ..errors import ConfigError, Interrupted
from ..problem import Problem
from ..signals import StopRequest, stop_on_signals
from . import checkpoint, distributed
from .batchnorm import recalibrate_batchnorm
from .config import TrainConfig
from .rollback import RollBack
from .snapshots import SnapshotPool
from .step import loss_function, lr_at, train_step


@dataclass
class TrainResult:
    """What a finished (or replayed) training run reports; result.json holds the same."""

    run_dir: Path
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    rollbacks: int
    seconds: float
    bytes_written: int = 0
    history: list = field(default_factory=list)


class RunModel(NamedTuple):
    """A run's model, built once (:func:`pydiff.training.run.build_network`): ``module`` as it is
    saved and restored, ``network`` as the steps run it (DDP-wrapped or compiled; ``module``
    itself in one process, not compiled)."""

    module: torch.nn.Module
    network: torch.nn.Module


class HeldOut(NamedTuple):
    """One pass over the held-out samples: ``loss``, the mean of Eq. 2 (what picks the best
    epoch), and ``mean_residual``, the mean of |prediction - field| over their pixels (Table 2's
    first column, before the end-of-run BatchNorm recalibration unless ``recalibrate_each_epoch``
    made one before it): the error-against-minutes curve of a run is log.csv's
    ``val_mean_residual`` against its cumulative ``seconds``."""

    loss: float
    mean_residual: float


class _Stop(Exception):
    """A stop signal arrived; raised between steps and turned into :class:`Interrupted`."""


class Trainer:
    """Runs the epochs of one training run on built objects; every argument by keyword.

    Args:
        config: the run's configuration (epochs, batch size, roll-back rule, ...).
        run_dir: where files go (rank 0 only).
        model: the network, already on the device: as it is saved and restored, and as the steps
            run it (:class:`RunModel`).
        optimizer: its optimiser.
        train_data: where the training batches come from (:mod:`pydiff.datasets.batches`: the fixed
            training set on the device or read from its file, or fresh exact samples).
        val_data: the held-out samples that pick the best epoch, likewise.
        ctx: this process's place in a data-parallel run.
        progress: True (a progress bar), False, or a callable given each epoch's log row.
        problem: the problem the data poses, recorded with the saved model.

    A run without labels (``config.labels`` 0) picks its best epoch on the held-out physics loss
    alone: the held-out fields are hidden from that loss, and measure only the logged mean residual.
    """

    def __init__(self, *, config: TrainConfig, run_dir, model: RunModel, optimizer: torch.optim.Optimizer,
                 train_data, val_data, ctx: distributed.Context, progress: bool | Callable = True,
                 problem: Problem | None = None) -> None:
        self.config, self.run_dir, self.problem = config, Path(run_dir), problem
        self.module, self.network = model
        self.optimizer, self.ctx = optimizer, ctx
        self.train_data = train_data
        self.val_data = val_data
        self.progress = progress
        self.device = ctx.device
        self.loss_sum = loss_function(config, problem)
        self.pixels = train_data.pixels
        self.pool = SnapshotPool(self.module, optimizer)
        self.rollback = RollBack(config.rollback, config.rollback_C, config.rollback_m, config.rollback_s)
        self.shuffle = torch.Generator().manual_seed(config.seed)
        self.log: list[dict] = []
        self.start_epoch, self.replay_until, self.last_epoch = 0, -1, -1
        self.best_val, self.best_epoch, self.best_saved = math.inf, -1, True
        self.best_weights: dict[str, Any] | None = None
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
    def evaluate(self) -> HeldOut:
        """The held-out loss and mean residual (eval mode; one host sync)."""
        n = len(self.val_data)
        if n == 0:
            return HeldOut(math.nan, math.nan)
        self.network.eval()
        total = torch.zeros(2, device=self.device)  # loss, absolute residual: one all-reduce, one sync
        hide_fields = self.config.labels == 0  # then the loss that selects is the physics loss alone
        for x, y in self.val_data.epoch_batches(0, self._eval_batches(n)):
            with autocast(self.device, self.config.amp):
                prediction = self.network(x).float()
            total[0] += self.loss_sum(prediction, torch.full_like(y, math.nan) if hide_fields else y, x)
            total[1] += (prediction - y).abs().sum()
        distributed.all_reduce_sum(total, self.ctx)
        loss, residual = (float(t) / (n * self.pixels) for t in total)
        return HeldOut(loss, residual)

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

    def checkpoint_state(self) -> dict:
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
            self.bytes_written += checkpoint.save_model(self.best_weights, self.run_dir, self.best_epoch, self.best_val,
                                                    self.problem)
            self.best_saved = True
        self.bytes_written += checkpoint.save_checkpoint(self.checkpoint_state(), self.run_dir)

    def resume(self, saved: dict) -> None:
        """Continue from a checkpoint: load state e, its bookkeeping, and replay up to c."""
        state, meta = saved["state"], saved["meta"]
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rollback.load_state_dict(meta["rollback"])
        self.shuffle.set_state(meta["shuffle_rng"])
        torch.set_rng_state(meta["torch_rng"])
        random.setstate(meta["python_rng"])
        if self.device.type == "cuda" and meta["cuda_rng"] is not None:
            torch.cuda.set_rng_state(meta["cuda_rng"], self.device)
        e = saved["replay_from"]
        self.pool.capture(e, meta)
        best = saved["best"]
        self.best_weights, self.best_epoch, self.best_val = best["model"], best["epoch"], best["val_loss"]
        self.log = list(saved["log"])
        self.start_epoch, self.replay_until = e + 1, saved["resume_epoch"]
        self.last_epoch = e
        self.seconds_before, self.bytes_written = saved["seconds"], saved["bytes_written"]
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
                    if config.recalibrate_each_epoch:  # selected as it will be served: dropout's variance shift undone
                        self._recalibrate(config.recalibrate_each_epoch)
                    val_loss, val_residual = self.evaluate()
                    improved = decision is None and val_loss < self.best_val
                    if improved:
                        self._remember_best(epoch, val_loss)
                    self.last_epoch = epoch
                    if epoch > self.replay_until:  # a replayed epoch was logged before the interruption
                        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                               "val_mean_residual": val_residual,
                               "lr": lr_at(config, epoch), "seconds": time.perf_counter() - tic,
                               "rolled_back": decision is not None,
                               "restored_to": decision.key if decision is not None else "", "best": improved,
                               "bytes_written": self.bytes_written}
                        self.log.append(row)
                        if (epoch + 1) % config.checkpoint_every == 0 and epoch + 1 < config.epochs:
                            self.save()
                            row["bytes_written"] = self.bytes_written
                        if main:
                            self.bytes_written += checkpoint.write_log(self.log, self.run_dir)
                        if bar is not None:
                            bar.set_postfix(train=f"{train_loss:.3g}", val=f"{val_loss:.3g}",
                                            rollbacks=self.rollback.count)
                            bar.update(1)
                        elif callable(self.progress) and main:
                            self.progress(row)
                    if not math.isfinite(val_loss) and self.best_epoch < 0:
                        # NaN weights stay NaN (and a roll-back has no finite state to return to):
                        # training on would only spend the epochs and end with no model to select
                        raise ConfigError(f"the loss is {'NaN' if math.isnan(val_loss) else 'infinite'} from epoch "
                                          f"{epoch}: lower --lr (now {config.lr:g}) and train into a new --out")
                    if distributed.any_rank(self.stop.signum is not None, self.ctx):
                        raise _Stop
                    if config.early_stop and epoch - self.best_epoch >= config.early_stop:
                        break
        except BaseException as exc:
            try:
                self.save()  # an interruption loses nothing that a checkpoint can hold
            except Exception as failed:  # the error that stopped training stays the one raised
                if isinstance(exc, _Stop):
                    raise  # no checkpoint to continue from: the save's error says why
                note = f"and the checkpoint after it could not be saved: {type(failed).__name__}: {failed}"
                if hasattr(exc, "add_note"):  # Python 3.11 and later
                    exc.add_note(note)
                else:  # 3.10: the save's failure chained as the cause, the error itself still raised
                    exc.__cause__ = failed
            if isinstance(exc, _Stop):
                if self.last_epoch < 0:  # no epoch ended: nothing was saved, a resume starts over
                    raise Interrupted(f"stopped by {self.stop.name} during the first epoch, before any checkpoint",
                                      self.stop.exit_code, "continue with --resume (it starts over)") from None
                raise Interrupted(f"stopped by {self.stop.name} after epoch {self.last_epoch}; checkpoint in "
                                  f"{self.run_dir / checkpoint.LAST}", self.stop.exit_code,
                                  "continue with --resume") from None
            raise
        finally:
            if bar is not None:
                bar.close()
        # with recalibrate_each_epoch the best weights carry their statistics already, those of
        # the same inputs: the end-of-run pass would only compute them again
        if config.recalibrate_bn and not config.recalibrate_each_epoch and self.best_weights is not None:
            self._recalibrate_best()
        self.save()
        return TrainResult(self.run_dir, self.best_epoch, self.best_val, self.last_epoch + 1, self.rollback.count,
                           self.seconds(), self.bytes_written, self.log)

    def _recalibrate_best(self) -> None:
        """The best weights' BatchNorm statistics recomputed over the training inputs, dropout off
        (:func:`~pydiff.training.batchnorm.recalibrate_batchnorm`)."""
        assert self.best_weights is not None  # fit calls this only once an epoch has set them
        self.module.load_state_dict(self.best_weights)
        self._recalibrate()
        self._remember_best(self.best_epoch, self.best_val)

    def _recalibrate(self, samples: int | None = None) -> None:
        """The BatchNorm statistics of the current weights recomputed over the first ``samples``
        training inputs (None: all of them), dropout off."""
        n = len(self.train_data) if samples is None else min(samples, len(self.train_data))
        batches = [distributed.rank_slice(b, self.ctx) for b in torch.split(torch.arange(n), self.config.eval_batch_size)]
        inputs = (x for x, _ in self.train_data.epoch_batches(0, batches))
        recalibrate_batchnorm(self.network, self.module, inputs, self.device, self.config.amp)
