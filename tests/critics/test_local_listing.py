"""LocalListingCritic: a local LM lists spans, read by the OpenAI-compatible critic's parser.

The plumbing (batching, determinism, registry) runs on a tiny config-built Llama with the real SmolLM2 tokenizer.
Its replies are noise, so the reading of replies into spans is checked on replies written for the tests, put in
the place of the generated ones; one slow test runs the real SmolLM2.
"""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaForCausalLM

from tests.critics.loopback_server import completion_between_markers
from tests.tiny_model import save_tiny_causal_lm, tiny_llama_config
from textgym.critics import local_listing
from textgym.critics.base import Critic, Span
from textgym.critics.cache import CachedCritic
from textgym.critics.local_listing import LocalListingCritic, _first_block, generate_replies
from textgym.critics.openai_compat import FAILURE_KINDS
from textgym.critics.registry import build_critic
from textgym.error import UnknownNameError
from textgym.models import load_tokenizer

TEXTS = [
    "you are a stupid idiot and I hate you",
    "thanks, see you tomorrow",
    "shut up, you worthless clown, nobody asked",
    "ok",
    "the bus was late again and I missed the start of the meeting",
]


@pytest.fixture(scope="module")
def tiny():
    tokenizer = load_tokenizer()
    torch.manual_seed(0)
    return LlamaForCausalLM(tiny_llama_config(tokenizer)).eval(), tokenizer


def make(tiny, task="detox", **kwargs) -> LocalListingCritic:
    model, tokenizer = tiny
    kwargs.setdefault("max_new_tokens", 6)
    return LocalListingCritic(task, model=model, tokenizer=tokenizer, **kwargs)


def test_batched_replies_equal_one_at_a_time_and_repeat_exactly(tiny):
    model, tokenizer = tiny
    messages = [f"Say something about: {text}" for text in TEXTS]
    batched = generate_replies(model, tokenizer, messages, max_new_tokens=6, batch_size=4)
    assert len(batched) == len(TEXTS) and all(isinstance(reply, str) for reply in batched)
    assert generate_replies(model, tokenizer, messages, max_new_tokens=6, batch_size=4) == batched
    assert [generate_replies(model, tokenizer, [m], max_new_tokens=6)[0] for m in messages] == batched
    assert generate_replies(model, tokenizer, [], max_new_tokens=6) == []


def test_chat_mode_wraps_the_message_in_the_chat_template_and_plain_mode_does_not(tiny):
    model, tokenizer = tiny
    chat = generate_replies(model, tokenizer, TEXTS[:2], max_new_tokens=6, chat=True)
    plain = generate_replies(model, tokenizer, TEXTS[:2], max_new_tokens=6, chat=False)
    assert generate_replies(model, tokenizer, TEXTS[:2], max_new_tokens=6) == chat  # SmolLM2 has a chat template
    assert chat != plain


def test_a_conversation_is_answered_like_its_user_message(tiny):
    model, tokenizer = tiny
    as_strings = generate_replies(model, tokenizer, TEXTS[:2], max_new_tokens=6)
    conversations = [[{"role": "user", "content": text}] for text in TEXTS[:2]]
    assert generate_replies(model, tokenizer, conversations, max_new_tokens=6) == as_strings
    with_system = [[{"role": "system", "content": "Be brief."}, *turns] for turns in conversations]
    assert generate_replies(model, tokenizer, with_system, max_new_tokens=6) != as_strings


def test_plain_mode_keeps_the_first_block_of_a_reply():
    assert _first_block("\nToxic phrases: idiot\n\nOpening: more text") == "Toxic phrases: idiot"
    two_lines = "Positive phrases: a\nNegative phrases: b"
    assert _first_block(two_lines + "\n  \nnext") == two_lines
    assert _first_block("no blank line") == "no blank line"


