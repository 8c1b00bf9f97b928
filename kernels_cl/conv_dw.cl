// Convolution backward-by-weight without the patch matrix (runtime/ops/conv_dw.c launches it):
// dW = im2col(x)^T . dY. Images are NHWC; dY is (batch out_h out_w) x out_c; dW is
// (k_h k_w in_c) x out_c, row e = (ky k_w + kx) in_c + c (the conv layer's W):
//
//     dW[e, j] = sum over the output pixels p of x[pixel p shifted by (ky, kx), c] dY[p, j]
//
// (zero where the shifted pixel lies in the padding). The reduction runs over the pixels.
//
// Two orientations of the same register-blocked micro-kernel (gemm_dense.cl's tunables: a
// work-item holds SP_GEMM_RB x SP_GEMM_NB vectors of SP_VEC accumulators), because one of the
// two operands of a pixel is contiguous in channels and can fill a vector:
//
// conv_dw_cvec (vectors over input channels, SparseTrain's): a work-item owns one window
//   position (ky, kx), NB vectors of input channels c and RB output channels j. Per pixel it
//   loads NB vectors of x at the shifted pixel (channels are contiguous in NHWC) and RB scalars
//   of dY's row, and for each scalar does NB vector FMAs. The sparse kernel (_sparse) skips the
//   FMAs of every zero of dY, and a pixel whose RB scalars are all zero before it loads x.
// conv_dw_ocvec (vectors over output channels, the transposed GEMM's): a work-item owns RB
//   consecutive rows e of dW (any positions and channels: lenet5's conv1 has in_c = 1) and NB
//   vectors of output channels. Per pixel it loads NB vectors of dY's row and RB scalars of x,
//   and for each scalar does NB vector FMAs. The sparse kernel skips the zeros of x (and the
//   padding) instead, and a pixel whose RB scalars are all zero before it loads dY.
// The host picks the one whose vectors and blocks are fuller for the shape (conv_dw.c).
//
// The work-items: one dimension, the blocks of dW of one slice of pixels (rows of blocks
// fastest: the work-items of a group share the pixels of dY they read, which keeps them in
// cache on CPUs and makes the sparse kernels' tests on dY agree across a GPU's wave), then the
// slices. Slice part0 + s walks the pixels [(part0 + s) pc, + pc) and writes its own patch x
// out_c block of the output (dw + s patch out_c) as alpha acc + beta dw; the host sums the
// slices when there is more than one (sp_split_reduce) and keeps pc bounded so that no
// work-item runs more than LOOP_MAX loop iterations. Blocks past dW's edges compute on clamped
// indices (or zeros) and are not stored.

#define RB SP_GEMM_RB
#define NB SP_GEMM_NB
#define CB (SP_VEC * SP_GEMM_NB)

// The geometry and operands, as the kernels receive them (dw: this slice's block of it).
typedef struct sp_dw {
    uint in_h, in_w, in_c, k_h, k_w, stride, pad, out_h, out_w, out_c, patch;
    __global const float *x, *dy;
    __global float *dw;
} sp_dw;

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

// ---- vectors over input channels ------------------------------------------------------------

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

// NB vectors of x from xs, the first nv of them read, the last of those holding last channels.
SP_INLINE void sp_dw_load_x(floatv a[NB], __global const float *xs, const uint nv,
                            const uint last) {
#pragma unroll
    for (int v = 0; v < NB; v++)
        a[v] = v + 1 < nv    ? VLOAD_AT(xs + v * SP_VEC)
               : v + 1 == nv ? sp_load_part(xs + v * SP_VEC, last)
                             : (floatv)(0.0f);
}

// The dense kernel. Position (ky, kx), channels c0.. in nv (<= NB) vectors, the last holding
// last (<= SP_VEC) channels, output channels j0.. (nr <= RB of them): accumulate over the
// pixels [pb, pe), then store. With nr = RB, nv = NB and last = SP_VEC (constants) the edge
// tests vanish.
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
        sp_dw_load_x(a, g.x + (w.base + off), nv, last); // the sum wraps, not the pointer
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

// The dense kernel's block q of a slice: output channels block q / (k_h k_w cblocks), then the
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

