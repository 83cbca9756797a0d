#version 450
#extension GL_GOOGLE_include_directive : require
// conv2d_tiled.glsl on the fragment GEMM core (fragment_gemm.glsl) with real cooperative-matrix
// fragments (GL_KHR_cooperative_matrix, tensor cores). Compiled ahead of time to
// shaders/spirv/ by tools/coopmat/build.sh (the glslang vulkano-shaders builds does not know
// the extension); CI checks that the committed SPIR-V is up to date and valid.
#define HOOD_FRAGMENTS 1
#define HOOD_COOPMAT 1
#include "conv2d_tiled.glsl"
