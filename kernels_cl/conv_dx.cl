// Convolution backward-by-input (runtime/ops/conv_dx.c launches it): dx = col2im(dy . W^T)
// computed without the cols matrix, as an output-stationary transposed convolution. Images are
// NHWC; dy is (batch out_h out_w) x out_c; W is the forward's (k_h k_w in_c) x out_c, which the
// host first rearranges (conv_dx_flip) into wf, one out_c x ldw block per window position:
// wf[(pos out_c + oc) ldw + c] = W[(pos in_c + c) out_c + oc], pos = ky k_w + kx, ldw = in_c
// rounded up to whole vectors (zeros past in_c: every load of a row is a whole vector, even for
// 1 or 6 channels). So the reduction index e = pos out_c + oc names row e of wf, contiguous in c,
// and one position's block stays in cache while a work-item walks its oc.
//
// conv_dx_dense: the same CPU-style micro-kernel as conv.cl with the sides swapped. A work-item
// owns SP_GEMM_RB dx pixels x SP_GEMM_NB vectors of SP_VEC input channels in registers and
// gathers, window position by window position, the dy pixels whose windows cover its pixels: per
// position it locates them (or finds none), then per output channel oc it loads NB vectors of
// wf's row e and broadcasts one dy scalar per pixel. No cols matrix, no atomics: each dx element
// is written by one work-item, its terms summed in a fixed order.
//
// conv_dx_sparse skips the zeros of dy (most of it in training: the ReLU mask, max-pool's
// backward). Testing each dy scalar in the dense loop cost more than the FMAs it saved on POCL
// (a branch per scalar, mispredicted at random zeros: 2-6x slower than dense at 50-90 % zeros,
// whether per pixel, per oc when all RB pixels are zero, or with one pixel per work-item), so
// conv_dx_lists first lists each dy pixel's non-zeros (value, oc) per chunk of output channels,
// and the sparse kernel walks those lists: per position and pixel, as many steps as non-zeros,
// each NB loads of wf and NB FMAs, SRB pixels per work-item. The terms are the dense kernel's in
// the same order, less the zero ones.
//
// The pixel order: dx pixel (b, iy, ix) with ix = ph + j stride (ph < stride, the phase) is unit
// (b in_h + iy) stride m + ph m + j, m = ceil(in_w / stride) (units with ix >= in_w are not
// stored), and a work-item takes consecutive units. With stride 1 that is the plain pixel order;
// with a larger stride the pixels of a block mostly share a phase, so a window position covers
// all of them or none (oy = (iy + pad - ky) / stride must divide exactly), and the positions
// covering none cost a test, not a walk over out_c.
//
// The reduction: dimension 2 of the range cuts it into slices (dense: of e; sparse: of units
// (position, chunk)), slice s writing its own copy of dx (dx + s dx_numel), which the host sums
// when there is more than one (sp_split_reduce); the host keeps the slices short enough that no
// work-item runs more than LOOP_MAX loop iterations.

#define RB  SP_GEMM_RB
#define NB  SP_GEMM_NB
#define CB  (SP_VEC * SP_GEMM_NB)
#define SRB 4 // dx pixels per work-item of conv_dx_sparse (SPARSE_RB in runtime/ops/conv_dx.c)

// The length of wf's rows: in_c rounded up to whole vectors, so that every load is one.
#define SP_CONV_DX_LDW(in_c) (((in_c) + SP_VEC - 1) / SP_VEC * SP_VEC)

// The geometry, as the kernels receive it, and wf; with masked, the store keeps dx only where
// xm > 0 (xm: the convolution's input, a ReLU's output, laid out like dx; a NaN counts as not
// positive): the ReLU's backward in the same store.
typedef struct sp_convdx {
    uint in_h, in_w, in_c, ldw, k_w, stride, pad, out_h, out_w, out_c, m, span, units;
    __global const float *w;
    __global const float *xm;
    bool masked;
} sp_convdx;

