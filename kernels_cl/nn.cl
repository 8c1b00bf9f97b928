// Layer operations besides the GEMMs (runtime/ops/nn_ops.c launches them): im2col and its
// adjoint col2im, bias add and gradient, ReLU backward, max- and average-pooling forward and
// backward, dropout, softmax + cross-entropy and the SGD step. Images are NHWC (channels last).
//
// Work-items that walk channels take SP_VEC consecutive channels at a time (sp_load_part and
// sp_store_part of common.clh handle the partial last chunk of a pixel), so consecutive work-items touch
// consecutive memory. Every gather form (col2im, the pooling backwards) sums its contributions in a
// fixed order: results are deterministic and need no atomics. All sizes arrive as uint; the
// host checks that every index fits.

// Window geometry shared by the image kernels: batch, input height, width and channels, window
// height and width, stride, zero padding, output height and width.
#define NN_WINDOW_ARGS                                                                          \
    const uint batch, const uint in_h, const uint in_w, const uint in_c, const uint k_h,         \
        const uint k_w, const uint stride, const uint pad, const uint out_h, const uint out_w

// The work-item's elements of an n-element buffer: start .. start + len - 1 (len <= SP_VEC);
// work-items past the end return.
#define NN_ELEMENTS(n)                                                                          \
    const uint start = (uint)get_global_id(0) * SP_VEC;                                          \
    if (start >= (n)) return;                                                                    \
    const uint len = min((uint)SP_VEC, (n)-start)

// The work-item's unit among `units` (a pixel; for im2col a pixel's window position) and its
// channels c0 .. c0 + len - 1 (len <= SP_VEC); work-items past the end return.
#define NN_CHUNK(units)                                                                         \
    const uint cchunks_ = (in_c + SP_VEC - 1) / SP_VEC;                                          \
    const uint unit = (uint)get_global_id(0) / cchunks_;                                         \
    const uint c0 = ((uint)get_global_id(0) - unit * cchunks_) * SP_VEC;                         \
    if (unit >= (units)) return;                                                                 \
    const uint len = min((uint)SP_VEC, in_c - c0)

// Pixel p of a batch of h x w images as (image, row, column).
SP_INLINE uint3 nn_pixel(const uint p, const uint h, const uint w) {
    const uint by = p / w, b = by / h;
    return (uint3)(b, by - b * h, p - by * w);
}

// The gather forms' walk: the statement after (yp, xp) runs for every output pixel (oy, ox)
// whose window covers padded coordinates (yp, xp), at window position (ky, kx). As
// ky = yp - oy * stride, ky starts at yp mod stride and goes every stride rows while oy stays in
// range (columns alike). Windows are visited in increasing (ky, kx) order.
#define NN_FOR_COVERING_WINDOWS(yp, xp, ...)                                                    \
    for (uint ky = SP_REM(yp, stride); ky < k_h && ky <= (yp); ky += stride) {                   \
        const uint oy = ((yp)-ky) / stride;                                                      \
        if (oy >= out_h) continue;                                                               \
        for (uint kx = SP_REM(xp, stride); kx < k_w && kx <= (xp); kx += stride) {              \
            const uint ox = ((xp)-kx) / stride;                                                  \
            if (ox >= out_w) continue;                                                           \
            __VA_ARGS__                                                                          \
        }                                                                                        \
    }

// im2col: one work-item per (output pixel, window row, SP_VEC elements of that row). A window
// row is k_w * in_c consecutive floats in both x (NHWC) and cols, so whole chunks copy as
// vectors; only chunks that reach into the left or right padding go lane by lane.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_im2col(__global const float *x, __global float *cols, NN_WINDOW_ARGS) {
    const uint span = k_w * in_c;
    const uint chunks = (span + SP_VEC - 1) / SP_VEC;
    const uint gid = get_global_id(0);
    const uint unit = gid / chunks; // output pixel * k_h + window row
    if (unit >= batch * out_h * out_w * k_h) return;
    const uint e0 = (gid - unit * chunks) * SP_VEC; // first element of the chunk in the row
    const uint len = min((uint)SP_VEC, span - e0);
    const uint pix = unit / k_h, ky = unit - pix * k_h;
    const uint3 o = nn_pixel(pix, out_h, out_w);
    __global float *dst = cols + unit * span + e0;
    const uint yp = o.y * stride + ky;
    if (yp < pad || yp - pad >= in_h) { // a padding row
        sp_store_part((floatv)(0.0f), dst, len);
        return;
    }
    const uint xp0 = o.z * stride; // padded column of the window's first element
    __global const float *row = x + (o.x * in_h + yp - pad) * in_w * in_c; // the image row
    const uint kx0 = e0 / in_c, c0 = e0 - kx0 * in_c;
    const uint first = xp0 + kx0, last = xp0 + (e0 + len - 1) / in_c;
    if (first >= pad && last - pad < in_w) {
        sp_store_part(sp_load_part(row + (first - pad) * in_c + c0, len), dst, len);
        return;
    }
    for (uint l = 0; l < len; l++) {
        const uint kx = (e0 + l) / in_c, xp = xp0 + kx;
        dst[l] = xp >= pad && xp - pad < in_w ? row[(xp - pad) * in_c + e0 + l - kx * in_c] : 0.0f;
    }
}

// col2im: one work-item per (input pixel, SP_VEC channels), summing the cols entries im2col
// copied from it.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_col2im(__global const float *cols, __global float *dx, NN_WINDOW_ARGS) {
    NN_CHUNK(batch * in_h * in_w); // unit = input pixel
    const uint3 p = nn_pixel(unit, in_h, in_w);
    const uint yp = p.y + pad, xp = p.z + pad;
    const uint row_len = k_h * k_w * in_c;
    __global const float *src = cols + (p.x * out_h * out_w * row_len) + c0;
    floatv acc = (floatv)(0.0f);
    NN_FOR_COVERING_WINDOWS(yp, xp, {
        acc += sp_load_part(src + (oy * out_w + ox) * row_len + (ky * k_w + kx) * in_c, len);
    })
    sp_store_part(acc, dx + unit * in_c + c0, len);
}

// y[r, j] += b[j]: one work-item per (row, SP_VEC columns).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_bias_add(__global float *y, __global const float *bias, const uint rows, const uint n) {
    const uint cchunks = (n + SP_VEC - 1) / SP_VEC;
    const uint gid = get_global_id(0);
    const uint r = gid / cchunks;
    const uint c0 = (gid - r * cchunks) * SP_VEC;
    if (r >= rows) return;
    const uint len = min((uint)SP_VEC, n - c0);
    __global float *p = y + r * n + c0;
    sp_store_part(sp_load_part(p, len) + sp_load_part(bias + c0, len), p, len);
}

