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
//
// Both kernels call one body (sp_gemm_dense) with a constant transpose flag, which the compiler
// specialises.

#define RB SP_GEMM_RB
#define NB SP_GEMM_NB
#define CB (SP_VEC * SP_GEMM_NB)

// The operands, as the kernels receive them (C: this slice's block of it).
typedef struct sp_gemm {
    uint M, N, K;
    float alpha;
    __global const float *A, *B;
    float beta;
    __global float *C;
} sp_gemm;

// Element (i, k) of op(A): A is M x K, or with ta stored transposed, K x M. One index with the
// strides of either (a choice between two loads in the k loop, optimised before ta is known,
// left the loop an index sum per row of the block).
SP_INLINE float sp_a_at(const sp_gemm g, const bool ta, const uint i, const uint k) {
    const size_t si = ta ? 1 : g.K, sk = ta ? g.M : 1;
    return g.A[(size_t)i * si + (size_t)k * sk];
}

// The register block of nv (<= NB) vectors of columns from j0 and the rows i0.. (rows: their
// indices, clamped below M), the last vector holding last (<= SP_VEC) columns: accumulate over
// [kb, ke), then store the rows below M. With nv = NB and last = SP_VEC (constants) the column
// tests vanish.
SP_INLINE void sp_dense_block(const sp_gemm g, const bool ta, const uint i0, const uint j0,
                              const uint *rows, const uint kb, const uint ke, const uint nv,
                              const uint last) {
    floatv acc[RB][NB];
#pragma unroll
    for (int r = 0; r < RB; r++) {
#pragma unroll
        for (int c = 0; c < NB; c++) acc[r][c] = (floatv)(0.0f);
    }
    for (uint k = kb; k < ke; k++) {
        floatv b[NB];
        __global const float *brow = g.B + (size_t)k * g.N + j0;
#pragma unroll
        for (int c = 0; c < NB; c++)
            b[c] = c + 1 < nv    ? VLOAD_AT(brow + c * SP_VEC)
                   : c + 1 == nv ? sp_load_part(brow + c * SP_VEC, last)
                                 : (floatv)(0.0f);
#pragma unroll
        for (int r = 0; r < RB; r++) {
            const floatv a = (floatv)(sp_a_at(g, ta, rows[r], k));
#pragma unroll
            for (int c = 0; c < NB; c++) acc[r][c] = fma(a, b[c], acc[r][c]);
        }
    }
#pragma unroll
    for (int r = 0; r < RB; r++) {
#pragma unroll
        for (int c = 0; c < NB; c++) {
            if (i0 + r < g.M && c < nv) {
                __global float *p = g.C + (size_t)(i0 + r) * g.N + j0 + c * SP_VEC;
                const uint len = c + 1 < nv ? SP_VEC : last;
                floatv v = (floatv)(g.alpha) * acc[r][c];
                if (g.beta != 0.0f) v = fma((floatv)(g.beta), sp_load_part(p, len), v);
                sp_store_part(v, p, len);
            }
        }
    }
}

// This work-item's RB rows x CB columns of C, over its slice of K (see the top of the file).
SP_INLINE void sp_gemm_dense(const bool ta, const uint M, const uint N, const uint K,
                             const float alpha, __global const float *A,
                             __global const float *B, const float beta, __global float *C,
                             const uint k0, const uint kc) {
    const uint i0 = get_global_id(0) * RB;
    const uint j0 = get_global_id(1) * CB;
    const uint kb = min(K, k0 + (uint)get_global_id(2) * kc), ke = min(K, kb + kc);
    const sp_gemm g = {M, N, K, alpha, A, B, beta, C + (size_t)get_global_id(2) * M * N};
    if (i0 >= M || j0 >= N) return;
    uint rows[RB];
#pragma unroll
    for (int r = 0; r < RB; r++) rows[r] = min(i0 + r, M - 1);
    if (j0 + CB <= N) {
        sp_dense_block(g, ta, i0, j0, rows, kb, ke, NB, SP_VEC);
        return;
    }
    // the last block of a row: its full vectors, then one partial vector (a whole one: the loads
    // and stores of full vectors, with no test per lane)
    const uint rest = N - j0;
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    if (last == SP_VEC)
        sp_dense_block(g, ta, i0, j0, rows, kb, ke, nv, SP_VEC);
    else
        sp_dense_block(g, ta, i0, j0, rows, kb, ke, nv, last);
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_dense_nn(const uint M, const uint N, const uint K, const float alpha,
                   __global const float *restrict A, __global const float *restrict B,
                   const float beta, __global float *restrict C, const uint k0, const uint kc) {
    sp_gemm_dense(false, M, N, K, alpha, A, B, beta, C, k0, kc);
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_dense_tn(const uint M, const uint N, const uint K, const float alpha,
                   __global const float *restrict A, __global const float *restrict B,
                   const float beta, __global float *restrict C, const uint k0, const uint kc) {
    sp_gemm_dense(true, M, N, K, alpha, A, B, beta, C, k0, kc);
}
