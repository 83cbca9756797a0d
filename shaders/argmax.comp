#version 450
#extension GL_GOOGLE_include_directive : require
// Argmax: index of the first maximum of each image's flattened input, as int.
// NaN never wins (matches the reference's `>` scan).
#include "common.glsl"
layout(local_size_x = HOOD_LOCAL_SIZE) in;

layout(set = 0, binding = 0) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 1) writeonly buffer ClassOut { int class_out[]; };

layout(push_constant) uniform ArgmaxParams {
    uint n;
    uint len;
} p;

void main() {
    uint b = flat_id();
    if (b >= p.n) {
        return;
    }
    uint base = b * p.len;
    uint best = 0u;
    float bv = float(x[base]);
    for (uint j = 1u; j < p.len; ++j) {
        float v = float(x[base + j]);
        if (v > bv || (isnan(bv) && !isnan(v))) {
            best = j;
            bv = v;
        }
    }
    class_out[b] = int(best);
}
