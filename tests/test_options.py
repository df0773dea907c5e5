"""One source of truth for options: every choice list of the command line is the library's own
tuple, every field of TrainConfig and Problem that a user may set has its option, and an option's
shown default is the library's default (issue 24, section 2)."""

import dataclasses

import click
import pytest

from pydiff.cli.options import problem_options, training_options
from pydiff.nn.build import NETWORKS
from pydiff.nn.prior import PRIORS
from pydiff.nn.surrogate2021 import INITS, POOLINGS
from pydiff.problem.parameters import (BOUNDARY_CHOICES, DIFFUSIVITIES, SETUPS, SOURCE_MODELS, SOURCE_SHAPES, TARGETS,
                                       Problem)
from pydiff.registry import PRESETS
from pydiff.training.config import COMPILE_MODES, SCHEDULES, SELECT_ON, SHUFFLES, STREAM, TRAINING_DATA, TrainConfig
from pydiff.training.rollback import RULES


def options_of(decorator) -> dict[str, click.Option]:
    command = decorator(click.command()(lambda **_: None))
    return {p.name: p for p in command.params if isinstance(p, click.Option)}


TRAINING = options_of(training_options)
PROBLEM = options_of(problem_options)

CHOICES = [
    (TRAINING, "preset", tuple(PRESETS)), (TRAINING, "network", NETWORKS), (TRAINING, "prior", PRIORS),
    (TRAINING, "lr_schedule", SCHEDULES), (TRAINING, "select_on", SELECT_ON), (TRAINING, "training_data", TRAINING_DATA),
    (TRAINING, "shuffle", SHUFFLES), (TRAINING, "rollback", RULES), (TRAINING, "init", INITS),
    (TRAINING, "pooling", POOLINGS), (TRAINING, "stream", STREAM), (TRAINING, "compile", COMPILE_MODES),
    (PROBLEM, "setup", SETUPS), (PROBLEM, "diffusivity", DIFFUSIVITIES), (PROBLEM, "source_model", SOURCE_MODELS),
    (PROBLEM, "sources", SOURCE_SHAPES), (PROBLEM, "boundary", BOUNDARY_CHOICES), (PROBLEM, "target", ("auto", *TARGETS)),
]


@pytest.mark.parametrize("options, name, library", CHOICES, ids=[c[1] for c in CHOICES])
def test_every_choice_list_is_the_librarys(options, name, library):
    assert tuple(options[name].type.choices) == tuple(library)


# Fields no user sets from these options: where the data come from (--data, its own option),
# what a preset or a Table 2 row sets (--model), what the data decide (in_channels), and options
# of other commands or spelled otherwise (dropout: --dropout one rate for D1-D4).
NOT_OPTIONS = {"data", "model", "in_channels", "dropout", "p1", "p2", "inverse",
               "eval_batch_size", "seed", "device"}


def test_every_training_field_has_its_option_and_no_option_is_a_stray():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    missing = fields - NOT_OPTIONS - set(TRAINING)
    assert not missing, f"TrainConfig fields without a command-line option: {sorted(missing)}"
    strays = set(TRAINING) - fields - {"preset", "dropout_all", "seed", "device"}
    assert not strays, f"options that set no TrainConfig field: {sorted(strays)}"
    assert {"seed", "device"} <= set(TRAINING)


def test_every_problem_field_has_its_option():
    fields = {f.name for f in dataclasses.fields(Problem)} - {"min_sources"}  # --n-sources 1-20 sets it
    assert fields <= set(PROBLEM), sorted(fields - set(PROBLEM))


def given(option: click.Option) -> bool:
    """Whether an option has a default of its own (click 8.2 says None, 8.3 a sentinel, for none)."""
    return option.default is not None and "UNSET" not in repr(option.default)


def test_an_option_that_has_a_default_has_the_librarys():
    # training options have none (the preset's value stands); the problem options that have one
    # must show the Problem's own
    default = Problem()
    for name, option in PROBLEM.items():
        if given(option) and name != "setup":
            assert option.default == getattr(default, name), name
    hiding = [name for name, option in TRAINING.items() if given(option) and name not in ("preset", "seed", "device")]
    assert not hiding, f"training options that hide the preset's value: {hiding}"
