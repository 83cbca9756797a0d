#!/usr/bin/env bash
# Installs what hood needs on Debian 12, only what is missing. Sourced by demo.sh and test.sh.
# System packages: the Vulkan loader and Mesa's software Vulkan driver (lavapipe) for the GPU
# backend's tests, cmake/ninja/python3/git for building shaderc from source (vulkano-shaders),
# cmake and a C compiler (g++ pulls in gcc) for libjpeg-turbo (the turbojpeg crate builds it
# from its bundled 3.x source, even in a CPU-only build; with NASM present its SIMD code is built
# too), and the Khronos validation layer
# (tests/tests/vulkan_validation.rs runs the whole pipeline under it).
set -euo pipefail

need=()
for p in libvulkan1 mesa-vulkan-drivers vulkan-tools vulkan-validationlayers cmake ninja-build python3 git g++ pkg-config nasm; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: no Rust toolchain found. hood needs Rust >= 1.87 (Debian 12's rustc 1.63 is too old):" >&2
  echo "       install it with rustup (https://rustup.rs), then re-run." >&2
  exit 1
fi
