#!/usr/bin/env bash
# Installs what hood needs on Debian 12, only what is missing. Sourced by demo.sh and test.sh.
# System packages: the Vulkan loader and Mesa's software Vulkan driver (lavapipe) for the GPU
# backend's tests, cmake/ninja/python3/git for building shaderc from source (vulkano-shaders;
# Debian's libshaderc1 2023.2 cannot be used instead: it cannot even be loaded, an undefined
# SPIRV-Tools symbol, docs/BENCHMARKS.md "Cold start"),
# cmake and a C compiler (g++ pulls in gcc) for libjpeg-turbo (the turbojpeg crate builds it
# from its bundled 3.x source, even in a CPU-only build; with NASM present its SIMD code is built
# too), and the Khronos validation layer
# (tests/tests/vulkan_validation.rs runs the whole pipeline under it). Scripts that build the
# test set (test.sh, tch_journey.sh) set HOOD_SETUP_TESTS=1: then GStreamer too (headers for
# hood-watch's `gstreamer` feature; base and good plugins for its tests: videotestsrc,
# appsrc/appsink, videoconvert, JPEG, AVI, RTSP; PyGObject and gst-rtsp-server for the loopback
# RTSP test server; libclang for the `v4l2` feature's bindgen; mosquitto and openssl for the MQTT
# tests' broker and certificates; headless Chromium and a font for the live page's browser
# test; python3-venv for the tensor-core SPIR-V check's compiler, tools/coopmat/build.sh), and
# HOOD_TEST_FEATURES names
# the features the test build uses (one list, so the scripts share one build).
set -euo pipefail

need=()
# shellcheck disable=SC2034  # used by the scripts that source this one
HOOD_TEST_FEATURES=hood-runtime/vulkan,hood-tests/vulkan,hood-firmware/gstreamer,hood-firmware/v4l2,hood-firmware/mqtt,hood-firmware/fault-injection
packages=(libvulkan1 mesa-vulkan-drivers vulkan-tools vulkan-validationlayers cmake ninja-build python3 git g++ pkg-config nasm)
if [ "${HOOD_SETUP_TESTS:-0}" = 1 ]; then
  packages+=(libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base gstreamer1.0-plugins-good
             python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-rtsp-server-1.0 libclang-dev mosquitto openssl
             chromium fonts-dejavu-core python3-venv)
fi
for p in "${packages[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# The test build also checks the committed tensor-core SPIR-V against its GLSL
# (tests/tests/coopmat_spirv.rs), with glslang and spirv-val from PyPI in a virtual environment.
if [ "${HOOD_SETUP_TESTS:-0}" = 1 ]; then
  bash "$(dirname "${BASH_SOURCE[0]}")/../tools/coopmat/build.sh" --install
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: no Rust toolchain found. hood needs Rust >= 1.87 (Debian 12's rustc 1.63 is too old):" >&2
  echo "       install it with rustup (https://rustup.rs), then re-run." >&2
  exit 1
fi
