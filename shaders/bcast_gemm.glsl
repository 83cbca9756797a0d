// Shared by the conv2d_bcast* and conv_transpose2d_bcast* kernels: the register-broadcast
// implicit GEMM for Vulkan implementations that run on a CPU (Mesa's lavapipe), selected by
// runtime/src/vulkan/bcast.rs. The including file defines BC_CPL, the output channels per
// lane: 8 (blocks of 64 channels) or 16 (blocks of 128, for convs with more than 64).
//
// Why a separate kernel: lavapipe runs 8 invocations (one subgroup) per AVX2 vector and turns
// every storage-buffer or shared-memory load, and every subgroup broadcast, into a loop over
// the lanes (a load costs about 4 broadcasts), so a kernel's speed there is set by how many
// of those it executes, not by its arithmetic (docs/BENCHMARKS.md, "Where hood's time goes").
// Here one workgroup is one subgroup of 8 lanes computing 8*BC_CPL output channels x 16
// output pixels; lane l owns channels BC_CPL*l .. BC_CPL*l + BC_CPL-1 of the block at all 16
// pixels (16*BC_CPL accumulators). Per reduction step kk a lane
//   * loads its BC_CPL weights with BC_CPL/8 16-byte loads (the host packs them together),
//   * loads the im2col input values of 2 of the 16 pixels (l and l + 8),
//   * gets the other pixels' values from the lanes that loaded them (16 subgroupBroadcasts)
//     and does BC_CPL x 16 fp32 FMAs.
// No shared memory, no barriers. Accumulation in fp32, kk ascending, in every variant.
//
// Weight packing (`pack` in bcast.rs): [cout / (8*BC_CPL)][K][8*BC_CPL], i.e. the weights of
// block cb at step kk are contiguous, channel cb*8*BC_CPL + j at entry j (0 past cout). Lane
// l loads entries BC_CPL*l ..: uvec4s (two halves per component) with fp16 storage, vec4s
// with fp32.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require

#define BC_LANES 8u
#define BC_CHANNELS (8u * BC_CPL)
#define BC_PIXELS 16u // BC_LANES * 2
// The kernels' `out_base` for a pixel outside the output (bcast_epilogue.glsl).
#define BC_NO_PIXEL 0xFFFFFFFFu

#ifdef HOOD_FP16
layout(set = 0, binding = 1) readonly buffer WPacked16 { uvec4 wp[]; };
#define BC_VEC_PER_LANE (BC_CPL / 8u) // uvec4 of 8 halves
vec4 bc_lo(uvec4 v) {
    return vec4(unpackHalf2x16(v.x), unpackHalf2x16(v.y));
}
vec4 bc_hi(uvec4 v) {
    return vec4(unpackHalf2x16(v.z), unpackHalf2x16(v.w));
}
// This lane's weights of step kk (block starting at `wrow`), 4 channels per vec4 a<i>.
#if BC_CPL == 8
#define BC_LOAD_A(wrow, kk)                                                               \
    uvec4 wv0 = wp[(wrow) + (kk) * BC_LANES + gl_SubgroupInvocationID];                   \
    vec4 a0 = bc_lo(wv0), a1 = bc_hi(wv0);
#else
#define BC_LOAD_A(wrow, kk)                                                               \
    uvec4 wv0 = wp[(wrow) + ((kk) * BC_LANES + gl_SubgroupInvocationID) * 2u];            \
    uvec4 wv1 = wp[(wrow) + ((kk) * BC_LANES + gl_SubgroupInvocationID) * 2u + 1u];       \
    vec4 a0 = bc_lo(wv0), a1 = bc_hi(wv0), a2 = bc_lo(wv1), a3 = bc_hi(wv1);
#endif
#else
layout(set = 0, binding = 1) readonly buffer WPacked32 { vec4 wp[]; };
#define BC_VEC_PER_LANE (BC_CPL / 4u) // vec4
#define BC_A(wrow, kk, i) wp[(wrow) + ((kk) * BC_LANES + gl_SubgroupInvocationID) * BC_VEC_PER_LANE + i]
#if BC_CPL == 8
#define BC_LOAD_A(wrow, kk) vec4 a0 = BC_A(wrow, kk, 0u), a1 = BC_A(wrow, kk, 1u);
#else
#define BC_LOAD_A(wrow, kk)                                                               \
    vec4 a0 = BC_A(wrow, kk, 0u), a1 = BC_A(wrow, kk, 1u), a2 = BC_A(wrow, kk, 2u),        \
         a3 = BC_A(wrow, kk, 3u);
