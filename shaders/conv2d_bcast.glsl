// Conv2d as a register-broadcast implicit GEMM for CPU Vulkan implementations (lavapipe):
// see bcast_gemm.glsl. Same fused prologue / bias / residual / ReLU / joined shortcut as
// conv2d.comp, same push constants and bindings 0-9; binding 1 holds the weights packed by
// runtime/src/vulkan/bcast.rs (the joined shortcut's rows after the conv's own).
//   C[co, pix] = sum_kk A[co, kk] * B[kk, pix],  kk = (ci, ky, kx),
//   B[kk, (b, oy, ox)] = prologue(x[b, ci, oy*s-p+ky, ox*s-p+kx]) (0 in the padding).
// Workgroup grid: x = ceil(n*oh*ow / 16), y = ceil(cout / (8 * BC_CPL)) (`groups` in bcast.rs).

layout(set = 0, binding = 0) readonly buffer X { STORE_T x[]; };
layout(set = 0, binding = 2) readonly buffer Bias { STORE_T bias[]; };
layout(set = 0, binding = 3) readonly buffer Residual { STORE_T residual[]; };
layout(set = 0, binding = 4) readonly buffer PScale { STORE_T pscale[]; };
layout(set = 0, binding = 5) readonly buffer PShift { STORE_T pshift[]; };
layout(set = 0, binding = 6) writeonly buffer Y { STORE_T y[]; };

#include "conv2d_params.glsl"

// Specialisations (runtime/src/vulkan/kernels.rs, `ConvSpec`): kernel size and stride as
// specialization constants, so the driver's compiler sees constant loop bounds and divisors
// (3x3 and 1x1 at stride 1 and 2); 0 = the generic pipeline, which reads them from the push
// constants. HOOD_VK_NO_SPECIALISED=1 uses the generic pipeline for every conv.
layout(constant_id = 0) const uint SPEC_K = 0u;
layout(constant_id = 1) const uint SPEC_STRIDE = 0u;

uint plane;
uint npix;
uint lane_c; // this lane's first output channel

void emit1(uint co, uint obase, float v) {
    uint o = obase + co * plane;
    if (p.has_residual != 0u) {
        v += float(residual[o]);
    }
    if (p.relu != 0u) {
        v = max(v, 0.0);
    }
    y[o] = STORE_T(v);
}

uint out_base(uint P) {
    uint g = gl_WorkGroupID.x * BC_PIXELS + P;
    return g < npix ? (g / plane) * p.cout * plane + g % plane : BC_NO_PIXEL;
}

#include "bcast_epilogue.glsl"

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
    uint ks = SPEC_K != 0u ? SPEC_K : p.k;
    uint st = SPEC_STRIDE != 0u ? SPEC_STRIDE : p.stride;
    plane = p.oh * p.ow;
    npix = p.n * plane;
    uint K = p.cin * ks * ks + p.cin2; // the joined shortcut's steps last
    lane_c = gl_WorkGroupID.y * BC_CHANNELS + BC_CPL * gl_SubgroupInvocationID;
    uint wrow = bc_block(gl_WorkGroupID.y, K);
    uint g0 = gl_WorkGroupID.x * BC_PIXELS + gl_SubgroupInvocationID;
    uint g1 = g0 + BC_LANES;

    // Per pixel: valid, input origin, image base.
    bool ok0 = g0 < npix;
    bool ok1 = g1 < npix;
    uint q0 = ok0 ? g0 % plane : 0u;
    uint q1 = ok1 ? g1 % plane : 0u;
    uint oy0 = q0 / p.ow, ox0 = q0 % p.ow;
    uint oy1 = q1 / p.ow, ox1 = q1 % p.ow;
    int iy0 = int(oy0 * st) - int(p.pad);
    int ix0 = int(ox0 * st) - int(p.pad);
    int iy1 = int(oy1 * st) - int(p.pad);
    int ix1 = int(ox1 * st) - int(p.pad);
    uint chw = p.cin * p.h * p.w;
    uint base0 = ok0 ? (g0 / plane) * chw : 0u;
    uint base1 = ok1 ? (g1 / plane) * chw : 0u;

    BC_ACC

    uint kk = 0u;
    for (uint ci = 0u; ci < p.cin; ++ci) {
        float sc = 1.0;
        float sh = 0.0;
        if (p.has_prologue != 0u) {
            sc = float(pscale[ci]);
            sh = float(pshift[ci]);
        }
        uint cbase = ci * p.h * p.w;
        for (uint ky = 0u; ky < ks; ++ky) {
            for (uint kx = 0u; kx < ks; ++kx) {
                float b0 = gather(ok0, base0 + cbase, iy0 + int(ky), ix0 + int(kx), sc, sh);
                float b1 = gather(ok1, base1 + cbase, iy1 + int(ky), ix1 + int(kx), sc, sh);
                BC_LOAD_A(wrow, kk)
                BC_STEP_ALL
                ++kk;
            }
        }
    }
    // The joined shortcut (conv2d_params.glsl): one more step per channel of its input.
    uint img0 = ok0 ? g0 / plane : 0u;
    uint img1 = ok1 ? g1 / plane : 0u;
    for (uint c2 = 0u; c2 < p.cin2; ++c2) {
        float b0 = ok0 ? shortcut_value(img0, c2, oy0, ox0) : 0.0;
        float b1 = ok1 ? shortcut_value(img1, c2, oy1, ox1) : 0.0;
        BC_LOAD_A(wrow, kk)
        BC_STEP_ALL
        ++kk;
    }
    BC_OUT_ALL
}
