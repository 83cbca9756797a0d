#version 450
#extension GL_GOOGLE_include_directive : require
// Conv2d as a register-broadcast implicit GEMM for CPU Vulkan implementations (lavapipe):
// see bcast_gemm.glsl. Same fused prologue / bias / residual / ReLU as conv2d.comp, same
// push constants; binding 1 holds the weights packed by runtime/src/vulkan/bcast.rs.
//   C[co, pix] = sum_kk A[co, kk] * B[kk, pix],  kk = (ci, ky, kx),
//   B[kk, (b, oy, ox)] = prologue(x[b, ci, oy*s-p+ky, ox*s-p+kx]) (0 in the padding).
// Workgroup grid: x = ceil(n*oh*ow / 16), y = ceil(cout / 64) (`groups` in bcast.rs).
#include "common.glsl"
#include "bcast_gemm.glsl"

layout(local_size_x = 8) in; // BC_LANES: one subgroup

layout(set = 0, binding = 0) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 2) readonly buffer Bias { STORE_T bias[]; };
layout(set = 0, binding = 3) readonly buffer Residual { STORE_T residual[]; };
layout(set = 0, binding = 4) readonly buffer PScale { STORE_T pscale[]; };
layout(set = 0, binding = 5) readonly buffer PShift { STORE_T pshift[]; };
layout(set = 0, binding = 6) writeonly buffer Y { STORE_T y[]; };

// Identical to conv2d.comp's block (one generated struct for all Conv2d kernels).
layout(push_constant) uniform Conv2dParams {
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
    uint has_residual;
    uint relu;
    uint has_prologue;
    uint prologue_relu;
} p;

uint plane;
uint npix;
uint g0; // this lane's two output pixels (flat over the batch)
uint g1;

void emit_one(uint co, uint g, float v) {
    if (g >= npix) {
        return;
    }
    uint o = ((g / plane) * p.cout + co) * plane + g % plane;
    if (p.has_residual != 0u) {
        v += float(residual[o]);
    }
    if (p.relu != 0u) {
        v = max(v, 0.0);
    }
    y[o] = STORE_T(v);
}

void emit(uint co, vec2 v) {
    if (co < p.cout) {
        float bv = p.has_bias != 0u ? float(bias[co]) : 0.0;
        emit_one(co, g0, v.x + bv);
        emit_one(co, g1, v.y + bv);
    }
}

// The im2col value of (ci, iy, ix) for one pixel: 0 outside the input.
float gather(bool ok, uint base, int iy, int ix, float sc, float sh) {
    float v = 0.0;
    if (ok && iy >= 0 && iy < int(p.h) && ix >= 0 && ix < int(p.w)) {
        v = float(x[base + uint(iy) * p.w + uint(ix)]);
        if (p.has_prologue != 0u) {
            v = v * sc + sh;
            if (p.prologue_relu != 0u) {
                v = max(v, 0.0);
            }
        }
    }
    return v;
}

void main() {
    plane = p.oh * p.ow;
    npix = p.n * plane;
    uint K = p.cin * p.k * p.k;
    uint c0 = gl_WorkGroupID.y * BC_CHANNELS;
    uint wrow = bc_block(gl_WorkGroupID.y, K);
    g0 = gl_WorkGroupID.x * BC_PIXELS + gl_SubgroupInvocationID;
    g1 = g0 + BC_LANES;

    // Per pixel: valid, input origin, image base.
    bool ok0 = g0 < npix;
    bool ok1 = g1 < npix;
    uint q0 = ok0 ? g0 % plane : 0u;
    uint q1 = ok1 ? g1 % plane : 0u;
    int iy0 = int((q0 / p.ow) * p.stride) - int(p.pad);
    int ix0 = int((q0 % p.ow) * p.stride) - int(p.pad);
    int iy1 = int((q1 / p.ow) * p.stride) - int(p.pad);
    int ix1 = int((q1 % p.ow) * p.stride) - int(p.pad);
    uint chw = p.cin * p.h * p.w;
    uint base0 = ok0 ? (g0 / plane) * chw : 0u;
    uint base1 = ok1 ? (g1 / plane) * chw : 0u;

    vec4 acc[32] = vec4[32](BC_ZERO8, BC_ZERO8, BC_ZERO8, BC_ZERO8);

    uint kk = 0u;
    for (uint ci = 0u; ci < p.cin; ++ci) {
        float sc = 1.0;
        float sh = 0.0;
        if (p.has_prologue != 0u) {
            sc = float(pscale[ci]);
            sh = float(pshift[ci]);
        }
        uint cbase = ci * p.h * p.w;
        for (uint ky = 0u; ky < p.k; ++ky) {
            for (uint kx = 0u; kx < p.k; ++kx) {
                float b0 = gather(ok0, base0 + cbase, iy0 + int(ky), ix0 + int(kx), sc, sh);
                float b1 = gather(ok1, base1 + cbase, iy1 + int(ky), ix1 + int(kx), sc, sh);
                vec4 bb = vec4(b0, b1, b0, b1);
                BC_LOAD_A(wrow, kk)
                BC_STEP_ALL
                ++kk;
            }
        }
    }
    BC_OUT_ALL
}
