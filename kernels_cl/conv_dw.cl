// Convolution backward-by-weight without the patch matrix (runtime/ops/conv_dw.c launches it):
// dW = im2col(x)^T . dY. Images are NHWC; dY is (batch out_h out_w) x out_c; dW is
// (k_h k_w in_c) x out_c, row e = (ky k_w + kx) in_c + c (the conv layer's W):
//
//     dW[e, j] = sum over the output pixels p of x[pixel p shifted by (ky, kx), c] dY[p, j]
//
// (zero where the shifted pixel lies in the padding). The reduction runs over the pixels.
//
// Two orientations of the same register-blocked micro-kernel (gemm_dense.cl's tunables: a
// work-item holds SP_GEMM_RB x SP_GEMM_NB vectors of SP_VEC accumulators), because either
// operand of a pixel is contiguous in channels and can fill a vector:
//
// conv_dw_cvec (vectors over input channels, SparseTrain's): a work-item owns one window
//   position (ky, kx), NB vectors of input channels and RB output channels. Per pixel it loads
//   NB vectors of x at the shifted pixel and RB scalars of dY's row, and for each scalar does NB
//   vector FMAs.
// conv_dw_ocvec (vectors over output channels, the transposed GEMM's): a work-item owns RB
//   consecutive rows e of dW (any positions and channels: lenet5's conv1 has in_c = 1) and NB
//   vectors of output channels. Per pixel it loads NB vectors of dY's row and RB scalars of x.
// The host picks the one whose vectors and blocks are fuller for the shape (conv_dw.c), or, for
// stride 1 and one input channel, conv_dw_rows (vectors over a row's pixels, below) where that
// fills them better still.
//
// Their work-items: one dimension, the blocks of dW of one slice of pixels (rows of blocks
// fastest: the work-items of a group read the same pixels, which stay in cache), then the
// slices. Slice part0 + s walks the pixels [(part0 + s) pc, + pc) and writes its own patch x
// out_c block of the output (dw + s patch out_c) as alpha acc + beta dw; the host sums the
// slices when there is more than one (sp_split_reduce) and keeps pc bounded so that no
// work-item runs more than LOOP_MAX loop iterations. Blocks past dW's edges compute on clamped
// indices (or zeros) and are not stored. A vector that runs past the channels of a row is read
// whole where the buffer goes on (its extra lanes are never stored).
//
// The sparse kernels: conv_dw_cvec_tile skips dY's zeros through a bit mask per pixel, with its
// block of dW in local memory; conv_dw_ocvec_sparse skips x's, walking lists of non-zeros (see
// "Skipping zeros" and "dY's zeros skipped" below).

#define RB SP_GEMM_RB
#define NB SP_GEMM_NB
#define CB (SP_VEC * SP_GEMM_NB)

// The geometry and operands, as the kernels receive them (dw: this slice's or chunk's block of
// it), with the lengths of x and dY.
typedef struct sp_dw {
    uint in_h, in_w, in_c, k_h, k_w, stride, pad, out_h, out_w, out_c, patch, x_len, dy_len;
    __global const float *x, *dy;
    __global float *dw;
} sp_dw;

// The geometry of a window of batch images, out_c outputs.
SP_INLINE sp_dw sp_dw_geom(const uint batch, const uint in_h, const uint in_w, const uint in_c,
                           const uint k_h, const uint k_w, const uint stride, const uint pad,
                           const uint out_h, const uint out_w, const uint out_c,
                           __global const float *x, __global const float *dy, __global float *dw) {
    const uint patch = k_h * k_w * in_c, x_len = batch * in_h * in_w * in_c;
    const uint dy_len = batch * out_h * out_w * out_c;
    const sp_dw g = {in_h,  in_w,  in_c,  k_h,   k_w,    stride, pad, out_h,
                     out_w, out_c, patch, x_len, dy_len, x,      dy,  dw};
    return g;
}

// The walk over a slice's output pixels: p, its image b and row oy, column ox, and the input
// coordinates of its window's top-left corner (iy, ix) and that corner's channel 0 in x (base),
// all modulo 2^32, so that a corner in the padding above or left wraps past in_h / in_w and
// one unsigned compare per axis tests both sides of the image.
typedef struct sp_pix {
    uint p, b, oy, ox, iy, ix, base;
} sp_pix;

SP_INLINE uint sp_pix_base(const sp_dw g, const sp_pix w) {
    return ((w.b * g.in_h + w.iy) * g.in_w + w.ix) * g.in_c;
}

SP_INLINE sp_pix sp_pix_at(const sp_dw g, const uint p) {
    sp_pix w;
    const uint row = p / g.out_w;
    w.p = p;
    w.b = row / g.out_h;
    w.oy = row - w.b * g.out_h;
    w.ox = p - row * g.out_w;
    w.iy = w.oy * g.stride - g.pad;
    w.ix = w.ox * g.stride - g.pad;
    w.base = sp_pix_base(g, w);
    return w;
}

// The next pixel: along the row, and at its end the next row or image.
SP_INLINE sp_pix sp_pix_next(const sp_dw g, sp_pix w) {
    w.p++;
    w.ox++;
    w.ix += g.stride;
    w.base += g.stride * g.in_c;
    if (w.ox == g.out_w) {
        w.ox = 0;
        w.ix = 0u - g.pad;
        w.oy++;
        w.iy += g.stride;
        if (w.oy == g.out_h) {
            w.oy = 0;
            w.iy = 0u - g.pad;
            w.b++;
        }
        w.base = sp_pix_base(g, w);
    }
    return w;
}

