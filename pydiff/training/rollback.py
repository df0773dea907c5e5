"""Roll-back (Eq. 3) and the original code's variant, as pure bookkeeping: no tensors here.

After each epoch the trainer calls :meth:`RollBack.update` with the epoch's training loss.  The
answer is ``None`` (the epoch is kept) or a :class:`Restore` naming the *key* of an earlier
state.  A key is the epoch at whose end a state was captured; the trainer keeps the states of
the keys in :meth:`RollBack.live_keys` (and of the current state) in a
:class:`~pydiff.training.snapshots.SnapshotPool`, and nothing else.

Rules:

- ``paper`` (Eq. 3): if the epoch's loss exceeds ``C`` times the mean of the last ``m`` kept
  losses (or is not finite), restore the state of ``s`` epochs before the last kept one, model
  and optimiser; the restored-over epochs leave the loss history.  C = 5, m = 20, s = 5.
- ``code`` (DiffSolve.jl): once ``m + 1`` losses are kept, if the loss *rose* by more than ``C``
  times the mean absolute change over the last ``m`` changes, restore the latest backup; a
  backup of the current state is taken after every ``s``-th epoch.  Only the weights come back:
  the original reloads the network from its BSON backup, which gives Flux's Adam fresh state,
  so the optimiser moments restart from zero.  The rejected loss is dropped; the history before
  it stays.  C = 10, m = 20, s = 5.
- ``off``: never restores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RULES = ("paper", "code", "off")
RULE_C = {"paper": 5.0, "code": 10.0}  # each rule's threshold factor C when none is given


@dataclass(frozen=True)
class Restore:
    """Restore the state captured under ``key``; ``optimizer=False``: reset its moments instead."""

    key: int
    optimizer: bool = True


class RollBack:
    """Decide after each epoch whether to keep it or restore an earlier state (see module doc)."""

    def __init__(self, rule: str = "paper", C: float | None = None, m: int = 20, s: int = 5) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown roll-back rule {rule!r}; choose one of {', '.join(RULES)}")
        self.rule, self.m, self.s = rule, m, s
        self.C = C if C is not None else RULE_C.get(rule, RULE_C["paper"])
        self.losses: list[float] = []  # kept epochs' training losses
        self.kept: list[tuple[int, int]] = []  # paper: (position in losses, key) of the last s+1 kept
        self.backup: tuple[int, int] | None = None  # code: (position, key)
        self.count = 0

    def _jump(self, loss: float) -> bool:
        if self.rule == "paper":
            return bool(self.losses) and loss > self.C * float(np.mean(self.losses[-self.m :]))
        if self.rule == "code" and len(self.losses) > self.m:
            changes = np.abs(np.diff(self.losses[-(self.m + 1) :]))
            return loss - self.losses[-1] > self.C * float(np.mean(changes))
        return False

    def update(self, loss: float, epoch: int) -> Restore | None:
        """Record epoch ``epoch``'s training ``loss``; None keeps it, a :class:`Restore` rolls back.

        A kept epoch's state gets the key ``epoch``.
        """
        restore = None
        if self.rule != "off" and (not math.isfinite(loss) or self._jump(loss)):
            if self.rule == "paper" and self.kept:
                position, key = self.kept[0]
                del self.losses[position + 1 :]
                self.kept = [(position, key)]
                restore = Restore(key)
            elif self.rule == "code" and self.backup is not None:
                restore = Restore(self.backup[1], optimizer=False)
        if restore is not None:
            self.count += 1
        else:
            self.losses.append(loss)
            if self.rule == "paper":
                self.kept = [*self.kept, (len(self.losses) - 1, epoch)][-(self.s + 1) :]
        if self.rule == "code" and (epoch + 1) % max(self.s, 1) == 0:
            # DiffSolve.jl backs up after the roll-back check, whatever it decided.
            self.backup = (len(self.losses) - 1, restore.key if restore else epoch)
        return restore

    def live_keys(self) -> set[int]:
        """Keys whose states a later :meth:`update` may ask to restore."""
        if self.rule == "paper":
            return {key for _, key in self.kept}
        if self.rule == "code" and self.backup is not None:
            return {self.backup[1]}
        return set()

    def state_dict(self) -> dict:
        return {"rule": self.rule, "losses": list(self.losses), "kept": [list(k) for k in self.kept],
                "backup": list(self.backup) if self.backup else None, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        if state["rule"] != self.rule:
            raise ValueError(f"roll-back state of rule {state['rule']!r} given to rule {self.rule!r}")
        self.losses = list(state["losses"])
        self.kept = [tuple(k) for k in state["kept"]]
        self.backup = tuple(state["backup"]) if state["backup"] else None
        self.count = state["count"]
