"""TextGenerationEnv against its docstring: observation layout, episode end, rewards, render and error paths."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import textgym
from textgym.envs.text_env import TextGenerationEnv
from textgym.error import DataError, EpisodeFinishedError, InvalidActionError, UnknownNameError

IDS = [env_id for env_id in textgym.registered_ids() if env_id.endswith("-sparse-v0")]  # the base env
DETOX = "TextDetox-sparse-v0"
SENTIMENT = "TextSentiment-sparse-v0"
SUMMARIZE = "TextSummarize-sparse-v0"

# Ordinary word tokens of the default tokenizer (" the", " cat", " sat"): neither EOS nor pad nor special.
WORDS = " the cat sat"


def _word_ids(env: gym.Env, text: str = WORDS) -> list[int]:
    ids = env.unwrapped.tokenizer(text, add_special_tokens=False).input_ids
    assert not set(ids) & set(env.unwrapped.tokenizer.all_special_ids)
    return ids


def _step_all(env: gym.Env, ids: list[int]):
    """Steps every id; all but the last step must be non-final with reward 0. Returns the last step's results."""
    for token in ids[:-1]:
        _, reward, terminated, truncated, info = env.step(token)
        assert (reward, terminated, truncated, info) == (0.0, False, False, {})
    return env.step(ids[-1])


# --------------------------------------------------------------------------------------------- scorers (real)


@pytest.fixture(scope="module")
def toxicity_scorer():
    from textgym.scorers.toxicity_bilstm import ToxicityScorer

    return ToxicityScorer()


@pytest.fixture(scope="module")
def sentiment_scorer():
    from textgym.scorers.sentiment_lm import LMSentimentScorer

    return LMSentimentScorer()


@pytest.fixture(scope="module")
def summary_scorer():
    from textgym.scorers.summary_quality import SummaryQualityScorer

    return SummaryQualityScorer()


# ------------------------------------------------------------------------------------------ observation layout


@pytest.mark.parametrize("env_id", IDS)
def test_observation_layout(env_id):
    env = gym.make(env_id, max_new_tokens=4)
    unwrapped = env.unwrapped
    pad = unwrapped.pad_token_id
    length = unwrapped.prompt_budget + 4
    assert unwrapped.obs_length == length
    assert env.observation_space["input_ids"].shape == (length,)
    assert env.observation_space["attention_mask"].shape == (length,)
    assert env.action_space == gym.spaces.Discrete(len(unwrapped.tokenizer))

    obs, info = env.reset(seed=0, options={"prompt_index": 0})
    prompt_ids = unwrapped.tokenizer(info["prompt"]).input_ids
    assert 0 < len(prompt_ids) <= unwrapped.prompt_budget and not info["prompt_truncated"]

    generated: list[int] = []
    for token in [*_word_ids(env), None]:
        if token is not None:
            obs, reward, terminated, truncated, step_info = env.step(token)
            generated.append(token)
            assert (reward, terminated, truncated, step_info) == (0.0, False, False, {})
        content = prompt_ids + generated
        n = len(content)
        assert set(obs) == {"input_ids", "attention_mask"}
        for value in obs.values():
            assert value.dtype == np.int64 and value.shape == (length,)
        assert obs in env.observation_space
        assert obs["input_ids"][length - n :].tolist() == content  # prompt, then generated, right-aligned
        assert obs["input_ids"][: length - n].tolist() == [pad] * (length - n)  # left padding
        assert obs["attention_mask"].tolist() == [0] * (length - n) + [1] * n
    assert unwrapped.generated_ids == generated


def test_eos_in_the_observation_is_attended_although_it_is_the_pad_id():
    env = gym.make(DETOX, max_new_tokens=4)
    eos = env.unwrapped.eos_token_id
    env.reset(seed=0, options={"prompt": "Hello there"})
    obs, _, terminated, _, info = env.step(eos)
    assert terminated and info["num_new_tokens"] == 1 and info["completion"] == ""
    n_prompt = len(env.unwrapped.tokenizer("Hello there").input_ids)
    assert obs["input_ids"][-1] == eos
    assert obs["attention_mask"].sum() == n_prompt + 1
    assert obs["attention_mask"][-1] == 1


# ------------------------------------------------------------------------------------------------ episode end


@pytest.mark.parametrize("env_id", IDS)
def test_episode_ends_at_eos(env_id):
    env = gym.make(env_id, max_new_tokens=6)
    unwrapped = env.unwrapped
    env.reset(seed=1)
    words = _word_ids(env)
    obs, reward, terminated, truncated, info = _step_all(env, [*words, unwrapped.eos_token_id])
    assert terminated is True and truncated is False
    assert info["length_limit"] is False
    assert info["num_new_tokens"] == len(words) + 1 < 6
    assert info["completion"] == WORDS  # decoded without the EOS token
    assert set(info) == {"prompt", "completion", "extrinsic_score", "num_new_tokens", "length_limit"}
    assert isinstance(reward, float) and reward == info["extrinsic_score"] and 0.0 <= reward <= 1.0
    assert obs in env.observation_space
    with pytest.raises(EpisodeFinishedError, match="episode has ended"):
        env.step(words[0])


