"""Span quality of the OpenAI-compatible critic, end to end over real HTTP, on the project's gold spans.

No LM server runs here, so this script starts one: an HTTP server on 127.0.0.1 (the loopback server of the critic
tests) whose POST /v1/chat/completions answers with a local transformers model, the request's messages put through
the model's chat template and answered greedily (``max_tokens`` honoured, any temperature read as 0). The real
``OpenAICompatibleCritic`` (``openai`` client, retries, parsing, phrase location) then critiques the gold sets of the
three tasks through it, scored as ``textgym critic-eval`` scores them.

With SmolLM2-135M behind the server this measures the path, not what a capable critic model reaches: a 135M model
cannot list spans reliably (``shared/MODELS.md``). Against a real server a user runs, e.g.::

    vllm serve Qwen/Qwen2.5-7B-Instruct              # or: ollama serve, base URL http://127.0.0.1:11434/v1
    textgym critic-eval --task detox --critic http://127.0.0.1:8000/v1 \\
        --critic-kwargs '{"model": "Qwen/Qwen2.5-7B-Instruct"}'

Usage: ``python benchmarks/openai_critic_quality.py [--model smollm2-135m-instruct] [--tasks detox ...]``
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, for tests.critics

from report import write  # noqa: E402

from tests.critics.loopback_server import LoopbackChatServer, Recorded, Reply, chat_completion  # noqa: E402
from textgym.critics.evaluation import evaluate, load_gold  # noqa: E402
from textgym.critics.local_listing import generate_replies  # noqa: E402
from textgym.critics.openai_compat import OpenAICompatibleCritic  # noqa: E402
from textgym.models import load_causal_lm, load_tokenizer  # noqa: E402


class LocalModelChat:
    """Answers chat-completions requests with a local causal LM, one request at a time (the CPU has no room for
    more)."""

    def __init__(self, model_name: str) -> None:
        self.name = model_name
        self.model, self.tokenizer = load_causal_lm(model_name), load_tokenizer(model_name)
        self.lock = threading.Lock()
        self.generated = 0

    def __call__(self, request: Recorded) -> Reply:
        body = request.body
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return Reply(status=400, body={"error": {"message": "expected a JSON body with messages"}})
        messages = [{"role": m.get("role", "user"), "content": m.get("content") or ""} for m in body["messages"]]
        with self.lock:
            [reply] = generate_replies(
                self.model, self.tokenizer, [messages], max_new_tokens=int(body.get("max_tokens") or 256)
            )
            self.generated += 1
        return Reply(body=chat_completion(reply, model=body.get("model", self.name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="the local model behind the server")
    parser.add_argument("--tasks", nargs="+", default=["sentiment", "detox", "summarize"])
    parser.add_argument("--max-tokens", type=int, default=96, help="the critic's max_tokens (as lm-list's default)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    chat = LocalModelChat(args.model)
    rows = []
    with LoopbackChatServer(chat, max_requests=10_000) as server:
        for task in args.tasks:
            gold = load_gold(task)
            # One request in flight: the server answers one at a time, so more would only wait out the timeout.
            critic = OpenAICompatibleCritic(
                task, base_url=server.url, model=args.model, concurrency=1, timeout=300.0, max_tokens=args.max_tokens
            )
            before = len(server.requests)
            started = time.perf_counter()
            scores = evaluate(critic, gold)
            print(f"{task}: F1 {scores.f1:.3f} in {time.perf_counter() - started:.0f} s", flush=True)
            rows.append(
                {
                    "task": task,
                    "server model": args.model,
                    **scores.table_row(),
                    "dropped spans": scores.dropped_spans,
                    "requests": len(server.requests) - before,
                    "extrinsic shown": "yes" if critic.uses_extrinsic else "no",
                }
            )
            critic.close()
    write(
        "openai_critic_quality",
        rows,
        notes=f"The real OpenAICompatibleCritic (openai client over HTTP) against a chat-completions server on "
        f"127.0.0.1 that generates with {args.model} (its chat template, greedy, max_tokens {args.max_tokens}), on "
        "textgym/data/critic_gold_{task}.jsonl; word-level micro P/R/F1 as `textgym critic-eval`. This measures the "
        "path, with a model far too small to list spans: use a capable model behind vLLM, Ollama or llama.cpp for "
        "real critiques (see the script's docstring for the commands). failures: unparsable replies (no label "
        "header); dropped spans: phrases not found in the text. ms/text includes HTTP and the server's generation "
        "(one request at a time, 1 torch thread, shared 2-core CPU).",
    )


if __name__ == "__main__":
    main()
