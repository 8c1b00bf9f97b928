// Sparse GEMMs over a compacted operand S (compact.cl; docs/sparse-format.md). They skip empty
// tiles and, inside a tile, zero elements (only stored non-zeros are visited): the work is
// proportional to the non-zeros, whatever their pattern.
//
// gemm_sparse_rows_b* / gemm_sparse_cols_b*: out[i, :] = sum over the non-zeros (p, v) of line i of S
// of v * D[p, :], where a line is a row of S (ROWS form: forward Y = X . W, a row of X gathers
// rows of W) or a column of S (COLS form: backward-by-weight dW = X^T . dZ, a column of X
// gathers rows of dZ). Each work-item owns one output line and SP_SPARSE_NB vectors of SP_VEC
// columns, accumulated in registers; per non-zero it broadcasts v and does NB vector FMAs with
// D's row p. With trans_out the result is stored transposed (out is N x lines): that computes
// dW = (dZ^T . X)^T when dZ is the sparse one.
//
// gemm_sparse_sddmm: backward-by-input, dX = (dZ . W^T) (*) mask: for every stored position
// (i, k) of the mask only, the dot product of dZ's row i and W's row k.
//
// No work-item walks a whole line: dimension 2 of the range cuts the reduction (the tiles of a
// line, the columns of X) into slices of `per` tiles or columns, slice s starting at part0 + s
// and writing its own block of the output (out + s * lines * n), which the host sums
// (eltwise_sum_parts) when there is more than one; with accumulate the block is added to what
// out holds. The host keeps every work-item's loops below SP_LOOP_MAX iterations
// (runtime/ops/ops_internal.h): some drivers end them after 65,535 without an error, and a
// long serial walk is what a GPU can least afford anyway.

// NB: vectors per work-item. Each kernel below exists in four widths (NB = SP_SPARSE_NB, /2,
// /4, /8, at least 1; suffixes _b0 to _b3): the host takes the widest whose block fits in N, so
// narrow layers (N = 32) still run the branch-free full-block path.
#define CB (SP_VEC * NB)
#define NB_AT(l) (SP_SPARSE_NB >> (l) > 0 ? SP_SPARSE_NB >> (l) : 1)

// The arguments that describe one form of S: the tile-line starts (tpos: exclusive scan of the
// non-empty flags, in the form's tile order), the list of non-empty tiles, each tile's element
// count (counts; its positions start at t * SP_TILE_CAP), the per-line offsets inside each
// tile (off, stride entries per tile), the tile-relative positions of the non-zeros, and the
// matrix S itself (src, src_cols columns), where the values are read.
#define S_ARGS                                                                                    \
    const uint lines, const uint sub_lines, const uint tiles_per_line,                            \
    __global const uint *tpos, __global const uint *list, __global const uint *counts,            \
    __global const ushort *off, const uint stride, __global const uint *idx,                    \
    __global const float *src, const uint src_cols, const uint tiles_c

// One non-zero: v times row `rel` of the tile's part of D into the accumulators. FULL: all NB
// vectors of the block are inside D's row (the common case, no per-vector test).
#define SPARSE_FMA(FULL) SPARSE_FMA_STEP(idx[e], VSTEP, FULL)
#define SPARSE_FMA_AT(REL, FULL) SPARSE_FMA_STEP(REL, 1, FULL)
#define SPARSE_FMA_STEP(REL, STEP, FULL)                                                          \
    {                                                                                             \
        const uint rel = (REL);                                                                   \
        const float v = sv[rel * (STEP)];                                                         \
        __global const float *dr = dt + (size_t)rel * n + j0;                                     \
        if (FULL) {                                                                               \
            _Pragma("unroll") for (uint c = 0; c < NB; c++)                                       \
                acc[c] = fma((floatv)(v), VLOAD_AT(dr + c * SP_VEC), acc[c]);                     \
        } else {                                                                                  \
            _Pragma("unroll") for (uint c = 0; c < NB; c++)                                       \
                if (c < nv) acc[c] = fma((floatv)(v), VLOAD_AT(dr + c * SP_VEC), acc[c]);         \
            _Pragma("unroll") for (uint j = 0; j < SP_VEC; j++)                                   \
                if (j < nt) tail[j] = fma(v, dr[nv * SP_VEC + j], tail[j]);                       \
        }                                                                                         \
    }

