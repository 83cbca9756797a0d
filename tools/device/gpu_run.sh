#!/usr/bin/env bash
# One prepared run on a lent NVIDIA machine (no Rust toolchain, no internet there): trains the HEAT
# demo model, evaluates it with PyTorch and with `hood eval` on Vulkan, calibrates it, and times
# hood's Vulkan backend against PyTorch on the ResNet-18 CIFAR-10 pipeline. Every stage has its own
# time limit so that a failure leaves the earlier results; everything lands in $OUT.
#
# Inputs (built/copied on the development machine, see tools/device/README.md):
#   .carry/bin/{hood,convert}   release builds (x86-64, vulkan feature)
#   .carry/data/                the three data-set tarballs (tools/train/README.md, "Data")
#                               + t10k-images-idx3-ubyte.gz
#   .gl/*.deb                   the Vulkan loader (libvulkan1), unpacked to / by the caller
# Knobs (environment): PRESET (gpu | cpu-small), CLS_BUDGET, DEC_BUDGET, EVAL_LIMIT (per set,
# empty = all), CAL_LIMIT (calibration images, empty = all), INFER_LIMIT (test images given to
# `hood infer`, empty = all), BENCH_BATCHES, BENCH_ITERS, VK_MAX_BATCH.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-/tmp/hood-gpu-out}
W=${WORK:-/tmp/hood-gpu-work}
PY=${PY:-python3}
BIN=${BIN:-$ROOT/.carry/bin}
DATA=${DATA:-$ROOT/.carry/data}
PRESET=${PRESET:-gpu}
CLS_BUDGET=${CLS_BUDGET:-150}
DEC_BUDGET=${DEC_BUDGET:-60}
EVAL_LIMIT=${EVAL_LIMIT:-}
CAL_LIMIT=${CAL_LIMIT:-}
INFER_LIMIT=${INFER_LIMIT:-}
BENCH_BATCHES=${BENCH_BATCHES:-1,8,64,256}
BENCH_ITERS=${BENCH_ITERS:-20}
export HOOD_VK_MAX_BATCH=${VK_MAX_BATCH:-256}
export PYTHONUNBUFFERED=1 RUST_LOG=${RUST_LOG:-info}
mkdir -p "$OUT" "$W"
L=$W/logs
mkdir -p "$L"
T0=$(date +%s)
stage() { echo "=== [$(( $(date +%s) - T0 )) s] $*" | tee -a "$L/stages.txt"; }
pack() { tar czf "$OUT/logs.tar.gz" -C "$W" logs 2>/dev/null; }
trap pack EXIT

stage "machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nproc;
  $PY -c 'import torch; print("torch", torch.__version__)'; date -u; } > "$L/machine.txt" 2>&1
cat "$L/machine.txt"
"$BIN/hood" --version >> "$L/machine.txt" 2>&1

stage "fashion-mnist export"
$PY tools/train/export_fashion_mnist.py --idx "$DATA/t10k-images-idx3-ubyte.gz" "$W/fmnist" \
    > "$L/fmnist.txt" 2>&1 &
FM=$!

stage "train (preset $PRESET)"
timeout 330 $PY tools/train/train_heat.py --datasets "$DATA" --work "$W" --out "$W/run" \
    --preset "$PRESET" ${CLS_BUDGET:+--cls-budget-s $CLS_BUDGET} \
    ${DEC_BUDGET:+--dec-budget-s $DEC_BUDGET} --keep-snapshots 1 2>&1 | tee "$L/train.txt"
cp "$W/run/train_log.json" "$W/run/config.txt" "$L/" 2>/dev/null
cp "$W/run/classifier.pt" "$W/run/decoder.pt" "$OUT/" 2>/dev/null
wait $FM
D=$W/data
SETS=(--id "$D/cifar10/test" --ood "dtd10=$D/dtd10" --ood "tinyimagenet32-val=$D/tinyimagenet32/val"
      --ood "fashion-mnist=$W/fmnist")
LIM=${EVAL_LIMIT:+--limit $EVAL_LIMIT}

stage "PyTorch evaluation"
timeout 120 $PY tools/train/evaluate.py --ckpt "$W/run" "${SETS[@]}" $LIM \
    --json "$L/eval_pytorch.json" --csv "$W/scores_pytorch.csv" > "$L/eval_pytorch.txt" 2>&1
tail -5 "$L/eval_pytorch.txt"

stage "convert + calibrate + infer"
timeout 60 "$BIN/convert" "$W/run/classifier.pt" "$W/run/decoder.pt" "$W/heat_wrn40_2_c10.hood" \
    --classes "$W/run/classes.txt" --name heat-wrn40-2-cifar10 > "$L/convert.txt" 2>&1
cat "$L/convert.txt"
timeout 90 "$BIN/hood" calibrate "$W/heat_wrn40_2_c10.hood" --id "$W/cifar10-val" --tpr 0.95 \
    --backend vulkan ${CAL_LIMIT:+--limit $CAL_LIMIT} --data "CIFAR-10 train, held out: last 500 files of each class" \
    > "$L/calibrate.txt" 2>&1
