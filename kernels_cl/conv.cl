// Implicit-GEMM convolution (runtime/ops/conv.c launches it): y = im2col(x) . W computed without
// the patch matrix. Images are NHWC; W is (k_h k_w in_c) x out_c with row (ky k_w + kx) in_c + c,
// the order of im2col's columns; y is (batch out_h out_w) x out_c, already NHWC.
//
// The same CPU-style micro-kernel as gemm_dense.cl, and the same tunables (a block of output
// pixels is a block of rows of C): each work-item owns SP_GEMM_RB consecutive output pixels x
// SP_GEMM_NB vectors of SP_VEC output channels in registers. It walks its slice of the patch
// index e = (ky k_w + kx) in_c + c one window position at a time: per position it locates the
// RB input pixels (or finds them in the padding), then per channel c it loads NB vectors of W's
// row e and broadcasts RB scalars of x. Where all RB pixels of a position lie inside the image
// (the interior, most of the work) the channel loop has no test; elsewhere each load is guarded.
//
// The reduction: dimension 2 of the range cuts the patch index into slices of kc starting at
// e0, slice s writing its own pixels x out_c block of y (y + s pixels out_c), which the host
// sums when there is more than one (sp_split_reduce); the host keeps kc bounded so that no
// work-item runs more than LOOP_MAX loop iterations. Pixels past the last read the last one and
// are not stored.

#define RB SP_GEMM_RB
#define NB SP_GEMM_NB
#define CB (SP_VEC * SP_GEMM_NB)

// The geometry and operands, as the kernel receives them (y: this slice's block of it). With
// relu 1 the store writes max(y, 0), with relu 2 max(y + b, 0) (b: the bias, per output channel;
// a NaN stays NaN, as in monitor_bias_relu): the bias and the ReLU after the convolution in the
// same store.
typedef struct sp_conv {
    uint in_h, in_w, in_c, k_w, stride, pad, out_h, out_w, out_c, pixels;
    __global const float *x, *w;
    __global float *y;
    __global const float *b;
    uint relu;
} sp_conv;

// Accumulate the channels [c0, c1) of window position (ky, kx) into acc: x at src[r] + c for
// the rows with ok[r] (all of them when checked is false), W's rows pos in_c + c.
SP_INLINE void sp_conv_channels(const sp_conv g, const bool checked, floatv acc[RB][NB],
                                const uint *src, const bool *ok, const uint pos, const uint c0,
                                const uint c1, const uint j0, const uint nv, const uint last) {
    for (uint c = c0; c < c1; c++) {
        __global const float *wrow = g.w + (size_t)(pos * g.in_c + c) * g.out_c + j0;
        floatv b[NB];
#pragma unroll
        for (int v = 0; v < NB; v++)
            b[v] = v + 1 < nv    ? VLOAD_AT(wrow + v * SP_VEC)
                   : v + 1 == nv ? sp_load_part(wrow + v * SP_VEC, last)
                                 : (floatv)(0.0f);
#pragma unroll
        for (int r = 0; r < RB; r++) {
            const float xs = !checked || ok[r] ? g.x[src[r] + c] : 0.0f;
            const floatv a = (floatv)(xs);
#pragma unroll
            for (int v = 0; v < NB; v++) acc[r][v] = fma(a, b[v], acc[r][v]);
        }
    }
}

// Stores the pixels of the block below g.pixels: y = alpha acc + beta y (beta 0: y's old
// contents ignored), then with g.relu y = max(y (+ b), 0).
SP_INLINE void sp_conv_store(const sp_conv g, const uint p0, floatv acc[RB][NB], const uint j0,
                             const uint nv, const uint last, const float alpha, const float beta) {
#pragma unroll
    for (int r = 0; r < RB; r++) {
#pragma unroll
        for (int v = 0; v < NB; v++) {
            if (p0 + r < g.pixels && v < nv) {
                __global float *p = g.y + (size_t)(p0 + r) * g.out_c + j0 + v * SP_VEC;
                const uint len = v + 1 < nv ? SP_VEC : last;
                floatv o = (floatv)(alpha)*acc[r][v];
                if (beta != 0.0f) o = fma((floatv)(beta), sp_load_part(p, len), o);
                if (g.relu == 2) o += sp_load_part(g.b + j0 + v * SP_VEC, len);
                if (g.relu) o = select(o, (floatv)(0.0f), o < (floatv)(0.0f));
                sp_store_part(o, p, len);
            }
        }
    }
}

