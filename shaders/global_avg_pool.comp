#version 450
#extension GL_GOOGLE_include_directive : require
// GlobalAvgPool: [n, c, h, w] -> [n, c], mean over h*w; one invocation per (b, c).
#include "common.glsl"
layout(local_size_x = HOOD_LOCAL_SIZE) in;

layout(set = 0, binding = 0) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { STORE_T y[]; };

layout(push_constant) uniform GlobalAvgPoolParams {
    uint planes; // n * c
    uint hw;
} p;

void main() {
    uint i = flat_id();
    if (i >= p.planes) {
        return;
    }
    float s = 0.0;
    uint base = i * p.hw;
    for (uint j = 0u; j < p.hw; ++j) {
        s += float(x[base + j]);
    }
    y[i] = STORE_T(s / float(p.hw));
}
