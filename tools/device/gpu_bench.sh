#!/usr/bin/env bash
# The prepared run on a lent NVIDIA machine for the Vulkan v2 / tensor-core issues: one script,
# at most ~8 minutes. Needs .carry.tar.xz (tools/device/prepare.sh) and, on the GPU, the Vulkan
# loader from .gl/ (see README.md here).
#  1. correctness on the device: the carried Vulkan test binaries (op tests, proptests, the HEAT
#     pipeline tests, every committed model fixture vs the CPU reference), the proptests and the
#     whole-model fragment test again on the tensor-core kernels (HOOD_TEST_GEMM=coopmat), then
#     per kernel variant `hood selftest` of the bundled model and of the ResNet-18 benchmark
#     model;
#  2. speed: the ResNet-18 CIFAR-10 HEAT pipeline (tools/bench/torch_peer.py) timed with PyTorch
#     eager fp16 and CUDA graphs, and with `hood bench --json` for every variant, batch 1, 8, 64,
#     256 (HOOD_VK_MAX_BATCH = 256: no batch is split), plus the batch-1 profile as JSON;
#  3. evaluation: the bundled demo model (WRN-40-2, CIFAR-10) on the test images of
#     .evaldata.tar.xz (prepare.sh with DATA=...) with PyTorch (tools/train/evaluate.py) and
#     with `hood eval --backend vulkan` on the fp32 GEMM core and on the tensor-core kernels,
#     compared by tools/train/compare_eval.py (the bounds |dAUROC| <= 0.002, |dFPR95| <= 0.5 pp);
#  4. one JSON ($OUT/gpu_bench.json) and the table for docs/BENCHMARKS.md ($OUT/gpu_bench.md).
# DRY=1: the same steps on whatever Vulkan device is here (lavapipe), small batches, few
# iterations, test binaries filtered by TEST_FILTER, the cooperative-matrix variants and tests
# listed as not run in the report, the evaluation on the repository's sample frames with the
# emulated fragment core in place of the tensor-core kernels (the CI dry run:
# tools/device/dry_run.sh).
# Environment: OUT, WORK, PY (python with torch, scikit-learn, Pillow), CARRY (the tarball),
# EVALDATA (the test images, default .evaldata.tar.xz), TEST_FILTER, BUDGET (seconds the whole
# run may take, default 450: the evaluation, the last step, gets what is left, or is listed as
# not run when under a minute is).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-/tmp/hood-gpu-out}
W=${WORK:-/tmp/hood-gpu-work}
PY=${PY:-python3}
CARRY=${CARRY:-$ROOT/.carry.tar.xz}
EVALDATA=${EVALDATA-$ROOT/.evaldata.tar.xz}
DRY=${DRY:-0}
# T_PROF bounds the profiled run: generous when dry, as lavapipe runs the generic kernels at
# ~10 s per image on a loaded 2-core machine (a CI run timed out at 60 s).
if [ "$DRY" = 1 ]; then
    B=1,2 ITERS=2 MAXB=2 T_TEST=600 T_BENCH=120 T_PROF=300 PROF_ITERS=1 T_EVAL=300
    BUDGET=${BUDGET:-7200}
else
    B=1,8,64,256 ITERS=30 MAXB=256 T_TEST=120 T_BENCH=60 T_PROF=60 PROF_ITERS=3 T_EVAL=120
    BUDGET=${BUDGET:-450}
fi
export HOOD_VK_MAX_BATCH=$MAXB HOOD_VK_REQUIRE_DEVICE=1 HOOD_REPO_ROOT=$ROOT PYTHONUNBUFFERED=1
L=$W/logs
rm -rf "$L" "$W/carry" "$W/data"
mkdir -p "$OUT" "$L" "$W/carry"
trap 'tar czf "$OUT/logs.tar.gz" -C "$W" logs 2>/dev/null' EXIT
# Unpacked with Python's tarfile (lzma built in), so the machine needs no xz binary.
unpack() {
    "$PY" -c 'import sys, tarfile
kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
tarfile.open(sys.argv[1]).extractall(sys.argv[2], **kw)' "$1" "$2"
}
unpack "$CARRY" "$W/carry" || { echo "gpu_bench: cannot unpack $CARRY" >&2; exit 1; }
BIN=$W/carry/bin
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi";
  date -u; git -C "$ROOT" log -1 --format=%H 2>/dev/null || echo "no git"; } | tee "$L/machine.txt"

