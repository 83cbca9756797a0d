#version 450
#extension GL_GOOGLE_include_directive : require
// HeatHead: the classifier head and the decoder's first layer of one image in one workgroup,
// four graph ops in one dispatch (the plan in runtime/src/vulkan/head.rs):
//   z      = GlobalAvgPool(x)                          x [c, hw] -> z [c]
//   logits = relu?(W z + bias)                         Linear, W [k, c]
//   class  = argmax(logits)                            first maximum; NaN never wins
//   y      = W1 z + C1[:, class] + bias1               ClassLinear, W1 [l, c], C1 [l, classes]
// Each step rounds its outputs to the storage type and the next reads the rounded values, and
// every sum runs in the order of the separate kernels (global_avg_pool.comp, linear.comp,
// argmax.comp), so the results equal theirs. z, logits and class are written out as well.
#include "common.glsl"
layout(local_size_x = HOOD_LOCAL_SIZE) in;

// Limits of the fused kernel (the plan falls back to the separate kernels above them).
#define HEAD_MAX_C 2048
#define HEAD_MAX_K 1024

layout(set = 0, binding = 0) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 1) readonly buffer W { STORE_T wt[]; };
layout(set = 0, binding = 2) readonly buffer Bias { STORE_T bias[]; };
layout(set = 0, binding = 3) readonly buffer W1 { STORE_T wt1[]; };
layout(set = 0, binding = 4) readonly buffer Bias1 { STORE_T bias1[]; };
layout(set = 0, binding = 5) readonly buffer ClassW { STORE_T class_wt[]; };
layout(set = 0, binding = 6) buffer Z { STORE_T z[]; };
layout(set = 0, binding = 7) buffer Logits { STORE_T logits[]; };
layout(set = 0, binding = 8) writeonly buffer ClassOut { int class_out[]; };
layout(set = 0, binding = 9) writeonly buffer Y { STORE_T y[]; };

layout(push_constant) uniform HeatHeadParams {
    uint n;
    uint c;
    uint hw;
    uint k;
    uint has_bias;
    uint relu;
    uint l;
    uint has_bias1;
    uint classes;
} p;

shared float zs[HEAD_MAX_C];
shared float ls[HEAD_MAX_K];
shared uint best_class;

void main() {
    // One workgroup per image; the whole workgroup leaves together.
    uint b = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (b >= p.n) {
        return;
    }
    uint t = gl_LocalInvocationID.x;
    for (uint ch = t; ch < p.c; ch += HOOD_LOCAL_SIZE) {
        float s = 0.0;
        uint base = (b * p.c + ch) * p.hw;
        for (uint j = 0u; j < p.hw; ++j) {
            s += float(x[base + j]);
        }
        // Read back what was stored: the value rounded to the storage type.
        z[b * p.c + ch] = STORE_T(s / float(p.hw));
        zs[ch] = float(z[b * p.c + ch]);
    }
    barrier();
    for (uint o = t; o < p.k; o += HOOD_LOCAL_SIZE) {
        float acc = 0.0;
        uint wbase = o * p.c;
        for (uint j = 0u; j < p.c; ++j) {
            acc += float(wt[wbase + j]) * zs[j];
        }
        if (p.has_bias != 0u) {
            acc += float(bias[o]);
        }
        if (p.relu != 0u) {
            acc = max(acc, 0.0);
        }
        logits[b * p.k + o] = STORE_T(acc);
        ls[o] = float(logits[b * p.k + o]);
    }
    barrier();
    if (t == 0u) {
        uint best = 0u;
        float bv = ls[0];
        for (uint j = 1u; j < p.k; ++j) {
            float v = ls[j];
            if (v > bv || (isnan(bv) && !isnan(v))) {
                best = j;
                bv = v;
            }
        }
        class_out[b] = int(best);
        best_class = best;
    }
    barrier();
    uint cls = best_class;
    for (uint o = t; o < p.l; o += HOOD_LOCAL_SIZE) {
        float acc = 0.0;
        uint wbase = o * p.c;
        for (uint j = 0u; j < p.c; ++j) {
            acc += float(wt1[wbase + j]) * zs[j];
        }
        if (p.has_bias1 != 0u) {
            acc += float(bias1[o]);
        }
        if (cls < p.classes) {
            acc += float(class_wt[o * p.classes + cls]);
        }
        y[b * p.l + o] = STORE_T(acc);
    }
}
