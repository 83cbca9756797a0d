// The fragment GEMM core: the same implicit GEMM as tiled_gemm.glsl, with the same interface to
// the including kernel (conv2d_tiled.glsl, conv_transpose2d_tiled.glsl: gemm_column,
// gemm_chunk, gemm_b_vec, gemm_b_value, gemm_b, gemm_a_row, gemm_out, store_out; see
// tiled_gemm.glsl), the same tiles, workgroup grid and split-K, but the multiply done on
// 16x16x16 fragments (fragments.glsl): on tensor cores (HOOD_COOPMAT) or emulated.
//
//   C[co, pix] = sum_kk A[co, kk] * B[kk, pix]   (fp16 operands, fp32 accumulation)
//
// Tiles (the host's TileConfig, runtime/src/vulkan/kernels.rs; specialization constants 2-5 as
// tiled_gemm.glsl's): TM x TN with TM * TN = 64 * GEMM_THREADS, so each of the workgroup's
// GEMM_THREADS / 32 fragment groups owns a BM x BN block of 8 accumulator fragments: BN =
// min(TN, 64) columns, BM = 2048 / BN rows (2 x 4 fragments for 64-wide tiles, 8 x 1 for
// 16-wide ones). Small configuration: 64 invocations, 64 x 64 and 256 x 16 tiles; large: 256
// invocations, 128 x 128 and 256 x 64.
//
// Per K chunk of TK = 16 steps (one fragment deep): each group loads its B fragments once and,
// per row of fragments, its A fragment, and multiplies. The shared A and B tiles (fp16) are
// two-stage: while the groups multiply chunk c from one stage, the invocations store chunk
// c + 1 (staged in registers by gemm_stage.glsl, loaded from global memory during chunk c - 1's
// products) into the other stage and issue chunk c + 2's loads, so one barrier per chunk
// separates the stages. The K order is the pipelined loop's (tap-major where the host chose
// it: tiles.rs `tap_major`), so the weights are the same copies.
//
// Epilogue, staged through shared memory: fragment by fragment each group stores its
// accumulator to its own 16x16 staging block, and its lanes read the block back element by
// element (consecutive lanes, consecutive columns) for the kernel's store_out (bias,
// residual, activation, feature add) or, with split-K, the partial sums; the split-K fix-up is
// tiled_gemm.glsl's (the last workgroup of a tile to arrive adds the partials in split order).

layout(local_size_x_id = 2) in;
#define GEMM_THREADS gl_WorkGroupSize.x
layout(constant_id = 3) const uint TN_WIDE = 64u;
layout(constant_id = 4) const uint TN_NARROW = 16u;
// Always 1 on this core (the host sets it): the including kernel's tap-major gather.
layout(constant_id = 5) const uint PIPELINED = 1u;
#define TK 16u
const uint TM_WIDE = GEMM_THREADS * 64u / TN_WIDE;
const uint TM_NARROW = GEMM_THREADS * 64u / TN_NARROW;
#ifndef GEMM_NO_PIXEL // (defined by a kernel whose gemm_out can return it)
#define GEMM_NO_PIXEL 0xFFFFFFFFu
#endif

// Shared tiles (fragments.glsl declares them): two stages of FRAG_STAGE elements in Ts, each
// with the A tile as [TK][TM] (element (m, kk) at kk*TM + m) followed by the B tile as
// [TK][TN] (element (kk, n) at TK*TM + kk*TN + n), sized for the larger of the two tile shapes;
// and one 16x16 fp32 staging block per group in Cs. kernels.rs `shared_bytes` is the host's
// copy of these sizes.
const uint FRAG_WIDE = TM_WIDE + TN_WIDE;
const uint FRAG_NARROW = TM_NARROW + TN_NARROW;
const uint FRAG_STAGE = TK * (FRAG_WIDE > FRAG_NARROW ? FRAG_WIDE : FRAG_NARROW);
#define FRAG_T_LEN (2u * FRAG_STAGE)
#define FRAG_C_LEN (GEMM_THREADS * 8u)
#include "fragments.glsl"
#include "split_k.glsl"

// Accumulator fragments of this invocation's group: fragment (i, j) of its block at
// acc[i * FN + j].
FRAG_C acc[8];

#include "gemm_stage.glsl"

