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
[ $# -gt 0 ] && shift  # further options go to device_check.py (--epochs N, --no-cpu-hour)
python="${PYTHON:-python}"
if ! "$python" -c "import torch, pydiff" 2>/dev/null; then
    echo "device-check: $python cannot import torch and pydiff; set PYTHON to the interpreter of the environment pydiff is installed in (PYTHON=.venv/bin/python benchmarks/device-check.sh)" >&2
    exit 2
fi
exec "$python" benchmarks/device_check.py "$out" "$@"