// Line i's non-zeros in tile t: set up the value and D pointers, then the FMAs.
#define SPARSE_TILE(t)                                                                            \
    {                                                                                             \
        __global const ushort *o = off + (size_t)(t) * stride + sub;                              \
        const uint base = (t) * SP_TILE_CAP, eb = base + o[0], ee = base + o[1];                  \
        const uint p0 = FORM == 0 ? SP_REM((t), tiles_c) * SP_TILE_COLS                                \
                                  : ((t) / tiles_c) * SP_TILE_ROWS;                               \
        __global const float *sv =                                                                \
            src + (FORM == 0 ? (size_t)i * src_cols + p0 : (size_t)p0 * src_cols + i);            \
        __global const float *dt = d + (size_t)p0 * n;                                            \
        if (full) {                                                                               \
            for (uint e = eb; e < ee; e++) SPARSE_FMA(1)                                          \
        } else {                                                                                  \
            for (uint e = eb; e < ee; e++) SPARSE_FMA(0)                                          \
        }                                                                                         \
    }

#define SPARSE_STORE                                                                              \
    out += (size_t)get_global_id(2) * lines * n;                                                  \
    if (!trans_out) {                                                                             \
        __global float *o = out + (size_t)i * n + j0;                                             \
        _Pragma("unroll") for (uint c = 0; c < NB; c++) if (c < nv) {                             \
            floatv r = acc[c];                                                                    \
            if (accumulate) r += VLOAD_AT(o + c * SP_VEC);                                        \
            VSTORE_AT(r, o + c * SP_VEC);                                                         \
        }                                                                                         \
        _Pragma("unroll") for (uint j = 0; j < SP_VEC; j++) if (j < nt)                           \
            o[nv * SP_VEC + j] = accumulate ? o[nv * SP_VEC + j] + tail[j] : tail[j];             \
    } else {                                                                                      \
        _Pragma("unroll") for (uint c = 0; c < NB; c++) {                                         \
            if (c < nv) {                                                                         \
                float tmp[SP_VEC];                                                                \
                VSTORE_AT(acc[c], tmp);                                                           \
                _Pragma("unroll") for (int l = 0; l < SP_VEC; l++) {                              \
                    __global float *o = out + (size_t)(j0 + c * SP_VEC + l) * lines + i;          \
                    *o = accumulate ? *o + tmp[l] : tmp[l];                                       \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        _Pragma("unroll") for (uint j = 0; j < SP_VEC; j++) if (j < nt) {                         \
            __global float *o = out + (size_t)(j0 + nv * SP_VEC + j) * lines + i;                 \
            *o = accumulate ? *o + tail[j] : tail[j];                                             \
        }                                                                                         \
    }

// The column block of this work-item: nv full vectors, then nt (< SP_VEC) leftover columns
// (the last block of a row whose length is not a multiple of the vector width).
#define SPARSE_PROLOGUE                                                                           \
    const uint i = get_global_id(0);                                                              \
    const uint j0 = get_global_id(1) * CB;                                                        \
    const bool active = i < lines && j0 < n;                                                      \
    const uint li = min(i, lines - 1);                                                            \
    const uint line = li / sub_lines, sub = SP_REM(li, sub_lines);                                       \
    const uint nv = active ? min((uint)NB, (n - j0) / SP_VEC) : 0;                                \
    const uint nt = active && nv < NB ? min((uint)SP_VEC, n - j0 - nv * SP_VEC) : 0;              \
    const bool full = nv == NB;                                                                   \
    floatv acc[NB];                                                                               \
    float tail[SP_VEC];                                                                           \
    _Pragma("unroll") for (int c = 0; c < NB; c++) acc[c] = (floatv)(0.0f);                       \
    _Pragma("unroll") for (uint j = 0; j < SP_VEC; j++) tail[j] = 0.0f;

// The arguments after S_ARGS of the ROWS and COLS kernels: the dense operand, the output, and
// the slice of the line's tiles this launch covers (see above).
#define LINES_ARGS                                                                                \
    __global const float *restrict d, const uint n, __global float *restrict out,                 \
        const uint trans_out, const uint accumulate, const uint part0, const uint per

// ROWS form (forward): each work-item walks the listed non-empty tiles of its row on its own.
// The W panel its rows gather from is the same for every row, so it stays in cache anyway.
#define GEMM_SPARSE_ROWS(NAME)                                                                    \
    __kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))                              \
    void NAME(S_ARGS, LINES_ARGS) {                                                               \
        SPARSE_PROLOGUE                                                                           \
        if (!active) return;                                                                      \
        const uint ub = min(tiles_per_line, (part0 + (uint)get_global_id(2)) * per);              \
        const uint ue = min(tiles_per_line, ub + per);                                            \
        const uint qb = tpos[line * tiles_per_line + ub], qe = tpos[line * tiles_per_line + ue];  \
        for (uint q = qb; q < qe; q++) SPARSE_TILE(list[q])                                       \
        SPARSE_STORE                                                                              \
    }

// COLS form (backward-by-weight): the work-items of a group (SP_GEMM_WG consecutive columns)
// walk the tiles of their columns in step, tile-row by tile-row (the barrier), so the
// TILE_ROWS rows of D a tile needs are read by all of them while they are in the first-level
// cache; without it every column would stream all of D (batch x pixels rows) on its own. On
// CPU drivers the barrier becomes a loop over the work-items per tile-row. Empty tiles
// (counts[t] == 0) are skipped.
// COLS_STEP tile-rows per step between barriers: each step costs a save and restore of every
// work-item's accumulators, and COLS_STEP x TILE_ROWS rows of D (32 KB for 8 x 16 rows of 64
// floats) still fit the first-level cache.
#ifndef COLS_STEP
#define COLS_STEP 8
#endif
#define GEMM_SPARSE_COLS(NAME)                                                                    \
    __kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))                              \
    void NAME(S_ARGS, LINES_ARGS) {                                                               \
        SPARSE_PROLOGUE                                                                           \
        const uint ub = min(tiles_per_line, (part0 + (uint)get_global_id(2)) * per);              \
        const uint ue = min(tiles_per_line, ub + per);                                            \
        for (uint u0 = ub; u0 < ue; u0 += COLS_STEP) {                                            \
            const uint u1 = min(ue, u0 + COLS_STEP);                                              \
            for (uint u = u0; u < u1; u++) {                                                      \
                const uint t = u * tiles_c + line;                                                \
                if (active && counts[t] != 0) SPARSE_TILE(t)                                      \
            }                                                                                     \
            barrier(CLK_LOCAL_MEM_FENCE);                                                         \
        }                                                                                         \
        if (!active) return;                                                                      \
        SPARSE_STORE                                                                              \
    }

