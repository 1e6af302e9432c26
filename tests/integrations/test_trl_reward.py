"""TextGymReward: a textgym id's episode return as a TRL reward function, against the task's scorer, the env stepped
by hand and a real GRPOTrainer run. Only the last two tests need TRL (they skip without it)."""

from __future__ import annotations

import math
import tempfile

import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401  (registers the ids)
from textgym.critics.cache import CachedCritic
from textgym.error import DataError, SettingsError
from textgym.integrations.trl import TextGymReward, dataset
from textgym.models import load_tokenizer
from textgym.tasks import PromptItem, get_items, get_scorer, get_task

TOKENIZER = load_tokenizer()
EOS = TOKENIZER.eos_token_id
DETOX = [  # (source, completion)
    ("You are such a", " stupid idiot, and I hate you."),
    ("The man said", " hello to his friend, and smiled."),
    ("Shut up,", " you loser!"),
]
SENTIMENT = [
    ("The film was", " dull at first, but the ending is wonderful. I loved it."),
    ("I watched this movie", " and hated it, a waste of time."),
]


def ids(text: str) -> list[int]:
    return TOKENIZER(text, add_special_tokens=False).input_ids


def decoded(tokens: list[int]) -> str:
    return TOKENIZER.decode(tokens, skip_special_tokens=True)


def call(reward: TextGymReward, rows: list[tuple[str, str]], **extra) -> list[float]:
    """The reward on (source, completion) rows, with the prompt and source columns of textgym's dataset()."""
    return reward(
        prompts=[reward.task.format_prompt(PromptItem(source)) for source, _ in rows],
        completions=[completion for _, completion in rows],
        source=[source for source, _ in rows],
        **extra,
    )


def stepped(env_id: str, source: str, tokens: list[int], **kwargs) -> float:
    """The return of the single env stepped token by token (the episode must end on the last token)."""
    env = gym.make(env_id, **kwargs)
    env.reset(options={"prompt": {"source": source}})
    total = 0.0
    for t, token in enumerate(tokens):
        _, reward, terminated, truncated, _ = env.step(token)
        total += float(reward)
        if terminated or truncated:
            assert t == len(tokens) - 1, "the episode ended before its last token"
            return total
    raise AssertionError("the episode did not end on the given tokens")


# -- the return: sparse ids are the task's score; dense ids keep or shift it as their formula says ----------------


def test_a_sparse_id_gives_the_tasks_score_of_each_completion():
    reward = TextGymReward("TextDetox-sparse-v0")
    expected = get_scorer("detox")([PromptItem(s) for s, _ in DETOX], [c for _, c in DETOX])
    np.testing.assert_allclose(call(reward, DETOX), expected, atol=1e-6)


def test_summaries_are_scored_against_the_reference_column_of_dataset():
    rows = dataset("summarize", "eval").select(range(2))
    completions = [" A short summary of the post.", " Someone asks for advice."]
    reward = TextGymReward("TextSummarize-sparse-v0")
    out = reward(prompts=rows["prompt"], completions=completions, source=rows["source"], reference=rows["reference"])
    items = [PromptItem(s, r) for s, r in zip(rows["source"], rows["reference"], strict=True)]
    np.testing.assert_allclose(out, get_scorer("summarize")(items, completions), atol=1e-6)
    assert rows["prompt"][0] == get_task("summarize").format_prompt(items[0]) and rows["prompt"][0].endswith("TL;DR:")
    with pytest.raises(DataError, match="'reference' column"):
        reward(prompts=rows["prompt"], completions=completions, source=rows["source"])
    with pytest.raises(DataError, match="'reference' column"):
        reward(prompts=rows["prompt"], completions=completions)  # the source read back from the prompt, no reference


def test_uniform_keeps_the_score_and_potential_pays_the_score_minus_the_empty_completions():
    items = [PromptItem(source) for source, _ in SENTIMENT]
    scorer = get_scorer("sentiment")
    score = np.array(scorer(items, [c for _, c in SENTIMENT]))
    # The env scores one text at a time, the scorer here two together: float32 LM margins move by ~1e-6 with the
    # batch's shape.
    np.testing.assert_allclose(call(TextGymReward("TextSentiment-uniform-v0"), SENTIMENT), score, atol=1e-5)
    empty = np.array(scorer(items, ["", ""]))
    np.testing.assert_allclose(call(TextGymReward("TextSentiment-potential-v0"), SENTIMENT), score - empty, atol=1e-5)


