#version 450
#extension GL_GOOGLE_include_directive : require
// Conv2d as a tiled implicit GEMM in shared memory (the fast path; conv2d.comp is the
// generic fallback, selected with HOOD_VK_NO_TILED_CONV=1). Same bindings 0-9, same push
// constants and the same fused prologue / bias / residual / ReLU / joined shortcut as
// conv2d.comp; bindings 10-11 are split-K's.
//
//   C[co, pix] = sum_kk A[co, kk] * B[kk, pix]
//   A = weights [cout, cin*k*k (+ cin2 with a joined shortcut, conv2d_params.glsl)],
//   B = im2col of prologue(x): B[(ci, ky, kx), (b, oy, ox)] = x[b, ci, oy*s-p+ky, ox*s-p+kx]
//       (0 in the padding), never materialised: each K-chunk is gathered into shared memory.
//
// One workgroup computes a TM x TN tile (TM output channels x TN output pixels, pixels of
// the whole batch flattened); each of its CONV_THREADS invocations accumulates RM x RN = 8x8
// outputs in registers (channels 8*ty.., pixels 8*tx..). Workgroup grid: x = ceil(n*oh*ow / TN),
// y = ceil(cout / TM), z = S, the K splits (runtime/src/vulkan/conv2d.rs, `TILE_WIDE` /
// `TILE_NARROW` and `split_k` there).
//
// Split-K: when the grid has too few workgroups for the device, the host dispatches S > 1
// workgroups along z; workgroup z reduces K chunks [z*cps, (z+1)*cps) (cps = ceil(chunks / S),
// chunks = ceil(K / TK); `split_range` in conv2d.rs is the same rule) and stores its raw fp32
// sums to part[z * n*cout*oh*ow + o] (o: the NCHW output index), then counts itself in on the
// tile's counter; the last of the S to arrive adds the S partials in order and applies bias /
// residual / ReLU (no second dispatch). The prologue stays in the B gather. With S = 1 the
// epilogue is applied directly and `part` and `counter` are not touched.
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
layout(set = 0, binding = 3) readonly buffer Residual { STORE_T residual[]; };
layout(set = 0, binding = 4) readonly buffer PScale { STORE_T pscale[]; };
layout(set = 0, binding = 5) readonly buffer PShift { STORE_T pshift[]; };
layout(set = 0, binding = 6) writeonly buffer Y { STORE_T y[]; };
// Split-K partial sums, [S][n][cout][oh][ow] fp32, and one arrival counter per tile (zero
// between dispatches); both placeholders when S = 1.
layout(set = 0, binding = 10) coherent buffer Part { float part[]; };
layout(set = 0, binding = 11) coherent buffer Counter { uint counter[]; };

#include "conv2d_params.glsl"

// Specialisations (runtime/src/vulkan/pipelines.rs, `ConvSpec`): kernel size and stride as
// specialization constants, so the driver's compiler sees constant loop bounds and divisors
// (3x3 and 1x1 at stride 1 and 2); 0 = the generic pipeline, which reads them from the push
// constants. HOOD_VK_NO_SPECIALISED=1 uses the generic pipeline for every conv.
layout(constant_id = 0) const uint SPEC_K = 0u;
layout(constant_id = 1) const uint SPEC_STRIDE = 0u;

// Tiles in shared memory, row kk of A at As[kk * TM], of B at Bs[kk * TN] (20 KiB for the
// narrow shape). Each invocation owns channels 8*ty..8*ty+7 and pixels 8*tx..8*tx+7: per kk
// 16 shared loads feed 64 FMAs into 16 vec4 accumulators; no dynamically indexed arrays
// (llvmpipe keeps those in memory) and no dynamically indexed vector components.
shared float As[TK * TM_NARROW];
shared float Bs[TK * TN_WIDE];
shared uint last_split;

// The epilogue: bias, residual add, ReLU, stored in the storage type.
void store_out(uint o, float acc, float bv) {
    float v = acc + bv;
    if (p.has_residual != 0u) {
        v += float(residual[o]);
    }
    if (p.relu != 0u) {
        v = max(v, 0.0);
    }
    y[o] = STORE_T(v);
}