#endif
#endif

// First index (in wp's element type) of channel block cb of a GEMM with K steps.
uint bc_block(uint cb, uint K) {
    return cb * K * BC_LANES * BC_VEC_PER_LANE;
}

#define BC_ZERO8 vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0)

// acc[BC_CPL/4 * P + i] = this lane's channels 4i..4i+3 at pixel P of the block.
// Pixel P's input value is `b0` of lane P (P < 8) or `b1` of lane P - 8.
#if BC_CPL == 8
#define BC_ACC vec4 acc[32] = vec4[32](BC_ZERO8, BC_ZERO8, BC_ZERO8, BC_ZERO8);
#define BC_PIX(P, SRC, L)                                                                 \
    {                                                                                     \
        float bp = subgroupBroadcast(SRC, L);                                             \
        acc[2 * P] += a0 * bp;                                                            \
        acc[2 * P + 1] += a1 * bp;                                                        \
    }
#else
#define BC_ACC                                                                            \
    vec4 acc[64] = vec4[64](BC_ZERO8, BC_ZERO8, BC_ZERO8, BC_ZERO8, BC_ZERO8, BC_ZERO8,   \
                            BC_ZERO8, BC_ZERO8);
#define BC_PIX(P, SRC, L)                                                                 \
    {                                                                                     \
        float bp = subgroupBroadcast(SRC, L);                                             \
        acc[4 * P] += a0 * bp;                                                            \
        acc[4 * P + 1] += a1 * bp;                                                        \
        acc[4 * P + 2] += a2 * bp;                                                        \
        acc[4 * P + 3] += a3 * bp;                                                        \
    }
#endif
#define BC_STEP_ALL                                                                       \
    BC_PIX(0, b0, 0) BC_PIX(1, b0, 1) BC_PIX(2, b0, 2) BC_PIX(3, b0, 3)                   \
    BC_PIX(4, b0, 4) BC_PIX(5, b0, 5) BC_PIX(6, b0, 6) BC_PIX(7, b0, 7)                   \
    BC_PIX(8, b1, 0) BC_PIX(9, b1, 1) BC_PIX(10, b1, 2) BC_PIX(11, b1, 3)                 \
    BC_PIX(12, b1, 4) BC_PIX(13, b1, 5) BC_PIX(14, b1, 6) BC_PIX(15, b1, 7)

// Epilogue: `emit` and `bias4` come from bcast_epilogue.glsl, which the kernel includes after
// its declarations; `lane_c` is the lane's first channel.
#if BC_CPL == 8
#define BC_EMIT(P) emit(P, lane_c, acc[2 * P], acc[2 * P + 1], b_0, b_1);
#define BC_BIASES vec4 b_0 = bias4(lane_c), b_1 = bias4(lane_c + 4u);
#else
#define BC_BIASES                                                                         \
    vec4 b_0 = bias4(lane_c), b_1 = bias4(lane_c + 4u), b_2 = bias4(lane_c + 8u),         \
         b_3 = bias4(lane_c + 12u);
#define BC_EMIT(P)                                                                        \
    emit(P, lane_c, acc[4 * P], acc[4 * P + 1], b_0, b_1);                                \
    emit(P, lane_c + 8u, acc[4 * P + 2], acc[4 * P + 3], b_2, b_3);
#endif
#define BC_OUT_ALL                                                                        \
    {                                                                                     \
        BC_BIASES                                                                         \
        BC_EMIT(0u) BC_EMIT(1u) BC_EMIT(2u) BC_EMIT(3u) BC_EMIT(4u) BC_EMIT(5u)           \
        BC_EMIT(6u) BC_EMIT(7u) BC_EMIT(8u) BC_EMIT(9u) BC_EMIT(10u) BC_EMIT(11u)         \
        BC_EMIT(12u) BC_EMIT(13u) BC_EMIT(14u) BC_EMIT(15u)                               \
    }
