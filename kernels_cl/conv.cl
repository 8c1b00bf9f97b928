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

// One vector of a store: o = alpha acc + beta *p (beta 0: p's old contents ignored), then with
// mode 1 max(o, 0), 2 max(o + *aux, 0) (aux: the bias at these channels), 3 o where *aux > 0
// (aux: a ReLU's output laid out like the store), written to the first len lanes at p.
SP_INLINE void sp_conv_put(const floatv acc, __global float *p, const uint len, const float alpha,
                           const float beta, const uint mode, __global const float *aux) {
    floatv o = (floatv)(alpha)*acc;
    if (beta != 0.0f) o = fma((floatv)(beta), sp_load_part(p, len), o);
    if (mode == 2) o += sp_load_part(aux, len);
    if (mode == 1 || mode == 2) o = select(o, (floatv)(0.0f), o < (floatv)(0.0f));
    if (mode == 3) o = select((floatv)(0.0f), o, sp_load_part(aux, len) > (floatv)(0.0f));
    sp_store_part(o, p, len);
}

// Stores the pixels of the block below g.pixels: y = alpha acc + beta y (beta 0: y's old
// contents ignored), then with g.relu y = max(y (+ b), 0).
SP_INLINE void sp_conv_store(const sp_conv g, const uint p0, floatv acc[RB][NB], const uint j0,
                             const uint nv, const uint last, const float alpha, const float beta) {
#pragma unroll
    for (int r = 0; r < RB; r++) {
#pragma unroll
        for (int v = 0; v < NB; v++) {
            if (p0 + r < g.pixels && v < nv)
                sp_conv_put(acc[r][v], g.y + (size_t)(p0 + r) * g.out_c + j0 + v * SP_VEC,
                            v + 1 < nv ? SP_VEC : last, alpha, beta, g.relu, g.b + j0 + v * SP_VEC);
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

// conv_strip_sparse: a sparse convolution of stride 1 that walks each input pixel's non-zeros
// once per window row for a strip of outputs, instead of once per window position and output. A
// work-item owns SC consecutive output pixels of one output row (a strip) x SP_GEMM_NB vectors
// of output channels in registers. Per window row ky it reads the SC + k_w - 1 input pixels under
// the strip; per pixel i and chunk of 32 channels it takes the chunk's bit mask (conv_strip_masks,
// one pass over x per call), and per set bit c (x: the value) it does, for every output r of the
// strip that pixel reaches (kx = i - r < k_w), NB FMAs of x with W's row (ky, kx, c): up to k_w
// outputs from one walk. i and r are unrolled and k_w is a constant of each specialisation, so
// kx and the accumulator are known when the kernel is compiled.
//
// Measured on POCL (AVX-512, vgg-small conv2-4, docs/training.md): against the per-position
// lists of conv_forward_sparse, 1.3-1.5x faster at 70 % zeros. What it took: the masks made
// in one pass rather than by each strip from x (10-25 %); the next bit taken as
// clz(m & -m) with m &= m - 1 (a 1-cycle chain from step to step; m ^= 1 << (31 - clz(m))
// chained the clz in: 6 cycles a step); the pixels unrolled by hand (POCL's compiler did not
// unroll a loop around a walk, leaving a test per output and step). Blocks of 2-3 output rows
// (a pixel's walk feeding up to 9 outputs) ran no faster: their tests on ky change with the row.
//
// The same kernel is the backward-by-input of a stride-1 convolution: dx is the convolution of
// dy with the window turned round (flip: W's position (k_h - 1 - ky, k_w - 1 - kx)), pads
// k - 1 - pad, and the weight rearranged as conv_dx.cl's wf (row (pos out_c + oc)).
//
// Geometry: x is batch x in_h x in_w x in_c, y batch x out_h x out_w x out_c, the weight row of
// (position pos, input channel c) at w + (pos in_c + c) ldw, ldw a multiple of CB (the host pads
// the rows: whole vectors are loaded). Dimension 0: the strips (image, output row, strip), 1:
// the blocks of CB output channels, 2: slices of the chunks of 32 input channels, kc chunks each
// from chunk k0, slice s writing y + s (batch out_h out_w out_c) (the host sums them,
// sp_split_reduce). The store: y = alpha acc + beta y; mode 1: then max(y, 0), mode 2:
// max(y + aux[channel], 0) (aux: the bias), mode 3: y kept only where aux (laid out like y: the
// convolution's input in the backward, a ReLU's output) is positive.

#define SC            SP_STRIP_COLS
#define SP_STRIP_KW   5 // the widest window the kernel runs (sp_conv_strip_fits in conv.c)
#define SP_STRIP_SPAN (SC + SP_STRIP_KW - 1)

typedef struct sp_strip {
    uint in_h, in_w, in_c, k_h, pad_y, pad_x, out_h, out_w, out_c, ldw, mode, chunks;
    long ystep, kstep; // the weight rows from ky to ky + 1, and from kx to kx + 1
    __global const float *x, *w;
    __global float *y;
    __global const float *aux;
    __global const uint *masks; // per input pixel and chunk of 32 channels
} sp_strip;

// Input pixel i of the strip (the caller skips those in the padding), its chunk's values at xp
// and their mask m: per non-zero, the FMAs of every output r it reaches (kx = i - r < kw). wy:
// the weight row of (ky, kx 0, the chunk's channel 0) plus j0. Called with kw and i constant.
SP_INLINE void sp_strip_pixel(const sp_strip g, const uint kw, const uint i, floatv acc[SC][NB],
                              __global const float *xp, uint m, __global const float *wy) {
    while (m != 0) {
        const uint c = 31 - clz(m & (0u - m)); // the lowest set bit
        m &= m - 1;
        const floatv a = (floatv)(xp[c]);
        __global const float *wc = wy + (size_t)c * g.ldw;
#pragma unroll
        for (uint r = 0; r < SC; r++) {
            if (i >= r && i - r < kw) {
                __global const float *wrow = wc + (long)(i - r) * g.kstep;
#pragma unroll
                for (uint v = 0; v < NB; v++)
                    acc[r][v] = fma(a, VLOAD_AT(wrow + v * SP_VEC), acc[r][v]);
            }
        }
    }
}

// Stores the strip's outputs inside the row, nv vectors of channels from j0, the last holding
// last (see the top for the modes).
SP_INLINE void sp_strip_store(const sp_strip g, const size_t p0, const uint valid,
                              floatv acc[SC][NB], const uint j0, const uint nv, const uint last,
                              const float alpha, const float beta) {
#pragma unroll
    for (uint r = 0; r < SC; r++) {
#pragma unroll
        for (uint v = 0; v < NB; v++) {
            const size_t at = (p0 + r) * g.out_c + j0 + v * SP_VEC;
            if (r < valid && v < nv)
                sp_conv_put(acc[r][v], g.y + at, v + 1 < nv ? SP_VEC : last, alpha, beta, g.mode,
                            g.aux + (g.mode == 2 ? j0 + v * SP_VEC : at));
        }
    }
}

// The strip of output row oy of image b from column ox0, channels j0.. (nv vectors, the last
// holding last, in the store), over the channel chunks [kb, ke); kw: the window's width (a
// constant).
SP_INLINE void sp_strip_block(const sp_strip g, const uint kw, const uint b, const uint oy,
                              const uint ox0, const uint j0, const uint nv, const uint last,
                              const uint kb, const uint ke, const float alpha, const float beta) {
    floatv acc[SC][NB];
#pragma unroll
    for (uint r = 0; r < SC; r++) {
#pragma unroll
        for (uint v = 0; v < NB; v++) acc[r][v] = (floatv)(0.0f);
    }
    const uint ix0 = ox0 - g.pad_x; // wraps in the padding
    for (uint k = kb; k < ke; k++) {
        __global const float *wk = g.w + (long)k * 32 * g.ldw + j0;
        for (uint ky = 0; ky < g.k_h; ky++) {
            const uint iy = oy + ky - g.pad_y; // wraps past in_h in the padding
            if (iy >= g.in_h) continue;
            const size_t row = ((size_t)b * g.in_h + iy) * g.in_w;
            __global const float *xrow = g.x + row * g.in_c + k * 32;
            __global const uint *mrow = g.masks + row * g.chunks + k;
            __global const float *wy = wk + (long)ky * g.ystep;
#define SP_STRIP_PIXEL(i)                                                                          \
    if ((i) < SP_STRIP_SPAN && (i) < SC + kw - 1 && ix0 + (i) < g.in_w)                            \
        sp_strip_pixel(g, kw, (i), acc, xrow + (size_t)(ix0 + (i)) * g.in_c,                       \
                       mrow[(size_t)(ix0 + (i)) * g.chunks], wy);
            SP_STRIP_PIXEL(0)
            SP_STRIP_PIXEL(1)
            SP_STRIP_PIXEL(2)
            SP_STRIP_PIXEL(3)
            SP_STRIP_PIXEL(4)
            SP_STRIP_PIXEL(5)
            SP_STRIP_PIXEL(6)
            SP_STRIP_PIXEL(7)
            SP_STRIP_PIXEL(8)
            SP_STRIP_PIXEL(9)
            SP_STRIP_PIXEL(10)
            SP_STRIP_PIXEL(11)
            SP_STRIP_PIXEL(12)
            SP_STRIP_PIXEL(13)
            SP_STRIP_PIXEL(14)
            SP_STRIP_PIXEL(15)
#undef SP_STRIP_PIXEL
        }
    }
    const size_t p0 = ((size_t)b * g.out_h + oy) * g.out_w + ox0;
    sp_strip_store(g, p0, min((uint)SC, g.out_w - ox0), acc, j0, nv, last, alpha, beta);
}

// y (+ slice s) = the convolution over the chunks of the slice (see above); k_w 3 or 5.
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void
conv_strip_sparse(__global const float *restrict x, __global const uint *restrict masks,
                  __global const float *restrict w, __global float *restrict y, const uint batch,
                  const uint in_h, const uint in_w, const uint in_c, const uint k_h, const uint k_w,
                  const uint pad_y, const uint pad_x, const uint out_h, const uint out_w,
                  const uint out_c, const uint ldw, const int flip, const uint k0, const uint kc,
                  const float alpha, const float beta, __global const float *restrict aux,
                  const uint mode) {
    const uint strips = (out_w + SC - 1) / SC, t = get_global_id(0), row = t / strips;
    const uint j0 = get_global_id(1) * CB, chunks = (in_c + 31) / 32;
    if (row >= batch * out_h || j0 >= out_c) return;
    const uint kb = min(chunks, k0 + (uint)get_global_id(2) * kc), ke = min(chunks, kb + kc);
    const uint b = row / out_h, oy = row - b * out_h, ox0 = (t - row * strips) * SC;
    // the weight rows: (ky, kx, c) at w + ((ky k_w + kx) in_c + c) ldw, or turned round at
    // ((k_h - 1 - ky) k_w + k_w - 1 - kx)
    const long kstep = (long)in_c * ldw, ystep = (long)k_w * kstep;
    const long first = flip ? (long)(k_h * k_w - 1) * kstep : 0;
    const sp_strip g = {in_h,
                        in_w,
                        in_c,
                        k_h,
                        pad_y,
                        pad_x,
                        out_h,
                        out_w,
                        out_c,
                        ldw,
                        mode,
                        chunks,
                        flip ? -ystep : ystep,
                        flip ? -kstep : kstep,
                        x,
                        w + first,
                        y + (size_t)get_global_id(2) * batch * out_h * out_w * out_c,
                        aux,
                        masks};
    const uint rest = min((uint)CB, out_c - j0);
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    if (k_w == 5)
        sp_strip_block(g, 5, b, oy, ox0, j0, nv, last, kb, ke, alpha, beta);
    else // 3: the host runs no other width
        sp_strip_block(g, 3, b, oy, ox0, j0, nv, last, kb, ke, alpha, beta);
}

// The masks of conv_strip_sparse: for input pixel q and chunk k of 32 channels, bit i set where
// x[q, 32 k + i] is not 0 (a NaN counts as not 0). One work-item per (pixel, chunk).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void
conv_strip_masks(__global const float *restrict x, const uint pixels, const uint in_c,
                 __global uint *restrict masks) {
    const uint chunks = (in_c + 31) / 32, t = get_global_id(0), q = t / chunks;
    if (q >= pixels) return;
    const uint k = t - q * chunks, nc = min(32u, in_c - k * 32);
    __global const float *xp = x + (size_t)q * in_c + k * 32;
    masks[t] = nc == 32 ? sp_nonzero_mask(xp, 32) : sp_nonzero_mask(xp, nc);
}