SP_INLINE sp_convdx sp_convdx_geometry(__global const float *wf, const uint batch, const uint in_h,
                                       const uint in_w, const uint in_c, const uint k_w,
                                       const uint stride, const uint pad, const uint out_h,
                                       const uint out_w, const uint out_c) {
    sp_convdx g;
    g.in_h = in_h;
    g.in_w = in_w;
    g.in_c = in_c;
    g.ldw = SP_CONV_DX_LDW(in_c);
    g.xm = wf;
    g.masked = false;
    g.k_w = k_w;
    g.stride = stride;
    g.pad = pad;
    g.out_h = out_h;
    g.out_w = out_w;
    g.out_c = out_c;
    g.m = (in_w + stride - 1) / stride;
    g.span = stride * g.m;
    g.units = batch * in_h * g.span;
    g.w = wf;
    return g;
}

// A dx pixel as the kernels locate the dy pixels covering it: its padded coordinates
// yp = iy + pad and xp = ix + pad as quotient and remainder by the stride, b out_h, and the offset
// in dx of its channel 0 (~0u for a unit that is not a pixel: then no window covers it).
typedef struct sp_convdx_px {
    uint qy, ry, qx, rx, rowb, dst;
} sp_convdx_px;

// Unit q of the pixel order (see the top).
SP_INLINE sp_convdx_px sp_convdx_pixel(const sp_convdx g, const uint q) {
    const uint qc = min(q, g.units - 1);
    const uint row = qc / g.span, t = qc - row * g.span; // row: b in_h + iy
    const uint ph = t / g.m, j = t - ph * g.m, ix = ph + j * g.stride;
    const uint b = row / g.in_h, yp = row - b * g.in_h + g.pad, xp = ix + g.pad;
    sp_convdx_px px;
    px.qy = yp / g.stride;
    px.ry = yp - px.qy * g.stride;
    px.qx = xp / g.stride;
    px.rx = xp - px.qx * g.stride;
    px.rowb = b * g.out_h;
    px.dst = q < g.units && ix < g.in_w ? (row * g.in_w + ix) * g.in_c : ~0u;
    if (px.dst == ~0u) px.ry = g.stride; // no position's remainder
    return px;
}

// Whether window position (ky, kx) of a dy pixel covers px, given k = (ky / stride, ky % stride,
// kx / stride, kx % stride): the dy pixel is (oy, ox) = ((yp - ky) / stride, (xp - kx) / stride),
// both dividing exactly (the remainders agree), inside the output. *p: its row in dy.
SP_INLINE bool sp_convdx_covers(const sp_convdx g, const bool unit, const sp_convdx_px px,
                                const uint4 k, uint *p) {
    const uint oy = px.qy - k.x, ox = px.qx - k.z;
    *p = (px.rowb + oy) * g.out_w + ox;
    return (unit || (k.y == px.ry && k.w == px.rx)) && k.x <= px.qy && k.z <= px.qx &&
           oy < g.out_h && ox < g.out_w;
}

// k of sp_convdx_covers for window position (ky, kx).
SP_INLINE uint4 sp_convdx_position(const sp_convdx g, const bool unit, const uint ky,
                                   const uint kx) {
    if (unit) return (uint4)(ky, 0, kx, 0);
    const uint dy = ky / g.stride, dx = kx / g.stride;
    return (uint4)(dy, ky - dy * g.stride, dx, kx - dx * g.stride);
}

// dx = alpha acc + beta dx for the nv vectors of channels from dst (the last holding last), or
// nothing when dst is ~0u (beta 0: dx's old contents ignored); with g.masked, 0 where xm <= 0.
SP_INLINE void sp_convdx_store(const sp_convdx g, __global float *dx, const uint dst,
                               const floatv *acc, const uint nv, const uint last, const float alpha,
                               const float beta) {
#pragma unroll
    for (int v = 0; v < NB; v++) {
        if (dst != ~0u && v < nv) {
            __global float *p = dx + dst + v * SP_VEC;
            const uint len = v + 1 < nv ? SP_VEC : last;
            floatv o = (floatv)(alpha)*acc[v];
            if (beta != 0.0f) o = fma((floatv)(beta), sp_load_part(p, len), o);
            if (g.masked)
                o = select((floatv)(0.0f), o,
                           sp_load_part(g.xm + dst + v * SP_VEC, len) > (floatv)(0.0f));
            sp_store_part(o, p, len);
        }
    }
}

// ---- conv_dx_dense ------------------------------------------------------------------------------

