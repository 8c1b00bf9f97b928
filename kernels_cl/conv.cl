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

// The geometry and operands, as the kernel receives them (y: this slice's block of it).
typedef struct sp_conv {
    uint in_h, in_w, in_c, k_w, stride, pad, out_h, out_w, out_c, pixels;
    __global const float *x, *w;
    __global float *y;
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
// contents ignored).
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

// Bit i set where p[i] is not zero, for the 32 elements from p: two 16-wide compares and an OR
// reduction (no branch); sp_nonzero_bits: the same for n < 32 elements, one at a time.
SP_INLINE uint sp_nonzero_bits32(__global const float *p) {
    const int16 bits =
        (int16)(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768);
    const int16 t = (vload16(0, p) != 0.0f) & bits, u = (vload16(1, p) != 0.0f) & bits;
    const int16 s = t | (u << 16);
    const int8 s8 = s.lo | s.hi;
    const int4 s4 = s8.lo | s8.hi;
    const int2 s2 = s4.lo | s4.hi;
    return (uint)(s2.x | s2.y);
}

SP_INLINE uint sp_nonzero_bits(__global const float *p, const uint n) {
    uint m = 0;
    for (uint i = 0; i < n; i++) m |= (uint)(p[i] != 0.0f) << i;
    return m;
}

// The sparse kernel's block (the same arguments as sp_conv_block): per window position and
// pixel inside the image, the channels are read in groups of 32 into a bit mask of their
// non-zeros (a compare each, no branch), and only the set bits are visited (lowest first, a
// count of leading zeros each), each an FMA of the element with NB vectors of W's row: the
// zeros of x (a ReLU's output) cost a compare, and the one unpredictable branch is the end of
// a group's walk, not every element (SparseTrain's vector compare -> mask -> FMA the
// non-zeros). W is read per non-zero, not once per RB pixels as in the dense block: at equal
// work the sparse block does more loads, so it wins from some sparsity on (the policy decides).
SP_INLINE void sp_conv_sparse_block(const sp_conv g, const uint p0, const uint *iy, const uint *ix,
                                    const uint *base, const uint eb, const uint ee, const uint j0,
                                    const uint nv, const uint last, const float alpha,
                                    const float beta) {
    floatv acc[RB][NB];
#pragma unroll
    for (int r = 0; r < RB; r++) {
#pragma unroll
        for (int v = 0; v < NB; v++) acc[r][v] = (floatv)(0.0f);
    }
    for (uint e = eb; e < ee;) {
        const uint pos = e / g.in_c, c0 = e - pos * g.in_c, c1 = min(g.in_c, c0 + (ee - e));
        const uint ky = pos / g.k_w, kx = pos - ky * g.k_w;
        const uint off = (ky * g.in_w + kx) * g.in_c;
#pragma unroll
        for (int r = 0; r < RB; r++) {
            if (iy[r] + ky >= g.in_h || ix[r] + kx >= g.in_w) continue; /* in the padding */
            /* the offset wraps modulo 2^32 first (see sp_conv_block) */
            __global const float *xr = g.x + (base[r] + off);
            for (uint c = c0; c < c1; c += 32) {
                uint m = c + 32 <= c1 ? sp_nonzero_bits32(xr + c) : sp_nonzero_bits(xr + c, c1 - c);
                while (m) {
                    const uint i = 31 - clz(m & (0u - m));
                    m &= m - 1;
                    const floatv a = (floatv)(xr[c + i]);
                    __global const float *wrow =
                        g.w + (size_t)(pos * g.in_c + c + i) * g.out_c + j0;
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
        e += c1 - c0;
    }
    sp_conv_store(g, p0, acc, j0, nv, last, alpha, beta);
}

// This work-item's RB pixels x CB channels of y, over its slice of the patch (see the top).
SP_INLINE void sp_conv_forward(const sp_conv g, const bool sparse, const uint patch, const uint e0,
                               const uint kc, const float alpha, const float beta) {
    const uint p0 = get_global_id(0) * RB;
    const uint j0 = get_global_id(1) * CB;
    const uint eb = min(patch, e0 + (uint)get_global_id(2) * kc), ee = min(patch, eb + kc);
    if (p0 >= g.pixels || j0 >= g.out_c) return;
    uint iy[RB], ix[RB], base[RB];
#pragma unroll
    for (int r = 0; r < RB; r++) {
        const uint p = min(p0 + r, g.pixels - 1);
        const uint row = p / g.out_w, b = row / g.out_h;
        iy[r] = (row - b * g.out_h) * g.stride - g.pad;
        ix[r] = (p - row * g.out_w) * g.stride - g.pad;
        base[r] = ((b * g.in_h + iy[r]) * g.in_w + ix[r]) * g.in_c;
    }
    if (j0 + CB <= g.out_c) {
        if (sparse)
            sp_conv_sparse_block(g, p0, iy, ix, base, eb, ee, j0, NB, SP_VEC, alpha, beta);
        else
            sp_conv_block(g, p0, iy, ix, base, eb, ee, j0, NB, SP_VEC, alpha, beta);
        return;
    }
    // the last block of channels: its full vectors, then one partial vector
    const uint rest = g.out_c - j0;
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    if (sparse)
        sp_conv_sparse_block(g, p0, iy, ix, base, eb, ee, j0, nv, last, alpha, beta);
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
        const float alpha, const float beta
#define SP_CONV_GEOM                                                                               \
    {                                                                                              \
        in_h, in_w, in_c, k_w, stride, pad, out_h, out_w, out_c, batch *out_h *out_w, x, w,        \
            y + (size_t)get_global_id(2) * batch *out_h *out_w *out_c                              \
    }

// y (+ slice s at y + s pixels out_c) = alpha im2col(x) . W over the patch indices
// [e0 + s kc, e0 + (s + 1) kc) + beta y.
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void conv_forward(SP_CONV_ARGS) {
    const sp_conv g = SP_CONV_GEOM;
    sp_conv_forward(g, false, k_h * k_w * in_c, e0, kc, alpha, beta);
}

// The same, visiting only the non-zeros of x (the output of a ReLU, or of a pooling after one).
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void
conv_forward_sparse(SP_CONV_ARGS) {
    const sp_conv g = SP_CONV_GEOM;
    sp_conv_forward(g, true, k_h * k_w * in_c, e0, kc, alpha, beta);
}
