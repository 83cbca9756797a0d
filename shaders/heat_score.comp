#version 450
#extension GL_GOOGLE_include_directive : require
// heat_score.glsl with the shared-memory tree sum.
#include "common.glsl"
#include "heat_score.glsl"