// Accumulate the output channels [o0, o1) of one window position into acc: dy at src[r] + oc
// for the pixels with ok[r] (all of them when checked is false), wf's rows from wrow (this
// position's row o0 at the block's channel c0).
SP_INLINE void sp_convdx_outs(const sp_convdx g, const bool checked, __global const float *dy,
                              floatv acc[RB][NB], const uint *src, const bool *ok,
                              __global const float *wrow, const uint o0, const uint o1,
                              const uint nv) {
    for (uint oc = o0; oc < o1; oc++, wrow += g.ldw) {
        floatv b[NB];
#pragma unroll
        for (int v = 0; v < NB; v++) b[v] = v < nv ? VLOAD_AT(wrow + v * SP_VEC) : (floatv)(0.0f);
#pragma unroll
        for (int r = 0; r < RB; r++) {
            const floatv a = (floatv)(!checked || ok[r] ? dy[src[r] + oc] : 0.0f);
#pragma unroll
            for (int v = 0; v < NB; v++) acc[r][v] = fma(a, b[v], acc[r][v]);
        }
    }
}

// The block of RB pixels px x nv (<= NB) vectors of channels from c0, the last holding last
// (<= SP_VEC) channels: accumulate over the reduction indices [eb, ee), then store.
SP_INLINE void sp_convdx_block(const sp_convdx g, const bool unit, __global const float *dy,
                               __global float *dx, const sp_convdx_px *px, const uint eb,
                               const uint ee, const uint c0, const uint nv, const uint last,
                               const float alpha, const float beta) {
    floatv acc[RB][NB];
#pragma unroll
    for (int r = 0; r < RB; r++) {
#pragma unroll
        for (int v = 0; v < NB; v++) acc[r][v] = (floatv)(0.0f);
    }
    for (uint e = eb; e < ee;) {
        const uint pos = e / g.out_c, o0 = e - pos * g.out_c, o1 = min(g.out_c, o0 + (ee - e));
        const uint ky = pos / g.k_w;
        const uint4 k = sp_convdx_position(g, unit, ky, pos - ky * g.k_w);
        uint src[RB];
        bool ok[RB];
        bool all = true, any = false;
#pragma unroll
        for (int r = 0; r < RB; r++) {
            ok[r] = sp_convdx_covers(g, unit, px[r], k, &src[r]);
            src[r] *= g.out_c;
            all = all && ok[r];
            any = any || ok[r];
        }
        __global const float *wrow = g.w + (pos * g.out_c + o0) * g.ldw + c0;
        if (all)
            sp_convdx_outs(g, false, dy, acc, src, ok, wrow, o0, o1, nv);
        else if (any)
            sp_convdx_outs(g, true, dy, acc, src, ok, wrow, o0, o1, nv);
        e += o1 - o0;
    }
#pragma unroll
    for (int r = 0; r < RB; r++)
        sp_convdx_store(g, dx, px[r].dst == ~0u ? ~0u : px[r].dst + c0, acc[r], nv, last, alpha,
                        beta);
}

// dx (+ slice s at dx + s dx_numel) = alpha (the terms of the reduction indices
// [e0 + s kc, e0 + (s + 1) kc), e = (ky k_w + kx) out_c + oc) + beta dx: every term, RB pixels
// x CB channels per work-item. With masked, 0 where xm <= 0 (the host masks only a dx that one
// slice writes whole).
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void
conv_dx_dense(__global const float *restrict dy, __global const float *restrict wf,
              __global float *restrict dx, const uint batch, const uint in_h, const uint in_w,
              const uint in_c, const uint k_h, const uint k_w, const uint stride, const uint pad,
              const uint out_h, const uint out_w, const uint out_c, const uint e0, const uint kc,
              const float alpha, const float beta, __global const float *restrict xm,
              const uint masked) {
    sp_convdx g =
        sp_convdx_geometry(wf, batch, in_h, in_w, in_c, k_w, stride, pad, out_h, out_w, out_c);
    g.xm = xm;
    g.masked = masked != 0;
    const uint reduction = k_h * k_w * out_c;
    const uint q0 = get_global_id(0) * RB, c0 = get_global_id(1) * CB;
    const uint eb = min(reduction, e0 + (uint)get_global_id(2) * kc), ee = min(reduction, eb + kc);
    if (q0 >= g.units || c0 >= in_c) return;
    __global float *slice = dx + (size_t)get_global_id(2) * batch * in_h * in_w * in_c;
    sp_convdx_px px[RB];
#pragma unroll
    for (int r = 0; r < RB; r++) px[r] = sp_convdx_pixel(g, q0 + r);
    // nv vectors of channels, the last holding last; the common counts (NB: wide layers; 1: a
    // few channels) as constants, so that the loops over the vectors unroll without tests
    const uint rest = min(in_c - c0, (uint)CB);
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    if (stride == 1 && nv == NB)
        sp_convdx_block(g, true, dy, slice, px, eb, ee, c0, NB, last, alpha, beta);
    else if (stride == 1 && nv == 1)
        sp_convdx_block(g, true, dy, slice, px, eb, ee, c0, 1, last, alpha, beta);
    else
        sp_convdx_block(g, stride == 1, dy, slice, px, eb, ee, c0, nv, last, alpha, beta);
}