// The register block of pixels p0.. (iy, ix: the input coordinates of their windows' top-left
// corners, and base: the offset of that corner's channel 0 in x, all modulo 2^32, so that the
// pad above or left of the image wraps to large values) x nv (<= NB) vectors of channels from
// j0, the last holding last (<= SP_VEC) channels: accumulate over the patch indices [eb, ee),
// then store the pixels below g.pixels as y = alpha acc + beta y (beta 0: y's old contents
// ignored).
SP_INLINE void sp_conv_block(const sp_conv g, const uint p0, const uint *iy, const uint *ix,
                             const uint *base, const uint eb, const uint ee, const uint j0,
                             const uint nv, const uint last, const float alpha, const float beta) {
    floatv acc[RB][NB];
#pragma unroll
    for (int r = 0; r < RB; r++) {
#pragma unroll
        for (int v = 0; v < NB; v++) acc[r][v] = (floatv)(0.0f);
    }
    for (uint e = eb; e < ee;) {
        const uint pos = e / g.in_c, c0 = e - pos * g.in_c, c1 = min(g.in_c, c0 + (ee - e));
        const uint ky = pos / g.k_w, kx = pos - ky * g.k_w;
        // the offset of (ky, kx) is the same from every corner; a position in the padding has a
        // coordinate below 0, which wraps past in_h or in_w
        const uint off = (ky * g.in_w + kx) * g.in_c;
        uint src[RB];
        bool ok[RB];
        bool all = true;
#pragma unroll
        for (int r = 0; r < RB; r++) {
            ok[r] = iy[r] + ky < g.in_h && ix[r] + kx < g.in_w;
            all = all && ok[r];
            src[r] = base[r] + off;
        }
        if (all)
            sp_conv_channels(g, false, acc, src, ok, pos, c0, c1, j0, nv, last);
        else
            sp_conv_channels(g, true, acc, src, ok, pos, c0, c1, j0, nv, last);
        e += c1 - c0;
    }
    sp_conv_store(g, p0, acc, j0, nv, last, alpha, beta);
}

// The sparse kernel reads x through lists of its non-zeros, made by conv_nonzeros once per
// call: per input pixel q, count[q] and, at q in_c.., the channels (idx) and values (val) of
// its non-zeros in channel order.
typedef struct sp_conv_lists {
    __global const uint *count, *idx;
    __global const float *val;
} sp_conv_lists;

// The sparse kernel's block (the arguments of sp_conv_block, and pix: the input pixel index of
// each corner, modulo 2^32 like base): per window position and pixel inside the image, only the
// listed non-zeros of the source pixel, each an FMA with NB vectors of W's row. The zeros of x
// (a ReLU's output) cost nothing; the list is walked to a known count (SparseTrain's skipping,
// with the compare done once per input element instead of once per window position). W is read
// per non-zero, not once per RB pixels as in the dense block: the sparse block does more loads
// per multiply-add, so it wins from some sparsity on (the policy decides). [eb, ee) covers whole
// positions (the host cuts slices at multiples of in_c).
SP_INLINE void sp_conv_sparse_block(const sp_conv g, const sp_conv_lists l, const uint p0,
                                    const uint *iy, const uint *ix, const uint *pix, const uint eb,
                                    const uint ee, const uint j0, const uint nv, const uint last,
                                    const float alpha, const float beta) {
    floatv acc[RB][NB];
#pragma unroll
    for (int r = 0; r < RB; r++) {
#pragma unroll
        for (int v = 0; v < NB; v++) acc[r][v] = (floatv)(0.0f);
    }
    for (uint pos = eb / g.in_c; pos < ee / g.in_c; pos++) {
        const uint ky = pos / g.k_w, kx = pos - ky * g.k_w;
        __global const float *wpos = g.w + (size_t)pos * g.in_c * g.out_c + j0;
#pragma unroll
        for (int r = 0; r < RB; r++) {
            if (iy[r] + ky >= g.in_h || ix[r] + kx >= g.in_w) continue; /* in the padding */
            const uint q = pix[r] + ky * g.in_w + kx; /* wraps back into the image */
            const uint n = l.count[q];
            __global const uint *idx = l.idx + (size_t)q * g.in_c;
            __global const float *val = l.val + (size_t)q * g.in_c;
            for (uint j = 0; j < n; j++) {
                const floatv a = (floatv)(val[j]);
                __global const float *wrow = wpos + (size_t)idx[j] * g.out_c;
#pragma unroll
                for (int v = 0; v < NB; v++) {
                    const floatv b = v + 1 < nv    ? VLOAD_AT(wrow + v * SP_VEC)
                                     : v + 1 == nv ? sp_load_part(wrow + v * SP_VEC, last)
                                                   : (floatv)(0.0f);
                    acc[r][v] = fma(a, b, acc[r][v]);
                }
            }
        }
    }
    sp_conv_store(g, p0, acc, j0, nv, last, alpha, beta);
}

