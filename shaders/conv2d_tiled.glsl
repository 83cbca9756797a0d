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
// Layouts (push constant `packing`, LAYOUT_* in common.glsl; the host's plan decides them per
// value, runtime/src/vulkan/plan.rs): x, x2, the residual and y are each NCHW or channel-packed
// NHWC. With x packed, a tap-major chunk's 16 channels lie next to each other, and the
// pipelined loop loads them as 16-byte vectors (`chunk_vec`, `gemm_b_vec`).
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

// x and x2 again, as 16-byte vectors (the packed tap-major gather).
layout(set = 0, binding = 0) readonly buffer X4 { uvec4 x4[]; };
layout(set = 0, binding = 7) readonly buffer X2v { uvec4 x2v[]; };

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
// for this column, the index of its first value (the next channels are `chunk_step` apart:
// 1 when packed), and whether its values are read as 16-byte vectors (packed, and for the
// shortcut's chunks cin2 a multiple of the vector length).
bool tap_major;
bool chunk_vec;
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

// Index of value (img, c, pixel q of the output plane) in an output-shaped buffer whose
// layout bit is `bit`.
uint out_at(uint bit, uint img, uint c, uint q) {
    return (p.packing & bit) != 0u ? (img * plane + q) * p.cout + c
                                  : (img * p.cout + c) * plane + q;
}

// Index of x[img, ci, iy, ix] in x's layout.
uint x_at(uint img, uint ci, uint iy, uint ix) {
    return (p.packing & LAYOUT_X) != 0u ? ((img * p.h + iy) * p.w + ix) * p.cin + ci
                                      : ((img * p.cin + ci) * p.h + iy) * p.w + ix;
}

// The epilogue of output (column g, channel co) at o: bias, residual add, ReLU, stored in the
// storage type.
void store_out(uint g, uint co, uint o, float acc, float bv) {
    float v = acc + bv;
    if (p.has_residual != 0u) {
        v += float(residual[out_at(LAYOUT_SIDE, g / plane, co, g % plane)]);
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
    chunk_vec = false;
    if (!tap_major) {
        return;
    }
    chunk_k0 = k0;
    chunk_shortcut = k0 >= K1;
    if (chunk_shortcut) {
        chunk_c0 = k0 - K1;
        chunk_in = col_ok;
        uint iy = col_oy * p.stride2;
        uint ix = col_ox * p.stride2;
        bool packed = (p.packing & LAYOUT_X2) != 0u;
        chunk_at = packed ? ((col_img * p.h2 + iy) * p.w2 + ix) * p.cin2 + chunk_c0
                          : ((col_img * p.cin2 + chunk_c0) * p.h2 + iy) * p.w2 + ix;
        chunk_step = packed ? 1u : p.h2 * p.w2;
        chunk_vec = packed && p.cin2 % VEC16_LEN == 0u;
        return;
    }
    uint tap = k0 / p.cin;
    chunk_c0 = k0 % p.cin;
    int iy = col_iy0 + int(tap / ks);
    int ix = col_ix0 + int(tap % ks);
    chunk_in = col_ok && iy >= 0 && iy < int(p.h) && ix >= 0 && ix < int(p.w);
    chunk_at = chunk_in ? x_at(col_img, chunk_c0, uint(iy), uint(ix)) : 0u;
    bool packed = (p.packing & LAYOUT_X) != 0u;
    chunk_step = packed ? 1u : p.h * p.w;
    chunk_vec = packed;
}

// The packed chunk's raw values of rows c .. c + VEC16_LEN - 1 (c a multiple of VEC16_LEN,
// chunk_k0 + c < K), as one 16-byte load; zeros where the tap is in the padding.
uvec4 gemm_b_vec(uint c) {
    if (!chunk_in) {
        return uvec4(0u);
    }
    uint at = (chunk_at + c) / VEC16_LEN;
    return chunk_shortcut ? x2v[at] : x4[at];
}

// Chunk row c's B value from its raw stored value v (from gemm_b_vec): the prologue, 0 in
// the padding.
float gemm_b_value(uint c, float v) {
    if (!chunk_in) {
        return 0.0;
    }
    if (chunk_shortcut) {
        return shortcut_prologue(v, chunk_c0 + c);
    }
    return prologue(v, chunk_c0 + c);
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
        return prologue(float(x[x_at(col_img, ci, uint(iy), uint(ix))]), ci);
    }
    return 0.0;
}

uint gemm_a_row(uint gk) {
    return gk * p.cout;
}

uint gemm_out(uint g, uint co) {
    return out_at(LAYOUT_Y, g / plane, co, g % plane);
}

// The GEMM core: the fp32 FMA tiles, or the fragment core (16x16x16 fp16 fragments: emulated
// in shared memory, or tensor cores through cooperative matrices) where the wrapper defines
// HOOD_FRAGMENTS.
#ifdef HOOD_FRAGMENTS
#include "fragment_gemm.glsl"
#else
#include "tiled_gemm.glsl"
#endif

void main() {
    ks = SPEC_K != 0u ? SPEC_K : p.k;
    kk2 = ks * ks;
    K1 = p.cin * kk2;
    plane = p.oh * p.ow;
    tap_major = PIPELINED != 0u && p.cin % TK == 0u;
    uint nsplit = gl_NumWorkGroups.z;
    tiled_gemm(K1 + p.cin2, p.n * plane, nsplit, gl_WorkGroupID.z, 0u, p.n * plane * p.cout);
}