void main() {
    uint ks = SPEC_K != 0u ? SPEC_K : p.k;
    uint st = SPEC_STRIDE != 0u ? SPEC_STRIDE : p.stride;
    uint tid = gl_LocalInvocationID.x;
    uint kk2 = ks * ks;
    uint K1 = p.cin * kk2;
    uint K = K1 + p.cin2; // the joined shortcut's steps last (conv2d_params.glsl)
    uint plane = p.oh * p.ow;
    uint npix = p.n * plane;
    bool narrow = npix < TN_WIDE;
    uint TM = narrow ? TM_NARROW : TM_WIDE;
    uint TN = narrow ? TN_NARROW : TN_WIDE;
    uint tx = tid % (TN / RN); // pixel octet
    uint ty = tid / (TN / RN); // channel octet
    uint m0 = gl_WorkGroupID.y * TM;
    uint n0 = gl_WorkGroupID.x * TN;

    // The one B column this invocation gathers (TN divides CONV_THREADS, so it is the same
    // column for every chunk): its image, input origin and validity.
    uint bcol = tid % TN;
    uint brow = tid / TN; // first B row it loads, then every CONV_THREADS / TN rows
    uint gpix = n0 + bcol;
    bool pix_ok = gpix < npix;
    uint bimg = pix_ok ? gpix / plane : 0u;
    uint prem = pix_ok ? gpix % plane : 0u;
    uint poy = prem / p.ow;
    uint pox = prem % p.ow;
    int iy0 = int(poy * st) - int(p.pad);
    int ix0 = int(pox * st) - int(p.pad);
    uint xbase = bimg * p.cin * p.h * p.w;

    // c<i><h>: channel 8*ty+i, pixels 8*tx + 4*h .. +3.
    vec4 c00 = vec4(0.0), c01 = vec4(0.0), c10 = vec4(0.0), c11 = vec4(0.0);
    vec4 c20 = vec4(0.0), c21 = vec4(0.0), c30 = vec4(0.0), c31 = vec4(0.0);
    vec4 c40 = vec4(0.0), c41 = vec4(0.0), c50 = vec4(0.0), c51 = vec4(0.0);
    vec4 c60 = vec4(0.0), c61 = vec4(0.0), c70 = vec4(0.0), c71 = vec4(0.0);

    // This workgroup's K range: whole chunks of TK, the last split may be shorter.
    uint nsplit = gl_NumWorkGroups.z;
    uint chunks = (K + TK - 1u) / TK;
    uint cps = (chunks + nsplit - 1u) / nsplit;
    uint kbeg = min(gl_WorkGroupID.z * cps, chunks) * TK;
    uint kend = min(kbeg + cps * TK, K);

    for (uint k0 = kbeg; k0 < kend; k0 += TK) {
        // A tile: TM x TK weights, read along kk (contiguous in memory).
        for (uint e = tid; e < TM * TK; e += CONV_THREADS) {
            uint kk = e % TK;
            uint m = e / TK;
            uint gk = k0 + kk;
            uint co = m0 + m;
            As[kk * TM + m] = (gk < K && co < p.cout) ? float(wt[co * K + gk]) : 0.0;
        }
        // B tile: TK x TN gathered input values (the im2col chunk).
        for (uint kk = brow; kk < TK; kk += CONV_THREADS / TN) {
            uint gk = k0 + kk;
            float v = 0.0;
            if (pix_ok && gk >= K1 && gk < K) {
                v = shortcut_value(bimg, gk - K1, poy, pox);
            } else if (pix_ok && gk < K1) {
                uint ci = gk / kk2;
                uint r = gk % kk2;
                int iy = iy0 + int(r / ks);
                int ix = ix0 + int(r % ks);
                if (iy >= 0 && iy < int(p.h) && ix >= 0 && ix < int(p.w)) {
                    v = float(x[xbase + (ci * p.h + uint(iy)) * p.w + uint(ix)]);
                    if (p.has_prologue != 0u) {
                        v = v * float(pscale[ci]) + float(pshift[ci]);
                        if (p.prologue_relu != 0u) {
                            v = max(v, 0.0);
                        }
                    }
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
            uint o = ((g / plane) * p.cout + co) * plane + g % plane;
            float acc = j < 4u ? r0[j] : r1[j - 4u];
            if (nsplit > 1u) {
                part[gl_WorkGroupID.z * (npix * p.cout) + o] = acc;
                continue;
            }
            store_out(o, acc, bv);
        }
    }
    if (nsplit == 1u) {
        return;
    }
    // Split-K fix-up, in this dispatch: the last of the tile's S workgroups to arrive adds the
    // S partials in the fixed order z = 0, 1, ..., S-1 and applies the epilogue; it resets the
    // tile's counter for the next dispatch.
    memoryBarrierBuffer();
    barrier();
    if (tid == 0u) {
        uint tile = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
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
            uint o = ((g / plane) * p.cout + co) * plane + g % plane;
            float acc = 0.0;
            for (uint z = 0u; z < nsplit; ++z) {
                acc += part[z * (npix * p.cout) + o];
            }
            store_out(o, acc, bv);
        }
    }
}
