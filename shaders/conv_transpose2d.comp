#version 450
#extension GL_GOOGLE_include_directive : require
// ConvTranspose2d in gather form (no atomics): one invocation per output [b, co, oy, ox]
// sums the input positions that scatter into it:
//   oy + pad = iy * stride + ky  for ky in 0..k, iy in 0..h (same for x).
//   y = act( sum + bias ) + (feature * add_scale + add_shift)?
// Weight layout [cin, cout, k, k] (PyTorch's); accumulation in fp32.
#include "common.glsl"
layout(local_size_x = HOOD_LOCAL_SIZE) in;

layout(set = 0, binding = 0) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 1) readonly buffer W { STORE_T wt[]; };
layout(set = 0, binding = 2) readonly buffer Bias { STORE_T bias[]; };
layout(set = 0, binding = 3) readonly buffer Feature { STORE_T feature[]; };
layout(set = 0, binding = 4) writeonly buffer Y { STORE_T y[]; };

layout(push_constant) uniform ConvTranspose2dParams {
    uint n;
    uint cin;
    uint h;
    uint w;
    uint cout;
    uint oh;
    uint ow;
    uint k;
    uint stride;
    uint pad;
    uint has_bias;
    uint act; // ACT_NONE / ACT_RELU / ACT_TANH
    uint has_add;
    float add_scale;
    float add_shift;
    uint packing; // LAYOUT_* bits (common.glsl; tiled kernel only)
} p;

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

    uint fy = oy + p.pad; // position in the full (uncropped) output
    uint fx = ox + p.pad;
    // First tap whose (f - k) is a multiple of the stride, then every stride-th tap.
    uint ky0 = fy % p.stride;
    uint kx0 = fx % p.stride;
    float acc = 0.0;
    for (uint ci = 0u; ci < p.cin; ++ci) {
        uint xbase = (b * p.cin + ci) * p.h * p.w;
        uint wbase = (ci * p.cout + co) * p.k * p.k;
        for (uint ky = ky0; ky < p.k && ky <= fy; ky += p.stride) {
            uint iy = (fy - ky) / p.stride;
            if (iy >= p.h) {
                continue;
            }
            for (uint kx = kx0; kx < p.k && kx <= fx; kx += p.stride) {
                uint ix = (fx - kx) / p.stride;
                if (ix >= p.w) {
                    continue;
                }
                acc += float(x[xbase + iy * p.w + ix]) * float(wt[wbase + ky * p.k + kx]);
            }
        }
    }
    if (p.has_bias != 0u) {
        acc += float(bias[co]);
    }
    float v = activate(acc, p.act);
    if (p.has_add != 0u) {
        v += float(feature[i]) * p.add_scale + p.add_shift;
    }
    y[i] = STORE_T(v);
}
