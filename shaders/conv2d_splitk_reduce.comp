#version 450
#extension GL_GOOGLE_include_directive : require
// Second pass of split-K Conv2d (conv2d_tiled.comp with S > 1 workgroups along z): one
// invocation per output element sums the S fp32 partials part[s * total + o] in the fixed
// order s = 0, 1, ..., S-1 (deterministic, no atomics), then applies the tiled kernel's
// epilogue: + bias[co], + residual[o], ReLU, and stores in the storage type.
// Dispatched by runtime/src/vulkan/conv.rs over `groups_for(total)`.
#include "common.glsl"

layout(local_size_x = HOOD_LOCAL_SIZE) in;

layout(set = 0, binding = 0) readonly buffer Part { float part[]; };
layout(set = 0, binding = 1) readonly buffer Bias { STORE_T bias[]; };
layout(set = 0, binding = 2) readonly buffer Residual { STORE_T residual[]; };
layout(set = 0, binding = 3) writeonly buffer Y { STORE_T y[]; };

layout(push_constant) uniform Conv2dSplitkReduceParams {
    uint total;  // n * cout * oh * ow
    uint cout;
    uint plane;  // oh * ow
    uint splits; // S
    uint has_bias;
    uint has_residual;
    uint relu;
} p;

void main() {
    uint o = flat_id();
    if (o >= p.total) {
        return;
    }
    float v = 0.0;
    for (uint s = 0u; s < p.splits; ++s) {
        v += part[s * p.total + o];
    }
    if (p.has_bias != 0u) {
        v += float(bias[(o / p.plane) % p.cout]);
    }
    if (p.has_residual != 0u) {
        v += float(residual[o]);
    }
    if (p.relu != 0u) {
        v = max(v, 0.0);
    }
    y[o] = STORE_T(v);
}
