"""The 2024 networks: layer structure, parameter count by hand, any lattice size."""

import pytest
import torch
from torch import nn

from pydiff.nn.cnn2024 import EncoderDecoder, UNet


def test_encoder_decoder_has_the_2024_codes_layers_and_parameter_count():
    model = EncoderDecoder()
    # By hand: encoder convs 640 + 73,856 + 295,168 + 1,180,160 + 4,719,616 + 18,876,416, BatchNorm 128;
    # decoder transposed convs 18,875,392 + 4,719,104 + 1,179,904 + 295,040 + 73,792 + 18,464 + 289.
    assert sum(p.numel() for p in model.parameters()) == 50_307_969
    kinds = [type(m) for m in model.modules()]
    assert kinds.count(nn.AvgPool2d) == 5 and kinds.count(nn.Upsample) == 5 and kinds.count(nn.BatchNorm2d) == 1
    leaky = [m for m in model.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(leaky) == 13 and all(m.negative_slope == 0.02 for m in leaky)
    assert isinstance(model.decoder[-1], nn.LeakyReLU)  # the output too, as the original


@pytest.mark.parametrize("network", [EncoderDecoder, UNet])
@pytest.mark.parametrize("L", [64, 100])
def test_any_lattice_size_is_padded_with_zeros_and_cropped_back(network, L):
    torch.manual_seed(0)
    model = network(width=1 / 16).eval()
    x = torch.rand(2, 1, L, L)
    with torch.no_grad():
        y = model(x)
        size = -(-L // model.multiple) * model.multiple
        padded = torch.zeros(2, 1, size, size)
        padded[..., :L, :L] = x
        expected = model.body(padded)[..., :L, :L]
    assert y.shape == (2, 1, L, L)
    torch.testing.assert_close(y, expected)


def test_unet_skips_and_output_layer_are_trained_modules():
    model = UNet(width=1 / 16)
    assert [level[0].in_channels for level in model.up] == [64, 32, 16, 8]  # 2x (32, 16, 8, 4): skips concatenated
    assert any(p is model.out.weight for p in model.parameters())
    x, target = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    loss = (model(x) - target).abs().mean()
    loss.backward()
    assert model.out.weight.grad is not None and model.down[0][0].weight.grad.abs().sum() > 0


def test_the_fno_comes_from_neuraloperator_and_runs_on_any_lattice():
    pytest.importorskip("neuralop")
    from neuralop.models import FNO

    from pydiff.nn.fno import fno

    torch.manual_seed(0)
    net = fno(width=0.125, modes=8)
    assert isinstance(net, FNO)
    for L in (32, 64):  # one set of weights, two resolutions
        assert net(torch.rand(2, 1, L, L)).shape == (2, 1, L, L)
