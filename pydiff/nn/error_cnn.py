"""A learned error model: a small CNN that reads a prediction and says how wrong it is.

Input: (batch, C, L, L), the channels of :func:`pydiff.evaluation.learned_error.features` (the
source image, the prediction, its physics residual and, where D varies, the diffusivity channel).
Output: (batch, 2), log10 of the prediction's mean and max absolute error.  Three stride-2
convolutions see neighbourhoods of 15 cells; the global mean and max of the last maps feed two
linear layers, so the model reads any lattice size.
"""

from __future__ import annotations

import torch
from torch import nn


class ErrorModel(nn.Module):
    def __init__(self, in_channels: int, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.GELU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(4 * width, 4 * width, 3, stride=2, padding=1), nn.GELU(),
        )
        self.head = nn.Sequential(nn.Linear(8 * width, 32), nn.GELU(), nn.Linear(32, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.features(x)
        pooled = torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1)
        return self.head(pooled)