SCRIPTS = {
    # task: {text: (the reply written for the test, the spans it must give, or the failure kind)}
    "detox": {
        TEXTS[0]: (
            "Toxic Spans Identified in the Sentence:\nToxic Span 1: stupid idiot\nToxic Span 2: hate you",
            [Span(10, 22, "toxic"), Span(29, 37, "toxic")],
        ),
        TEXTS[1]: ("Toxic phrases: none", []),
        TEXTS[2]: ("Toxic spans: shut up, worthless clown", [Span(0, 7, "toxic"), Span(13, 28, "toxic")]),
        TEXTS[3]: ("Toxic phrases: moron", "unlocated"),
        TEXTS[4]: ("  ", "empty"),
    },
    "sentiment": {
        TEXTS[0]: (
            "Identified Negative Text Span:\n[Span 1]: stupid idiot\n[Span 2]: zebra",
            [Span(10, 22, "negative")],
        ),
        TEXTS[1]: ("Identified Positive Text Span: [Span 1]: thanks", [Span(0, 6, "positive")]),
        TEXTS[2]: ("The text is rude.", "unparsable"),
        TEXTS[3]: ("None identified.", []),
        TEXTS[4]: (
            '{"negative": ["late again", "missed the start"]}',
            [Span(12, 22, "negative"), Span(29, 45, "negative")],
        ),
    },
    "summarize": {
        TEXTS[0]: ("Span 1: I hate you (Label: Non-factual)", [Span(27, 37, "incorrect")]),
        TEXTS[1]: ("Problematic Spans Identified in the Summary:\nNone identified", []),
        TEXTS[2]: ("Span 1: on Mars (Label: Factually Incorrect)", "unlocated"),
        TEXTS[3]: ("", "empty"),
        TEXTS[4]: (
            "Irrelevant phrases: the bus was late again\nIncoherent phrases: the start of the meeting",
            [Span(0, 22, "irrelevant"), Span(36, 60, "incoherent")],
        ),
    },
}


@pytest.mark.parametrize("task", list(SCRIPTS))
def test_replies_become_the_hand_written_spans_and_failures_are_counted_and_logged(tiny, task, monkeypatch, caplog):
    script = SCRIPTS[task]

    def scripted(model, tokenizer, messages, *args, **kwargs):
        return [script[completion_between_markers(message)][0] for message in messages]

    monkeypatch.setattr(local_listing, "generate_replies", scripted)
    critic = make(tiny, task, batch_size=2)
    with caplog.at_level("WARNING", logger="textgym.critics"):
        critiques = critic.critique(["The man said"] * len(TEXTS), TEXTS)
    failed = {}
    for critique, text in zip(critiques, TEXTS, strict=True):
        reply, expected = script[text]
        assert critique.raw == reply
        if isinstance(expected, str):
            assert not critique.ok and critique.spans == () and critique.error.startswith(f"{expected}: ")
            failed[expected] = failed.get(expected, 0) + 1
        else:
            assert critique.ok and list(critique.spans) == expected, (text, critique)
    assert critic.stats.calls == len(TEXTS) and critic.stats.ok == len(TEXTS) - sum(failed.values())
    assert {kind: count for kind, count in critic.stats.failures.items() if count} == failed
    assert critic.stats.dropped == (1 if task == "sentiment" else 0)  # the "zebra" of the sentiment script
    logged = [record.getMessage() for record in caplog.records if record.name == "textgym.critics"]
    assert len(logged) == sum(failed.values()) and all("failed on completion" in line for line in logged)


def test_the_model_s_own_replies_are_read_and_counted(tiny):
    critic = make(tiny, "sentiment", batch_size=2)
    critiques = critic.critique(["The man said"] * len(TEXTS), TEXTS)
    model, tokenizer = tiny
    messages = critic.messages(["The man said"] * len(TEXTS), TEXTS)
    assert [c.raw for c in critiques] == generate_replies(model, tokenizer, messages, max_new_tokens=6)
    for critique, text in zip(critiques, TEXTS, strict=True):
        assert all(0 <= span.start < span.end <= len(text) for span in critique.spans)
        assert critique.ok or critique.error.split(":")[0] in FAILURE_KINDS
    assert critic.stats.calls == len(TEXTS) and critic.stats.ok == sum(c.ok for c in critiques)
    assert critic.stats.ok + critic.stats.failed == len(TEXTS)
    again = make(tiny, "sentiment", batch_size=5).critique(["The man said"] * len(TEXTS), TEXTS)
    assert [c.raw for c in again] == [c.raw for c in critiques]  # greedy: batch size changes nothing


