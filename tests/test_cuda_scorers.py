"""Scorers, critics and environments on a CUDA device give the CPU's scores (within a tolerance).

Skipped without CUDA. On a GPU machine: ``pytest -m cuda tests/test_cuda_scorers.py``. The real default models are
used, as on the CPU side of each comparison. The CPU-side plumbing (dtype, placement, errors) has its own tests
in ``tests/envs/test_device_settings.py`` and beside each scorer and critic.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import textgym
from textgym.critics.local_listing import LocalListingCritic
from textgym.critics.registry import build_critic
from textgym.critics.segment_judge import SegmentJudgeCritic
from textgym.evaluation.metrics import perplexity
from textgym.models import load_causal_lm, load_tokenizer
from textgym.scorers.sentiment_lm import LMSentimentScorer
from textgym.scorers.summary_quality import SummaryQualityScorer
from textgym.scorers.toxicity_bilstm import ToxicityScorer
from textgym.tasks import get_items, get_scorer

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

DEVICE = "cuda"
REVIEWS = [
    "An absolute delight from start to finish, funny, warm and beautifully acted.",
    "A boring, ugly mess with terrible acting and a story that makes no sense.",
    "I loved every minute of it, a wonderful film. The ending was awful and dull.",
    "It was fine.",
]
REMARKS = [
    "you are a stupid idiot and I hate you",
    "thanks, see you tomorrow",
    "shut up, you worthless clown, nobody asked",
    "",
]
SUMMARY = " My dog barks when I leave and my neighbour complained. I won a new car in Paris last week."


def _on_cuda(model: torch.nn.Module) -> bool:
    return {p.device.type for p in model.parameters()} == {"cuda"}


def test_the_sentiment_scorer_on_cuda_gives_the_cpu_probabilities():
    cpu = np.asarray(LMSentimentScorer()(REVIEWS))
    gpu = LMSentimentScorer(device=DEVICE)
    assert _on_cuda(gpu.judge.model)
    np.testing.assert_allclose(gpu(REVIEWS), cpu, atol=0.01)
    half = LMSentimentScorer(device=DEVICE, dtype="bfloat16")
    assert next(half.judge.model.parameters()).dtype == torch.bfloat16
    np.testing.assert_allclose(half(REVIEWS), cpu, atol=0.05)


def test_the_toxicity_bilstm_on_cuda_gives_the_cpu_probabilities():
    cpu = ToxicityScorer().predict(REMARKS)
    gpu = ToxicityScorer(device=DEVICE)
    assert _on_cuda(gpu.model)
    np.testing.assert_allclose(gpu.predict(REMARKS), cpu, atol=1e-4)


def test_the_summary_scorer_on_cuda_gives_the_cpu_scores():
    items = get_items("summarize")[:3]
    summaries, posts, references = [SUMMARY] * 3, [i.source for i in items], [i.reference for i in items]
    cpu = SummaryQualityScorer()(summaries, posts, references)
    np.testing.assert_allclose(SummaryQualityScorer(device=DEVICE)(summaries, posts, references), cpu, atol=1e-3)
    half = SummaryQualityScorer(device=DEVICE, dtype="bfloat16")(summaries, posts, references)
    np.testing.assert_allclose(half, cpu, atol=0.02)


@pytest.mark.parametrize(
    ("task", "prompts", "texts"),
    [
        ("sentiment", ["The movie"] * 2, REVIEWS[2:]),
        ("detox", ["The man said"] * 3, REMARKS[:3]),
        ("summarize", [get_items("summarize")[0].source], [SUMMARY]),
    ],
)
def test_the_default_critic_on_cuda_gives_the_cpu_critiques(task, prompts, texts):
    cpu = build_critic(task).critique(prompts, texts, [0.5] * len(texts))
    critic = build_critic(task, device=DEVICE)
    assert critic is not build_critic(task)
    gpu = critic.critique(prompts, texts, [0.5] * len(texts))
    assert all(critique.ok for critique in gpu)
    for on_cpu, on_gpu in zip(cpu, gpu, strict=True):
        # Same labels in the same order with the same strengths; a margin within 1e-5 of a threshold or of the
        # trimming rule's 90 % could move a boundary, so positions are not compared.
        assert [span.label for span in on_gpu.spans] == [span.label for span in on_cpu.spans]
        assert [span.score for span in on_gpu.spans] == pytest.approx([span.score for span in on_cpu.spans], abs=0.01)


def test_a_live_bfloat16_policy_on_cuda_judges_like_the_cpu_model():
    cpu = build_critic("sentiment")
    live = SegmentJudgeCritic(
        "sentiment", model=load_causal_lm(device=DEVICE, dtype="bfloat16"), tokenizer=load_tokenizer()
    )
    assert live.placement.startswith("cuda") and live.placement.endswith("bfloat16")
    assert live.biases == pytest.approx(cpu.biases, abs=0.25)
    [critique] = live.critique(["The movie"], [REVIEWS[2]])
    assert critique.ok and {span.label for span in critique.spans} <= {"positive", "negative"}


def test_the_local_listing_critic_generates_on_cuda():
    critic = LocalListingCritic("detox", device=DEVICE, max_new_tokens=16)
    assert _on_cuda(critic.model)
    critiques = critic.critique(["The man said"] * 2, REMARKS[:2])
    assert len(critiques) == 2 and all(isinstance(c.raw, str) for c in critiques)


def test_perplexity_on_cuda_is_the_cpu_perplexity():
    prompts, completions = ["The film was", "My neighbour said"], [" a joy to watch.", " hello to me."]
    cpu = perplexity(load_causal_lm(), load_tokenizer(), prompts, completions)
    gpu = perplexity(load_causal_lm(device=DEVICE), load_tokenizer(), prompts, completions)
    assert gpu == pytest.approx(cpu, rel=1e-3)


def _episode(env: gym.Env, text: str) -> dict:
    env.reset(seed=0, options={"prompt_index": 0})
    ids = env.unwrapped.tokenizer(text, add_special_tokens=False).input_ids + [env.unwrapped.eos_token_id]
    for token in ids:
        obs, reward, terminated, truncated, info = env.step(token)
        assert isinstance(reward, float) and obs["input_ids"].dtype == np.int64
    assert terminated and not truncated
    return info


@pytest.mark.parametrize("env_id", textgym.registered_ids())
def test_an_episode_on_cuda_runs_and_scores_like_the_cpu(env_id):
    text = {"TextSentiment": REVIEWS[2], "TextDetox": REMARKS[0], "TextSummarize": SUMMARY}[env_id.split("-")[0]]
    env = gym.make(env_id, device=DEVICE, max_new_tokens=48)
    base = env.unwrapped
    assert base.device.startswith("cuda")
    info = _episode(env, text)
    on_cpu = get_scorer(base.task.name)([base.item], [info["completion"]])[0]
    assert info["extrinsic_score"] == pytest.approx(on_cpu, abs=0.01)
    if env_id.endswith("critic-v0"):
        assert not info["critic_fallback"] and len(info["token_rewards"]) == info["num_new_tokens"]
    vec = gym.make_vec(env_id, num_envs=2, device=DEVICE, max_new_tokens=4)
    vec.reset(seed=0)
    word = base.tokenizer(" the", add_special_tokens=False).input_ids[0]
    for _ in range(4):
        _, rewards, terminations, _, _ = vec.step(np.full(2, word))
    assert terminations.all() and rewards.dtype == np.float64
