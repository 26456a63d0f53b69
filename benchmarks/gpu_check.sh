#!/bin/bash
# One prepared check for a machine with a CUDA GPU (finishes well under 5 minutes): ResNet-50 VICReg pretraining
# steps at batch 256, 224 px, our GPU settings against the plain settings of VICReg's official recipe, in the
# same run, data pipeline included (JPEG decoding in DataLoader workers, both views augmented, the step).
#
#   ours : fp16 AMP, channels_last, augment.where=device (photometric families batched on the GPU)
#   plain: fp16 AMP, NCHW, augment.where=workers (every family per image in the workers), as VICReg's
#          main_vicreg.py; neither compiles (run.compile is off by default; WITH_COMPILE=1 adds a third,
#          compiled run of ours)
#
#   bash benchmarks/gpu_check.sh          # on the GPU machine
#   bash benchmarks/gpu_check.sh --dry    # the same script end to end on a CPU with a tiny model (plumbing)
#
# Prints the batched augmentation's agreement with the per-image pipeline and its throughput, both runs'
# figures, then the last line `gpu_check: ours <img/s>, plain <img/s>, ratio <x>`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

if [ "${1:-}" = "--dry" ]; then
  COMMON=(--recipe pretrain/vicreg_tiny_quick.yaml --batch 16 --size 32 --device cpu --workers 1 --steps 2
          --warmup 1 --source 48x64 --threads 1)
  LIMIT=300
else
  CORES=$(env -u OMP_NUM_THREADS nproc)  # nproc obeys OMP_NUM_THREADS, set above
  COMMON=(--recipe pretrain/vicreg_r50_imagenet.yaml --batch 256 --size 224 --device cuda
          --workers "${WORKERS:-$(( CORES > 4 ? CORES - 2 : 2 ))}" --steps 30 --warmup 8 --pool 2048)
  LIMIT=200  # per run (the plain run's per-image workers needed more than 100 s on an H200 machine);
             # with the 60 s augmentation check the script stops within 460 s
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
echo "machine: $(nproc) CPU cores; $("$PY" -c 'import torch; print("torch", torch.__version__)')"

run() {  # run NAME ARGS...: print the benchmark's output, keep its img/s
  local name=$1
  shift
  echo "=== $name: $*"
  local log
  log=$(mktemp)
  if ! timeout "$LIMIT" "$PY" benchmarks/pretrain_throughput.py "${COMMON[@]}" "$@" > "$log" 2>&1; then
    cat "$log"
    echo "gpu_check: $name run failed or exceeded ${LIMIT} s" >&2
    exit 1
  fi
  grep -v '^W[0-9]' "$log" | tail -4
  tail -1 "$log" | sed -E 's/^pretrain_throughput: ([0-9.]+) img\/s.*/\1/' > "$log.rate"
  eval "RATE_${name}=$(cat "$log.rate")"
  rm -f "$log" "$log.rate"
}

# The batched stage on this device against the per-image pipeline on its CPU: same parameters, views equal
# within 1e-5 (the script prints the largest difference), and the augmentation-only throughput.
if [ "${1:-}" = "--dry" ]; then
  AUG=(--batch 8 --size 32 --source 40x48 --reps 1 --device cpu)
else
  AUG=(--batch 128 --reps 3 --device cuda)
fi
echo "=== augmentation alone: ${AUG[*]}"
timeout 60 "$PY" benchmarks/augment_throughput.py "${AUG[@]}" | tail -4

run ours --precision fp16 --channels-last --where device --no-compile
run plain --precision fp16 --no-channels-last --where workers --no-compile
if [ "${WITH_COMPILE:-0}" = 1 ]; then
  run compiled --precision fp16 --channels-last --where device --compile
fi
RATIO=$("$PY" -c "print(f'{$RATE_ours / $RATE_plain:.2f}')")
echo "gpu_check: ours $RATE_ours img/s, plain $RATE_plain img/s, ratio $RATIO"