@pytest.mark.parametrize("env_id", IDS)
def test_episode_ends_at_max_new_tokens(env_id):
    env = gym.make(env_id, max_new_tokens=3)
    env.reset(seed=2)
    words = _word_ids(env)
    assert len(words) == 3
    obs, reward, terminated, truncated, info = _step_all(env, words)
    assert terminated is True and truncated is False
    assert info["length_limit"] is True
    assert info["num_new_tokens"] == 3
    assert info["completion"] == WORDS
    assert reward == info["extrinsic_score"] and 0.0 <= reward <= 1.0
    assert obs["input_ids"][-3:].tolist() == words
    with pytest.raises(EpisodeFinishedError, match=r"call env.reset\(\) before step\(\)"):
        env.unwrapped.step(words[0])
    # A new episode starts cleanly after reset.
    obs, info = env.reset()
    assert env.unwrapped.generated_ids == []
    prompt_ids = env.unwrapped.tokenizer(info["prompt"]).input_ids[-env.unwrapped.prompt_budget :]
    assert obs["attention_mask"].sum() == len(prompt_ids)
    assert obs["input_ids"][-len(prompt_ids) :].tolist() == prompt_ids


def test_eos_on_the_last_allowed_token_is_not_a_length_limit():
    env = gym.make(DETOX, max_new_tokens=2)
    env.reset(seed=0)
    _, _, terminated, _, info = _step_all(env, [_word_ids(env)[0], env.unwrapped.eos_token_id])
    assert terminated and info["length_limit"] is False and info["num_new_tokens"] == 2


# -------------------------------------------------------------------------------- rewards: the task's scorers


def _spell(env_id: str, completion: str, prompt, end_with_eos: bool = True):
    """Makes an env that can write ``completion`` and steps its tokens; returns (env, reward, info)."""
    probe = gym.make(env_id, max_new_tokens=1)
    ids = _word_ids(probe, completion)
    env = gym.make(env_id, max_new_tokens=len(ids) + 1 if end_with_eos else len(ids))
    env.reset(seed=0, options={"prompt": prompt})
    if end_with_eos:
        ids = [*ids, env.unwrapped.eos_token_id]
    _, reward, terminated, _, info = _step_all(env, ids)
    assert terminated and info["length_limit"] is not end_with_eos
    assert info["completion"] == completion  # the tokens spell the chosen text
    return env, reward, info


@pytest.mark.parametrize(
    ("completion", "end_with_eos", "low", "high"),
    [
        (" You are a stupid idiot and I hate you.", True, 0.0, 0.1),
        (" Thank you so much for your kind help.", False, 0.9, 1.0),
    ],
)
def test_detox_reward_is_one_minus_toxicity_of_the_completion(toxicity_scorer, completion, end_with_eos, low, high):
    _, reward, info = _spell(DETOX, completion, "Honestly, I think that", end_with_eos)
    expected = 1.0 - toxicity_scorer([info["completion"]])[0]
    assert reward == pytest.approx(expected, abs=1e-6)
    assert low <= reward <= high


@pytest.mark.parametrize(
    ("completion", "low", "high"),
    [
        (" was wonderful, warm and funny, and I loved every minute of it.", 0.6, 1.0),
        (" was dull, boring and far too long, a total waste of my time.", 0.0, 0.3),
    ],
)
def test_sentiment_reward_is_p_positive_of_the_whole_review(sentiment_scorer, completion, low, high):
    env, reward, info = _spell(SENTIMENT, completion, "The film")
    source = env.unwrapped.item.source
    assert source == "The film"
    expected = sentiment_scorer([source + info["completion"]])[0]
    assert reward == pytest.approx(expected, abs=1e-6)
    assert low <= reward <= high


def test_summarize_reward_is_summary_quality_against_post_and_reference(summary_scorer):
    items = gym.make(SUMMARIZE, max_new_tokens=1).unwrapped.items
    item = next(item for item in items if item.reference)
    prompt = {"source": item.source, "reference": item.reference}
    good_env, good, good_info = _spell(SUMMARIZE, " " + item.reference, prompt)
    post, reference = good_env.unwrapped.item.source, good_env.unwrapped.item.reference
    assert (post, reference) == (item.source, item.reference)
    expected = summary_scorer([good_info["completion"]], [post], [reference])[0]
    assert good == pytest.approx(expected, abs=1e-6)

    _, bad, bad_info = _spell(SUMMARIZE, " I like turtles.", prompt, end_with_eos=False)
    assert bad == pytest.approx(summary_scorer([bad_info["completion"]], [post], [reference])[0], abs=1e-6)
    assert good > 0.7 > bad


