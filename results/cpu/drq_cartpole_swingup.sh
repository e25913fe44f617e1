#!/usr/bin/env bash
# The runs behind results/cpu/table.md: DrQ, cpu preset, cartpole_swingup, seeds 1-3, one after the other
# (each uses both cores). Stopped runs are resumed from their checkpoints. Then the small files of each run
# (config, CSVs, summary) are copied under results/cpu/runs/ and the table is rebuilt from them.
# Usage (from the repository root, after `make install`): bash results/cpu/drq_cartpole_swingup.sh [RUNS_DIR]
set -euo pipefail
runs=${1:-runs/cpu}
unseen=.venv/bin/unseen
for seed in 1 2 3; do
  run=$runs/drq-cartpole_swingup-seed$seed
  if [ -f "$run/summary.json" ]; then
    continue
  elif [ -f "$run/checkpoints/latest.pt" ]; then
    $unseen train --resume "$run"
  else
    $unseen train --algo drq --task cartpole_swingup --preset cpu --seed "$seed" --out "$run"
  fi
  mkdir -p "results/cpu/runs/$(basename "$run")"
  cp "$run"/{config.yaml,train.csv,eval.csv,summary.json} "results/cpu/runs/$(basename "$run")/"
done
$unseen report results/cpu/runs --out results/cpu
