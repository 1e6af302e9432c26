"""Model load time: cold (GGUF dequantised by transformers) against the cached fp32 copy, in fresh processes."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from report import write

SNIPPET = """
import time
import torch, transformers  # imports are not part of the load time
from textgym.models import load_{what}
t = time.perf_counter()
load_{what}("{name}")
print(time.perf_counter() - t)
"""


def timed(what: str, name: str, cache: str) -> float:
    env = {**os.environ, "TEXTGYM_CACHE": cache, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", SNIPPET.format(what=what, name=name)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = []
    for name in ("smollm2-135m-instruct", "gemma3-270m"):
        for what in ("tokenizer", "causal_lm"):
            with tempfile.TemporaryDirectory() as cache:
                cold = timed(what, name, cache)
                cached = [timed(what, name, cache) for _ in range(3)]
            rows.append(
                {
                    "model": name,
                    "part": what,
                    "cold s": cold,
                    "cached s (best of 3)": min(cached),
                    "cold / cached": cold / min(cached),
                }
            )
    write(
        "model_load",
        rows,
        notes="Each time is one fresh Python process loading the part, imports excluded. Cold: an "
        "empty cache folder, so the GGUF file is dequantised (and Gemma's parts assembled); cached: the fp32 copy.",
    )


if __name__ == "__main__":
    main()
