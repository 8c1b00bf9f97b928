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

// ---- vectors over input channels, skipping dY's zeros -----------------------------------------
//
// A test per scalar of dY costs a CPU more than the two vector FMAs it saves, whatever the
// sparsity below 90 % (a mispredicted branch is 15-20 cycles), so the sparse kernel walks lists
// of dY's non-zeros instead, made without a branch, and its work-items own one output channel:
//
// conv_dw_lists: per slice s of pc pixels and output channel j, the count of dY's non-zeros and
//   their pixels (as offsets in the slice), in order; and each pixel's window corner.
// conv_dw_chunks: per output channel, where each slice's list starts in the channel's whole list
//   (an exclusive scan), and how many chunks of E non-zeros that whole list makes.
// conv_dw_cvec_sparse: a work-item per chunk of E non-zeros of an output channel j, block of PB
//   window positions and block of NB vectors of input channels: per non-zero dY[p, j], NB vector
//   FMAs with x at each position. It writes its block of column j of dW to its chunk's partial
//   dW; conv_dw_sum adds each column's chunks (their number follows the non-zeros, not the
//   pixels: partial sums cost little at high sparsity).
//
// The lists live in one buffer of uints, at these offsets for L = nparts out_c lists:
//   counts [0, L), list (s, j) at s out_c + j;  starts [L, 2 L), the same;  chunks [2 L, + out_c);
//   corners (base, iy, ix, 0) per output pixel from 2 L + out_c;  the lists' values (dY's
//   non-zeros: its gather misses the cache where a copy next to the positions does not), list
//   (s, j) from 2 L + out_c + 4 pixels + (s out_c + j) pc;  then their positions as ushorts,
//   list (s, j) from ushort 2 (2 L + out_c + 4 pixels + L pc) + (s out_c + j) pc.
#define SP_DW_STARTS(L)                 (L)
#define SP_DW_CHUNKS(L)                 (2 * (size_t)(L))
#define SP_DW_TAB(L, out_c)             (2 * (size_t)(L) + (out_c))
#define SP_DW_VAL(L, out_c, pixels)     (SP_DW_TAB(L, out_c) + 4 * (size_t)(pixels))
#define SP_DW_ENT(L, out_c, pixels, pc) (2 * (SP_DW_VAL(L, out_c, pixels) + (size_t)(L) * (pc)))

// Window positions per work-item of the sparse kernel: a 3 x 3 window, the presets' (5 x 5 ones
// make blocks of 9, 8, 8). Its accumulators, PB x NB vectors, take about what the dense kernel's
// RB x NB and its operands do: it keeps no vectors of x (they are the FMAs' memory operands).
#define PB 9

