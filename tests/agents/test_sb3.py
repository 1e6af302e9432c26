"""SB3's PPO and A2C with the LM policy on a registered id, and the token-reward crediting callback."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from tests.tiny_model import save_tiny_causal_lm
from textgym.agents.sb3 import TextGymLMPolicy, TokenRewardCredit

EVERY_TOKEN_EARNS = {"default_reward": 0.1, "label_rewards": {"toxic": 0.1}}  # flagged or not, 0.1 a token


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return str(save_tiny_causal_lm(tmp_path_factory.mktemp("tiny-sb3")))


class Recorder(BaseCallback):
    """Keeps each rollout's stored rewards and every finished episode's token_rewards."""

    def __init__(self) -> None:
        super().__init__()
        self.buffers: list[np.ndarray] = []
        self.episodes: list[tuple[float, ...]] = []

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
            if done:
                self.episodes.append(info["token_rewards"])
        return True

    def _on_rollout_end(self) -> None:
        self.buffers.append(self.locals["rollout_buffer"].rewards[:, 0].copy())


def make(tiny: str, **kwargs) -> gym.Env:
    return gym.make("TextDetox-critic-v0", model=tiny, max_new_tokens=4, **EVERY_TOKEN_EARNS, **kwargs)


@pytest.mark.parametrize("algorithm", [PPO, A2C])
def test_sb3_trains_the_lm_policy_on_a_registered_id(tiny, algorithm):
    kwargs = {"n_steps": 8, "learning_rate": 1e-3, "seed": 0, "policy_kwargs": {"model": tiny, "freeze_layers": 1}}
    if algorithm is PPO:
        kwargs.update(batch_size=8, n_epochs=1)
    model = algorithm(TextGymLMPolicy, make(tiny), **kwargs)
    trained = model.policy.net.lm.model.layers[1].mlp.up_proj.weight
    frozen = model.policy.net.lm.model.layers[0].mlp.up_proj.weight
    before, frozen_before = trained.detach().clone(), frozen.detach().clone()
    model.learn(16)
    assert model.num_timesteps == 16
    assert not torch.equal(before, trained) and torch.equal(frozen_before, frozen)
    obs, _ = model.get_env().envs[0].reset(seed=0), None
    action, _ = model.predict(obs[0], deterministic=True)
    assert 0 <= int(action) < model.action_space.n


def test_credit_puts_each_share_on_its_token_and_carries_what_an_earlier_rollout_took(tiny):
    credit, recorder = TokenRewardCredit(), Recorder()
    model = PPO(
        TextGymLMPolicy, make(tiny), n_steps=6, batch_size=6, n_epochs=1, learning_rate=1e-4, seed=0,
        policy_kwargs={"model": tiny, "freeze_layers": 1},
    )  # fmt: skip
    model.learn(12, callback=CallbackList([credit, recorder]))
    first, second = recorder.buffers
    episode_1, episode_2 = recorder.episodes[:2]  # 4 tokens each: steps 0-3, then 4-5 | 0-1 of the next rollout
    np.testing.assert_allclose(first[:4], episode_1, atol=1e-6)
    np.testing.assert_allclose(first[4:6], [0.0, 0.0])  # not finished within this rollout: nothing yet
    # Rollout 2 holds episode 2's last two tokens: the first gets its own share plus the two already trained on.
    np.testing.assert_allclose(second[0], sum(episode_2[:3]), atol=1e-6)
    np.testing.assert_allclose(second[1], episode_2[3], atol=1e-6)
    assert credit.credited >= 2 and credit.carried == 1


def test_without_credit_the_episode_mode_pays_everything_on_the_last_token(tiny):
    recorder = Recorder()
    model = PPO(
        TextGymLMPolicy, make(tiny), n_steps=4, batch_size=4, n_epochs=1, learning_rate=1e-4, seed=0,
        policy_kwargs={"model": tiny, "freeze_layers": 1},
    )  # fmt: skip
    model.learn(4, callback=recorder)
    np.testing.assert_allclose(recorder.buffers[0][:3], 0.0)
    np.testing.assert_allclose(recorder.buffers[0][3], sum(recorder.episodes[0]), atol=1e-6)


def test_credit_leaves_prefix_mode_alone(tiny):
    credit, recorder = TokenRewardCredit(), Recorder()
    model = PPO(
        TextGymLMPolicy, make(tiny, mode="prefix"), n_steps=4, batch_size=4, n_epochs=1, learning_rate=1e-4,
        seed=0, policy_kwargs={"model": tiny, "freeze_layers": 1},
    )  # fmt: skip
    model.learn(4, callback=CallbackList([credit, recorder]))
    assert credit.credited == 0 and not credit.credit.any()
    assert recorder.buffers[0].sum() == pytest.approx(sum(recorder.episodes[0]), abs=1e-5)


def test_policy_rejects_an_env_that_is_not_textgym():
    with pytest.raises(ValueError, match="textgym env"):
        PPO(TextGymLMPolicy, gym.make("CartPole-v1"))


def test_policy_dtype_bfloat16_gives_bfloat16_lm_weights_and_trains(tiny):
    model = PPO(
        TextGymLMPolicy, make(tiny), n_steps=4, batch_size=4, n_epochs=1, learning_rate=1e-3, seed=0,
        policy_kwargs={"model": tiny, "freeze_layers": 1, "dtype": "bfloat16"},
    )  # fmt: skip
    lm = model.policy.net.lm
    assert {p.dtype for p in lm.parameters()} == {torch.bfloat16}
    assert model.policy.net.value_head.weight.dtype == torch.float32  # the value head stays float32
    trained = lm.model.layers[1].mlp.up_proj.weight
    before = trained.detach().clone()
    model.learn(4)
    assert not torch.equal(before, trained)
    from textgym.models import load_causal_lm

    assert {p.dtype for p in load_causal_lm(tiny).parameters()} == {torch.float32}  # the shared model is untouched
    assert model.policy._get_constructor_parameters()["dtype"] == "bfloat16"  # a saved model reloads in bfloat16
