// Sparse GEMMs over a compacted operand S (compact.cl; docs/sparse-format.md). They skip empty
// tiles (only listed tiles are visited) and, inside a tile, zero elements (only stored non-zeros
// are visited): the work is proportional to the non-zeros, whatever their pattern.
//
// gemm_sparse_lines: out[i, :] = sum over the non-zeros (p, v) of line i of S of v * D[p, :],
// where a line is a row of S (ROWS form: forward Y = X . W) or a column of S (COLS form:
// backward-by-weight dW = X^T . dZ, a column of X gathering rows of dZ). Each work-item owns
// one output line and SP_SPARSE_NB vectors of SP_VEC columns, accumulated in registers; per
// non-zero it broadcasts v and loads NB vectors of D's row p. With trans_out the result is
// stored transposed (out is N x lines): dW = (dZ^T . X)^T when dZ is the sparse one.
//
// gemm_sparse_sddmm: the backward-by-input pass, dX = (dZ . W^T) (*) mask: for every stored
// position (i, k) of the mask only, the dot product of dZ's row i and W's row k.

#define NB SP_SPARSE_NB
#define CB (SP_VEC * SP_SPARSE_NB)

// The arguments that describe one form of S: the tile-line starts (tpos: exclusive scan of the
// non-empty flags, in the form's tile order), the list of non-empty tiles, each tile's element
// offset, the per-line offsets inside each tile (off, stride entries per tile), and the
// positions and values of the non-zeros.
#define S_ARGS                                                                                    \
    const uint lines, const uint sub_lines, const uint tiles_per_line,                            \
    __global const uint *tpos, __global const uint *list, __global const uint *elem_off,          \
    __global const ushort *off, const uint stride, __global const ushort *idx,                    \
    __global const float *src, const uint src_cols, const uint tiles_c, const uint form

// Where the non-zeros of line i inside tile t come from: position p = p0 + idx (a column of S
// for the ROWS form, a row for the COLS form) and value src[v0 + idx * vstep].
#define TILE_ORIGIN(t, i, p0, v0, vstep)                                                          \
    if (form == 0) {                                                                              \
        p0 = ((t) % tiles_c) * SP_TILE_COLS;                                                      \
        v0 = (size_t)(i) * src_cols + p0;                                                         \
        vstep = 1;                                                                                \
    } else {                                                                                      \
        p0 = ((t) / tiles_c) * SP_TILE_ROWS;                                                      \
        v0 = (size_t)p0 * src_cols + (i);                                                         \
        vstep = src_cols;                                                                         \
    }

// Both kernels walk the tiles of their lines in step: a work-group holds SP_GEMM_WG consecutive
// lines, and all of its work-items visit tile u of their line before any visits tile u + 1
// (the barrier). The rows of the dense operand a tile needs (TILE_COLS rows of W for the
// forward pass, TILE_ROWS rows of dZ for backward-by-weight) are then read by every
// work-item of the group while they are in the first-level cache. On CPU drivers (POCL) the
// barrier turns into a loop over the work-items per tile, with the accumulators kept per
// work-item between tiles. Empty tiles (elem_off[t] == elem_off[t + 1]) are skipped.

