// ConvTranspose2d as a tiled implicit GEMM in shared memory, gather form, no atomics (the
// fast path; conv_transpose2d.comp is the generic fallback, selected with
// HOOD_VK_NO_TILED_DECONV=1). Same bindings, push constants and fused bias / activation /
// forwarded-feature add as conv_transpose2d.comp.
//
// Output pixels are split into stride^2 parity classes (oy % s, ox % s): within one class
// every pixel receives the same kernel taps, ky = ky0 + s*t (t < T = ceil(k / s), taps with
// ky >= k have weight 0), from input rows iy = base_y + qy - t (oy = py + s*qy). So per
// class it is a GEMM:
//   C[co, pix] = sum_(ci, ty, tx) A[co, (ci, ty, tx)] * B[(ci, ty, tx), pix]
//   A = wt[ci, co, ky0 + s*ty, kx0 + s*tx] (PyTorch layout [cin, cout, k, k]), 0 where the tap
//       is past the kernel, stored by the host per class and K-major ([s*s][K][cout],
//       runtime/src/vulkan/tiles.rs `pack_deconv_k_major`),
//   B = x[b, ci, base_y + qy - ty, base_x + qx - tx] (0 outside the input).
// K order: (ci, ty, tx), or tap-major (ty, tx, ci) in the pipelined loop when cin is a multiple
// of TK (as conv2d_tiled.comp; the host stores the weights in the same order).
// Workgroup grid: x = ceil(n * ceil(oh/s) * ceil(ow/s) / TN), y = ceil(cout / TM),
// z = s^2 * S (runtime/src/vulkan/conv_transpose2d.rs). The GEMM core, tiles and register
// blocking are tiled_gemm.glsl's, shared with conv2d_tiled.comp.
//
// Layouts as in conv2d_tiled.comp (push constant `packing`): x, the forwarded feature and y
// each NCHW or channel-packed NHWC; a packed tap-major chunk is read as 16-byte vectors.
//
// Split-K as in conv2d_tiled.comp: with S = gl_NumWorkGroups.z / s^2 > 1, z = class * S + split,
// each split reduces its range of whole K chunks and stores raw fp32 sums to
// part[split * n*cout*oh*ow + o]; the last split of a tile to finish adds them in order and
// applies bias / activation / feature add (counter[tile], no second dispatch).
#include "common.glsl"

layout(set = 0, binding = 0) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 0) readonly buffer X4 { uvec4 x4[]; }; // the same, as 16-byte vectors
layout(set = 0, binding = 1) readonly buffer W { STORE_T wt[]; };
layout(set = 0, binding = 1) readonly buffer W4 { uvec4 wt4[]; }; // the same, as 16-byte vectors
layout(set = 0, binding = 2) readonly buffer Bias { STORE_T bias[]; };
layout(set = 0, binding = 3) readonly buffer Feature { STORE_T feature[]; };
layout(set = 0, binding = 4) writeonly buffer Y { STORE_T y[]; };
// Split-K partial sums, [S][n][cout][oh][ow] fp32, and one arrival counter per tile (zero
// between dispatches); both placeholders when S = 1.
layout(set = 0, binding = 5) coherent buffer Part { float part[]; };
layout(set = 0, binding = 6) coherent buffer Counter { uint counter[]; };

// Identical to conv_transpose2d.comp's block (one generated struct for both).
layout(push_constant) uniform ConvTranspose2dParams {
    uint n;
    uint cin;
    uint h;
    uint w;
    uint cout;
    uint oh;
    uint ow;
    uint k;
    uint stride;
    uint pad;
    uint has_bias;
    uint act; // ACT_NONE / ACT_RELU / ACT_TANH
    uint has_add;
    float add_scale;
    float add_shift;
    uint packing; // LAYOUT_* bits (common.glsl; tiled kernel only)
} p;

// gemm_out's "no pixel" (tiled_gemm.glsl): a class's last row / column may lie outside.
#define GEMM_NO_PIXEL 0xFFFFFFFFu

// This workgroup's parity class and its taps.
uint s;     // stride
uint cls;   // parity class (oy % s) * s + ox % s
uint py;
uint px;
uint ky0;
uint kx0;
int base_y;
int base_x;
uint T;     // taps per axis, ceil(k / s)
uint tt;    // T * T
uint qw;    // columns of a class (the last may be partly outside)
uint qplane;
uint plane; // oh * ow
// This invocation's B column: validity, input origin, image base.
bool col_ok;
int col_iy0;
int col_ix0;
uint col_xbase;
// Tap-major gather (pipelined loop, cin a multiple of TK): the chunk's first step, whether its
// tap is inside the input for this column, the index of its first value (channels are
// `chunk_step` apart: h * w, or 1 when x is packed) and whether it is read as 16-byte
// vectors (x packed).
bool tap_major;
bool x_packed;
uint chunk_k0;
bool chunk_in;
uint chunk_at;
uint chunk_step;
bool chunk_vec;

