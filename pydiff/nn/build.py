"""The network a run's configuration describes: one place that maps ``network`` and its options
to a module, for training, loading and timing alike."""

from __future__ import annotations

from torch import nn

from .cnn2024 import EncoderDecoder, UNet
from .fno import fno
from .surrogate2021 import Surrogate

NETWORKS = ("surrogate", "encdec", "unet", "fno")  # the 2021 NN1 + NN2 (Table 1); the 2024 encoder-decoder and U-Net; neuraloperator's FNO


class Scaled(nn.Module):
    """A network whose output is multiplied by a fixed ``scale``: it learns fields of order 1
    whatever the units of the data (Darcy flow's ``u`` is ~0.01)."""

    def __init__(self, network: nn.Module, scale: float) -> None:
        super().__init__()
        self.network, self.scale = network, float(scale)

    def forward(self, x):
        return self.scale * self.network(x)


def build_model(config) -> nn.Module:
    """The untrained network of ``config`` (a :class:`~pydiff.training.config.TrainConfig`, or
    anything with its fields); seed torch first for a reproducible one."""
    network = _network(config)
    scale = getattr(config, "field_scale", 1.0)
    return network if scale == 1.0 else Scaled(network, scale)


def _network(config) -> nn.Module:
    if config.network == "encdec":
        return EncoderDecoder(config.width, config.in_channels)
    if config.network == "unet":
        return UNet(config.width, config.in_channels)
    if config.network == "fno":
        return fno(config.width, config.fno_modes, config.in_channels)
    return Surrogate(config.p1, config.p2, config.dropout, config.width, config.output_scale, config.output_shift,
                     config.init, config.pooling)
