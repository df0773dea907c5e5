"""The 2024 papers' networks: the encoder-decoder (``SimpleCNN``) and the U-Net.

Both follow ``util/NNets.py`` of the 2024 code (public repository jquetzalcoatl/DeepDiffusionSolver),
with a ``width`` multiplier on every channel count (1 = the original, 50.3 M parameters for the
encoder-decoder) and any lattice size: the image is zero-padded on the right and bottom to the
next multiple of the network's total down-sampling (32 or 16) and the output cropped back, zeros
being what the absorbing walls hold.

Input: (batch, C, L, L), C = ``in_channels`` (1: the source image; 2: with the scaled log of
the diffusivity, for the varied family).  Output: (batch, 1, L, L).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LEAK_2024 = 0.02


def _channels(base: int, width: float) -> int:
    return max(1, round(base * width))


class _PadToMultiple(nn.Module):
    """Runs ``body`` on the input zero-padded to a multiple of ``multiple`` and crops back."""

    multiple = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return self.body(x)[..., :h, :w]

    def body(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class EncoderDecoder(_PadToMultiple):
    """``SimpleCNN``: six 3x3 convolutions 1 -> 64 -> ... -> 2048, the first with BatchNorm,
    each but the last followed by a 2x2 average pool (L -> L/32); then 3x3 transposed
    convolutions 2048 -> 1024 -> 512 -> ... -> 32 -> 1, each of the five from 512 down followed
    by a nearest-neighbour x2 upsampling.  LeakyReLU (0.02) after every layer, the last too."""

    multiple = 32

    def __init__(self, width: float = 1.0, in_channels: int = 1) -> None:
        super().__init__()
        c = [_channels(k, width) for k in (64, 128, 256, 512, 1024, 2048)]
        act = lambda: nn.LeakyReLU(LEAK_2024)  # noqa: E731
        encoder = [nn.Conv2d(in_channels, c[0], 3, 1, 1), nn.BatchNorm2d(c[0]), act(), nn.AvgPool2d(2)]
        for i in range(1, 6):
            encoder += [nn.Conv2d(c[i - 1], c[i], 3, 1, 1), act()]
            if i < 5:
                encoder.append(nn.AvgPool2d(2))
        self.encoder = nn.Sequential(*encoder)
        d = [c[5], c[4], c[3], c[2], c[1], c[0], _channels(32, width)]
        decoder = [nn.ConvTranspose2d(d[0], d[1], 3, 1, 1), act()]
        for i in range(1, 6):
            decoder += [nn.ConvTranspose2d(d[i], d[i + 1], 3, 1, 1), act(), nn.Upsample(scale_factor=2)]
        decoder += [nn.ConvTranspose2d(d[6], 1, 3, 1, 1), act()]
        self.decoder = nn.Sequential(*decoder)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class UNet(_PadToMultiple):
    """The 2024 code's U-Net: four max-pooled levels of two 3x3 convolutions with ReLU
    (64 -> 1024 channels), up-sampling by nearest x2 + a 3x3 transposed convolution, skip
    connections by concatenation, and a last 3x3 transposed convolution to one channel.

    The original builds that last layer inside ``forward`` (new random weights on every call,
    never trained); here it is a module of its own, trained with the rest."""

    multiple = 16

    def __init__(self, width: float = 1.0, in_channels: int = 1) -> None:
        super().__init__()
        c = [_channels(k, width) for k in (64, 128, 256, 512, 1024)]

        def block(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1), nn.ReLU(), nn.Conv2d(c_out, c_out, 3, 1, 1), nn.ReLU())

        self.down = nn.ModuleList([block(in_channels, c[0])] + [block(c[i - 1], c[i]) for i in range(1, 5)])
        self.up_conv = nn.ModuleList(
            [nn.Sequential(nn.Upsample(scale_factor=2), nn.ConvTranspose2d(c[i], c[i - 1], 3, 1, 1)) for i in range(4, 0, -1)]
        )
        self.up = nn.ModuleList([block(2 * c[i - 1], c[i - 1]) for i in range(4, 0, -1)])
        self.out = nn.ConvTranspose2d(c[0], 1, 3, 1, 1)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, level in enumerate(self.down):
            x = level(F.max_pool2d(x, 2) if i else x)
            skips.append(x)
        x = skips.pop()
        for up_conv, level in zip(self.up_conv, self.up):
            x = level(torch.cat((up_conv(x), skips.pop()), dim=1))
        return self.out(x)
