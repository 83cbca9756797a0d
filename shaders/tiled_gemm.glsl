// The tiled implicit GEMM in shared memory, one core for conv2d_tiled.comp and
// conv_transpose2d_tiled.comp (the including kernel supplies the gathers and the epilogue):
//
//   C[co, pix] = sum_kk A[co, kk] * B[kk, pix]     (fp32 accumulation, kk ascending)
//
// One workgroup computes a TM x TN tile (TM output channels x TN GEMM columns, the pixels of
// the whole batch flattened); each of its GEMM_THREADS invocations accumulates RM x RN = 8x8
// outputs in registers (channels 8*ty.., pixels 8*tx..). Workgroup grid: x = ceil(npix / TN),
// y = ceil(cout / TM), z = tile layers x S K splits (runtime/src/vulkan/tiles.rs,
// `TILE_WIDE` / `TILE_NARROW`, `SplitK`).
//
// Two loops over the K chunks, chosen by the specialization constant PIPELINED (id 5;
// runtime/src/vulkan/kernels.rs `TileConfig::pipelined`, off with HOOD_VK_NO_PIPELINED_GEMM=1):
// * plain (0): per chunk, gather A and B into shared memory element by element, barrier,
//   multiply, barrier.
// * pipelined (1): chunk k+1's A and B are loaded from global memory into registers while
//   chunk k is multiplied from shared memory (one register stage: the loads are in flight
//   during the FMAs), then stored to shared memory after the barrier. A comes as 16-byte
//   vectors (8 fp16 or 4 fp32 weights of consecutive channels) when cout is a multiple of the
//   vector width; and the including kernel may gather B "tap-major": with cin a multiple of TK
//   the host orders K as (tap, channel) (tiles.rs `tap_major`), so a chunk is 16 channels of
//   one tap and `gemm_chunk` does the tap's index arithmetic and bounds check once per
//   (pixel, chunk) instead of per element. Where the kernel's input is channel-packed (NHWC)
//   such a chunk's B values are contiguous and come as 16-byte vectors too (`chunk_vec`).
//   Each invocation loads a run of consecutive rows of its B column.
// The summation order of an output is kk ascending in both (so split-K and the tile
// configurations do not change results within one loop).
//
// Split-K: with S > 1 workgroups per tile, split z reduces K chunks [z*cps, (z+1)*cps)
// (cps = ceil(chunks / S), chunks = ceil(K / TK)) and stores its raw fp32 sums to
// part[z * part_stride + o] (o: the NCHW output index), then counts itself in on the tile's
// counter; the last of the S to arrive adds the S partials in the order z = 0, 1, ..., S-1,
// applies the epilogue and resets the counter (no second dispatch). With S = 1 the epilogue
// is applied directly and `part` and `counter` are not touched.
//
// Before including this file the kernel declares its buffers (`wt` with the K-major weights
// and `wt4`, the same binding read as 16-byte vectors; `part`, `counter`, `bias`), its push
// constants `p` (with `cout` and `has_bias`), and defines:
//   void gemm_column(uint g)         set up this invocation's B column g (called once; g may
//                                    be >= npix: then gemm_b must give 0);
//   void gemm_chunk(uint k0)         set up the gather of the chunk starting at k0 (pipelined
//                                    loop only; called before that chunk's gemm_b calls), and
//                                    set `bool chunk_vec`: whether its rows are read as vectors;
//   uvec4 gemm_b_vec(uint c)         with chunk_vec: the raw stored values of chunk rows
//                                    c .. c + VEC16_LEN - 1 of the column, one 16-byte load;
//   float gemm_b_value(uint c, float v)  with chunk_vec: row c's B value from raw value v
//                                    (called after the next barrier, before the next
//                                    gemm_chunk: the chunk's state is still set);
//   float gemm_b(uint gk)            B[gk, that column], for gk < K;
//   uint gemm_a_row(uint gk)         index in `wt` of A[0, gk] (the weights are stored K-major
//                                    by the host, [K][cout] per tile layer: tiles.rs), so
//                                    A[co, gk] = wt[gemm_a_row(gk) + co];
//   uint gemm_out(uint g, uint co)   index in y (its layout: NCHW or NHWC) of channel co at
//                                    column g < npix (also the split-K partials' index),
//                                    or GEMM_NO_PIXEL where that pixel is outside the output;
//   void store_out(uint g, uint co, uint o, float acc, float bv)   the epilogue of acc + bias
//                                    bv of channel co at column g, stored at o.

