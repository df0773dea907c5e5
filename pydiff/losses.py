"""The paper's weighted loss (Eq. 1-2).

    L = < exp(-(1 - y) / w) * |y_hat - y| ** alpha >   (mean over pixels and batch)

High field values (near the sources, rare) get weight ~1, low ones ~exp(-1/w): a small ``w``
emphasises the sources; ``w`` = 1000 is nearly unweighted.
"""

from __future__ import annotations

import torch

ALPHAS = {"MAE": 1, "MSE": 2, "fourth-power": 4}


def alpha_of(name: str) -> int:
    """Exponent of a loss name (MAE 1, MSE 2, fourth-power 4)."""
    try:
        return ALPHAS[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(ALPHAS)}") from None


def weighted_loss(prediction: torch.Tensor, target: torch.Tensor, alpha: int, w: float,
                  reduction: str = "mean") -> torch.Tensor:
    """Eq. 1-2: mean (or sum) of ``exp(-(1 - target) / w) * |prediction - target| ** alpha``.

    Args:
        prediction, target: tensors of the same shape (batch, 1, L, L); target in [0, 1].
        alpha: 1 (MAE), 2 (MSE) or 4.
        w: weight scale, > 0.
        reduction: "mean" (Eq. 2) or "sum" (what data-parallel training divides by the global
            batch itself, so that a rank with an uneven or empty share still adds up exactly).

    Returns:
        A scalar tensor.
    """
    weight = torch.exp(-(1.0 - target) / w)
    terms = weight * (prediction - target).abs().pow(alpha)
    return terms.sum() if reduction == "sum" else terms.mean()
