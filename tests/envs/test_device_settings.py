"""``device`` and ``dtype`` of every env id: checked at construction, and carried to the scorer and the critic.

The environment stays on the CPU; the two values place the task's scorer model and a critic's model. A tiny
config-built LM (the ``tiny_lm_folder`` fixture) stands in for SmolLM2 wherever a model is the scorer or critic.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import textgym
from tests.wrappers.helpers import critic_wrapper, reward_wrapper, token_ids
from textgym.critics.attribution import AttributionCritic
from textgym.envs.registration import reward_of, task_of
from textgym.error import SettingsError, UnknownNameError
from textgym.scorers.sentiment_lm import LMSentimentScorer

IDS = textgym.registered_ids()
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the errors on a machine without CUDA")
TEXT = " It was a wonderful film. The ending was dull."


def _tiny_kwargs(env_id: str, folder) -> dict:
    """Arguments that put the tiny LM wherever ``env_id``'s scorer or critic would load SmolLM2."""
    kwargs = {}
    if task_of(env_id) == "sentiment":
        kwargs["scorer_kwargs"] = {"model": str(folder)}
    if reward_of(env_id) == "critic" and task_of(env_id) != "detox":  # detox's critic is the BiLSTM's
        kwargs["critic_kwargs"] = {"model": str(folder)}
    return kwargs


def _play(env: gym.Env, text: str = TEXT) -> tuple[float, dict]:
    """Plays ``text`` and EOS from the first prompt; returns the return and the last info."""
    env.reset(seed=0, options={"prompt_index": 0})
    total = 0.0
    for token in token_ids(env, text):
        _, reward, terminated, _, info = env.step(token)
        total += float(reward)
    assert terminated
    return total, info


# ------------------------------------------------------------------------------------------------- checks


@no_cuda
@pytest.mark.parametrize("env_id", IDS)
def test_cuda_without_cuda_fails_at_construction_and_says_how_to_fix_it(env_id):
    with pytest.raises(SettingsError, match=r"needs CUDA.*Use device='cpu', or 'auto'"):
        gym.make(env_id, device="cuda")
    with pytest.raises(SettingsError, match="needs CUDA"):
        gym.make_vec(env_id, num_envs=2, device="cuda:1")


def test_unknown_device_and_dtype_names_are_refused():
    with pytest.raises(SettingsError, match="Unknown device 'gpu'. Valid devices: auto, cpu, cuda, cuda:N"):
        gym.make("TextDetox-sparse-v0", device="gpu")
    with pytest.raises(UnknownNameError, match="Unknown dtype 'bf16'.*Valid dtypes: bfloat16, float32"):
        gym.make("TextDetox-critic-v0", dtype="bf16")


