// ConvTranspose2d as a register-broadcast implicit GEMM for CPU Vulkan implementations
// (lavapipe): see bcast_gemm.glsl. Gather form, no atomics; same fused bias / activation /
// forwarded-feature add and push constants as conv_transpose2d.comp.
//
// Output pixels are split into stride^2 parity classes (oy % s, ox % s) as in
// conv_transpose2d_tiled.comp: within class (py, px) every pixel (oy, ox) = (py + s*qy,
// px + s*qx) receives the taps ky = ky0 + s*ty, kx = kx0 + s*tx (ty, tx < T = ceil(k / s))
// from input (base_y + qy - ty, base_x + qx - tx), so per class
//   C[co, pix] = sum_(ci, ty, tx) A_class[co, (ci, ty, tx)] * B[(ci, ty, tx), pix],
// where A_class (0 for taps outside the kernel) is packed per class by bcast.rs.
// Workgroup grid: x = ceil(n * ceil(oh/s) * ceil(ow/s) / 16), y = ceil(cout / (8 * BC_CPL)), z = s^2.

layout(set = 0, binding = 0) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 2) readonly buffer Bias { STORE_T bias[]; };
layout(set = 0, binding = 3) readonly buffer Feature { STORE_T feature[]; };
layout(set = 0, binding = 4) writeonly buffer Y { STORE_T y[]; };

// Identical to conv_transpose2d.comp's block (one generated struct for all of them).
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

uint plane;
uint npix;
uint qw;
uint qplane;
uint py;
uint px;
uint lane_c; // this lane's first output channel

void emit1(uint co, uint obase, float v) {
    uint o = obase + co * plane;
    v = activate(v, p.act);
    if (p.has_add != 0u) {
        v += float(feature[o]) * p.add_scale + p.add_shift;
    }
    y[o] = STORE_T(v);
}

// Pixel P of the workgroup's block of this parity class.
uint out_base(uint P) {
    uint g = gl_WorkGroupID.x * BC_PIXELS + P;
    uint q = g % qplane;
    uint oy = py + p.stride * (q / qw);
    uint ox = px + p.stride * (q % qw);
    if (g >= npix || oy >= p.oh || ox >= p.ow) {
        return BC_NO_PIXEL;
    }
    return (g / qplane) * p.cout * plane + oy * p.ow + ox;
}

#include "bcast_epilogue.glsl"

float gather(bool ok, uint base, int iy, int ix) {
    float v = 0.0;
    if (ok && iy >= 0 && iy < int(p.h) && ix >= 0 && ix < int(p.w)) {
        v = float(x[base + uint(iy) * p.w + uint(ix)]);
    }
    return v;
}

void main() {
    uint s = p.stride;
    uint cls = gl_WorkGroupID.z;
    py = cls / s;
    px = cls % s;
    uint ky0 = (py + p.pad) % s;
    uint kx0 = (px + p.pad) % s;
    int base_y = int((py + p.pad - ky0) / s);
    int base_x = int((px + p.pad - kx0) / s);
    uint T = (p.k + s - 1u) / s;
    uint K = p.cin * T * T;
    uint qh = (p.oh + s - 1u) / s;
    qw = (p.ow + s - 1u) / s;
    qplane = qh * qw;
    npix = p.n * qplane;
    plane = p.oh * p.ow;
    lane_c = gl_WorkGroupID.y * BC_CHANNELS + BC_CPL * gl_SubgroupInvocationID;
    uint blocks = (p.cout + BC_CHANNELS - 1u) / BC_CHANNELS;
    uint wrow = bc_block(cls * blocks + gl_WorkGroupID.y, K);

    // The two pixels whose inputs this lane loads: valid, input origin, image base.
    uint g0 = gl_WorkGroupID.x * BC_PIXELS + gl_SubgroupInvocationID;
    uint g1 = g0 + BC_LANES;
    uint q0 = g0 % qplane;
    uint q1 = g1 % qplane;
    uint qy0 = q0 / qw;
    uint qx0 = q0 % qw;
    uint qy1 = q1 / qw;
    uint qx1 = q1 % qw;
    bool ok0 = g0 < npix && py + s * qy0 < p.oh && px + s * qx0 < p.ow;
    bool ok1 = g1 < npix && py + s * qy1 < p.oh && px + s * qx1 < p.ow;
    int iy0 = base_y + int(qy0);
    int ix0 = base_x + int(qx0);
    int iy1 = base_y + int(qy1);
    int ix1 = base_x + int(qx1);
    uint chw = p.cin * p.h * p.w;
    uint base0 = ok0 ? (g0 / qplane) * chw : 0u;
    uint base1 = ok1 ? (g1 / qplane) * chw : 0u;

    BC_ACC
    uint kk = 0u;
    for (uint ci = 0u; ci < p.cin; ++ci) {
        uint cbase = ci * p.h * p.w;
        for (uint ty = 0u; ty < T; ++ty) {
            for (uint tx = 0u; tx < T; ++tx) {
                float b0 = gather(ok0, base0 + cbase, iy0 - int(ty), ix0 - int(tx));
                float b1 = gather(ok1, base1 + cbase, iy1 - int(ty), ix1 - int(tx));
                BC_LOAD_A(wrow, kk)
                BC_STEP_ALL
                ++kk;
            }
        }
    }
    BC_OUT_ALL
}
