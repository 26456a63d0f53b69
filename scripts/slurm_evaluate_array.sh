#!/bin/bash
# Evaluate many checkpoints on a suite as one Slurm job array: task t evaluates checkpoint number t div SHARDS
# (a line of the CHECKPOINTS file, 0-based) on shard t mod SHARDS of the suite's cells. Records are one file
# per cell, written atomically, so tasks never collide; a requeued or re-run task skips the cells it finished.
#
#   CHECKPOINTS=ckpts.txt SUITE=downstream/transfer_ericsson.yaml DATA_ROOT=/data SHARDS=4 \
#       sbatch --array=0-79 scripts/slurm_evaluate_array.sh          # 20 checkpoints x 4 shards
#
# Settings (environment variables): CHECKPOINTS (file, one weights path per line; required), SUITE (default
# downstream/transfer_ericsson.yaml), DATA_ROOT (required), SHARDS (default 4), OUT (records folder, default
# results/runs), MAST_BENCH_CACHE (feature cache, on a shared file system), VENV (a virtual environment to
# activate), MAST_BENCH_DRY_RUN=1 (print the command and exit; used by the tests). See docs/cluster.md.
#SBATCH --job-name=mast-bench-evaluate
#SBATCH --array=0-3
#SBATCH --ntasks=1
#SBATCH --gpus=1
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%A_%a.out
set -euo pipefail

SUITE=${SUITE:-downstream/transfer_ericsson.yaml}
SHARDS=${SHARDS:-4}
OUT=${OUT:-results/runs}
TASK=${SLURM_ARRAY_TASK_ID:-0}
for name in CHECKPOINTS DATA_ROOT; do
  if [ -z "${!name:-}" ]; then
    echo "Error: set $name (CHECKPOINTS=ckpts.txt DATA_ROOT=/data sbatch --array=0-N $0)" >&2
    exit 2
  fi
done
if [ ! -f "$CHECKPOINTS" ]; then
  echo "Error: CHECKPOINTS file '$CHECKPOINTS' does not exist" >&2
  exit 2
fi
mapfile -t WEIGHTS < <(grep -v '^[[:space:]]*\(#\|$\)' "$CHECKPOINTS")
CKPT=$(( TASK / SHARDS ))
SHARD=$(( TASK % SHARDS ))
if [ "$CKPT" -ge "${#WEIGHTS[@]}" ]; then
  echo "Error: array task $TASK needs checkpoint $CKPT but '$CHECKPOINTS' lists ${#WEIGHTS[@]}; use --array=0-$(( ${#WEIGHTS[@]} * SHARDS - 1 ))" >&2
  exit 2
fi
if [ -n "${VENV:-}" ]; then
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
fi

COMMAND=(mast-bench evaluate suite --suite "$SUITE" --weights "${WEIGHTS[$CKPT]}" --data-root "$DATA_ROOT"
  --out "$OUT" --shard "$SHARD/$SHARDS" --no-progress)
if [ "${MAST_BENCH_DRY_RUN:-0}" = 1 ]; then
  printf '%q ' "${COMMAND[@]}"
  echo
  exit 0
fi
exec "${COMMAND[@]}"
