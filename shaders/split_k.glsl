// The split-K hand-over of the GEMM cores (tiled_gemm.glsl, fragment_gemm.glsl): with S > 1
// workgroups per tile, each stores its raw partial sums to `part` and counts itself in on the
// tile's arrival counter; the last of the S to arrive adds the partials (in split order) and
// applies the epilogue, and resets the counter for the next dispatch. A tile is (x, y, layer).
// Uses the including kernel's `counter` buffer.
//
// Every invocation's partial sums are made visible device-wide before invocation 0 counts the
// workgroup in, and the last to arrive sees all of them. The cooperative-matrix kernels
// (HOOD_COOPMAT) run under the Vulkan memory model, which the extension requires, so there the
// barrier and the counting atomic carry device-scope acquire-release semantics explicitly.
shared uint last_split;

void split_barrier() {
#ifdef HOOD_COOPMAT
    controlBarrier(gl_ScopeWorkgroup, gl_ScopeDevice,
                   gl_StorageSemanticsBuffer | gl_StorageSemanticsShared,
                   gl_SemanticsAcquireRelease);
#else
    memoryBarrierBuffer();
    barrier();
    memoryBarrierBuffer();
#endif
}

uint split_arrive(uint tile) {
#ifdef HOOD_COOPMAT
    return atomicAdd(counter[tile], 1u, gl_ScopeDevice, gl_StorageSemanticsBuffer,
                     gl_SemanticsAcquireRelease);
#else
    return atomicAdd(counter[tile], 1u);
#endif
}

// Whether this workgroup is the last of `nsplit` to arrive at its tile of tile layer `layer`
// (the one that sums the partials). Called by the whole workgroup after its partials are stored.
bool split_k_last(uint layer, uint nsplit) {
    split_barrier();
    if (gl_LocalInvocationID.x == 0u) {
        uint tile = (layer * gl_NumWorkGroups.y + gl_WorkGroupID.y) * gl_NumWorkGroups.x
            + gl_WorkGroupID.x;
        last_split = split_arrive(tile) == nsplit - 1u ? 1u : 0u;
        if (last_split != 0u) {
            atomicExchange(counter[tile], 0u);
        }
    }
    split_barrier();
    return last_split != 0u;
}
