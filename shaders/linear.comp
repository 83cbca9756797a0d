#version 450
#extension GL_GOOGLE_include_directive : require
// Linear and ClassLinear (GEMV per image): one invocation per output [b, o].
//   Linear:      y = relu?(W x + bias)
//   ClassLinear: y = W x + C[:, class[b]] + bias   (C is [cout, classes]; a class index
//                outside 0..classes adds nothing, like an all-zero one-hot vector)
// W is [cout, cin]; accumulation in fp32.
#include "common.glsl"
layout(local_size_x = HOOD_LOCAL_SIZE) in;

layout(set = 0, binding = 0) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 1) readonly buffer W { STORE_T wt[]; };
layout(set = 0, binding = 2) readonly buffer Bias { STORE_T bias[]; };
layout(set = 0, binding = 3) readonly buffer Class { int class_index[]; };
layout(set = 0, binding = 4) readonly buffer ClassW { STORE_T class_wt[]; };
layout(set = 0, binding = 5) writeonly buffer Y { STORE_T y[]; };

layout(push_constant) uniform LinearParams {
    uint n;
    uint cin;
    uint cout;
    uint has_bias;
    uint relu;
    uint has_class;
    uint classes;
} p;

void main() {
    uint i = flat_id();
    if (i >= p.n * p.cout) {
        return;
    }
    uint o = i % p.cout;
    uint b = i / p.cout;
    float acc = 0.0;
    uint xbase = b * p.cin;
    uint wbase = o * p.cin;
    for (uint j = 0u; j < p.cin; ++j) {
        acc += float(wt[wbase + j]) * float(x[xbase + j]);
    }
    if (p.has_bias != 0u) {
        acc += float(bias[o]);
    }
    if (p.has_class != 0u) {
        int c = class_index[b];
        if (c >= 0 && uint(c) < p.classes) {
            acc += float(class_wt[o * p.classes + uint(c)]);
        }
    }
    if (p.relu != 0u) {
        acc = max(acc, 0.0);
    }
    y[i] = STORE_T(acc);
}
