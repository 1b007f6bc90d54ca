#!/usr/bin/env bash
# The GPU check (under five minutes): training steps, prediction and every attribution method
# on a CUDA GPU, speeds written to gpu_check.json; exits 1 loudly without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec timeout 300 "$PY" benchmarks/gpu_check.py