// db[j] = sum over rows of dy[r, j]: one work-group per SP_VEC columns and slice of rows; its
// work-items take every SP_WG-th row of the slice, then a tree reduction in local memory. The
// slice: rows [(part0 + s) per, + per), s = get_group_id(1), into db + s * n (with accumulate,
// added to what is there); the host sums the slices when there are several, and keeps
// per / SP_WG below its loop bound. The same order of additions on every run.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_bias_grad(__global const float *dy, __global float *db, const uint rows, const uint n,
                  const uint accumulate, const uint part0, const uint per) {
    __local floatv part[SP_WG];
    const uint lid = get_local_id(0);
    const uint c0 = get_group_id(0) * SP_VEC;
    const uint len = min((uint)SP_VEC, n - c0);
    const uint rb = min(rows, (part0 + (uint)get_group_id(1)) * per), re = min(rows, rb + per);
    db += (size_t)get_group_id(1) * n;
    floatv acc = (floatv)(0.0f);
    for (uint r = rb + lid; r < re; r += SP_WG) acc += sp_load_part(dy + (size_t)r * n + c0, len);
    part[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = SP_WG / 2; s > 0; s >>= 1) {
        if (lid < s) part[lid] += part[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        floatv v = part[0];
        if (accumulate) v += sp_load_part(db + c0, len);
        sp_store_part(v, db + c0, len);
    }
}

// The bias gradient of narrow rows (n fills few of the SP_VEC lanes nn_bias_grad loads per
// row), in two launches. First dy is walked flat, as `total` consecutive floats in full vectors:
// vector j's lane l holds column (j * SP_VEC + l) mod n, the same for every vector j' = j mod V
// (V = P / SP_VEC, P = lcm(n, SP_VEC)). Work-item g of `w` (a multiple of V) adds the vectors g,
// g + w, g + 2w, ..., all of the same columns, and stores the sum at parts + g * SP_VEC: q = w / V
// rows of P floats. The last vector may be partial: its work-item adds it after its loop.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_bias_grad_flat(__global const float *dy, __global float *parts, const uint total,
                       const uint w) {
    const uint g = get_global_id(0);
    if (g >= w) return;
    const uint full = total / SP_VEC;
    floatv acc = (floatv)(0.0f);
    uint j = g;
    for (; j < full; j += w) acc += VLOADV(j, dy);
    if (j == full && total > full * SP_VEC)
        acc += sp_load_part(dy + full * SP_VEC, total - full * SP_VEC);
    VSTOREV(acc, g, parts);
}

// Then db[c] = the sum of the entries c, c + n, ... (< p) of each of the q rows of p floats of
// parts, in a fixed order: one work-item per column. Rows are summed in blocks of 32 and the
// blocks' sums added at the end, so that no long chain of additions runs at the total's
// magnitude (the rounding stays within that of a pairwise-like order).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_bias_grad_fold(__global const float *parts, __global float *db, const uint n, const uint p,
                       const uint q) {
    const uint c = get_global_id(0);
    if (c >= n) return;
    float sum = 0.0f;
    for (uint b = 0; b < q; b += 32) {
        float block = 0.0f;
        for (uint r = b; r < min(q, b + 32); r++) {
            float row = 0.0f;
            for (uint j = c; j < p; j += n) row += parts[r * p + j];
            block += row;
        }
        sum += block;
    }
    db[c] = sum;
}

// dz = dy where y > 0, else 0 (a NaN y counts as not positive). dz may be dy.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_relu_backward(__global const float *y, __global const float *dy, __global float *dz,
                      const uint n) {
    NN_ELEMENTS(n);
    const floatv g = sp_load_part(dy + start, len);
    sp_store_part(select((floatv)(0.0f), g, sp_load_part(y + start, len) > (floatv)(0.0f)),
                dz + start, len);
}

// Max-pooling (no padding): one work-item per (output pixel, SP_VEC channels). A later element
// replaces the running maximum only when it is larger, or when it is the first NaN: the first
// maximum in window order wins and a NaN propagates. arg holds its window position as a float.
// With relu, the pool reads max(x + b, 0) instead of x (b per channel, added only with biased;
// a NaN stays NaN, as in monitor_bias_relu): a ReLU right before the pool, and the bias of the
// GEMM before that, ride along and their output is never stored. b may be any buffer when
// biased is 0.
SP_INLINE floatv nn_pool_in(__global const float *p, const uint len, const floatv bv,
                            const uint relu, const uint biased) {
    floatv v = sp_load_part(p, len);
    if (biased) v += bv;
    if (relu) v = select(v, (floatv)(0.0f), v < (floatv)(0.0f));
    return v;
}

__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_maxpool_forward(__global const float *x, __global const float *b, __global float *y,
                        __global float *arg, const uint relu, const uint biased,
                        NN_WINDOW_ARGS) {
    NN_CHUNK(batch * out_h * out_w); // unit = output pixel
    const uint3 o = nn_pixel(unit, out_h, out_w);
    __global const float *base =
        x + ((o.x * in_h + o.y * stride) * in_w + o.z * stride) * in_c + c0;
    const floatv bv = biased ? sp_load_part(b + c0, len) : (floatv)(0.0f);
    floatv best = nn_pool_in(base, len, bv, relu, biased);
    floatv at = (floatv)(0.0f);
    for (uint ky = 0; ky < k_h; ky++) {
        for (uint kx = 0; kx < k_w; kx++) {
            const floatv v = nn_pool_in(base + (ky * in_w + kx) * in_c, len, bv, relu, biased);
            const intv take = (v > best) | ((v != v) & (best == best));
            best = select(best, v, take);
            at = select(at, (floatv)((float)(ky * k_w + kx)), take);
        }
    }
    (void)pad;
    sp_store_part(best, y + unit * in_c + c0, len);
    sp_store_part(at, arg + unit * in_c + c0, len);
}

// Max-pooling backward: one work-item per (input pixel, SP_VEC channels), summing dy over the
// windows that contain the pixel and whose recorded maximum is it. With masked, a window passes
// its dy on only where its maximum y is positive (NaN: not): the backward of a ReLU right before
// the pool, whose output at the arg-max is y (with masked 0, y may be any buffer of dy's size).
#define NN_MAXPOOL_BACKWARD_ARGS                                                                \
    __global const float *dy, __global const float *arg, __global const float *y,                \
        __global float *dx, const uint masked, NN_WINDOW_ARGS
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_maxpool_backward(NN_MAXPOOL_BACKWARD_ARGS) {
    NN_CHUNK(batch * in_h * in_w); // unit = input pixel
    const uint3 p = nn_pixel(unit, in_h, in_w);
    const intv pass_all = (intv)(masked ? 0 : -1);
    floatv acc = (floatv)(0.0f);
    NN_FOR_COVERING_WINDOWS(p.y, p.z, {
        const uint o = ((p.x * out_h + oy) * out_w + ox) * in_c + c0;
        const intv hit = (sp_load_part(arg + o, len) == (floatv)((float)(ky * k_w + kx))) &
                         ((sp_load_part(y + o, len) > (floatv)(0.0f)) | pass_all);
        acc += select((floatv)(0.0f), sp_load_part(dy + o, len), hit);
    })
    (void)pad;
    sp_store_part(acc, dx + unit * in_c + c0, len);
}

