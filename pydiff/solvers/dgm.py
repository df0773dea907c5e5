"""The Deep Galerkin Method's network (Sirignano and Spiliopoulos 2018), as the primer teaches it.

A point ``x`` (here 2-D, scaled to [-1, 1]) enters a linear layer, ``S_1 = sigma(W_1 x + b_1)``;
each DGM layer then updates the state with gates, like an LSTM cell that rereads the input:

    Z = sigma(U_z x + W_z S + b_z)        G = sigma(U_g x + W_g S + b_g)
    R = sigma(U_r x + W_r S + b_r)        H = sigma(U_h x + W_h (S * R) + b_h)
    S <- (1 - G) * H + Z * S

and a linear layer reads the last state out.  ``sigma`` is tanh: the loss differentiates the
output twice in space, and ReLU's second derivative is zero.  ``periodic`` replaces the input by
``(sin, cos)(pi x)`` per axis, so the output is periodic on [-1, 1] exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class DGMLayer(nn.Module):
    def __init__(self, inputs: int, width: int) -> None:
        super().__init__()
        self.U = nn.Linear(inputs, 4 * width)  # the input's part of Z, G, R, H at once
        self.W = nn.Linear(width, 3 * width, bias=False)  # the state's part of Z, G, R
        self.Wh = nn.Linear(width, width, bias=False)

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        uz, ug, ur, uh = self.U(x).chunk(4, dim=-1)
        wz, wg, wr = self.W(state).chunk(3, dim=-1)
        z, g, r = torch.tanh(uz + wz), torch.tanh(ug + wg), torch.tanh(ur + wr)
        h = torch.tanh(uh + self.Wh(state * r))
        return (1 - g) * h + z * state


class DGM(nn.Module):
    """``u(x)`` for (n, 2) points in [-1, 1]^2: (n,) values."""

    def __init__(self, width: int = 64, layers: int = 3, periodic: bool = False) -> None:
        super().__init__()
        self.periodic = periodic
        inputs = 4 if periodic else 2
        self.first = nn.Linear(inputs, width)
        self.layers = nn.ModuleList(DGMLayer(inputs, width) for _ in range(layers))
        self.last = nn.Linear(width, 1)
        for module in self.modules():  # Xavier's uniform initialisation, as the primer's networks
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.periodic:
            x = torch.cat([torch.sin(math.pi * x), torch.cos(math.pi * x)], dim=-1)
        state = torch.tanh(self.first(x))
        for layer in self.layers:
            state = layer(x, state)
        return self.last(state)[..., 0]
