#!/bin/bash
# Pretrain an ImageNet recipe with Slurm: one task per node, torchrun inside it starting one process per GPU,
# c10d rendezvous on the first node. The job requeues itself before its time limit (and Slurm requeues it
# on preemption); every start after the first resumes from OUT/checkpoint.pt at its exact step.
#
#   sbatch --nodes=4 scripts/slurm_pretrain.sh                       # 4 nodes x 8 GPUs, batch 2048 in total
#   RECIPE=pretrain/vicreg_r50_imagenet.yaml DATA_ROOT=/data/imagenet sbatch scripts/slurm_pretrain.sh
#
# Settings (environment variables): RECIPE (default pretrain/mast_r50_imagenet.yaml), DATA_ROOT (required),
# OUT (default runs/<recipe name>), GPUS_PER_NODE (default 8), MASTER_PORT (default 29500), VENV (a virtual
# environment to activate), MAST_BENCH_DRY_RUN=1 (print the launch line and exit; used by the tests).
# docs/cluster.md explains each choice.
#SBATCH --job-name=mast-bench-pretrain
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --signal=B:USR1@300
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%j.out
set -euo pipefail

RECIPE=${RECIPE:-pretrain/mast_r50_imagenet.yaml}
DATA_ROOT=${DATA_ROOT:-}
OUT=${OUT:-runs/$(basename "$RECIPE" .yaml)}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
MASTER_PORT=${MASTER_PORT:-29500}
NODES=${SLURM_JOB_NUM_NODES:-1}
JOB_ID=${SLURM_JOB_ID:-0}
if [ -n "${SLURM_JOB_NODELIST:-}" ] && command -v scontrol > /dev/null; then
  MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
else
  MASTER_ADDR=${MASTER_ADDR:-localhost}
fi
if [ -z "$DATA_ROOT" ] && [ "${MAST_BENCH_DRY_RUN:-0}" != 1 ]; then
  echo "Error: set DATA_ROOT to the ImageNet folder (DATA_ROOT=/data/imagenet sbatch $0)" >&2
  exit 2
fi
if [ -n "${VENV:-}" ]; then
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
fi

# A requeued job starts this script again from the top: resume when a checkpoint exists.
RESUME=()
if [ -f "$OUT/checkpoint.pt" ]; then
  RESUME=(--resume)
fi

LAUNCH=(srun --kill-on-bad-exit=1 --ntasks-per-node=1
  torchrun --nnodes="$NODES" --nproc-per-node="$GPUS_PER_NODE" --rdzv-id="$JOB_ID" --rdzv-backend=c10d
  --rdzv-endpoint="$MASTER_ADDR:$MASTER_PORT"
  -m mast_bench pretrain "$RECIPE" --data-root "${DATA_ROOT:-/data/imagenet}" --out "$OUT" --no-progress
  ${RESUME[@]+"${RESUME[@]}"})

if [ "${MAST_BENCH_DRY_RUN:-0}" = 1 ]; then
  printf '%q ' "${LAUNCH[@]}"
  echo
  exit 0
fi

# USR1 arrives 300 s before the time limit (--signal above): put the job back in the queue. The training
# processes are stopped with it; the next start resumes from the last checkpoint (run.checkpoint_every_steps
# bounds the work lost).
requeue() {
  echo "$(date -u +%FT%TZ) time limit near: requeueing job $JOB_ID"
  scontrol requeue "$JOB_ID"
}
trap requeue USR1
"${LAUNCH[@]}" &
wait $!
