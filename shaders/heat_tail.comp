#version 450
#extension GL_GOOGLE_include_directive : require
// heat_score.glsl with the decoder's last 1x1 layer computed in the same dispatch
// (HOOD_HEAT_TAIL; runtime/src/vulkan/fused.rs) and the shared-memory tree sum.
#define HOOD_HEAT_TAIL 1
#include "common.glsl"
#include "heat_score.glsl"
