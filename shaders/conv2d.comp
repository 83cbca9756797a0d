#version 450
#extension GL_GOOGLE_include_directive : require
// Conv2d, direct form: one invocation per output element [b, co, oy, ox].
//   y = relu?( conv(prologue(x), W) + bias + residual )
// The prologue relu?(x * pscale[ci] + pshift[ci]) is applied to every loaded input value;
// zero padding is not loaded, so it stays 0 (pre-activation BatchNorm of WideResNet).
// Weight layout [cout, cin, k, k] (rows [cin*k*k + cin2] with a joined shortcut,
// conv2d_params.glsl); accumulation in fp32.
#include "common.glsl"
layout(local_size_x = HOOD_LOCAL_SIZE) in;

layout(set = 0, binding = 0) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 1) readonly buffer W { STORE_T wt[]; };
layout(set = 0, binding = 2) readonly buffer Bias { STORE_T bias[]; };
layout(set = 0, binding = 3) readonly buffer Residual { STORE_T residual[]; };
layout(set = 0, binding = 4) readonly buffer PScale { STORE_T pscale[]; };
layout(set = 0, binding = 5) readonly buffer PShift { STORE_T pshift[]; };
layout(set = 0, binding = 6) writeonly buffer Y { STORE_T y[]; };

#include "conv2d_params.glsl"

void main() {
    uint i = flat_id();
    uint total = p.n * p.cout * p.oh * p.ow;
    if (i >= total) {
        return;
    }
    uint ox = i % p.ow;
    uint oy = (i / p.ow) % p.oh;
    uint co = (i / (p.ow * p.oh)) % p.cout;
    uint b = i / (p.ow * p.oh * p.cout);

    float acc = p.has_bias != 0u ? float(bias[co]) : 0.0;
    uint K1 = p.cin * p.k * p.k;
    uint Kt = K1 + p.cin2; // weight row length (the joined shortcut's steps last)
    int iy0 = int(oy * p.stride) - int(p.pad);
    int ix0 = int(ox * p.stride) - int(p.pad);
    for (uint ci = 0u; ci < p.cin; ++ci) {
        float ps = 1.0;
        float pt = 0.0;
        if (p.has_prologue != 0u) {
            ps = float(pscale[ci]);
            pt = float(pshift[ci]);
        }
        uint xbase = (b * p.cin + ci) * p.h * p.w;
        uint wbase = co * Kt + ci * p.k * p.k;
        for (uint ky = 0u; ky < p.k; ++ky) {
            int iy = iy0 + int(ky);
            if (iy < 0 || iy >= int(p.h)) {
                continue;
            }
            for (uint kx = 0u; kx < p.k; ++kx) {
                int ix = ix0 + int(kx);
                if (ix < 0 || ix >= int(p.w)) {
                    continue;
                }
                float xv = float(x[xbase + uint(iy) * p.w + uint(ix)]);
                if (p.has_prologue != 0u) {
                    xv = xv * ps + pt;
                    if (p.prologue_relu != 0u) {
                        xv = max(xv, 0.0);
                    }
                }
                acc += xv * float(wt[wbase + ky * p.k + kx]);
            }
        }
    }
    for (uint c2 = 0u; c2 < p.cin2; ++c2) {
        acc += shortcut_value(b, c2, oy, ox) * float(wt[co * Kt + K1 + c2]);
    }
    if (p.has_residual != 0u) {
        acc += float(residual[i]);
    }
    if (p.relu != 0u) {
        acc = max(acc, 0.0);
    }
    y[i] = STORE_T(acc);
}
