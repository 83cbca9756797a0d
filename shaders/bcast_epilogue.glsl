// The shared end of the conv2d_bcast / conv_transpose2d_bcast kernels, included after the
// kernel's declarations. The kernel defines
//   `uint out_base(uint P)`: flat output index of channel 0 at pixel P of the workgroup's
//                            block, BC_NO_PIXEL (bcast_gemm.glsl) where that pixel is outside the output;
//   `void emit1(uint co, uint obase, float v)`: its epilogue (residual / activation / feature
//                            add) of v = accumulator + bias and the store, for co < cout;
// and the push constants `p.has_bias`, `p.cout` and the `bias` buffer. BC_OUT_ALL
// (bcast_gemm.glsl) calls `bias4` and `emit`.
float bias_of(uint co) {
    return p.has_bias != 0u && co < p.cout ? float(bias[co]) : 0.0;
}

vec4 bias4(uint c) {
    return vec4(bias_of(c), bias_of(c + 1u), bias_of(c + 2u), bias_of(c + 3u));
}

void emit_channel(uint co, uint obase, float v) {
    if (co < p.cout) {
        emit1(co, obase, v);
    }
}

// Stores channels c..c+7 of this lane (accumulators lo, hi; biases blo, bhi) at pixel P.
void emit(uint P, uint c, vec4 lo, vec4 hi, vec4 blo, vec4 bhi) {
    uint obase = out_base(P);
    if (obase == BC_NO_PIXEL) {
        return;
    }
    lo += blo;
    hi += bhi;
    emit_channel(c, obase, lo.x);
    emit_channel(c + 1u, obase, lo.y);
    emit_channel(c + 2u, obase, lo.z);
    emit_channel(c + 3u, obase, lo.w);
    emit_channel(c + 4u, obase, hi.x);
    emit_channel(c + 5u, obase, hi.y);
    emit_channel(c + 6u, obase, hi.z);
    emit_channel(c + 7u, obase, hi.w);
}
