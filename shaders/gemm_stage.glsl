// The register stage of the pipelined K loop, shared by the two GEMM cores (tiled_gemm.glsl,
// fragment_gemm.glsl): the next chunk's A and B values are loaded from global memory into
// registers while the current chunk is multiplied; each core stores them into its own shared
// tiles after the barrier (store_a, store_b). Included after the core has defined TK,
// GEMM_THREADS, TM_NARROW and TN_WIDE; uses the including kernel's `wt4`, `p.cout` and its
// gemm_* hooks (tiled_gemm.glsl lists them).

// The pipelined loop's register stage: A as 16-byte vectors of A_VE weights (at most AV_MAX
// per invocation, the narrow tile being the tallest), B as single values (at most B_MAX, the
// wide tile being the widest) or, from a packed input, as 16-byte vectors of raw values (at
// most BV_MAX).
#define A_VE VEC16_LEN
const uint AV_MAX = TK * TM_NARROW / (A_VE * GEMM_THREADS);
const uint B_MAX = TK * TN_WIDE / GEMM_THREADS;
const uint BV_MAX = (B_MAX + VEC16_LEN - 1u) / VEC16_LEN;
uvec4 ra[AV_MAX];
float rb[B_MAX];
uvec4 rbv[BV_MAX];

// Pipelined loop: chunk k0's A vectors into registers (av per invocation; vector e covers
// channels m0 + (e % (TM / A_VE)) * A_VE .. + A_VE - 1 of step e / (TM / A_VE)). cout is a
// multiple of A_VE here, so a vector is wholly inside or wholly outside the output channels.
void load_a(uint k0, uint K, uint m0, uint TM, uint av) {
    uint per_row = TM / A_VE;
    for (uint i = 0u; i < AV_MAX; ++i) {
        if (i < av) {
            uint e = gl_LocalInvocationID.x + i * GEMM_THREADS;
            uint gk = k0 + e / per_row;
            uint co = m0 + (e % per_row) * A_VE;
            ra[i] = (gk < K && co < p.cout) ? wt4[(gemm_a_row(gk) + co) / A_VE] : uvec4(0u);
        }
    }
}

// Pipelined loop: chunk k0's B values of this invocation's column into registers, rows
// brow * bn .. brow * bn + bn - 1: as 16-byte vectors of raw values where the chunk allows
// (chunk_vec) and bn is a multiple of the vector length, else value by value.
bool b_vectors(uint bn) {
    return chunk_vec && bn % VEC16_LEN == 0u;
}

void load_b(uint k0, uint K, uint brow, uint bn) {
    gemm_chunk(k0);
    uint r0 = brow * bn;
    if (b_vectors(bn)) {
        for (uint i = 0u; i < BV_MAX; ++i) {
            if (i < bn / VEC16_LEN) {
                uint c = r0 + i * VEC16_LEN;
                rbv[i] = k0 + c < K ? gemm_b_vec(c) : uvec4(0u);
            }
        }
        return;
    }
    for (uint i = 0u; i < B_MAX; ++i) {
        if (i < bn) {
            uint gk = k0 + r0 + i;
            rb[i] = gk < K ? gemm_b(gk) : 0.0;
        }
    }
}