#define FORM 0
#define VSTEP 1
#define NB NB_AT(0)
GEMM_SPARSE_ROWS(gemm_sparse_rows_b0)
#undef NB
#define NB NB_AT(1)
GEMM_SPARSE_ROWS(gemm_sparse_rows_b1)
#undef NB
#define NB NB_AT(2)
GEMM_SPARSE_ROWS(gemm_sparse_rows_b2)
#undef NB
#define NB NB_AT(3)
GEMM_SPARSE_ROWS(gemm_sparse_rows_b3)
#undef NB
#undef FORM
#undef VSTEP

#define FORM 1
#define VSTEP src_cols
#define NB NB_AT(0)
GEMM_SPARSE_COLS(gemm_sparse_cols_b0)
#undef NB
#define NB NB_AT(1)
GEMM_SPARSE_COLS(gemm_sparse_cols_b1)
#undef NB
#define NB NB_AT(2)
GEMM_SPARSE_COLS(gemm_sparse_cols_b2)
#undef NB
#define NB NB_AT(3)
GEMM_SPARSE_COLS(gemm_sparse_cols_b3)
#undef NB
#undef FORM
#undef VSTEP

// Forward without a compacted operand: each work-item reads its row of X itself and skips the
// zeros on the fly. A segment of DIRECT_SEG elements at a time, it finds the non-zeros eight at
// a time (a bit mask, a table of set-bit lanes, a popcount: no branch per element) and stores
// their positions in private memory, then walks them with the same FMAs as gemm_sparse_rows.
// Nothing is written to or read back from global memory besides X, W and Y, and a run of the
// inner loop is a whole segment (one mispredicted exit per DIRECT_SEG elements). The slice of
// the row: columns [(part0 + s) per, + per) of X.
#define DIRECT_SEG 128
#define GEMM_SPARSE_DIRECT(NAME)                                                                  \
    __kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))                              \
    void NAME(__global const float *restrict x, const uint lines, const uint kx,                  \
              __global const float *restrict d, const uint n, __global float *restrict out,        \
              __global const uint8 *lut, const uint accumulate, const uint part0,                 \
              const uint per) {                                                                   \
        const uint i = get_global_id(0);                                                          \
        const uint j0 = get_global_id(1) * CB;                                                    \
        const uint kb = min(kx, (part0 + (uint)get_global_id(2)) * per);                          \
        const uint ke = min(kx, kb + per);                                                        \
        if (i >= lines || j0 >= n) return;                                                        \
        const uint nv = min((uint)NB, (n - j0) / SP_VEC);                                         \
        const uint nt = nv < NB ? min((uint)SP_VEC, n - j0 - nv * SP_VEC) : 0;                    \
        const bool full = nv == NB;                                                               \
        floatv acc[NB];                                                                           \
        float tail[SP_VEC];                                                                       \
        _Pragma("unroll") for (int c = 0; c < NB; c++) acc[c] = (floatv)(0.0f);                   \
        _Pragma("unroll") for (uint j = 0; j < SP_VEC; j++) tail[j] = 0.0f;                       \
        __global const float *xr = x + (size_t)i * kx;                                            \
        uint pos[DIRECT_SEG + 8];                                                                 \
        for (uint s0 = kb; s0 < ke; s0 += DIRECT_SEG) {                                           \
            const uint se = min(ke, s0 + DIRECT_SEG);                                             \
            uint p = 0, c = s0;                                                                   \
            for (; c + 8 <= se; c += 8) {                                                         \
                const uint m = sp_nz_mask8(vload8(0, xr + c));                                    \
                vstore8(lut[m] + (uint8)(c), 0, pos + p);                                         \
                p += popcount(m);                                                                 \
            }                                                                                     \
            _Pragma("unroll") for (uint l = 0; l < 7; l++) {                                      \
                if (c + l < se) {                                                                 \
                    pos[p] = c + l;                                                               \
                    p += xr[c + l] != 0.0f;                                                       \
                }                                                                                 \
            }                                                                                     \
            __global const float *sv = xr;                                                        \
            __global const float *dt = d;                                                         \
            if (full) {                                                                           \
                for (uint q = 0; q < p; q++) DIRECT_FMA(1)                                        \
            } else {                                                                              \
                for (uint q = 0; q < p; q++) DIRECT_FMA(0)                                        \
            }                                                                                     \
        }                                                                                         \
        const uint trans_out = 0;                                                                 \
        SPARSE_STORE                                                                              \
    }
