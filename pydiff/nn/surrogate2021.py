"""The paper's surrogate (Table 1): NN1, NN2, and their weighted sum.

Input and output are (batch, 1, 100, 100).  Every layer is in Table 1's order; ``width``
multiplies every channel count except the single input and output channels (1.0 = the paper),
so that tests and CPU runs can use narrow copies of the same architecture.  LeakyReLU has
slope 0.01 (Flux's default, which the original code used).
"""

from __future__ import annotations

from typing import Literal, cast

import torch
from torch import nn

from .names import INITS, POOLINGS

LEAK = 0.01


def channels(base: int, width: float) -> int:
    """``base`` channels scaled by ``width``, at least 1."""
    return max(1, round(base * width))


def conv(c_in: int, c_out: int, activation: str = "lrelu", padding: int = 1) -> nn.Sequential:
    """3x3 convolution followed by its activation ("lrelu", "relu")."""
    act = nn.LeakyReLU(LEAK) if activation == "lrelu" else nn.ReLU()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=padding), act)


def conv_t(c_in: int, c_out: int, kernel: int, stride: int, padding: int, activation: str = "lrelu") -> nn.Sequential:
    """Transposed convolution followed by its activation."""
    act = nn.LeakyReLU(LEAK) if activation == "lrelu" else nn.ReLU()
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, kernel, stride=stride, padding=padding), act)


class NN1(nn.Module):
    """Six 3x3 convolutions at full resolution, 1 -> 4 -> 8 -> 16 -> 8 -> 4 -> 1 channels."""

    def __init__(self, d1: float = 0.0, d2: float = 0.0, width: float = 1.0) -> None:
        super().__init__()
        c = [1] + [channels(k, width) for k in (4, 8, 16, 8, 4)] + [1]
        self.layers = nn.Sequential(
            conv(c[0], c[1]), nn.Dropout(d1), nn.BatchNorm2d(c[1]),
            conv(c[1], c[2]), nn.BatchNorm2d(c[2]),
            conv(c[2], c[3]), nn.BatchNorm2d(c[3]),
            conv(c[3], c[4]), nn.BatchNorm2d(c[4]),
            conv(c[4], c[5]), nn.BatchNorm2d(c[5]),
            conv(c[5], c[6], "relu"), nn.Dropout(d2), nn.BatchNorm2d(c[6]),
        )
    @property
    def output_conv(self) -> nn.Conv2d:
        """The ReLU layer before the final BatchNorm (a property: an attribute would register the
        layer twice, and its weights would appear twice in the state_dict)."""
        return cast(nn.Conv2d, cast(nn.Sequential, self.layers[-3])[0])  # conv(): (Conv2d, ReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class NN2(nn.Module):
    """Autoencoder: mean-pools 100 -> 50 -> 25 -> 12 -> 6 -> 3, a 3x3 conv to 2048 x 1 x 1, and
    transposed convolutions back 1 -> 3 -> 7 -> 13 -> 25 -> 51 -> 100.

    ``pooling="code"`` pads the second mean-pool by one cell, as the original DiffSolve.jl does
    (``MeanPool((2,2); pad = 1)``): 100 -> 50 -> 26 -> 13 -> 6 -> 3 -> 1.  The padded zeros count in
    the mean (NNlib pads with zeros, PyTorch's ``count_include_pad=True``).  The decoder, which
    starts from 1 x 1, is the same either way.
    """

    def __init__(self, d3: float = 0.0, d4: float = 0.0, width: float = 1.0, pooling: str = "table1") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        c = [channels(k, width) for k in (64, 128, 256, 512, 1024, 2048)]
        pool = nn.AvgPool2d(2)  # floor: 25 -> 12
        second_pool = nn.AvgPool2d(2, padding=1) if pooling == "code" else pool  # 50 -> 26 or 25
        self.encoder = nn.Sequential(
            conv(1, c[0]), nn.BatchNorm2d(c[0]), nn.Dropout(d3),
            pool, conv(c[0], c[1]),                    # 64 x 50 -> 128 x 50
            second_pool, conv(c[1], c[2]),             # 128 x 25 (code: 26) -> 256
            pool, conv(c[2], c[3]),                    # 256 x 12 (13) -> 512
            pool, conv(c[3], c[4]),                    # 512 x 6 -> 1024 x 6
            pool, conv(c[4], c[5], padding=0),         # 1024 x 3 -> 2048 x 1
        )
        self.decoder = nn.Sequential(
            conv_t(c[5], c[4], 3, 1, 0),               # 1 -> 3
            conv_t(c[4], c[3], 3, 2, 0),               # 3 -> 7
            conv_t(c[3], c[2], 3, 2, 1),               # 7 -> 13
            conv_t(c[2], c[1], 3, 2, 1),               # 13 -> 25
            conv_t(c[1], c[0], 3, 2, 0),               # 25 -> 51
            nn.Dropout(d4),
            conv_t(c[0], 1, 4, 2, 2, "relu"),          # 51 -> 100
            nn.BatchNorm2d(1),
        )
    @property
    def output_conv(self) -> nn.ConvTranspose2d:
        """The ReLU layer before the final BatchNorm."""
        return cast(nn.ConvTranspose2d, cast(nn.Sequential, self.decoder[-2])[0])  # conv_t(): (ConvTranspose2d, ReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class Surrogate(nn.Module):
    """``p1 * NN1(x) + p2 * NN2(x)``; a network whose weight is 0 is not built.

    Args:
        p1, p2: fixed weights of the two networks (Table 2 uses 0 or 1).
        dropout: (D1, D2, D3, D4): D1, D2 act in NN1, D3, D4 in NN2 (element-wise, as Flux's
            ``Dropout(p; dims=:)``).
        width: channel multiplier (1.0 = Table 1).
        pooling: NN2's encoder shapes, "table1" or "code" (see :class:`NN2`).
        output_scale: if given, the initial scale of each network's final one-channel BatchNorm
            (default 1).  Starting it near the targets' spread (~0.1) lets a short CPU run leave
            the predict-the-mean plateau; the paper's set-up leaves it at 1.
        output_shift: if given, the initial bias of those BatchNorms (default 0), split evenly
            between the networks that are built (the targets' mean, ~0.1, is a good start).
        init: "flux" (Flux.jl's defaults, which the original networks had: every Conv and
            ConvTranspose weight Glorot-uniform, U(-a, a) with a = sqrt(6 / (fan_in + fan_out)),
            biases zero; BatchNorm scale 1, shift 0), "default" (PyTorch's: Kaiming-uniform with
            a = sqrt(5), uniform biases) or "kaiming" (He-normal weights for LeakyReLU, zero
            biases, and bias 1 on each network's last, ReLU, layer).  NN2 has no normalisation between its first and last layer: with
            default weights the bottleneck activations of different images differ by ~1e-3 and
            NN2 barely learns in CPU minutes; with He weights they differ by ~0.1.  The positive
            bias keeps the ReLU before the final BatchNorm open at the start (the BatchNorm
            removes the offset): with bias 0, about half of the seeds tried let early Adam steps
            close it everywhere, NN2's output went constant, and the model stayed at the
            NN1-only level (mean residual ~0.08).
    """

    def __init__(self, p1: float = 1.0, p2: float = 1.0, dropout=(0.0, 0.0, 0.0, 0.0),
                 width: float = 1.0, output_scale: float | None = None,
                 output_shift: float | None = None, init: str = "default", pooling: str = "table1") -> None:
        super().__init__()
        if p1 == 0 and p2 == 0:
            raise ValueError("at least one of p1, p2 must be non-zero")
        d1, d2, d3, d4 = (0.0 if d is None else float(d) for d in dropout)  # None: that network is not built
        self.p1, self.p2 = float(p1), float(p2)
        self.nn1 = NN1(d1, d2, width) if p1 != 0 else None
        self.nn2 = NN2(d3, d4, width, pooling) if p2 != 0 else None
        built = [net for net in (self.nn1, self.nn2) if net is not None]
        if init == "flux":
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                    # PyTorch's fans equal Flux's for both layer kinds: k*k*c_in and k*k*c_out.
                    nn.init.xavier_uniform_(module.weight)
                    if module.bias is not None:  # every layer here has one
                        nn.init.zeros_(module.bias)
        elif init == "kaiming":
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                    # A transposed convolution's fan-in lies in its weight's fan-out slot.
                    mode: Literal["fan_in", "fan_out"] = "fan_in" if isinstance(module, nn.Conv2d) else "fan_out"
                    nn.init.kaiming_normal_(module.weight, a=LEAK, mode=mode, nonlinearity="leaky_relu")
                    if module.bias is not None:  # every layer here has one
                        nn.init.zeros_(module.bias)
            for net in built:
                bias = net.output_conv.bias
                if bias is not None:
                    nn.init.constant_(bias, 1.0)
        elif init != "default":
            raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
        for net in built:
            last_norm = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)][-1]
            if output_scale is not None:
                nn.init.constant_(last_norm.weight, output_scale)
            if output_shift is not None:
                nn.init.constant_(last_norm.bias, output_shift / len(built))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor | float = 0.0
        if self.nn1 is not None:
            out = out + self.p1 * self.nn1(x)
        if self.nn2 is not None:
            out = out + self.p2 * self.nn2(x)
        return cast(torch.Tensor, out)  # at least one network is built (see __init__)