@no_cuda
def test_auto_means_the_cpu_here_and_the_env_records_the_resolved_device():
    env = gym.make("TextDetox-sparse-v0", device="auto", dtype="bfloat16")
    assert (env.unwrapped.device, env.unwrapped.dtype) == ("cpu", "bfloat16")
    assert gym.make("TextDetox-sparse-v0").unwrapped.device == "cpu"


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")  # handed the critic wrapper on purpose
@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_check_env_passes_with_bfloat16_models(env_id, tiny_lm_folder):
    env = gym.make(env_id, max_new_tokens=4, dtype="bfloat16", **_tiny_kwargs(env_id, tiny_lm_folder))
    check_env(env.unwrapped if reward_of(env_id) == "sparse" else reward_wrapper(env), skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert {key: value.dtype for key, value in obs.items()} == {"input_ids": np.int64, "attention_mask": np.int64}


# ------------------------------------------------------------------------------------------------- scorer


def test_the_sentiment_reward_comes_from_the_scorer_in_the_dtype_asked(tiny_lm_folder):
    kwargs = {"scorer_kwargs": {"model": str(tiny_lm_folder)}}
    half, info = _play(gym.make("TextSentiment-sparse-v0", dtype="bfloat16", **kwargs))
    full, _ = _play(gym.make("TextSentiment-sparse-v0", **kwargs))
    review = [info["prompt"] + info["completion"]]
    assert half == LMSentimentScorer(model=str(tiny_lm_folder), dtype="bfloat16")(review)[0]
    assert full == LMSentimentScorer(model=str(tiny_lm_folder))(review)[0]
    assert half != full  # so the dtype did reach the scorer


def test_the_toxicity_bilstm_stays_float32_so_detox_rewards_do_not_change():
    text = " you are a stupid idiot and I hate you"
    half = _play(gym.make("TextDetox-sparse-v0", dtype="bfloat16"), text)[0]
    assert half == _play(gym.make("TextDetox-sparse-v0"), text)[0]


def test_scorer_kwargs_may_set_their_own_dtype(tiny_lm_folder):
    mine = {"model": str(tiny_lm_folder), "dtype": "float32"}
    env = gym.make("TextSentiment-sparse-v0", dtype="bfloat16", scorer_kwargs=mine)
    reward, info = _play(env)
    assert reward == LMSentimentScorer(model=str(tiny_lm_folder))([info["prompt"] + info["completion"]])[0]


# ------------------------------------------------------------------------------------------------- critic


def _critic(env):
    return critic_wrapper(env).critic.critic  # below the cache


def test_the_critic_gets_the_env_dtype_unless_its_own_arguments_set_one(tiny_lm_folder):
    folder = str(tiny_lm_folder)
    env = gym.make(
        "TextSentiment-critic-v0", dtype="bfloat16", scorer_kwargs={"model": folder}, critic_kwargs={"model": folder}
    )
    critic = _critic(env)
    assert next(critic.model.parameters()).dtype == torch.bfloat16 and critic.placement == "cpu/bfloat16"
    _, info = _play(env)
    assert "critic_reward" in info and not info["critic_fallback"]

    own = gym.make("TextSentiment-critic-v0", dtype="bfloat16", critic_kwargs={"model": folder, "dtype": "float32"})
    assert next(_critic(own).model.parameters()).dtype == torch.float32
    spec = {"type": "lm-judge", "model": folder, "dtype": "float32"}
    assert _critic(gym.make("TextSummarize-critic-v0", dtype="bfloat16", critic=spec)).placement == "cpu/float32"


def test_the_self_critic_judges_with_the_policy_model_in_the_env_dtype(tiny_lm_folder):
    env = gym.make("TextSentiment-critic-v0", model=str(tiny_lm_folder), critic="self", dtype="bfloat16")
    critic = _critic(env)
    assert critic.model_name == str(tiny_lm_folder) and critic.placement == "cpu/bfloat16"


def test_the_default_detox_critic_builds_its_scorer_in_the_env_dtype():
    critic = _critic(gym.make("TextDetox-critic-v0", dtype="bfloat16"))
    assert isinstance(critic, AttributionCritic) and critic.placement == "cpu/bfloat16"


def test_the_vector_critic_wrapper_reads_the_sub_environments_settings(tiny_lm_folder):
    folder = str(tiny_lm_folder)
    vec = gym.make_vec(
        "TextSummarize-critic-v0", num_envs=2, dtype="bfloat16", critic_kwargs={"model": folder}, max_new_tokens=4
    )
    assert vec.critic.critic.placement == "cpu/bfloat16"
    assert vec.get_attr("dtype") == ("bfloat16", "bfloat16")


def test_critics_without_a_local_model_and_live_critic_objects_are_left_as_they_are():
    server = gym.make(
        "TextDetox-critic-v0", critic="http://127.0.0.1:9/v1", critic_kwargs={"model": "m"}, dtype="bfloat16"
    )
    assert not hasattr(_critic(server), "placement")  # an OpenAI-compatible critic takes no device or dtype
    live = AttributionCritic("detox")
    assert _critic(gym.make("TextDetox-critic-v0", critic=live, dtype="bfloat16")) is live
    assert live.placement == "cpu/float32"
