// Sparse GEMMs over a compacted operand S (compact.cl; docs/sparse-format.md). They skip empty
// tiles and, inside a tile, zero elements (only stored non-zeros are visited): the work is
// proportional to the non-zeros, whatever their pattern. One kernel per pass of the host API
// (runtime/ops/gemm_sparse.c):
//
// gemm_sparse_fwd_b* / gemm_sparse_bwd_weight_b*: out[i, :] = sum over the non-zeros (p, v) of
// line i of S of v * D[p, :], where a line is a row of S (ROWS form: forward Y = X . W, a row of X
// gathers rows of W) or a column of S (COLS form: backward-by-weight dW = X^T . dZ, a column of X
// gathers rows of dZ). Each work-item owns one output line and nb vectors of SP_VEC columns,
// accumulated in registers; per non-zero it broadcasts v and does nb vector FMAs with D's row p.
// With trans_out the result is stored transposed (out is N x lines): that computes
// dW = (dZ^T . X)^T when dZ is the sparse one.
//
// gemm_sparse_fwd_direct_b*: the forward pass straight from a dense X, finding its non-zeros on
// the fly (no compaction).
//
// gemm_sparse_bwd_input: backward-by-input, dX = (dZ . W^T) (*) mask: for every stored position
// (i, k) of the mask only, the dot product of dZ's row i and W's row k.
//
// No work-item walks a whole line: dimension 2 of the range cuts the reduction (the tiles of a
// line, the columns of X) into slices of `per` tiles or columns, slice s starting at part0 + s
// and writing its own block of the output (out + s * lines * n), which the host sums
// (eltwise_sum_parts) when there is more than one; with accumulate the block is added to what
// out holds. The host keeps every work-item's loops below SP_LOOP_MAX iterations
// (runtime/ops/ops_internal.h): some drivers end them after 65,535 without an error, and a
// long serial walk is what a GPU can least afford anyway.
//
// The block width: the kernels with a column block exist in four widths, _b0 to _b3, of nb =
// SP_SPARSE_NB, /2, /4, /8 (at least 1) vectors; the host takes the widest whose block fits in N,
// so narrow layers (N = 32) still run the branch-free full-block path. Each is a thin kernel
// calling its pass's body with a constant nb, which the compiler specialises.

// Tunable parameters (runtime/device/tuned.c passes them as -DSP_<NAME>; these defaults let the
// file build on its own).
#ifndef SP_COLS_STEP
// Tile-rows gemm_sparse_bwd_weight walks between two barriers: each step costs a save and
// restore of every work-item's accumulators, and SP_COLS_STEP x SP_TILE_ROWS rows of D (32 KB
// for 8 x 16 rows of 64 floats) still fit the first-level cache.
#define SP_COLS_STEP 8
#endif
#ifndef SP_DIRECT_SEG
// Columns of X's row gemm_sparse_fwd_direct scans per segment (positions kept in private memory).
#define SP_DIRECT_SEG 128
#endif

// Vectors per work-item of the block width at level l (0 to 3).
#define NB_AT(l) (SP_SPARSE_NB >> (l) > 0 ? SP_SPARSE_NB >> (l) : 1)

// A loop over the nb vectors of a block runs to SP_SPARSE_NB and tests c < nb: compilers optimise
// a function on its own before they inline it, where nb is still unknown, and a constant trip
// count lets them unroll it there (the accumulators stay in registers); once inlined with a
// constant nb, the tests fold away.

// One form of S, as the kernels receive it: its lines (rows of S in the ROWS form, columns in the
// COLS form), grouped sub_lines to a tile-line, tiles_per_line tiles each; the tile-line starts
// (tpos: exclusive scan of the non-empty flags, in the form's tile order), the list of non-empty
// tiles, each tile's element count (counts; its positions start at t * SP_TILE_CAP), the
// per-line offsets inside each tile (off, stride entries per tile), the tile-relative positions
// of the non-zeros (idx), and the matrix S itself (src, src_cols columns, tiles_c tile columns),
// where the values are read.
typedef struct sp_form {
    uint lines, sub_lines, tiles_per_line;
    __global const uint *tpos, *list, *counts;
    __global const ushort *off;
    uint stride;
    __global const uint *idx;
    __global const float *src;
    uint src_cols, tiles_c;
} sp_form;