// The sparse kernel walks lists of dY's non-zeros that conv_dw_lists writes, in one buffer:
// the count of each slice s and output channel j at s out_c + j; then per output pixel p its
// window corner (base, iy, ix, 0) at tab + 4 p (sp_pix's, so that no work-item divides per
// non-zero); then the list of (s, j): pc pairs (p, the bits of dY[p, j]) at ent + 2 pc (s out_c
// + j), in pixel order.
#define SP_DW_TAB(nparts, out_c)         ((size_t)(nparts) * (out_c))
#define SP_DW_ENT(nparts, out_c, pixels) (SP_DW_TAB(nparts, out_c) + 4 * (size_t)(pixels))

// RB window positions from pos0 (nq of them) x channels c0.. in nv vectors (the last holding
// last) x the output channel j, over the list of n non-zeros at ent: per non-zero dY[p, j] its
// NB vector FMAs with x at each position (a window inside the image: no tests).
SP_INLINE void sp_dw_sparse_block(const sp_dw g, __global const uint *ent, __global const uint *tab,
                                  const uint n, const uint pos0, const uint nq, const uint c0,
                                  const uint j, const uint nv, const uint last, const uint lim_h,
                                  const uint lim_w, const float alpha, const float beta) {
    floatv acc[RB][NB];
    uint ky[RB], kx[RB], off[RB];
#pragma unroll
    for (int q = 0; q < RB; q++) {
#pragma unroll
        for (int v = 0; v < NB; v++) acc[q][v] = (floatv)(0.0f);
        const uint pos = pos0 + min((uint)q, nq - 1);
        ky[q] = pos / g.k_w;
        kx[q] = pos - ky[q] * g.k_w;
        off[q] = (ky[q] * g.in_w + kx[q]) * g.in_c + c0;
    }
    for (uint e = 0; e < n; e++) {
        const uint2 pv = vload2(e, ent);
        const uint4 t = vload4(pv.x, tab);
        const floatv d = (floatv)(as_float(pv.y));
        const bool inside = t.y < lim_h && t.z < lim_w;
#pragma unroll
        for (int q = 0; q < RB; q++) {
            if (q < nq && (inside || (t.y + ky[q] < g.in_h && t.z + kx[q] < g.in_w))) {
                floatv a[NB];
                sp_dw_load_x(a, g.x + (t.x + off[q]), nv, last);
#pragma unroll
                for (int v = 0; v < NB; v++) acc[q][v] = fma(d, a[v], acc[q][v]);
            }
        }
    }
#pragma unroll
    for (int v = 0; v < NB; v++) {
        const uint lanes = v + 1 < nv ? SP_VEC : v + 1 == nv ? last : 0;
#pragma unroll
        for (int q = 0; q < RB; q++)
            if (q < nq && lanes > 0)
                sp_dw_store_col(g, acc[q][v], (pos0 + q) * g.in_c + c0 + v * SP_VEC, j, lanes,
                                alpha, beta);
    }
}

// The sparse kernel's block q of slice s: output channel q / (pblocks cblocks), then the block
// of CB input channels, then the block of window positions (k_h k_w of them spread evenly over
// the fewest blocks of at most RB).
SP_INLINE void sp_dw_cvec_sparse(const sp_dw g, __global const uint *lists, const uint nparts,
                                 const uint pixels, const uint pc, const uint s, const uint q,
                                 const float alpha, const float beta) {
    const uint npos = g.patch / g.in_c, pblocks = (npos + RB - 1) / RB;
    const uint pp = (npos + pblocks - 1) / pblocks, cblocks = (g.in_c + CB - 1) / CB;
    const uint j = q / (pblocks * cblocks), rq = q - j * (pblocks * cblocks);
    const uint cb = rq / pblocks, pos0 = (rq - cb * pblocks) * pp;
    if (pos0 >= npos) return; // (no block is empty for the shapes the host gives)
    const uint nq = min(pp, npos - pos0), c0 = cb * CB, rest = min((uint)CB, g.in_c - c0);
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    const uint list = s * g.out_c + j, n = lists[list];
    __global const uint *ent = lists + SP_DW_ENT(nparts, g.out_c, pixels) + (size_t)list * 2 * pc;
    __global const uint *tab = lists + SP_DW_TAB(nparts, g.out_c);
    // corners from which the whole window lies inside the image (as uint: not above or left)
    const uint lim_h = g.in_h >= g.k_h ? g.in_h - g.k_h + 1 : 0;
    const uint lim_w = g.in_w >= g.k_w ? g.in_w - g.k_w + 1 : 0;
    if (nv == NB && last == SP_VEC)
        sp_dw_sparse_block(g, ent, tab, n, pos0, nq, c0, j, NB, SP_VEC, lim_h, lim_w, alpha, beta);
    else
        sp_dw_sparse_block(g, ent, tab, n, pos0, nq, c0, j, nv, last, lim_h, lim_w, alpha, beta);
}

