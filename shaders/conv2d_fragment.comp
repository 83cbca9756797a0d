#version 450
#extension GL_GOOGLE_include_directive : require
// conv2d_tiled.glsl on the fragment GEMM core (fragment_gemm.glsl) with emulated fragments:
// the tensor-core kernel's tiling, gathers and epilogue, runnable (and tested) on any device.
#define HOOD_FRAGMENTS 1
#include "conv2d_tiled.glsl"
