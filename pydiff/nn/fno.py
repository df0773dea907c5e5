"""Neural-operator baselines, from the libraries that maintain them (not re-implemented here).

``fno``: the Fourier Neural Operator of the ``neuraloperator`` package (``neuralop.models.FNO``),
an optional dependency: ``pip install "pydiff[fno]"``.  Its spectral convolutions keep
``modes`` Fourier modes per axis whatever the lattice, so one trained network runs on any
lattice size — the resolution transfer the FNO papers claim.

Input and output: (batch, 1, L, L), as every pydiff network.
"""

from __future__ import annotations

from torch import nn

from ..errors import BackendUnavailable

FNO_HIDDEN = 256  # hidden channels at width 1; the quick presets' 1/8 gives 32 (0.6 M parameters with 16 modes)
FNO_MIN_HIDDEN = 4  # the fewest hidden channels, whatever the width


def neuraloperator_version() -> str:
    """The installed neuraloperator's version (recorded with every FNO run)."""
    try:
        import neuralop
    except ImportError:
        raise BackendUnavailable('the FNO needs the neuraloperator package: pip install "pydiff[fno]"') from None
    return getattr(neuralop, "__version__", "unknown")


def fno(width: float = 1.0, modes: int = 16, in_channels: int = 1) -> nn.Module:
    """neuraloperator's 2-D FNO with ``max(FNO_MIN_HIDDEN, round(FNO_HIDDEN * width))`` hidden
    channels and ``n_modes=(modes, modes)``, reading ``in_channels`` input channels.

    neuraloperator counts a mode's both signs: ``modes`` keeps ``modes`` frequencies on the first
    axis and ``modes // 2 + 1`` on the second (the real FFT's half), so the FNO paper's 12 modes
    are 24 here (weights hidden x hidden x 24 x 13 per layer)."""
    neuraloperator_version()
    from neuralop.models import FNO

    return FNO(n_modes=(modes, modes), hidden_channels=max(FNO_MIN_HIDDEN, round(FNO_HIDDEN * width)),
               in_channels=in_channels, out_channels=1)
