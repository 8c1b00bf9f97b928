// The runtime's own dense GEMM: C = alpha * op(A) . B + beta * C, all row-major, op(A) = A
// (gemm_dense_nn, A is M x K) or A^T (gemm_dense_tn, A stored K x M). B^T is handled by the
// host with a transpose first. A CPU-style micro-kernel, not a GPU local-memory tiling: each
// work-item owns SP_GEMM_RB rows x SP_GEMM_NB vectors of SP_VEC columns of C in registers; per
// k it loads NB vectors of B and broadcasts RB scalars of A. A work-group is SP_GEMM_WG
// work-items down the rows sharing one column panel of B, which stays in cache while they run.
//
// The reduction: dimension 2 of the range cuts K into slices of kc inner indices starting at
// k0; slice s covers [k0 + s kc, k0 + (s + 1) kc) and writes its own M x N block of C (C +
// s M N), which the host sums (eltwise_sum_parts) when there is more than one. So one
// work-item runs at most 2 kc iterations of its loops (the vector block, then the partial
// vector of the last block of a row), and the host keeps kc bounded: some drivers end a
// work-item's loops after 65,535 iterations without an error. Any M, N, K: rows past M read
// row M-1 and are not stored.

#define RB SP_GEMM_RB
#define NB SP_GEMM_NB
#define CB (SP_VEC * SP_GEMM_NB)

// The register block of NV (<= NB) vectors of columns from j0, the last of them holding LAST
// (<= SP_VEC) columns: accumulate over [kb, ke), then store the rows below M. With NV = NB
// and LAST = SP_VEC (compile-time constants) the column tests vanish.
#define GEMM_VEC_BLOCK(A_AT, NV, LAST)                                                            \
    {                                                                                             \
        floatv acc[RB][NB];                                                                       \
        _Pragma("unroll") for (int r = 0; r < RB; r++)                                            \
            _Pragma("unroll") for (int c = 0; c < NB; c++) acc[r][c] = (floatv)(0.0f);           \
        for (uint k = kb; k < ke; k++) {                                                          \
            floatv b[NB];                                                                         \
            __global const float *brow = B + (size_t)k * N + j0;                                  \
            _Pragma("unroll") for (int c = 0; c < NB; c++)                                        \
                b[c] = c + 1 < (NV) ? VLOAD_AT(brow + c * SP_VEC)                                 \
                     : c + 1 == (NV) ? sp_load_part(brow + c * SP_VEC, (LAST))                    \
                                     : (floatv)(0.0f);                                            \
            _Pragma("unroll") for (int r = 0; r < RB; r++) {                                      \
                const floatv a = (floatv)(A_AT(rows[r], k));                                      \
                _Pragma("unroll") for (int c = 0; c < NB; c++) acc[r][c] = fma(a, b[c], acc[r][c]); \
            }                                                                                     \
        }                                                                                         \
        _Pragma("unroll") for (int r = 0; r < RB; r++) {                                          \
            _Pragma("unroll") for (int c = 0; c < NB; c++) {                                      \
                if (i0 + r < M && c < (NV)) {                                                     \
                    __global float *p = C + (size_t)(i0 + r) * N + j0 + c * SP_VEC;              \
                    const uint len = c + 1 < (NV) ? SP_VEC : (LAST);                              \
                    floatv v = (floatv)(alpha) * acc[r][c];                                       \
                    if (beta != 0.0f) v = fma((floatv)(beta), sp_load_part(p, len), v);           \
                    sp_store_part(v, p, len);                                                     \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }

#define GEMM_DENSE(NAME, A_AT)                                                                    \
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))                                 \
void NAME(const uint M, const uint N, const uint K, const float alpha,                            \
          __global const float *restrict A, __global const float *restrict B, const float beta,   \
          __global float *restrict C, const uint k0, const uint kc) {                             \
    const uint i0 = get_global_id(0) * RB;                                                        \
    const uint j0 = get_global_id(1) * CB;                                                        \
    const uint kb = min(K, k0 + (uint)get_global_id(2) * kc), ke = min(K, kb + kc);               \
    C += (size_t)get_global_id(2) * M * N;                                                        \
    if (i0 >= M || j0 >= N) return;                                                               \
    uint rows[RB];                                                                                \
    _Pragma("unroll") for (int r = 0; r < RB; r++) rows[r] = min(i0 + r, M - 1);                  \
    if (j0 + CB <= N) {                                                                           \
        GEMM_VEC_BLOCK(A_AT, NB, SP_VEC)                                                          \
        return;                                                                                   \
    }                                                                                             \
    /* the last block of a row: its full vectors, then one partial vector (a whole one: the     \
     * loads and stores of full vectors, with no test per lane) */                                \
    const uint rest = N - j0;                                                                     \
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;                \
    if (last == SP_VEC) {                                                                         \
        GEMM_VEC_BLOCK(A_AT, nv, SP_VEC)                                                          \
    } else {                                                                                      \
        GEMM_VEC_BLOCK(A_AT, nv, last)                                                            \
    }                                                                                             \
}

#define A_NN(i, k) A[(size_t)(i) * K + (k)]
#define A_TN(i, k) A[(size_t)(k) * M + (i)]
GEMM_DENSE(gemm_dense_nn, A_NN)
GEMM_DENSE(gemm_dense_tn, A_TN)
