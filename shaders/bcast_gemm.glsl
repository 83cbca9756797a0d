// Shared by conv2d_bcast.comp and conv_transpose2d_bcast.comp: the register-broadcast
// implicit GEMM for Vulkan implementations that run on a CPU (Mesa's lavapipe), selected by
// runtime/src/vulkan/bcast.rs.
//
// Why a separate kernel: lavapipe runs 8 invocations (one subgroup) per AVX2 vector and turns
// every storage-buffer or shared-memory load into a per-lane loop with bounds checks, so a
// kernel's speed there is set by how many load instructions it executes, not by its
// arithmetic (docs/BENCHMARKS.md, "Where hood's time goes"). Here one workgroup is one
// subgroup of 8 lanes; it computes 64 output channels x 16 output pixels, each lane RN = 2
// pixels (g0 and g0 + 8) for all 64 channels. Per reduction step kk a lane
//   * loads its 2 im2col input values (B, different for every lane),
//   * loads ONE 16-byte vector of weights (A): the 8 lanes together hold the 64 weights of
//     this workgroup's channels at kk, packed by the host (`pack` in bcast.rs),
//   * gets every weight from the lane that holds it with subgroupBroadcast (a register
//     move on lavapipe) and does 64 x 2 fp32 FMAs.
// No shared memory, no barriers. Accumulation in fp32, in the same order (kk ascending) in
// every variant.
//
// Weight packing (`pack` in bcast.rs): [cout / 64][K][64], i.e. the 64 weights of block cb
// at step kk are contiguous, channel cb*64 + j at entry j (0 past cout). Lane l loads entries
// 8l..8l+7: one uvec4 (two halves per component) with fp16 storage, two vec4 with fp32;
// channel pair (L, Q) is entries 8L + 2Q and 8L + 2Q + 1.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require

#define BC_LANES 8u
#define BC_CHANNELS 64u
#define BC_PIXELS 16u // BC_LANES * 2

#ifdef HOOD_FP16
layout(set = 0, binding = 1) readonly buffer WPacked16 { uvec4 wp[]; };
// The lane's packed weights of step kk of block (cb, in `wrow` = start of the block).
#define BC_LOAD_A(wrow, kk) uvec4 wv = wp[(wrow) + (kk) * BC_LANES + gl_SubgroupInvocationID];
// Weights of channel pair (L, Q) (see bc_channel) from lane L, as fp32.
#define BC_PAIR(L, Q) unpackHalf2x16(subgroupBroadcast(wv[Q], L))
#else
layout(set = 0, binding = 1) readonly buffer WPacked32 { vec4 wp[]; };
#define BC_LOAD_A(wrow, kk)                                                               \
    vec4 wv0 = wp[(wrow) + (kk) * 2u * BC_LANES + 2u * gl_SubgroupInvocationID];          \
    vec4 wv1 = wp[(wrow) + (kk) * 2u * BC_LANES + 2u * gl_SubgroupInvocationID + 1u];
#define BC_PAIR(L, Q)                                                                     \
    subgroupBroadcast((Q) == 0 ? wv0.xy : (Q) == 1 ? wv0.zw : (Q) == 2 ? wv1.xy : wv1.zw, L)
#endif

// First index (in wp's element type) of channel block cb of a GEMM with K steps.
uint bc_block(uint cb, uint K) {
#ifdef HOOD_FP16
    return cb * K * BC_LANES;
#else
    return cb * K * 2u * BC_LANES;
#endif
}

// Output channel (within the block) of half h of channel pair (L, Q).
uint bc_channel(uint L, uint Q, uint h) {
    return 8u * L + 2u * Q + h;
}

#define BC_ZERO8 vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0)

// acc[4L + Q] = (channel (L,Q,0) at pixel 0, at pixel 1, channel (L,Q,1) at pixel 0, at 1).
#define BC_STEP(L, Q) acc[4 * L + Q] += BC_PAIR(L, Q).xxyy * bb;
#define BC_STEP_LANE(L) BC_STEP(L, 0) BC_STEP(L, 1) BC_STEP(L, 2) BC_STEP(L, 3)
#define BC_STEP_ALL                                                                       \
    BC_STEP_LANE(0) BC_STEP_LANE(1) BC_STEP_LANE(2) BC_STEP_LANE(3)                       \
    BC_STEP_LANE(4) BC_STEP_LANE(5) BC_STEP_LANE(6) BC_STEP_LANE(7)

// Epilogue: the kernel defines `void emit(uint co, vec2 v)` (channel co at its 2 pixels) and
// `c0`, the block's first channel.
#define BC_OUT(L, Q)                                                                      \
    emit(c0 + bc_channel(L, Q, 0u), acc[4 * L + Q].xy);                                   \
    emit(c0 + bc_channel(L, Q, 1u), acc[4 * L + Q].zw);
#define BC_OUT_LANE(L) BC_OUT(L, 0) BC_OUT(L, 1) BC_OUT(L, 2) BC_OUT(L, 3)
#define BC_OUT_ALL                                                                        \
    BC_OUT_LANE(0) BC_OUT_LANE(1) BC_OUT_LANE(2) BC_OUT_LANE(3)                           \
    BC_OUT_LANE(4) BC_OUT_LANE(5) BC_OUT_LANE(6) BC_OUT_LANE(7)
