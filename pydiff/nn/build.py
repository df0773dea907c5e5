"""The network a run's configuration describes: one place that maps ``network`` and its options
to a module, for training, loading and timing alike."""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from .cnn2024 import EncoderDecoder, UNet
from .fno import fno
from .names import NETWORKS
from .prior import ConstantDPrior
from .surrogate2021 import Surrogate


class Scaled(nn.Module):
    """A network whose output is multiplied by a fixed ``scale``: it learns fields of order 1
    whatever the units of the data (Darcy flow's ``u`` is ~0.01)."""

    def __init__(self, network: nn.Module, scale: float) -> None:
        super().__init__()
        self.network, self.scale = network, float(scale)

    def forward(self, x):
        return self.scale * self.network(x)


def build_model(config, problem=None) -> nn.Module:
    """The untrained network of ``config`` (a :class:`~pydiff.training.config.TrainConfig`, or
    anything with its fields); seed torch first for a reproducible one.  ``problem``: the
    equation the data pose (a :class:`~pydiff.problem.Problem`), which the constant-D prior
    solves (``config.prior``; :mod:`pydiff.nn.prior`)."""
    prior = getattr(config, "prior", "none")
    if prior == "none":
        network = _network(config, config.in_channels)
    else:
        if problem is None:
            raise ConfigError("the constant-D prior needs the problem the model was trained on")
        network = ConstantDPrior(_network(config, config.in_channels + 1), problem)
    scale = getattr(config, "field_scale", 1.0)
    return network if scale == 1.0 else Scaled(network, scale)


def _network(config, in_channels: int) -> nn.Module:
    if config.network == "encdec":
        return EncoderDecoder(config.width, in_channels)
    if config.network == "unet":
        return UNet(config.width, in_channels)
    if config.network == "fno":
        return fno(config.width, config.fno_modes, in_channels)
    if config.network == "surrogate":
        return Surrogate(config.p1, config.p2, config.dropout, config.width, config.output_scale, config.output_shift,
                         config.init, config.pooling)
    # a misspelt name (a hand-edited config.json) must not quietly build, and load into, another network
    raise ConfigError(f"unknown network {config.network!r}; choose one of {', '.join(NETWORKS)}")
