"""Docstrings that say what the code does (issue 24, section 3): each checks the claim against
the code it describes."""

import dataclasses
import math

import pytest

from pydiff.training.config import COSINE_FLOOR, TrainConfig, config_for


def test_the_cosine_schedule_is_described_as_it_runs():
    # documented as reaching lr/100 "at the last epoch"; the last epoch (epochs - 1) trains above it
    from pydiff.training.step import lr_at

    config = config_for(9, "quick", lr=1e-3, lr_schedule="cosine", epochs=4)
    low = config.lr * COSINE_FLOOR
    assert lr_at(config, 0) == config.lr
    assert lr_at(config, config.epochs - 1) > 1.5 * low  # the last epoch: low + (lr - low)(1 - cos(pi / E)) / 2
    assert math.isclose(lr_at(config, config.epochs), low)  # one epoch after the last
    field_help = {f.name: f for f in dataclasses.fields(TrainConfig)}["lr_schedule"].metadata["help"]
    for text in (lr_at.__doc__, field_help):
        assert "one epoch after the last" in text and "at the last epoch" not in text


def test_the_fno_docstring_gives_its_hidden_channels_as_built():
    # documented as round(256 * width) channels; a small width builds FNO_MIN_HIDDEN
    pytest.importorskip("neuralop")
    from pydiff.nn.fno import FNO_HIDDEN, FNO_MIN_HIDDEN, fno

    for width, hidden in ((1 / 1000, FNO_MIN_HIDDEN), (1 / 8, round(FNO_HIDDEN / 8))):
        assert fno(width=width, modes=4).hidden_channels == hidden
    assert "FNO_MIN_HIDDEN" in fno.__doc__ and "both signs" in fno.__doc__