// Max-pooling backward when no two windows overlap (stride >= k_h and k_w): one work-item per
// (output pixel, SP_VEC channels) writes its whole block of dx: its window's arg-max gets dy
// (with masked, only where the window's maximum y is positive, as nn_maxpool_backward), every
// other element of the window and of the gap up to the next window 0; the last row and column
// of windows also clear the rows and columns no window reaches. Each dx element is written once,
// and a work-item reads dy once instead of every pixel reading its windows'.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_maxpool_backward_tiled(NN_MAXPOOL_BACKWARD_ARGS) {
    NN_CHUNK(batch * out_h * out_w); // unit = output pixel
    const uint3 o = nn_pixel(unit, out_h, out_w);
    const uint at = unit * in_c + c0;
    floatv g = sp_load_part(dy + at, len);
    if (masked) g = select((floatv)(0.0f), g, sp_load_part(y + at, len) > (floatv)(0.0f));
    const floatv a = sp_load_part(arg + at, len);
    const uint yb = o.y * stride, ye = o.y + 1 == out_h ? in_h : yb + stride;
    const uint xb = o.z * stride, xe = o.z + 1 == out_w ? in_w : xb + stride;
    __global float *img = dx + o.x * in_h * in_w * in_c + c0;
    for (uint yy = yb; yy < ye; yy++) {
        const uint ky = yy - yb;
        for (uint xx = xb; xx < xe; xx++) {
            const uint kx = xx - xb;
            const float pos = ky < k_h && kx < k_w ? (float)(ky * k_w + kx) : -1.0f;
            sp_store_part(select((floatv)(0.0f), g, a == (floatv)(pos)),
                          img + (yy * in_w + xx) * in_c, len);
        }
    }
    (void)pad;
}

// Average pooling (count_include_pad): y = the sum of the window's elements inside the image,
// divided by the whole window's k_h * k_w (padding counts as zeros). One work-item per (output
// pixel, SP_VEC channels); it walks only the window's rows and columns that lie in the image,
// in row-major window order.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_avgpool_forward(__global const float *x, __global float *y, NN_WINDOW_ARGS) {
    NN_CHUNK(batch * out_h * out_w); // unit = output pixel
    const uint3 o = nn_pixel(unit, out_h, out_w);
    const uint y0 = o.y * stride, x0 = o.z * stride; // the window's padded top-left corner
    const uint yb = max(y0, pad), ye = min(y0 + k_h, in_h + pad);
    const uint xb = max(x0, pad), xe = min(x0 + k_w, in_w + pad);
    __global const float *img = x + o.x * in_h * in_w * in_c + c0;
    floatv acc = (floatv)(0.0f);
    for (uint yp = yb; yp < ye; yp++)
        for (uint xp = xb; xp < xe; xp++)
            acc += sp_load_part(img + ((yp - pad) * in_w + xp - pad) * in_c, len);
    sp_store_part(acc / (floatv)((float)(k_h * k_w)), y + unit * in_c + c0, len);
}

// Average pooling backward: one work-item per (input pixel, SP_VEC channels), summing dy over
// the windows that cover the pixel, then dividing by k_h * k_w. It walks those windows' output
// rows and columns directly (increasing oy, then ox): the output pixels with
// oy * stride <= yp < oy * stride + k_h, yp the padded row (columns alike). Unlike
// NN_FOR_COVERING_WINDOWS it visits no window that is out of range, so a global pooling
// (k = the image, one output pixel) costs a single step per pixel.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_avgpool_backward(__global const float *dy, __global float *dx, NN_WINDOW_ARGS) {
    NN_CHUNK(batch * in_h * in_w); // unit = input pixel
    const uint3 p = nn_pixel(unit, in_h, in_w);
    const uint yp = p.y + pad, xp = p.z + pad;
    const uint oyb = yp < k_h ? 0 : (yp - k_h) / stride + 1, oye = min(yp / stride + 1, out_h);
    const uint oxb = xp < k_w ? 0 : (xp - k_w) / stride + 1, oxe = min(xp / stride + 1, out_w);
    __global const float *g = dy + p.x * out_h * out_w * in_c + c0;
    floatv acc = (floatv)(0.0f);
    for (uint oy = oyb; oy < oye; oy++)
        for (uint ox = oxb; ox < oxe; ox++) acc += sp_load_part(g + (oy * out_w + ox) * in_c, len);
    sp_store_part(acc / (floatv)((float)(k_h * k_w)), dx + unit * in_c + c0, len);
}

// splitmix64's output function: a bijective mix of 64 bits.
inline ulong nn_mix64(ulong z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}

// Dropout: element i is dropped when u_i < p, u_i = the top 24 bits of
// mix64(key + (i + 1) * 0x9E3779B97F4A7C15) times 2^-24 (splitmix64's i-th output from state
// key; the host derives key from seed and counter). Kept elements are scaled by scale =
// 1 / (1 - p), computed on the host; dropped ones are exactly 0 (even where x is NaN or inf).
// y may be x.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_dropout(__global const float *x, __global float *y, const uint n, const ulong key,
                const float p, const float scale) {
    NN_ELEMENTS(n);
    int drop[SP_VEC];
    for (uint l = 0; l < SP_VEC; l++) {
        const ulong h = nn_mix64(key + (ulong)(start + l + 1) * 0x9E3779B97F4A7C15UL);
        const float u = (float)(uint)(h >> 40) * 0x1.0p-24f;
        drop[l] = u < p ? -1 : 0;
    }
#if SP_VEC == 1
    const intv dropped = drop[0];
#else
    const intv dropped = SP_CAT(vload, SP_VEC)(0, drop);
#endif
    const floatv v = sp_load_part(x + start, len) * (floatv)(scale);
    sp_store_part(select(v, (floatv)(0.0f), dropped), y + start, len);
}

