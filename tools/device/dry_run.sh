#!/usr/bin/env bash
# The dry run of the prepared device script on this machine's Vulkan device (lavapipe), so that
# CI keeps tools/device/gpu_bench.sh working between device runs: prepare.sh without the
# loader download, then gpu_bench.sh with DRY=1 and no evaluation pack (the sample frames
# instead; batches 1 and 2, two iterations; the carried
# test binaries run in full, about a minute on lavapipe). Needs PY: a python with torch (the tch journey's virtual environment in CI).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PY:?set PY to a python with torch}"
NO_GL=1 bash tools/device/prepare.sh
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
EVALDATA= DRY=1 OUT="$w/out" WORK="$w/work" bash tools/device/gpu_bench.sh
rm -f .carry.tar.xz
