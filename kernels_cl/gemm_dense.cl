// The runtime's own dense GEMM: C = alpha * op(A) . B + beta * C, all row-major, op(A) = A
// (gemm_dense_nn, A is M x K) or A^T (gemm_dense_tn, A stored K x M). B^T is handled by the
// host with gemm_dense_transpose first. A CPU-style micro-kernel, not a GPU local-memory tiling:
// each work-item owns SP_GEMM_RB rows x SP_GEMM_NB vectors of SP_VEC columns of C in registers;
// per k it loads NB vectors of B and broadcasts RB scalars of A. A work-group is SP_GEMM_WG
// work-items down the rows sharing one column panel of B, which stays in cache while they run.
// Dimension 2 of the range splits K into chunks of kc (see gemm_dense_reduce); without a
// split it has size 1 and kc = K. Any M, N, K: rows past M read row M-1 and are not stored; a
// column block that runs past N does its full vectors, then the rest column by column.

#define RB SP_GEMM_RB
#define NB SP_GEMM_NB
#define CB (SP_VEC * SP_GEMM_NB)

// The register block of NV (<= NB) vectors of columns from j0: accumulate over [kb, ke), then
// store the rows below M. With NV = NB (a compile-time constant) the column tests vanish.
#define GEMM_VEC_BLOCK(A_AT, NV)                                                                  \
    {                                                                                             \
        floatv acc[RB][NB];                                                                       \
        _Pragma("unroll") for (int r = 0; r < RB; r++)                                            \
            _Pragma("unroll") for (int c = 0; c < NB; c++) acc[r][c] = (floatv)(0.0f);           \
        for (uint k = kb; k < ke; k++) {                                                          \
            floatv b[NB];                                                                         \
            _Pragma("unroll") for (int c = 0; c < NB; c++)                                        \
                b[c] = c < (NV) ? VLOAD_AT(B + (size_t)k * N + j0 + c * SP_VEC) : (floatv)(0.0f); \
            _Pragma("unroll") for (int r = 0; r < RB; r++) {                                      \
                const floatv a = (floatv)(A_AT(rows[r], k));                                      \
                _Pragma("unroll") for (int c = 0; c < NB; c++) acc[r][c] = fma(a, b[c], acc[r][c]); \
            }                                                                                     \
        }                                                                                         \
        _Pragma("unroll") for (int r = 0; r < RB; r++) {                                          \
            _Pragma("unroll") for (int c = 0; c < NB; c++) {                                      \
                if (i0 + r < M && c < (NV)) {                                                     \
                    __global float *p = C + (size_t)(i0 + r) * N + j0 + c * SP_VEC;              \
                    floatv v = (floatv)(alpha) * acc[r][c];                                       \
                    if (beta != 0.0f) v = fma((floatv)(beta), VLOAD_AT(p), v);                    \
                    VSTORE_AT(v, p);                                                              \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }

#define GEMM_DENSE(NAME, A_AT)                                                                    \
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))                                 \
void NAME(const uint M, const uint N, const uint K, const float alpha,                            \
          __global const float *restrict A, __global const float *restrict B, const float beta,   \
          __global float *restrict C, const uint kc) {                                            \
    const uint i0 = get_global_id(0) * RB;                                                        \
    const uint j0 = get_global_id(1) * CB;                                                        \
    const uint kb = get_global_id(2) * kc, ke = min(K, kb + kc);                                  \
    C += (size_t)get_global_id(2) * M * N;                                                        \
    if (i0 >= M || j0 >= N) return;                                                               \
    uint rows[RB];                                                                                \
    _Pragma("unroll") for (int r = 0; r < RB; r++) rows[r] = min(i0 + r, M - 1);                  \
    if (j0 + CB <= N) {                                                                           \
        GEMM_VEC_BLOCK(A_AT, NB)                                                                  \
        return;                                                                                   \
    }                                                                                             \
    /* the last block of a row: its full vectors (fewer than NB), then column by column */        \
    const uint nv = (N - j0) / SP_VEC;                                                            \
    if (nv > 0) GEMM_VEC_BLOCK(A_AT, nv)                                                          \
    for (uint j = j0 + nv * SP_VEC; j < N; j++) {                                                 \
        float acc[RB];                                                                            \
        _Pragma("unroll") for (int r = 0; r < RB; r++) acc[r] = 0.0f;                             \
        for (uint k = kb; k < ke; k++) {                                                          \
            const float b = B[(size_t)k * N + j];                                                 \
            _Pragma("unroll") for (int r = 0; r < RB; r++)                                        \
                acc[r] = fma(A_AT(rows[r], k), b, acc[r]);                                        \
        }                                                                                         \
        for (int r = 0; r < RB && i0 + r < M; r++) {                                              \
            __global float *p = C + (size_t)(i0 + r) * N + j;                                     \
            float v = alpha * acc[r];                                                             \
            if (beta != 0.0f) v = fma(beta, *p, v);                                               \
            *p = v;                                                                               \
        }                                                                                         \
    }                                                                                             \
}

#define A_NN(i, k) A[(size_t)(i) * K + (k)]
#define A_TN(i, k) A[(size_t)(k) * M + (i)]
GEMM_DENSE(gemm_dense_nn, A_NN)
GEMM_DENSE(gemm_dense_tn, A_TN)

// Split K: the kernels above ran over chunks of kc inner indices (dimension 2 of the range)
// into parts partial products of M x N; C = alpha * their sum + beta * C. Used when K is long
// and C small (the backward-by-weight pass: K = batch x pixels), where one chunk's panels of A
// and B stay in cache while a work-group sweeps them.
__kernel void gemm_dense_reduce(const uint n, const uint parts, __global const float *partial,
                                const float alpha, const float beta, __global float *c) {
    const uint i = get_global_id(0);
    if (i >= n) return;
    float s = 0.0f;
    for (uint p = 0; p < parts; p++) s += partial[(size_t)p * n + i];
    c[i] = beta != 0.0f ? fma(beta, c[i], alpha * s) : alpha * s;
}

// out (cols x rows) = in^T (in: rows x cols). One work-item per element; the host transposes
// only weight-sized matrices (B of C = A . B^T).
__kernel void gemm_dense_transpose(const uint rows, const uint cols, __global const float *in,
                                   __global float *out) {
    const uint j = get_global_id(0), i = get_global_id(1);
    if (i < rows && j < cols) out[(size_t)j * rows + i] = in[(size_t)i * cols + j];
}

// C = beta * C (the K = 0 case of a GEMM).
__kernel void gemm_dense_scale(const uint n, const float beta, __global float *c) {
    const uint i = get_global_id(0);
    if (i < n) c[i] = beta == 0.0f ? 0.0f : beta * c[i];
}
