// HeatScore: h [n, c, H, W] -> heatmap max_c |h| ([n, H, W], float) and
// score = mean_{H,W} heatmap ([n], float). One workgroup per image: each invocation
// handles a strided set of pixels, then the workgroup sums the partial sums: with
// HOOD_SUBGROUP_SCORE (heat_score_subgroup.comp, devices with subgroup arithmetic) by
// subgroupAdd within each subgroup and once more over the subgroups' sums, else
// (heat_score.comp) by a shared-memory tree. Either order is fixed on a given device, so
// replays give identical scores.
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