// ---- vectors over output channels -----------------------------------------------------------

// Rows e0.. of dW (nr <= RB of them), output channels j0.. in nv (<= NB) vectors, the last
// holding last (<= SP_VEC): accumulate over the pixels [pb, pe), then store.
SP_INLINE void sp_dw_ocvec_block(const sp_dw g, const bool sparse, const uint pb, const uint pe,
                                 const uint e0, const uint j0, const uint nr, const uint nv,
                                 const uint last, const float alpha, const float beta) {
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
        float s[RB];
        bool any = false;
#pragma unroll
        for (int r = 0; r < RB; r++) {
            const bool in = r < nr && w.iy + ky[r] < g.in_h && w.ix + kx[r] < g.in_w;
            s[r] = in ? g.x[w.base + off[r]] : 0.0f;
            any = any || s[r] != 0.0f;
        }
        if (sparse && !any) continue;
        __global const float *drow = g.dy + (size_t)p * g.out_c + j0;
        floatv b[NB];
#pragma unroll
        for (int v = 0; v < NB; v++)
            b[v] = v + 1 < nv    ? VLOAD_AT(drow + v * SP_VEC)
                   : v + 1 == nv ? sp_load_part(drow + v * SP_VEC, last)
                                 : (floatv)(0.0f);
#pragma unroll
        for (int r = 0; r < RB; r++) {
            if (sparse && s[r] == 0.0f) continue;
            const floatv a = (floatv)(s[r]);
#pragma unroll
            for (int v = 0; v < NB; v++) acc[r][v] = fma(a, b[v], acc[r][v]);
        }
    }
#pragma unroll
    for (int r = 0; r < RB; r++) {
#pragma unroll
        for (int v = 0; v < NB; v++) {
            if (r < nr && v < nv) {
                __global float *o = g.dw + (size_t)(e0 + r) * g.out_c + j0 + v * SP_VEC;
                const uint len = v + 1 < nv ? SP_VEC : last;
                floatv t = (floatv)(alpha)*acc[r][v];
                if (beta != 0.0f) t = fma((floatv)(beta), sp_load_part(o, len), t);
                sp_store_part(t, o, len);
            }
        }
    }
}

// The work-item's block q of a slice: output channels block q / rblocks, then RB rows of dW.
SP_INLINE void sp_dw_ocvec(const sp_dw g, const bool sparse, const uint q, const uint pb,
                           const uint pe, const float alpha, const float beta) {
    const uint rblocks = (g.patch + RB - 1) / RB;
    const uint jb = q / rblocks, e0 = (q - jb * rblocks) * RB, j0 = jb * CB;
    const uint nr = min((uint)RB, g.patch - e0), rest = min((uint)CB, g.out_c - j0);
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    if (nr == RB && nv == NB && last == SP_VEC)
        sp_dw_ocvec_block(g, sparse, pb, pe, e0, j0, RB, NB, SP_VEC, alpha, beta);
    else if (last == SP_VEC)
        sp_dw_ocvec_block(g, sparse, pb, pe, e0, j0, nr, nv, SP_VEC, alpha, beta);
    else
        sp_dw_ocvec_block(g, sparse, pb, pe, e0, j0, nr, nv, last, alpha, beta);
}

// ---- the kernels ----------------------------------------------------------------------------

// The arguments every kernel takes: the buffers, the window (nn.cl's order), out_c, then the
// slices: blocks of dW per slice, nparts slices from part0, pc pixels each.
#define SP_DW_ARGS                                                                                 \
    __global const float *restrict x, __global const float *restrict dy,                           \
        __global float *restrict dw, const uint batch, const uint in_h, const uint in_w,           \
        const uint in_c, const uint k_h, const uint k_w, const uint stride, const uint pad,        \
        const uint out_h, const uint out_w, const uint out_c, const uint blocks,                   \
        const uint nparts, const uint part0, const uint pc, const float alpha, const float beta

