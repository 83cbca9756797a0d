#version 450
#extension GL_GOOGLE_include_directive : require
// conv_transpose2d_bcast.glsl with 8 output channels per lane (blocks of 64).
#define BC_CPL 8
#include "common.glsl"
#include "bcast_gemm.glsl"
layout(local_size_x = 8) in; // BC_LANES: one subgroup
#include "conv_transpose2d_bcast.glsl"
