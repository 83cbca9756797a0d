#!/usr/bin/env bash
# The main job on bundled defaults: build hood and score the bundled sample frames with the
# bundled trained, calibrated model (WRN-40-2 HEAT on CIFAR-10), writing heatmap overlays to
# target/demo-heatmaps/; then hood-watch on its embedded default feed, which raises the alert on
# the out-of-distribution segment and clears it after (events and overlays in hood-watch-out/).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -q -p hood-runtime --bin hood -p hood-firmware --bin hood-watch --features hood-runtime/vulkan
bin="${CARGO_TARGET_DIR:-target}/release/hood"
model=models/heat-wrn40-2-cifar10.hood
"$bin" info "$model" | sed -n 1,12p     # sed reads it all: no broken pipe
"$bin" selftest "$model"
"$bin" infer "$model" samples/*.jpg samples/*.png --heatmaps target/demo-heatmaps
echo "heatmap overlays written to target/demo-heatmaps/"
# The camera daemon on its embedded default: the same model and a bundled feed
# (in-distribution frames, an out-of-distribution segment, in-distribution again).
"${CARGO_TARGET_DIR:-target}/release/hood-watch"
