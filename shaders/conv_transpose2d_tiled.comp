#version 450
#extension GL_GOOGLE_include_directive : require
// conv_transpose2d_tiled.glsl on the fp32 FMA GEMM core (tiled_gemm.glsl).
#include "conv_transpose2d_tiled.glsl"
