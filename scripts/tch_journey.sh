#!/usr/bin/env bash
# The tch user's journey, end to end, on synthetic images (CI has no data sets): train a HEAT
# detector in Rust with tch (tools/tch-train, a few steps), save it with VarStore::save,
# `convert` it, `hood selftest` it, and check `hood infer`'s scores and classes against tch's own
# fp32 inference of the same checkpoint (`tch-train predict`). Then the same folders through the
# Python trainer's user-data path (tools/train/train_heat.py --id-train/--ood-train), checked
# against PyTorch's evaluation of its checkpoint.
#
# Needs PyTorch 2.11 for libtorch (tch 0.24 links against the libtorch inside the torch wheel):
# installed into a cached virtual environment, $HOOD_TORCH_VENV (default: a folder beside the
# cargo target dir, so a warm CI machine reuses it). Called by .ci/run after the README's test
# command; run it on its own with `bash scripts/tch_journey.sh` (it builds what it needs).
set -euo pipefail
cd "$(dirname "$0")/.."
HOOD_SETUP_TESTS=1
source scripts/setup.sh

target="${CARGO_TARGET_DIR:-$PWD/target}"
venv="${HOOD_TORCH_VENV:-$target/../torch-venv}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
t0=$SECONDS
stamp() { echo "tch-journey: [$((SECONDS - t0)) s] $*" >&2; }

# 1. PyTorch in the cached virtual environment (the CUDA wheel from PyPI: ~5 GB with its
#    libraries; tch only needs its libtorch, which runs on the CPU here).
if ! "$venv/bin/python" -c 'import torch; assert torch.__version__.startswith("2.11.")' 2>/dev/null; then
  stamp "installing torch 2.11.0 into $venv"
  rm -rf "$venv"
  if ! python3 -m venv "$venv"; then
    # Debian's python3 keeps venv/ensurepip in a separate package.
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends python3-venv
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --no-cache-dir --disable-pip-version-check torch==2.11.0
fi
torch_lib="$("$venv/bin/python" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
stamp "torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)') ready"

# 2. The trainer (its own workspace and target folder), and hood + convert exactly as the
#    README's test command builds them (`cargo test`'s build: after scripts/test.sh nothing is
#    rebuilt; on its own this builds what the tests build).
#    torch-sys finds libtorch by asking the venv's python, and cargo does not see that answer
#    change: a build cached against another venv would link against a folder that is gone. So
#    the trainer's target folder is named after the libtorch it links (older ones are removed).
tch_target="$target/tch-train-$(printf '%s' "$torch_lib" | sha256sum | cut -c1-12)"
for old in "$target"/tch-train "$target"/tch-train-*; do
  if [ -d "$old" ] && [ "$old" != "$tch_target" ]; then rm -rf "$old"; fi
done
LIBTORCH_USE_PYTORCH=1 PATH="$venv/bin:$PATH" CARGO_TARGET_DIR="$tch_target" \
  cargo build --release -q --manifest-path tools/tch-train/Cargo.toml
# The same feature set as scripts/test.sh, so this reuses its build.
cargo test -q --workspace --all-targets --features "$HOOD_TEST_FEATURES" --no-run
trainer="$tch_target/release/tch-train"
hood="$target/debug/hood"
convert="$target/debug/convert"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
stamp "built tch-train, hood, convert"

