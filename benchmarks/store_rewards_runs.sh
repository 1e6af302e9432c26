#!/usr/bin/env bash
# Keeps the finished runs of a rewards grid (benchmarks/run_rewards_grid.sh OUT) in the repository: each run's
# cell.json, config.json, summary.json, metrics.jsonl, final_completions.jsonl and environment.jsonl (no
# checkpoint, no TensorBoard events) under benchmarks/results/rewards_runs/NAME/, which is what
# benchmarks/rewards_report.py reads and what run_rewards_grid.sh copies back to resume on another machine.
# Usage: benchmarks/store_rewards_runs.sh OUT
set -euo pipefail
out=${1:-runs/rewards}
stored=benchmarks/results/rewards_runs
for run in "$out"/runs/*/; do
  [ -e "$run/summary.json" ] || continue
  name=$(basename "$run")
  mkdir -p "$stored/$name"
  for file in cell.json config.json summary.json metrics.jsonl final_completions.jsonl environment.jsonl; do
    [ -e "$run/$file" ] && cp "$run/$file" "$stored/$name/$file"
  done
done
ls "$stored" | wc -l