// The A tile of the chunk at k0 straight into the stage at `base`, element by element (cout
// not a multiple of the vector width).
void gather_a(uint k0, uint K, uint m0, uint TM, uint base) {
    for (uint e = gl_LocalInvocationID.x; e < TM * TK; e += GEMM_THREADS) {
        uint m = e % TM;
        uint kk = e / TM;
        uint gk = k0 + kk;
        uint co = m0 + m;
        frag_put(base + kk * TM + m, (gk < K && co < p.cout) ? float(wt[gemm_a_row(gk) + co]) : 0.0);
    }
}

void store_a(uint TM, uint av, uint base) {
    uint per_row = TM / A_VE;
    for (uint i = 0u; i < AV_MAX; ++i) {
        if (i < av) {
            uint e = gl_LocalInvocationID.x + i * GEMM_THREADS;
            uint at = base + (e / per_row) * TM + (e % per_row) * A_VE;
            for (uint j = 0u; j < A_VE; ++j) {
                frag_put(at + j, vec16_elem(ra[i], j));
            }
        }
    }
}

// store_a, store_b: the register stage (gemm_stage.glsl) into the fp16 tiles of the stage at
// `base` (store_b: its B tile at `bt`).
void store_b(uint k0, uint K, uint TN, uint brow, uint bcol, uint bn, uint bt) {
    uint r0 = brow * bn;
    if (b_vectors(bn)) {
        for (uint i = 0u; i < BV_MAX; ++i) {
            if (i < bn / VEC16_LEN) {
                for (uint e = 0u; e < VEC16_LEN; ++e) {
                    uint c = r0 + i * VEC16_LEN + e;
                    float v = k0 + c < K ? gemm_b_value(c, vec16_elem(rbv[i], e)) : 0.0;
                    frag_put(bt + c * TN + bcol, v);
                }
            }
        }
        return;
    }
    for (uint i = 0u; i < B_MAX; ++i) {
        if (i < bn) {
            frag_put(bt + (r0 + i) * TN + bcol, rb[i]);
        }
    }
}

// The products of the chunk in the stage at `base`: this group's FM x FN fragments, its block
// at rows am, columns an of the tile. Called with constant fm, fn (fm * fn = 8).
void multiply_chunk(uint fm, uint fn, uint am, uint an, uint TM, uint TN, uint base) {
    FRAG_B b[4];
    for (uint j = 0u; j < fn; ++j) {
        frag_load_b(b[j], base + TK * TM + an + j * 16u, TN);
    }
    for (uint i = 0u; i < fm; ++i) {
        FRAG_A a;
        frag_load_a(a, base + am + i * 16u, TM);
        for (uint j = 0u; j < fn; ++j) {
            frag_mul_add(acc[i * fn + j], a, b[j]);
        }
    }
}

// Chunk k0's A and B values into registers (gemm_stage.glsl; A only when it goes as vectors).
void stage_chunk(uint k0, uint K, uint m0, uint TM, uint brow, uint bn, bool a_vec, uint av) {
    if (a_vec) {
        load_a(k0, K, m0, TM, av);
    }
    load_b(k0, K, brow, bn);
}

// Chunk k0 into the stage at `base`: from the registers stage_chunk filled (the last chunk it
// staged must be k0: load_b's gemm_chunk state is store_b's), or gathered (A, element-wise).
void put_chunk(uint k0, uint K, uint m0, uint TM, uint TN, uint brow, uint bcol, uint bn,
               bool a_vec, uint av, uint base) {
    if (a_vec) {
        store_a(TM, av, base);
    } else {
        gather_a(k0, K, m0, TM, base);
    }
    store_b(k0, K, TN, brow, bcol, bn, base + TK * TM);
}

// The output (column g, channel co) with value v: stored through the epilogue, or as split
// `split`'s partial sum.
void put_out(uint g, uint co, uint npix, float v, uint nsplit, uint split, uint part_stride) {
    if (g >= npix || co >= p.cout) {
        return;
    }
    uint o = gemm_out(g, co);
    if (o == GEMM_NO_PIXEL) {
        return;
    }
    if (nsplit > 1u) {
        part[split * part_stride + o] = v;
        return;
    }
    store_out(g, co, o, v, p.has_bias != 0u ? float(bias[co]) : 0.0);
}