// This work-item's RB pixels x CB channels of y, over its slice of the patch (see the top).
SP_INLINE void sp_conv_forward(const sp_conv g, const bool sparse, const sp_conv_lists l,
                               const uint patch, const uint e0, const uint kc, const float alpha,
                               const float beta) {
    const uint p0 = get_global_id(0) * RB;
    const uint j0 = get_global_id(1) * CB;
    const uint eb = min(patch, e0 + (uint)get_global_id(2) * kc), ee = min(patch, eb + kc);
    if (p0 >= g.pixels || j0 >= g.out_c) return;
    uint iy[RB], ix[RB], base[RB], pix[RB];
#pragma unroll
    for (int r = 0; r < RB; r++) {
        const uint p = min(p0 + r, g.pixels - 1);
        const uint row = p / g.out_w, b = row / g.out_h;
        iy[r] = (row - b * g.out_h) * g.stride - g.pad;
        ix[r] = (p - row * g.out_w) * g.stride - g.pad;
        pix[r] = (b * g.in_h + iy[r]) * g.in_w + ix[r];
        base[r] = pix[r] * g.in_c;
    }
    if (j0 + CB <= g.out_c) {
        if (sparse)
            sp_conv_sparse_block(g, l, p0, iy, ix, pix, eb, ee, j0, NB, SP_VEC, alpha, beta);
        else
            sp_conv_block(g, p0, iy, ix, base, eb, ee, j0, NB, SP_VEC, alpha, beta);
        return;
    }
    // the last block of channels: its full vectors, then one partial vector
    const uint rest = g.out_c - j0;
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    if (sparse)
        sp_conv_sparse_block(g, l, p0, iy, ix, pix, eb, ee, j0, nv, last, alpha, beta);
    else if (last == SP_VEC)
        sp_conv_block(g, p0, iy, ix, base, eb, ee, j0, nv, SP_VEC, alpha, beta);
    else
        sp_conv_block(g, p0, iy, ix, base, eb, ee, j0, nv, last, alpha, beta);
}

// The arguments of both kernels, and the geometry of the work-item's slice.
#define SP_CONV_ARGS                                                                               \
    __global const float *restrict x, __global const float *restrict w,                            \
        __global float *restrict y, const uint batch, const uint in_h, const uint in_w,            \
        const uint in_c, const uint k_h, const uint k_w, const uint stride, const uint pad,        \
        const uint out_h, const uint out_w, const uint out_c, const uint e0, const uint kc,        \
        const float alpha, const float beta, __global const float *restrict bias, const uint relu
#define SP_CONV_GEOM                                                                               \
    {                                                                                              \
        in_h, in_w, in_c, k_w, stride, pad, out_h, out_w, out_c, batch *out_h *out_w, x, w,        \
            y + (size_t)get_global_id(2) * batch *out_h *out_w *out_c, bias, relu                  \
    }

// y (+ slice s at y + s pixels out_c) = alpha im2col(x) . W over the patch indices
// [e0 + s kc, e0 + (s + 1) kc) + beta y; with relu, max(that (+ bias), 0) (the host sets it only
// when one slice writes y whole; bias may be any buffer unless relu is 2). conv_forward_rows
// ignores bias and relu.
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void conv_forward(SP_CONV_ARGS) {
    const sp_conv g = SP_CONV_GEOM;
    const sp_conv_lists none = {0, 0, 0};
    sp_conv_forward(g, false, none, k_h * k_w * in_c, e0, kc, alpha, beta);
}

// The same, visiting only the non-zeros of x (the output of a ReLU, or of a pooling after one)
// through conv_nonzeros' lists; e0 and kc are multiples of in_c.
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void
conv_forward_sparse(SP_CONV_ARGS, __global const uint *restrict count,
                    __global const uint *restrict idx, __global const float *restrict val) {
    const sp_conv g = SP_CONV_GEOM;
    const sp_conv_lists l = {count, idx, val};
    sp_conv_forward(g, true, l, k_h * k_w * in_c, e0, kc, alpha, beta);
}

