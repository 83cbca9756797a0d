#version 450
#extension GL_GOOGLE_include_directive : require
// MaxPool2x2: 2x2 window, stride 2, no padding; [n, c, h, w] -> [n, c, h/2, w/2]
// (an odd trailing row/column is dropped).
#include "common.glsl"
layout(local_size_x = HOOD_LOCAL_SIZE) in;

layout(set = 0, binding = 0) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { STORE_T y[]; };

layout(push_constant) uniform MaxPool2x2Params {
    uint planes; // n * c
    uint h;
    uint w;
    uint oh;
    uint ow;
} p;

void main() {
    uint i = flat_id();
    if (i >= p.planes * p.oh * p.ow) {
        return;
    }
    uint ox = i % p.ow;
    uint oy = (i / p.ow) % p.oh;
    uint plane = i / (p.ow * p.oh);
    uint base = (plane * p.h + 2u * oy) * p.w + 2u * ox;
    MATH_T m = max(max(MATH_T(x[base]), MATH_T(x[base + 1u])),
                   max(MATH_T(x[base + p.w]), MATH_T(x[base + p.w + 1u])));
    y[i] = STORE_T(m);
}