// What a work-item of the line kernels owns: line i of the output, the block of columns from j0
// (nv full vectors, then nt < SP_VEC leftover columns: the last block of a row whose length is not
// a multiple of the vector width), and where line i lies in the form (tile-line, line inside it).
// An inactive work-item (past the output) only keeps its group's barriers.
typedef struct sp_item {
    uint i, j0, nv, nt, line, sub;
    bool active;
} sp_item;

// The item of this work-item in an output of f.lines x n, with blocks of nb vectors.
SP_INLINE sp_item sp_item_of(const sp_form f, const uint n, const uint nb) {
    sp_item w;
    w.i = get_global_id(0);
    w.j0 = get_global_id(1) * SP_VEC * nb;
    w.active = w.i < f.lines && w.j0 < n;
    const uint li = min(w.i, f.lines - 1);
    w.line = li / f.sub_lines;
    w.sub = SP_REM(li, f.sub_lines);
    w.nv = w.active ? min(nb, (n - w.j0) / SP_VEC) : 0;
    w.nt = w.active && w.nv < nb ? min((uint)SP_VEC, n - w.j0 - w.nv * SP_VEC) : 0;
    return w;
}

// Zeroes the accumulators: nb vectors and SP_VEC leftover columns.
SP_INLINE void sp_acc_zero(floatv *acc, float *tail, const uint nb) {
#pragma unroll
    for (uint c = 0; c < SP_SPARSE_NB; c++)
        if (c < nb) acc[c] = (floatv)(0.0f);
#pragma unroll
    for (uint j = 0; j < SP_VEC; j++) tail[j] = 0.0f;
}

// One non-zero v times D's row (dr: the block's first column of it) into the accumulators. full:
// all nb vectors of the block lie inside D's row (the common case, no per-vector test).
SP_INLINE void sp_fma_nz(floatv *acc, float *tail, const sp_item w, const uint nb,
                         const bool full, const float v, __global const float *dr) {
    if (full) {
#pragma unroll
        for (uint c = 0; c < SP_SPARSE_NB; c++)
            if (c < nb) acc[c] = fma((floatv)(v), VLOAD_AT(dr + c * SP_VEC), acc[c]);
    } else {
#pragma unroll
        for (uint c = 0; c < SP_SPARSE_NB; c++)
            if (c < nb && c < w.nv) acc[c] = fma((floatv)(v), VLOAD_AT(dr + c * SP_VEC), acc[c]);
#pragma unroll
        for (uint j = 0; j < SP_VEC; j++)
            if (j < w.nt) tail[j] = fma(v, dr[w.nv * SP_VEC + j], tail[j]);
    }
}

// Line w.i's non-zeros in tile t of form f (cols: the COLS form, else ROWS) into the accumulators:
// each value of S and the row of D (n columns) its position selects.
SP_INLINE void sp_tile(floatv *acc, float *tail, const sp_form f, const bool cols, const uint t,
                       const sp_item w, __global const float *d, const uint n, const uint nb) {
    __global const ushort *o = f.off + (size_t)t * f.stride + w.sub;
    const uint base = t * SP_TILE_CAP, eb = base + o[0], ee = base + o[1];
    const uint p0 = !cols ? SP_REM(t, f.tiles_c) * SP_TILE_COLS : (t / f.tiles_c) * SP_TILE_ROWS;
    __global const float *sv =
        f.src + (!cols ? (size_t)w.i * f.src_cols + p0 : (size_t)p0 * f.src_cols + w.i);
    const uint step = !cols ? 1 : f.src_cols; // between S's values at consecutive positions
    __global const float *dt = d + (size_t)p0 * n;
    if (w.nv == nb) {
        for (uint e = eb; e < ee; e++) {
            const uint rel = f.idx[e];
            sp_fma_nz(acc, tail, w, nb, true, sv[rel * step], dt + (size_t)rel * n + w.j0);
        }
    } else {
        for (uint e = eb; e < ee; e++) {
            const uint rel = f.idx[e];
            sp_fma_nz(acc, tail, w, nb, false, sv[rel * step], dt + (size_t)rel * n + w.j0);
        }
    }
}