// NB vectors from buf + i (buf holds len floats), the first nv of them read, the last of those
// holding last channels: whole where the buffer has room, else its lanes up to last.
SP_INLINE void sp_dw_load(floatv a[NB], __global const float *buf, const uint len, const uint i,
                          const uint nv, const uint last) {
#pragma unroll
    for (int v = 0; v < NB; v++) {
        __global const float *p = buf + i + v * SP_VEC;
        a[v] = v + 1 < nv                                                       ? VLOAD_AT(p)
               : v + 1 == nv && (last == SP_VEC || i + (v + 1) * SP_VEC <= len) ? VLOAD_AT(p)
               : v + 1 == nv ? sp_load_part(p, last)
                             : (floatv)(0.0f);
    }
}

// lanes (<= SP_VEC) of alpha acc down the column j of dW from row e, as alpha acc + beta dW.
SP_INLINE void sp_dw_store_col(const sp_dw g, const floatv acc, const uint e, const uint j,
                               const uint lanes, const float alpha, const float beta) {
    float t[SP_VEC];
    VSTORE_AT((floatv)(alpha)*acc, t);
    __global float *col = g.dw + (size_t)e * g.out_c + j;
#pragma unroll
    for (uint l = 0; l < SP_VEC; l++) {
        if (l < lanes) {
            __global float *o = col + (size_t)l * g.out_c;
            *o = beta != 0.0f ? fma(beta, *o, t[l]) : t[l];
        }
    }
}

// len (<= SP_VEC) lanes of alpha acc along row e of dW from column j0, as alpha acc + beta dW.
SP_INLINE void sp_dw_store_row(const sp_dw g, const floatv acc, const uint e, const uint j0,
                               const uint len, const float alpha, const float beta) {
    __global float *o = g.dw + (size_t)e * g.out_c + j0;
    floatv t = (floatv)(alpha)*acc;
    if (beta != 0.0f) t = fma((floatv)(beta), sp_load_part(o, len), t);
    sp_store_part(t, o, len);
}

// ---- vectors over input channels ------------------------------------------------------------

// Position (ky, kx), channels c0.. in nv (<= NB) vectors, the last holding last (<= SP_VEC)
// channels, output channels j0.. (nr <= RB of them): accumulate over the pixels [pb, pe), then
// store. With nr = RB, nv = NB and last = SP_VEC (constants) the edge tests vanish.
SP_INLINE void sp_dw_cvec_block(const sp_dw g, const uint pb, const uint pe, const uint ky,
                                const uint kx, const uint c0, const uint j0, const uint nr,
                                const uint nv, const uint last, const float alpha,
                                const float beta) {
    floatv acc[RB][NB];
#pragma unroll
    for (int r = 0; r < RB; r++) {
#pragma unroll
        for (int v = 0; v < NB; v++) acc[r][v] = (floatv)(0.0f);
    }
    const uint off = (ky * g.in_w + kx) * g.in_c + c0;
    sp_pix w = sp_pix_at(g, pb);
    for (uint p = pb; p < pe; p++, w = sp_pix_next(g, w)) {
        if (w.iy + ky >= g.in_h || w.ix + kx >= g.in_w) continue; // x is 0 in the padding
        __global const float *drow = g.dy + (size_t)p * g.out_c + j0;
        floatv a[NB];
        sp_dw_load(a, g.x, g.x_len, w.base + off, nv, last); // the uint sum wraps, not a pointer
#pragma unroll
        for (int r = 0; r < RB; r++) {
            const floatv d = (floatv)(r < nr ? drow[r] : 0.0f);
#pragma unroll
            for (int v = 0; v < NB; v++) acc[r][v] = fma(d, a[v], acc[r][v]);
        }
    }
    // acc[r][v] lane l is dW[row of channel c0 + v SP_VEC + l, j0 + r]: a column of dW per r
    const uint e0 = (ky * g.k_w + kx) * g.in_c + c0;
#pragma unroll
    for (int v = 0; v < NB; v++) {
        const uint lanes = v + 1 < nv ? SP_VEC : v + 1 == nv ? last : 0;
#pragma unroll
        for (int r = 0; r < RB; r++)
            if (r < nr && lanes > 0)
                sp_dw_store_col(g, acc[r][v], e0 + v * SP_VEC, j0 + r, lanes, alpha, beta);
    }
}

// The work-item's block q of a slice: output channels block q / (k_h k_w cblocks), then the
// window position, then the block of CB input channels.
SP_INLINE void sp_dw_cvec(const sp_dw g, const uint q, const uint pb, const uint pe,
                          const float alpha, const float beta) {
    const uint cblocks = (g.in_c + CB - 1) / CB, rblocks = g.patch / g.in_c * cblocks;
    const uint jb = q / rblocks, rq = q - jb * rblocks;
    const uint pos = rq / cblocks, c0 = (rq - pos * cblocks) * CB, j0 = jb * RB;
    const uint ky = pos / g.k_w, kx = pos - ky * g.k_w;
    const uint nr = min((uint)RB, g.out_c - j0), rest = min((uint)CB, g.in_c - c0);
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    if (nr == RB && nv == NB && last == SP_VEC)
        sp_dw_cvec_block(g, pb, pe, ky, kx, c0, j0, RB, NB, SP_VEC, alpha, beta);
    else if (last == SP_VEC)
        sp_dw_cvec_block(g, pb, pe, ky, kx, c0, j0, nr, nv, SP_VEC, alpha, beta);
    else
        sp_dw_cvec_block(g, pb, pe, ky, kx, c0, j0, nr, nv, last, alpha, beta);
}

// ---- vectors over output channels -----------------------------------------------------------

