#!/usr/bin/env bash
# Real-data comparison of issue 5: black box (A2E) against the joint concept bottleneck
# (valence/energy/tension -> anger/fear/happy/sad/tender) on Soundtracks' fixed 36-clip test
# split, several seeds each, then `midlevel compare`. Usage:
#   benchmarks/soundtracks_compare.sh [SEEDS] [EPOCHS]   (defaults: "0 1 2" 20)
# Writes runs/compare/*, reports/soundtracks/ (report.html, report.md, tables/, figures/).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-"0 1 2"}
EPOCHS=${2:-20}
PY=${PYTHON:-.venv/bin/python}
CONFIG=$(mktemp --suffix=.yaml)
echo "patience: 8" > "$CONFIG"
runs=()
for seed in $SEEDS; do
  for job in "soundtracks blackbox" "soundtracks_dimensional joint"; do
    set -- $job
    out="runs/compare/$1_$2_s$seed"
    $PY -m midlevel train "data_specs/$1.yaml" --mode "$2" --out "$out" --preset small \
        --epochs "$EPOCHS" --config "$CONFIG" --seed "$seed" --overwrite --quiet
    runs+=("$out")
  done
done
rm -f "$CONFIG"
$PY -m midlevel compare "${runs[@]}" --out reports/soundtracks --target anger --quiet
