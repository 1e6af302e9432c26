#!/usr/bin/env bash
# Runs benchmarks/grids/rewards.yaml (order below); one worker with one torch thread (the other core stays free).
# Every call resumes: finished runs are skipped, checkpointed ones continue. Finished runs kept in the repository
# (benchmarks/results/rewards_runs/, see benchmarks/store_rewards_runs.sh) are copied into OUT first, so a fresh
# machine resumes where the last one stopped. Usage: benchmarks/run_rewards_grid.sh OUT [all|rest]
# `rest` runs only the cells the first phase below leaves out (the sentiment task, and the critic cells), in the
# second phase's order: a second worker on the other core, with its own OUT, takes them while the first runs the
# first phase (store both OUTs with store_rewards_runs.sh; each restores the other's stored runs next time).
set -euo pipefail
out=${1:-runs/rewards}
part=${2:-all}
grid=benchmarks/grids/rewards.yaml
stored=benchmarks/results/rewards_runs
mkdir -p "$out/runs"
for run in "$stored"/*/; do
  [ -d "$run" ] || continue
  name=$(basename "$run")
  [ -e "$out/runs/$name/summary.json" ] || { rm -rf "${out:?}/runs/$name"; cp -r "$run" "$out/runs/$name"; }
done
# A finished run needs no checkpoint (about 0.5 GB each, 54 GB for the grid): it is removed after each call.
prune() { for run in "$out"/runs/*/; do [ -e "$run/summary.json" ] && rm -f "$run/checkpoint.pt"; done; true; }
bench() {
  OMP_NUM_THREADS=1 python -m textgym.cli bench --grid "$grid" --out "$out" --workers 1 --threads 1 "$@"
  prune
}
# Order: the cells whose reward cannot change while issue 12 chooses better critics and a better sentiment scorer
# (detox and summarization, every reward but the critic) first, LM-PPO before GRPO, seed by seed; then the
# sentiment task and the critic cells.
stable=(sparse uniform potential attention occlusion)
if [ "$part" = rest ]; then
  for agent in lmppo grpo; do
    for seed in 0 1 2; do
      bench --agents "$agent" --seeds "$seed" --env-ids TextSentiment-sparse-v0
      bench --agents "$agent" --seeds "$seed" --env-ids TextDetox-sparse-v0 TextSummarize-sparse-v0 --variants critic
    done
  done
  exit 0
fi
[ "$part" = all ] || { echo "run_rewards_grid.sh: the part is all or rest, not '$part'" >&2; exit 2; }
for agent in lmppo grpo; do
  for seed in 0 1 2; do
    bench --agents "$agent" --seeds "$seed" --env-ids TextDetox-sparse-v0 TextSummarize-sparse-v0 --variants "${stable[@]}"
  done
done
for agent in lmppo grpo; do
  for seed in 0 1 2; do
    bench --agents "$agent" --seeds "$seed" --env-ids TextSentiment-sparse-v0 TextDetox-sparse-v0 TextSummarize-sparse-v0
  done
done
