"""Eq. 1-2 against a hand computation."""

import math

import pytest
import torch

from pydiff.nn.losses import alpha_of, weighted_loss

Y = [0.0, 0.5, 1.0, 0.25]
Y_HAT = [0.1, 0.3, 1.0, 0.75]


@pytest.mark.parametrize("alpha", [1, 2, 4])
@pytest.mark.parametrize("w", [1.0, 100.0])
def test_against_hand_computation(alpha, w):
    expected = sum(math.exp(-(1 - y) / w) * abs(p - y) ** alpha for y, p in zip(Y, Y_HAT)) / 4
    y = torch.tensor(Y).reshape(2, 1, 1, 2)
    y_hat = torch.tensor(Y_HAT).reshape(2, 1, 1, 2)
    assert float(weighted_loss(y_hat, y, alpha, w)) == pytest.approx(expected, rel=1e-6)


def test_one_value_by_hand():
    # w = 1, alpha = 2: pixel (y=0, y_hat=0.1) weighs e^-1 * 0.01; pixel (y=1, y_hat=0.5) weighs 1 * 0.25.
    loss = weighted_loss(torch.tensor([0.1, 0.5]), torch.tensor([0.0, 1.0]), 2, 1.0)
    assert float(loss) == pytest.approx((math.exp(-1) * 0.01 + 0.25) / 2, rel=1e-6)


def test_names():
    assert (alpha_of("MAE"), alpha_of("MSE"), alpha_of("fourth-power")) == (1, 2, 4)
    with pytest.raises(ValueError, match="unknown loss"):
        alpha_of("cubic")
    assert alpha_of("tanh-Huber") == "huber"


def test_the_2024_losses_by_hand():
    from pydiff.nn.losses import exponential_loss_2024, tanh_loss_2024

    prediction = torch.tensor([[0.5, 1.0], [0.0, 0.2]])
    target = torch.tensor([[0.0, 0.5], [0.0, 0.7]])
    # exp(-|1 - p| / 2) * |p - t|: 0.5 e^-0.25, 0.5, 0, 0.5 e^-0.4
    expected = (0.5 * math.exp(-0.25) + 0.5 + 0.5 * math.exp(-0.4)) / 4
    assert exponential_loss_2024(prediction, target, alpha=1, w=2.0).item() == pytest.approx(expected, rel=1e-6)
    # (1 + 2000 tanh(3 t)) * (p - t)^2: 0.25, (1 + 2000 tanh 1.5) 0.25, 0, (1 + 2000 tanh 2.1) 0.25
    expected = 0.25 * (1 + (1 + 2000 * math.tanh(1.5)) + (1 + 2000 * math.tanh(2.1))) / 4
    assert tanh_loss_2024(prediction, target, alpha=2, w=3.0).item() == pytest.approx(expected, rel=1e-6)
    assert tanh_loss_2024(prediction, target, reduction="sum").item() == pytest.approx(
        4 * tanh_loss_2024(prediction, target).item(), rel=1e-6)


def test_huber_penalty_by_hand():
    from pydiff.nn.losses import make_loss, penalty

    d = torch.tensor([0.05, -0.05, 0.3, -1.0])
    # delta 0.1: 0.05^2 / 2 twice, then 0.1 * (0.3 - 0.05) and 0.1 * (1 - 0.05)
    expected = [0.00125, 0.00125, 0.025, 0.095]
    assert penalty(d, "huber", 0.1).tolist() == pytest.approx(expected, rel=1e-6)
    prediction = torch.tensor([0.35, 1.0])
    target = torch.tensor([0.05, 0.0])
    # tanh-Huber, w = 1, w2 = 10: (1 + 10 tanh 0.05) * 0.025 + 1 * 0.095, mean of two
    expected = ((1 + 10 * math.tanh(0.05)) * 0.025 + 0.095) / 2
    assert make_loss("tanh-Huber", 1.0, 10.0, delta=0.1)(prediction, target).item() == pytest.approx(expected, rel=1e-6)
    # Huber with a large threshold is half the squared error under the same weights
    assert make_loss("Huber", 1.0, delta=10.0)(prediction, target).item() == pytest.approx(
        make_loss("MSE", 1.0)(prediction, target).item() / 2, rel=1e-6)
