"""Roll-back (Eq. 3 and the original code's rule) on synthetic loss sequences, and the snapshot
pool that carries it out on a real model and optimiser."""

import pytest
import torch

from pydiff.training.rollback import Restore, RollBack
from pydiff.training.snapshots import SnapshotPool


def run_sequence(losses, rule="paper", **kwargs):
    """Feed ``losses`` to a RollBack; a real model and Adam whose state encodes the epoch carry
    out its decisions through a SnapshotPool, as the trainer does.

    Returns the RollBack, per epoch the epoch whose state was restored (or None), and the pool.
    """
    model = torch.nn.Linear(1, 1, bias=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    rollback = RollBack(rule, **kwargs)
    pool = SnapshotPool(model, optimizer)
    restored = []
    for epoch, loss in enumerate(losses):
        model.weight.grad = torch.ones_like(model.weight)
        optimizer.step()  # Adam's step count is now epoch + 1 (of the state that went on)
        with torch.no_grad():
            model.weight.fill_(float(epoch))  # the state "is" the epoch
        decision = rollback.update(loss, epoch)
        if decision is None:
            pool.retain(rollback.live_keys() - {epoch})
            pool.capture(epoch, {"epoch": epoch})
            restored.append(None)
        else:
            pool.restore(decision.key, optimizer=decision.optimizer)
            pool.retain(rollback.live_keys() | {decision.key})
            restored.append(round(model.weight.item()))
            steps = int(optimizer.state_dict()["state"][0]["step"])
            if decision.optimizer:
                assert steps == decision.key + 1, "optimiser state must come from the same epoch"
            else:
                assert steps == 0 and float(optimizer.state_dict()["state"][0]["exp_avg"]) == 0
        assert set(pool.entries) <= rollback.live_keys() | {epoch if decision is None else decision.key}
    return rollback, restored, pool


def smooth(n, start=1.0):
    return [start * 0.97**k for k in range(n)]


def test_no_jump_no_rollback_and_only_s_plus_1_states_kept():
    rollback, restored, pool = run_sequence(smooth(60))
    assert rollback.count == 0 and restored == [None] * 60
    assert len(rollback.losses) == 60
    assert sorted(pool.entries) == list(range(54, 60))  # s + 1 = 6 states, reusing buffers


def test_jump_restores_epoch_n_minus_s():
    losses = smooth(30) + [50.0] + smooth(5, 0.4)
    rollback, restored, _ = run_sequence(losses, C=5, m=20, s=5)
    # The jump comes after epoch n = 29: the state of epoch n - s = 24 comes back.
    assert restored[30] == 24 and rollback.count == 1
    assert all(r is None for i, r in enumerate(restored) if i != 30)
    assert len(rollback.losses) == 25 + 5  # epochs 25..29 and the jump dropped; five new ones kept


def test_two_jumps_in_a_row_restore_the_same_state():
    losses = smooth(30) + [50.0, 50.0] + smooth(3, 0.4)
    rollback, restored, _ = run_sequence(losses, C=5, m=20, s=5)
    assert restored[30] == 24 and restored[31] == 24 and rollback.count == 2


def test_threshold_is_C_times_the_mean_of_the_last_m_losses():
    base = [1.0] * 10 + [3.0] * 20  # mean of the last 20 is 3
    _, below, _ = run_sequence(base + [14.9], C=5, m=20)
    _, above, _ = run_sequence(base + [15.1], C=5, m=20)
    assert below[-1] is None and above[-1] == 29 - 5


def test_a_nan_loss_is_rolled_back():
    _, restored, _ = run_sequence(smooth(10) + [float("nan")], s=2)
    assert restored[-1] == 7


def test_off_never_rolls_back_and_keeps_no_state():
    rollback, restored, pool = run_sequence(smooth(30) + [1e6], rule="off")
    assert rollback.count == 0 and restored[-1] is None and rollback.live_keys() == set()


def test_code_rule_restores_the_last_backup_with_fresh_adam():
    # Backups after every 5th epoch (epochs 4, 9, ..., 24); a rise 100x the mean change triggers.
    losses = smooth(28) + [5.0]
    rollback, restored, _ = run_sequence(losses, rule="code", m=20, s=5)
    assert restored[-1] == 24 and rollback.C == 10
    assert len(rollback.losses) == 28  # only the rejected loss is dropped


def test_code_rule_needs_m_plus_1_losses_and_a_rise():
    # 20 kept losses are not enough to judge; a fall of any size never triggers.
    _, early, _ = run_sequence(smooth(20) + [5.0], rule="code")
    _, fall, _ = run_sequence(smooth(30) + [1e-9], rule="code")
    assert early[-1] is None and fall[-1] is None


def test_state_dict_round_trip():
    rollback, _, _ = run_sequence(smooth(12), s=3)
    clone = RollBack("paper", s=3)
    clone.load_state_dict(rollback.state_dict())
    assert clone.losses == rollback.losses and clone.live_keys() == {8, 9, 10, 11} and clone.count == 0
    assert clone.update(1e9, 12) == Restore(8)
    with pytest.raises(KeyError):
        clone.load_state_dict({"rule": "paper"})
    with pytest.raises(ValueError, match="rule"):
        RollBack("code").load_state_dict(rollback.state_dict())


def test_restoring_a_state_that_is_not_kept_is_an_error():
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.Adam(model.parameters())
    with pytest.raises(KeyError, match="epoch 3"):
        SnapshotPool(model, optimizer).restore(3)
