#version 450
#extension GL_GOOGLE_include_directive : require
// ChannelAffine: y = relu?(x * scale[c] + shift[c]) on [n, c, inner].
#include "common.glsl"
layout(local_size_x = HOOD_LOCAL_SIZE) in;

layout(set = 0, binding = 0) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 1) readonly buffer Scale { STORE_T scale[]; };
layout(set = 0, binding = 2) readonly buffer Shift { STORE_T shift[]; };
layout(set = 0, binding = 3) writeonly buffer Y { STORE_T y[]; };

layout(push_constant) uniform ChannelAffineParams {
    uint total; // n * c * inner
    uint channels;
    uint inner;
    uint relu;
} p;

void main() {
    uint i = flat_id();
    if (i >= p.total) {
        return;
    }
    uint c = (i / p.inner) % p.channels;
    // fp32 even in the HOOD_FP16_MATH variant: an fp16 x*scale + shift rounds the product
    // (GLSL's fma need not be fused), up to 4 fp16 ulps off after cancellation on lavapipe.
    float v = float(x[i]) * float(scale[c]) + float(shift[c]);
    if (p.relu != 0u) {
        v = max(v, 0.0);
    }
    y[i] = STORE_T(v);
}