// PB window positions from pos0 (nq of them) x channels c0.. in nv vectors (the last holding
// last) x output channel j, over the non-zeros [e0, e1) of j's whole list: per non-zero dY[p, j]
// its NB vector FMAs with x at each position (with no test where the window lies inside the
// image). Stores the block to this chunk's partial dW.
SP_INLINE void sp_dw_sparse_block(const sp_dw g, __global const uint *lists, const uint nparts,
                                  const uint pc, const uint pixels, const uint e0, const uint e1,
                                  const uint pos0, const uint nq, const uint c0, const uint j,
                                  const uint nv, const uint last) {
    floatv acc[PB][NB];
    uint ky[PB], kx[PB], off[PB];
#pragma unroll
    for (int q = 0; q < PB; q++) {
#pragma unroll
        for (int v = 0; v < NB; v++) acc[q][v] = (floatv)(0.0f);
        const uint pos = pos0 + min((uint)q, nq - 1);
        ky[q] = pos / g.k_w;
        kx[q] = pos - ky[q] * g.k_w;
        off[q] = (ky[q] * g.in_w + kx[q]) * g.in_c + c0;
    }
    // corners from which the whole window lies inside the image (as uint: not above or left)
    const uint lim_h = g.in_h >= g.k_h ? g.in_h - g.k_h + 1 : 0;
    const uint lim_w = g.in_w >= g.k_w ? g.in_w - g.k_w + 1 : 0;
    const uint L = nparts * g.out_c;
    __global const uint *starts = lists + SP_DW_STARTS(L) + j;
    __global const uint4 *tab = (__global const uint4 *)(lists + SP_DW_TAB(L, g.out_c));
    __global const ushort *ent = (__global const ushort *)lists + SP_DW_ENT(L, g.out_c, pixels, pc);
    __global const float *val = (__global const float *)lists + SP_DW_VAL(L, g.out_c, pixels);
    // the slice holding e0: the last whose start is at most e0 (a bisection)
    uint lo = 0, hi = nparts;
    while (hi - lo > 1) {
        const uint mid = (lo + hi) / 2;
        if (starts[(size_t)mid * g.out_c] <= e0)
            lo = mid;
        else
            hi = mid;
    }
    for (uint s = lo, e = e0; e < e1; s++) {
        const uint start = starts[(size_t)s * g.out_c];
        const uint n = min(lists[s * g.out_c + j] - (e - start), e1 - e);
        const size_t at = (size_t)(s * g.out_c + j) * pc + (e - start);
        __global const ushort *list = ent + at;
        __global const float *vals = val + at;
        const uint pb = s * pc;
        for (uint i = 0; i < n; i++) {
            const uint p = pb + list[i];
            const uint4 t = tab[p];
            const floatv d = (floatv)(vals[i]);
            // x at t.x + off[q]: the uint sum wraps (t.x is past the padding), not the pointer
            if (t.y < lim_h && t.z < lim_w) {
#pragma unroll
                for (int q = 0; q < PB; q++) {
                    if (q < nq) {
                        floatv a[NB];
                        sp_dw_load_x(a, g.x + (t.x + off[q]), nv, last);
#pragma unroll
                        for (int v = 0; v < NB; v++) acc[q][v] = fma(d, a[v], acc[q][v]);
                    }
                }
            } else {
#pragma unroll
                for (int q = 0; q < PB; q++) {
                    if (q < nq && t.y + ky[q] < g.in_h && t.z + kx[q] < g.in_w) {
                        floatv a[NB];
                        sp_dw_load_x(a, g.x + (t.x + off[q]), nv, last);
#pragma unroll
                        for (int v = 0; v < NB; v++) acc[q][v] = fma(d, a[v], acc[q][v]);
                    }
                }
            }
        }
        e += n;
    }
#pragma unroll
    for (int v = 0; v < NB; v++) {
        const uint lanes = v + 1 < nv ? SP_VEC : v + 1 == nv ? last : 0;
#pragma unroll
        for (int q = 0; q < PB; q++)
            if (q < nq && lanes > 0)
                sp_dw_store_col(g, acc[q][v], (pos0 + q) * g.in_c + c0 + v * SP_VEC, j, lanes, 1.0f,
                                0.0f);
    }
}

