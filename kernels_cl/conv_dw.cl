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
    uint in_h, in_w, in_c, k_w, stride, pad, out_h, out_w, out_c, patch;
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

// Position (ky, kx), channels c0.. in nv (<= NB) vectors, the last holding last (<= SP_VEC)
// channels, output channels j0.. (nr <= RB of them): accumulate over the pixels [pb, pe), then
// store. With nr = RB, nv = NB and last = SP_VEC (constants) the edge tests vanish.
SP_INLINE void sp_dw_cvec_block(const sp_dw g, const bool sparse, const uint pb, const uint pe,
                                const uint ky, const uint kx, const uint c0, const uint j0,
                                const uint nr, const uint nv, const uint last, const float alpha,
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
        float d[RB];
        bool any = false;
#pragma unroll
        for (int r = 0; r < RB; r++) {
            d[r] = r < nr ? drow[r] : 0.0f;
            any = any || d[r] != 0.0f;
        }
        if (sparse && !any) continue;
        __global const float *xs = g.x + (w.base + off); // the sum wraps, not the pointer
        floatv a[NB];
#pragma unroll
        for (int v = 0; v < NB; v++)
            a[v] = v + 1 < nv    ? VLOAD_AT(xs + v * SP_VEC)
                   : v + 1 == nv ? sp_load_part(xs + v * SP_VEC, last)
                                 : (floatv)(0.0f);
#pragma unroll
        for (int r = 0; r < RB; r++) {
            if (sparse && d[r] == 0.0f) continue;
            const floatv s = (floatv)(d[r]);
#pragma unroll
            for (int v = 0; v < NB; v++) acc[r][v] = fma(s, a[v], acc[r][v]);
        }
    }
    // acc[r][v] lane l is dW[row of channel c0 + v SP_VEC + l, j0 + r]: a column of dW per r
    const uint e0 = (ky * g.k_w + kx) * g.in_c + c0;
#pragma unroll
    for (int v = 0; v < NB; v++) {
        const uint lanes = v + 1 < nv ? SP_VEC : v + 1 == nv ? last : 0;
#pragma unroll
        for (int r = 0; r < RB; r++) {
            if (r >= nr || lanes == 0) continue;
            float t[SP_VEC];
            VSTORE_AT((floatv)(alpha)*acc[r][v], t);
            __global float *col = g.dw + (size_t)(e0 + v * SP_VEC) * g.out_c + j0 + r;
#pragma unroll
            for (uint l = 0; l < SP_VEC; l++) {
                if (l < lanes) {
                    __global float *o = col + (size_t)l * g.out_c;
                    *o = beta != 0.0f ? fma(beta, *o, t[l]) : t[l];
                }
            }
        }
    }
}

// The work-item's block q of a slice: output channels block q / (k_h k_w cblocks), then the
// window position, then the block of CB input channels.
SP_INLINE void sp_dw_cvec(const sp_dw g, const bool sparse, const uint q, const uint pb,
                          const uint pe, const float alpha, const float beta) {
    const uint cblocks = (g.in_c + CB - 1) / CB, rblocks = g.patch / g.in_c * cblocks;
    const uint jb = q / rblocks, rq = q - jb * rblocks;
    const uint pos = rq / cblocks, c0 = (rq - pos * cblocks) * CB, j0 = jb * RB;
    const uint ky = pos / g.k_w, kx = pos - ky * g.k_w;
    const uint nr = min((uint)RB, g.out_c - j0), rest = min((uint)CB, g.in_c - c0);
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    if (nr == RB && nv == NB && last == SP_VEC)
        sp_dw_cvec_block(g, sparse, pb, pe, ky, kx, c0, j0, RB, NB, SP_VEC, alpha, beta);
    else if (last == SP_VEC)
        sp_dw_cvec_block(g, sparse, pb, pe, ky, kx, c0, j0, nr, nv, SP_VEC, alpha, beta);
    else
        sp_dw_cvec_block(g, sparse, pb, pe, ky, kx, c0, j0, nr, nv, last, alpha, beta);
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

// This work-item's slice and block, and the geometry with its slice's output; false when the
// work-item is past the last block.
#define SP_DW_SETUP                                                                                \
    const uint id = get_global_id(0), s = id / blocks, q = id - s * blocks;                        \
    if (s >= nparts) return;                                                                       \
    const uint pixels = batch * out_h * out_w, patch = k_h * k_w * in_c;                           \
    const uint pb = min(pixels, (part0 + s) * pc), pe = min(pixels, pb + pc);                      \
    const sp_dw g = {in_h,                                                                         \
                     in_w,                                                                         \
                     in_c,                                                                         \
                     k_w,                                                                          \
                     stride,                                                                       \
                     pad,                                                                          \
                     out_h,                                                                        \
                     out_w,                                                                        \
                     out_c,                                                                        \
                     patch,                                                                        \
                     x,                                                                            \
                     dy,                                                                           \
                     dw + (size_t)s * patch * out_c}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void conv_dw_cvec(SP_DW_ARGS) {
    SP_DW_SETUP;
    sp_dw_cvec(g, false, q, pb, pe, alpha, beta);
}

__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void
conv_dw_cvec_sparse(SP_DW_ARGS) {
    SP_DW_SETUP;
    sp_dw_cvec(g, true, q, pb, pe, alpha, beta);
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