// Stores the accumulators into this slice's block of the output (lines x n, or n x lines with
// trans_out), added to what it holds with accumulate.
SP_INLINE void sp_store(const floatv *acc, const float *tail, const sp_item w, const uint nb,
                        __global float *out, const uint lines, const uint n, const uint trans_out,
                        const uint accumulate) {
    out += (size_t)get_global_id(2) * lines * n;
    if (!trans_out) {
        __global float *o = out + (size_t)w.i * n + w.j0;
#pragma unroll
        for (uint c = 0; c < SP_SPARSE_NB; c++)
            if (c < nb && c < w.nv) {
                floatv r = acc[c];
                if (accumulate) r += VLOAD_AT(o + c * SP_VEC);
                VSTORE_AT(r, o + c * SP_VEC);
            }
#pragma unroll
        for (uint j = 0; j < SP_VEC; j++)
            if (j < w.nt)
                o[w.nv * SP_VEC + j] = accumulate ? o[w.nv * SP_VEC + j] + tail[j] : tail[j];
    } else {
#pragma unroll
        for (uint c = 0; c < SP_SPARSE_NB; c++) {
            if (c < nb && c < w.nv) {
                float tmp[SP_VEC];
                VSTORE_AT(acc[c], tmp);
#pragma unroll
                for (int l = 0; l < SP_VEC; l++) {
                    __global float *o = out + (size_t)(w.j0 + c * SP_VEC + l) * lines + w.i;
                    *o = accumulate ? *o + tmp[l] : tmp[l];
                }
            }
        }
#pragma unroll
        for (uint j = 0; j < SP_VEC; j++)
            if (j < w.nt) {
                __global float *o = out + (size_t)(w.j0 + w.nv * SP_VEC + j) * lines + w.i;
                *o = accumulate ? *o + tail[j] : tail[j];
            }
    }
}

// Forward (ROWS form): each work-item walks the listed non-empty tiles of its row on its own. The
// W panel its rows gather from is the same for every row, so it stays in cache anyway.
SP_INLINE void sp_gemm_fwd(const sp_form f, __global const float *d, const uint n,
                           __global float *out, const uint trans_out, const uint accumulate,
                           const uint part0, const uint per, const uint nb) {
    const sp_item w = sp_item_of(f, n, nb);
    floatv acc[SP_SPARSE_NB];
    float tail[SP_VEC];
    sp_acc_zero(acc, tail, nb);
    if (!w.active) return;
    const uint ub = min(f.tiles_per_line, (part0 + (uint)get_global_id(2)) * per);
    const uint ue = min(f.tiles_per_line, ub + per);
    const uint row = w.line * f.tiles_per_line;
    const uint qb = f.tpos[row + ub], qe = f.tpos[row + ue];
    for (uint q = qb; q < qe; q++) sp_tile(acc, tail, f, false, f.list[q], w, d, n, nb);
    sp_store(acc, tail, w, nb, out, f.lines, n, trans_out, accumulate);
}

