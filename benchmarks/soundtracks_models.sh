#!/usr/bin/env bash
# Real-data benchmark of issue 3: black box (all 8 emotions) and joint concept bottleneck
# (valence/energy/tension -> anger/fear/happy/sad/tender) on Soundtracks' fixed 36-clip test
# split. Usage: benchmarks/soundtracks_models.sh [EPOCHS] [PRESET]  (defaults: 20 small)
# Writes runs/soundtracks_{blackbox,joint}/ and prints wall times; figures in RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-20}
PRESET=${2:-small}
PY=${PYTHON:-.venv/bin/python}
CONFIG=$(mktemp --suffix=.yaml)
echo "patience: 8" > "$CONFIG"
for job in "soundtracks blackbox" "soundtracks_dimensional joint"; do
  set -- $job
  start=$(date +%s)
  $PY -m midlevel train "data_specs/$1.yaml" --mode "$2" --out "runs/$1_$2" \
      --preset "$PRESET" --epochs "$EPOCHS" --config "$CONFIG" --seed 0 --overwrite --quiet
  echo "$1 $2: wall time $(( $(date +%s) - start )) s"
done
rm -f "$CONFIG"
