"""One source of truth for options: every choice list of the command line is the library's own
tuple, every field of TrainConfig and Problem that a user may set has its option, an option's
help and shown default come from its field and the presets, and none hides the preset's value
(issue 24, section 2)."""

import dataclasses
import re

import click
import pytest

from pydiff.cli import main
from pydiff.cli.options import field_option, parse_training, problem_options, training_options
from pydiff.nn.build import NETWORKS
from pydiff.nn.losses import LOSSES
from pydiff.nn.names import LOSS_NAMES
from pydiff.nn.prior import PRIORS
from pydiff.nn.surrogate2021 import INITS, POOLINGS
from pydiff.problem.parameters import (BOUNDARY_CHOICES, DIFFUSIVITIES, SETUPS, SOURCE_MODELS, SOURCE_SHAPES, TARGETS,
                                       Problem)
from pydiff.errors import ConfigError
from pydiff.registry import PRESET_HELP, PRESETS
from pydiff.training.config import (COMPILE_MODES, SCHEDULES, SELECT_ON, SHUFFLES, STREAM, TABLE2_FIELDS, TRAINING_DATA,
                                    TrainConfig, config_for, option_text)
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
    (TRAINING, "loss", tuple(LOSSES)),
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


# --- the training options are made from TrainConfig's fields ---

FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def test_every_training_option_is_its_field():
    # a field that is an option has exactly its field's help and choices; one that is not has none
    for f in FIELDS.values():
        assert f.metadata.get("help"), f"TrainConfig.{f.name} says nothing of itself (use config.setting)"
        if not f.metadata["option"]:
            assert f.name not in TRAINING or f.name == "preset", f.name  # --preset: the registry's names
            continue
        option = TRAINING[f.name]
        assert option.help == f.metadata["help"], f.name
        choices = f.metadata["choices"]
        assert (tuple(option.type.choices) if isinstance(option.type, click.Choice) else None) == choices, f.name
    assert tuple(LOSSES) == LOSS_NAMES  # the torch-free names are the losses'


def test_every_shown_default_is_the_fields_and_the_presets():
    for name, option in TRAINING.items():
        if name not in FIELDS or FIELDS[name].metadata["fixed"]:
            continue
        f, shown = FIELDS[name], str(option.show_default)
        everywhere = all(name in values for values in PRESETS.values())
        if not everywhere and f.default is not None and not isinstance(f.default, bool):
            assert shown.startswith(option_text(f.default)) or name in TABLE2_FIELDS, (name, shown)
        for preset, values in PRESETS.items():
            if name in values and (everywhere or values[name] != f.default) and not isinstance(values[name], bool):
                assert preset in shown and option_text(values[name]) in shown, (name, preset, shown)
        if name in TABLE2_FIELDS:
            assert "Table 2" in shown, name


def test_a_preset_changed_in_the_registry_shows_in_the_help(monkeypatch):
    monkeypatch.setitem(PRESETS, "quick", {**PRESETS["quick"], "epochs": 7, "fno_modes": 5})
    rebuilt = options_of(training_options)
    assert "quick: 7" in str(rebuilt["epochs"].show_default)
    assert str(rebuilt["fno_modes"].show_default).startswith("16; quick: 5")
    assert "quick: 7" in str(options_of(field_option("epochs"))["epochs"].show_default)


def commands_that_train():
    """Every command that takes training options, with its options."""
    found = []

    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, path + (name,))
        elif path[-1] in ("train", "reproduce", "train-size", "compare"):
            found.append((" ".join(path), {p.name: p for p in command.params if isinstance(p, click.Option)}))

    walk(main, ())
    return found


def test_no_help_text_keeps_a_default_of_its_own():
    # "(default 0.1)", "(paper: 800)", "(quick: 0.14)": copies that go stale when the library changes
    copied = re.compile(r"default\W*[-\d]|\b(?:%s):? [-\d]" % "|".join(map(re.escape, PRESETS)))
    commands = commands_that_train()
    assert {name for name, _ in commands} == {"train", "reproduce", "bench train", "study train-size", "compare"}
    for command, options in commands:
        for name, option in options.items():
            if name in FIELDS and name != "preset":
                assert not copied.search(option.help or ""), (command, name, option.help)
                f = FIELDS[name]
                if isinstance(option.type, click.Choice):
                    assert set(option.type.choices) <= set(f.metadata["choices"]), (command, name)
                if given(option):  # only a field no preset sets may have a default, and it is the field's
                    assert f.metadata["fixed"] and option.default == f.default, (command, name)


def test_every_preset_has_its_help_and_the_help_names_no_other():
    assert set(PRESET_HELP) == set(PRESETS)
    assert all(p in TRAINING["preset"].help for p in PRESETS)


def test_config_for_sets_a_field_to_none():
    # a None override was dropped: the preset's 10,000 samples and output scale stayed
    assert config_for(9, "quick", n_samples=None).n_samples is None  # all of the file
    assert config_for(9, "quick", output_scale=None).output_scale is None  # PyTorch's
    assert config_for(9, "quick").n_samples == PRESETS["quick"]["n_samples"]
    with pytest.raises(ConfigError, match="width cannot be None"):
        config_for(9, "quick", width=None)


def test_an_option_not_given_is_left_out_and_the_preset_stands():
    assert parse_training({"epochs": None, "split": None, "labels": None, "width": 0.5}) == {"width": 0.5}
    assert parse_training({"split": "0.8,0.1,0.1", "labels": "none"}) == {"split": (0.8, 0.1, 0.1), "labels": 0.0}


def test_every_problem_option_shows_each_setups_own_default():
    # the hand-kept "5" for --radius and "2" for --n-sources left out darcy's 0 and 1
    from pydiff.problem.parameters import SETUP_DEFAULTS

    for setup, values in SETUP_DEFAULTS.items():
        for name, value in values.items():
            if name in PROBLEM and not given(PROBLEM[name]) and value != getattr(Problem, name, None):
                assert f"{setup}: {option_text(value)}" in str(PROBLEM[name].show_default), (setup, name)
