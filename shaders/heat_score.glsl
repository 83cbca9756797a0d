// HeatScore: h [n, c, H, W] -> heatmap max_c |h| ([n, H, W], float) and
// score = mean_{H,W} heatmap ([n], float). One workgroup per image: each invocation
// handles a strided set of pixels, then the workgroup sums the partial sums: with
// HOOD_SUBGROUP_SCORE (heat_score_subgroup.comp, devices with subgroup arithmetic) by
// subgroupAdd within each subgroup and once more over the subgroups' sums, else
// (heat_score.comp) by a shared-memory tree. Either order is fixed on a given device, so
// replays give identical scores.
layout(local_size_x = HOOD_LOCAL_SIZE) in;

layout(set = 0, binding = 1) writeonly buffer Score { float score[]; };
layout(set = 0, binding = 2) writeonly buffer Heat { float heat[]; };

#ifdef HOOD_HEAT_TAIL
// heat_tail*.comp: h is computed here, by the decoder's last layer (a 1x1 ConvTranspose2d,
// stride 1, no padding, no feature add): h[c, px] = act(sum_ci x[ci, px] * W[ci, c] + bias[c]),
// summed over ci in order like conv_transpose2d.comp; h is stored, and the heatmap reads the
// stored (rounded) value, as heat_score.comp would.
layout(set = 0, binding = 0) buffer H { STORE_T h[]; };
layout(set = 0, binding = 3) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 4) readonly buffer W { STORE_T wt[]; };
layout(set = 0, binding = 5) readonly buffer Bias { STORE_T bias[]; };

layout(push_constant) uniform HeatTailParams {
    uint channels;
    uint hw;
    uint cin;
    uint has_bias;
    uint act;
} p;
#else
layout(set = 0, binding = 0) readonly buffer H { STORE_T h[]; };

layout(push_constant) uniform HeatScoreParams {
    uint channels;
    uint hw;
} p;
#endif

// max_c |h[b, c, px]|
float pixel_heat(uint b, uint px) {
    float m = 0.0;
    for (uint c = 0u; c < p.channels; ++c) {
        uint i = (b * p.channels + c) * p.hw + px;
#ifdef HOOD_HEAT_TAIL
        float acc = 0.0;
        for (uint ci = 0u; ci < p.cin; ++ci) {
            acc += float(x[(b * p.cin + ci) * p.hw + px]) * float(wt[ci * p.channels + c]);
        }
        if (p.has_bias != 0u) {
            acc += float(bias[c]);
        }
        h[i] = STORE_T(activate(acc, p.act));
#endif
        m = max(m, abs(float(h[i])));
    }
    return m;
}

shared float partial[HOOD_LOCAL_SIZE];

void main() {
    uint b = gl_WorkGroupID.x;
    uint t = gl_LocalInvocationID.x;
    float s = 0.0;
    for (uint px = t; px < p.hw; px += HOOD_LOCAL_SIZE) {
        float m = pixel_heat(b, px);
        heat[b * p.hw + px] = m;
        s += m;
    }
#ifdef HOOD_SUBGROUP_SCORE
    s = subgroupAdd(s);
    if (subgroupElect()) {
        partial[gl_SubgroupID] = s;
    }
    barrier();
    if (gl_SubgroupID == 0u) {
        float total = gl_SubgroupInvocationID < gl_NumSubgroups
            ? partial[gl_SubgroupInvocationID] : 0.0;
        // HOOD_LOCAL_SIZE / gl_SubgroupSize partials fit one subgroup whenever the
        // subgroup has at least 8 lanes (the host's condition).
        total = subgroupAdd(total);
        if (subgroupElect()) {
            score[b] = total / float(p.hw);
        }
    }
#else
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
#endif
}