// Row patterns of Approximate Random Dropout (runtime/nn/ard.c): over n neurons, neuron j sits
// at position u = (j - offset) mod n and is kept when u mod period < keep; the kept neurons in
// the order of u are the compact indices jc = (u / period) keep + u mod period. nn_row_map
// writes both directions: inv[j] = jc (0xffffffff where dropped) and map[jc] = j. One work-item
// per neuron.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_row_map(__global uint *map, __global uint *inv, const uint n, const uint period,
                const uint keep, const uint offset) {
    const uint j = get_global_id(0);
    if (j >= n) return;
    const uint u = j >= offset ? j - offset : j + (n - offset);
    const uint r = u % period;
    const uint jc = (u / period) * keep + r;
    inv[j] = r < keep ? jc : 0xffffffffu;
    if (r < keep) map[jc] = j;
}

// out (rows_c x cols_c) = scale * in (rows x cols) at the kept rows and columns: out[i, jc] =
// scale * in[rmap[i], cmap[jc]] (rmap, cmap: nn_row_map's map; has_r / has_c 0: all rows or
// columns, in order); has_rs: each kept row i times rscale[i] too (a convolution's weight rows
// by their input channel's dropout scale). Dimension 0: the output's columns, 1: its rows (no
// division per element).
SP_INLINE void nn_gather_at(__global const float *in, __global float *out, const uint cols,
                            const uint cols_c, __global const uint *rmap, __global const uint *cmap,
                            const int has_r, const int has_c, const float scale,
                            __global const float *rscale, const int has_rs, const uint i,
                            const uint jc) {
    const uint r = has_r ? rmap[i] : i, c = has_c ? cmap[jc] : jc;
    const float s = has_rs ? scale * rscale[i] : scale;
    out[(size_t)i * cols_c + jc] = s * in[(size_t)r * cols + c];
}

__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_row_gather(__global const float *in, __global float *out, const uint cols,
                   const uint rows_c, const uint cols_c, __global const uint *rmap,
                   __global const uint *cmap, const int has_r, const int has_c,
                   const float scale, __global const float *rscale, const int has_rs) {
    const uint jc = get_global_id(0), i = get_global_id(1);
    if (jc >= cols_c || i >= rows_c) return;
    nn_gather_at(in, out, cols, cols_c, rmap, cmap, has_r, has_c, scale, rscale, has_rs, i, jc);
}

// The same over a 1-D range of the output's elements (a narrow output, fewer columns than a
// group: the 2-D range's groups would idle most of their work-items).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_row_gather_1d(__global const float *in, __global float *out, const uint cols,
                      const uint rows_c, const uint cols_c, __global const uint *rmap,
                      __global const uint *cmap, const int has_r, const int has_c,
                      const float scale, __global const float *rscale, const int has_rs) {
    const uint e = get_global_id(0), i = e / cols_c;
    if (i >= rows_c) return;
    nn_gather_at(in, out, cols, cols_c, rmap, cmap, has_r, has_c, scale, rscale, has_rs, i,
                 e - i * cols_c);
}

// The reverse: out (rows x cols) = scale * in (rows_c x cols_c) placed back at the kept rows and
// columns, exactly 0 elsewhere: out[i, j] = scale * in[rinv[i], cinv[j]] where both are kept
// (rinv, cinv: nn_row_map's inv); has_rs: times rscale[rinv[i]] too. Dimension 0: the output's
// columns, 1: its rows.
SP_INLINE float nn_kept_value(__global const float *in, const uint cols_c,
                              __global const uint *rinv, __global const uint *cinv,
                              const int has_r, const int has_c, const float scale,
                              __global const float *rscale, const int has_rs, const uint i,
                              const uint j) {
    const uint r = has_r ? rinv[i] : i, c = has_c ? cinv[j] : j;
    if (r == 0xffffffffu || c == 0xffffffffu) return 0.0f;
    return (has_rs ? scale * rscale[r] : scale) * in[(size_t)r * cols_c + c];
}

SP_INLINE void nn_scatter_at(__global const float *in, __global float *out, const uint cols,
                             const uint cols_c, __global const uint *rinv,
                             __global const uint *cinv, const int has_r, const int has_c,
                             const float scale, __global const float *rscale, const int has_rs,
                             const uint i, const uint j) {
    out[(size_t)i * cols + j] =
        nn_kept_value(in, cols_c, rinv, cinv, has_r, has_c, scale, rscale, has_rs, i, j);
}

__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_row_scatter(__global const float *in, __global float *out, const uint rows,
                    const uint cols, const uint cols_c, __global const uint *rinv,
                    __global const uint *cinv, const int has_r, const int has_c,
                    const float scale, __global const float *rscale, const int has_rs) {
    const uint j = get_global_id(0), i = get_global_id(1);
    if (j >= cols || i >= rows) return;
    nn_scatter_at(in, out, cols, cols_c, rinv, cinv, has_r, has_c, scale, rscale, has_rs, i, j);
}

// The same over a 1-D range of the output's elements (narrow outputs, as nn_row_gather_1d).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_row_scatter_1d(__global const float *in, __global float *out, const uint rows,
                       const uint cols, const uint cols_c, __global const uint *rinv,
                       __global const uint *cinv, const int has_r, const int has_c,
                       const float scale, __global const float *rscale, const int has_rs) {
    const uint e = get_global_id(0), i = e / cols;
    if (i >= rows) return;
    nn_scatter_at(in, out, cols, cols_c, rinv, cinv, has_r, has_c, scale, rscale, has_rs, i,
                  e - i * cols);
}

// The SGD step (nn_sgd_step's rule) of a parameter whose gradient is held for the kept rows and
// columns alone (in, rows_c x cols_c, as nn_row_gather lays them out): g = scale * in[rinv[i],
// cinv[j]] where both are kept, else 0; v = momentum v + g + wd w; w = w - lr v. It replaces
// the scatter of the gradient and the step over the whole of it. Dimension 0: the columns, 1: the
// rows.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_row_sgd(__global float *w, __global const float *in, __global float *v, const uint rows,
                const uint cols, const uint cols_c, __global const uint *rinv,
                __global const uint *cinv, const int has_r, const int has_c, const float scale,
                const float lr, const float momentum, const float wd) {
    const uint j = get_global_id(0), i = get_global_id(1);
    if (j >= cols || i >= rows) return;
    const size_t t = (size_t)i * cols + j;
    const float g = nn_kept_value(in, cols_c, rinv, cinv, has_r, has_c, scale, in, 0, i, j);
    const float wt = w[t], vt = momentum * v[t] + (g + wd * wt);
    v[t] = vt;
    w[t] = wt - lr * vt;
}

// Row dropout applied as a mask (where no GEMM is shrunk instead): y[e] = scale * x[e] where
// feature e mod features is kept (inv != 0xffffffff), exactly 0 elsewhere. y may be x.
// Dimension 0: the features, 1: the images (count of them).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_row_mask(__global const float *x, __global float *y, const uint count, const uint features,
                 __global const uint *inv, const float scale) {
    const uint j = get_global_id(0), b = get_global_id(1);
    if (j >= features || b >= count) return;
    const size_t t = (size_t)b * features + j;
    y[t] = inv[j] != 0xffffffffu ? scale * x[t] : 0.0f;
}

