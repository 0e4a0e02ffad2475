#!/usr/bin/env bash
# The strategy comparison behind the multi-fidelity default (docs/multifidelity-defaults.md): HIP-NN at wb.train's
# own settings, 3 seeds, MP2 learnt from its energies alone (judged on its held-out forces) and CCSD(T) as the
# target, 800 GFN2-xTB configurations of the built-in ethanol. Every run is appended to $OUT/runs.csv as it finishes;
# the trained models go to $OUT/models.tgz for benchmarks/vibrations.py.
#   OUT=benchmarks/results/defaults JOBS=16 GPU_JOBS=6 MAX_TIME=170 bash benchmarks/multifidelity_defaults.sh
set -u
OUT=${OUT:-benchmarks/results/defaults}
JOBS=${JOBS:-$(nproc)}
GPU_JOBS=${GPU_JOBS:-0}
MAX_TIME=${MAX_TIME:-}
MAX_EPOCHS=${MAX_EPOCHS:-}
STRATEGIES=${STRATEGIES:-all}
LIMIT=${LIMIT:-0}   # seconds before the benchmark is stopped (what finished stays in runs.csv); 0: none
mkdir -p "$OUT/models"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
args=(--defaults --families hipnn --seeds 0 1 2 --targets reference top --n-low 800 --budget 100 --test 100
      --tie 0.1 --jobs "$JOBS" --gpu-jobs "$GPU_JOBS" --out "$OUT/runs.csv" --save-dir "$OUT/models"
      --strategies "single E" "single E+F" "multifidelity" "multifidelity (tied heads)"
                   "multifidelity (residual head)" "multifidelity (residual head), then fine-tuned"
                   "transfer" "delta")
[ -n "$MAX_TIME" ] && args+=(--max-time "$MAX_TIME")
[ -n "$MAX_EPOCHS" ] && args+=(--max-epochs "$MAX_EPOCHS")
# the three that decide the default, alone: the old default, the new one and its rival
[ "$STRATEGIES" = finalists ] && args+=(--strategies "multifidelity" "multifidelity (residual head), then fine-tuned" "transfer")
if [ "$LIMIT" -gt 0 ]; then
  timeout "$LIMIT" python3 benchmarks/multifidelity.py "${args[@]}" 2>&1 | tee "$OUT/log.txt"
else
  python3 benchmarks/multifidelity.py "${args[@]}" 2>&1 | tee "$OUT/log.txt"
fi
tar czf "$OUT/models.tgz" -C "$OUT" models && rm -rf "$OUT/models"