// Rows e0.. of dW (nr <= RB of them), output channels j0.. in nv (<= NB) vectors, the last
// holding last (<= SP_VEC): accumulate over the pixels [pb, pe), then store.
SP_INLINE void sp_dw_ocvec_block(const sp_dw g, const uint pb, const uint pe, const uint e0,
                                 const uint j0, const uint nr, const uint nv, const uint last,
                                 const float alpha, const float beta) {
    floatv acc[RB][NB];
    uint ky[RB], kx[RB], off[RB];
#pragma unroll
    for (int r = 0; r < RB; r++) {
#pragma unroll
        for (int v = 0; v < NB; v++) acc[r][v] = (floatv)(0.0f);
        const uint e = min(e0 + r, g.patch - 1), pos = e / g.in_c, c = e - pos * g.in_c;
        ky[r] = pos / g.k_w;
        kx[r] = pos - ky[r] * g.k_w;
        off[r] = (ky[r] * g.in_w + kx[r]) * g.in_c + c;
    }
    sp_pix w = sp_pix_at(g, pb);
    for (uint p = pb; p < pe; p++, w = sp_pix_next(g, w)) {
        floatv b[NB];
        sp_dw_load(b, g.dy, g.dy_len, p * g.out_c + j0, nv, last);
#pragma unroll
        for (int r = 0; r < RB; r++) {
            const bool in = r < nr && w.iy + ky[r] < g.in_h && w.ix + kx[r] < g.in_w;
            const floatv a = (floatv)(in ? g.x[w.base + off[r]] : 0.0f);
#pragma unroll
            for (int v = 0; v < NB; v++) acc[r][v] = fma(a, b[v], acc[r][v]);
        }
    }
#pragma unroll
    for (int r = 0; r < RB; r++) {
#pragma unroll
        for (int v = 0; v < NB; v++)
            if (r < nr && v < nv)
                sp_dw_store_row(g, acc[r][v], e0 + r, j0 + v * SP_VEC, v + 1 < nv ? SP_VEC : last,
                                alpha, beta);
    }
}

// The work-item's block q of a slice: output channels block q / rblocks, then RB rows of dW.
SP_INLINE void sp_dw_ocvec(const sp_dw g, const uint q, const uint pb, const uint pe,
                           const float alpha, const float beta) {
    const uint rblocks = (g.patch + RB - 1) / RB;
    const uint jb = q / rblocks, e0 = (q - jb * rblocks) * RB, j0 = jb * CB;
    const uint nr = min((uint)RB, g.patch - e0), rest = min((uint)CB, g.out_c - j0);
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    if (nr == RB && nv == NB && last == SP_VEC)
        sp_dw_ocvec_block(g, pb, pe, e0, j0, RB, NB, SP_VEC, alpha, beta);
    else if (last == SP_VEC)
        sp_dw_ocvec_block(g, pb, pe, e0, j0, nr, nv, SP_VEC, alpha, beta);
    else
        sp_dw_ocvec_block(g, pb, pe, e0, j0, nr, nv, last, alpha, beta);
}

// ---- Skipping x's zeros ---------------------------------------------------------------------
//
// A test per scalar costs a CPU more than the vector FMAs it saves below 90 % zeros (a
// mispredicted branch is 15-20 cycles), so conv_dw_ocvec_sparse walks lists of non-zeros
// instead, made without a branch, of x seen as a matrix M of rows x cols (input pixels x in_c),
// and each work-item owns one column of M:
//
// conv_dw_lists: per slice s of pc rows and column j, the count of M's non-zeros, their values
//   and their rows (as offsets in the slice), in order.
// conv_dw_table: per row of M, what the kernels need of its pixel (see SP_DW_TAB).
// conv_dw_chunks: per column, where each slice's list starts in the column's whole list (an
//   exclusive scan), and how many chunks of E non-zeros that whole list makes.
// conv_dw_ocvec_sparse (M = x, stride 1): a work-item per chunk of an input channel c, block of
//   PB positions and block of NB vectors of output channels: per non-zero x[q, c], NB vector
//   FMAs with dY's row at each output pixel whose window holds q at that position.
// conv_dw_sum: each chunk wrote its block to its own partial dW; this adds, per element, the
//   chunks its column of M has (their number follows the non-zeros, not the pixels).
//
// The lists live in one buffer of uints, at these offsets for L = nparts cols lists:
//   counts [0, L), list (s, j) at s cols + j;  starts [L, 2 L), the same;  chunks [2 L, + cols);
//   the table, 4 per row of M, from 2 L + cols;  the lists' values, list (s, j) from
//   2 L + cols + 4 rows + (s cols + j) pc;  then their rows as ushorts, list (s, j) from ushort
//   2 (2 L + cols + 4 rows + L pc) + (s cols + j) pc. The values sit beside the rows: gathering
//   them from M per non-zero missed the cache.
#define SP_DW_STARTS(L)              (L)
#define SP_DW_CHUNKS(L)              (2 * (size_t)(L))
#define SP_DW_TAB(L, cols)           (2 * (size_t)(L) + (cols))
#define SP_DW_VAL(L, cols, rows)     (SP_DW_TAB(L, cols) + 4 * (size_t)(rows))
#define SP_DW_ENT(L, cols, rows, pc) (2 * (SP_DW_VAL(L, cols, rows) + (size_t)(L) * (pc)))

// Window positions per work-item of the sparse kernels: a 3 x 3 window, the presets' (5 x 5 ones
// make blocks of 9, 8, 8). Its accumulators, PB x NB vectors, take about what the dense
// kernels' RB x NB and operands do: the sparse kernels keep one vector operand at a time.
#define PB 9

// A sparse work-item's walk over its non-zeros [e, e1) of column col's whole list: the slice s
// it is in, with the rest of the slice's list (n entries from at, rows from s pc), and where
// the lists are (see the offsets above).
typedef struct sp_walk {
    __global const uint *lists, *starts, *tab;
    __global const float *val;
    __global const ushort *ent;
    uint pc, cols, col, e, e1, s, n, rb;
    size_t at;
} sp_walk;

