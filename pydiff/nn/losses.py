"""The losses, by name: the 2021 paper's weighted loss (Eq. 1-2) and the 2024 code's.

    L = < exp(-(1 - y) / w) * |y_hat - y| ** alpha >   (mean over pixels and batch)

High field values (near the sources, rare) get weight ~1, low ones ~exp(-1/w): a small ``w``
emphasises the sources; ``w`` = 1000 is nearly unweighted.  Every loss is a weight times a
penalty of the difference (``|d| ** alpha`` or Huber's), so each weight comes in each penalty.
"""

from __future__ import annotations

from typing import Callable

import torch


def penalty(difference: torch.Tensor, alpha, delta: float = 0.1) -> torch.Tensor:
    """The per-pixel penalty of a difference: ``|d| ** alpha`` for alpha 1, 2, 4, or for
    ``"huber"`` Huber's ``d**2 / 2`` below ``delta`` and ``delta * (|d| - delta / 2)`` above
    (quadratic near zero, linear in the tails: robust to the few large errors at the sources)."""
    if alpha == "huber":
        return torch.nn.functional.huber_loss(difference, torch.zeros_like(difference), reduction="none", delta=delta)
    return difference.abs().pow(alpha)


def _reduce(terms: torch.Tensor, reduction: str) -> torch.Tensor:
    return terms.sum() if reduction == "sum" else terms.mean()


def weighted_loss(prediction: torch.Tensor, target: torch.Tensor, alpha, w: float,
                  reduction: str = "mean", delta: float = 0.1) -> torch.Tensor:
    """Eq. 1-2: mean (or sum) of ``exp(-(1 - target) / w) * |prediction - target| ** alpha``.

    Args:
        prediction, target: tensors of the same shape (batch, 1, L, L); target in [0, 1].
        alpha: 1 (MAE), 2 (MSE), 4, or "huber" (Huber's penalty with threshold ``delta``).
        w: weight scale, > 0.
        reduction: "mean" (Eq. 2) or "sum" (what data-parallel training divides by the global
            batch itself, so that a rank with an uneven or empty share still adds up exactly).
        delta: the Huber threshold, in field units (only for alpha "huber").

    Returns:
        A scalar tensor.
    """
    weight = torch.exp(-(1.0 - target) / w)
    return _reduce(weight * penalty(prediction - target, alpha, delta), reduction)


# --- The 2024 code's losses (CustomLosses/ in jquetzalcoatl/DeepDiffusionSolver) ---------------


def exponential_loss_2024(prediction: torch.Tensor, target: torch.Tensor, alpha=1, w: float = 1.0,
                          reduction: str = "mean", delta: float = 0.1) -> torch.Tensor:
    """``ExponentialMeanError``: mean of ``exp(-|1 - prediction| / w) * |prediction - target| ** alpha``.

    Unlike Eq. 1, the 2024 code weights by the *prediction*, not the target, and the weight is
    differentiated too.
    """
    weight = torch.exp(-(1.0 - prediction).abs() / w)
    return _reduce(weight * penalty(prediction - target, alpha, delta), reduction)


def tanh_loss_2024(prediction: torch.Tensor, target: torch.Tensor, alpha=1, w: float = 1.0,
                   w2: float = 2000.0, reduction: str = "mean", delta: float = 0.1) -> torch.Tensor:
    """``HyperbolicTangentMeanError``: mean of ``(1 + w2 * tanh(w * target)) * |prediction - target| ** alpha``:
    a step that weighs every pixel with a field (target > 0) about ``w2`` times more than the
    empty background."""
    weight = 1.0 + w2 * torch.tanh(w * target)
    return _reduce(weight * penalty(prediction - target, alpha, delta), reduction)


def relative_l2_loss(prediction: torch.Tensor, target: torch.Tensor, alpha=2, w: float = 1.0,
                     reduction: str = "mean", delta: float = 0.1) -> torch.Tensor:
    """The operator-learning field's loss (the FNO paper's ``LpLoss``): per sample
    ``|prediction - target|_2 / |target|_2``, averaged over the batch; no weights, no units (a
    field of any scale, such as Darcy flow's ``u`` ~ 0.01).  ``alpha``, ``w`` and ``delta`` are
    not used.  With ``reduction="sum"`` each sample counts as many times as it has pixels, so
    that the trainer's division by the batch's pixels gives the mean over samples."""
    difference = (prediction - target).flatten(1).norm(dim=1)
    per_sample = difference / target.flatten(1).norm(dim=1).clamp_min(1e-30)
    return per_sample.sum() * prediction[0].numel() if reduction == "sum" else per_sample.mean()


# name -> (function, penalty).  Eq. 1-2 weighs by the target, exp(-(1 - y) / w); "exp-*" is the
# 2024 code's exponential weight on the prediction; "tanh-*" its step weight 1 + w2 tanh(w y)
# (w2 = 2000 by default); "rel-L2" the relative L2 norm per sample (the FNO paper's, Darcy flow).  "*-Huber" puts Huber's penalty (threshold delta) under the same
# weights: the 2024 paper cites Huber's loss; its public code does not say with which threshold.
LOSSES: dict[str, tuple[Callable[..., torch.Tensor], int | str]] = {  # name -> (loss, its penalty's alpha)
    "MAE": (weighted_loss, 1), "MSE": (weighted_loss, 2), "fourth-power": (weighted_loss, 4),
    "Huber": (weighted_loss, "huber"),
    "exp-MAE": (exponential_loss_2024, 1), "exp-MSE": (exponential_loss_2024, 2),
    "exp-Huber": (exponential_loss_2024, "huber"),
    "tanh-MAE": (tanh_loss_2024, 1), "tanh-MSE": (tanh_loss_2024, 2), "tanh-Huber": (tanh_loss_2024, "huber"),
    "rel-L2": (relative_l2_loss, 2),
}


def make_loss(name: str, w: float, w2: float = 2000.0, reduction: str = "mean", delta: float = 0.1):
    """The loss ``name`` as ``loss(prediction, target)`` with its weights bound."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    function, alpha = LOSSES[name]
    extra = {"w2": w2} if function is tanh_loss_2024 else {}
    return lambda prediction, target: function(prediction, target, alpha=alpha, w=w, reduction=reduction,
                                               delta=delta, **extra)


def alpha_of(name: str):
    """Penalty of a loss name: its exponent (MAE 1, MSE 2, fourth-power 4, likewise for the 2024
    ones) or "huber"."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name][1]
