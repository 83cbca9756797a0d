#version 450
#extension GL_GOOGLE_include_directive : require
// ConvTranspose2d as a tiled implicit GEMM in shared memory, gather form, no atomics (the
// fast path; conv_transpose2d.comp is the generic fallback, selected with
// HOOD_VK_NO_TILED_DECONV=1). Same bindings, push constants and fused bias / activation /
// forwarded-feature add as conv_transpose2d.comp.
//
// Output pixels are split into stride^2 parity classes (oy % s, ox % s): within one class
// every pixel receives the same kernel taps, ky = ky0 + s*t (t < T = ceil(k / s), taps with
// ky >= k have weight 0), from input rows iy = base_y + qy - t (oy = py + s*qy). So per
// class it is a GEMM:
//   C[co, pix] = sum_(ci, ty, tx) A[co, (ci, ty, tx)] * B[(ci, ty, tx), pix]
//   A = wt[ci, co, ky0 + s*ty, kx0 + s*tx] (PyTorch layout [cin, cout, k, k]),
//   B = x[b, ci, base_y + qy - ty, base_x + qx - tx] (0 outside the input).
// Workgroup grid: x = ceil(n * ceil(oh/s) * ceil(ow/s) / TN), y = ceil(cout / TM),
// z = s^2 * S (runtime/src/vulkan/conv_transpose2d.rs). Tiles and register blocking as conv2d_tiled.comp.
//
// Split-K as in conv2d_tiled.comp: with S = gl_NumWorkGroups.z / s^2 > 1, z = class * S + split,
// each split reduces its range of whole K chunks and stores raw fp32 sums to
// part[split * n*cout*oh*ow + o]; the last split of a tile to finish adds them in order and
// applies bias / activation / feature add (counter[tile], no second dispatch).
#include "common.glsl"

// Two tile shapes, chosen from the pixel count (the host's `tiled_groups` uses the same
// rule): wide TM x TN = 64 x 64, or, when fewer than 64 pixels would fill a tile (the last
// ResNet stage and the small decoder blocks at batch 1), narrow 256 x 16.
#define TM_WIDE 64
#define TN_WIDE 64
#define TM_NARROW 256
#define TN_NARROW 16
#define TK 16
#define RM 8
#define RN 8
#define CONV_THREADS 64 // (TM / RM) * (TN / RN) for both shapes
layout(local_size_x = CONV_THREADS) in;

layout(set = 0, binding = 0) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 1) readonly buffer W { STORE_T wt[]; };
layout(set = 0, binding = 2) readonly buffer Bias { STORE_T bias[]; };
layout(set = 0, binding = 3) readonly buffer Feature { STORE_T feature[]; };
layout(set = 0, binding = 4) writeonly buffer Y { STORE_T y[]; };
// Split-K partial sums, [S][n][cout][oh][ow] fp32, and one arrival counter per tile (zero
// between dispatches); both placeholders when S = 1.
layout(set = 0, binding = 5) coherent buffer Part { float part[]; };
layout(set = 0, binding = 6) coherent buffer Counter { uint counter[]; };

// Identical to conv_transpose2d.comp's block (one generated struct for both).
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
} p;

// Tiles in shared memory, laid out and consumed as in conv2d_tiled.comp.
shared float As[TK * TM_NARROW];
shared float Bs[TK * TN_WIDE];
shared uint last_split;

