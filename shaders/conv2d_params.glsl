// Shared by the Conv2d kernels (conv2d.comp, conv2d_tiled.comp, conv2d_bcast.glsl), included
// after common.glsl: their push constants (one generated struct, `Conv2dParams`) and the
// joined shortcut.
//
// Joined shortcut (runtime/src/vulkan/fused.rs, `Kind::Shortcut`): a residual block's 1×1
// unpadded shortcut conv computed inside the block's own conv as extra reduction steps
// (concatenated along K), instead of a separate dispatch whose output is added as the residual.
// The GEMM has K = cin*k*k + cin2 steps; step cin*k*k + c reads channel c of the shortcut's
// input x2 at (oy*stride2, ox*stride2), with the shortcut's own prologue. The host passes the
// weights concatenated along K, [cout][cin*k*k + cin2], and the two biases summed. cin2 = 0:
// no shortcut (bindings 7-9 are placeholders then).
layout(set = 0, binding = 7) readonly buffer X2 { STORE_T x2[]; };
layout(set = 0, binding = 8) readonly buffer PScale2 { STORE_T pscale2[]; };
layout(set = 0, binding = 9) readonly buffer PShift2 { STORE_T pshift2[]; };

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
    // The joined shortcut: its input channels and size, stride and prologue.
    uint cin2;
    uint h2;
    uint w2;
    uint stride2;
    uint has_prologue2;
    uint prologue2_relu;
    // LAYOUT_* bits (common.glsl): which buffers are channel-packed (tiled kernel only).
    uint packing;
} p;

// The joined shortcut's prologue of its input channel c2.
float shortcut_prologue(float v, uint c2) {
    if (p.has_prologue2 != 0u) {
        v = v * float(pscale2[c2]) + float(pshift2[c2]);
        if (p.prologue2_relu != 0u) {
            v = max(v, 0.0);
        }
    }
    return v;
}

// The joined shortcut's input value of channel c2 for output pixel (oy, ox) of image b.
float shortcut_value(uint b, uint c2, uint oy, uint ox) {
    uint iy = oy * p.stride2;
    uint ix = ox * p.stride2;
    uint at = (p.packing & LAYOUT_X2) != 0u ? ((b * p.h2 + iy) * p.w2 + ix) * p.cin2 + c2
                                           : ((b * p.cin2 + c2) * p.h2 + iy) * p.w2 + ix;
    return shortcut_prologue(float(x2[at]), c2);
}
