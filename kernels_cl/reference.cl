// Reference kernels: the plainest correct forms of the dense GEMM and of the monitor's count,
// for a device where the tuned families fail to build or to validate (runtime/ops/reference.c
// launches them; runtime/ops/selftest.c decides). Scalar code, one output per work-item, no
// vectors, no local memory, no barriers; their loops are bounded like every other kernel's
// (the host cuts K into slices, and a tile holds at most 8192 elements).

// C = alpha * op(A) . op(B) + beta * C over the K slice [k0 + s kc, + kc), s = get_global_id(2),
// into C + s M N. op(A) is A (M x K) or, with ta, A^T (A stored K x M); op(B) is B (K x N) or,
// with tb, B^T (B stored N x K). One work-item per element of C (dimension 0: columns).
__kernel void reference_gemm(const uint M, const uint N, const uint K, const float alpha,
                             __global const float *A, const uint ta, __global const float *B,
                             const uint tb, const float beta, __global float *C, const uint k0,
                             const uint kc) {
    const uint j = get_global_id(0), i = get_global_id(1);
    const uint kb = min(K, k0 + (uint)get_global_id(2) * kc), ke = min(K, kb + kc);
    C += (size_t)get_global_id(2) * M * N;
    if (i >= M || j >= N) return;
    float s = 0.0f;
    for (uint k = kb; k < ke; k++) {
        const float a = ta ? A[(size_t)k * M + i] : A[(size_t)i * K + k];
        const float b = tb ? B[(size_t)j * K + k] : B[(size_t)k * N + j];
        s = fma(a, b, s);
    }
    __global float *p = C + (size_t)i * N + j;
    const float v = alpha * s;
    *p = beta != 0.0f ? fma(beta, *p, v) : v;
}

// The non-zero count of every tile of a rows x cols matrix, one work-item per tile; with relu,
// y = max(z, 0) first (NaN kept). Zero means +0.0 or -0.0.
__kernel void reference_count(__global const float *z, __global float *y, const uint rows,
                              const uint cols, const uint tiles_c, const uint ntiles,
                              const uint relu, __global uint *counts) {
    const uint t = get_global_id(0);
    if (t >= ntiles) return;
    const uint r0 = (t / tiles_c) * SP_TILE_ROWS, c0 = SP_REM(t, tiles_c) * SP_TILE_COLS;
    const uint rend = min(r0 + SP_TILE_ROWS, rows), cend = min(c0 + SP_TILE_COLS, cols);
    uint cnt = 0;
    for (uint r = r0; r < rend; r++) {
        for (uint c = c0; c < cend; c++) {
            const size_t o = (size_t)r * cols + c;
            float v = z[o];
            if (relu) {
                v = v < 0.0f ? 0.0f : v;
                y[o] = v;
            }
            cnt += v != 0.0f;
        }
    }
    counts[t] = cnt;
}

// partials[g] = counts[g wg] + ... + counts[(g + 1) wg - 1] (the monitor's per-work-group sums).
__kernel void reference_partials(__global const uint *counts, const uint ntiles, const uint wg,
                                 const uint groups, __global uint *partials) {
    const uint g = get_global_id(0);
    if (g >= groups) return;
    const uint b = g * wg, e = min(ntiles, b + wg);
    uint s = 0;
    for (uint t = b; t < e; t++) s += counts[t];
    partials[g] = s;
}
