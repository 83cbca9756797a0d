#version 450
#extension GL_GOOGLE_include_directive : require
// Add: y = relu?(a + b), element-wise over the whole batch.
#include "common.glsl"
layout(local_size_x = HOOD_LOCAL_SIZE) in;

layout(set = 0, binding = 0) readonly buffer A { STORE_T a[]; };
layout(set = 0, binding = 1) readonly buffer B { STORE_T b[]; };
layout(set = 0, binding = 2) writeonly buffer Y { STORE_T y[]; };

layout(push_constant) uniform AddParams {
    uint total; // n * numel
    uint relu;
} p;

void main() {
    uint i = flat_id();
    if (i >= p.total) {
        return;
    }
    MATH_T v = MATH_T(a[i]) + MATH_T(b[i]);
    if (p.relu != 0u) {
        v = max(v, MATH_T(0.0));
    }
    y[i] = STORE_T(v);
}