# The benchmark model (PyTorch writes it; times the peers when CUDA is there).
timeout 240 "$PY" "$ROOT/tools/bench/torch_peer.py" --convert "$BIN/convert" --work "$W/peer" \
    --batches "$B" --iters "$ITERS" --json "$L/torch_peer.json" 2>&1 | tee "$L/torch_peer.txt"
R=$W/peer/resnet18_c10_full.hood
M=$ROOT/models/heat-wrn40-2-cifar10.hood

# 1. The test binaries (run from runtime/, where their relative paths point).
for t in "$W"/carry/tests/*; do
    name=$(basename "$t")
    (cd "$ROOT/runtime" && timeout "$T_TEST" "$t" --test-threads 4 ${TEST_FILTER:-}) \
        > "$L/test_$name.txt" 2>&1
    echo "test $name: rc $? ($(grep -E '^test result' "$L/test_$name.txt" | tail -1))" | tee -a "$L/tests.txt"
done
# The tensor-core kernels' correctness: the proptests (their fragment variant) and the
# whole-model fragment test again, on the cooperative-matrix kernels (HOOD_TEST_GEMM=coopmat).
# Not on a dry run: lavapipe has no cooperative matrices (CI tests the emulated fragments).
: > "$L/skipped.txt"
if [ "$DRY" = 1 ]; then
    echo "tests with HOOD_TEST_GEMM=coopmat: not run (dry run, no cooperative-matrix device)" >> "$L/skipped.txt"
else
    for t in vulkan_proptest vulkan_models; do
        filter=""
        [ "$t" = vulkan_models ] && filter=fragments
        (cd "$ROOT/runtime" && HOOD_TEST_GEMM=coopmat timeout "$T_TEST" "$W/carry/tests/$t" \
            --test-threads 4 $filter) > "$L/test_${t}_coopmat.txt" 2>&1
        echo "test $t (coopmat): rc $? ($(grep -E '^test result' "$L/test_${t}_coopmat.txt" | tail -1))" \
            | tee -a "$L/tests.txt"
    done
fi

# 2. Variants: name and the switches that select it. `default` is the plan's own choice (the
# tensor-core kernels where the device can run them and they pass their self-check, else the
# fp32 core); the tiled_* variants force the fp32 core (HOOD_VK_GEMM=fma).
F="HOOD_VK_GEMM=fma HOOD_VK_NO_BCAST=1"
VARIANTS=(
    "default|"
    "tiled|$F"
    "tiled_no_split_k|$F HOOD_VK_NO_SPLIT_K=1"
    "tiled_large|$F HOOD_VK_TILES=large"
    "tiled_plain|$F HOOD_VK_NO_PIPELINED_GEMM=1 HOOD_VK_NCHW=1"
    "emulated|HOOD_VK_GEMM=emulated"
    "coopmat|HOOD_VK_GEMM=coopmat"
    "coopmat_large|HOOD_VK_GEMM=coopmat HOOD_VK_TILES=large"
    "coopmat_no_split_k|HOOD_VK_GEMM=coopmat HOOD_VK_NO_SPLIT_K=1"
    "generic|HOOD_VK_GEMM=fma HOOD_VK_NO_TILED_CONV=1 HOOD_VK_NO_TILED_DECONV=1"
)
: > "$L/selftest.txt"
: > "$L/bench.jsonl"
for v in "${VARIANTS[@]}"; do
    name=${v%%|*}
    sw=${v#*|}
    if [ "$DRY" = 1 ] && [[ "$sw" == *GEMM=coopmat* ]]; then
        echo "variant $name: not run (dry run, no cooperative-matrix device)" >> "$L/skipped.txt"
        continue
    fi
    for model in "$M" "$R"; do
        line=$(env $sw timeout 60 "$BIN/hood" selftest "$model" --backend vulkan 2>&1 | tail -1)
        echo "$name $(basename "$model"): $line" | tee -a "$L/selftest.txt"
    done
    env $sw timeout "$T_BENCH" "$BIN/hood" bench "$R" --backend vulkan --batch "$B" \
        --iters "$ITERS" --max-seconds 4 --json 2>"$L/bench_$name.err" \
        | "$PY" -c 'import json,sys
for l in sys.stdin:
    d = json.loads(l); d["variant"] = sys.argv[1]; print(json.dumps(d))' "$name" >> "$L/bench.jsonl"
    env $sw timeout "$T_PROF" "$BIN/hood" bench "$R" --backend vulkan --batch 1 --iters "$PROF_ITERS" --warmup 1 \
        --max-seconds 2 --profile --json 2>/dev/null | grep '"profile"' > "$L/profile_$name.json"
done

# 3. Evaluation of the demo model: PyTorch vs hood on the fp32 core and on the tensor-core
# kernels (dry: the emulated fragments), on every image of the carried test sets.
D=$W/data
: > "$L/evals.txt"
if [ -f "$EVALDATA" ]; then
    unpack "$EVALDATA" "$D" || echo "eval: cannot unpack $EVALDATA" >> "$L/evals.txt"
elif [ "$DRY" = 1 ]; then
    # The sample frames: CIFAR-10 ones as the in-distribution set, the others as one OOD set.
    mkdir -p "$D/dtd10"
    for f in "$ROOT"/samples/*.jpg; do
        b=$(basename "$f")
        case "$b" in
            cifar10-*) c=${b#cifar10-}; mkdir -p "$D/cifar10/test/${c%%-*}"; cp "$f" "$D/cifar10/test/${c%%-*}/" ;;
            *) cp "$f" "$D/dtd10/" ;;
        esac
    done
fi
left=$((BUDGET - SECONDS - 15))
if [ -d "$D/cifar10/test" ] && [ "$left" -lt 60 ]; then
    echo "evaluation: not run (${left} s of the ${BUDGET} s budget left)" >> "$L/skipped.txt"
elif [ -d "$D/cifar10/test" ]; then
    [ $((left / 3)) -lt "$T_EVAL" ] && T_EVAL=$((left / 3))
    SETS=(--id "$D/cifar10/test" --ood "dtd10=$D/dtd10")
    [ -d "$D/tinyimagenet32/val" ] && SETS+=(--ood "tinyimagenet32-val=$D/tinyimagenet32/val")
    timeout "$T_EVAL" "$PY" "$ROOT/tools/train/evaluate.py" --ckpt "$ROOT/models/heat-wrn40-2-cifar10" \
        "${SETS[@]}" --json "$L/eval_pytorch.json" --csv "$W/scores_pytorch.csv" > "$L/eval_pytorch.txt" 2>&1
    echo "eval pytorch: rc $?" >> "$L/evals.txt"
    FRAG=coopmat
    [ "$DRY" = 1 ] && FRAG=emulated
    for core in fma "$FRAG"; do
        HOOD_VK_GEMM=$core timeout "$T_EVAL" "$BIN/hood" eval "$M" --backend vulkan "${SETS[@]}" \
            --batch "$MAXB" --json --csv "$W/scores_$core.csv" > "$L/eval_$core.json" 2> "$L/eval_$core.err"
        rc=$?
        "$PY" "$ROOT/tools/train/compare_eval.py" "$L/eval_pytorch.json" "$L/eval_$core.json" \
            --pt-csv "$W/scores_pytorch.csv" --hood-csv "$W/scores_$core.csv" > "$L/compare_$core.md" 2>&1
        echo "eval $core: rc $rc, compare rc $?" >> "$L/evals.txt"
    done
    cat "$L/evals.txt"
else
    echo "evaluation: not run (no $EVALDATA; tools/device/prepare.sh with DATA=... makes it)" >> "$L/skipped.txt"
fi

# 4. One JSON and the table.
"$PY" "$ROOT/tools/device/gpu_report.py" "$L" "$OUT/gpu_bench.json" "$OUT/gpu_bench.md"