// The LSTM's functions through exp alone (POCL's tanh costs several exps): sigmoid(x) =
// 1 / (1 + e^-x), tanh(x) = 1 - 2 / (e^2x + 1); both saturate cleanly (e^-x overflows to inf
// for large -x: 1 / inf = 0), tanh loses relative accuracy near 0 only (absolute error ~ eps).
static inline float nn_sigmoid(const float x) {
    return 1.0f / (1.0f + exp(-x));
}

static inline float nn_tanh(const float x) {
    return 1.0f - 2.0f / (exp(2.0f * x) + 1.0f);
}

// LSTM (runtime/nn/layers/lstm.c), PyTorch's gate order i, f, g, o in each row of 4H
// pre-activations. Forward of step t: pre = gx[(b T + t)] + rec[b] (h_{t-1} W_h; first: none)
// + bias; i, f, o = sigmoid, g = tanh; c = f c_{t-1} + i g (c_{-1} = 0); h = o tanh(c). gates
// (time-major, row t B + b) keeps the four activations, cs the cell states (time-major), hout
// (B x H) the step's hidden state, and hrev the hidden states the backward pass's W_h gradient
// reads, latest first: h_t at block T - 2 - t (t < T - 1). Dropout of the hidden units (the same
// units every step: h_t = mask o tanh(c)): has_mask, the factor of unit j of image b is
// mask[b H + j] (0 or the inverted-dropout scale), else scale for every unit (1: none; the scale
// of a row pattern's kept units when the layer runs on them alone). One work-item per (image,
// unit), a 1-D range: its 2-D form left half of each group idle (H < WG) and ran the gates 2.6x
// slower.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_lstm_forward(__global const float *gx, __global const float *rec,
                     __global const float *bias, __global float *gates, __global float *cs,
                     __global float *hout, __global float *hrev, __global const float *mask,
                     const int has_mask, const float scale, const uint B, const uint H,
                     const uint T, const uint t, const int first) {
    const uint id = get_global_id(0), b = id / H, j = id - b * H;
    if (b >= B) return;
    __global const float *gr = gx + ((size_t)b * T + t) * 4 * H + j;
    __global const float *bb = bias + j;
    __global const float *rr = rec + (size_t)b * 4 * H + j;
    const float r0 = first ? 0.0f : rr[0], r1 = first ? 0.0f : rr[H];
    const float r2 = first ? 0.0f : rr[2 * H], r3 = first ? 0.0f : rr[3 * H];
    const float i = nn_sigmoid(gr[0] + bb[0] + r0), f = nn_sigmoid(gr[H] + bb[H] + r1);
    const float g = nn_tanh(gr[2 * H] + bb[2 * H] + r2), o = nn_sigmoid(gr[3 * H] + bb[3 * H] + r3);
    const size_t at = (size_t)t * B + b;
    const float cp = first ? 0.0f : cs[(at - B) * H + j];
    const float c = f * cp + i * g;
    __global float *ga = gates + at * 4 * H;
    ga[j] = i;
    ga[H + j] = f;
    ga[2 * H + j] = g;
    ga[3 * H + j] = o;
    cs[at * H + j] = c;
    const float h = o * nn_tanh(c) * (has_mask ? mask[(size_t)b * H + j] : scale);
    hout[(size_t)b * H + j] = h;
    if (t + 1 < T) hrev[((size_t)(T - 2 - t) * B + b) * H + j] = h;
}

// LSTM backward of step t: dh (B x H: the gradient reaching h_t), dc (B x H: reaching c_t from
// step t + 1, 0 at the last step; replaced by the gradient reaching c_{t-1}); the gradients of the
// four pre-activations into dgt (B x 4H, for this step's GEMM to h_{t-1}), dgx (batch-major
// row b T + t, for the input GEMMs) and, for t > 0, grev (block T - 1 - t: beside hrev's h_{t-1},
// for W_h's gradient in one GEMM). mask, has_mask, scale: the forward's dropout factors (dh
// reaches the dropped-out h_t: times the factor, it reaches o tanh(c)). One work-item per (image,
// unit).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_lstm_backward(__global const float *gates, __global const float *cs,
                      __global const float *dh, __global float *dc, __global float *dgt,
                      __global float *dgx, __global float *grev, __global const float *mask,
                      const int has_mask, const float scale, const uint B, const uint H,
                      const uint T, const uint t, const int first) {
    const uint id = get_global_id(0), b = id / H, j = id - b * H;
    if (b >= B) return;
    const size_t at = (size_t)t * B + b;
    __global const float *ga = gates + at * 4 * H;
    const float i = ga[j], f = ga[H + j], g = ga[2 * H + j], o = ga[3 * H + j];
    const float c = cs[at * H + j], tc = nn_tanh(c), cp = first ? 0.0f : cs[(at - B) * H + j];
    const size_t bj = (size_t)b * H + j;
    const float d = dh[bj] * (has_mask ? mask[bj] : scale);
    const float dct = dc[bj] + d * o * (1.0f - tc * tc);
    const float dpre[4] = {dct * g * i * (1.0f - i), dct * cp * f * (1.0f - f),
                           dct * i * (1.0f - g * g), d * tc * o * (1.0f - o)};
    dc[bj] = dct * f;
    __global float *rt = dgt + (size_t)b * 4 * H;
    __global float *rx = dgx + ((size_t)b * T + t) * 4 * H;
    __global float *rr = grev + ((size_t)(T - 1 - t) * B + b) * 4 * H;
    for (uint q = 0; q < 4; q++) {
        rt[q * H + j] = dpre[q];
        rx[q * H + j] = dpre[q];
        if (!first) rr[q * H + j] = dpre[q];
    }
}

// Softmax + cross-entropy: one work-item per row (rows are short: the classes). Three passes
// over the row: the maximum (and the first argmax), the sum of exp(x - max), and the gradient.
// stats[r] = (loss, correct). A label that is not an integer in [0, classes) gives a NaN loss
// and a gradient without the one-hot term.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_softmax_xent(__global const float *logits, __global const float *labels,
                     __global float *dlogits, __global float *stats, const uint rows,
                     const uint classes, const float scale, const int want_grad) {
    const uint r = get_global_id(0);
    if (r >= rows) return;
    __global const float *x = logits + r * classes;
    float m = x[0];
    uint am = 0;
    for (uint j = 1; j < classes; j++) {
        if (x[j] > m) {
            m = x[j];
            am = j;
        }
    }
    float sum = 0.0f;
    for (uint j = 0; j < classes; j++) sum += exp(x[j] - m);
    const float lf = labels[r];
    const int valid = lf >= 0.0f && lf < (float)classes && lf == floor(lf);
    const uint label = valid ? (uint)lf : classes;
    const float lse = m + log(sum);
    stats[2 * r] = valid ? lse - x[label] : NAN;
    stats[2 * r + 1] = valid && am == label ? 1.0f : 0.0f;
    if (!want_grad) return;
    const float inv = scale / sum;
    __global float *d = dlogits + r * classes;
    for (uint j = 0; j < classes; j++) {
        const float g = exp(x[j] - m) * inv;
        d[j] = j == label ? g - scale : g;
    }
}

