// Shared by every hood kernel: storage type, flat invocation index, activations.
//
// One source, two variants (three for the element-wise kernels, see MATH_T) chosen by the
// compiler's defines:
//   HOOD_FP16 defined  -> activations and weights stored as float16_t (needs the
//                         device feature storageBuffer16BitAccess); arithmetic and
//                         accumulation stay fp32.
//   otherwise          -> fp32 storage.
// `STORE_T` is the element type of activation and weight buffers. Class indices are
// always int, HEAT score and heatmap outputs are always float.
#ifdef HOOD_FP16
#extension GL_EXT_shader_16bit_storage : require
#define STORE_T float16_t
#else
#define STORE_T float
#endif

// Values of the storage type per 16-byte vector (uvec4 loads of a storage buffer).
#ifdef HOOD_FP16
#define VEC16_LEN 8u
#else
#define VEC16_LEN 4u
#endif

// Element e of a 16-byte vector of stored values.
float vec16_elem(uvec4 v, uint e) {
#ifdef HOOD_FP16
    return unpackHalf2x16(v[e >> 1u])[e & 1u];
#else
    return uintBitsToFloat(v[e]);
#endif
}

// `MATH_T`: the arithmetic type of the add and max-pool kernels. float16_t only in the
// third variant, HOOD_FP16_MATH (fp16 storage and the device feature shaderFloat16;
// runtime/src/vulkan/pipelines.rs), where it is safe: an fp16 add (IEEE, correctly rounded)
// or max of two fp16 values gives exactly what fp32 arithmetic rounded to fp16 gives (fp32
// has more than 2*11+2 significand bits, so that double rounding is innocuous), so the
// results are bit-identical (runtime/tests/vulkan_ops.rs checks it). Everything else, every
// product and every accumulation stays fp32.
#ifdef HOOD_FP16_MATH
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define MATH_T float16_t
#else
#define MATH_T float
#endif

// Workgroup size of the one-invocation-per-element kernels; the host side uses
// `LOCAL_SIZE` = 64 in runtime/src/vulkan/pipelines.rs.
#define HOOD_LOCAL_SIZE 64

// Flat index of this invocation over a 2-D grid of workgroups (the host splits large
// dispatches over y because the x group count is limited to 65535).
uint flat_id() {
    return (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * HOOD_LOCAL_SIZE
        + gl_LocalInvocationID.x;
}

// Activation layouts of the tiled conv kernels (push constant `packing`; the host's plan,
// runtime/src/vulkan/plan.rs `packed_values`): a set bit means that buffer holds its values
// channel-packed, NHWC ([n][h][w][c]), else NCHW. Only the tiled kernels are handed set bits.
#define LAYOUT_X 1u    // the input
#define LAYOUT_X2 2u   // a joined shortcut's input
#define LAYOUT_SIDE 4u // the residual (Conv2d) or the forwarded feature (ConvTranspose2d)
#define LAYOUT_Y 8u    // the output

// Activation codes, shared with `ops::Activation` through pipelines.rs.
#define ACT_NONE 0u
#define ACT_RELU 1u
#define ACT_TANH 2u

float activate(float v, uint act) {
    if (act == ACT_RELU) {
        return max(v, 0.0);
    } else if (act == ACT_TANH) {
        return tanh(v);
    }
    return v;
}