# 3.–4. Synthetic data; per classifier family a smoke-sized training run, conversion (fp16 and
#    fp32), self-tests, and hood (fp32 weights, plain-loop reference) against tch's own fp32
#    inference on the same images. The bound: 2e-3, tolerance.rs's SCORE_FP16 / SELFTEST_SCORE
#    (the fp32 model is far closer); any class difference fails too.
"$trainer" synth --out "$work/data"
mapfile -t images < <(find "$work/data/test" "$work/data/ood" -name '*.png' | LC_ALL=C sort)
for family in "wrn" "resnet18 --base-width 8" "resnet50 --base-width 8"; do
  name="${family%% *}"
  run="$work/$name"
  # shellcheck disable=SC2086  # $family carries the flags
  "$trainer" train --preset smoke --arch $family --id-train "$work/data/train" \
    --id-test "$work/data/test" --ood-train "$work/data/ood" --out "$run" --threads 2 | tail -n 1
  "$convert" "$run/heat.ot" "$run/heat.hood" --classes "$run/classes.txt" > "$run/convert.txt"
  head -n 2 "$run/convert.txt"
  "$convert" "$run/heat.ot" "$run/heat32.hood" --classes "$run/classes.txt" --fp32 > /dev/null
  "$hood" selftest "$run/heat.hood"
  "$hood" selftest "$run/heat32.hood"
  "$trainer" predict --model "$run/heat.ot" --out "$run/tch.csv" "${images[@]}"
  "$hood" infer "$run/heat32.hood" --backend reference --json "${images[@]}" > "$run/hood.jsonl"
  "$hood" infer "$run/heat.hood" --backend cpu --json "${images[@]}" > "$run/hood16.jsonl"
  python3 tools/train/compare_scores.py "$run/tch.csv" "$run/hood.jsonl" --max-dscore 2e-3 \
    --label "$name: hood fp32 model (reference) vs tch"
  # The stored fp16 model on the fast backend, for information: a barely trained model has
  # near-tied logits, so fp16 weights may flip a class (and with it the decoder's input).
  python3 tools/train/compare_scores.py "$run/tch.csv" "$run/hood16.jsonl" --report-only \
    --label "$name: hood fp16 model (cpu) vs tch"
  stamp "$name done"
done
# 5. The Python trainer on a user's layout (tools/train/train_heat.py --id-train, an image folder
#    per class; --ood-train, a folder of images): the same synthetic folders, one epoch of each
#    net, then conversion of the authors' layout it writes, a self-test, and hood (fp32 model,
#    plain-loop reference) against PyTorch's own evaluation of the checkpoint, same bound. Its
#    data readers' tests first (CIFAR-10 python batches included).
"$venv/bin/pip" install -q --no-cache-dir --disable-pip-version-check \
  -r tools/train/requirements.txt
"$venv/bin/python" tools/train/test_heat_data.py > "$work/heat_data_tests.txt"
tail -n 1 "$work/heat_data_tests.txt"
# 5a. The tch trainer on CIFAR-10's python batches (a cifar-10-batches-py folder as --id-train
#     and --id-test): the synthetic folders written in that format hold the same images in the
#     same order, so the run must give exactly the scores of the folder run of step 4 (wrn).
"$venv/bin/python" tools/train/to_cifar_batches.py --train "$work/data/train" \
  --test "$work/data/test" --out "$work/cifar"
"$trainer" train --preset smoke --arch wrn --id-train "$work/cifar" --id-test "$work/cifar" \
  --ood-train "$work/data/ood" --out "$work/wrn-cifar" --threads 2 | tail -n 1
"$trainer" predict --model "$work/wrn-cifar/heat.ot" --out "$work/wrn-cifar/tch.csv" "${images[@]}"
cmp "$work/wrn/tch.csv" "$work/wrn-cifar/tch.csv"
echo "tch trainer: CIFAR-10 python batches train the same model as the image folders"
LIBTORCH_USE_PYTORCH=1 PATH="$venv/bin:$PATH" CARGO_TARGET_DIR="$tch_target" \
  cargo test --release -q --manifest-path tools/tch-train/Cargo.toml
stamp "tch trainer on CIFAR batches done"
py="$work/python-trainer"
"$venv/bin/python" tools/train/train_heat.py --id-train "$work/data/train" \
  --ood-train "$work/data/ood" --work "$py/work" --out "$py/run" --preset cpu-small \
  --cls-epochs 1 --dec-epochs 1 --val-per-class 4 --device cpu | tail -n 1
"$convert" "$py/run/classifier.pt" "$py/run/decoder.pt" "$py/heat32.hood" \
  --classes "$py/run/classes.txt" --fp32 > /dev/null
"$hood" selftest "$py/heat32.hood"
CUDA_VISIBLE_DEVICES= "$venv/bin/python" tools/train/evaluate.py --ckpt "$py/run" --device cpu \
  --id "$work/data/test" --ood "ood=$work/data/ood" --csv "$py/pt.csv" --json "$py/pt.json" \
  > /dev/null
"$hood" infer "$py/heat32.hood" --backend reference --json "${images[@]}" > "$py/hood.jsonl"
python3 tools/train/compare_scores.py "$py/pt.csv" "$py/hood.jsonl" --max-dscore 2e-3 \
  --label "python trainer (--id-train folders): hood fp32 model (reference) vs PyTorch"
stamp "python trainer done"
stamp "done: hood matches tch and PyTorch"
