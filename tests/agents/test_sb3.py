"""SB3's PPO and A2C with the LM policy on a registered id, its fast paths, and the token-reward crediting callback."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import DummyVecEnv

from textgym.agents import sb3
from textgym.agents.sb3 import EpisodeRolloutBuffer, TextGymLMPolicy, TokenRewardCredit, prefix_groups

EVERY_TOKEN_EARNS = {"default_reward": 0.1, "label_rewards": {"toxic": 0.1}}  # flagged or not, 0.1 a token


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
    return gym.make("TextDetox-critic-v0", model=tiny, **{"max_new_tokens": 4, **EVERY_TOKEN_EARNS, **kwargs})


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
    # SB3's Adam steps float32 master weights and writes them, rounded, into the bfloat16 weights.
    masters = model.policy.optimizer.master_weights
    trainable = [p for p in lm.parameters() if p.requires_grad]
    assert len(masters) == len(trainable) and {m.dtype for m in masters} == {torch.float32}
    assert all(torch.equal(p.detach(), m.detach().to(torch.bfloat16)) for p, m in zip(trainable, masters, strict=True))
    from textgym.models import load_causal_lm

    assert {p.dtype for p in load_causal_lm(tiny).parameters()} == {torch.float32}  # the shared model is untouched
    assert model.policy._get_constructor_parameters()["dtype"] == "bfloat16"  # a saved model reloads in bfloat16


# The fast paths: collection cache, prefix sharing in updates, episode minibatches, and the device rebuild.


def staggered_envs(tiny: str, n: int) -> DummyVecEnv:
    """``n`` envs whose episodes have different lengths (3, 4, ... tokens), so they start and end out of step.

    The prompt budget shrinks as the episode grows, so every env's observation has the same width.
    """

    def make_env(i: int):
        return lambda: make(tiny, max_new_tokens=3 + i, prompt_budget=40 - i)

    return DummyVecEnv([make_env(i) for i in range(n)])


def fast_and_slow(tiny: str, env, **kwargs) -> tuple[PPO, PPO]:
    """Two PPOs with the same weights: the default (cache, prefix sharing) and the one that computes every row alone.

    The value head and the LM head are made non-trivial (they start at zero and near-uniform) so that values and
    log-probabilities can tell a wrong position from the right one.
    """
    settings = {"n_steps": 8, "batch_size": 8, "n_epochs": 1, "learning_rate": 1e-3, "seed": 0, **kwargs}
    policy = {"model": tiny, "freeze_layers": 1}
    fast = PPO(TextGymLMPolicy, env, policy_kwargs=policy, rollout_buffer_class=EpisodeRolloutBuffer, **settings)
    slow = PPO(TextGymLMPolicy, env, policy_kwargs={**policy, "kv_cache": False, "group_prefixes": False}, **settings)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        fast.policy.net.value_head.weight.copy_(
            torch.randn(fast.policy.net.value_head.weight.shape, generator=generator)
        )
        fast.policy.net.lm.lm_head.weight.mul_(30)
    slow.policy.load_state_dict(fast.policy.state_dict())
    return fast, slow


class InputWidths:
    """Records the number of input columns of every forward pass of an LM (a hook on its embeddings)."""

    def __init__(self, lm) -> None:
        self.widths: list[int] = []
        lm.get_input_embeddings().register_forward_hook(
            lambda module, inputs, output: self.widths.append(output.shape[1])
        )


@pytest.mark.parametrize("editable", [True, False], ids=["rows-edited", "cache-not-editable"])
def test_the_collection_cache_gives_the_full_recomputation_across_episodes_and_envs(tiny, editable, monkeypatch):
    if not editable:  # a model whose cache cannot be edited by row: a restart recomputes every row
        monkeypatch.setattr(sb3, "_editable_layers", lambda cache: None)
    env = staggered_envs(tiny, 3)
    fast, slow = fast_and_slow(tiny, env)
    widths = InputWidths(fast.policy.net.lm)
    obs, dones, incremental = env.reset(), np.ones(3, dtype=bool), 0
    for step in range(24):
        if step == 10:  # unrelated observations in between (predict, values): recomputed, and so is the next step
            other = {key: torch.as_tensor(value[::-1].copy()) for key, value in obs.items()}
            fast.predict({key: value.numpy() for key, value in other.items()})
            with torch.no_grad():
                fast.policy.predict_values(other)
        if step == 16:  # a training phase: the cache must not serve the old weights
            fast.policy.set_training_mode(True)
            with torch.no_grad():
                fast.policy.net.lm.lm_head.weight.mul_(1.5)
            fast.policy.set_training_mode(False)
            slow.policy.load_state_dict(fast.policy.state_dict())
        tensors = {key: torch.as_tensor(value) for key, value in obs.items()}
        calls = len(widths.widths)
        with torch.no_grad():
            torch.manual_seed(step)
            actions, values, log_probs = fast.policy(tensors)
            torch.manual_seed(step)
            slow_actions, slow_values, slow_log_probs = slow.policy(tensors)
        assert torch.equal(actions, slow_actions)
        torch.testing.assert_close(log_probs, slow_log_probs, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(values, slow_values, atol=1e-4, rtol=1e-4)
        # The rows that extend their last observation run one new column; restarting ones (edited) their prefix.
        ran = widths.widths[calls:]
        if step not in (0, 10, 16) and (not dones.any() or editable):
            assert ran[0] == 1 and len(ran) == 1 + dones.any()
            if dones.any():
                assert ran[1] == int(tensors["attention_mask"][dones].sum(1).max())
            incremental += 1
        obs, _, dones, _ = env.step(actions.numpy())
    assert incremental >= (20 if editable else 5)  # and episodes ended out of step, in several envs


def test_prefix_groups_find_the_sequences_that_cover_the_others():
    pad = 0
    ids = torch.tensor([[pad, 5, 6, 7], [pad, pad, 5, 6], [pad, 5, 6, 9], [5, 6, 7, 8], [pad, pad, pad, 4]])
    mask = (ids != pad).long()
    heads, group, back = prefix_groups(ids, mask)
    assert heads == [3, 2, 4]  # longest first: [5 6 7 8] covers [5 6 7] and [5 6]; [5 6 9] and [4] stand alone
    assert [heads[g] for g in group.tolist()] == [3, 3, 2, 3, 4]
    assert back.tolist() == [1, 2, 0, 0, 0]


def test_sharing_prefixes_in_the_update_gives_the_per_row_results_and_gradients(tiny):
    fast, slow = fast_and_slow(tiny, staggered_envs(tiny, 2), n_steps=10, batch_size=10)
    checked = []

    class Compare(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            slow.policy.load_state_dict(fast.policy.state_dict())  # fast has trained on the rollout before
            for batch in self.locals["rollout_buffer"].get(10):
                actions = batch.actions.long().flatten()
                results = []
                for model in (fast, slow):
                    model.policy.optimizer.zero_grad()
                    values, log_probs, entropy = model.policy.evaluate_actions(batch.observations, actions)
                    (log_probs.sum() + values.sum()).backward()
                    results.append((values, log_probs, entropy, model.policy.net.lm.lm_head.weight.grad.clone()))
                for shared, alone in zip(*results, strict=True):
                    torch.testing.assert_close(shared, alone, atol=1e-4, rtol=1e-4)
                heads = prefix_groups(batch.observations["input_ids"], batch.observations["attention_mask"])[0]
                checked.append((len(actions), len(heads)))

    fast.learn(40, callback=Compare())
    assert sum(rows for rows, _ in checked) == 2 * 20  # two rollouts of 10 steps in 2 envs
    assert sum(heads for _, heads in checked) < sum(rows for rows, _ in checked) / 2  # one forward serves many rows


def test_episode_minibatches_keep_sb3s_sizes_and_hold_whole_episodes(tiny):
    env = staggered_envs(tiny, 2)
    model = PPO(
        TextGymLMPolicy, env, n_steps=10, batch_size=4, n_epochs=1, seed=0, rollout_buffer_class=EpisodeRolloutBuffer,
        policy_kwargs={"model": tiny, "freeze_layers": 1},
    )  # fmt: skip
    model.learn(10)
    buffer = model.rollout_buffer
    starts = buffer.episode_starts.copy()
    np.random.seed(3)
    first = [batch.actions.clone() for batch in buffer.get(4)]
    assert [len(batch) for batch in first] == [4, 4, 4, 4, 4]  # SB3's own sizes: 20 steps in fives of 4
    np.random.seed(3)
    assert all(torch.equal(a, b) for a, b in zip(first, [batch.actions for batch in buffer.get(4)], strict=True))
    # The flattened order lays each episode's steps end to end: env-major, a new episode at each start.
    episodes = buffer.episodes
    assert sorted(np.concatenate(episodes).tolist()) == list(range(20))
    for steps in episodes:
        env_index, first_step = divmod(int(steps[0]), 10)
        assert first_step == 0 or starts[first_step, env_index]
        assert not starts[steps[1:] % 10, steps[1:] // 10].any()  # no start inside an episode
    order = []
    np.random.seed(4)
    for batch in buffer.get(4):
        order += batch.observations["attention_mask"].sum(1).tolist()
    # Within an episode the observation grows by one token a step: the order of lengths runs up by ones.
    assert (np.diff(order) == 1).sum() >= 20 - len(episodes)


def test_policy_on_bfloat16_or_another_device_leaves_the_shared_cpu_model_alone(tiny):
    from textgym.models import load_causal_lm

    shared = load_causal_lm(tiny)
    before = {name: p.detach().clone() for name, p in shared.named_parameters()}
    storage = {p.data_ptr() for p in shared.parameters()}
    model = PPO(
        TextGymLMPolicy, make(tiny), n_steps=4, batch_size=4, n_epochs=1, learning_rate=1e-3, seed=0, device="cpu",
        policy_kwargs={"model": tiny, "freeze_layers": 1, "dtype": "bfloat16"},
    )  # fmt: skip
    assert not storage & {p.data_ptr() for p in model.policy.parameters()}  # a copy: nothing shared to move
    assert model.policy.optimizer.defaults["fused"]  # SB3's Adam, in one kernel a step
    model.learn(4)
    for name, p in shared.named_parameters():
        assert p.device.type == "cpu" and p.dtype == torch.float32 and torch.equal(p, before[name])
    # In float32 on the CPU the frozen layers are the shared model's own tensors (the memory saving), and a move
    # onto the device the policy is on already changes nothing.
    plain = PPO(
        TextGymLMPolicy,
        make(tiny),
        n_steps=4,
        batch_size=4,
        device="cpu",
        policy_kwargs={"model": tiny, "freeze_layers": 1},
    )
    net = plain.policy.net
    assert net.lm.model.layers[0].mlp.up_proj.weight is shared.model.layers[0].mlp.up_proj.weight
    assert plain.policy.to("cpu").net is net and plain.policy.cpu().net is net
    with pytest.raises(ValueError, match="keeps its dtype"):
        plain.policy.to(torch.float16)


def test_a_rebuild_for_another_device_keeps_the_trained_weights_and_optimizer_state(tiny):
    # On a GPU machine .to("cuda") rebuilds the LM there (tests/test_cuda_sb3.py); here the rebuild runs on the CPU.
    model = PPO(
        TextGymLMPolicy, make(tiny), n_steps=4, batch_size=4, n_epochs=1, learning_rate=1e-3, seed=0, device="cpu",
        policy_kwargs={"model": tiny, "freeze_layers": 1},
    )  # fmt: skip
    model.learn(4)
    policy = model.policy
    trained = {name: tensor.clone() for name, tensor in policy.net.trainable_state().items()}
    moments = [state["exp_avg"].clone() for state in policy.optimizer.state.values()]
    old_net = policy.net
    policy._rebuild(torch.device("cpu"))
    assert policy.net is not old_net
    for name, tensor in policy.net.trainable_state().items():
        assert torch.equal(tensor, trained[name]), name
    assert all(torch.equal(a, s["exp_avg"]) for a, s in zip(moments, policy.optimizer.state.values(), strict=True))
    assert {id(p) for p in policy.optimizer.param_groups[0]["params"]} == {
        id(p) for p in policy.parameters() if p.requires_grad
    }
    model.learn(4, reset_num_timesteps=False)  # and it trains on
