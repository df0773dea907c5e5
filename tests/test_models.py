"""Table 1 shapes, parameter counts, and the p = 0 rule."""

import pytest
import torch

from pydiff.nn.surrogate2021 import NN1, NN2, Surrogate, describe

NN1_SHAPES = ["4 x 100 x 100"] * 3 + ["8 x 100 x 100"] * 2 + ["16 x 100 x 100"] * 2 + ["8 x 100 x 100"] * 2 + \
    ["4 x 100 x 100"] * 2 + ["1 x 100 x 100"] * 3
NN2_SHAPES = [
    "64 x 100 x 100", "64 x 100 x 100", "64 x 100 x 100", "64 x 50 x 50", "128 x 50 x 50", "128 x 25 x 25",
    "256 x 25 x 25", "256 x 12 x 12", "512 x 12 x 12", "512 x 6 x 6", "1024 x 6 x 6", "1024 x 3 x 3",
    "2048 x 1 x 1", "1024 x 3 x 3", "512 x 7 x 7", "256 x 13 x 13", "128 x 25 x 25", "64 x 51 x 51",
    "64 x 51 x 51", "1 x 100 x 100", "1 x 100 x 100",
]
NN1_OPS = ["Conv 3x3", "Dropout", "BatchNorm", "Conv 3x3", "BatchNorm", "Conv 3x3", "BatchNorm", "Conv 3x3",
           "BatchNorm", "Conv 3x3", "BatchNorm", "Conv 3x3", "Dropout", "BatchNorm"]
NN2_OPS = ["Conv 3x3", "BatchNorm", "Dropout"] + ["Meanpool", "Conv 3x3"] * 5 + ["ConvT 3x3"] * 5 + \
    ["Dropout", "ConvT 4x4", "BatchNorm"]


def rows_of(table, network):
    return [r for r in table if r["network"] == network]


def test_every_layer_shape_and_order_at_full_width():
    table = describe(Surrogate(1, 1, (0.4, 0.4, 0.1, 0.1), width=1.0))
    nn1, nn2 = rows_of(table, "NN1"), rows_of(table, "NN2")
    assert [r["output_shape"] for r in nn1] == NN1_SHAPES
    assert [r["output_shape"] for r in nn2] == NN2_SHAPES
    assert [r["operation"].split(" (")[0] for r in nn1] == NN1_OPS
    assert [r["operation"].split(" (")[0] for r in nn2] == NN2_OPS
    acts = [r["activation"] for r in nn1 if r["operation"].startswith("Conv")]
    assert acts == ["LReLU"] * 5 + ["ReLU"]
    acts = [r["activation"] for r in nn2 if r["operation"].startswith("Conv")]
    assert acts == ["LReLU"] * 11 + ["ReLU"]
    assert nn1[1]["operation"] == "Dropout (p=0.4)" and nn2[2]["operation"] == "Dropout (p=0.1)"


def test_narrow_width_keeps_spatial_shapes():
    table = describe(Surrogate(1, 1, width=0.125))
    spatial = [r["output_shape"].split(" x ", 1)[1] for r in rows_of(table, "NN2")]
    assert spatial == [s.split(" x ", 1)[1] for s in NN2_SHAPES]
    assert rows_of(table, "NN2")[12]["output_shape"] == "256 x 1 x 1"


def test_parameter_counts_are_stable():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # By hand: NN1 convs 40+296+1168+1160+292+37 = 2993, BatchNorms 2*(4+8+16+8+4+1) = 82.
    assert count(NN1()) == 3075
    assert count(NN2()) == 50_290_243
    assert count(Surrogate(1, 1)) == 3075 + 50_290_243
    assert count(Surrogate(1, 1, width=0.125)) == 786_728


def test_a_network_with_zero_weight_is_not_built():
    only2 = Surrogate(0, 1, width=0.125)
    only1 = Surrogate(1, 0, width=0.125)
    assert only2.nn1 is None and only1.nn2 is None
    assert not rows_of(describe(only2), "NN1") and not rows_of(describe(only1), "NN2")
    with pytest.raises(ValueError):
        Surrogate(0, 0)


def test_output_is_the_weighted_sum():
    torch.manual_seed(0)
    model = Surrogate(0.3, 2.0, width=0.125).eval()
    x = torch.rand(2, 1, 100, 100)
    with torch.no_grad():
        expected = 0.3 * model.nn1(x) + 2.0 * model.nn2(x)
        torch.testing.assert_close(model(x), expected)
    assert model(x).shape == (2, 1, 100, 100)