// Index of output pixel (oy, ox) of image img, channel c, in an output-shaped buffer whose
// layout bit is `bit`.
uint out_at(uint bit, uint img, uint c, uint oy, uint ox) {
    return (p.packing & bit) != 0u ? ((img * p.oh + oy) * p.ow + ox) * p.cout + c
                                  : ((img * p.cout + c) * p.oh + oy) * p.ow + ox;
}

// Index of x[img, ci, iy, ix] relative to the image's first value, in x's layout.
uint x_off(uint ci, uint iy, uint ix) {
    return x_packed ? (iy * p.w + ix) * p.cin + ci : (ci * p.h + iy) * p.w + ix;
}

// The epilogue of output (column g, channel co) at o: bias, activation, then the forwarded
// feature's add, in the storage type.
void store_out(uint g, uint co, uint o, float acc, float bv) {
    float v = activate(acc + bv, p.act);
    if (p.has_add != 0u) {
        uint q = g % qplane;
        uint f = out_at(LAYOUT_SIDE, g / qplane, co, py + s * (q / qw), px + s * (q % qw));
        v += float(feature[f]) * p.add_scale + p.add_shift;
    }
    y[o] = STORE_T(v);
}

void gemm_column(uint g) {
    uint img = g / qplane;
    uint q = g % qplane;
    uint qy = q / qw;
    uint qx = q % qw;
    col_ok = g < p.n * qplane && py + s * qy < p.oh && px + s * qx < p.ow;
    col_iy0 = base_y + int(qy);
    col_ix0 = base_x + int(qx);
    col_xbase = img * p.cin * p.h * p.w;
}

void gemm_chunk(uint k0) {
    chunk_vec = false;
    if (!tap_major) {
        return;
    }
    uint tap = k0 / p.cin;
    chunk_k0 = k0;
    int iy = col_iy0 - int(tap / T);
    int ix = col_ix0 - int(tap % T);
    chunk_in = col_ok && iy >= 0 && iy < int(p.h) && ix >= 0 && ix < int(p.w);
    chunk_at = chunk_in ? col_xbase + x_off(k0 % p.cin, uint(iy), uint(ix)) : 0u;
    chunk_step = x_packed ? 1u : p.h * p.w;
    chunk_vec = x_packed;
}

// The packed chunk's raw values of rows c .. c + VEC16_LEN - 1 (c a multiple of VEC16_LEN),
// as one 16-byte load; zeros outside the input.
uvec4 gemm_b_vec(uint c) {
    return chunk_in ? x4[(chunk_at + c) / VEC16_LEN] : uvec4(0u);
}

// Chunk row c's B value from its raw stored value v (0 outside the input).
float gemm_b_value(uint c, float v) {
    return chunk_in ? v : 0.0;
}

float gemm_b(uint gk) {
    if (tap_major) {
        return chunk_in ? float(x[chunk_at + (gk - chunk_k0) * chunk_step]) : 0.0;
    }
    if (!col_ok) {
        return 0.0;
    }
    uint ci = gk / tt;
    uint r = gk % tt;
    int iy = col_iy0 - int(r / T);
    int ix = col_ix0 - int(r % T);
    if (iy >= 0 && iy < int(p.h) && ix >= 0 && ix < int(p.w)) {
        return float(x[col_xbase + x_off(ci, uint(iy), uint(ix))]);
    }
    return 0.0;
}

uint gemm_a_row(uint gk) {
    return (cls * p.cin * tt + gk) * p.cout;
}

uint gemm_out(uint g, uint co) {
    uint img = g / qplane;
    uint q = g % qplane;
    uint oy = py + s * (q / qw);
    uint ox = px + s * (q % qw);
    if (oy >= p.oh || ox >= p.ow) {
        return GEMM_NO_PIXEL;
    }
    return out_at(LAYOUT_Y, img, co, oy, ox);
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
    s = p.stride;
    uint nsplit = gl_NumWorkGroups.z / (s * s);
    cls = gl_WorkGroupID.z / nsplit;
    py = cls / s;
    px = cls % s;
    ky0 = (py + p.pad) % s;
    kx0 = (px + p.pad) % s;
    base_y = int((py + p.pad - ky0) / s);
    base_x = int((px + p.pad - kx0) / s);
    T = (p.k + s - 1u) / s;
    tt = T * T;
    uint qh = (p.oh + s - 1u) / s;
    qw = (p.ow + s - 1u) / s;
    qplane = qh * qw;
    plane = p.oh * p.ow;
    tap_major = PIPELINED != 0u && p.cin % TK == 0u;
    x_packed = (p.packing & LAYOUT_X) != 0u;
    tiled_gemm(p.cin * tt, p.n * qplane, nsplit, gl_WorkGroupID.z % nsplit, cls,
               p.n * p.cout * plane);
}
