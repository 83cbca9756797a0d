#!/usr/bin/env bash
# Prepares the carried files of tools/device/gpu_bench.sh (the lent GPU machine has no Rust
# toolchain): builds hood, convert and the Vulkan test binaries (the workspace's optimised dev
# profile), strips them into .carry.tar.xz (ignored by git; xz: half gzip's size, which the
# 64 MiB limit needs) with the file list the run expects,
# downloads the Vulkan loader + glvnd packages into .gl/ unless they are there, with DATA set
# packs the evaluation's test images into .evaldata.tar.xz (ignored by git), and checks that
# the whole transfer (tracked + untracked files + .carry.tar.xz + .gl + .evaldata.tar.xz) is
# under 64 MiB.
#   bash tools/device/prepare.sh            # then give the device tool the printed command
#   DATA=$DATA bash tools/device/prepare.sh # $DATA: the folder with cifar10-jpeg.tar.gz,
#                                           # tinyimagenet32-subset.tar.gz, dtd10-128px.tar.gz
# The pack holds every CIFAR-10 test image (10 000, the in-distribution set), every Tiny
# ImageNet-32 validation image (10 000) and the first DTD_PER_CLASS (default 20) images of each
# of the 10 DTD classes: about 8 MiB, what the 64 MiB leaves (the whole DTD10 set is 9 MB).
# CARGO_TARGET_DIR is honoured. NO_GL=1 skips the .gl download (the lavapipe dry run needs none).
set -euo pipefail
cd "$(dirname "$0")/../.."
T=${CARGO_TARGET_DIR:-target}
features=hood-runtime/vulkan,hood-tests/vulkan
cargo build -p hood-cli -p hood-convert --bins --features hood-runtime/vulkan
# The test executables, from cargo's own list (names carry a hash).
tests=$(cargo test -p hood-runtime -p hood-tests --features "$features" --no-run \
        --message-format=json 2>/dev/null | python3 -c '
import json, sys
want = {"vulkan_ops", "vulkan_proptest", "vulkan_models", "vulkan_heat"}
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and m["target"]["name"] in want and "test" in m["target"]["kind"]:
        print(m["target"]["name"], m["executable"])')
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/tests"
cp "$T/debug/hood" "$T/debug/convert" "$stage/bin/"
n=0
while read -r name exe; do
    cp "$exe" "$stage/tests/$name"
    n=$((n + 1))
done <<< "$tests"
[ "$n" = 4 ] || { echo "prepare: expected 4 Vulkan test binaries, found $n" >&2; exit 1; }
strip "$stage"/bin/* "$stage"/tests/*
tar cf - -C "$stage" bin tests | xz -6 -T0 > .carry.tar.xz.tmp
mv .carry.tar.xz.tmp .carry.tar.xz
rm -f .carry.tar.gz # the gzip carry of earlier versions would count against the limit
if [ "${NO_GL:-0}" != 1 ] && [ ! -d .gl ]; then
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update >/dev/null
    # shellcheck disable=SC2086
    (cd .gl && apt-get $o download libvulkan1 libglvnd0 libgl1 libglx0 libegl1 libgles2 libopengl0)
fi
if [ -n "${DATA:-}" ]; then
    d=$(mktemp -d)
    tar xzf "$DATA/cifar10-jpeg.tar.gz" -C "$d" cifar10/test
    tar xzf "$DATA/tinyimagenet32-subset.tar.gz" -C "$d" tinyimagenet32/val
    tar xzf "$DATA/dtd10-128px.tar.gz" -C "$d" dtd10
    for c in "$d"/dtd10/*/; do
        find "$c" -type f | sort | tail -n +$(( ${DTD_PER_CLASS:-20} + 1 )) | xargs -r rm -f
    done
    echo "prepare: evaluation images: cifar10/test $(find "$d/cifar10/test" -type f | wc -l)," \
        "tinyimagenet32/val $(find "$d/tinyimagenet32/val" -type f -iname '*.jpeg' | wc -l)," \
        "dtd10 $(find "$d/dtd10" -type f | wc -l)"
    tar cf - -C "$d" cifar10 tinyimagenet32 dtd10 | xz -6 -T0 > .evaldata.tar.xz.tmp
    mv .evaldata.tar.xz.tmp .evaldata.tar.xz
    rm -rf "$d"
fi
total=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | python3 -c '
import os, sys
names = [f for f in sys.stdin.read().split("\0") if f and os.path.isfile(f)]
extra = [".carry.tar.xz"] + [e for e in [".evaldata.tar.xz"] if os.path.isfile(e)] + [os.path.join(".gl", f) for f in (os.listdir(".gl") if os.path.isdir(".gl") else [])]
print(sum(os.path.getsize(f) for f in names + extra))')
echo "prepare: transfer $((total / 1048576)) MiB of 64 (.carry.tar.xz $(( $(stat -c %s .carry.tar.xz) / 1048576 )) MiB)"
[ "$total" -lt $((64 * 1048576)) ] || { echo "prepare: over the 64 MiB transfer limit" >&2; exit 1; }
if [ -f .evaldata.tar.xz ]; then
    echo 'run: carry [".carry.tar.xz", ".gl", ".evaldata.tar.xz"], command:'
else
    echo 'run: carry [".carry.tar.xz", ".gl"] (no .evaldata.tar.xz: the evaluation is not run), command:'
fi
echo '  for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; bash tools/device/gpu_bench.sh'