// ---- Dropback (runtime/nn/dropback.c) ----------------------------------------------------------
// A weight's initial value, regenerated from the key of its parameter (seed and layer) and its
// index, never stored: the Irwin-Hall sum of six 21-bit uniforms (the three 21-bit fields of two
// splitmix64 outputs, 2i + 1 and 2i + 2 from state key), centred (an odd integer, |c| < 2^23: exact
// in a float) and times scale (the host's std / sqrt((2^42 - 1) / 2): variance std^2). Integer
// arithmetic and one rounded multiply: the same bits on every device and on the host
// (sp_rng_w0, runtime/core/rng.h).
SP_INLINE float nn_w0(const ulong key, const uint i, const float scale) {
    const ulong a = nn_mix64(key + (2UL * i + 1UL) * 0x9E3779B97F4A7C15UL);
    const ulong b = nn_mix64(key + (2UL * i + 2UL) * 0x9E3779B97F4A7C15UL);
    const ulong f = 0x1FFFFFUL;
    const ulong sum = (a & f) + ((a >> 21) & f) + ((a >> 42) & f) + (b & f) + ((b >> 21) & f) +
                      ((b >> 42) & f);
    return (float)((long)sum - 3L * 0x1FFFFFL) * scale;
}

// The initial values of a parameter of n elements: w[i] = nn_w0(key, i, scale).
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_w0_fill(__global float *w, const uint n, const ulong key, const float scale) {
    const uint i = get_global_id(0);
    if (i < n) w[i] = nn_w0(key, i, scale);
}

// The threshold of Dropback, the k-th largest score over all the parameters, by an exact radix
// select on the scores' bits (non-negative floats order like their bits as uints) in three digits:
// bits 31-21, 20-10, 9-0. state (8 words): [0] the bits found so far, [1] how many of the
// largest are still to pass over within them, [2] the guessed first digit (the last threshold's),
// [3] 1 when the guess failed, [4] the scores whose first digit is above the guess's window, [5]
// the updates whose guess failed, [6] and [7] the elements that joined the tracked set over all the
// updates before the last (low and high words; the last's: joined[], per parameter). A score's
// sign bit says whether its element was tracked after the last update (scores are >= 0: the
// kernels mask it off), so that the joining ones are counted without another buffer. The
// threshold moves little from one update to the next and few scores lie near
// it (the tracked ones sit well above it, the untracked ones, reset at the last update, well
// below), so level 0 counts the first digits of the scores only within NN_DB_WINDOW digits of
// the guess (a factor 2 either way: 16 digits, a factor 16, put most untracked scores in the window and cost four times as much on POCL) and the scores above in registers:
// nn_dropback_score computes each element's score |w - d w0| into scores and counts those;
// nn_dropback_guess finds the digit when the k-th largest is in the window, else asks for the
// full histogram of the first digit from the stored scores (nn_dropback_hist at level 0 and
// nn_dropback_select: they do nothing when the window held it). Levels 1 and 2 count the next
// digit of the scores whose earlier digits match state[0]; nn_dropback_select picks the digit
// after each level. A work-group counts in local memory and adds its non-zero bins to hist (2048
// bins) with atomics: the counts are exact whatever the order.
#define NN_DB_BINS 2048
#define NN_DB_WINDOW 4
#define NN_COMMA , // a comma inside a macro argument: the parameters a kernel of NN_DB_SCORE adds

// A work-group's sum of each work-item's a and b, added to ga and gb by one work-item.
SP_INLINE void nn_group_add2(__local uint *sa, __local uint *sb, const uint a, const uint b,
                             __global uint *ga, __global uint *gb) {
    const uint lid = get_local_id(0);
    sa[lid] = a;
    sb[lid] = b;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint o = SP_WG / 2; o > 0; o >>= 1) {
        if (lid < o) {
            sa[lid] += sa[lid + o];
            sb[lid] += sb[lid + o];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        if (sa[0]) atomic_add(ga, sa[0]);
        if (sb[0]) atomic_add(gb, sb[0]);
    }
}

// A float vector's bits, and lane masks (true: -1) from integer arithmetic: a < b and a == b for
// a - b and b - a in int's range (here: digits, lane numbers, the bits of non-negative floats).
// Not from comparisons: Oclgrind (21.10) adds a comparison's true lanes as 255 once the compiler
// has turned the mask into a vector of booleans.
#if SP_VEC == 1
typedef ulong ulongv;
#define NN_CONVERT(type, v) SP_CAT(convert_, type)(v)
#define NN_AS(type, v) SP_CAT(as_, type)(v)
#else
typedef SP_CAT(ulong, SP_VEC) ulongv;
#define NN_CONVERT(type, v) SP_CAT(SP_CAT(convert_, type), SP_VEC)(v)
#define NN_AS(type, v) SP_CAT(SP_CAT(as_, type), SP_VEC)(v)
#endif
#define NN_AS_INTV(v) NN_AS(int, v)
#define NN_AS_FLOATV(v) NN_AS(float, v)
#define NN_LT(a, b) (((a) - (b)) >> 31)
#define NN_EQ(a, b) (~((((a) - (b)) | ((b) - (a))) >> 31))
#define NN_VALID NN_LT(SP_LANES, (intv)((int)len)) // the lanes within the parameter

// nn_mix64 and nn_w0 on SP_VEC lanes: the initial values of elements i0 .. i0 + SP_VEC - 1, the
// same bits as nn_w0 lane by lane (lanes past the parameter are computed and not used).
SP_INLINE ulongv nn_mix64v(ulongv z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}

SP_INLINE floatv nn_w0v(const ulong key, const uint i0, const float scale) {
    const ulong g = 0x9E3779B97F4A7C15UL, first = key + (2UL * i0 + 1UL) * g;
    const ulongv step = NN_CONVERT(ulong, SP_LANES) * (ulongv)(2UL * g); // a constant
    const ulongv a = nn_mix64v((ulongv)(first) + step), b = nn_mix64v((ulongv)(first + g) + step);
    const ulongv f = (ulongv)(0x1FFFFFUL);
    const ulongv sum = (a & f) + ((a >> 21) & f) + ((a >> 42) & f) + (b & f) + ((b >> 21) & f) +
                       ((b >> 42) & f); // < 2^24
    return NN_CONVERT(float, NN_CONVERT(int, sum) - (intv)(3 * 0x1FFFFF)) * (floatv)(scale);
}

