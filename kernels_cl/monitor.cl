// The sparsity monitor. A rows x cols matrix is cut into tiles of SP_TILE_ROWS x SP_TILE_COLS;
// one work-item counts the non-zeros of one tile (and, in monitor_relu, writes y = max(z, 0) in
// the same pass: the ReLU already reads and writes every element, the count rides along;
// monitor_bias_relu adds the previous GEMM's bias first, y = max(z + b, 0), so the bias costs no
// pass of its own). The
// counts of a work-group are then reduced in local memory and written once per group, so the
// policy reads a few KB of partial sums, never the activation. Tile counts stay on the device
// for the compaction (compact.cl). Zero means +0.0 or -0.0; a NaN counts as non-zero.
//
// The kernels call one body (sp_monitor) with constant relu and bias flags.

#define TR SP_TILE_ROWS
#define TC SP_TILE_COLS
// A vector comparison gives -1 per true lane, a scalar one (SP_VEC == 1) gives 1.
#if SP_VEC == 1
#define NZ_SIGN 1
#else
#define NZ_SIGN (-1)
#endif

// The non-zeros of tile t of z (rows x cols, tiles_c tiles per row), after y = max(z, 0) over
// the tile with relu (y = max(z + b[col], 0) with bias_on). A whole tile row is read as vectors, a
// tile cut at the right edge element by element.
SP_INLINE uint sp_count_tile(__global const float *z, __global float *y, __global const float *b,
                             const uint rows, const uint cols, const uint tiles_c, const uint t,
                             const bool relu, const bool bias_on) {
    const uint r0 = (t / tiles_c) * TR, c0 = SP_REM(t, tiles_c) * TC;
    const uint rend = min(r0 + TR, rows), cend = min(c0 + TC, cols);
    uint cnt = 0;
    if (cend - c0 == TC && TC % SP_VEC == 0) {
        intv nz = (intv)(0);
        for (uint r = r0; r < rend; r++) {
            const size_t o = (size_t)r * cols + c0;
#pragma unroll
            for (uint c = 0; c < TC; c += SP_VEC) {
                floatv v = VLOAD_AT(z + o + c);
                if (bias_on) v += VLOAD_AT(b + c0 + c);
                if (relu) {
                    v = select(v, (floatv)(0.0f), v < (floatv)(0.0f));
                    VSTORE_AT(v, y + o + c);
                }
                nz += (intv)(v != (floatv)(0.0f));
            }
        }
        cnt = (uint)(NZ_SIGN * VSUM(nz));
    } else {
        for (uint r = r0; r < rend; r++) {
            for (uint c = c0; c < cend; c++) {
                const size_t o = (size_t)r * cols + c;
                float v = z[o];
                if (bias_on) v += b[c];
                if (relu) {
                    v = v < 0.0f ? 0.0f : v;
                    y[o] = v;
                }
                cnt += v != 0.0f;
            }
        }
    }
    return cnt;
}

// One work-item per tile: its count into counts, then the work-group's sum into partials (a tree
// in local memory: sums, SP_WG uints).
SP_INLINE void sp_monitor(__global const float *z, __global float *y, __global const float *b,
                          const uint rows, const uint cols, const uint tiles_c, const uint ntiles,
                          __global uint *counts, __global uint *partials, __local uint *sums,
                          const bool relu, const bool bias_on) {
    const uint t = get_global_id(0), lid = get_local_id(0);
    uint cnt = 0;
    if (t < ntiles) {
        cnt = sp_count_tile(z, y, b, rows, cols, tiles_c, t, relu, bias_on);
        counts[t] = cnt;
    }
    sums[lid] = cnt;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = SP_WG / 2; s > 0; s >>= 1) {
        if (lid < s) sums[lid] += sums[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) partials[get_group_id(0)] = sums[0];
}

__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void monitor_relu(__global const float *z, __global float *y, const uint rows, const uint cols,
                  const uint tiles_c, const uint ntiles, __global uint *counts,
                  __global uint *partials) {
    __local uint sums[SP_WG];
    sp_monitor(z, y, z, rows, cols, tiles_c, ntiles, counts, partials, sums, true, false);
}

__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void monitor_bias_relu(__global const float *z, __global float *y, const uint rows,
                       const uint cols, const uint tiles_c, const uint ntiles,
                       __global uint *counts, __global uint *partials, __global const float *b) {
    __local uint sums[SP_WG];
    sp_monitor(z, y, b, rows, cols, tiles_c, ntiles, counts, partials, sums, true, true);
}

__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void monitor_count(__global const float *z, __global float *y, const uint rows, const uint cols,
                   const uint tiles_c, const uint ntiles, __global uint *counts,
                   __global uint *partials) {
    __local uint sums[SP_WG];
    sp_monitor(z, y, z, rows, cols, tiles_c, ntiles, counts, partials, sums, false, false);
}
