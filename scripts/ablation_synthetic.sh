#!/usr/bin/env bash
# The MAST ablation of docs/method.md (section 3) end to end: the demo synthetic suite, every variant with
# three seeds at the ablation budget, the table, and the mask / uncertainty figures of the MAST runs.
#
#   bash scripts/ablation_synthetic.sh OUT [EPOCHS] [JOBS]
#
# OUT     working folder (suite, runs, records, caches); the table and figures go to OUT/table and OUT/figures
# EPOCHS  pretraining epochs of every run (default 30: 2820 steps of batch 64 on the 6000-image pool)
# JOBS    runs pretrained at once as separate processes (default 1). Tiny runs leave a GPU mostly idle; on one
#         H200 with 16 CPU cores, 9 at once took 136 s for nine 3-epoch runs with their probes (docs/method.md,
#         section 3.1). Each process wants about one core for itself and one for its data worker.
#
# Environment: PY (python with mast-bench importable; default .venv/bin/python, else python3), SEEDS (0,1,2),
# VARIANTS (all), DEVICE (auto). Re-running continues where an interrupted run stopped (finished runs and
# records are reused).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/ablation_synthetic.sh OUT [EPOCHS] [JOBS]}
EPOCHS=${2:-30}
JOBS=${3:-1}
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
SEEDS=${SEEDS:-0,1,2}
VARIANTS=${VARIANTS:-random-init,vicreg,masks,masks+uncertainty,masks+uncertainty+aware}
DEVICE=${DEVICE:-auto}
SUITE="$OUT/suite"

if [ ! -f "$SUITE/manifest.json" ]; then
  "$PY" -m mast_bench datasets make-synthetic --out "$SUITE" --seed 0 --size demo
fi
"$PY" -m mast_bench ablation --out "$OUT" --suite "$SUITE" --recipe pretrain/mast_tiny_synthetic.yaml \
  --seeds "$SEEDS" --variants "$VARIANTS" --jobs "$JOBS" --threads 1 --table-dir "$OUT/table" --no-progress \
  --set "run.epochs=$EPOCHS" --set "run.device=$DEVICE"
first_seed=${SEEDS%%,*}
for variant in masks+uncertainty masks+uncertainty+aware; do
  ckpt="$OUT/runs/$variant-s$first_seed/final.pt"
  [ -f "$ckpt" ] || continue
  "$PY" -m mast_bench analyze "$ckpt" --data-root "$SUITE" --out "$OUT/figures/$variant-s$first_seed" \
    --overwrite --no-progress
done
echo "ablation_synthetic: table in $OUT/table, figures in $OUT/figures"