// Before an update's levels (one work-item): the guess from the last threshold (state[0]; 0 before
// the first update), the bits and counts reset, k to pass over (select: an update that selects
// the tracked set; the others keep its threshold and counts), the last update's joining elements
// (joined, per parameter) added to the sum and reset.
__kernel void nn_dropback_begin(__global uint *state, const uint k, __global uint *tracked,
                                __global uint *joined, const uint params, const uint select) {
    uint sum = 0;
    for (uint p = 0; p < params; p++) {
        sum += joined[p];
        joined[p] = 0;
        if (select) tracked[p] = 0;
    }
    const uint low = state[6] + sum;
    state[7] += low < state[6];
    state[6] = low;
    if (!select) return;
    state[2] = state[0] >> 21;
    state[0] = 0;
    state[1] = k;
    state[3] = 0;
    state[4] = 0;
}

// The kernels below take a parameter of n elements, at offset off among the scores, NN_DB_VECS
// vectors of SP_VEC elements per work-item, each vector global-size vectors after the last (a
// constant count: the loop unrolls, where a loop over a varying count ran five times slower on
// POCL), so that a group sums its counts once for many elements. DW0 is the SP_VEC decayed
// initial values from i0: the kernels named without a 0 regenerate them, the ones with a 0 are
// the same kernels for the updates where they are 0 (a bias, or d decayed to 0), which a uniform
// branch would not save: a vectorising compiler computes both sides.
#define NN_DB_VECS 4
#define NN_DB_LOOP                                                                                 \
    const ulong stride_ = get_global_size(0) * SP_VEC;                                             \
    _Pragma("unroll") for (uint v_ = 0; v_ < NN_DB_VECS; v_++) {                                   \
        const ulong at_ = get_global_id(0) * SP_VEC + v_ * stride_;                                \
        if (at_ < n) {                                                                             \
            const uint i0 = (uint)at_;
#define NN_DB_LOOP_END                                                                             \
    }                                                                                              \
    }
#define NN_DB_LEN const uint len = min((uint)SP_VEC, n - i0)

// Level 0 of an update: the scores |w - d w0|, those whose first digit is above the guess's
// window counted, those within it counted into hist.
#define NN_DB_SCORE(NAME, PARAMS, DW0)                                                             \
    __kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void NAME(                         \
        __global const float *w, const uint n, PARAMS __global float *scores, const uint off,     \
        __global uint *state, __global uint *hist) {                                               \
        __local uint sa[SP_WG], sb[SP_WG], h[2 * NN_DB_WINDOW + 1];                                \
        const int guess = (int)state[2], lo = max(guess - NN_DB_WINDOW, 0);                       \
        const int hi = min(guess + NN_DB_WINDOW, NN_DB_BINS - 1);                                  \
        const uint lid = get_local_id(0);                                                          \
        for (uint b = lid; b <= 2 * NN_DB_WINDOW; b += SP_WG) h[b] = 0;                            \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        intv above = (intv)(0);                                                                    \
        NN_DB_LOOP                                                                                 \
            NN_DB_LEN;                                                                             \
            const floatv sc = fabs(sp_load_part(w + i0, len) - (DW0));                             \
            const intv was = NN_AS_INTV(sp_load_part(scores + off + i0, len)) & (intv)(INT_MIN);   \
            sp_store_part(NN_AS_FLOATV(NN_AS_INTV(sc) | was), scores + off + i0, len);             \
            const intv digit = NN_AS_INTV(sc) >> 21, valid = NN_VALID;                             \
            above -= NN_LT((intv)(hi), digit) & valid; /* a true lane is -1 */                     \
            const intv in = ~NN_LT(digit, (intv)(lo)) & ~NN_LT((intv)(hi), digit) & valid;         \
            if (any(in)) {                                                                         \
                int dg[SP_VEC], m[SP_VEC];                                                         \
                VSTORE_AT(digit, dg);                                                              \
                VSTORE_AT(in, m);                                                                  \
                for (uint l = 0; l < SP_VEC; l++)                                                  \
                    if (m[l]) atomic_inc(&h[dg[l] - lo]);                                          \
            }                                                                                      \
        NN_DB_LOOP_END                                                                             \
        nn_group_add2(sa, sb, (uint)VSUM(above), 0, state + 4, state + 4);                         \
        for (uint b = lid; b <= (uint)(hi - lo); b += SP_WG)                                       \
            if (h[b]) atomic_add(&hist[lo + b], h[b]);                                             \
    }
#pragma OPENCL FP_CONTRACT OFF
NN_DB_SCORE(nn_dropback_score, const ulong key NN_COMMA const float scale NN_COMMA const float d NN_COMMA,
            (floatv)(d) * nn_w0v(key, i0, scale))
NN_DB_SCORE(nn_dropback_score0, , (floatv)(0.0f))

// One work-item, after nn_dropback_score over every parameter: the first digit when the k-th
// largest score is in the guess's window (its bins cleared), else state[3] asks for the full
// count.
__kernel void nn_dropback_guess(__global uint *state, __global uint *hist) {
    const int guess = (int)state[2], lo = max(guess - NN_DB_WINDOW, 0);
    const int hi = min(guess + NN_DB_WINDOW, NN_DB_BINS - 1);
    const uint k = state[1];
    uint cum = state[4];
    int digit = -1;
    if (cum < k)
        for (int b = hi; b >= lo; b--) {
            if (cum + hist[b] >= k) {
                digit = b;
                break;
            }
            cum += hist[b];
        }
    if (digit >= 0) {
        state[0] = (uint)digit << 21;
        state[1] = k - cum;
    } else {
        state[3] = 1;
        state[5]++;
    }
    for (int b = lo; b <= hi; b++) hist[b] = 0;
}