// ---- conv_dx_lists and conv_dx_sparse ---------------------------------------------------------

// The non-zeros of dy, for each dy pixel p and chunk ch of ch_len output channels (nch chunks):
// their count at lists[p nch + ch], and the pairs (value bits, oc) in increasing oc from
// lists[ent + 2 (p out_c + ch ch_len)]. One work-item per (pixel, chunk).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void
conv_dx_lists(__global const float *restrict dy, __global uint *restrict lists, const uint pixels,
              const uint out_c, const uint ch_len, const uint nch, const uint ent) {
    const uint i = get_global_id(0);
    if (i >= pixels * nch) return;
    const uint p = i / nch, o0 = (i - p * nch) * ch_len, len = min(ch_len, out_c - o0);
    __global const float *src = dy + p * out_c + o0;
    __global uint *out = lists + ent + 2 * (p * out_c + o0);
    uint n = 0;
    for (uint j = 0; j < len; j++) { // written at every step, kept when not 0: no branch
        const float v = src[j];
        vstore2((uint2)(as_uint(v), o0 + j), n, out);
        n += v != 0.0f;
    }
    lists[i] = n;
}

// The block of SRB pixels x nv (<= NB) vectors of channels from c0 (see sp_convdx_block) over
// the reduction units [ub, ue): per unit, each pixel it covers walks its dy pixel's list.
SP_INLINE void sp_convdx_lists_block(const sp_convdx g, const bool unit, __global const uint *lists,
                                     const uint ch_len, const uint nch, const uint ent,
                                     __global float *dx, const sp_convdx_px *px, const uint ub,
                                     const uint ue, const uint c0, const uint nv, const uint last,
                                     const float alpha, const float beta) {
    floatv acc[SRB][NB];
#pragma unroll
    for (int r = 0; r < SRB; r++) {
#pragma unroll
        for (int v = 0; v < NB; v++) acc[r][v] = (floatv)(0.0f);
    }
    // (pos, ch) of unit u, kx and k of pos, stepped along with u: no division per unit
    uint pos = ub / nch, ch = ub - pos * nch, kx = pos - pos / g.k_w * g.k_w;
    uint4 k = sp_convdx_position(g, unit, pos / g.k_w, kx);
    for (uint u = ub; u < ue; u++) {
        __global const float *wpos = g.w + pos * g.out_c * g.ldw + c0;
#pragma unroll
        for (int r = 0; r < SRB; r++) {
            uint p;
            if (!sp_convdx_covers(g, unit, px[r], k, &p)) continue;
            const uint n = lists[p * nch + ch];
            __global const uint *list = lists + ent + 2 * (p * g.out_c + ch * ch_len);
            for (uint i = 0; i < n; i++) {
                const uint2 t = vload2(i, list);
                const floatv a = (floatv)(as_float(t.x));
                __global const float *wrow = wpos + t.y * g.ldw;
#pragma unroll
                for (int v = 0; v < NB; v++)
                    if (v < nv) acc[r][v] = fma(a, VLOAD_AT(wrow + v * SP_VEC), acc[r][v]);
            }
        }
        if (++ch == nch) { // the next position: kx + 1, or the next row's first
            ch = 0;
            pos++;
            if (++kx == g.k_w) {
                kx = k.z = k.w = 0;
                if (++k.y == g.stride) k = (uint4)(k.x + 1, 0, 0, 0);
            } else if (++k.w == g.stride) {
                k.z++;
                k.w = 0;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < SRB; r++)
        sp_convdx_store(g, dx, px[r].dst == ~0u ? ~0u : px[r].dst + c0, acc[r], nv, last, alpha,
                        beta);
}

// dx (+ slice s) = alpha (the terms of the reduction units [u0 + s uc, u0 + (s + 1) uc), unit
// u = (ky k_w + kx) nch + ch: a window position and a chunk of output channels) + beta dx, only
// the non-zeros of dy (conv_dx_lists), SRB pixels x CB channels per work-item; masked as in
// conv_dx_dense.
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void
conv_dx_sparse(__global const uint *restrict lists, __global const float *restrict wf,
               __global float *restrict dx, const uint batch, const uint in_h, const uint in_w,
               const uint in_c, const uint k_h, const uint k_w, const uint stride, const uint pad,
               const uint out_h, const uint out_w, const uint out_c, const uint ch_len,
               const uint nch, const uint ent, const uint u0, const uint uc, const float alpha,
               const float beta, __global const float *restrict xm, const uint masked) {
    sp_convdx g =
        sp_convdx_geometry(wf, batch, in_h, in_w, in_c, k_w, stride, pad, out_h, out_w, out_c);
    g.xm = xm;
    g.masked = masked != 0;
    const uint reduction = k_h * k_w * nch;
    const uint q0 = get_global_id(0) * SRB, c0 = get_global_id(1) * CB;
    const uint ub = min(reduction, u0 + (uint)get_global_id(2) * uc), ue = min(reduction, ub + uc);
    if (q0 >= g.units || c0 >= in_c) return;
    __global float *slice = dx + (size_t)get_global_id(2) * batch * in_h * in_w * in_c;
    sp_convdx_px px[SRB];
#pragma unroll
    for (int r = 0; r < SRB; r++) px[r] = sp_convdx_pixel(g, q0 + r);
    const uint rest = min(in_c - c0, (uint)CB);
    const uint nv = (rest + SP_VEC - 1) / SP_VEC, last = rest - (nv - 1) * SP_VEC;
    if (stride == 1 && nv == NB)
        sp_convdx_lists_block(g, true, lists, ch_len, nch, ent, slice, px, ub, ue, c0, NB, last,
                              alpha, beta);
    else if (stride == 1 && nv == 1)
        sp_convdx_lists_block(g, true, lists, ch_len, nch, ent, slice, px, ub, ue, c0, 1, last,
                              alpha, beta);
    else
        sp_convdx_lists_block(g, stride == 1, lists, ch_len, nch, ent, slice, px, ub, ue, c0, nv,
                              last, alpha, beta);
}

// conv_dx_rows' room around dyt: its lanes reach up to k_w - 1 - pad columns left of a dy row
// (the transposed convolution's padding) and up to that + SP_VEC - 1 right of it. run_rows
// (conv_dx.c) sizes the copy by the same formula. (Written with min: Oclgrind 21.10 cannot run
// the saturating subtraction LLVM makes of a conditional a - b.)
#define SP_CONVDX_SLACK(k_w, pad) SP_ROW_SLACK((k_w)-1 - min((pad), (k_w)-1))

// A layer with few input channels (lenet5's second: 6) fills a vector of dx's channels poorly:
// conv_dx_rows turns the vectors around, as conv_forward_rows does (stride 1 only, so that the
// lanes' dy pixels are consecutive too). A work-item owns SP_VEC consecutive dx pixels of one row
// of one image (lanes) x up to SP_ROWS_BLOCK input channels (accumulators); per reduction index
// e = pos out_c + oc it loads the SP_VEC dy values of output channel oc its lanes gather from
// dyt, dy transposed to out_c x pixels by conv_dx_transpose with room around it (one vector
// load, the lanes off the image masked: sp_row_masked), and does one FMA per input channel with
// W's scalar (the forward's layout). The same slices of the reduction as conv_dx_dense
// (dimension 2, dx + s dx_numel); dimension 0: the row chunks (image, dx row, chunk of SP_VEC
// columns), dimension 1: the blocks of SP_ROWS_BLOCK input channels.
__kernel __attribute__((reqd_work_group_size(SP_GEMM_WG, 1, 1))) void
conv_dx_rows(__global const float *restrict dyt, __global const float *restrict w,
             __global float *restrict dx, const uint batch, const uint in_h, const uint in_w,
             const uint in_c, const uint k_h, const uint k_w, const uint stride, const uint pad,
             const uint out_h, const uint out_w, const uint out_c, const uint e0, const uint kc,
             const float alpha, const float beta) {
    (void)stride; // 1
    const uint chunks = (in_w + SP_VEC - 1) / SP_VEC, pixels = batch * out_h * out_w;
    const uint t = get_global_id(0), row = t / chunks; // row: image b, dx row iy
    const uint j0 = get_global_id(1) * SP_ROWS_BLOCK, reduction = k_h * k_w * out_c;
    const uint eb = min(reduction, e0 + (uint)get_global_id(2) * kc), ee = min(reduction, eb + kc);
    if (row >= batch * in_h || j0 >= in_c) return;
    const uint ix0 = (t - row * chunks) * SP_VEC, b = row / in_h, iy = row - b * in_h;
    __global float *slice = dx + (size_t)get_global_id(2) * batch * in_h * in_w * in_c;
    dyt += SP_CONVDX_SLACK(k_w, pad);
    floatv acc[SP_ROWS_BLOCK];
#pragma unroll
    for (int j = 0; j < SP_ROWS_BLOCK; j++) acc[j] = (floatv)(0.0f);
    for (uint e = eb; e < ee;) {
        const uint pos = e / out_c, oc0 = e - pos * out_c, oc1 = min(out_c, oc0 + (ee - e));
        const uint ky = pos / k_w, kx = pos - ky * k_w, oy = iy + pad - ky; // wraps when < 0
        if (oy < out_h) {
            // the dy column of lane 0 (negative left of the image)
            const int ox = (int)(ix0 + pad) - (int)kx;
            const size_t prow = ((size_t)b * out_h + oy) * out_w;
            for (uint oc = oc0; oc < oc1; oc++) {
                const floatv dv =
                    sp_row_masked(dyt, (long)((size_t)oc * pixels + prow) + ox, ox, (int)out_w);
                SP_ROWS_FMA(acc, dv, w + (size_t)pos * in_c * out_c + oc, out_c, j0, in_c);
            }
        }
        e += oc1 - oc0;
    }
    sp_rows_store(acc, slice + ((size_t)row * in_w + ix0) * in_c + j0, in_c, in_c - j0, in_w - ix0,
                  alpha, beta);
}

// dyt = dy transposed, pixels x out_c to out_c x pixels, for conv_dx_rows, after `slack` zeros
// and followed by as many (the buffer holds n + 2 slack floats).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void
conv_dx_transpose(__global const float *restrict dy, __global float *restrict dyt,
                  const uint pixels, const uint out_c, const uint slack) {
    const uint i = get_global_id(0), n = pixels * out_c;
    if (i >= n + 2 * slack) return;
    const uint d = i - slack, oc = d / pixels, p = d - oc * pixels;
    dyt[i] = i >= slack && d < n ? dy[(size_t)p * out_c + oc] : 0.0f;
}

// wf[(pos out_c + oc) ldw + c] = w[(pos in_c + c) out_c + oc] for the n = positions out_c ldw
// elements, 0 for c >= in_c: one work-item per element of wf. ldw >= in_c: SP_CONV_DX_LDW(in_c)
// for this file's kernels, whole blocks of vectors for conv_strip_sparse (conv.cl).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void
conv_dx_flip(__global const float *restrict w, __global float *restrict wf, const uint n,
             const uint in_c, const uint out_c, const uint ldw) {
    const uint i = get_global_id(0);
    if (i >= n) return;
    const uint row = i / ldw, c = i - row * ldw, pos = row / out_c, oc = row - pos * out_c;
    wf[i] = c < in_c ? w[(pos * in_c + c) * out_c + oc] : 0.0f;
}