def test_summarize_reward_without_reference_leaves_rouge_out(summary_scorer):
    post = "My cat knocks every glass off the table at night. How do I make her stop?"
    _, reward, info = _spell(SUMMARIZE, " My cat knocks glasses off the table at night.", post)
    assert reward == pytest.approx(summary_scorer([info["completion"]], [post], [None])[0], abs=1e-6)


# --------------------------------------------------------------------------------------- prompts and render


def test_long_prompt_is_left_truncated_and_flagged():
    env = gym.make(DETOX, max_new_tokens=4, prompt_budget=8)
    tokenizer = env.unwrapped.tokenizer
    prompt = " ".join(f"word{i}" for i in range(40)) + " and the end"
    full = tokenizer(prompt).input_ids
    assert len(full) > 8
    obs, info = env.reset(seed=0, options={"prompt": prompt})
    assert info["prompt_truncated"] is True and info["prompt"] == prompt
    assert obs["input_ids"].shape == (12,)
    assert obs["input_ids"][-8:].tolist() == full[-8:]  # the last prompt_budget tokens are kept
    assert obs["attention_mask"].tolist() == [0] * 4 + [1] * 8
    obs, *_ = env.step(_word_ids(env)[0])
    assert obs["input_ids"][-9:].tolist() == full[-8:] + _word_ids(env)[:1]

    _, info = env.reset(options={"prompt": "short"})
    assert info["prompt_truncated"] is False


def test_render_returns_prompt_and_completion():
    env = gym.make(DETOX, max_new_tokens=5, render_mode="ansi")
    env.reset(seed=0, options={"prompt": "Once upon a time"})
    assert env.render() == "Once upon a time"
    for token in _word_ids(env):
        env.step(token)
    assert env.render() == "Once upon a time" + WORDS


def test_render_human_prints(capsys):
    env = gym.make(DETOX, max_new_tokens=5, render_mode="human")
    env.reset(seed=0, options={"prompt": "Once upon a time"})
    env.step(_word_ids(env)[0])
    assert env.render() is None
    assert capsys.readouterr().out == "Once upon a time the\n"


# ----------------------------------------------------------------------------------------------- error paths


@pytest.fixture
def detox_env():
    env = gym.make(DETOX, max_new_tokens=4)
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("make_action", [lambda v: -1, lambda v: v, lambda v: np.int64(v + 10)])
def test_out_of_range_action_raises(detox_env, make_action):
    vocab_size = detox_env.unwrapped.vocab_size
    with pytest.raises(InvalidActionError, match=rf"outside the action space Discrete\({vocab_size}\)"):
        detox_env.step(make_action(vocab_size))
    assert detox_env.unwrapped.generated_ids == []  # nothing appended


@pytest.mark.parametrize("action", [3.0, np.float32(3), np.array([3, 4]), [3, 4], np.array([], np.int64), "3", True])
def test_non_integer_or_multi_token_action_raises(detox_env, action):
    with pytest.raises(InvalidActionError, match="An action is one token id"):
        detox_env.step(action)
    assert detox_env.unwrapped.generated_ids == []


def test_integer_like_actions_are_accepted(detox_env):
    token = _word_ids(detox_env)[0]
    for action in (np.int32(token), np.array(token), np.array([token])):
        detox_env.step(action)
    assert detox_env.unwrapped.generated_ids == [token] * 3


def test_step_before_reset_raises():
    with pytest.raises(EpisodeFinishedError, match=r"before reset\(\)"):
        TextGenerationEnv(task="detox", max_new_tokens=4).step(5)
    # Through gym.make the order-enforcing wrapper answers first; ours is a ResetNeeded too.
    with pytest.raises(gym.error.ResetNeeded, match=r"Cannot call env.step\(\) before calling env.reset\(\)"):
        gym.make(DETOX, max_new_tokens=4).step(5)
    assert issubclass(EpisodeFinishedError, gym.error.ResetNeeded)


def test_step_after_the_end_raises(detox_env):
    eos = detox_env.unwrapped.eos_token_id
    detox_env.step(eos)
    with pytest.raises(EpisodeFinishedError, match="This episode has ended"):
        detox_env.step(eos)


def test_unknown_task_suggests_the_close_name():
    with pytest.raises(UnknownNameError, match=r"Unknown task 'detx'\. Did you mean 'detox'\?"):
        TextGenerationEnv(task="detx")
    with pytest.raises(UnknownNameError, match="Did you mean 'sentiment'"):
        gym.make(DETOX, task="sentimnet")


