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
//
// Tile dropout (Approximate Random Dropout's tile kind; runtime/nn/layers/dropout.c): the
// gemm_tiles_* kernels take the weight matrix W (K x N) cut into tiles of S x S, S a multiple of
// the register block's width CB (so a work-item's column panel lies in one column of tiles), and
// skip the dropped ones. The tiles are numbered down the columns, i = r + c R (R = ceil(K / S)
// rows of tiles), and tile i is kept when ((i - offset) mod n) mod period <
// keep, n the tile count: a row pattern (runtime/nn/ard.c) over the tiles, so each column of
// tiles keeps a regular pattern of its rows, turned by c R against the first. Three uses:
// Y = X W (gemm_tiles_nn: a work-item's column panel is a tile column, its k loop skips dropped
// tile rows), dX = dY W^T (gemm_tiles_nt, B = W^T: its panel is a tile row, the k loop skips
// dropped tile columns; or gemm_tiles_wa, dX^T = W dY^T: a register block's rows lie in one row
// of tiles, its k loop skips the dropped tile columns) and dW = X^T dY (gemm_tiles_tn: dropped
// tiles of C computed as 0, a register block wholly inside them skips its k loop).

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

// The tile pattern of the gemm_tiles_* kernels, and which operand W is (the `tiles` argument of
// the bodies below, a constant in each kernel).
#define SP_TILES_NONE 0   // the plain GEMM
#define SP_TILES_B 1      // B = W: the k loop skips dropped tile rows
#define SP_TILES_BT 2     // B = W^T: the k loop skips dropped tile columns
#define SP_TILES_C 3      // C = W: dropped tiles stored as 0
#define SP_TILES_A 4      // A = W: the k loop skips the block's row of tiles' dropped columns
#define SP_TILES_C_KEPT 5 // C = W: dropped tiles not stored
typedef struct sp_tiles {
    uint size, rows, n, period, keep, offset;
} sp_tiles;

SP_INLINE bool sp_tile_kept(const sp_tiles t, const uint r, const uint c) {
    const uint i = r + c * t.rows, u = i >= t.offset ? i - t.offset : i + t.n - t.offset;
    return u % t.period < t.keep;
}

