"""Training states at epoch boundaries, kept in reusable buffers on the training device.

Roll-back (Eq. 3) needs the states of the last s + 1 epochs, and a checkpoint needs one state at
an epoch boundary.  :class:`SnapshotPool` keeps each as a list of tensors (model state_dict,
then Adam's moments and step counts) in preallocated buffers: capturing a state is one in-place
device copy, with no allocation and no ``copy.deepcopy`` after the first few epochs.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class SnapshotPool:
    """States keyed by the epoch at whose end they were captured, each with a ``meta`` dict
    (the training loop's bookkeeping at that moment)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.model, self.optimizer = model, optimizer
        self.entries: dict[int, tuple[list[torch.Tensor], dict]] = {}
        self._free: list[list[torch.Tensor]] = []

    # The live tensors, in a fixed order: the model's state_dict, then per parameter its
    # optimiser state (sorted keys).  Non-tensor entries of a state_dict (neuraloperator keeps a
    # "_metadata" dict there) are constants of the architecture: not copied, passed through.
    def _model_tensors(self) -> list[torch.Tensor]:
        return [v for v in self.model.state_dict(keep_vars=False).values() if torch.is_tensor(v)]

    def _optimizer_tensors(self) -> list[torch.Tensor]:
        tensors = []
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                state = self.optimizer.state.get(p, {})
                tensors += [state[k] for k in sorted(state) if torch.is_tensor(state[k])]
        return tensors

    def capture(self, key: int, meta: dict) -> None:
        """Copy the current model and optimiser state into a buffer under ``key``."""
        live = self._model_tensors() + self._optimizer_tensors()
        buffers = self._free.pop() if self._free else None
        if buffers is None or len(buffers) != len(live):
            buffers = [torch.empty_like(t) for t in live]
        with torch.no_grad():
            for buffer, tensor in zip(buffers, live):
                buffer.copy_(tensor)
        self.entries[key] = (buffers, meta)  # registered only once complete

    def restore(self, key: int, optimizer: bool = True) -> None:
        """Copy state ``key`` back into the model and optimiser; ``optimizer=False`` zeroes the
        optimiser's moments and step counts instead (a fresh Adam)."""
        if key not in self.entries:
            raise KeyError(f"no snapshot of epoch {key} is kept")
        buffers = self.entries[key][0]
        model_live, optimizer_live = self._model_tensors(), self._optimizer_tensors()
        with torch.no_grad():
            for buffer, tensor in zip(buffers, model_live):
                tensor.copy_(buffer)
            for buffer, tensor in zip(buffers[len(model_live) :], optimizer_live):
                tensor.copy_(buffer) if optimizer else tensor.zero_()

    def retain(self, keys) -> None:
        """Drop every state whose key is not in ``keys`` (its buffers are reused)."""
        for key in [k for k in self.entries if k not in keys]:
            self._free.append(self.entries.pop(key)[0])

    def meta(self, key: int) -> dict:
        return self.entries[key][1]

    def state(self, key: int) -> dict:
        """State ``key`` as ``{"model": state_dict, "optimizer": optimizer state_dict}`` (views of
        the buffers, for saving)."""
        buffers = iter(self.entries[key][0])
        model = OrderedDict((name, next(buffers) if torch.is_tensor(value) else value)
                            for name, value in self.model.state_dict().items())
        saved = self.optimizer.state_dict()
        for index in sorted(saved["state"]):
            entry = saved["state"][index]
            saved["state"][index] = {k: next(buffers) if torch.is_tensor(entry[k]) else entry[k]
                                     for k in sorted(entry)}
        return {"model": model, "optimizer": saved}