cat "$L/calibrate.txt"
cp "$W/heat_wrn40_2_c10.hood" "$OUT/" 2>/dev/null
timeout 60 "$BIN/hood" selftest "$W/heat_wrn40_2_c10.hood" --backend vulkan > "$L/selftest.txt" 2>&1
TEST_FILES=("$D"/cifar10/test/*/*.jpg)
[ -n "$INFER_LIMIT" ] && TEST_FILES=("${TEST_FILES[@]:0:$INFER_LIMIT}")
timeout 90 "$BIN/hood" infer "$W/heat_wrn40_2_c10.hood" --backend vulkan --json "${TEST_FILES[@]}" \
    > "$W/infer_test.jsonl" 2> "$L/infer_test.err"
$PY - "$W/infer_test.jsonl" > "$L/flagged_test.txt" 2>&1 <<'EOF'
import json, sys
rows = []
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    d = json.loads(line)
    rows += d if isinstance(d, list) else [d]
flag = sum(1 for r in rows if r.get("ood"))
print(f"hood infer on CIFAR-10 test: {flag}/{len(rows)} flagged OOD = {100 * flag / max(1, len(rows)):.2f} %")
EOF
cat "$L/flagged_test.txt"

stage "hood eval (vulkan)"
timeout 150 "$BIN/hood" eval "$W/heat_wrn40_2_c10.hood" --backend vulkan "${SETS[@]}" $LIM \
    --batch 256 --json --csv "$W/scores_hood_vulkan.csv" --plot "$L/roc_vulkan.png" \
    > "$L/eval_hood_vulkan.json" 2> "$L/eval_hood_vulkan.err"
$PY tools/train/compare_eval.py "$L/eval_pytorch.json" "$L/eval_hood_vulkan.json" \
    --pt-csv "$W/scores_pytorch.csv" --hood-csv "$W/scores_hood_vulkan.csv" \
    > "$L/compare_vulkan.md" 2>&1
cat "$L/compare_vulkan.md"
gzip -c "$W/scores_pytorch.csv" > "$L/scores_pytorch.csv.gz"
gzip -c "$W/scores_hood_vulkan.csv" > "$L/scores_hood_vulkan.csv.gz"
pack

stage "bench: PyTorch peer (ResNet-18 CIFAR-10 pipeline)"
timeout 120 $PY tools/bench/torch_peer.py --convert "$BIN/convert" --work "$W/peer" \
    --batches "$BENCH_BATCHES" --json "$L/torch_peer.json" > "$L/torch_peer.txt" 2>&1
cat "$L/torch_peer.txt"

stage "bench: hood vulkan (ResNet-18 CIFAR-10 pipeline)"
timeout 120 "$BIN/hood" bench "$W/peer/resnet18_c10_full.hood" --backend vulkan \
    --batch "$BENCH_BATCHES" --iters "$BENCH_ITERS" --max-seconds 6 > "$L/bench_r18.txt" 2>&1
cat "$L/bench_r18.txt"
timeout 60 "$BIN/hood" bench "$W/peer/resnet18_c10_full.hood" --backend vulkan --batch 1 \
    --iters 3 --max-seconds 3 --profile > "$L/profile_r18_b1.txt" 2>&1
timeout 60 "$BIN/hood" bench "$W/peer/resnet18_c10_full.hood" --backend vulkan \
    --batch "${BENCH_BATCHES##*,}" --iters 3 --max-seconds 3 --profile > "$L/profile_r18_bmax.txt" 2>&1
tail -25 "$L/profile_r18_bmax.txt"

stage "bench: hood vulkan (trained WRN-40-2)"
timeout 60 "$BIN/hood" bench "$W/heat_wrn40_2_c10.hood" --backend vulkan --batch "$BENCH_BATCHES" \
    --iters "$BENCH_ITERS" --max-seconds 4 > "$L/bench_wrn.txt" 2>&1
cat "$L/bench_wrn.txt"
# On the plain-loop reference (`--backend reference`, the oracle; it was `--backend cpu` before the
# fast CPU backend existed), so the figures in docs/RESULTS.md are reproduced as measured.
stage "hood eval (reference, ${CPU_EVAL_LIMIT:=500} per set) and PyTorch on the same images"
timeout 40 $PY tools/train/evaluate.py --ckpt "$W/run" "${SETS[@]}" --limit "$CPU_EVAL_LIMIT" \
    --json "$L/eval_pytorch_limit.json" --csv "$W/scores_pytorch_limit.csv" > /dev/null 2>&1
timeout 150 "$BIN/hood" eval "$W/heat_wrn40_2_c10.hood" --backend reference "${SETS[@]}" \
    --limit "$CPU_EVAL_LIMIT" --batch 256 --json --csv "$W/scores_hood_cpu.csv" \
    > "$L/eval_hood_cpu.json" 2> "$L/eval_hood_cpu.err"
$PY tools/train/compare_eval.py "$L/eval_pytorch_limit.json" "$L/eval_hood_cpu.json" \
    --pt-csv "$W/scores_pytorch_limit.csv" --hood-csv "$W/scores_hood_cpu.csv" \
    > "$L/compare_cpu.md" 2>&1
cat "$L/compare_cpu.md"
stage "done"
