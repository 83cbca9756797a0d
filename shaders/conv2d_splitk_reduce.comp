#version 450
#extension GL_GOOGLE_include_directive : require
// Second pass of split-K (conv2d_tiled.comp or conv_transpose2d_tiled.comp with S > 1 K
// splits along z): one invocation per output element sums the S fp32 partials
// part[s * total + o] in the fixed order s = 0, 1, ..., S-1 (deterministic, no atomics), then
// applies the tiled kernel's epilogue and stores in the storage type:
//   Conv2d (add_after_act = 0):          act(sum + bias[co] + add[o])         (residual, ReLU)
//   ConvTranspose2d (add_after_act = 1): act(sum + bias[co]) + add[o] * add_scale + add_shift
// Dispatched by runtime/src/vulkan/conv.rs (`SplitReduce`) over `groups_for(total)`.
#include "common.glsl"

layout(local_size_x = HOOD_LOCAL_SIZE) in;

layout(set = 0, binding = 0) readonly buffer Part { float part[]; };
layout(set = 0, binding = 1) readonly buffer Bias { STORE_T bias[]; };
layout(set = 0, binding = 2) readonly buffer Add { STORE_T add[]; };
layout(set = 0, binding = 3) writeonly buffer Y { STORE_T y[]; };

layout(push_constant) uniform Conv2dSplitkReduceParams {
    uint total;  // n * cout * oh * ow
    uint cout;
    uint plane;  // oh * ow
    uint splits; // S
    uint has_bias;
    uint act; // ACT_NONE / ACT_RELU / ACT_TANH
    uint has_add;
    uint add_after_act;
    float add_scale;
    float add_shift;
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
    float a = p.has_add != 0u ? float(add[o]) * p.add_scale + p.add_shift : 0.0;
    if (p.add_after_act != 0u) {
        v = activate(v, p.act) + a;
    } else {
        v = activate(v + a, p.act);
    }
    y[o] = STORE_T(v);
}