def test_a_critic_id_gives_the_single_envs_return_stepped_token_by_token_with_the_documented_episode_ends():
    sources = [source for source, _ in DETOX] + ["Get lost"]
    rows = [
        ids(DETOX[0][1]) + [EOS],  # ends at EOS
        ids(DETOX[1][1] + " It was a long and happy day for everyone."),  # the longest: ends by the length limit
        ids(DETOX[2][1]),  # stops early without EOS: closed with EOS
        ids(" you moron") + [EOS] + ids(" never seen"),  # the episode ends at the first EOS
    ]
    limit = len(rows[1])
    episodes = [rows[0], rows[1], rows[2] + [EOS], ids(" you moron") + [EOS]]
    paid = {"default_reward": 0.25}  # every token under no span is paid, EOS too: the episode ends count
    pairs = zip(sources, episodes, strict=True)
    expected = [stepped("TextDetox-critic-v0", s, e, max_new_tokens=limit, **paid) for s, e in pairs]
    reward = TextGymReward("TextDetox-critic-v0", **paid)
    texts = [decoded(row) for row in rows]
    out = reward(prompts=sources, completions=texts, completion_ids=rows, source=sources)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert expected[0] < 0.0 < 2.0 < expected[1]  # the toxic text's spans cost, the friendly one's tokens pay


def test_a_completion_longer_than_max_new_tokens_is_cut_there_as_the_env_cuts_it():
    source, completion = DETOX[0]
    reward = TextGymReward("TextDetox-sparse-v0", max_new_tokens=3)
    expected = get_scorer("detox")([PromptItem(source)], [decoded(ids(completion)[:3])])
    assert call(reward, [(source, completion)]) == pytest.approx(expected, abs=1e-6)
    assert call(reward, [(source, completion)]) != pytest.approx(call(TextGymReward("TextDetox-sparse-v0"), DETOX[:1]))


# -- batching ---------------------------------------------------------------------------------------------------


def test_a_batch_gives_what_each_completion_gives_alone():
    reward = TextGymReward("TextDetox-critic-v0", mode="prefix")
    batch = call(reward, DETOX)
    alone = [call(reward, [row])[0] for row in DETOX]
    np.testing.assert_allclose(batch, alone, atol=1e-6)


def test_the_scorer_and_the_critic_are_asked_once_per_step_for_every_completion_that_ends_there(monkeypatch):
    rows = [
        ("You are", " a fool"),
        ("He said", " go home"),
        ("They are", " rude and vile people"),
        ("We", " won it all"),
    ]
    lengths = [len(ids(c)) + 1 for _, c in rows]  # each is closed with EOS
    scorer = get_scorer("detox")
    calls: list[int] = []
    original = type(scorer).__call__

    def counting(self, items, completions):
        calls.append(len(completions))
        return original(self, items, completions)

    monkeypatch.setattr(type(scorer), "__call__", counting)
    reward = TextGymReward("TextDetox-sparse-v0", max_new_tokens=max(lengths) + 1)
    call(reward, rows)
    assert sorted(calls) == sorted(lengths.count(n) for n in set(lengths))  # one call per step at which rows end
    assert len(calls) <= max(lengths) and sum(calls) == len(rows) and max(calls) == 2  # ' a fool', ' go home'

    critiques: list[int] = []
    critique = CachedCritic.critique

    def counting_critique(self, prompts, completions, *args, **kwargs):
        critiques.append(len(completions))
        return critique(self, prompts, completions, *args, **kwargs)

    monkeypatch.setattr(CachedCritic, "critique", counting_critique)
    call(TextGymReward("TextDetox-critic-v0", max_new_tokens=max(lengths) + 1), [(s, c + ",") for s, c in rows])
    assert len(critiques) == len(set(lengths)) and sum(critiques) == len(rows)  # episode mode: one at the end


# -- prompts: source columns, prompt_index, the prompt read back ----------------------------------------------------