// Backward-by-weight (COLS form): the work-items of a group (SP_GEMM_WG consecutive columns) walk
// the tiles of their columns in step, SP_COLS_STEP tile-rows between barriers, so the
// SP_TILE_ROWS rows of D a tile needs are read by all of them while they are in the first-level
// cache; without it every column would stream all of D (batch x pixels rows) on its own. On CPU
// drivers the barrier becomes a loop over the work-items per step. Empty tiles (counts[t] == 0)
// are skipped.
SP_INLINE void sp_gemm_bwd_weight(const sp_form f, __global const float *d, const uint n,
                                  __global float *out, const uint trans_out,
                                  const uint accumulate, const uint part0, const uint per,
                                  const uint nb) {
    const sp_item w = sp_item_of(f, n, nb);
    floatv acc[SP_SPARSE_NB];
    float tail[SP_VEC];
    sp_acc_zero(acc, tail, nb);
    const uint ub = min(f.tiles_per_line, (part0 + (uint)get_global_id(2)) * per);
    const uint ue = min(f.tiles_per_line, ub + per);
    for (uint u0 = ub; u0 < ue; u0 += SP_COLS_STEP) {
        const uint u1 = min(ue, u0 + SP_COLS_STEP);
        for (uint u = u0; u < u1; u++) {
            const uint t = u * f.tiles_c + w.line;
            if (w.active && f.counts[t] != 0) sp_tile(acc, tail, f, true, t, w, d, n, nb);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (!w.active) return;
    sp_store(acc, tail, w, nb, out, f.lines, n, trans_out, accumulate);
}

// The line kernels: S's form (12 arguments, sp_form), then D (? x n), the output, trans_out,
// accumulate and the slices (see the top of the file).

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_fwd_b0(const uint lines, const uint sub_lines, const uint tiles_per_line,
                        __global const uint *tpos, __global const uint *list,
                        __global const uint *counts, __global const ushort *off, const uint stride,
                        __global const uint *idx, __global const float *src, const uint src_cols,
                        const uint tiles_c, __global const float *restrict d, const uint n,
                        __global float *restrict out, const uint trans_out, const uint accumulate,
                        const uint part0, const uint per) {
    const sp_form f = {lines, sub_lines, tiles_per_line, tpos, list, counts,
                       off,   stride,    idx,            src,  src_cols, tiles_c};
    sp_gemm_fwd(f, d, n, out, trans_out, accumulate, part0, per, NB_AT(0));
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_fwd_b1(const uint lines, const uint sub_lines, const uint tiles_per_line,
                        __global const uint *tpos, __global const uint *list,
                        __global const uint *counts, __global const ushort *off, const uint stride,
                        __global const uint *idx, __global const float *src, const uint src_cols,
                        const uint tiles_c, __global const float *restrict d, const uint n,
                        __global float *restrict out, const uint trans_out, const uint accumulate,
                        const uint part0, const uint per) {
    const sp_form f = {lines, sub_lines, tiles_per_line, tpos, list, counts,
                       off,   stride,    idx,            src,  src_cols, tiles_c};
    sp_gemm_fwd(f, d, n, out, trans_out, accumulate, part0, per, NB_AT(1));
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_fwd_b2(const uint lines, const uint sub_lines, const uint tiles_per_line,
                        __global const uint *tpos, __global const uint *list,
                        __global const uint *counts, __global const ushort *off, const uint stride,
                        __global const uint *idx, __global const float *src, const uint src_cols,
                        const uint tiles_c, __global const float *restrict d, const uint n,
                        __global float *restrict out, const uint trans_out, const uint accumulate,
                        const uint part0, const uint per) {
    const sp_form f = {lines, sub_lines, tiles_per_line, tpos, list, counts,
                       off,   stride,    idx,            src,  src_cols, tiles_c};
    sp_gemm_fwd(f, d, n, out, trans_out, accumulate, part0, per, NB_AT(2));
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_fwd_b3(const uint lines, const uint sub_lines, const uint tiles_per_line,
                        __global const uint *tpos, __global const uint *list,
                        __global const uint *counts, __global const ushort *off, const uint stride,
                        __global const uint *idx, __global const float *src, const uint src_cols,
                        const uint tiles_c, __global const float *restrict d, const uint n,
                        __global float *restrict out, const uint trans_out, const uint accumulate,
                        const uint part0, const uint per) {
    const sp_form f = {lines, sub_lines, tiles_per_line, tpos, list, counts,
                       off,   stride,    idx,            src,  src_cols, tiles_c};
    sp_gemm_fwd(f, d, n, out, trans_out, accumulate, part0, per, NB_AT(3));
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_bwd_weight_b0(const uint lines, const uint sub_lines, const uint tiles_per_line,
                               __global const uint *tpos, __global const uint *list,
                               __global const uint *counts, __global const ushort *off,
                               const uint stride, __global const uint *idx,
                               __global const float *src, const uint src_cols, const uint tiles_c,
                               __global const float *restrict d, const uint n,
                               __global float *restrict out, const uint trans_out,
                               const uint accumulate, const uint part0, const uint per) {
    const sp_form f = {lines, sub_lines, tiles_per_line, tpos, list, counts,
                       off,   stride,    idx,            src,  src_cols, tiles_c};
    sp_gemm_bwd_weight(f, d, n, out, trans_out, accumulate, part0, per, NB_AT(0));
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_bwd_weight_b1(const uint lines, const uint sub_lines, const uint tiles_per_line,
                               __global const uint *tpos, __global const uint *list,
                               __global const uint *counts, __global const ushort *off,
                               const uint stride, __global const uint *idx,
                               __global const float *src, const uint src_cols, const uint tiles_c,
                               __global const float *restrict d, const uint n,
                               __global float *restrict out, const uint trans_out,
                               const uint accumulate, const uint part0, const uint per) {
    const sp_form f = {lines, sub_lines, tiles_per_line, tpos, list, counts,
                       off,   stride,    idx,            src,  src_cols, tiles_c};
    sp_gemm_bwd_weight(f, d, n, out, trans_out, accumulate, part0, per, NB_AT(1));
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_bwd_weight_b2(const uint lines, const uint sub_lines, const uint tiles_per_line,
                               __global const uint *tpos, __global const uint *list,
                               __global const uint *counts, __global const ushort *off,
                               const uint stride, __global const uint *idx,
                               __global const float *src, const uint src_cols, const uint tiles_c,
                               __global const float *restrict d, const uint n,
                               __global float *restrict out, const uint trans_out,
                               const uint accumulate, const uint part0, const uint per) {
    const sp_form f = {lines, sub_lines, tiles_per_line, tpos, list, counts,
                       off,   stride,    idx,            src,  src_cols, tiles_c};
    sp_gemm_bwd_weight(f, d, n, out, trans_out, accumulate, part0, per, NB_AT(2));
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_bwd_weight_b3(const uint lines, const uint sub_lines, const uint tiles_per_line,
                               __global const uint *tpos, __global const uint *list,
                               __global const uint *counts, __global const ushort *off,
                               const uint stride, __global const uint *idx,
                               __global const float *src, const uint src_cols, const uint tiles_c,
                               __global const float *restrict d, const uint n,
                               __global float *restrict out, const uint trans_out,
                               const uint accumulate, const uint part0, const uint per) {
    const sp_form f = {lines, sub_lines, tiles_per_line, tpos, list, counts,
                       off,   stride,    idx,            src,  src_cols, tiles_c};
    sp_gemm_bwd_weight(f, d, n, out, trans_out, accumulate, part0, per, NB_AT(3));
}

// The positions of the non-zeros of xr[s0, se) into pos, in order; returns how many. Eight
// elements at a time: a bit mask, a table of set-bit lanes (lut), a popcount, no branch per
// element; then up to 7 single ones.
SP_INLINE uint sp_nonzeros(__global const float *xr, const uint s0, const uint se,
                           __global const uint8 *lut, uint *pos) {
    uint p = 0, c = s0;
    for (; c + 8 <= se; c += 8) {
        const uint m = sp_nz_mask8(vload8(0, xr + c));
        vstore8(lut[m] + (uint8)(c), 0, pos + p);
        p += popcount(m);
    }
#pragma unroll
    for (uint l = 0; l < 7; l++) {
        if (c + l < se) {
            pos[p] = c + l;
            p += xr[c + l] != 0.0f;
        }
    }
    return p;
}

// Forward without a compacted operand: each work-item reads its row of X (lines x kx) itself
// and skips the zeros on the fly. A segment of SP_DIRECT_SEG elements at a time, it finds the
// non-zeros (sp_nonzeros) and keeps their positions in private memory, then walks them with the
// same FMAs as gemm_sparse_fwd. Nothing is written to or read back from global memory besides X,
// W and Y, and a run of the inner loop is a whole segment (one mispredicted exit per
// SP_DIRECT_SEG elements). The slice of the row: columns [(part0 + s) per, + per) of X.
SP_INLINE void sp_gemm_fwd_direct(__global const float *x, const uint lines, const uint kx,
                                  __global const float *d, const uint n, __global float *out,
                                  __global const uint8 *lut, const uint accumulate,
                                  const uint part0, const uint per, const uint nb) {
    const uint i = get_global_id(0);
    const uint j0 = get_global_id(1) * SP_VEC * nb;
    const uint kb = min(kx, (part0 + (uint)get_global_id(2)) * per);
    const uint ke = min(kx, kb + per);
    if (i >= lines || j0 >= n) return;
    const uint nv = min(nb, (n - j0) / SP_VEC);
    const uint nt = nv < nb ? min((uint)SP_VEC, n - j0 - nv * SP_VEC) : 0;
    const sp_item w = {i, j0, nv, nt, 0, 0, true}; // no form: no line, no sub
    floatv acc[SP_SPARSE_NB];
    float tail[SP_VEC];
    sp_acc_zero(acc, tail, nb);
    __global const float *xr = x + (size_t)w.i * kx;
    uint pos[SP_DIRECT_SEG + 8];
    for (uint s0 = kb; s0 < ke; s0 += SP_DIRECT_SEG) {
        const uint p = sp_nonzeros(xr, s0, min(ke, s0 + SP_DIRECT_SEG), lut, pos);
        if (w.nv == nb) {
            for (uint q = 0; q < p; q++)
                sp_fma_nz(acc, tail, w, nb, true, xr[pos[q]], d + (size_t)pos[q] * n + w.j0);
        } else {
            for (uint q = 0; q < p; q++)
                sp_fma_nz(acc, tail, w, nb, false, xr[pos[q]], d + (size_t)pos[q] * n + w.j0);
        }
    }
    sp_store(acc, tail, w, nb, out, lines, n, 0, accumulate);
}

// The direct kernels: X (lines x kx), W (kx x n), Y, the table of set-bit lanes, accumulate and
// the slices.

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_fwd_direct_b0(__global const float *restrict x, const uint lines, const uint kx,
                               __global const float *restrict d, const uint n,
                               __global float *restrict out, __global const uint8 *lut,
                               const uint accumulate, const uint part0, const uint per) {
    sp_gemm_fwd_direct(x, lines, kx, d, n, out, lut, accumulate, part0, per, NB_AT(0));
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_fwd_direct_b1(__global const float *restrict x, const uint lines, const uint kx,
                               __global const float *restrict d, const uint n,
                               __global float *restrict out, __global const uint8 *lut,
                               const uint accumulate, const uint part0, const uint per) {
    sp_gemm_fwd_direct(x, lines, kx, d, n, out, lut, accumulate, part0, per, NB_AT(1));
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_fwd_direct_b2(__global const float *restrict x, const uint lines, const uint kx,
                               __global const float *restrict d, const uint n,
                               __global float *restrict out, __global const uint8 *lut,
                               const uint accumulate, const uint part0, const uint per) {
    sp_gemm_fwd_direct(x, lines, kx, d, n, out, lut, accumulate, part0, per, NB_AT(2));
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_fwd_direct_b3(__global const float *restrict x, const uint lines, const uint kx,
                               __global const float *restrict d, const uint n,
                               __global float *restrict out, __global const uint8 *lut,
                               const uint accumulate, const uint part0, const uint per) {
    sp_gemm_fwd_direct(x, lines, kx, d, n, out, lut, accumulate, part0, per, NB_AT(3));
}

// Backward-by-input, masked (ROWS form of the mask): one work-item per (row i of the mask, tile
// u of its tile-row, slice of that row's stored positions in the tile), writing the dot product
// of dZ's row i and W's row k at each stored position (i, k). The slice: the tile row's
// positions [s per, (s + 1) per), s = get_global_id(2), so that per dot products of n stay below
// the loop bound. With zero (one slice per tile: the work-item owns the row's columns of the
// tile) it zeroes them first, while they come into cache; else the host zeroed dX. The mask's
// arguments are those of its ROWS form (sp_form) that the walk needs.
// dz: rows x n, w: cols x n, dx: rows x cols.
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_bwd_input(const uint lines, const uint sub_lines, const uint tiles_per_line,
                           __global const ushort *off, const uint stride, __global const uint *idx,
                           const uint tiles_c, __global const float *restrict dz,
                           __global const float *restrict w, const uint n, const uint cols,
                           __global float *restrict dx, const uint per, const uint zero) {
    const uint i = get_global_id(0), u = get_global_id(1);
    if (i >= lines || u >= tiles_per_line) return;
    const uint line = i / sub_lines, sub = SP_REM(i, sub_lines);
    const uint t = line * tiles_c + u;
    const uint c0 = u * SP_TILE_COLS;
    __global float *xr = dx + (size_t)i * cols;
    if (zero) {
        const uint ce = min(cols, c0 + SP_TILE_COLS);
        uint c = c0;
        for (; c + SP_VEC <= ce; c += SP_VEC) VSTORE_AT((floatv)(0.0f), xr + c);
        for (; c < ce; c++) xr[c] = 0.0f;
    }
    __global const ushort *o = off + (size_t)t * stride + sub;
    const uint base = t * SP_TILE_CAP;
    const uint eb = base + o[0] + (uint)get_global_id(2) * per;
    const uint ee = min(base + o[1], eb + per);
    __global const float *zr = dz + (size_t)i * n;
    const uint nv = n / SP_VEC * SP_VEC;
    for (uint e = eb; e < ee; e++) {
        const uint k = c0 + idx[e];
        __global const float *wr = w + (size_t)k * n;
        floatv s = (floatv)(0.0f);
        for (uint j = 0; j < nv; j += SP_VEC) s = fma(VLOAD_AT(zr + j), VLOAD_AT(wr + j), s);
        float r = VSUM(s);
        for (uint j = nv; j < n; j++) r = fma(zr[j], wr[j], r);
        xr[k] = r;
    }
}

// ---- Weight-sparse GEMMs (runtime/ops/gemm_wsparse.c) ------------------------------------------
// W (K x N) kept as lists of the positions of its non-zeros: by column (the W form: Y = X . W)
// and by row (the W^T form: dX = dY . W^T). Their values are gathered from W at each call (SGD
// updates W in place) into the lists' order (gemm_wsparse_gather), so that the GEMM reads them
// in sequence (W read by column had a cache line per non-zero). The dense operand is given
// transposed (in_t: rows x m), so that SP_VEC rows of the output are one vector load per
// non-zero. Work-item (dimension 0) a block of SP_VEC output rows, (dimension 1) a slot of
// order[]: the lists sorted by length, longest first, so that the work-items of a group have
// lists of about the same length (the load balancing of irregular rows).
// out[r, c] = sum over p in [ptr[c], ptr[c + 1]) of vals[p] * in_t[idx[p] * m + r].
__kernel void gemm_wsparse_lists(const uint m, const uint lists, __global const uint *ptr,
                                 __global const uint *idx, __global const uint *order,
                                 __global const float *vals, __global const float *in_t,
                                 __global float *out, const uint out_ld) {
    const uint r0 = (uint)get_global_id(0) * SP_VEC, s = (uint)get_global_id(1);
    if (r0 >= m || s >= lists) return;
    const uint c = order[s], len = min((uint)SP_VEC, m - r0), end = ptr[c + 1];
    floatv acc = (floatv)(0.0f);
    for (uint p = ptr[c]; p < end; p++) {
        const uint i = idx[p];
        acc = fma((floatv)(vals[p]), sp_load_part(in_t + (size_t)i * m + r0, len), acc);
    }
    float t[SP_VEC];
    VSTORE_AT(acc, t);
    for (uint l = 0; l < len; l++) out[(size_t)(r0 + l) * out_ld + c] = t[l];
}

// vals[at[p]] = w[pos[p]] for the nnz non-zeros (pos: their places in W, row-major order; at:
// their places in the lists, or p where at is the identity: permute 0).
__kernel void gemm_wsparse_gather(const uint nnz, __global const uint *pos,
                                  __global const uint *at, const uint permute,
                                  __global const float *w, __global float *vals) {
    const uint p = (uint)get_global_id(0);
    if (p < nnz) vals[permute ? at[p] : p] = w[pos[p]];
}

// Y = X . W skipping the zeros of both: work-item (dimension 0) row r of X, (dimension 1) block b
// of `bw` columns of Y; for each non-zero X[r, i], the non-zeros of W's row i inside the block
// (bptr[i * blocks + b] .. bptr[i * blocks + b + 1], their columns within the block in bj). The
// work-item owns Y[r, block]: it zeroes it, then adds in the order of i, so the sums are
// deterministic.
__kernel void gemm_wsparse_union(const uint m, const uint k, const uint n, const uint bw,
                                 const uint blocks, __global const float *x,
                                 __global const uint *bptr, __global const ushort *bj,
                                 __global const float *w, __global float *y) {
    const uint r = (uint)get_global_id(0), b = (uint)get_global_id(1);
    if (r >= m || b >= blocks) return;
    const uint j0 = b * bw, jn = min(bw, n - j0);
    __global float *yr = y + (size_t)r * n + j0;
    for (uint j = 0; j < jn; j++) yr[j] = 0.0f;
    __global const float *xr = x + (size_t)r * k;
    for (uint i = 0; i < k; i++) {
        const float xv = xr[i];
        if (xv == 0.0f) continue;
        const uint end = bptr[i * blocks + b + 1];
        __global const float *wr = w + (size_t)i * n + j0;
        for (uint p = bptr[i * blocks + b]; p < end; p++) {
            const uint j = bj[p];
            yr[j] = fma(xv, wr[j], yr[j]);
        }
    }
}