// The tile configuration, as specialization constants (runtime/src/vulkan/kernels.rs,
// `TileConfig`): GEMM_THREADS invocations per workgroup (id 2, the workgroup size), and two
// tile shapes chosen from the pixel count (the host's `tiled_groups` uses the same rule): wide
// TM x TN_WIDE, or, when fewer than TN_WIDE pixels would fill a tile (the last ResNet stage
// and the small decoder blocks at small batches), narrow TM x TN_NARROW; TM follows from
// (TM / RM) * (TN / RN) = GEMM_THREADS. The host always sets all three: small = 64 threads,
// 64 x 64 and 256 x 16; large = 256 threads, 128 x 128 and 256 x 64 (TN_NARROW <= TN_WIDE,
// so the A tile is sized for the narrow shape).
layout(local_size_x_id = 2) in;
#define GEMM_THREADS gl_WorkGroupSize.x
layout(constant_id = 3) const uint TN_WIDE = 64u;
layout(constant_id = 4) const uint TN_NARROW = 16u;
layout(constant_id = 5) const uint PIPELINED = 0u;
#define TK 16u
#define RM 8u
#define RN 8u
const uint TM_WIDE = GEMM_THREADS * RM * RN / TN_WIDE;
const uint TM_NARROW = GEMM_THREADS * RM * RN / TN_NARROW;
#ifndef GEMM_NO_PIXEL // (defined by a kernel whose gemm_out can return it)
#define GEMM_NO_PIXEL 0xFFFFFFFFu
#endif

// Tiles in shared memory as vec4s, element e of A (e = kk * TM + m) at As[e / 4][e % 4], of B
// (e = kk * TN + pixel) at Bs[e / 4][e % 4] (20 KiB for the small configuration, 24 KiB for
// the large). Each invocation owns channels 8*ty..8*ty+7 and pixels 8*tx..8*tx+7: per kk four
// 16-byte shared loads feed 64 FMAs into 16 vec4 accumulators (c<i><h>: channel 8*ty+i,
// pixels 8*tx + 4*h .. +3); no dynamically indexed register arrays in the multiply (llvmpipe
// keeps those in memory).
shared vec4 As[TK * TM_NARROW / 4u];
shared vec4 Bs[TK * TN_WIDE / 4u];
#include "split_k.glsl"
vec4 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;

#include "gemm_stage.glsl"

float gemm_a(uint gk, uint co) {
    return float(wt[gemm_a_row(gk) + co]);
}

// The A tile of the chunk at k0 straight into shared memory, element by element: TM x TK
// weights, channel-fastest (K-major weights: neighbouring invocations read neighbouring
// addresses and write neighbouring banks).
void gather_a(uint k0, uint K, uint m0, uint TM) {
    for (uint e = gl_LocalInvocationID.x; e < TM * TK; e += GEMM_THREADS) {
        uint m = e % TM;
        uint kk = e / TM;
        uint gk = k0 + kk;
        uint co = m0 + m;
        uint at = kk * TM + m;
        As[at >> 2u][at & 3u] = (gk < K && co < p.cout) ? gemm_a(gk, co) : 0.0;
    }
}

// The multiply of the chunk in shared memory.
void multiply_chunk(uint TM, uint TN, uint tx, uint ty) {
    for (uint kk = 0u; kk < TK; ++kk) {
        uint ab = (kk * TM + RM * ty) >> 2u;
        uint bb = (kk * TN + RN * tx) >> 2u;
        vec4 a0 = As[ab];
        vec4 a1 = As[ab + 1u];
        vec4 b0 = Bs[bb];
        vec4 b1 = Bs[bb + 1u];
        c00 += a0.x * b0; c01 += a0.x * b1;
        c10 += a0.y * b0; c11 += a0.y * b1;
        c20 += a0.z * b0; c21 += a0.z * b1;
        c30 += a0.w * b0; c31 += a0.w * b1;
        c40 += a1.x * b0; c41 += a1.x * b1;
        c50 += a1.y * b0; c51 += a1.y * b1;
        c60 += a1.z * b0; c61 += a1.z * b1;
        c70 += a1.w * b0; c71 += a1.w * b1;
    }
}

void store_a(uint TM, uint av) {
    uint per_row = TM / A_VE;
    for (uint i = 0u; i < AV_MAX; ++i) {
        if (i < av) {
            uint e = gl_LocalInvocationID.x + i * GEMM_THREADS;
            uint at = ((e / per_row) * TM + (e % per_row) * A_VE) >> 2u;
#ifdef HOOD_FP16
            As[at] = vec4(unpackHalf2x16(ra[i].x), unpackHalf2x16(ra[i].y));
            As[at + 1u] = vec4(unpackHalf2x16(ra[i].z), unpackHalf2x16(ra[i].w));
#else
            As[at] = uintBitsToFloat(ra[i]);
#endif
        }
    }
}

void store_b(uint k0, uint K, uint TN, uint brow, uint bcol, uint bn) {
    uint r0 = brow * bn;
    if (b_vectors(bn)) {
        for (uint i = 0u; i < BV_MAX; ++i) {
            if (i < bn / VEC16_LEN) {
                for (uint e = 0u; e < VEC16_LEN; ++e) {
                    uint c = r0 + i * VEC16_LEN + e;
                    uint at = c * TN + bcol;
                    Bs[at >> 2u][at & 3u] =
                        k0 + c < K ? gemm_b_value(c, vec16_elem(rbv[i], e)) : 0.0;
                }
            }
        }
        return;
    }
    for (uint i = 0u; i < B_MAX; ++i) {
        if (i < bn) {
            uint at = (r0 + i) * TN + bcol;
            Bs[at >> 2u][at & 3u] = rb[i];
        }
    }
}

