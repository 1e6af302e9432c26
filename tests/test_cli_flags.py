"""Command-line flags generated from config dataclasses: types, help from the docstrings, one flag per field."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import pytest

from textgym.cli import main
from textgym.cli_flags import add_config_flags, field_docs, given_settings
from textgym.error import SettingsError
from textgym.training import AGENT_SPECS


@dataclass
class BaseToy:
    """A toy config.

    Attributes:
        env_id: Positional, no flag.
        rate: How fast it goes, in 100 % steps,
            over two lines.
        low, high: The ends of the range.
    """

    env_id: str = "x"
    rate: float = 0.5
    low: int = 0
    high: int = 3


@dataclass
class Toy(BaseToy):
    """A toy with more settings.

    Attributes:
        rate: Overridden here.
        verbose: Print more.
        cap: An optional cap.
        extra: Extra options.
        shape: One of two.
    """

    verbose: bool = False
    cap: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    shape: Literal["round", "square"] = "round"


@dataclass
class ToyWithANewField(Toy):
    """One more.

    Attributes:
        new_knob: A setting added later.
    """

    new_knob: int = 7


def parser_for(configs: dict[str, type], **kwargs) -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(prog="toy")
    return parser, add_config_flags(parser, configs, skip=("env_id",), **kwargs)


def test_docs_come_from_the_attributes_sections_of_the_class_and_its_bases():
    docs = field_docs(Toy)
    assert docs["low"] == docs["high"] == "The ends of the range."
    assert docs["rate"] == "Overridden here."  # the subclass wins
    assert field_docs(BaseToy)["rate"] == "How fast it goes, in 100 % steps, over two lines."
    assert docs["verbose"] == "Print more." and "env_id" in docs


def test_every_field_is_a_typed_flag_that_defaults_to_not_given():
    parser, flags = parser_for({"toy": Toy})
    assert set(flags) == {f.name for f in fields(Toy)} - {"env_id"}
    argv = ["--rate", "0.1", "--low", "2", "--verbose", "--cap", "none", "--extra", '{"k": 1}', "--shape", "square"]
    args = parser.parse_args(argv)
    assert vars(args) == {"rate": 0.1, "low": 2, "verbose": True, "cap": None, "extra": {"k": 1}, "shape": "square"}
    assert vars(parser.parse_args(["--no-verbose", "--cap", "4"])) == {"verbose": False, "cap": 4}
    assert vars(parser.parse_args([])) == {}  # the config's own defaults apply
    for bad in (["--low", "1.5"], ["--extra", "[1]"], ["--shape", "oval"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_a_new_field_is_a_new_flag_with_its_docstring_as_help(capsys):
    parser, flags = parser_for({"toy": ToyWithANewField})
    assert flags["new_knob"].option == "--new-knob"
    assert parser.parse_args(["--new-knob", "9"]).new_knob == 9
    parser.print_help()
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--new-knob INT A setting added later. (default: 7)" in help_text
    assert "How fast" not in help_text and "Overridden here." in help_text
    assert "--cap INT|none An optional cap. (default: None)" in help_text


def test_shared_fields_are_one_flag_grouped_by_the_configs_that_take_them(capsys):
    parser, flags = parser_for({"toy": Toy, "base": BaseToy}, defaults={"high": 5}, aliases={"rate": ["--r"]})
    assert flags["low"].takers == ("toy", "base") and flags["verbose"].takers == ("toy",)
    assert parser.parse_args(["--r", "2"]).rate == 2.0
    parser.print_help()
    help_text = " ".join(capsys.readouterr().out.split())
    assert "settings of every agent (BaseToy)" in help_text and "settings of toy (Toy)" in help_text
    assert "toy: Overridden here. | base: How fast it goes, in 100 % steps, over two lines." in help_text
    assert "The ends of the range. (default: 5)" in help_text  # the command's own default


def test_a_flag_of_another_config_is_an_error_that_names_who_takes_it():
    parser, flags = parser_for({"toy": Toy, "base": BaseToy})
    args = parser.parse_args(["--low", "1", "--verbose"])
    assert given_settings(args, flags, "toy", {f.name for f in fields(Toy)}) == {"low": 1, "verbose": True}
    with pytest.raises(SettingsError, match="--verbose is not a setting of base; it is one of toy"):
        given_settings(args, flags, "base", {f.name for f in fields(BaseToy)})


def test_fields_without_a_command_line_form_or_with_two_types_are_refused():
    @dataclass
    class Odd:
        values: set = field(default_factory=set)

    @dataclass
    class Clash:
        low: str = "a"

    with pytest.raises(TypeError, match="has no command-line form"):
        parser_for({"odd": Odd})
    with pytest.raises(TypeError, match="one flag needs one type"):
        parser_for({"toy": Toy, "clash": Clash})


def test_every_registered_agent_setting_is_documented():
    for spec in AGENT_SPECS:
        docs = field_docs(spec.config_class())
        missing = [f.name for f in fields(spec.config_class()) if not docs.get(f.name)]
        assert not missing, f"{spec.config}: document {missing} in its Attributes: section"


def test_train_help_lists_every_agent_and_groups_the_flags_by_agent(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for spec in AGENT_SPECS:  # each agent on its own line, with its one-line help
        assert re.search(rf"^ +{re.escape(spec.name)} +{re.escape(spec.help)}$", out, re.MULTILINE), spec.name
    flat = " ".join(out.split())
    assert "settings of lmppo (LMPPOConfig)" in flat and "settings of sb3-ppo (SB3PPOConfig)" in flat
    assert "--kl-coef FLOAT" in flat and "--n-steps INT" in flat and "--self-critique, --no-self-critique" in flat


def test_a_flag_the_agent_does_not_take_is_an_error_naming_the_agents_that_do(capsys):
    assert main(["train", "TextDetox-critic-v0", "--agent", "sb3-a2c", "--kl-coef", "0.1"]) == 2
    assert "--kl-coef is not a setting of sb3-a2c; it is one of lmppo, rloo" in capsys.readouterr().err
    assert main(["train", "TextDetox-sparse-v0", "--mode", "prefix"]) == 2
    assert (
        "--mode only applies to envs with a dense reward, and TextDetox-sparse-v0 have none" in capsys.readouterr().err
    )