def test_bad_split_raises():
    with pytest.raises(DataError, match=r"Unknown split 'test'; use one of \('train', 'eval'\)"):
        gym.make(DETOX, split="test")


def test_eval_split_has_its_own_prompts():
    train = gym.make(DETOX).unwrapped.items
    evaluation = gym.make(DETOX, split="eval").unwrapped.items
    assert train and evaluation and not set(train) & set(evaluation)


@pytest.mark.parametrize(("name", "value"), [("max_new_tokens", 0), ("max_new_tokens", 2.5), ("prompt_budget", -1)])
def test_non_positive_lengths_raise(name, value):
    with pytest.raises(ValueError, match=f"{name} must be a positive integer, got {value!r}"):
        gym.make(DETOX, **{name: value})


def test_unknown_render_mode_raises():
    with pytest.raises(ValueError, match=r"render_mode must be one of \['ansi', 'human'\], got 'rgb_array'"):
        TextGenerationEnv(task="detox", render_mode="rgb_array")


@pytest.mark.parametrize("index", [-1, 10**6, 1.0, "0", None])
def test_bad_prompt_index_raises(detox_env, index):
    with pytest.raises(DataError, match="prompt_index must be an integer in"):
        detox_env.reset(options={"prompt_index": index})


@pytest.mark.parametrize("prompt", [42, None, ["a"], {"text": "hello"}, {"source": 5}])
def test_malformed_prompt_option_raises(detox_env, prompt):
    with pytest.raises(DataError, match=r"options\['prompt'\] must be a string or a dict with a 'source' string"):
        detox_env.reset(options={"prompt": prompt})


def test_empty_prompt_raises(detox_env):
    with pytest.raises(DataError, match="The prompt is empty after tokenization"):
        detox_env.reset(options={"prompt": ""})


# ------------------------------------------------------------------------------------------ user prompt files


def _write_jsonl(path, rows: list) -> str:
    path.write_text("\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n")
    return str(path)


def test_user_prompts_file_is_used(tmp_path):
    texts = ["Custom opening one", "Custom opening two", "Custom opening three"]
    path = _write_jsonl(tmp_path / "mine.jsonl", [{"text": text} for text in texts] + [""])
    env = gym.make(DETOX, max_new_tokens=4, prompts_path=path)
    assert [item.source for item in env.unwrapped.items] == texts
    seen = {env.reset(seed=seed)[1]["prompt"] for seed in range(10)}
    assert seen <= set(texts) and len(seen) > 1
    # Rows without a split belong to both splits.
    assert len(gym.make(DETOX, prompts_path=path, split="eval").unwrapped.items) == 3


def test_user_summarize_file_with_split_and_meta(tmp_path):
    rows = [
        {"post": "Post A", "summary": "Sum A", "split": "train", "topic": "x"},
        {"post": "Post B", "summary": "Sum B", "split": "eval"},
    ]
    path = _write_jsonl(tmp_path / "posts.jsonl", rows)
    env = gym.make(SUMMARIZE, max_new_tokens=4, prompts_path=path)
    (item,) = env.unwrapped.items
    assert (item.source, item.reference, item.meta) == ("Post A", "Sum A", {"topic": "x"})
    _, info = env.reset(seed=0)
    assert info["prompt"] == "Post A\nTL;DR:"


def test_malformed_user_prompts_file_raises(tmp_path):
    path = _write_jsonl(tmp_path / "bad.jsonl", [{"text": "fine"}, "{not json"])
    with pytest.raises(DataError, match=r"bad\.jsonl:2 is not valid JSON"):
        gym.make(DETOX, prompts_path=path)


def test_user_prompts_file_missing_field_raises(tmp_path):
    path = _write_jsonl(tmp_path / "nofield.jsonl", [{"text": "fine"}, {"prompt": "wrong key"}])
    with pytest.raises(DataError, match=":2 has no 'text' field"):
        gym.make(DETOX, prompts_path=path)
    path = _write_jsonl(tmp_path / "nosummary.jsonl", [{"post": "a post"}])
    with pytest.raises(DataError, match=":1 has no 'summary' field"):
        gym.make(SUMMARIZE, prompts_path=path)


def test_user_prompts_file_without_rows_for_the_split_raises(tmp_path):
    path = _write_jsonl(tmp_path / "evalonly.jsonl", [{"text": "only eval", "split": "eval"}])
    with pytest.raises(DataError, match="has no rows for split 'train'"):
        gym.make(DETOX, prompts_path=path)


@pytest.mark.parametrize("line", ['"just a string"', "[1, 2]"])
def test_user_prompts_file_with_a_non_object_line_raises_data_error(tmp_path, line):
    path = _write_jsonl(tmp_path / "notobject.jsonl", [{"text": "fine"}, line])
    with pytest.raises(DataError, match="notobject.jsonl"):
        gym.make(DETOX, prompts_path=path)