// SPARSE_FMA with the position from private memory.
#define DIRECT_FMA(FULL) SPARSE_FMA_AT(pos[q], FULL)

#define NB NB_AT(0)
GEMM_SPARSE_DIRECT(gemm_sparse_direct_b0)
#undef NB
#define NB NB_AT(1)
GEMM_SPARSE_DIRECT(gemm_sparse_direct_b1)
#undef NB
#define NB NB_AT(2)
GEMM_SPARSE_DIRECT(gemm_sparse_direct_b2)
#undef NB
#define NB NB_AT(3)
GEMM_SPARSE_DIRECT(gemm_sparse_direct_b3)
#undef NB

// Backward-by-input, masked (ROWS form of the mask): one work-item per (row i of the mask, tile
// u of its tile-row, slice of that row's stored positions in the tile), writing the dot product
// of dZ's row i and W's row k at each stored position (i, k). The slice: the tile row's
// positions [s per, (s + 1) per), s = get_global_id(2), so that per dot products of n stay below
// the loop bound. With zero (one slice per tile: the work-item owns the row's columns of the
// tile) it zeroes them first, while they come into cache; else the host zeroed dX.
// dz: rows x n, w: cols x n, dx: rows x cols.
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_sddmm(S_ARGS, __global const float *restrict dz, __global const float *restrict w,
                       const uint n, const uint cols, __global float *restrict dx,
                       const uint per, const uint zero) {
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
    (void)tpos;
    (void)list;
    (void)counts;
    (void)src;
    (void)src_cols;
}
