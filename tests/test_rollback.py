"""Roll-back (Eq. 3) on synthetic loss sequences: restores the right state, or does nothing."""

import copy

import pytest
import torch

from pydiff.train import RollBack


def run_sequence(losses, rule="paper", **kwargs):
    """Feed ``losses`` to a RollBack over a real model and optimiser whose state encodes the epoch.

    Returns the RollBack and, per epoch, the epoch whose state was restored (or None).
    """
    model = torch.nn.Linear(1, 1, bias=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    rollback = RollBack(rule, **kwargs)
    restored = []
    for epoch, loss in enumerate(losses):
        model.weight.grad = torch.ones_like(model.weight)
        optimizer.step()  # Adam state now holds step count epoch + 1
        with torch.no_grad():
            model.weight.fill_(float(epoch))  # the state "is" the epoch

        def snapshot():
            return {"model": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(optimizer.state_dict())}

        state = rollback.update(loss, snapshot)
        if state is None:
            restored.append(None)
        else:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
            epoch_of_state = round(model.weight.item())
            adam_steps = int(optimizer.state_dict()["state"][0]["step"])
            assert adam_steps == epoch_of_state + 1, "optimiser state must come from the same epoch"
            restored.append(epoch_of_state)
    return rollback, restored


def smooth(n, start=1.0):
    return [start * 0.97**k for k in range(n)]


def test_no_jump_no_rollback():
    rollback, restored = run_sequence(smooth(60))
    assert rollback.count == 0 and restored == [None] * 60
    assert len(rollback.losses) == 60


def test_jump_restores_epoch_n_minus_s():
    losses = smooth(30) + [50.0] + smooth(5, 0.4)
    rollback, restored = run_sequence(losses, C=5, m=20, s=5)
    # The jump comes after epoch n = 29: the state of epoch n - s = 24 comes back.
    assert restored[30] == 24 and rollback.count == 1
    assert all(r is None for i, r in enumerate(restored) if i != 30)
    assert len(rollback.losses) == 25 + 5  # epochs 25..29 and the jump dropped; five new ones kept


def test_threshold_is_C_times_the_mean_of_the_last_m_losses():
    base = [1.0] * 10 + [3.0] * 20  # mean of the last 20 is 3
    _, below = run_sequence(base + [14.9], C=5, m=20)
    _, above = run_sequence(base + [15.1], C=5, m=20)
    assert below[-1] is None and above[-1] == 29 - 5


def test_a_nan_loss_is_rolled_back():
    _, restored = run_sequence(smooth(10) + [float("nan")], s=2)
    assert restored[-1] == 7


def test_off_never_rolls_back():
    rollback, restored = run_sequence(smooth(30) + [1e6], rule="off")
    assert rollback.count == 0 and restored[-1] is None


def test_code_rule_restores_the_last_backup():
    # Mean absolute change is small; a change 100x larger than it triggers, back to the backup of epoch 25.
    losses = smooth(28) + [5.0]
    rollback, restored = run_sequence(losses, rule="code", m=20, s=5)
    assert restored[-1] == 25 and rollback.C == 10


def test_state_dict_round_trip():
    rollback, _ = run_sequence(smooth(12), s=3)
    clone = RollBack("paper", s=3)
    clone.load_state_dict(rollback.state_dict())
    assert clone.losses == rollback.losses and len(clone.snapshots) == 4 and clone.count == 0
    with pytest.raises(KeyError):
        clone.load_state_dict({})