def test_output_scale_and_shift_initialise_the_final_batchnorms():
    model = Surrogate(1, 1, width=0.125, output_scale=0.14, output_shift=0.1)
    for net in (model.nn1, model.nn2):
        last = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)][-1]
        assert torch.all(last.weight == 0.14) and torch.allclose(last.bias, torch.tensor(0.05))
    first = [m for m in model.nn1.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    assert torch.all(first.weight == 1.0)


def conv_blocks(net):
    """Every (convolution, activation) pair of a network, in order."""
    return [m for m in net.modules() if isinstance(m, torch.nn.Sequential) and len(m) == 2
            and isinstance(m[0], (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]


@pytest.mark.parametrize("net, leaky_layers", [(NN1(), 5), (NN2(width=0.0625), 11)])
def test_activations_pass_a_hundredth_of_negative_values_as_fluxs_leakyrelu_does(net, leaky_layers):
    # What each layer computes, by hand from its convolution's own output z: Flux's leakyrelu,
    # max(z, 0.01 z), on every layer but the last, whose relu gives max(z, 0) (Table 1).
    torch.manual_seed(0)
    blocks = conv_blocks(net)
    assert len(blocks) == leaky_layers + 1
    for k, block in enumerate(blocks):
        c_in = block[0].in_channels
        x = torch.randn(2, c_in, 8, 8) if isinstance(block[0], torch.nn.Conv2d) else torch.randn(2, c_in, 3, 3)
        with torch.no_grad():
            z, out = block[0](x), block(x)
        assert (z < 0).any() and (z > 0).any()  # both branches are exercised
        slope = 0.01 if k < leaky_layers else 0.0
        torch.testing.assert_close(out, torch.where(z > 0, z, slope * z), rtol=0, atol=0)


def test_flux_init_is_glorot_uniform_with_fluxs_fans_and_zero_biases():
    torch.manual_seed(0)
    model = Surrogate(1, 1, init="flux")
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert len(layers) == 6 + 12
    for layer in layers:
        k = layer.kernel_size[0] * layer.kernel_size[1]
        # Flux's nfan: a Conv weight (k, k, c_in, c_out) and a ConvTranspose weight (k, k, c_out,
        # c_in) both give fan_in + fan_out = k * k * (c_in + c_out).
        fans = k * (layer.in_channels + layer.out_channels)
        bound = (6 / fans) ** 0.5
        w = layer.weight.detach().double()
        assert w.abs().max() <= bound * (1 + 1e-6)  # float32 rounding of the bound
        assert torch.count_nonzero(layer.bias) == 0
        if w.numel() >= 10_000:  # enough draws to pin the variance to a few per cent
            assert w.var().item() == pytest.approx(2 / fans, rel=0.05)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.all(n.weight == 1) and torch.all(n.bias == 0) for n in norms)


def test_flux_and_default_inits_differ():
    torch.manual_seed(0)
    flux = Surrogate(1, 0, width=0.25, init="flux")
    torch.manual_seed(0)
    default = Surrogate(1, 0, width=0.25)
    assert torch.count_nonzero(default.nn1.layers[0][0].bias) > 0  # PyTorch's uniform biases
    assert not torch.equal(flux.nn1.layers[0][0].weight, default.nn1.layers[0][0].weight)


def test_code_pooling_gives_the_original_codes_encoder_shapes():
    table = rows_of(describe(Surrogate(0, 1, width=0.125, pooling="code")), "NN2")
    spatial = [r["output_shape"].split(" x ", 1)[1] for r in table]
    assert spatial[3:13] == ["50 x 50", "50 x 50", "26 x 26", "26 x 26", "13 x 13", "13 x 13", "6 x 6", "6 x 6",
                             "3 x 3", "1 x 1"]
    assert spatial[-1] == "100 x 100"
    # The padded zeros count in the mean: a constant image of ones averages to 1/4 in a corner.
    pool = Surrogate(0, 1, width=0.125, pooling="code").nn2.encoder[5]
    corner = pool(torch.ones(1, 1, 50, 50))[0, 0]
    assert corner.shape == (26, 26) and corner[0, 0] == 0.25 and corner[5, 5] == 1.0
    with pytest.raises(ValueError, match="pooling"):
        NN2(pooling="other")