// Levels 0 (only when the guess failed), 1 and 2 over the stored scores of a parameter: the
// matching lanes of a vector (all at level 0) are counted one by one.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_dropback_hist(const uint n, __global const float *scores, const uint off,
                      const uint level, __global const uint *state, __global uint *hist) {
    if (level == 0 && !state[3]) return;
    __local uint h[NN_DB_BINS];
    const uint lid = get_local_id(0);
    for (uint b = lid; b < NN_DB_BINS; b += SP_WG) h[b] = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    // level 0 matches everything (no shift by 32: undefined)
    const int shift = level == 1 ? 21 : 10, prefix = (int)state[0] >> shift;
    const int bmask = level == 2 ? 0x3FF : 0x7FF, bshift = level == 0 ? 21 : level == 1 ? 10 : 0;
    NN_DB_LOOP
        NN_DB_LEN;
        const intv bits = NN_AS_INTV(sp_load_part(scores + off + i0, len)) & (intv)(INT_MAX);
        const intv match = (NN_EQ(bits >> shift, (intv)(prefix)) | (intv)(-(level == 0))) & NN_VALID;
        if (any(match)) {
            int b[SP_VEC], m[SP_VEC];
            VSTORE_AT(bits, b);
            VSTORE_AT(match, m);
            for (uint l = 0; l < SP_VEC; l++)
                if (m[l]) atomic_inc(&h[(b[l] >> bshift) & bmask]);
        }
    NN_DB_LOOP_END
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint b = lid; b < NN_DB_BINS; b += SP_WG)
        if (h[b]) atomic_add(&hist[b], h[b]);
}

// One work-item: the digit of `level` holding the state[1]-th largest score, from the largest
// bin down; the bins are cleared for the next level. Level 0 only when the guess failed.
__kernel void nn_dropback_select(__global uint *hist, __global uint *state, const uint level) {
    if (level == 0 && !state[3]) return;
    const uint bins = level == 2 ? 1024 : NN_DB_BINS, shift = level == 0 ? 21 : level == 1 ? 10 : 0;
    uint k = state[1], cum = 0, digit = 0;
    for (uint b = bins; b-- > 0;) {
        const uint c = hist[b];
        if (cum + c >= k) {
            digit = b;
            break;
        }
        cum += c;
    }
    state[0] |= digit << shift;
    state[1] = k - cum;
    for (uint b = 0; b < NN_DB_BINS; b++) hist[b] = 0;
}

// Keeps the elements whose score reaches the threshold T (state[0]'s bits) and resets the others
// to d w0 (DW0 as in NN_DB_SCORE); counts the tracked ones (score >= T and > 0: a score of 0 is
// already d w0) into tracked[slot] and those that were not tracked before into joined[slot], and marks
// the tracked ones in their scores' sign bits.
#define NN_DB_APPLY(NAME, PARAMS, DW0)                                                             \
    __kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void NAME(                         \
        __global float *w, const uint n, PARAMS __global const float *scores, const uint off,     \
        __global const uint *state, __global uint *tracked, __global uint *joins,                 \
        const uint slot) {                                                                         \
        __local uint sa[SP_WG], sb[SP_WG];                                                         \
        const intv t = (intv)((int)state[0]); /* scores and T compare as their bits */            \
        intv kept = (intv)(0), joined = (intv)(0);                                                 \
        NN_DB_LOOP                                                                                 \
            NN_DB_LEN;                                                                             \
            const intv raw = NN_AS_INTV(sp_load_part(scores + off + i0, len));                     \
            const intv bits = raw & (intv)(INT_MAX), keep = ~NN_LT(bits, t);                       \
            const intv now = keep & NN_LT((intv)(0), bits) & NN_VALID;                             \
            kept -= now;                                                                           \
            joined -= now & ~(raw >> 31);                                                          \
            sp_store_part(NN_AS_FLOATV(bits | (now & (intv)(INT_MIN))), scores + off + i0, len);   \
            if (!all(keep))                                                                        \
                sp_store_part(select((DW0), sp_load_part(w + i0, len), keep), w + i0, len);        \
        NN_DB_LOOP_END                                                                             \
        nn_group_add2(sa, sb, (uint)VSUM(kept), (uint)VSUM(joined), tracked + slot, joins + slot); \
    }
NN_DB_APPLY(nn_dropback_apply, const ulong key NN_COMMA const float scale NN_COMMA const float d NN_COMMA,
            (floatv)(d) * nn_w0v(key, i0, scale))
NN_DB_APPLY(nn_dropback_apply0, , (floatv)(0.0f))

// An update that does not select (spartan_train_config.dropback_interval): the tracked set stays
// the last selection's (the scores' sign bits), the others are reset to d w0 (DW0 as in
// NN_DB_SCORE).
#define NN_DB_MEMBER(NAME, PARAMS, DW0)                                                            \
    __kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1))) void NAME(                         \
        __global float *w, const uint n, PARAMS __global const float *scores, const uint off) {   \
        NN_DB_LOOP                                                                                 \
            NN_DB_LEN;                                                                             \
            const intv keep = NN_AS_INTV(sp_load_part(scores + off + i0, len)) >> 31;              \
            if (!all(keep))                                                                        \
                sp_store_part(select((DW0), sp_load_part(w + i0, len), keep), w + i0, len);        \
        NN_DB_LOOP_END                                                                             \
    }
NN_DB_MEMBER(nn_dropback_member, const ulong key NN_COMMA const float scale NN_COMMA const float d NN_COMMA,
             (floatv)(d) * nn_w0v(key, i0, scale))
NN_DB_MEMBER(nn_dropback_member0, , (floatv)(0.0f))
#pragma OPENCL FP_CONTRACT ON

// Subnormal lanes flushed to +0 (integer arithmetic: see NN_LT). A weight whose gradient is 0
// for good (a dead unit, an input pixel that is always 0) has its momentum decay by the momentum
// factor at every step, into subnormal numbers within about 800 steps, which x86 cores compute
// many times more slowly: with Dropback, whose untracked weights stay at 0 (so weight decay does
// not feed their gradient), half of mlp's momenta were subnormal after 3 epochs.
SP_INLINE floatv nn_ftz(const floatv x) {
    const intv bits = NN_AS_INTV(x);
    return NN_AS_FLOATV(bits & ~NN_LT(bits & (intv)(INT_MAX), (intv)(0x00800000)));
}

// SGD with momentum and weight decay (PyTorch's rule, dampening 0): g' = g + wd * w;
// v = momentum * v + g'; w = w - lr * v; both flushed to zero where subnormal (nn_ftz: a
// difference below 1.2e-38). SP_VEC elements per work-item.
__kernel __attribute__((reqd_work_group_size(SP_WG, 1, 1)))
void nn_sgd_step(__global float *w, __global const float *g, __global float *v, const uint n,
                 const float lr, const float momentum, const float wd) {
    NN_ELEMENTS(n);
    const floatv wv = sp_load_part(w + start, len);
    const floatv vv = (floatv)(momentum)*sp_load_part(v + start, len) +
                      (sp_load_part(g + start, len) + (floatv)(wd)*wv);
    sp_store_part(nn_ftz(vv), v + start, len);
    sp_store_part(nn_ftz(wv - (floatv)(lr)*vv), w + start, len);
}