// The geometry of a window, with its operands.
SP_INLINE sp_dw sp_dw_geom(const uint in_h, const uint in_w, const uint in_c, const uint k_h,
                           const uint k_w, const uint stride, const uint pad, const uint out_h,
                           const uint out_w, const uint out_c, __global const float *x,
                           __global const float *dy, __global float *dw) {
    const sp_dw g = {in_h, in_w, in_c, k_h, k_w, stride, pad, out_h, out_w, out_c, k_h * k_w * in_c,
                     x,    dy,   dw};
    return g;
}

// This work-item's slice s and block q in it, its pixels [pb, pe), and the geometry with the
// slice's output (nothing for a work-item past the last slice).
#define SP_DW_SETUP                                                                                \
    const uint id = get_global_id(0), s = id / blocks, q = id - s * blocks;                        \
    if (s >= nparts) return;                                                                       \
    const uint pixels = batch * out_h * out_w;                                                     \
    const uint pb = min(pixels, (part0 + s) * pc), pe = min(pixels, pb + pc);                      \
    const sp_dw g = sp_dw_geom(in_h, in_w, in_c, k_h, k_w, stride, pad, out_h, out_w, out_c, x,    \
                               dy, dw + (size_t)s * k_h * k_w * in_c * out_c)

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void conv_dw_cvec(SP_DW_ARGS) {
    SP_DW_SETUP;
    sp_dw_cvec(g, q, pb, pe, alpha, beta);
}

// lists: conv_dw_lists' (over all nparts slices; this launch's first is part0).
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void
conv_dw_cvec_sparse(SP_DW_ARGS, __global const uint *restrict lists, const uint all_parts) {
    SP_DW_SETUP;
    sp_dw_cvec_sparse(g, lists, all_parts, pixels, pc, part0 + s, q, alpha, beta);
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void conv_dw_ocvec(SP_DW_ARGS) {
    SP_DW_SETUP;
    sp_dw_ocvec(g, false, q, pb, pe, alpha, beta);
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void
conv_dw_ocvec_sparse(SP_DW_ARGS) {
    SP_DW_SETUP;
    sp_dw_ocvec(g, true, q, pb, pe, alpha, beta);
}

// The lists of dY's non-zeros for the sparse kernel (see sp_dw_cvec_sparse): a work-item per
// slice s of pc pixels and output channel j (j fastest: neighbours read neighbouring floats)
// writes every pixel of its slice with no test, the next one over it where dY is 0; the
// work-items of channel 0 also write their pixels' window corners.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void
conv_dw_lists(__global const float *restrict dy, __global uint *restrict lists, const uint batch,
              const uint in_h, const uint in_w, const uint in_c, const uint k_h, const uint k_w,
              const uint stride, const uint pad, const uint out_h, const uint out_w,
              const uint out_c, const uint nparts, const uint pc) {
    const uint id = get_global_id(0), s = id / out_c, j = id - s * out_c;
    if (s >= nparts) return;
    const uint pixels = batch * out_h * out_w;
    const uint pb = min(pixels, s * pc), pe = min(pixels, pb + pc);
    __global uint *ent = lists + SP_DW_ENT(nparts, out_c, pixels) + (size_t)id * 2 * pc;
    uint n = 0;
    for (uint p = pb; p < pe; p++) {
        const float d = dy[(size_t)p * out_c + j];
        vstore2((uint2)(p, as_uint(d)), n, ent);
        n += d != 0.0f;
    }
    lists[id] = n;
    if (j != 0) return;
    const sp_dw g =
        sp_dw_geom(in_h, in_w, in_c, k_h, k_w, stride, pad, out_h, out_w, out_c, NULL, dy, NULL);
    __global uint *tab = lists + SP_DW_TAB(nparts, out_c);
    sp_pix w = sp_pix_at(g, pb);
    for (uint p = pb; p < pe; p++, w = sp_pix_next(g, w))
        vstore4((uint4)(w.base, w.iy, w.ix, 0u), p, tab);
}