// The sparse kernel's block q of chunk k: output channel q / (pblocks cblocks), then the block
// of CB input channels, then the block of window positions (k_h k_w of them spread evenly over
// the fewest blocks of at most PB). Nothing where the channel has fewer chunks.
SP_INLINE void sp_dw_cvec_sparse(const sp_dw g, __global const uint *lists, const uint nparts,
                                 const uint pc, const uint pixels, const uint E, const uint k,
                                 const uint q) {
    const uint npos = g.patch / g.in_c, pblocks = (npos + PB - 1) / PB;
    const uint pp = (npos + pblocks - 1) / pblocks, cblocks = (g.in_c + CB - 1) / CB;
    const uint j = q / (pblocks * cblocks), rq = q - j * (pblocks * cblocks);
    const uint cb = rq / pblocks, pos0 = (rq - cb * pblocks) * pp;
    const uint L = nparts * g.out_c;
    if (k >= lists[SP_DW_CHUNKS(L) + j] || pos0 >= npos) return;
    const uint total =
        lists[SP_DW_STARTS(L) + (nparts - 1) * g.out_c + j] + lists[(nparts - 1) * g.out_c + j];
    const uint e0 = k * E, e1 = min(total, e0 + E);
    const uint nq = min(pp, npos - pos0), c0 = cb * CB, rest = min((uint)CB, g.in_c - c0);
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    if (nq == PB && nv == NB && last == SP_VEC)
        sp_dw_sparse_block(g, lists, nparts, pc, pixels, e0, e1, pos0, PB, c0, j, NB, SP_VEC);
    else if (nv == NB && last == SP_VEC)
        sp_dw_sparse_block(g, lists, nparts, pc, pixels, e0, e1, pos0, nq, c0, j, NB, SP_VEC);
    else
        sp_dw_sparse_block(g, lists, nparts, pc, pixels, e0, e1, pos0, nq, c0, j, nv, last);
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

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void conv_dw_ocvec(SP_DW_ARGS) {
    SP_DW_SETUP;
    sp_dw_ocvec(g, false, q, pb, pe, alpha, beta);
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void
conv_dw_ocvec_sparse(SP_DW_ARGS) {
    SP_DW_SETUP;
    sp_dw_ocvec(g, true, q, pb, pe, alpha, beta);
}

// The kernels of the sparse path skipping dY's zeros (see "vectors over input channels,
// skipping dY's zeros" above). The window and dY as the others take them; the lists' buffer;
// nparts slices of pc pixels.
#define SP_DW_LIST_ARGS                                                                            \
    const uint batch, const uint in_h, const uint in_w, const uint in_c, const uint k_h,           \
        const uint k_w, const uint stride, const uint pad, const uint out_h, const uint out_w,     \
        const uint out_c, const uint nparts, const uint pc

// The lists: a work-item per slice s and output channel j (j fastest: neighbours read
// neighbouring floats) writes every pixel of its slice with no test, the next one over it where
// dY is 0; the work-items of channel 0 also write their pixels' window corners.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void
conv_dw_lists(__global const float *restrict dy, __global uint *restrict lists, SP_DW_LIST_ARGS) {
    const uint id = get_global_id(0), s = id / out_c, j = id - s * out_c;
    if (s >= nparts) return;
    const uint pixels = batch * out_h * out_w, L = nparts * out_c;
    const uint pb = min(pixels, s * pc), pe = min(pixels, pb + pc);
    __global ushort *list =
        (__global ushort *)lists + SP_DW_ENT(L, out_c, pixels, pc) + (size_t)id * pc;
    __global float *vals = (__global float *)lists + SP_DW_VAL(L, out_c, pixels) + (size_t)id * pc;
    uint n = 0;
    for (uint p = pb; p < pe; p++) {
        const float d = dy[(size_t)p * out_c + j];
        list[n] = (ushort)(p - pb);
        vals[n] = d;
        n += d != 0.0f;
    }
    lists[id] = n;
    if (j != 0) return;
    const sp_dw g =
        sp_dw_geom(in_h, in_w, in_c, k_h, k_w, stride, pad, out_h, out_w, out_c, NULL, dy, NULL);
    __global uint *tab = lists + SP_DW_TAB(L, out_c);
    sp_pix w = sp_pix_at(g, pb);
    for (uint p = pb; p < pe; p++, w = sp_pix_next(g, w))
        vstore4((uint4)(w.base, w.iy, w.ix, 0u), p, tab);
}

// Per output channel j: each slice's start in j's whole list, and the chunks of E non-zeros.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void
conv_dw_chunks(__global uint *restrict lists, const uint out_c, const uint nparts, const uint E) {
    const uint j = get_global_id(0), L = nparts * out_c;
    if (j >= out_c) return;
    uint total = 0;
    for (uint s = 0; s < nparts; s++) {
        lists[SP_DW_STARTS(L) + s * out_c + j] = total;
        total += lists[s * out_c + j];
    }
    lists[SP_DW_CHUNKS(L) + j] = (total + E - 1) / E;
}

// Chunks [k0, k0 + nchunks) of every output channel, chunk k0 + c writing its partial dW at
// part + c patch out_c (blocks work-items per chunk).
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void
conv_dw_cvec_sparse(__global const float *restrict x, __global const float *restrict dy,
                    __global float *restrict part, __global const uint *restrict lists,
                    SP_DW_LIST_ARGS, const uint E, const uint k0, const uint nchunks,
                    const uint blocks) {
    const uint id = get_global_id(0), c = id / blocks, q = id - c * blocks;
    if (c >= nchunks) return;
    const uint patch = k_h * k_w * in_c;
    const sp_dw g = sp_dw_geom(in_h, in_w, in_c, k_h, k_w, stride, pad, out_h, out_w, out_c, x, dy,
                               part + (size_t)c * patch * out_c);
    sp_dw_cvec_sparse(g, lists, nparts, pc, batch * out_h * out_w, E, k0 + c, q);
}

// dW = alpha (the sum of each column's chunks among [k0, k0 + nchunks)) + beta dW, a work-item
// per element, the chunks in order (deterministic).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void
conv_dw_sum(__global const float *restrict part, __global const uint *restrict lists,
            __global float *restrict dw, const uint rows, const uint out_c, const uint nparts,
            const uint k0, const uint nchunks, const float alpha, const float beta) {
    const uint i = get_global_id(0), n = rows * out_c;
    if (i >= n) return;
    const uint j = i - (i / out_c) * out_c, have = lists[SP_DW_CHUNKS(nparts * out_c) + j];
    const uint m = have > k0 ? min(nchunks, have - k0) : 0;
    float sum = 0.0f;
    for (uint c = 0; c < m; c++) sum += part[(size_t)c * n + i];
    dw[i] = beta != 0.0f ? fma(beta, dw[i], alpha * sum) : alpha * sum;
}