// The chunk k of E non-zeros of column col of the lists, positioned at its first slice (by
// bisection of the starts); false where the column has no such chunk.
SP_INLINE bool sp_walk_at(sp_walk *w, __global const uint *lists, const uint nparts, const uint pc,
                          const uint rows, const uint cols, const uint col, const uint k,
                          const uint E) {
    const uint L = nparts * cols;
    if (k >= lists[SP_DW_CHUNKS(L) + col]) return false;
    w->lists = lists;
    w->starts = lists + SP_DW_STARTS(L) + col;
    w->tab = lists + SP_DW_TAB(L, cols); // read with vload4: 4-byte aligned
    w->val = (__global const float *)lists + SP_DW_VAL(L, cols, rows);
    w->ent = (__global const ushort *)lists + SP_DW_ENT(L, cols, rows, pc);
    w->pc = pc;
    w->cols = cols;
    w->col = col;
    const uint last = (nparts - 1) * cols + col;
    w->e = k * E;
    w->e1 = min(w->starts[(size_t)(nparts - 1) * cols] + lists[last], w->e + E);
    uint lo = 0, hi = nparts;
    while (hi - lo > 1) {
        const uint mid = (lo + hi) / 2;
        if (w->starts[(size_t)mid * cols] <= w->e)
            lo = mid;
        else
            hi = mid;
    }
    w->s = lo;
    return true;
}

// The walk's next slice (n entries of it from at, rows from rb); false at the walk's end.
SP_INLINE bool sp_walk_slice(sp_walk *w) {
    if (w->e >= w->e1) return false;
    const uint start = w->starts[(size_t)w->s * w->cols], list = w->s * w->cols + w->col;
    w->n = min(w->lists[list] - (w->e - start), w->e1 - w->e);
    w->at = (size_t)list * w->pc + (w->e - start);
    w->rb = w->s * w->pc;
    w->e += w->n;
    w->s++;
    return true;
}

// x's non-zeros of input channel c (rows: input pixels, table: the output pixel whose window
// has the pixel at its top-left corner, modulo 2^32, and the pixel's padded coordinates) x PB
// positions from pos0 x output channels j0.. in nv vectors: per non-zero, NB vector FMAs with
// dY's row at each output pixel the position reaches (stride 1: that pixel moved back by the
// position; no test where every position reaches one); stored along the rows of the partial.
SP_INLINE void sp_dw_ocvec_sparse_block(const sp_dw g, sp_walk w, const uint pos0, const uint nq,
                                        const uint j0, const uint nv, const uint last) {
    floatv acc[PB][NB];
    uint ky[PB], kx[PB], off[PB];
#pragma unroll
    for (int q = 0; q < PB; q++) {
#pragma unroll
        for (int v = 0; v < NB; v++) acc[q][v] = (floatv)(0.0f);
        const uint pos = pos0 + min((uint)q, nq - 1);
        ky[q] = pos / g.k_w;
        kx[q] = pos - ky[q] * g.k_w;
        off[q] = ky[q] * g.out_w + kx[q];
    }
    // padded coordinates from which every position reaches an output pixel: [k - 1, out)
    // (compared as they are: LLVM turns a clamped difference into a saturating subtraction,
    // which Oclgrind 21.10 cannot run)
    const uint top = g.k_h - 1, left = g.k_w - 1;
    while (sp_walk_slice(&w)) {
        for (uint i = 0; i < w.n; i++) {
            const uint4 t = vload4(w.rb + w.ent[w.at + i], w.tab);
            const floatv xs = (floatv)(w.val[w.at + i]);
            const bool inside = t.y >= top && t.y < g.out_h && t.z >= left && t.z < g.out_w;
#pragma unroll
            for (int q = 0; q < PB; q++) {
                if (q < nq && (inside || (t.y - ky[q] < g.out_h && t.z - kx[q] < g.out_w))) {
                    floatv b[NB];
                    sp_dw_load(b, g.dy, g.dy_len, (t.x - off[q]) * g.out_c + j0, nv, last);
#pragma unroll
                    for (int u = 0; u < NB; u++) acc[q][u] = fma(xs, b[u], acc[q][u]);
                }
            }
        }
    }
#pragma unroll
    for (int q = 0; q < PB; q++) {
#pragma unroll
        for (int u = 0; u < NB; u++)
            if (q < nq && u < nv)
                sp_dw_store_row(g, acc[q][u], (pos0 + q) * g.in_c + w.col, j0 + u * SP_VEC,
                                u + 1 < nv ? SP_VEC : last, 1.0f, 0.0f);
    }
}

// ---- dY's zeros skipped with dW in local memory: conv_dw_cvec_tile ---------------------------
//
// The list kernel this replaced walked dY's non-zeros of one output channel per work-item, as
// conv_dw_ocvec_sparse walks x's: each non-zero's FMAs fell on a window of x it had not seen
// before (the next non-zero of its channel is at another pixel), so nearly every load missed the
// first-level cache: ~165 cycles per non-zero on POCL, whatever the chunk size, 0.08-0.10 of the
// ideal at 90 % zeros. This kernel turns the loops around. A work-group owns a tile of dW in
// local memory: jt <= SP_DW_TILE_J output channels x up to PB window positions x its channels
// (cw work-items of NB vectors each). It walks a slice of output pixels in order; per pixel each
// work-item
//   1. reads dY[p, j0 .. j0 + jt) into a bit mask (no branch per scalar);
//   2. where a bit is set, loads its window of x (PB x NB vectors) into registers, once;
//   3. per set bit j: dY[p, j] times the window into the tile's rows of j: PB x NB loads, FMAs
//      and stores, all in the first-level cache.
// The windows of consecutive pixels overlap, so step 2 mostly hits the cache too. The work-items
// of a group share the pixels and the mask and write disjoint columns of the tile: no barrier, no
// atomics. Each element's terms are summed over the slice's pixels in order, as conv_dw_cvec
// does, less the zero ones; each slice writes its own partial dW (sp_split_reduce sums them).
#define SP_DW_TILE_J 32 // the bits of the mask: output channels per tile at most (DW_TILE_J)

