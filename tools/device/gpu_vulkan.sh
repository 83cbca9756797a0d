#!/usr/bin/env bash
# Second prepared run on the lent NVIDIA machine: hood's Vulkan backend on the NVIDIA driver with
# the model trained by gpu_run.sh (carried in .carry/model/, together with that run's PyTorch
# evaluation JSON): self-test, `hood eval --backend vulkan` on the full test sets compared with
# PyTorch, and `hood bench` against PyTorch on the ResNet-18 CIFAR-10 pipeline in the same run.
# The first run found no Vulkan driver with only libvulkan1 unpacked; the NVIDIA ICD also needs
# the GL vendor-neutral dispatch libraries, so the caller unpacks all of .gl/ (libvulkan1,
# libglvnd0, libgl1, libglx0, libegl1, libgles2, libopengl0).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-/tmp/hood-gpu-out}
W=${WORK:-/tmp/hood-gpu-work}
PY=${PY:-python3}
BIN=${BIN:-$ROOT/.carry/bin}
DATA=${DATA:-$ROOT/.carry/data}
PREV=${PREV:-$ROOT/.carry/model}
MODEL=$PREV/heat_wrn40_2_c10.hood
BENCH_BATCHES=${BENCH_BATCHES:-1,8,64,256}
export HOOD_VK_MAX_BATCH=${VK_MAX_BATCH:-256} PYTHONUNBUFFERED=1 RUST_LOG=${RUST_LOG:-info}
L=$W/logs
mkdir -p "$OUT" "$L"
T0=$(date +%s)
stage() { echo "=== [$(( $(date +%s) - T0 )) s] $*" | tee -a "$L/stages.txt"; }
pack() { tar czf "$OUT/logs2.tar.gz" -C "$W" logs 2>/dev/null; }
trap pack EXIT

stage "vulkan driver"
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"; ls /usr/local/nvidia/share/vulkan/icd.d/ 2>&1
  cat "${VK_DRIVER_FILES:-/dev/null}" 2>&1; ldconfig -p | grep -E "vulkan|GLX|GLdispatch|EGL" ; } \
  > "$L/driver.txt" 2>&1
cat "$L/driver.txt"
VK_LOADER_DEBUG=error,warn,driver timeout 60 "$BIN/hood" selftest "$MODEL" --backend vulkan \
    > "$L/selftest.txt" 2>&1
tail -20 "$L/selftest.txt"
grep -q "backend vulkan" "$L/selftest.txt" && grep -qi "no vulkan driver" "$L/selftest.txt" && {
    echo "no Vulkan driver: stopping"; exit 1; }

stage "data"
mkdir -p "$W/data"
for t in cifar10-jpeg dtd10-128px tinyimagenet32-subset; do tar xzf "$DATA/$t.tar.gz" -C "$W/data"; done
$PY tools/train/export_fashion_mnist.py --idx "$DATA/t10k-images-idx3-ubyte.gz" "$W/fmnist" > /dev/null
D=$W/data
SETS=(--id "$D/cifar10/test" --ood "dtd10=$D/dtd10" --ood "tinyimagenet32-val=$D/tinyimagenet32/val"
      --ood "fashion-mnist=$W/fmnist")

stage "hood eval (vulkan, full sets)"
timeout 120 "$BIN/hood" eval "$MODEL" --backend vulkan "${SETS[@]}" --batch 256 --json \
    --csv "$W/scores_hood_vulkan.csv" --plot "$L/roc_vulkan.png" \
    > "$L/eval_hood_vulkan.json" 2> "$L/eval_hood_vulkan.err"
tail -3 "$L/eval_hood_vulkan.err"
# Paths in the PyTorch CSV are those of the first run's work folder: rewrite to this one.
zcat "$PREV/scores_pytorch.csv.gz" | sed "s#^[^,]*/data/#$D/#; s#^[^,]*/fmnist/#$W/fmnist/#" \
    > "$W/scores_pytorch.csv"
$PY tools/train/compare_eval.py "$PREV/eval_pytorch.json" "$L/eval_hood_vulkan.json" \
    --pt-csv "$W/scores_pytorch.csv" --hood-csv "$W/scores_hood_vulkan.csv" \
    > "$L/compare_vulkan.md" 2>&1
cat "$L/compare_vulkan.md"
gzip -c "$W/scores_hood_vulkan.csv" > "$L/scores_hood_vulkan.csv.gz"
"$BIN/hood" infer "$MODEL" --backend vulkan --json "$D"/cifar10/test/*/*.jpg \
    > "$W/infer_test.jsonl" 2> "$L/infer_test.err"
$PY -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
flag = sum(1 for r in rows if r.get("ood"))
print(f"hood infer (vulkan) on CIFAR-10 test: {flag}/{len(rows)} flagged = {100 * flag / max(1, len(rows)):.2f} %")
' "$W/infer_test.jsonl" | tee "$L/flagged_test.txt"
pack

stage "bench: PyTorch peer + hood vulkan, ResNet-18 CIFAR-10 pipeline"
timeout 90 $PY tools/bench/torch_peer.py --convert "$BIN/convert" --work "$W/peer" \
    --batches "$BENCH_BATCHES" --json "$L/torch_peer.json" > "$L/torch_peer.txt" 2>&1
cat "$L/torch_peer.txt"
timeout 90 "$BIN/hood" bench "$W/peer/resnet18_c10_full.hood" --backend vulkan \
    --batch "$BENCH_BATCHES" --iters 30 --max-seconds 5 > "$L/bench_r18.txt" 2>&1
cat "$L/bench_r18.txt"
timeout 40 "$BIN/hood" bench "$W/peer/resnet18_c10_full.hood" --backend vulkan --batch 1 \
    --iters 5 --max-seconds 2 --profile > "$L/profile_r18_b1.txt" 2>&1
timeout 40 "$BIN/hood" bench "$W/peer/resnet18_c10_full.hood" --backend vulkan --batch 256 \
    --iters 3 --max-seconds 2 --profile > "$L/profile_r18_b256.txt" 2>&1
tail -12 "$L/profile_r18_b256.txt"
stage "bench: trained WRN-40-2"
timeout 60 "$BIN/hood" bench "$MODEL" --backend vulkan --batch "$BENCH_BATCHES" --iters 30 \
    --max-seconds 4 > "$L/bench_wrn.txt" 2>&1
cat "$L/bench_wrn.txt"
stage "done"
