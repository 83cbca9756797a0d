#version 450
#extension GL_GOOGLE_include_directive : require
// HeatScore: h [n, c, H, W] -> heatmap max_c |h| ([n, H, W], float) and
// score = mean_{H,W} heatmap ([n], float). One workgroup per image: each invocation
// handles a strided set of pixels, then a shared-memory tree sum gives the mean.
#include "common.glsl"
layout(local_size_x = HOOD_LOCAL_SIZE) in;

layout(set = 0, binding = 0) readonly buffer H { STORE_T h[]; };
layout(set = 0, binding = 1) writeonly buffer Score { float score[]; };
layout(set = 0, binding = 2) writeonly buffer Heat { float heat[]; };

layout(push_constant) uniform HeatScoreParams {
    uint channels;
    uint hw;
} p;

shared float partial[HOOD_LOCAL_SIZE];

void main() {
    uint b = gl_WorkGroupID.x;
    uint t = gl_LocalInvocationID.x;
    float s = 0.0;
    for (uint px = t; px < p.hw; px += HOOD_LOCAL_SIZE) {
        float m = 0.0;
        for (uint c = 0u; c < p.channels; ++c) {
            m = max(m, abs(float(h[(b * p.channels + c) * p.hw + px])));
        }
        heat[b * p.hw + px] = m;
        s += m;
    }
    partial[t] = s;
    barrier();
    for (uint stride = HOOD_LOCAL_SIZE / 2u; stride > 0u; stride /= 2u) {
        if (t < stride) {
            partial[t] += partial[t + stride];
        }
        barrier();
    }
    if (t == 0u) {
        score[b] = partial[0] / float(p.hw);
    }
}