// The GEMM of K steps over npix columns (arguments as tiled_gemm.glsl's).
void tiled_gemm(uint K, uint npix, uint nsplit, uint split, uint layer, uint part_stride) {
    uint tid = gl_LocalInvocationID.x;
    bool narrow = npix < TN_WIDE;
    uint TM = narrow ? TM_NARROW : TM_WIDE;
    uint TN = narrow ? TN_NARROW : TN_WIDE;
    uint m0 = gl_WorkGroupID.y * TM;
    uint n0 = gl_WorkGroupID.x * TN;
    uint bcol = tid % TN;
    uint brow = tid / TN;
    gemm_column(n0 + bcol);

    // This invocation's group and the group's block of the tile.
    uint BN = min(TN, 64u);
    uint BM = 2048u / BN;
    uint FN = BN / 16u;
    uint grp = frag_group();
    uint am = (grp / (TN / BN)) * BM;
    uint an = (grp % (TN / BN)) * BN;
    for (uint f = 0u; f < 8u; ++f) {
        frag_fill(acc[f]);
    }

    uint chunks = (K + TK - 1u) / TK;
    uint cps = (chunks + nsplit - 1u) / nsplit;
    uint kbeg = min(split * cps, chunks) * TK;
    uint kend = min(kbeg + cps * TK, K);

    bool a_vec = p.cout % A_VE == 0u;
    uint av = TK * TM / (A_VE * GEMM_THREADS);
    uint bn = TK * TN / GEMM_THREADS;
    // Iteration k puts chunk k (staged in registers) into stage ((k - kbeg) / TK) % 2, stages
    // chunk k + TK in registers and multiplies chunk k - TK from the other stage; one barrier
    // per iteration. (One call site per step keeps the kernel small: lavapipe compiles it for
    // every specialisation.)
    if (kbeg < kend) {
        stage_chunk(kbeg, K, m0, TM, brow, bn, a_vec, av);
    }
    for (uint k = kbeg; k < kend + TK; k += TK) {
        uint stage = ((k - kbeg) / TK) & 1u;
        if (k < kend) {
            put_chunk(k, K, m0, TM, TN, brow, bcol, bn, a_vec, av, stage * FRAG_STAGE);
            if (k + TK < kend) {
                stage_chunk(k + TK, K, m0, TM, brow, bn, a_vec, av);
            }
        }
        if (k > kbeg) {
            uint base = (stage ^ 1u) * FRAG_STAGE;
            if (FN == 4u) {
                multiply_chunk(2u, 4u, am, an, TM, TN, base);
            } else if (FN == 2u) {
                multiply_chunk(4u, 2u, am, an, TM, TN, base);
            } else {
                multiply_chunk(8u, 1u, am, an, TM, TN, base);
            }
        }
        barrier();
    }

    // Epilogue, one accumulator fragment at a time through the group's staging block.
    uint lane = frag_lane();
    uint cbase = grp * 256u;
    for (uint f = 0u; f < 8u; ++f) {
        frag_store(acc[f], cbase, 16u);
        barrier();
        uint row0 = m0 + am + (f / FN) * 16u;
        uint col0 = n0 + an + (f % FN) * 16u;
        for (uint e = lane; e < 256u; e += FRAG_LANES) {
            put_out(col0 + e % 16u, row0 + e / 16u, npix, frag_staged(cbase + e), nsplit, split,
                    part_stride);
        }
        barrier();
    }
    if (nsplit == 1u) {
        return;
    }
    // Split-K fix-up (tiled_gemm.glsl's): the last of the tile's workgroups to arrive adds the
    // partials in split order and applies the epilogue.
    if (!split_k_last(layer, nsplit)) {
        return;
    }
    for (uint e = tid; e < TM * TN; e += GEMM_THREADS) {
        uint g = n0 + e % TN;
        uint co = m0 + e / TN;
        if (g >= npix || co >= p.cout) {
            continue;
        }
        uint o = gemm_out(g, co);
        if (o == GEMM_NO_PIXEL) {
            continue;
        }
        float v = 0.0;
        for (uint z = 0u; z < nsplit; ++z) {
            v += part[z * part_stride + o];
        }
        store_out(g, co, o, v, p.has_bias != 0u ? float(bias[co]) : 0.0);
    }
}