// A layer with few output channels (lenet5's first: 6, from 1 input channel) fills a vector of
// channels poorly: conv_forward_rows turns the vectors around. A work-item owns SP_VEC
// consecutive output pixels of one row of one image (lanes) x up to SP_ROWS_BLOCK output channels
// (accumulators); per patch index it loads the SP_VEC input pixels its lanes read (where the
// stride is 1 and there is one channel, one vector load with the lanes in the padding masked,
// sp_row_masked, from the host's copy of x with SP_ROW_SLACK(pad) floats of room around it, a
// window row at a time with no division per patch index; lane by lane elsewhere, zero in the
// padding) and does one FMA per output channel with W's scalar. Every lane does useful work
// whatever out_c is. The same slices of the patch index as conv_forward (dimension 2, y + s
// pixels out_c); dimension 0: the row chunks (image, output row, chunk of SP_VEC columns),
// dimension 1: the blocks of SP_ROWS_BLOCK output channels.
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void
conv_forward_rows(SP_CONV_ARGS) {
    const uint chunks = (out_w + SP_VEC - 1) / SP_VEC;
    const uint t = get_global_id(0), row = t / chunks; // row: image b, output row oy
    const uint j0 = get_global_id(1) * SP_ROWS_BLOCK, patch = k_h * k_w * in_c;
    const uint eb = min(patch, e0 + (uint)get_global_id(2) * kc), ee = min(patch, eb + kc);
    if (row >= batch * out_h || j0 >= out_c) return;
    const uint ox0 = (t - row * chunks) * SP_VEC, b = row / out_h, oy = row - b * out_h;
    __global float *ys = y + (size_t)get_global_id(2) * batch * out_h * out_w * out_c;
    const bool contiguous = stride == 1 && in_c == 1;
    __global const float *xs = x + SP_ROW_SLACK(pad); // contiguous: the host's copy with slack
    floatv acc[SP_ROWS_BLOCK];
#pragma unroll
    for (int j = 0; j < SP_ROWS_BLOCK; j++) acc[j] = (floatv)(0.0f);
    // the input column of lane 0 at kx = 0, modulo 2^32 (the pad left of the image wraps)
    const uint ix0 = ox0 * stride - pad;
    if (contiguous) { // e = ky k_w + kx: a window row at a time, no division per patch index
        for (uint e = eb; e < ee;) {
            const uint ky = e / k_w, kx0 = e - ky * k_w, kx1 = min(k_w, kx0 + (ee - e));
            const uint iy = oy + ky - pad;
            if (iy < in_h) {
                const long row0 = ((long)b * in_h + iy) * in_w;
                __global const float *wrow = w + (size_t)(ky * k_w) * out_c;
                for (uint kx = kx0; kx < kx1; kx++) {
                    const int ix = (int)(ix0 + kx);
                    const floatv xv = sp_row_masked(xs, row0 + ix, ix, (int)in_w);
                    SP_ROWS_FMA(acc, xv, wrow + kx * out_c, 1, j0, out_c);
                }
            }
            e += kx1 - kx0;
        }
        sp_rows_store(acc, ys + ((size_t)row * out_w + ox0) * out_c + j0, out_c, out_c - j0,
                      out_w - ox0, alpha, beta);
        return;
    }
    for (uint e = eb; e < ee;) {
        const uint pos = e / in_c, c0 = e - pos * in_c, c1 = min(in_c, c0 + (ee - e));
        const uint ky = pos / k_w, kx = pos - ky * k_w, iy = oy * stride + ky - pad;
        if (iy < in_h) { // else the whole row of lanes lies in the padding: zeros
            const size_t row0 = ((size_t)b * in_h + iy) * in_w * in_c;
            __global const float *xrow = x + row0;
            const uint ix = ix0 + kx;
            for (uint c = c0; c < c1; c++) { // lane by lane, zero in the padding
                float tv[SP_VEC];
#pragma unroll
                for (uint l = 0; l < SP_VEC; l++) {
                    const uint xi = ix + l * stride;
                    tv[l] = xi < in_w ? xrow[(size_t)xi * in_c + c] : 0.0f;
                }
                SP_ROWS_FMA(acc, VLOAD_AT(tv), w + (size_t)(pos * in_c + c) * out_c, 1, j0, out_c);
            }
        }
        e += c1 - c0;
    }
    sp_rows_store(acc, ys + ((size_t)row * out_w + ox0) * out_c + j0, out_c, out_c - j0,
                  out_w - ox0, alpha, beta);
}

// The lists of conv_forward_sparse: work-item q walks input pixel q's in_c channels, writing
// every channel and value at the next slot and moving on only past a non-zero (no branch), so
// the first count[q] slots hold the non-zeros in channel order.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void
conv_nonzeros(__global const float *restrict x, const uint pixels, const uint in_c,
              __global uint *restrict count, __global uint *restrict idx,
              __global float *restrict val) {
    const uint q = get_global_id(0);
    if (q >= pixels) return;
    __global const float *xq = x + (size_t)q * in_c;
    __global uint *iq = idx + (size_t)q * in_c;
    __global float *vq = val + (size_t)q * in_c;
    uint n = 0;
    for (uint c = 0; c < in_c; c++) {
        const float v = xq[c];
        iq[n] = c;
        vq[n] = v;
        n += v != 0.0f;
    }
    count[q] = n;
}
