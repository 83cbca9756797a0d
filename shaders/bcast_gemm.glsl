// Shared by conv2d_bcast.comp and conv_transpose2d_bcast.comp: the register-broadcast
// implicit GEMM for Vulkan implementations that run on a CPU (Mesa's lavapipe), selected by
// runtime/src/vulkan/bcast.rs.
//
// Why a separate kernel: lavapipe runs 8 invocations (one subgroup) per AVX2 vector and turns
// every storage-buffer or shared-memory load, and every subgroup broadcast, into a loop over
// the lanes (a load costs about 4 broadcasts), so a kernel's speed there is set by how many
// of those it executes, not by its arithmetic (docs/BENCHMARKS.md, "Where hood's time goes").
// Here one workgroup is one subgroup of 8 lanes computing 64 output channels x 16 output
// pixels; lane l owns channels 8l..8l+7 of the block at all 16 pixels (128 accumulators).
// Per reduction step kk a lane
//   * loads its 8 weights with ONE 16-byte load (the host packs them together),
//   * loads the im2col input values of 2 of the 16 pixels (l and l + 8),
//   * gets the other pixels' values from the lanes that loaded them (16 subgroupBroadcasts)
//     and does 8 x 16 fp32 FMAs.
// No shared memory, no barriers. Accumulation in fp32, kk ascending, in every variant.
//
// Weight packing (`pack` in bcast.rs): [cout / 64][K][64], i.e. the 64 weights of block cb
// at step kk are contiguous, channel cb*64 + j at entry j (0 past cout). Lane l loads entries
// 8l..8l+7: one uvec4 (two halves per component) with fp16 storage, two vec4 with fp32.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require

#define BC_LANES 8u
#define BC_CHANNELS 64u
#define BC_PIXELS 16u // BC_LANES * 2

#ifdef HOOD_FP16
layout(set = 0, binding = 1) readonly buffer WPacked16 { uvec4 wp[]; };
// This lane's 8 weights of step kk (block starting at `wrow`): channels 8l..8l+3 in alo,
// 8l+4..8l+7 in ahi.
#define BC_LOAD_A(wrow, kk)                                                               \
    uvec4 wv = wp[(wrow) + (kk) * BC_LANES + gl_SubgroupInvocationID];                    \
    vec4 alo = vec4(unpackHalf2x16(wv.x), unpackHalf2x16(wv.y));                          \
    vec4 ahi = vec4(unpackHalf2x16(wv.z), unpackHalf2x16(wv.w));
#else
layout(set = 0, binding = 1) readonly buffer WPacked32 { vec4 wp[]; };
#define BC_LOAD_A(wrow, kk)                                                               \
    vec4 alo = wp[(wrow) + (kk) * 2u * BC_LANES + 2u * gl_SubgroupInvocationID];          \
    vec4 ahi = wp[(wrow) + (kk) * 2u * BC_LANES + 2u * gl_SubgroupInvocationID + 1u];
#endif

// First index (in wp's element type) of channel block cb of a GEMM with K steps.
uint bc_block(uint cb, uint K) {
#ifdef HOOD_FP16
    return cb * K * BC_LANES;
#else
    return cb * K * 2u * BC_LANES;
#endif
}

#define BC_ZERO8 vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0)

// acc[2P] = this lane's channels 0..3 at pixel P of the block, acc[2P + 1] = channels 4..7.
// Pixel P's input value is `b0` of lane P (P < 8) or `b1` of lane P - 8.
#define BC_PIX(P, SRC, L)                                                                 \
    {                                                                                     \
        float bp = subgroupBroadcast(SRC, L);                                             \
        acc[2 * P] += alo * bp;                                                           \
        acc[2 * P + 1] += ahi * bp;                                                       \
    }
#define BC_STEP_ALL                                                                       \
    BC_PIX(0, b0, 0) BC_PIX(1, b0, 1) BC_PIX(2, b0, 2) BC_PIX(3, b0, 3)                   \
    BC_PIX(4, b0, 4) BC_PIX(5, b0, 5) BC_PIX(6, b0, 6) BC_PIX(7, b0, 7)                   \
    BC_PIX(8, b1, 0) BC_PIX(9, b1, 1) BC_PIX(10, b1, 2) BC_PIX(11, b1, 3)                 \
    BC_PIX(12, b1, 4) BC_PIX(13, b1, 5) BC_PIX(14, b1, 6) BC_PIX(15, b1, 7)

// Epilogue: the kernel defines `void emit(uint P, vec4 lo, vec4 hi)`, storing this lane's 8
// channels at pixel P of the block.
#define BC_OUT_ALL                                                                        \
    emit(0u, acc[0], acc[1]); emit(1u, acc[2], acc[3]);                                   \
    emit(2u, acc[4], acc[5]); emit(3u, acc[6], acc[7]);                                   \
    emit(4u, acc[8], acc[9]); emit(5u, acc[10], acc[11]);                                 \
    emit(6u, acc[12], acc[13]); emit(7u, acc[14], acc[15]);                               \
    emit(8u, acc[16], acc[17]); emit(9u, acc[18], acc[19]);                               \
    emit(10u, acc[20], acc[21]); emit(11u, acc[22], acc[23]);                             \
    emit(12u, acc[24], acc[25]); emit(13u, acc[26], acc[27]);                             \
    emit(14u, acc[28], acc[29]); emit(15u, acc[30], acc[31]);
