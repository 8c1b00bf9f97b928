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
    __global const ushort *off, const uint stride, __global const int *idx,                       \
    __global const float *val

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_lines(S_ARGS, __global const float *restrict d, const uint n,
                       __global float *restrict out, const uint trans_out) {
    const uint i = get_global_id(0);
    const uint j0 = get_global_id(1) * CB;
    if (i >= lines || j0 >= n) return;
    const uint line = i / sub_lines, sub = i % sub_lines;
    const uint qb = tpos[line * tiles_per_line], qe = tpos[(line + 1) * tiles_per_line];
    // nv full vectors in this column block, then fewer than SP_VEC leftover columns (the last
    // block of a row whose length is not a multiple of the vector width).
    const uint nv = min((uint)NB, (n - j0) / SP_VEC);
    const uint tb = j0 + nv * SP_VEC, te = min(n, j0 + CB);
    floatv acc[NB];
    float tail[SP_VEC];
    _Pragma("unroll") for (int c = 0; c < NB; c++) acc[c] = (floatv)(0.0f);
    for (uint j = 0; j < SP_VEC; j++) tail[j] = 0.0f;
    for (uint q = qb; q < qe; q++) {
        const uint t = list[q];
        __global const ushort *o = off + (size_t)t * stride + sub;
        const uint eb = elem_off[t] + o[0], ee = elem_off[t] + o[1];
        for (uint e = eb; e < ee; e++) {
            const float v = val[e];
            __global const float *dr = d + (size_t)idx[e] * n;
            _Pragma("unroll") for (uint c = 0; c < NB; c++)
                if (c < nv) acc[c] = fma((floatv)(v), VLOAD_AT(dr + j0 + c * SP_VEC), acc[c]);
            for (uint j = tb; j < te; j++) tail[j - tb] = fma(v, dr[j], tail[j - tb]);
        }
    }
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
// written. One work-item per row i of the mask. dz: rows x n, w: cols x n, dx: rows x cols.
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1)))
void gemm_sparse_sddmm(S_ARGS, __global const float *restrict dz, __global const float *restrict w,
                       const uint n, const uint cols, __global float *restrict dx) {
    const uint i = get_global_id(0);
    if (i >= lines) return;
    const uint line = i / sub_lines, sub = i % sub_lines;
    const uint qb = tpos[line * tiles_per_line], qe = tpos[(line + 1) * tiles_per_line];
    __global const float *zr = dz + (size_t)i * n;
    const uint nv = n / SP_VEC * SP_VEC;
    for (uint q = qb; q < qe; q++) {
        const uint t = list[q];
        __global const ushort *o = off + (size_t)t * stride + sub;
        const uint eb = elem_off[t] + o[0], ee = elem_off[t] + o[1];
        for (uint e = eb; e < ee; e++) {
            const uint k = (uint)idx[e];
            __global const float *wr = w + (size_t)k * n;
            floatv s = (floatv)(0.0f);
            for (uint j = 0; j < nv; j += SP_VEC) s = fma(VLOAD_AT(zr + j), VLOAD_AT(wr + j), s);
            float r = VSUM(s);
            for (uint j = nv; j < n; j++) r = fma(zr[j], wr[j], r);
            dx[(size_t)i * cols + k] = r;
        }
    }
}
