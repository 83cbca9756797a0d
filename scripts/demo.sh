#!/usr/bin/env bash
# The main job on bundled defaults: build hood and score the bundled sample frames with the
# bundled trained, calibrated model (WRN-40-2 HEAT on CIFAR-10), writing heatmap overlays to
# target/demo-heatmaps/; then hood-watch on its embedded default feed, which raises the alert on
# the out-of-distribution segment and clears it after (events and overlays in hood-watch-out/).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# The Vulkan backend only where it can run on a GPU. The default backend (`auto`) takes a GPU
# through Vulkan and otherwise the fast CPU backend, never a CPU Vulkan driver, so on a machine
# without a GPU the Vulkan build (shaderc compiled from source: 15–20 of a cold run's minutes on
# 2 cores) would never be used here. A GPU shows up as an NVIDIA device node or a DRM render node.
# HOOD_DEMO_VULKAN=1 or 0 overrides the guess.
vulkan="${HOOD_DEMO_VULKAN:-}"
if [ -z "$vulkan" ]; then
  if compgen -G "/dev/nvidia[0-9]*" >/dev/null || compgen -G "/dev/dri/renderD*" >/dev/null; then
    vulkan=1
  else
    vulkan=0
  fi
fi
if [ "$vulkan" = 1 ]; then
  echo "demo: building with the Vulkan backend (HOOD_DEMO_VULKAN=0 for a CPU-only build)"
  features=(--features hood-cli/vulkan,hood-firmware/vulkan)
else
  echo "demo: no GPU device node found: CPU-only build (HOOD_DEMO_VULKAN=1 builds the Vulkan backend)"
  features=(--no-default-features)
fi
cargo build --release -q -p hood-cli --bin hood -p hood-firmware --bin hood-watch "${features[@]}"
bin="${CARGO_TARGET_DIR:-target}/release/hood"
model=models/heat-wrn40-2-cifar10.hood
"$bin" info "$model" | sed -n 1,12p     # sed reads it all: no broken pipe
"$bin" selftest "$model"
"$bin" infer "$model" samples/*.jpg samples/*.png --heatmaps target/demo-heatmaps
echo "heatmap overlays written to target/demo-heatmaps/"
# The camera daemon on its embedded default: the same model and a bundled feed
# (in-distribution frames, an out-of-distribution segment, in-distribution again).
"${CARGO_TARGET_DIR:-target}/release/hood-watch"
