#!/usr/bin/env bash
# What only a GPU can show (training speed eager and with CUDA graphs, the paper preset's
# projected hours, inference per sample, online samples at 512^2, a short real paper run, the
# cpu-hour preset on the GPU beside the CPU's curve), in at
# most ~8 minutes on one CUDA GPU; the figures go to a JSON file (default: $OUT/device-check.json
# when $OUT is set, else ./device-check.json).  On a machine without CUDA it stops at once.
# $PYTHON: the interpreter with pydiff and torch (default: the one on PATH), so that it runs from a
# virtual environment that is not activated: PYTHON=.venv/bin/python benchmarks/device-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-.}/device-check.json}"
exec "${PYTHON:-python}" benchmarks/device_check.py "$out"
