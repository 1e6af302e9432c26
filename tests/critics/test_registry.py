"""Critic specs by name (textgym.critics.registry): normalised configs, helpful errors, one critic per config."""

from __future__ import annotations

import pytest

from textgym.critics.attribution import AttributionCritic
from textgym.critics.registry import CRITIC_TYPES, DEFAULT_CRITICS, build_critic, critic_config
from textgym.error import UnknownNameError


@pytest.mark.parametrize(
    ("task", "kind"), [("sentiment", "lm-judge"), ("detox", "attribution"), ("summarize", "lm-judge")]
)
def test_default_is_the_tasks_offline_critic(task, kind):
    expected = DEFAULT_CRITICS[task]
    assert expected["type"] == kind
    assert critic_config(task) == critic_config(task, "default") == expected
    config = critic_config(task, "default", threshold=0.4)
    assert config == {**expected, "threshold": 0.4}
    assert "threshold" not in DEFAULT_CRITICS[task]  # the returned config is a copy: the defaults are untouched


@pytest.mark.parametrize("kind", CRITIC_TYPES)
def test_a_type_name_is_a_config_of_that_type(kind):
    assert critic_config("detox", kind) == {"type": kind}
    assert critic_config("detox", kind, trim=False) == {"type": kind, "trim": False}


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/v1", "https://critic.example/v1"])
def test_a_url_is_an_openai_compatible_server(url):
    assert critic_config("detox", url, model="m") == {"type": "openai", "base_url": url, "model": "m"}


def test_a_named_model_or_folder_is_an_lm_judge_on_it(tmp_path):
    assert critic_config("sentiment", "smollm2-135m-instruct") == {"type": "lm-judge", "model": "smollm2-135m-instruct"}
    assert critic_config("sentiment", str(tmp_path), threshold=1.0) == {
        "type": "lm-judge",
        "model": str(tmp_path),
        "threshold": 1.0,
    }
    assert critic_config("sentiment", "HuggingFaceTB/SmolLM2-360M-Instruct") == {
        "type": "lm-judge",
        "model": "HuggingFaceTB/SmolLM2-360M-Instruct",
    }


def test_a_dict_is_copied_and_merged_with_the_keyword_arguments():
    spec = {"type": "attribution", "threshold": 0.3}
    assert critic_config("detox", spec, trim=False) == {"type": "attribution", "threshold": 0.3, "trim": False}
    assert critic_config("detox", spec, threshold=0.1)["threshold"] == 0.1
    assert spec == {"type": "attribution", "threshold": 0.3}


def test_an_unknown_type_in_a_dict_suggests_the_close_one():
    with pytest.raises(UnknownNameError, match=r"Unknown critic type 'atribution'\. Did you mean 'attribution'\?"):
        critic_config("detox", {"type": "atribution"})
    with pytest.raises(UnknownNameError, match="Valid critic types: attribution, lm-judge, lm-list, openai, self"):
        critic_config("detox", {"threshold": 0.3})


def test_an_unknown_bare_model_name_suggests_the_close_one():
    with pytest.raises(
        UnknownNameError, match=r"Unknown critic 'smollm2-135m'\. Did you mean 'smollm2-135m-instruct'\?"
    ):
        critic_config("sentiment", "smollm2-135m")


@pytest.mark.parametrize(("typo", "meant"), [("atribution", "attribution"), ("lm-judg", "lm-judge")])
def test_a_typo_of_a_type_name_suggests_the_type(typo, meant):
    with pytest.raises(UnknownNameError) as caught:
        critic_config("detox", typo)
    assert f"Did you mean '{meant}'?" in str(caught.value)


def test_build_critic_returns_one_object_per_config():
    critic = build_critic("detox", "attribution")
    assert isinstance(critic, AttributionCritic) and critic.task == "detox"
    assert build_critic("detox", {"type": "attribution"}) is critic
    default = build_critic("detox")
    assert isinstance(default, AttributionCritic)
    assert build_critic("detox", dict(DEFAULT_CRITICS["detox"])) is default is build_critic("detox", "default")
    tuned = build_critic("detox", "attribution", threshold=0.3, trim=False)
    assert tuned is build_critic("detox", {"trim": False, "threshold": 0.3, "type": "attribution"})
    assert tuned is not critic and (tuned.threshold, tuned.trim) == (0.3, False)
    assert build_critic("summarize", "attribution") is not critic


def test_build_critic_builds_a_server_critic_without_contacting_it():
    critic = build_critic("detox", "http://127.0.0.1:9/v1", model="m", max_retries=0)
    assert type(critic).__name__ == "OpenAICompatibleCritic"
    assert (critic.base_url, critic.model, critic.max_retries) == ("http://127.0.0.1:9/v1", "m", 0)
    assert (
        build_critic("detox", {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "max_retries": 0})
        is critic
    )


def test_a_self_critic_needs_the_policy_model():
    with pytest.raises(ValueError, match="pass model=<the policy model name>"):
        build_critic("detox", "self")


def test_missing_or_misspelt_critic_arguments_say_how_to_fix():
    from textgym.error import CriticConfigError

    with pytest.raises(
        CriticConfigError, match=r"Bad arguments \['base_url'\] for a 'openai' critic.*needs base_url and model"
    ):
        build_critic("detox", "http://127.0.0.1:9/v1")
    with pytest.raises(CriticConfigError, match=r"Bad arguments \['thresold'\] for a 'attribution' critic"):
        build_critic("detox", {"type": "attribution", "thresold": 0.3})
