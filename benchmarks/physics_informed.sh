#!/usr/bin/env bash
# Physics-informed training at equal epochs (README, "Learning from the equation"): labelled,
# physics-only (online samples, no solver) and 10 % of the labels plus physics, on the 2021
# quick data (Table 2 model 9's network) and on quick-varied (the encoder-decoder reading D).
# Usage: benchmarks/physics_informed.sh WORKDIR DATA2021.h5 VARIED64.h5 [EPOCHS2021] [EPOCHSVARIED] [all|2021|varied]
set -euo pipefail
work=$1; data2021=$2; varied=$3; e2021=${4:-3}; evaried=${5:-8}; part=${6:-all}
mkdir -p "$work"
run() {  # name, then train options
  local name=$1; shift
  test -f "$work/$name/result.json" || python -m pydiff train "$@" --out "$work/$name" --resume 2>>"$work/$name.log"
  python -m pydiff evaluate "$work/$name" > "$work/$name.txt"
}
if [ "$part" != varied ]; then
m9="--model 9 --preset quick --data $data2021 --epochs $e2021"
run p2021-labelled $m9
run p2021-physics-only $m9 --training-data online --labels none --physics-weight 1
run p2021-labels10-physics $m9 --labels 0.1 --physics-weight 1
run p2021-labels10 $m9 --train-fraction 0.1
fi
if [ "$part" != 2021 ]; then
qv="--preset quick-varied --data $varied --epochs $evaried"
run varied-labelled $qv
run varied-physics-only $qv --training-data online --labels none --physics-weight 100
run varied-labels10-physics $qv --labels 0.1 --physics-weight 100
run varied-labels10 $qv --train-fraction 0.1
fi