// The block of the tile this work-item owns: rows (j PB + q) row vectors apart (row: the group's
// channels; vectors typed as such, so that each load and store is one instruction: vstore to a
// float pointer was four on POCL, and the next load of the same vector waited for them), its
// vectors at mine; output channels j0.. (nj), positions pos0.. (nq), channels c0..
// in nv vectors (the last holding last): walk the pixels [pb, pe), then store into g.dw.
SP_INLINE void sp_dw_tile_block(const sp_dw g, __local floatv *mine, const uint row, const uint pb,
                                const uint pe, const uint pos0, const uint nq, const uint c0,
                                const uint j0, const uint nj, const uint nv, const uint last,
                                const float alpha, const float beta) {
    uint ky[PB], kx[PB], off[PB];
#pragma unroll
    for (int q = 0; q < PB; q++) {
        const uint pos = pos0 + min((uint)q, nq - 1);
        ky[q] = pos / g.k_w;
        kx[q] = pos - ky[q] * g.k_w;
        off[q] = (ky[q] * g.in_w + kx[q]) * g.in_c + c0;
    }
    for (uint j = 0; j < nj; j++) {
#pragma unroll
        for (int q = 0; q < PB; q++) {
#pragma unroll
            for (int v = 0; v < NB; v++)
                if (q < nq && v < nv) mine[(j * PB + q) * row + v] = (floatv)(0.0f);
        }
    }
    // corners from which the whole window lies inside the image (as uint: not above or left)
    const uint lim_h = g.in_h >= g.k_h ? g.in_h - g.k_h + 1 : 0;
    const uint lim_w = g.in_w >= g.k_w ? g.in_w - g.k_w + 1 : 0;
    sp_pix w = sp_pix_at(g, pb);
    for (uint p = pb; p < pe; p++, w = sp_pix_next(g, w)) {
        __global const float *drow = g.dy + (size_t)p * g.out_c + j0;
        uint m = sp_nonzero_mask(drow, nj); // bit i: dY[p, j0 + i] is not 0
        if (m == 0) continue;
        const bool inside = w.iy < lim_h && w.ix < lim_w;
        bool ok[PB];
        floatv a[PB][NB];
#pragma unroll
        for (int q = 0; q < PB; q++) {
            ok[q] = q < nq && (inside || (w.iy + ky[q] < g.in_h && w.ix + kx[q] < g.in_w));
            if (ok[q])
                sp_dw_load(a[q], g.x, g.x_len, w.base + off[q], nv, last);
            else
#pragma unroll
                for (int v = 0; v < NB; v++) a[q][v] = (floatv)(0.0f);
        }
        do {
            const uint j = 31 - clz(m);
            m ^= 1u << j;
            const floatv d = (floatv)(drow[j]);
            __local floatv *t = mine + j * PB * row;
#pragma unroll
            for (int q = 0; q < PB; q++) {
#pragma unroll
                for (int v = 0; v < NB; v++) {
                    if (ok[q] && v < nv) t[q * row + v] = fma(d, a[q][v], t[q * row + v]);
                }
            }
        } while (m != 0);
    }
    // lane l of vector v of row (j, q) is dW[(pos0 + q) in_c + c0 + v SP_VEC + l, j0 + j]
    for (uint j = 0; j < nj; j++) {
#pragma unroll
        for (int q = 0; q < PB; q++) {
#pragma unroll
            for (int v = 0; v < NB; v++) {
                const uint lanes = v + 1 < nv ? SP_VEC : v + 1 == nv ? last : 0;
                if (q < nq && lanes > 0)
                    sp_dw_store_col(g, mine[(j * PB + q) * row + v],
                                    (pos0 + q) * g.in_c + c0 + v * SP_VEC, j0 + j, lanes, alpha,
                                    beta);
            }
        }
    }
}

// ---- the kernels ----------------------------------------------------------------------------

// The window, in nn.cl's order.
#define SP_DW_WINDOW                                                                               \
    const uint batch, const uint in_h, const uint in_w, const uint in_c, const uint k_h,           \
        const uint k_w, const uint stride, const uint pad, const uint out_h, const uint out_w

// The dense kernels: the buffers, the window, out_c, then the slices: blocks of dW per slice,
// nparts slices from part0, pc pixels each.
#define SP_DW_ARGS                                                                                 \
    __global const float *restrict x, __global const float *restrict dy,                           \
        __global float *restrict dw, SP_DW_WINDOW, const uint out_c, const uint blocks,            \
        const uint nparts, const uint part0, const uint pc, const float alpha, const float beta

