#version 450
#extension GL_GOOGLE_include_directive : require
// Conv2d as a tiled implicit GEMM in shared memory (the fast path; conv2d.comp is the
// generic fallback, selected with HOOD_VK_NO_TILED_CONV=1). Same bindings 0-9, same push
// constants and the same fused prologue / bias / residual / ReLU / joined shortcut as
// conv2d.comp; bindings 10-11 are split-K's.
//
//   C[co, pix] = sum_kk A[co, kk] * B[kk, pix]   (the GEMM core: tiled_gemm.glsl)
//   A = weights [cout, cin*k*k (+ cin2 with a joined shortcut, conv2d_params.glsl)], stored
//       K-major by the host ([K][cout], runtime/src/vulkan/tiles.rs `k_major`),
//   B = im2col of prologue(x): B[(ci, ky, kx), (b, oy, ox)] = x[b, ci, oy*s-p+ky, ox*s-p+kx]
//       (0 in the padding), never materialised: each K-chunk is gathered into shared memory.
// K order: (ci, ky, kx), or tap-major (ky, kx, ci) in the pipelined loop when cin is a multiple
// of TK (`tap_major`; the host stores the weights in the same order, tiles.rs `tap_major`):
// then a chunk is TK channels of one tap, so `gemm_chunk` finds the tap's input pixel and
// checks the padding once per column and chunk, and each gathered value is one add away.
// The joined shortcut's cin2 steps follow in both orders.
//
// Workgroup grid: x = ceil(n*oh*ow / TN), y = ceil(cout / TM), z = S, the K splits
// (runtime/src/vulkan/conv2d.rs and tiles.rs). The prologue stays in the B gather.
#include "common.glsl"

layout(set = 0, binding = 0) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 1) readonly buffer W { STORE_T wt[]; };
layout(set = 0, binding = 1) readonly buffer W4 { uvec4 wt4[]; }; // the same, as 16-byte vectors
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

// Specialisations (runtime/src/vulkan/kernels.rs, `ConvSpec`): kernel size and stride as
// specialization constants, so the driver's compiler sees constant loop bounds and divisors
// (3x3 and 1x1 at stride 1 and 2); 0 = the generic pipeline, which reads them from the push
// constants. HOOD_VK_NO_SPECIALISED=1 uses the generic pipeline for every conv.
layout(constant_id = 0) const uint SPEC_K = 0u;
layout(constant_id = 1) const uint SPEC_STRIDE = 0u;

uint ks;    // kernel size
uint kk2;   // ks * ks
uint K1;    // the conv's own reduction steps, cin * ks * ks
uint plane; // oh * ow
// This invocation's B column: validity, image, output pixel, input origin.
bool col_ok;
uint col_img;
uint col_oy;
uint col_ox;
int col_iy0;
int col_ix0;
// Tap-major gather (pipelined loop, cin a multiple of TK): the current chunk's first step and
// channel, whether it reads the joined shortcut's input, whether its tap is inside the input
// for this column, and the index of its first value (the next channels are `chunk_step`
// apart).
bool tap_major;
uint chunk_k0;
uint chunk_c0;
bool chunk_shortcut;
bool chunk_in;
uint chunk_at;
uint chunk_step;

// The fused prologue (folded BatchNorm, optional ReLU) of input channel ci.
float prologue(float v, uint ci) {
    if (p.has_prologue != 0u) {
        v = v * float(pscale[ci]) + float(pshift[ci]);
        if (p.prologue_relu != 0u) {
            v = max(v, 0.0);
        }
    }
    return v;
}

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

void gemm_column(uint g) {
    uint st = SPEC_STRIDE != 0u ? SPEC_STRIDE : p.stride;
    col_ok = g < p.n * plane;
    col_img = col_ok ? g / plane : 0u;
    uint q = col_ok ? g % plane : 0u;
    col_oy = q / p.ow;
    col_ox = q % p.ow;
    col_iy0 = int(col_oy * st) - int(p.pad);
    col_ix0 = int(col_ox * st) - int(p.pad);
}

void gemm_chunk(uint k0) {
    if (!tap_major) {
        return;
    }
    chunk_k0 = k0;
    chunk_shortcut = k0 >= K1;
    if (chunk_shortcut) {
        chunk_c0 = k0 - K1;
        chunk_in = col_ok;
        chunk_at = ((col_img * p.cin2 + chunk_c0) * p.h2 + col_oy * p.stride2) * p.w2
            + col_ox * p.stride2;
        chunk_step = p.h2 * p.w2;
        return;
    }
    uint tap = k0 / p.cin;
    chunk_c0 = k0 % p.cin;
    int iy = col_iy0 + int(tap / ks);
    int ix = col_ix0 + int(tap % ks);
    chunk_in = col_ok && iy >= 0 && iy < int(p.h) && ix >= 0 && ix < int(p.w);
    chunk_at = chunk_in ? ((col_img * p.cin + chunk_c0) * p.h + uint(iy)) * p.w + uint(ix) : 0u;
    chunk_step = p.h * p.w;
}

float gemm_b(uint gk) {
    if (tap_major) {
        if (!chunk_in) {
            return 0.0;
        }
        uint c = gk - chunk_k0;
        if (chunk_shortcut) {
            return shortcut_prologue(float(x2[chunk_at + c * chunk_step]), chunk_c0 + c);
        }
        return prologue(float(x[chunk_at + c * chunk_step]), chunk_c0 + c);
    }
    if (!col_ok) {
        return 0.0;
    }
    if (gk >= K1) {
        return shortcut_value(col_img, gk - K1, col_oy, col_ox);
    }
    uint ci = gk / kk2;
    uint r = gk % kk2;
    int iy = col_iy0 + int(r / ks);
    int ix = col_ix0 + int(r % ks);
    if (iy >= 0 && iy < int(p.h) && ix >= 0 && ix < int(p.w)) {
        return prologue(float(x[((col_img * p.cin + ci) * p.h + uint(iy)) * p.w + uint(ix)]), ci);
    }
    return 0.0;
}

uint gemm_a_row(uint gk) {
    return gk * p.cout;
}

uint gemm_out(uint g, uint co) {
    return ((g / plane) * p.cout + co) * plane + g % plane;
}

#include "tiled_gemm.glsl"

void main() {
    ks = SPEC_K != 0u ? SPEC_K : p.k;
    kk2 = ks * ks;
    K1 = p.cin * kk2;
    plane = p.oh * p.ow;
    tap_major = PIPELINED != 0u && p.cin % TK == 0u;
    uint nsplit = gl_NumWorkGroups.z;
    tiled_gemm(K1 + p.cin2, p.n * plane, nsplit, gl_WorkGroupID.z, 0u, p.n * plane * p.cout);
}
