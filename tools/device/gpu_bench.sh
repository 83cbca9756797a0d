#!/usr/bin/env bash
# Third prepared run on the lent NVIDIA machine: hood's Vulkan backend vs PyTorch on the
# ResNet-18 CIFAR-10 pipeline, with split-K on (default) and off (HOOD_VK_NO_SPLIT_K=1), plus the
# trained WRN-40-2 demo model. Needs .carry/bin/{hood,convert} and .gl/ (see README.md here).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-/tmp/hood-gpu-out}
W=${WORK:-/tmp/hood-gpu-work}
PY=${PY:-python3}
BIN=${BIN:-$ROOT/.carry/bin}
B=${BENCH_BATCHES:-1,8,64,256}
export HOOD_VK_MAX_BATCH=${VK_MAX_BATCH:-256} PYTHONUNBUFFERED=1 RUST_LOG=${RUST_LOG:-warn}
L=$W/logs3
mkdir -p "$OUT" "$L"
trap 'tar czf "$OUT/logs3.tar.gz" -C "$W" logs3 2>/dev/null' EXIT
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; git -C "$ROOT" log -1 --format=%H 2>/dev/null; } | tee "$L/machine.txt"
M=$ROOT/models/heat-wrn40-2-cifar10.hood
timeout 60 "$BIN/hood" selftest "$M" --backend vulkan 2>&1 | tail -1 | tee "$L/selftest.txt"
timeout 90 $PY tools/bench/torch_peer.py --convert "$BIN/convert" --work "$W/peer" --batches "$B" \
    --json "$L/torch_peer.json" 2>&1 | tee "$L/torch_peer.txt"
R=$W/peer/resnet18_c10_full.hood
timeout 60 "$BIN/hood" selftest "$R" --backend vulkan 2>&1 | tail -1 | tee -a "$L/selftest.txt"
echo "--- split-K on (default)"; timeout 60 "$BIN/hood" bench "$R" --backend vulkan --batch "$B" \
    --iters 30 --max-seconds 4 2>&1 | tee "$L/bench_r18_splitk.txt"
echo "--- split-K off"; HOOD_VK_NO_SPLIT_K=1 timeout 60 "$BIN/hood" bench "$R" --backend vulkan \
    --batch "$B" --iters 30 --max-seconds 4 2>&1 | tee "$L/bench_r18_nosplitk.txt"
timeout 40 "$BIN/hood" bench "$R" --backend vulkan --batch 1 --iters 5 --max-seconds 2 --profile \
    > "$L/profile_r18_b1.txt" 2>&1; grep -A12 "^by kind" "$L/profile_r18_b1.txt"
timeout 40 "$BIN/hood" bench "$R" --backend vulkan --batch 256 --iters 3 --max-seconds 2 --profile \
    > "$L/profile_r18_b256.txt" 2>&1; grep -A4 "^by kind" "$L/profile_r18_b256.txt"
echo "--- WRN-40-2"; timeout 60 "$BIN/hood" bench "$M" --backend vulkan --batch "$B" --iters 30 \
    --max-seconds 4 2>&1 | tee "$L/bench_wrn.txt"