def test_prompt_index_and_the_prompt_alone_find_the_same_items_as_the_source_column():
    items = get_items("detox", "eval")[:2]
    prompts = [get_task("detox").format_prompt(item) for item in items]
    completions = [" what a day", " you idiot"]
    reward = TextGymReward("TextDetox-sparse-v0", split="eval")
    by_source = reward(prompts=prompts, completions=completions, source=[item.source for item in items])
    assert reward(prompts=prompts, completions=completions, prompt_index=[0, 1]) == pytest.approx(by_source)
    assert reward(prompts=prompts, completions=completions) == pytest.approx(by_source)
    with pytest.raises(DataError, match="split 'train'"):  # indices into another split than the data set's
        TextGymReward("TextDetox-sparse-v0")(prompts=prompts, completions=completions, prompt_index=[0, 1])
    with pytest.raises(DataError, match="2 'source' values for 3 completions"):
        reward(prompts=[*prompts, "x"], completions=[*completions, "y"], source=[item.source for item in items])


def test_bad_settings_are_refused_when_the_reward_is_built():
    with pytest.raises(SettingsError, match="not a textgym id"):
        TextGymReward("CartPole-v1")
    with pytest.raises(ValueError, match="max_new_tokens must be a positive integer"):
        TextGymReward("TextDetox-sparse-v0", max_new_tokens=0)
    with pytest.raises(SettingsError, match="Unknown argument"):
        TextGymReward("TextDetox-critic-v0", critc="attribution")


# -- TRL 1.16 -------------------------------------------------------------------------------------------------------


def test_it_takes_trls_keyword_arguments_and_name():
    trl_utils = pytest.importorskip("trl.trainer.utils")
    from transformers import TrainerState

    reward = TextGymReward("TextDetox-critic-v0")
    assert trl_utils.get_callable_name(reward) == "TextDetox-critic-v0" and not trl_utils.is_async_callable(reward)
    logged = []
    source, completion = DETOX[0]
    tokens = ids(completion) + [EOS]
    out = reward(  # the keywords of GRPOTrainer._calculate_rewards (trl/trainer/grpo_trainer.py, TRL 1.16)
        prompts=[source], completions=[completion], completion_ids=[tokens], source=[source],
        trainer_state=TrainerState(), log_extra=logged.append, log_metric=lambda *a: logged.append(a),
    )  # fmt: skip
    assert out == pytest.approx([stepped("TextDetox-critic-v0", source, tokens, max_new_tokens=len(tokens))])
    assert isinstance(out[0], float) and logged == []


def test_a_grpo_trainer_run_logs_the_reward_under_its_name(tiny_lm_folder):
    trl = pytest.importorskip("trl")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    class Recorded(TextGymReward):
        calls: list = []

        def __call__(self, **kwargs):  # TRL passes keywords only
            out = super().__call__(**kwargs)
            self.calls.append((kwargs, out))
            return out

    reward = Recorded("TextDetox-critic-v0", model=str(tiny_lm_folder), max_new_tokens=6)
    with tempfile.TemporaryDirectory() as out:
        config = trl.GRPOConfig(
            output_dir=out, max_steps=2, per_device_train_batch_size=4, num_generations=2, max_completion_length=6,
            use_cpu=True, bf16=False, report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True,
            dataloader_num_workers=0, seed=0,
        )  # fmt: skip
        trainer = trl.GRPOTrainer(
            model=AutoModelForCausalLM.from_pretrained(tiny_lm_folder),
            processing_class=AutoTokenizer.from_pretrained(tiny_lm_folder),
            reward_funcs=[reward],
            args=config,
            train_dataset=dataset("detox").select(range(8)),
        )
        trainer.train()
    logs = [entry for entry in trainer.state.log_history if "rewards/TextDetox-critic-v0/mean" in entry]
    assert len(logs) == 2 and all(math.isfinite(entry["rewards/TextDetox-critic-v0/mean"]) for entry in logs)
    assert len(reward.calls) == 2
    for (kwargs, values), entry in zip(reward.calls, logs, strict=True):
        assert set(kwargs) == {"prompts", "completions", "completion_ids", "source", "trainer_state", "log_extra",
                               "log_metric"}  # fmt: skip
        assert all(row[-1] == EOS or len(row) == 6 for row in kwargs["completion_ids"])
        assert np.mean(values) == pytest.approx(entry["rewards/TextDetox-critic-v0/mean"], abs=1e-5)
        assert TextGymReward("TextDetox-critic-v0", model=str(tiny_lm_folder), max_new_tokens=6)(**kwargs) == (
            pytest.approx(values, abs=1e-6)
        )