// One k of the register block below: NB vectors of B's row k, times each row's A(row, k).
SP_INLINE void sp_dense_step(const sp_gemm g, const bool ta, const uint j0, const uint *rows,
                             const uint k, const uint nv, const uint last, floatv (*acc)[NB]) {
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

// The register block of nv (<= NB) vectors of columns from j0 and the rows i0.. (rows: their
// indices, clamped below M), the last vector holding last (<= SP_VEC) columns: accumulate over
// [kb, ke), then store the rows below M. With nv = NB and last = SP_VEC (constants) the column
// tests vanish. tiles (a constant SP_TILES_*) and t: the tile dropout above.
SP_INLINE void sp_dense_block(const sp_gemm g, const bool ta, const uint i0, const uint j0,
                              const uint *rows, const uint kb, uint ke, const uint nv,
                              const uint last, const int tiles, const sp_tiles t) {
    floatv acc[RB][NB];
#pragma unroll
    for (int r = 0; r < RB; r++) {
#pragma unroll
        for (int c = 0; c < NB; c++) acc[r][c] = (floatv)(0.0f);
    }
    const bool c_is_w = tiles == SP_TILES_C || tiles == SP_TILES_C_KEPT;
    bool row_kept[RB];
#pragma unroll
    for (int r = 0; r < RB; r++)
        row_kept[r] = !c_is_w || sp_tile_kept(t, rows[r] / t.size, j0 / t.size);
    if (c_is_w) {
        bool any = false;
#pragma unroll
        for (int r = 0; r < RB; r++) any = any || row_kept[r];
        if (!any && tiles == SP_TILES_C_KEPT) return;
        if (!any) ke = kb;
    }
    if (tiles == SP_TILES_B || tiles == SP_TILES_BT || tiles == SP_TILES_A) {
        // k's tile row (B) or column (BT, A): whole blocks of the tile size skipped; A: the
        // block's rows are W's, all in one row of tiles (the host checks RB divides the tile)
        for (uint k = kb; k < ke;) {
            const uint blk = k / t.size, kend = min(ke, (blk + 1) * t.size);
            if (tiles == SP_TILES_B    ? sp_tile_kept(t, blk, j0 / t.size)
                : tiles == SP_TILES_BT ? sp_tile_kept(t, j0 / t.size, blk)
                                       : sp_tile_kept(t, rows[0] / t.size, blk))
                for (; k < kend; k++) sp_dense_step(g, ta, j0, rows, k, nv, last, acc);
            k = kend;
        }
    } else {
        for (uint k = kb; k < ke; k++) sp_dense_step(g, ta, j0, rows, k, nv, last, acc);
    }
#pragma unroll
    for (int r = 0; r < RB; r++) {
#pragma unroll
        for (int c = 0; c < NB; c++) {
            if (i0 + r < g.M && c < nv && (tiles != SP_TILES_C_KEPT || row_kept[r])) {
                __global float *p = g.C + (size_t)(i0 + r) * g.N + j0 + c * SP_VEC;
                const uint len = c + 1 < nv ? SP_VEC : last;
                floatv v = row_kept[r] ? (floatv)(g.alpha) * acc[r][c] : (floatv)(0.0f);
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
                             const uint k0, const uint kc, const int tiles, const sp_tiles t) {
    const uint i0 = get_global_id(0) * RB;
    const uint j0 = get_global_id(1) * CB;
    const uint kb = min(K, k0 + (uint)get_global_id(2) * kc), ke = min(K, kb + kc);
    const sp_gemm g = {M, N, K, alpha, A, B, beta, C + (size_t)get_global_id(2) * M * N};
    if (i0 >= M || j0 >= N) return;
    uint rows[RB];
#pragma unroll
    for (int r = 0; r < RB; r++) rows[r] = min(i0 + r, M - 1);
    if (j0 + CB <= N) {
        sp_dense_block(g, ta, i0, j0, rows, kb, ke, NB, SP_VEC, tiles, t);
        return;
    }
    // the last block of a row: its full vectors, then one partial vector (a whole one: the loads
    // and stores of full vectors, with no test per lane)
    const uint rest = N - j0;
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    if (last == SP_VEC)
        sp_dense_block(g, ta, i0, j0, rows, kb, ke, nv, SP_VEC, tiles, t);
    else
        sp_dense_block(g, ta, i0, j0, rows, kb, ke, nv, last, tiles, t);
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_dense_nn(const uint M, const uint N, const uint K, const float alpha,
                   __global const float *restrict A, __global const float *restrict B,
                   const float beta, __global float *restrict C, const uint k0, const uint kc) {
    const sp_tiles none = {1, 1, 1, 1, 1, 0};
    sp_gemm_dense(false, M, N, K, alpha, A, B, beta, C, k0, kc, SP_TILES_NONE, none);
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_dense_tn(const uint M, const uint N, const uint K, const float alpha,
                   __global const float *restrict A, __global const float *restrict B,
                   const float beta, __global float *restrict C, const uint k0, const uint kc) {
    const sp_tiles none = {1, 1, 1, 1, 1, 0};
    sp_gemm_dense(true, M, N, K, alpha, A, B, beta, C, k0, kc, SP_TILES_NONE, none);
}

// The tile-dropout GEMMs (the top of the file): the plain kernels' arguments, then the pattern.
#define SP_TILES_ARGS                                                                              \
    const uint M, const uint N, const uint K, const float alpha, __global const float *restrict A, \
        __global const float *restrict B, const float beta, __global float *restrict C,            \
        const uint k0, const uint kc, const uint tsize, const uint trows, const uint tn,           \
        const uint period, const uint keep, const uint offset

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_tiles_nn(SP_TILES_ARGS) {
    const sp_tiles t = {tsize, trows, tn, period, keep, offset};
    sp_gemm_dense(false, M, N, K, alpha, A, B, beta, C, k0, kc, SP_TILES_B, t);
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_tiles_nt(SP_TILES_ARGS) {
    const sp_tiles t = {tsize, trows, tn, period, keep, offset};
    sp_gemm_dense(false, M, N, K, alpha, A, B, beta, C, k0, kc, SP_TILES_BT, t);
}

// dX^T = W dY^T (A = W): the input gradient without transposing W, two small transposes around
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_tiles_wa(SP_TILES_ARGS) {
    const sp_tiles t = {tsize, trows, tn, period, keep, offset};
    sp_gemm_dense(false, M, N, K, alpha, A, B, beta, C, k0, kc, SP_TILES_A, t);
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_tiles_tn(SP_TILES_ARGS) {
    const sp_tiles t = {tsize, trows, tn, period, keep, offset};
    sp_gemm_dense(true, M, N, K, alpha, A, B, beta, C, k0, kc, SP_TILES_C, t);
}

// The same leaving the dropped tiles of C unwritten, for gemm_tiles_sgd, which does not read them.
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_tiles_tk(SP_TILES_ARGS) {
    const sp_tiles t = {tsize, trows, tn, period, keep, offset};
    sp_gemm_dense(true, M, N, K, alpha, A, B, beta, C, k0, kc, SP_TILES_C_KEPT, t);
}

// SGD (nn_sgd_step's rule) on W (rows x cols) with the gradient g at the kept tiles and 0 at the
// dropped ones (gemm_tiles_tk left them unwritten): v = momentum v + g + wd w; w = w - lr v.
// SP_VEC columns per work-item (the tile is a multiple of the vector: one tile per work-item).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void gemm_tiles_sgd(__global float *w, __global const float *g, __global float *v, const uint rows,
                    const uint cols, const uint tsize, const uint trows, const uint tn,
                    const uint period, const uint keep, const uint offset, const float lr,
                    const float momentum, const float wd) {
    const uint j0 = get_global_id(0) * SP_VEC, i = get_global_id(1);
    if (i >= rows || j0 >= cols) return;
    const sp_tiles t = {tsize, trows, tn, period, keep, offset};
    const uint len = min((uint)SP_VEC, cols - j0);
    const size_t at = (size_t)i * cols + j0;
    const floatv wv = sp_load_part(w + at, len);
    const floatv gv =
        sp_tile_kept(t, i / tsize, j0 / tsize) ? sp_load_part(g + at, len) : (floatv)(0.0f);
    const floatv vv = (floatv)(momentum)*sp_load_part(v + at, len) + (gv + (floatv)(wd)*wv);
    sp_store_part(vv, v + at, len);
    sp_store_part(wv - (floatv)(lr)*vv, w + at, len);
}