// The tile of line `line` at step u, and this line's non-zeros in it: [*eb, *ee).
#define TILE_AT(u, line) (form == 0 ? (line) * tiles_c + (u) : (u) * tiles_c + (line))

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_lines(S_ARGS, __global const float *restrict d, const uint n,
                       __global float *restrict out, const uint trans_out) {
    const uint i = get_global_id(0);
    const uint j0 = get_global_id(1) * CB;
    const bool active = i < lines && j0 < n;
    const uint line = min(i, lines - 1) / sub_lines, sub = min(i, lines - 1) % sub_lines;
    // nv full vectors in this column block, then fewer than SP_VEC leftover columns (the last
    // block of a row whose length is not a multiple of the vector width).
    const uint nv = active ? min((uint)NB, (n - j0) / SP_VEC) : 0;
    const uint tb = j0 + nv * SP_VEC, te = active ? min(n, j0 + CB) : tb;
    floatv acc[NB];
    float tail[SP_VEC];
    _Pragma("unroll") for (int c = 0; c < NB; c++) acc[c] = (floatv)(0.0f);
    for (uint j = 0; j < SP_VEC; j++) tail[j] = 0.0f;
    for (uint u = 0; u < tiles_per_line; u++) {
        const uint t = TILE_AT(u, line);
        const uint base = elem_off[t];
        if (active && elem_off[t + 1] != base) {
            __global const ushort *o = off + (size_t)t * stride + sub;
            const uint eb = base + o[0], ee = base + o[1];
            uint p0, vstep;
            size_t v0;
            TILE_ORIGIN(t, i, p0, v0, vstep);
            __global const float *sv = src + v0;
            __global const float *dt = d + (size_t)p0 * n;
            for (uint e = eb; e < ee; e++) {
                const uint rel = idx[e];
                const float v = sv[rel * vstep];
                __global const float *dr = dt + (size_t)rel * n;
                _Pragma("unroll") for (uint c = 0; c < NB; c++)
                    if (c < nv) acc[c] = fma((floatv)(v), VLOAD_AT(dr + j0 + c * SP_VEC), acc[c]);
                for (uint j = tb; j < te; j++) tail[j - tb] = fma(v, dr[j], tail[j - tb]);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (!active) return;
    if (!trans_out) {
        _Pragma("unroll") for (uint c = 0; c < NB; c++)
            if (c < nv) VSTORE_AT(acc[c], out + (size_t)i * n + j0 + c * SP_VEC);
        for (uint j = tb; j < te; j++) out[(size_t)i * n + j] = tail[j - tb];
    } else {
        _Pragma("unroll") for (uint c = 0; c < NB; c++) {
            if (c >= nv) break;
            float tmp[SP_VEC];
            VSTORE_AT(acc[c], tmp);
            for (int l = 0; l < SP_VEC; l++)
                out[(size_t)(j0 + c * SP_VEC + l) * lines + i] = tmp[l];
        }
        for (uint j = tb; j < te; j++) out[(size_t)j * lines + i] = tail[j - tb];
    }
}

// The same product walking only the listed non-empty tiles of each line, each work-item on its
// own (no barrier): better where the dense operand's rows a line needs already stay in cache
// (the forward pass: a row of X gathers rows of W, the same W panel for every row).
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_lines_list(S_ARGS, __global const float *restrict d, const uint n,
                       __global float *restrict out, const uint trans_out) {
    const uint i = get_global_id(0);
    const uint j0 = get_global_id(1) * CB;
    const bool active = i < lines && j0 < n;
    const uint line = min(i, lines - 1) / sub_lines, sub = min(i, lines - 1) % sub_lines;
    // nv full vectors in this column block, then fewer than SP_VEC leftover columns (the last
    // block of a row whose length is not a multiple of the vector width).
    const uint nv = active ? min((uint)NB, (n - j0) / SP_VEC) : 0;
    const uint tb = j0 + nv * SP_VEC, te = active ? min(n, j0 + CB) : tb;
    floatv acc[NB];
    float tail[SP_VEC];
    _Pragma("unroll") for (int c = 0; c < NB; c++) acc[c] = (floatv)(0.0f);
    for (uint j = 0; j < SP_VEC; j++) tail[j] = 0.0f;
    const uint qb = active ? tpos[line * tiles_per_line] : 0;
    const uint qe = active ? tpos[(line + 1) * tiles_per_line] : 0;
    for (uint q = qb; q < qe; q++) {
        const uint t = list[q];
        const uint base = elem_off[t];
        {
            __global const ushort *o = off + (size_t)t * stride + sub;
            const uint eb = base + o[0], ee = base + o[1];
            uint p0, vstep;
            size_t v0;
            TILE_ORIGIN(t, i, p0, v0, vstep);
            __global const float *sv = src + v0;
            __global const float *dt = d + (size_t)p0 * n;
            for (uint e = eb; e < ee; e++) {
                const uint rel = idx[e];
                const float v = sv[rel * vstep];
                __global const float *dr = dt + (size_t)rel * n;
                _Pragma("unroll") for (uint c = 0; c < NB; c++)
                    if (c < nv) acc[c] = fma((floatv)(v), VLOAD_AT(dr + j0 + c * SP_VEC), acc[c]);
                for (uint j = tb; j < te; j++) tail[j - tb] = fma(v, dr[j], tail[j - tb]);
            }
        }
    }
    if (!active) return;
    if (!trans_out) {
        _Pragma("unroll") for (uint c = 0; c < NB; c++)
            if (c < nv) VSTORE_AT(acc[c], out + (size_t)i * n + j0 + c * SP_VEC);
        for (uint j = tb; j < te; j++) out[(size_t)i * n + j] = tail[j - tb];
    } else {
        _Pragma("unroll") for (uint c = 0; c < NB; c++) {
            if (c >= nv) break;
            float tmp[SP_VEC];
            VSTORE_AT(acc[c], tmp);
            for (int l = 0; l < SP_VEC; l++)
                out[(size_t)(j0 + c * SP_VEC + l) * lines + i] = tmp[l];
        }
        for (uint j = tb; j < te; j++) out[(size_t)j * lines + i] = tail[j - tb];
    }
}

// dx must be zero where the mask is zero (the host fills it first); only masked positions are
// written. One work-item per row i of the mask (ROWS form). dz: rows x n, w: cols x n,
// dx: rows x cols.
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_sddmm(S_ARGS, __global const float *restrict dz, __global const float *restrict w,
                       const uint n, const uint cols, __global float *restrict dx) {
    const uint i = get_global_id(0);
    const bool active = i < lines;
    const uint line = min(i, lines - 1) / sub_lines, sub = min(i, lines - 1) % sub_lines;
    __global const float *zr = dz + (size_t)min(i, lines - 1) * n;
    const uint nv = n / SP_VEC * SP_VEC;
    const uint qb = active ? tpos[line * tiles_per_line] : 0;
    const uint qe = active ? tpos[(line + 1) * tiles_per_line] : 0;
    for (uint q = qb; q < qe; q++) {
        const uint t = list[q];
        const uint base = elem_off[t];
        {
            __global const ushort *o = off + (size_t)t * stride + sub;
            const uint eb = base + o[0], ee = base + o[1];
            const uint c0 = (t % tiles_c) * SP_TILE_COLS;
            for (uint e = eb; e < ee; e++) {
                const uint k = c0 + idx[e];
                __global const float *wr = w + (size_t)k * n;
                floatv s = (floatv)(0.0f);
                for (uint j = 0; j < nv; j += SP_VEC)
                    s = fma(VLOAD_AT(zr + j), VLOAD_AT(wr + j), s);
                float r = VSUM(s);
                for (uint j = nv; j < n; j++) r = fma(zr[j], wr[j], r);
                dx[(size_t)i * cols + k] = r;
            }
        }
    }
}
