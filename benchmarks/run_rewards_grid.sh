#!/usr/bin/env bash
# Runs benchmarks/grids/rewards.yaml in the order it was published: LM-PPO on sentiment and detox seed by seed,
# then summarization, then GRPO; one worker with one torch thread (the other core stays free). Every call resumes:
# finished runs are skipped, checkpointed ones continue. Usage: benchmarks/run_rewards_grid.sh OUT
set -euo pipefail
out=${1:-runs/rewards}
grid=benchmarks/grids/rewards.yaml
bench() { OMP_NUM_THREADS=1 python -m textgym.cli bench --grid "$grid" --out "$out" --workers 1 --threads 1 "$@"; }
for agent in lmppo grpo; do
  for seed in 0 1 2; do
    bench --agents "$agent" --seeds "$seed" --env-ids TextSentiment-sparse-v0 TextDetox-sparse-v0
  done
  for seed in 0 1 2; do
    bench --agents "$agent" --seeds "$seed" --env-ids TextSummarize-sparse-v0
  done
done