def test_messages_render_the_listing_template_with_the_extrinsic_score(tiny):
    summarize = make(tiny, "summarize")
    assert summarize.uses_extrinsic and isinstance(summarize, Critic)
    [shown] = summarize.messages(["My cat is lost."], ["Lost cat."], [0.256])
    assert "Its quality score is 0.26" in shown and "<<<TEXT\nLost cat.\nTEXT>>>" in shown
    [unknown] = summarize.messages(["My cat is lost."], ["Lost cat."])
    assert "Its quality score is unknown" in unknown
    assert not make(tiny, "detox").uses_extrinsic  # the detox template does not show the score
    with pytest.raises(ValueError, match="one extrinsic score per completion"):
        summarize.critique(["a"], ["b"], [0.1, 0.2])
    with pytest.raises(ValueError, match="one prompt per completion"):
        summarize.critique(["a", "b"], ["c"])


def test_config_key_tells_settings_and_weight_versions_apart(tiny):
    critic = make(tiny)
    key = critic.config_key()
    assert key.startswith("LocalListingCritic(task=detox, model=live:LlamaForCausalLM@") and ", v1," in key
    assert make(tiny, max_new_tokens=7).config_key() != key
    assert make(tiny, chat=False).config_key() != key
    cached = CachedCritic(critic)
    cached.critique(["p"], ["you idiot"])
    critic.refresh()
    assert ", v2," in critic.config_key()
    cached.critique(["p"], ["you idiot"])
    assert cached.stats.calls == 2 and cached.stats.hits == 0


def test_a_named_model_is_loaded_in_the_dtype_asked_and_generates_there(tiny_lm_folder):
    critic = LocalListingCritic("detox", model=str(tiny_lm_folder), dtype="bfloat16", max_new_tokens=4)
    assert next(critic.model.parameters()).dtype == torch.bfloat16
    assert critic.config_key().endswith("on=cpu/bfloat16)")
    assert LocalListingCritic("detox", model=str(tiny_lm_folder)).config_key().endswith("on=cpu/float32)")
    replies = generate_replies(critic.model, critic.tokenizer, TEXTS[:3], max_new_tokens=4, batch_size=2)
    assert len(replies) == 3 and all(isinstance(reply, str) for reply in replies)
    assert len(critic.critique(["The man said"] * 2, TEXTS[:2])) == 2


def test_bad_arguments_say_what_to_fix(tiny, tmp_path):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="A live model needs its tokenizer"):
        LocalListingCritic("detox", model=model)
    with pytest.raises(ValueError, match="max_new_tokens must be a positive integer"):
        make(tiny, max_new_tokens=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        make(tiny, batch_size=0)
    with pytest.raises(UnknownNameError, match="Did you mean 'detox'"):
        make(tiny, "detx")
    template = tmp_path / "list.txt"
    template.write_text("Mark the toxic phrases.\nToxic phrases:")
    with pytest.raises(ValueError, match=r"exactly one \{completion\} field\. Fix .*list\.txt"):
        make(tiny, template_path=str(template))


def test_the_registry_builds_an_lm_list_critic_on_a_model_folder(tmp_path):
    folder = save_tiny_causal_lm(tmp_path / "tiny")
    critic = build_critic("sentiment", "lm-list", model=str(folder), max_new_tokens=4)
    assert isinstance(critic, LocalListingCritic) and critic.model_name == str(folder)
    assert build_critic("sentiment", {"type": "lm-list", "model": str(folder), "max_new_tokens": 4}) is critic
    [critique] = critic.critique(["The film"], ["It was great."])
    assert critique.raw is not None and (critique.ok or critique.error.split(":")[0] in FAILURE_KINDS)


@pytest.mark.slow
def test_smollm2_flags_the_insults_of_toxic_texts():
    """SmolLM2-135M marks toxic texts by copying much of them (its precision is low, see
    benchmarks/results/critic_quality.md), so that a clean text stays unmarked cannot be asserted reliably; that the
    insults of a toxic text lie in its spans, and that greedy critiques repeat, can."""
    critic = LocalListingCritic("detox", max_new_tokens=32, batch_size=2)
    texts = [TEXTS[0], TEXTS[2]]
    critiques = critic.critique(["The man said"] * 2, texts)
    for critique, text, insult in zip(critiques, texts, ["idiot", "worthless clown"], strict=True):
        assert critique.ok, (critique.error, critique.raw)
        start = text.index(insult)
        assert any(s.start <= start and start + len(insult) <= s.end for s in critique.spans), critique
        assert all(s.label == "toxic" for s in critique.spans)
    assert critique.raw and critic.critique(["The man said"] * 2, texts) == critiques  # greedy and deterministic
    assert critic.stats.calls == 4 and critic.stats.ok == 4
