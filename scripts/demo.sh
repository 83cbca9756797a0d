#!/usr/bin/env bash
# The main job on bundled defaults: build hood and score the bundled sample frames with the
# bundled model, writing heatmap overlays to target/demo-heatmaps/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -q -p hood-runtime --bin hood -p hood-firmware --bin hood-watch --features hood-runtime/vulkan
bin="${CARGO_TARGET_DIR:-target}/release/hood"
"$bin" info models/demo-untrained.hood | head -12
"$bin" selftest models/demo-untrained.hood
"$bin" infer models/demo-untrained.hood samples/*.jpg --heatmaps target/demo-heatmaps
echo "heatmap overlays written to target/demo-heatmaps/"
# The camera daemon on its embedded default: the bundled model and a bundled feed
# (in-distribution frames, an out-of-distribution segment, in-distribution again).
"${CARGO_TARGET_DIR:-target}/release/hood-watch"