// The GEMM of K steps over npix columns; this workgroup is split `split` of `nsplit` of tile
// layer `layer` (the parity class of a ConvTranspose2d, 0 for a Conv2d); a split's partials
// lie part_stride apart.
void tiled_gemm(uint K, uint npix, uint nsplit, uint split, uint layer, uint part_stride) {
    uint tid = gl_LocalInvocationID.x;
    bool narrow = npix < TN_WIDE;
    uint TM = narrow ? TM_NARROW : TM_WIDE;
    uint TN = narrow ? TN_NARROW : TN_WIDE;
    uint tx = tid % (TN / RN); // pixel octet
    uint ty = tid / (TN / RN); // channel octet
    uint m0 = gl_WorkGroupID.y * TM;
    uint n0 = gl_WorkGroupID.x * TN;

    // The one B column this invocation gathers (TN divides GEMM_THREADS, so it is the same
    // column for every chunk).
    uint bcol = tid % TN;
    // Which rows: the plain loop every GEMM_THREADS / TN rows from brow, the pipelined loop
    // bn consecutive rows from brow * bn.
    uint brow = tid / TN;
    gemm_column(n0 + bcol);

    c00 = vec4(0.0); c01 = vec4(0.0); c10 = vec4(0.0); c11 = vec4(0.0);
    c20 = vec4(0.0); c21 = vec4(0.0); c30 = vec4(0.0); c31 = vec4(0.0);
    c40 = vec4(0.0); c41 = vec4(0.0); c50 = vec4(0.0); c51 = vec4(0.0);
    c60 = vec4(0.0); c61 = vec4(0.0); c70 = vec4(0.0); c71 = vec4(0.0);

    // This workgroup's K range: whole chunks of TK, the last split may be shorter.
    uint chunks = (K + TK - 1u) / TK;
    uint cps = (chunks + nsplit - 1u) / nsplit;
    uint kbeg = min(split * cps, chunks) * TK;
    uint kend = min(kbeg + cps * TK, K);

    if (PIPELINED != 0u) {
        bool a_vec = p.cout % A_VE == 0u;
        uint av = TK * TM / (A_VE * GEMM_THREADS);
        uint bn = TK * TN / GEMM_THREADS;
        if (kbeg < kend) {
            if (a_vec) {
                load_a(kbeg, K, m0, TM, av);
            }
            load_b(kbeg, K, brow, bn);
        }
        for (uint k0 = kbeg; k0 < kend; k0 += TK) {
            if (a_vec) {
                store_a(TM, av);
            } else {
                gather_a(k0, K, m0, TM);
            }
            store_b(k0, K, TN, brow, bcol, bn);
            barrier();
            uint k1 = k0 + TK;
            if (k1 < kend) {
                if (a_vec) {
                    load_a(k1, K, m0, TM, av);
                }
                load_b(k1, K, brow, bn);
            }
            multiply_chunk(TM, TN, tx, ty);
            barrier();
        }
    } else {
        for (uint k0 = kbeg; k0 < kend; k0 += TK) {
            gather_a(k0, K, m0, TM);
            // B tile: TK x TN gathered input values (the im2col chunk).
            for (uint kk = brow; kk < TK; kk += GEMM_THREADS / TN) {
                uint gk = k0 + kk;
                uint at = kk * TN + bcol;
                Bs[at >> 2u][at & 3u] = gk < K ? gemm_b(gk) : 0.0;
            }
            barrier();
            multiply_chunk(TM, TN, tx, ty);
            barrier();
        }
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
            uint o = gemm_out(g, co);
            if (o == GEMM_NO_PIXEL) {
                continue;
            }
            float acc = j < 4u ? r0[j] : r1[j - 4u];
            if (nsplit > 1u) {
                part[split * part_stride + o] = acc;
                continue;
            }
            store_out(g, co, o, acc, bv);
        }
    }
    if (nsplit == 1u) {
        return;
    }
    // Split-K fix-up, in this dispatch: the last of the tile's S workgroups to arrive adds the
    // S partials in the fixed order z = 0, 1, ..., S-1 and applies the epilogue; it resets the
    // tile's counter for the next dispatch. A tile is (x, y, layer).
    if (!split_k_last(layer, nsplit)) {
        return;
    }
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
            uint o = gemm_out(g, co);
            if (o == GEMM_NO_PIXEL) {
                continue;
            }
            float acc = 0.0;
            for (uint z = 0u; z < nsplit; ++z) {
                acc += part[z * part_stride + o];
            }
            store_out(g, co, o, acc, bv);
        }
    }
}