def describe(model: Surrogate, lattice: int = 100) -> "list[dict]":
    """Table 1 from the live network: one row per layer with its output shape and parameters.

    Runs one forward pass on a zero image in eval mode, recording every leaf module's output.
    """
    rows: list[dict] = []
    hooks = []
    names = {"Conv2d": "Conv", "ConvTranspose2d": "ConvT", "AvgPool2d": "Meanpool",
             "BatchNorm2d": "BatchNorm", "Dropout": "Dropout", "LeakyReLU": None, "ReLU": None}

    for net_name in ("nn1", "nn2"):
        net = getattr(model, net_name)
        if net is None:
            continue
        for name, module in net.named_modules():
            kind = type(module).__name__
            if kind not in names:
                continue

            def hook(module, inputs, output, kind=kind, net_name=net_name, name=name):
                if names[kind] is None:  # activation: annotate the layer before it
                    rows[-1]["activation"] = "LReLU" if kind == "LeakyReLU" else "ReLU"
                    return
                label = names[kind]
                if kind in ("Conv2d", "ConvTranspose2d"):
                    label += f" {module.kernel_size[0]}x{module.kernel_size[1]}"
                if kind == "Dropout":
                    label += f" (p={module.p:g})"
                rows.append({
                    "network": net_name.upper(), "operation": label,
                    "activation": "Identity" if kind in ("BatchNorm2d", "AvgPool2d") else "-",
                    "output_shape": " x ".join(str(d) for d in output.shape[1:]),
                    "parameters": sum(p.numel() for p in module.parameters(recurse=False)),
                })

            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, lattice, lattice))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows
