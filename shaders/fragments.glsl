// The fragment layer of fragment_gemm.glsl: 16x16 fp16 A and B fragments, 16x16 fp32
// accumulators, and the four operations the GEMM core uses on them. One set of names, two
// implementations:
//
//   HOOD_COOPMAT defined -> cooperative matrices (GL_KHR_cooperative_matrix: tensor cores on
//                           NVIDIA); a fragment belongs to one subgroup of FRAG_LANES = 32
//                           invocations (the host selects these kernels only on devices
//                           whose subgroups are 32 wide and that report the 16x16x16
//                           fp16 x fp16 -> fp32 shape, runtime/src/vulkan/coopmat.rs).
//   otherwise            -> emulated: the same shapes, split over virtual 32-invocation
//                           groups of the workgroup (lavapipe's subgroups are 8 wide, and a
//                           real fragment's layout over its lanes is opaque anyway).
//
// The shared memory, the same in both: the operand tiles Ts (fp16; the core places its A and
// B tiles of both pipeline stages in it) and the fp32 staging tile Cs of the epilogue.
//
// The operations:
//   frag_fill(c)                    c = 0
//   frag_load_a(a, off, stride)     A fragment (16 rows m x 16 steps k), column-major:
//                                   element (m, k) at Ts[off + k*stride + m]
//   frag_load_b(b, off, stride)     B fragment (16 steps k x 16 columns n), row-major:
//                                   element (k, n) at Ts[off + k*stride + n]
//   frag_mul_add(c, a, b)           c += a * b (fp32 accumulation)
//   frag_store(c, off, stride)      the accumulator into Cs, row-major: element (m, n)
//                                   at Cs[off + m*stride + n]
// and the accessors of the tiles the core fills and reads:
//   frag_put(at, v)                 Ts element `at` := v converted to float16_t
//   frag_staged(at)                 element `at` of the staging tile Cs
// Offsets and strides are multiples of 16 elements.
// Emulated numerics: the operands are the same float16_t values as the real kernels', products
// and sums fp32, k ascending within a fragment. A tensor core's summation order inside one
// 16-step product is its own, so the two implementations agree to rounding, not bit for bit.
//
// The including core defines FRAG_T_LEN and FRAG_C_LEN (elements of Ts and Cs, multiples of
// 4) before including this file. Both implementations need the device feature shaderFloat16
// (fp16 in shared memory).

#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

shared float Cs[FRAG_C_LEN];

float frag_staged(uint at) {
    return Cs[at];
}

#ifdef HOOD_COOPMAT
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require

#define FRAG_LANES gl_SubgroupSize
#define FRAG_A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define FRAG_B coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define FRAG_C coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>

shared float16_t Ts[FRAG_T_LEN];

// This invocation's fragment group (its subgroup) and lane.
uint frag_group() {
    return gl_SubgroupID;
}
uint frag_lane() {
    return gl_SubgroupInvocationID;
}
void frag_put(uint at, float v) {
    Ts[at] = float16_t(v);
}
#define frag_fill(c) c = FRAG_C(0.0)
#define frag_load_a(a, off, stride) \
    coopMatLoad(a, Ts, off, stride, gl_CooperativeMatrixLayoutColumnMajor)
#define frag_load_b(b, off, stride) \
    coopMatLoad(b, Ts, off, stride, gl_CooperativeMatrixLayoutRowMajor)
#define frag_mul_add(c, a, b) c = coopMatMulAdd(a, b, c)
#define frag_store(c, off, stride) \
    coopMatStore(c, Cs, off, stride, gl_CooperativeMatrixLayoutRowMajor)

#else

#define FRAG_LANES 32u

// Emulated fragments, lane l of a group owning rows 2 * (l / 4) and 2 * (l / 4) + 1 and
// columns 4 * (l % 4) .. + 3 of each 16x16 matrix:
// an A fragment holds the lane's two rows of A (16 steps each) in registers, as the real load
// copies its fragment out of shared memory; a B fragment is where it lies in the B tile (the
// product reads the lane's 4 columns, one vec4 per step); an accumulator holds the lane's
// 2 x 4 outputs. Ts is read and written as 4-element vectors.
struct FragA {
    mat4 r0; // row 2 * (l / 4): step k at [k / 4][k % 4]
    mat4 r1; // the next row
};
struct FragRef {
    uint off;
    uint stride;
};
struct FragAcc {
    vec4 r0;
    vec4 r1;
};
#define FRAG_A FragA
#define FRAG_B FragRef
#define FRAG_C FragAcc

shared f16vec4 Ts[FRAG_T_LEN / 4u];

uint frag_group() {
    return gl_LocalInvocationID.x / FRAG_LANES;
}
uint frag_lane() {
    return gl_LocalInvocationID.x % FRAG_LANES;
}
void frag_put(uint at, float v) {
    Ts[at >> 2u][at & 3u] = float16_t(v);
}

// Offsets and strides are multiples of 16, so a lane's 4 columns are one vector of the B tile
// and 4 consecutive elements of the staging tile.
FragA frag_load_a_emulated(uint off, uint stride) {
    uint m = off + 2u * (frag_lane() >> 2u);
    FragA a;
    for (uint q = 0u; q < 4u; ++q) {
        for (uint j = 0u; j < 4u; ++j) {
            uint at = m + (4u * q + j) * stride;
            a.r0[q][j] = float(Ts[at >> 2u][at & 3u]);
            a.r1[q][j] = float(Ts[(at + 1u) >> 2u][(at + 1u) & 3u]);
        }
    }
    return a;
}

void frag_mul_add_emulated(inout FragAcc c, FragA a, FragRef b) {
    uint bb = (b.off + 4u * (frag_lane() & 3u)) >> 2u;
    uint step = b.stride >> 2u;
    for (uint q = 0u; q < 4u; ++q) {
        for (uint j = 0u; j < 4u; ++j) {
            vec4 bv = vec4(Ts[bb + (4u * q + j) * step]);
            c.r0 += a.r0[q][j] * bv;
            c.r1 += a.r1[q][j] * bv;
        }
    }
}

void frag_store_emulated(FragAcc c, uint off, uint stride) {
    uint lane = frag_lane();
    uint at = off + 2u * (lane >> 2u) * stride + 4u * (lane & 3u);
    for (uint j = 0u; j < 4u; ++j) {
        Cs[at + j] = c.r0[j];
        Cs[at + stride + j] = c.r1[j];
    }
}

#define frag_fill(c) c = FragAcc(vec4(0.0), vec4(0.0))
#define frag_load_a(a, off, stride) a = frag_load_a_emulated(off, stride)
#define frag_load_b(b, off, stride) b = FragRef(off, stride)
#define frag_mul_add(c, a, b) frag_mul_add_emulated(c, a, b)
#define frag_store(c, off, stride) frag_store_emulated(c, off, stride)

#endif