// The epilogue: bias, activation, then the forwarded feature's add, in the storage type.
void store_out(uint o, float acc, float bv) {
    float v = activate(acc + bv, p.act);
    if (p.has_add != 0u) {
        v += float(feature[o]) * p.add_scale + p.add_shift;
    }
    y[o] = STORE_T(v);
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint s = p.stride;
    uint nsplit = gl_NumWorkGroups.z / (s * s);
    uint cls = gl_WorkGroupID.z / nsplit;
    uint split = gl_WorkGroupID.z % nsplit;
    uint py = cls / s;
    uint px = cls % s;
    uint ky0 = (py + p.pad) % s;
    uint kx0 = (px + p.pad) % s;
    int base_y = int((py + p.pad - ky0) / s);
    int base_x = int((px + p.pad - kx0) / s);
    uint T = (p.k + s - 1u) / s;
    uint tt = T * T;
    uint K = p.cin * tt;
    uint qh = (p.oh + s - 1u) / s; // rows of a class (the last may be partly outside)
    uint qw = (p.ow + s - 1u) / s;
    uint qplane = qh * qw;
    uint npix = p.n * qplane;
    bool narrow = npix < TN_WIDE;
    uint TM = narrow ? TM_NARROW : TM_WIDE;
    uint TN = narrow ? TN_NARROW : TN_WIDE;
    uint tx = tid % (TN / RN);
    uint ty = tid / (TN / RN);
    uint m0 = gl_WorkGroupID.y * TM;
    uint n0 = gl_WorkGroupID.x * TN;
    uint plane = p.oh * p.ow;

    uint bcol = tid % TN;
    uint brow = tid / TN; // first B row it loads, then every CONV_THREADS / TN rows
    uint gpix = n0 + bcol;
    uint bimg = gpix / qplane;
    uint bq = gpix % qplane;
    uint bqy = bq / qw;
    uint bqx = bq % qw;
    bool pix_ok = gpix < npix && py + s * bqy < p.oh && px + s * bqx < p.ow;
    int iy0 = base_y + int(bqy);
    int ix0 = base_x + int(bqx);
    uint xbase = bimg * p.cin * p.h * p.w;

    vec4 c00 = vec4(0.0), c01 = vec4(0.0), c10 = vec4(0.0), c11 = vec4(0.0);
    vec4 c20 = vec4(0.0), c21 = vec4(0.0), c30 = vec4(0.0), c31 = vec4(0.0);
    vec4 c40 = vec4(0.0), c41 = vec4(0.0), c50 = vec4(0.0), c51 = vec4(0.0);
    vec4 c60 = vec4(0.0), c61 = vec4(0.0), c70 = vec4(0.0), c71 = vec4(0.0);

    // This workgroup's K range (the rule of conv2d_tiled.comp).
    uint chunks = (K + TK - 1u) / TK;
    uint cps = (chunks + nsplit - 1u) / nsplit;
    uint kbeg = min(split * cps, chunks) * TK;
    uint kend = min(kbeg + cps * TK, K);

    for (uint k0 = kbeg; k0 < kend; k0 += TK) {
        for (uint e = tid; e < TM * TK; e += CONV_THREADS) {
            uint kk = e % TK;
            uint m = e / TK;
            uint gk = k0 + kk;
            uint co = m0 + m;
            float v = 0.0;
            if (gk < K && co < p.cout) {
                uint ci = gk / tt;
                uint r = gk % tt;
                uint ky = ky0 + s * (r / T);
                uint kx = kx0 + s * (r % T);
                if (ky < p.k && kx < p.k) {
                    v = float(wt[((ci * p.cout + co) * p.k + ky) * p.k + kx]);
                }
            }
            As[kk * TM + m] = v;
        }
        for (uint kk = brow; kk < TK; kk += CONV_THREADS / TN) {
            uint gk = k0 + kk;
            float v = 0.0;
            if (pix_ok && gk < K) {
                uint ci = gk / tt;
                uint r = gk % tt;
                int iy = iy0 - int(r / T);
                int ix = ix0 - int(r % T);
                if (iy >= 0 && iy < int(p.h) && ix >= 0 && ix < int(p.w)) {
                    v = float(x[xbase + (ci * p.h + uint(iy)) * p.w + uint(ix)]);
                }
            }
            Bs[kk * TN + bcol] = v;
        }
        barrier();
        for (uint kk = 0u; kk < TK; ++kk) {
            uint ab = kk * TM + RM * ty;
            uint bb = kk * TN + RN * tx;
            vec4 a0 = vec4(As[ab], As[ab + 1u], As[ab + 2u], As[ab + 3u]);
            vec4 a1 = vec4(As[ab + 4u], As[ab + 5u], As[ab + 6u], As[ab + 7u]);
            vec4 b0 = vec4(Bs[bb], Bs[bb + 1u], Bs[bb + 2u], Bs[bb + 3u]);
            vec4 b1 = vec4(Bs[bb + 4u], Bs[bb + 5u], Bs[bb + 6u], Bs[bb + 7u]);
            c00 += a0.x * b0; c01 += a0.x * b1;
            c10 += a0.y * b0; c11 += a0.y * b1;
            c20 += a0.z * b0; c21 += a0.z * b1;
            c30 += a0.w * b0; c31 += a0.w * b1;
            c40 += a1.x * b0; c41 += a1.x * b1;
            c50 += a1.y * b0; c51 += a1.y * b1;
            c60 += a1.z * b0; c61 += a1.z * b1;
            c70 += a1.w * b0; c71 += a1.w * b1;
        }
        barrier();
    }

    for (uint i = 0u; i < RM; ++i) {
        uint co = m0 + ty * RM + i;
        if (co >= p.cout) {
            continue;
        }
        vec4 r0, r1;
        switch (i) {
        case 0u: r0 = c00; r1 = c01; break;
        case 1u: r0 = c10; r1 = c11; break;
        case 2u: r0 = c20; r1 = c21; break;
        case 3u: r0 = c30; r1 = c31; break;
        case 4u: r0 = c40; r1 = c41; break;
        case 5u: r0 = c50; r1 = c51; break;
        case 6u: r0 = c60; r1 = c61; break;
        default: r0 = c70; r1 = c71; break;
        }
        float bv = p.has_bias != 0u ? float(bias[co]) : 0.0;
        for (uint j = 0u; j < RN; ++j) {
            uint g = n0 + tx * RN + j;
            if (g >= npix) {
                continue;
            }
            uint img = g / qplane;
            uint q = g % qplane;
            uint oy = py + s * (q / qw);
            uint ox = px + s * (q % qw);
            if (oy >= p.oh || ox >= p.ow) {
                continue;
            }
            uint o = (img * p.cout + co) * plane + oy * p.ow + ox;
            float acc = j < 4u ? r0[j] : r1[j - 4u];
            if (nsplit > 1u) {
                part[split * (p.n * p.cout * plane) + o] = acc;
                continue;
            }
            store_out(o, acc, bv);
        }
    }
    if (nsplit == 1u) {
        return;
    }
    // Split-K fix-up as in conv2d_tiled.comp; a tile is (x, y, parity class).
    memoryBarrierBuffer();
    barrier();
    if (tid == 0u) {
        uint tile = (cls * gl_NumWorkGroups.y + gl_WorkGroupID.y) * gl_NumWorkGroups.x
            + gl_WorkGroupID.x;
        last_split = atomicAdd(counter[tile], 1u) == nsplit - 1u ? 1u : 0u;
        if (last_split != 0u) {
            atomicExchange(counter[tile], 0u);
        }
    }
    barrier();
    if (last_split == 0u) {
        return;
    }
    memoryBarrierBuffer();
    for (uint i = 0u; i < RM; ++i) {
        uint co = m0 + ty * RM + i;
        if (co >= p.cout) {
            continue;
        }
        float bv = p.has_bias != 0u ? float(bias[co]) : 0.0;
        for (uint j = 0u; j < RN; ++j) {
            uint g = n0 + tx * RN + j;
            if (g >= npix) {
                continue;
            }
            uint img = g / qplane;
            uint q = g % qplane;
            uint oy = py + s * (q / qw);
            uint ox = px + s * (q % qw);
            if (oy >= p.oh || ox >= p.ow) {
                continue;
            }
            uint o = (img * p.cout + co) * plane + oy * p.ow + ox;
            float acc = 0.0;
            for (uint z = 0u; z < nsplit; ++z) {
                acc += part[z * (p.n * p.cout * plane) + o];
            }
            store_out(o, acc, bv);
        }
    }
}