// This work-item's slice s and block q in it, its pixels [pb, pe), and the geometry with the
// slice's output (nothing for a work-item past the last slice).
#define SP_DW_SETUP                                                                                \
    const uint id = get_global_id(0), s = id / blocks, q = id - s * blocks;                        \
    if (s >= nparts) return;                                                                       \
    const uint pixels = batch * out_h * out_w;                                                     \
    const uint pb = min(pixels, (part0 + s) * pc), pe = min(pixels, pb + pc);                      \
    const sp_dw g = sp_dw_geom(batch, in_h, in_w, in_c, k_h, k_w, stride, pad, out_h, out_w,       \
                               out_c, x, dy, dw + (size_t)s * k_h * k_w * in_c * out_c)

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void conv_dw_cvec(SP_DW_ARGS) {
    SP_DW_SETUP;
    sp_dw_cvec(g, q, pb, pe, alpha, beta);
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void conv_dw_ocvec(SP_DW_ARGS) {
    SP_DW_SETUP;
    sp_dw_ocvec(g, q, pb, pe, alpha, beta);
}

// The tile kernel (above): the dense kernels' arguments, then jt output channels per tile and the
// tile (PB jt rows of the group's channels). A work-group per slice and block q of it: the block
// of jt output channels q / (pblocks cgroups), then the group of channels (its work-items' NB
// vectors each), then the block of window positions.
__kernel void conv_dw_cvec_tile(SP_DW_ARGS, const uint jt, __local floatv *restrict tile) {
    const uint cw = get_local_size(0), t = get_local_id(0), id = get_group_id(0);
    const uint s = id / blocks, q = id - s * blocks;
    if (s >= nparts) return;
    const uint pixels = batch * out_h * out_w;
    const uint pb = min(pixels, (part0 + s) * pc), pe = min(pixels, pb + pc);
    const sp_dw g = sp_dw_geom(batch, in_h, in_w, in_c, k_h, k_w, stride, pad, out_h, out_w, out_c,
                               x, dy, dw + (size_t)s * k_h * k_w * in_c * out_c);
    const uint npos = k_h * k_w, pblocks = (npos + PB - 1) / PB,
               pp = (npos + pblocks - 1) / pblocks;
    const uint cgroups = (in_c + cw * CB - 1) / (cw * CB);
    const uint jb = q / (pblocks * cgroups), rq = q - jb * (pblocks * cgroups);
    const uint cg = rq / pblocks, pos0 = (rq - cg * pblocks) * pp;
    const uint j0 = jb * jt, c0 = (cg * cw + t) * CB;
    if (j0 >= out_c || pos0 >= npos || c0 >= in_c) return;
    const uint nj = min(jt, out_c - j0), nq = min(pp, npos - pos0), rest = min((uint)CB, in_c - c0);
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    __local floatv *mine = tile + t * NB;
    const uint row = cw * NB;
    if (nq == PB && nv == NB && last == SP_VEC)
        sp_dw_tile_block(g, mine, row, pb, pe, pos0, PB, c0, j0, nj, NB, SP_VEC, alpha, beta);
    else if (nv == NB && last == SP_VEC)
        sp_dw_tile_block(g, mine, row, pb, pe, pos0, nq, c0, j0, nj, NB, SP_VEC, alpha, beta);
    else
        sp_dw_tile_block(g, mine, row, pb, pe, pos0, nq, c0, j0, nj, nv, last, alpha, beta);
}

// ---- Pixels in the lanes: conv_dw_rows ------------------------------------------------------
//
// A layer with one input channel and few outputs (lenet5's first: 1 -> 6, 5 x 5) fills neither
// orientation's vectors: a 16-wide vector of output channels holds 6 of them, and x gives one
// scalar per pixel. conv_dw_rows (stride 1 and in_c 1 only) puts SP_VEC consecutive output
// pixels of one row of one image in the lanes, as conv_forward_rows does. A work-item owns
// SP_DW_RP = 4 consecutive rows e of dW (window positions) and SP_DW_RJ = 4 output channels, 16
// vector accumulators; per row chunk it loads its channels' dY vectors from dyt (dY transposed
// to out_c x pixels) and, per position, the x vector its lanes read there, then 16 FMAs. The
// lanes are summed at the store. The work-items are the other dense kernels' slices x blocks,
// where a slice is pc row chunks [(part0 + s) pc, + pc) of the batch out_h ceil(out_w / SP_VEC)
// there are, and block q is channel block q / pblocks, position block the rest.
//
// Every load is one vector load with the lanes off the row masked, and no branch
// (sp_row_masked): x and dyt are the host's copies with SP_ROW_SLACK(pad) floats of room before
// and after (x's starts there). The accumulators are named variables, not an array: POCL kept
// an array of them in memory in this loop.
#define SP_DW_RP 4 // DW_ROWS_RP in conv_dw.c
#define SP_DW_RJ 4 // DW_ROWS_RJ

// Window position e's offsets ky - pad (.x) and kx - pad (.y).
SP_INLINE int2 sp_dw_pos(const uint e, const uint k_w, const uint pad) {
    const uint ky = e / k_w;
    return (int2)((int)ky - (int)pad, (int)(e - ky * k_w) - (int)pad);
}

// The x vector the lanes of row chunk (b, oy, ox0) read at position offsets at: zero in the
// padding and past the row's out_w pixels.
SP_INLINE floatv sp_dw_rows_x(__global const float *x, const int2 at, const uint b, const uint oy,
                              const uint ox0, const uint in_h, const uint in_w, const uint out_w) {
    const int iy = (int)oy + at.x, col = (int)ox0 + at.y;
    if (iy < 0 || iy >= (int)in_h) return (floatv)(0.0f);
    const long row0 = (long)((size_t)b * in_h + (uint)iy) * in_w;
    return sp_row_masked(x, row0 + col, col, min((int)in_w, (int)out_w + at.y));
}

// dw[e, j] = alpha sum(lanes of acc) + beta dw[e, j], for e < patch and j < out_c.
SP_INLINE void sp_dw_rows_store(__global float *dw, const uint e, const uint j, const uint patch,
                                const uint out_c, const floatv acc, const float alpha,
                                const float beta) {
    if (e >= patch || j >= out_c) return;
    __global float *at = dw + (size_t)e * out_c + j;
    const float v = alpha * VSUM(acc);
    *at = beta != 0.0f ? fma(beta, *at, v) : v;
}

#define SP_DW_ROW_FMA(r, xv)                                                                       \
    do {                                                                                           \
        const floatv xr_ = (xv);                                                                   \
        a##r##0 = fma(xr_, d0, a##r##0);                                                           \
        a##r##1 = fma(xr_, d1, a##r##1);                                                           \
        a##r##2 = fma(xr_, d2, a##r##2);                                                           \
        a##r##3 = fma(xr_, d3, a##r##3);                                                           \
    } while (0)
#define SP_DW_ROW_STORE(r)                                                                         \
    do {                                                                                           \
        sp_dw_rows_store(o, e0 + r, j0, patch, out_c, a##r##0, alpha, beta);                       \
        sp_dw_rows_store(o, e0 + r, j0 + 1, patch, out_c, a##r##1, alpha, beta);                   \
        sp_dw_rows_store(o, e0 + r, j0 + 2, patch, out_c, a##r##2, alpha, beta);                   \
        sp_dw_rows_store(o, e0 + r, j0 + 3, patch, out_c, a##r##3, alpha, beta);                   \
    } while (0)

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void conv_dw_rows(SP_DW_ARGS) {
    __global const float *xs = x + SP_ROW_SLACK(pad), *dyt = dy;
    (void)in_c;   // 1
    (void)stride; // 1
    const uint id = get_global_id(0), s = id / blocks, q = id - s * blocks;
    if (s >= nparts) return;
    const uint chunks = (out_w + SP_VEC - 1) / SP_VEC, units = batch * out_h * chunks;
    const uint ub = min(units, (part0 + s) * pc), ue = min(units, ub + pc);
    const uint patch = k_h * k_w, pblocks = (patch + SP_DW_RP - 1) / SP_DW_RP;
    const uint jb = q / pblocks, e0 = (q - jb * pblocks) * SP_DW_RP, j0 = jb * SP_DW_RJ;
    const uint pixels = batch * out_h * out_w;
    const int2 p0 = sp_dw_pos(min(e0, patch - 1), k_w, pad);
    const int2 p1 = sp_dw_pos(min(e0 + 1, patch - 1), k_w, pad);
    const int2 p2 = sp_dw_pos(min(e0 + 2, patch - 1), k_w, pad);
    const int2 p3 = sp_dw_pos(min(e0 + 3, patch - 1), k_w, pad);
    const long c0 = (long)min(j0, out_c - 1) * pixels, c1 = (long)min(j0 + 1, out_c - 1) * pixels;
    const long c2 = (long)min(j0 + 2, out_c - 1) * pixels;
    const long c3 = (long)min(j0 + 3, out_c - 1) * pixels;
    floatv a00 = 0.0f, a01 = 0.0f, a02 = 0.0f, a03 = 0.0f, a10 = 0.0f, a11 = 0.0f, a12 = 0.0f,
           a13 = 0.0f, a20 = 0.0f, a21 = 0.0f, a22 = 0.0f, a23 = 0.0f, a30 = 0.0f, a31 = 0.0f,
           a32 = 0.0f, a33 = 0.0f;
    for (uint u = ub; u < ue; u++) {
        const uint row = u / chunks, ox0 = (u - row * chunks) * SP_VEC; // row: image b, row oy
        const uint b = row / out_h, oy = row - b * out_h;
        const long at = (long)row * out_w + ox0;
        const floatv d0 = sp_row_masked(dyt, c0 + at, (int)ox0, (int)out_w);
        const floatv d1 = sp_row_masked(dyt, c1 + at, (int)ox0, (int)out_w);
        const floatv d2 = sp_row_masked(dyt, c2 + at, (int)ox0, (int)out_w);
        const floatv d3 = sp_row_masked(dyt, c3 + at, (int)ox0, (int)out_w);
        SP_DW_ROW_FMA(0, sp_dw_rows_x(xs, p0, b, oy, ox0, in_h, in_w, out_w));
        SP_DW_ROW_FMA(1, sp_dw_rows_x(xs, p1, b, oy, ox0, in_h, in_w, out_w));
        SP_DW_ROW_FMA(2, sp_dw_rows_x(xs, p2, b, oy, ox0, in_h, in_w, out_w));
        SP_DW_ROW_FMA(3, sp_dw_rows_x(xs, p3, b, oy, ox0, in_h, in_w, out_w));
    }
    __global float *o = dw + (size_t)s * patch * out_c;
    SP_DW_ROW_STORE(0);
    SP_DW_ROW_STORE(1);
    SP_DW_ROW_STORE(2);
    SP_DW_ROW_STORE(3);
}

// dyt = dy transposed, pixels x out_c to out_c x pixels, for conv_dw_rows: a work-item per
// SP_VEC consecutive pixels of one channel, gathered down dy's column and stored as one vector.
// Channels fastest: a group's work-items read the same SP_VEC rows of dy while they are in
// cache (channels slowest read each line of dy out_c times from memory: 6.1 ms for vgg-small's
// first convolution, 64 x 28 x 28 x 32).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void
conv_dw_transpose(__global const float *restrict dy, __global float *restrict dyt,
                  const uint pixels, const uint out_c) {
    const uint chunks = (pixels + SP_VEC - 1) / SP_VEC, i = get_global_id(0), q = i / out_c;
    if (q >= chunks) return;
    const uint j = i - q * out_c, p0 = q * SP_VEC, len = min((uint)SP_VEC, pixels - p0);
    float t[SP_VEC];
#pragma unroll
    for (uint l = 0; l < SP_VEC; l++) t[l] = l < len ? dy[(size_t)(p0 + l) * out_c + j] : 0.0f;
    sp_store_part(VLOAD_AT(t), dyt + (size_t)j * pixels + p0, len);
}

// The lists of m (rows x cols): a work-item per slice s and 4 columns from j (columns fastest:
// neighbours read neighbouring floats) writes every row of its slice to each column's list with
// no test, the next one over it where m is 0. Four counts at once: one count's chain (load,
// compare, add, the next store's address) ran the loop at a third of the speed.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void
conv_dw_lists(__global const float *restrict m, __global uint *restrict lists, const uint rows,
              const uint cols, const uint nparts, const uint pc) {
    const uint groups = (cols + 3) / 4, id = get_global_id(0), s = id / groups;
    if (s >= nparts) return;
    const uint j = (id - s * groups) * 4, nj = min(4u, cols - j);
    const uint L = nparts * cols, rb = min(rows, s * pc), re = min(rows, rb + pc);
    const size_t at = ((size_t)s * cols + j) * pc;
    __global ushort *ent = (__global ushort *)lists + SP_DW_ENT(L, cols, rows, pc) + at;
    __global float *val = (__global float *)lists + SP_DW_VAL(L, cols, rows) + at;
    uint n[4] = {0, 0, 0, 0};
    for (uint r = rb; r < re; r++) {
        __global const float *row = m + (size_t)r * cols + j;
#pragma unroll
        for (uint l = 0; l < 4; l++) {
            if (l < nj) {
                const float v = row[l];
                ent[l * pc + n[l]] = (ushort)(r - rb);
                val[l * pc + n[l]] = v;
                n[l] += v != 0.0f;
            }
        }
    }
#pragma unroll
    for (uint l = 0; l < 4; l++)
        if (l < nj) lists[s * cols + j + l] = n[l];
}

// The table of the lists' rows (x's): per input pixel q = (b, qy, qx), the output pixel
// (b, qy + pad, qx + pad) as an index modulo 2^32, then qy + pad and qx + pad.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void
conv_dw_table(__global uint *restrict lists, SP_DW_WINDOW, const uint cols, const uint nparts) {
    const uint r = get_global_id(0), rows = batch * in_h * in_w;
    (void)in_c;
    (void)k_h;
    (void)k_w;
    (void)stride;
    if (r >= rows) return;
    __global uint *tab = lists + SP_DW_TAB(nparts * cols, cols);
    const uint row = r / in_w, b = row / in_h, qy = row - b * in_h + pad;
    const uint qx = r - row * in_w + pad;
    vstore4((uint4)((b * out_h + qy) * out_w + qx, qy, qx, 0u), r, tab);
}

// Per column j: each slice's start in j's whole list, and the chunks of E non-zeros.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void
conv_dw_chunks(__global uint *restrict lists, const uint cols, const uint nparts, const uint E) {
    const uint j = get_global_id(0), L = nparts * cols;
    if (j >= cols) return;
    uint total = 0;
    for (uint s = 0; s < nparts; s++) {
        lists[SP_DW_STARTS(L) + s * cols + j] = total;
        total += lists[s * cols + j];
    }
    lists[SP_DW_CHUNKS(L) + j] = (total + E - 1) / E;
}

// The sparse kernels: the buffers (part: the partial dW of chunk k0 first), the window, out_c,
// the lists (nparts slices of pc rows), E non-zeros per chunk, chunks [k0, k0 + nchunks) of
// every column, blocks work-items per chunk.
#define SP_DW_SPARSE_ARGS                                                                          \
    __global const float *restrict x, __global const float *restrict dy,                           \
        __global float *restrict part, __global const uint *restrict lists, SP_DW_WINDOW,          \
        const uint out_c, const uint nparts, const uint pc, const uint E, const uint k0,           \
        const uint nchunks, const uint blocks

// Chunk k0 + c (its partial at part + c patch out_c) and block q in it.
#define SP_DW_SPARSE_SETUP                                                                         \
    const uint id = get_global_id(0), c = id / blocks, q = id - c * blocks;                        \
    if (c >= nchunks) return;                                                                      \
    const sp_dw g = sp_dw_geom(batch, in_h, in_w, in_c, k_h, k_w, stride, pad, out_h, out_w,       \
                               out_c, x, dy, part + (size_t)c * k_h * k_w * in_c * out_c);         \
    const uint npos = k_h * k_w, pblocks = (npos + PB - 1) / PB;                                   \
    const uint pp = (npos + pblocks - 1) / pblocks

// Block q: the input channel q / (pblocks jblocks), then the block of CB output channels, then
// the block of window positions.
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void
conv_dw_ocvec_sparse(SP_DW_SPARSE_ARGS) {
    SP_DW_SPARSE_SETUP;
    const uint jblocks = (out_c + CB - 1) / CB;
    const uint ch = q / (pblocks * jblocks), rq = q - ch * (pblocks * jblocks);
    const uint jb = rq / pblocks, pos0 = (rq - jb * pblocks) * pp;
    sp_walk w;
    const uint rows = batch * in_h * in_w;
    if (pos0 >= npos || !sp_walk_at(&w, lists, nparts, pc, rows, in_c, ch, k0 + c, E)) return;
    const uint nq = min(pp, npos - pos0), j0 = jb * CB, rest = min((uint)CB, out_c - j0);
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    if (nq == PB && nv == NB && last == SP_VEC)
        sp_dw_ocvec_sparse_block(g, w, pos0, PB, j0, NB, SP_VEC);
    else
        sp_dw_ocvec_sparse_block(g, w, pos0, nq, j0, nv, last);
}

// dW = alpha (the sum of its column's chunks among [k0, k0 + nchunks)) + beta dW, a work-item
// per element, the chunks in order (deterministic). The list column of element (e, j): e's input
// channel e mod in_c.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void
conv_dw_sum(__global const float *restrict part, __global const uint *restrict lists,
            __global float *restrict dw, const uint rows, const uint out_c, const uint in_c,
            const uint nparts, const uint k0, const uint nchunks, const float alpha,
            const float beta) {
    const uint i = get_global_id(0), n = rows * out_c;
    if (i >= n) return;
    const uint e = i / out_c, col = e - (e / in_c) * in_c;
    const uint have = lists[SP_DW_CHUNKS(nparts * in_c) + col];
    const uint m = have > k0 ? min(nchunks, have - k0) : 0;
    float sum = 0.0f;
    for (uint c = 0; c < m; c++) sum += part[(size_t)c * n + i];
    dw[i] = beta != 0.0f ? fma(beta, dw[i], alpha * sum) : alpha * sum;
}
