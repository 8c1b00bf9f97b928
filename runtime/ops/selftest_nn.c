/* The known-answer check of the layer operations (kernels_cl/nn.cl; selftest.h): the bias
 * gradient over a tall column, bias and ReLU backward, im2col and col2im with stride and
 * padding, max- and average-pooling both ways, dropout against the documented hash, row
 * dropout's gather, scatter and mask, the LSTM's step kernels, softmax + cross-entropy and the
 * SGD step, each against a host reference; and the implicit-GEMM
 * convolution's (kernels_cl/conv.cl), which needs the same window helpers. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "ops/selftest_run.h"

static double eps_bound(size_t k, double mag) {
    return (double)(k + 2) * FLT_EPSILON * mag + FLT_MIN;
}

/* db = the column sums of a tall dy; y + b; ReLU's backward (integers: exact). */
static int check_bias_relu(sp_check *r) {
    const size_t rows = r->tall, n = 13, wide = 1031;
    sp_check_host h = {0};
    float *dy = sp_check_alloc(r, &h, rows * n, sizeof(float));
    float *got = sp_check_alloc(r, &h, rows * n, sizeof(float));
    double *want = sp_check_alloc(r, &h, rows * n, sizeof(double));
    if (r->failed) goto done;
    sp_check_fill_int(r, dy, rows * n, 0.3, 3, 0);
    spartan_tensor *tdy = sp_check_upload(r, dy, rows, n), *tdb = sp_check_upload(r, NULL, 1, n);
    if (r->failed || sp_check_call(r, spartan_bias_grad(r->ctx, tdy, tdb), "bias gradient") ||
        sp_check_download(r, tdb, got))
        goto done;
    for (size_t j = 0; j < n; j++) {
        double s = 0.0;
        for (size_t i = 0; i < rows; i++) s += dy[i * n + j];
        want[j] = s;
    }
    if (sp_check_compare(r, "bias gradient", got, want, NULL, n)) goto done;
    sp_check_release(r);

    /* y (5 x wide) + b, exact; then ReLU's backward with y as the ReLU output */
    spartan_tensor *ty = sp_check_upload(r, dy, 5, wide),
                   *tb = sp_check_upload(r, dy + 5 * wide, 1, wide);
    if (r->failed || sp_check_call(r, spartan_bias_add(r->ctx, ty, tb), "bias") ||
        sp_check_download(r, ty, got))
        goto done;
    for (size_t i = 0; i < 5 * wide; i++) want[i] = dy[i] + dy[5 * wide + i % wide];
    if (sp_check_compare(r, "bias", got, want, NULL, 5 * wide)) goto done;
    spartan_tensor *tg = sp_check_upload(r, dy + 6 * wide, 5, wide),
                   *tz = sp_check_upload(r, NULL, 5, wide);
    if (r->failed || sp_check_call(r, spartan_relu_backward(r->ctx, ty, tg, tz), "ReLU backward") ||
        sp_check_download(r, tz, got + 5 * wide))
        goto done;
    for (size_t i = 0; i < 5 * wide; i++) want[i] = got[i] > 0.0f ? dy[6 * wide + i] : 0.0;
    sp_check_compare(r, "ReLU backward", got + 5 * wide, want, NULL, 5 * wide);
done:
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

/* The image element that im2col copies to entry e of patch row p, or -1 for padding. */
static long patch_source(const spartan_window *w, size_t oh, size_t ow, size_t p, size_t e) {
    size_t b = p / (oh * ow), oy = p / ow % oh, ox = p % ow;
    size_t ky = e / (w->k_w * w->in_c), kx = e / w->in_c % w->k_w, c = e % w->in_c;
    long y = (long)(oy * w->stride + ky) - (long)w->pad;
    long x = (long)(ox * w->stride + kx) - (long)w->pad;
    if (y < 0 || y >= (long)w->in_h || x < 0 || x >= (long)w->in_w) return -1;
    return (long)(((b * w->in_h + (size_t)y) * w->in_w + (size_t)x) * w->in_c + c);
}

/* im2col and col2im with stride 2 and padding 1 on images no vector width divides. */
static int check_im2col(sp_check *r) {
    const spartan_window w = {2, 9, 11, 3, 3, 3, 2, 1};
    const size_t oh = spartan_window_out_h(&w), ow = spartan_window_out_w(&w);
    const size_t image = w.batch * w.in_h * w.in_w * w.in_c, patch = w.k_h * w.k_w * w.in_c;
    const size_t pixels = w.batch * oh * ow, ncols = pixels * patch;
    sp_check_host h = {0};
    float *x = sp_check_alloc(r, &h, image, sizeof(float));
    float *got = sp_check_alloc(r, &h, ncols, sizeof(float));
    double *want = sp_check_alloc(r, &h, ncols, sizeof(double));
    double *sum = sp_check_alloc(r, &h, image, sizeof(double));
    if (r->failed) goto done;
    sp_check_fill_int(r, x, image, 0.2, 3, 0);
    spartan_tensor *tx = sp_check_upload(r, x, image, 1),
                   *tc = sp_check_upload(r, NULL, pixels, patch);
    if (r->failed || sp_check_call(r, spartan_im2col(r->ctx, &w, tx, tc), "im2col") ||
        sp_check_download(r, tc, got))
        goto done;
    /* col2im of those columns: every pixel gathers its copies */
    for (size_t p = 0; p < pixels; p++) {
        for (size_t e = 0; e < patch; e++) {
            long i = patch_source(&w, oh, ow, p, e);
            want[p * patch + e] = i < 0 ? 0.0 : x[i];
            if (i >= 0) sum[i] += got[p * patch + e];
        }
    }
    if (sp_check_compare(r, "im2col", got, want, NULL, ncols)) goto done;
    spartan_tensor *tdx = sp_check_upload(r, NULL, image, 1);
    if (r->failed || sp_check_call(r, spartan_col2im(r->ctx, &w, tc, tdx), "col2im") ||
        sp_check_download(r, tdx, got))
        goto done;
    sp_check_compare(r, "col2im", got, sum, NULL, image);
done:
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

/* The host's max-pooling of x on window w, or with bias of max(x + bias, 0) summed in float as
 * the kernel does: the maxima (the first in window order) into want, their positions into arg. */
static void pool_reference(const spartan_window *w, const float *x, const float *bias, double *want,
                           double *arg) {
    const size_t oh = spartan_window_out_h(w), ow = spartan_window_out_w(w);
    const size_t outs = w->batch * oh * ow * w->in_c;
    for (size_t o = 0; o < outs; o++) {
        size_t c = o % w->in_c, p = o / w->in_c, b = p / (oh * ow), oy = p / ow % oh, ox = p % ow;
        float best = 0.0f;
        size_t at = 0;
        for (size_t k = 0; k < w->k_h * w->k_w; k++) {
            size_t y = oy * w->stride + k / w->k_w, xx = ox * w->stride + k % w->k_w;
            float v = x[((b * w->in_h + y) * w->in_w + xx) * w->in_c + c];
            if (bias) {
                v += bias[c];
                v = v < 0.0f ? 0.0f : v;
            }
            if (k == 0 || v > best) {
                best = v;
                at = k;
            }
        }
        want[o] = best;
        arg[o] = (double)at;
    }
}

/* Max-pooling on window w: the maxima, their positions, the gradient, the gradient through a
 * ReLU before the pool (x's sign masks it), and the forward through a bias and a ReLU. dy holds
 * small integers, so that the sums of overlapping windows are exact. */
static int check_maxpool_window(sp_check *r, const spartan_window *w) {
    const size_t oh = spartan_window_out_h(w), ow = spartan_window_out_w(w);
    const size_t image = w->batch * w->in_h * w->in_w * w->in_c,
                 outs = w->batch * oh * ow * w->in_c;
    sp_check_host h = {0};
    float *x = sp_check_alloc(r, &h, image, sizeof(float));
    float *dy = sp_check_alloc(r, &h, outs, sizeof(float));
    float *got = sp_check_alloc(r, &h, image, sizeof(float));
    double *want = sp_check_alloc(r, &h, image, sizeof(double));
    double *arg = sp_check_alloc(r, &h, outs, sizeof(double));
    float *bias = sp_check_alloc(r, &h, w->in_c, sizeof(float));
    if (r->failed) goto done;
    sp_check_fill(r, x, image, 0.0, -1.0f, 1.0f);
    sp_check_fill_int(r, dy, outs, 0.0, 8, 0);
    spartan_tensor *tx = sp_check_upload(r, x, image, 1);
    spartan_tensor *ty = sp_check_upload(r, NULL, w->batch * oh * ow, w->in_c);
    spartan_tensor *ta = sp_check_upload(r, NULL, w->batch * oh * ow, w->in_c);
    spartan_tensor *tdy = sp_check_upload(r, dy, w->batch * oh * ow, w->in_c);
    spartan_tensor *tdx = sp_check_upload(r, NULL, image, 1);
    if (r->failed || sp_check_call(r, spartan_maxpool_forward(r->ctx, w, tx, ty, ta), "max-pool"))
        goto done;
    pool_reference(w, x, NULL, want, arg);
    if (sp_check_download(r, ty, got) || sp_check_compare(r, "max-pool", got, want, NULL, outs) ||
        sp_check_download(r, ta, got) ||
        sp_check_compare(r, "max-pool positions", got, arg, NULL, outs))
        goto done;
    if (sp_check_call(r, spartan_maxpool_backward(r->ctx, w, tdy, ta, tdx), "max-pool backward") ||
        sp_check_download(r, tdx, got))
        goto done;
    memset(want, 0, image * sizeof *want);
    for (size_t o = 0; o < outs; o++) {
        size_t c = o % w->in_c, p = o / w->in_c, b = p / (oh * ow), oy = p / ow % oh, ox = p % ow;
        size_t k = (size_t)arg[o], y = oy * w->stride + k / w->k_w,
               xx = ox * w->stride + k % w->k_w;
        want[((b * w->in_h + y) * w->in_w + xx) * w->in_c + c] += dy[o];
    }
    if (sp_check_compare(r, "max-pool backward", got, want, NULL, image)) goto done;
    if (sp_check_call(r, spartan_maxpool_relu_backward(r->ctx, w, tdy, ta, ty, tdx),
                      "max-pool and ReLU backward") ||
        sp_check_download(r, tdx, got))
        goto done;
    for (size_t i = 0; i < image; i++)
        if (!(x[i] > 0.0f)) want[i] = 0.0;
    if (sp_check_compare(r, "max-pool and ReLU backward", got, want, NULL, image)) goto done;
    /* the forward through a bias and a ReLU: the pool of max(x + b, 0), summed in float */
    for (size_t c = 0; c < w->in_c; c++) bias[c] = 0.25f * (float)c - 0.5f;
    spartan_tensor *tb = sp_check_upload(r, bias, 1, w->in_c);
    if (r->failed || sp_check_call(r, spartan_relu_maxpool_forward(r->ctx, w, tx, tb, ty, ta),
                                   "bias, ReLU and max-pool"))
        goto done;
    pool_reference(w, x, bias, want, arg);
    if (sp_check_download(r, ty, got) ||
        sp_check_compare(r, "bias, ReLU and max-pool", got, want, NULL, outs) ||
        sp_check_download(r, ta, got))
        goto done;
    sp_check_compare(r, "bias, ReLU and max-pool positions", got, arg, NULL, outs);
done:
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

/* Max-pooling on 5 channels: 2 x 2 windows with stride 2 (the tiled backward; the last column
 * in no window) and overlapping 3 x 3 windows with stride 2 (the gathering backward). */
static int check_maxpool(sp_check *r) {
    const spartan_window tiled = {2, 8, 11, 5, 2, 2, 2, 0}, overlap = {2, 7, 9, 5, 3, 3, 2, 0};
    return check_maxpool_window(r, &tiled) || check_maxpool_window(r, &overlap);
}

/* Average pooling of small integers both ways on window w: every sum is exact in float, so only
 * the division by the window's size rounds (within 2.5 ulp in OpenCL C). */
static int check_avgpool_window(sp_check *r, const spartan_window *w) {
    const size_t oh = spartan_window_out_h(w), ow = spartan_window_out_w(w);
    const size_t image = w->batch * w->in_h * w->in_w * w->in_c, patch = w->k_h * w->k_w * w->in_c;
    const size_t pixels = w->batch * oh * ow, outs = pixels * w->in_c;
    const double area = (double)(w->k_h * w->k_w);
    sp_check_host h = {0};
    float *x = sp_check_alloc(r, &h, image, sizeof(float));
    float *dy = sp_check_alloc(r, &h, outs, sizeof(float));
    float *got = sp_check_alloc(r, &h, image > outs ? image : outs, sizeof(float));
    double *y = sp_check_alloc(r, &h, outs, sizeof(double));
    double *dx = sp_check_alloc(r, &h, image, sizeof(double));
    double *bound = sp_check_alloc(r, &h, image > outs ? image : outs, sizeof(double));
    if (r->failed) goto done;
    sp_check_fill_int(r, x, image, 0.2, 3, 0);
    sp_check_fill_int(r, dy, outs, 0.2, 3, 0);
    spartan_tensor *tx = sp_check_upload(r, x, image, 1);
    spartan_tensor *ty = sp_check_upload(r, NULL, pixels, w->in_c);
    spartan_tensor *tdy = sp_check_upload(r, dy, pixels, w->in_c);
    spartan_tensor *tdx = sp_check_upload(r, NULL, image, 1);
    if (r->failed || sp_check_call(r, spartan_avgpool_forward(r->ctx, w, tx, ty), "avg-pool") ||
        sp_check_call(r, spartan_avgpool_backward(r->ctx, w, tdy, tdx), "avg-pool backward"))
        goto done;
    /* the sums, scattered through the window positions im2col copies */
    for (size_t p = 0; p < pixels; p++) {
        for (size_t e = 0; e < patch; e++) {
            long i = patch_source(w, oh, ow, p, e);
            if (i < 0) continue;
            size_t o = p * w->in_c + e % w->in_c;
            y[o] += x[i];
            dx[i] += dy[o];
        }
    }
    for (size_t o = 0; o < outs; o++) {
        y[o] /= area;
        bound[o] = eps_bound(1, fabs(y[o]));
    }
    if (sp_check_download(r, ty, got) || sp_check_compare(r, "avg-pool", got, y, bound, outs))
        goto done;
    for (size_t i = 0; i < image; i++) {
        dx[i] /= area;
        bound[i] = eps_bound(1, fabs(dx[i]));
    }
    if (!sp_check_download(r, tdx, got))
        sp_check_compare(r, "avg-pool backward", got, dx, bound, image);
done:
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

/* Overlapping 3 x 3 windows with stride 2 and padding 1 on 5 channels; and a global pooling
 * (the window is the image: one output pixel, each input pixel in one window). */
static int check_avgpool(sp_check *r) {
    const spartan_window overlap = {2, 7, 9, 5, 3, 3, 2, 1}, global = {3, 6, 5, 7, 6, 5, 1, 0};
    return check_avgpool_window(r, &overlap) || check_avgpool_window(r, &global);
}

/* Dropout over a tall vector against the hash ops.h documents; the SGD step. */
static int check_dropout_sgd(sp_check *r) {
    const size_t n = r->tall, m = 1031, len = n > 3 * m ? n : 3 * m;
    const float p = 0.5f, scale = 1.0f / (1.0f - p);
    const unsigned long long seed = 7, counter = 3;
    sp_check_host h = {0};
    float *x = sp_check_alloc(r, &h, len, sizeof(float)),
          *got = sp_check_alloc(r, &h, len, sizeof(float));
    double *want = sp_check_alloc(r, &h, len, sizeof(double));
    double *bound = sp_check_alloc(r, &h, len, sizeof(double));
    if (r->failed) goto done;
    sp_check_fill(r, x, len, 0.0, -1.0f, 1.0f);
    spartan_tensor *tx = sp_check_upload(r, x, 1, n), *ty = sp_check_upload(r, NULL, 1, n);
    if (r->failed ||
        sp_check_call(r, spartan_dropout_forward(r->ctx, tx, ty, p, seed, counter), "dropout") ||
        sp_check_download(r, ty, got))
        goto done;
    const uint64_t key = sp_dropout_key(seed, counter);
    for (size_t i = 0; i < n; i++) {
        uint64_t hh = sp_mix64(key + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull);
        float u = (float)(uint32_t)(hh >> 40) * 0x1.0p-24f;
        want[i] = u < p ? 0.0 : (double)(x[i] * scale);
    }
    if (sp_check_compare(r, "dropout", got, want, NULL, n)) goto done;
    sp_check_release(r);

    /* v = momentum v + (g + wd w); w = w - lr v */
    const float lr = 0.1f, mom = 0.9f, wd = 5e-4f;
    spartan_tensor *tw = sp_check_upload(r, x, 1, m), *tg = sp_check_upload(r, x + m, 1, m);
    spartan_tensor *tv = sp_check_upload(r, x + 2 * m, 1, m);
    if (r->failed || sp_check_call(r, spartan_sgd_step(r->ctx, tw, tg, tv, lr, mom, wd), "SGD") ||
        sp_check_download(r, tv, got) || sp_check_download(r, tw, got + m))
        goto done;
    for (size_t i = 0; i < m; i++) {
        double w0 = x[i], g = x[m + i], v0 = x[2 * m + i];
        double v = mom * v0 + (g + wd * w0);
        double vmag = fabs(mom * v0) + fabs(g) + fabs(wd * w0);
        want[i] = v;
        bound[i] = eps_bound(3, vmag);
        want[m + i] = w0 - lr * v;
        bound[m + i] = eps_bound(2, fabs(w0) + fabs(lr * v)) + lr * bound[i];
    }
    sp_check_compare(r, "SGD", got, want, bound, 2 * m);
done:
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

/* Softmax + cross-entropy over 37 rows of 10 classes: losses, hits and the gradient. */
static int check_softmax(sp_check *r) {
    const size_t rows = 37, classes = 10, n = rows * classes;
    const float scale = 1.0f / (float)rows;
    sp_check_host h = {0};
    float *x = sp_check_alloc(r, &h, n, sizeof(float)),
          *lab = sp_check_alloc(r, &h, rows, sizeof(float));
    float *got = sp_check_alloc(r, &h, n, sizeof(float));
    double *want = sp_check_alloc(r, &h, n, sizeof(double));
    double *bound = sp_check_alloc(r, &h, n, sizeof(double));
    if (r->failed) goto done;
    sp_check_fill(r, x, n, 0.0, -4.0f, 4.0f);
    for (size_t i = 0; i < rows; i++) lab[i] = (float)(sp_rng_next(&r->rng) % classes);
    spartan_tensor *tx = sp_check_upload(r, x, rows, classes),
                   *tl = sp_check_upload(r, lab, rows, 1);
    spartan_tensor *td = sp_check_upload(r, NULL, rows, classes),
                   *ts = sp_check_upload(r, NULL, rows, 2);
    if (r->failed ||
        sp_check_call(r, spartan_softmax_xent(r->ctx, tx, tl, scale, td, ts), "softmax") ||
        sp_check_download(r, td, got))
        goto done;
    double stats[2 * 37], sbound[2 * 37];
    for (size_t i = 0; i < rows; i++) {
        const float *xr = x + i * classes;
        double m = xr[0], sum = 0.0;
        size_t am = 0;
        for (size_t j = 1; j < classes; j++)
            if (xr[j] > m) {
                m = xr[j];
                am = j;
            }
        for (size_t j = 0; j < classes; j++) sum += exp(xr[j] - m);
        size_t l = (size_t)lab[i];
        stats[2 * i] = m + log(sum) - xr[l];
        sbound[2 * i] = eps_bound(classes + 8, 2.0 * fabs(m) + log((double)classes) + 1.0);
        stats[2 * i + 1] = am == l;
        sbound[2 * i + 1] = 0.0;
        for (size_t j = 0; j < classes; j++) {
            want[i * classes + j] = scale * (exp(xr[j] - m) / sum - (j == l));
            bound[i * classes + j] = eps_bound(classes + 8, scale);
        }
    }
    if (sp_check_compare(r, "softmax gradient", got, want, bound, n) ||
        sp_check_download(r, ts, got))
        goto done;
    sp_check_compare(r, "softmax losses", got, stats, sbound, 2 * rows);
done:
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

/* Row dropout's maps, gather, scatter, mask and SGD step (rows.c): a pattern over 37 neurons
 * (period 5, keep 2, turned by 11), W 3 x 37 gathered by columns and placed back, a batch masked,
 * W stepped from its kept gradient. */
static int check_rows(sp_check *r) {
    const sp_row_pattern pat = {37, 5, 2, 11};
    const size_t n = pat.n, rows = 3, kept = sp_row_pattern_count(&pat);
    const float scale = 2.0f;
    sp_check_host h = {0};
    float *w = sp_check_alloc(r, &h, rows * n, sizeof(float)),
          *got = sp_check_alloc(r, &h, rows * n, sizeof(float));
    double *want = sp_check_alloc(r, &h, rows * n, sizeof(double));
    sp_row_maps maps = {0};
    if (r->failed || sp_check_call(r, sp_row_maps_create(r->ctx, n, &maps), "row maps")) goto done;
    sp_check_fill_int(r, w, rows * n, 0.0, 3, 0);
    spartan_tensor *tw = sp_check_upload(r, w, rows, n), *tc = sp_check_upload(r, NULL, rows, n);
    spartan_tensor *tb = sp_check_upload(r, NULL, rows, n);
    if (r->failed || sp_check_call(r, sp_row_maps_set(r->ctx, &maps, &pat), "row maps") ||
        sp_check_call(r, sp_row_gather(r->ctx, tw, rows, n, NULL, &maps, scale, tc), "gather") ||
        sp_check_call(r, sp_row_scatter(r->ctx, tc, rows, n, NULL, &maps, 1.0f, tb), "scatter") ||
        sp_check_download(r, tc, got))
        goto done;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < n; j++) {
            const size_t jc = sp_row_pattern_index(&pat, j);
            if (jc != SIZE_MAX) want[i * kept + jc] = scale * (double)w[i * n + j];
        }
    if (sp_check_compare(r, "row gather", got, want, NULL, rows * kept) ||
        sp_check_download(r, tb, got))
        goto done;
    for (size_t i = 0; i < rows * n; i++)
        want[i] = sp_row_pattern_index(&pat, i % n) == SIZE_MAX ? 0.0 : scale * (double)w[i];
    if (sp_check_compare(r, "row scatter", got, want, NULL, rows * n)) goto done;
    /* the mask: W's rows as a batch of 3 images of 37 features */
    if (sp_check_call(r, sp_row_mask(r->ctx, tw, tc, n, &maps, scale), "row mask") ||
        sp_check_download(r, tc, got) || sp_check_compare(r, "row mask", got, want, NULL, rows * n))
        goto done;
    /* by rows with a factor per kept row: W read as 37 x 3, kept row jc times 1 + jc % 3, and
     * back with the same factors */
    spartan_tensor *trs = sp_check_upload(r, NULL, 1, kept);
    float rs[37];
    for (size_t jc = 0; jc < kept; jc++) rs[jc] = (float)(1 + jc % 3);
    if (r->failed || sp_check_call(r, spartan_tensor_write(trs, rs, kept), "write") ||
        sp_check_call(r, sp_row_gather_scaled(r->ctx, tw, n, rows, &maps, NULL, scale, trs, tc),
                      "gather by rows") ||
        sp_check_call(r, sp_row_scatter_scaled(r->ctx, tc, n, rows, &maps, NULL, 1.0f, trs, tb),
                      "scatter by rows") ||
        sp_check_download(r, tc, got))
        goto done;
    for (size_t j = 0; j < n; j++) {
        const size_t jc = sp_row_pattern_index(&pat, j);
        for (size_t i = 0; jc != SIZE_MAX && i < rows; i++)
            want[jc * rows + i] = scale * rs[jc] * (double)w[j * rows + i];
    }
    if (sp_check_compare(r, "row gather by rows", got, want, NULL, kept * rows) ||
        sp_check_download(r, tb, got))
        goto done;
    for (size_t j = 0; j < n; j++) {
        const size_t jc = sp_row_pattern_index(&pat, j);
        for (size_t i = 0; i < rows; i++)
            want[j * rows + i] =
                jc == SIZE_MAX ? 0.0 : (double)rs[jc] * scale * rs[jc] * (double)w[j * rows + i];
    }
    if (sp_check_compare(r, "row scatter by rows", got, want, NULL, rows * n)) goto done;
    /* the SGD step from the kept gradient (tc: W gathered above, times 2 again), v from 0 */
    const float lr = 0.5f, mom = 0.5f, wd = 0.25f;
    spartan_tensor *tv = sp_check_upload(r, NULL, rows, n);
    if (r->failed || sp_check_call(r, spartan_tensor_fill(tv, 0.0f), "fill") ||
        sp_check_call(r, sp_row_gather(r->ctx, tw, rows, n, NULL, &maps, 1.0f, tc), "gather") ||
        sp_check_call(r, sp_row_sgd(r->ctx, tw, tc, tv, rows, n, NULL, &maps, scale, lr, mom, wd),
                      "row SGD") ||
        sp_check_download(r, tw, got))
        goto done;
    /* small integers times powers of two: exact */
    for (size_t i = 0; i < rows * n; i++) {
        const double g = sp_row_pattern_index(&pat, i % n) == SIZE_MAX ? 0.0 : scale * w[i];
        want[i] = w[i] - lr * (g + wd * w[i]);
    }
    sp_check_compare(r, "row SGD", got, want, NULL, rows * n);
done:
    sp_row_maps_release(&maps);
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

/* The LSTM's step kernels (lstm.c) against a host cell in double: 3 images, 5 units, 2 steps
 * forward (the second reading the recurrent term), then the last step backward, a dropout mask on
 * the hidden units (a third of them 0, the rest 2). Each value is a few float operations and exp:
 * within 16 roundings of 2 (the values are at most T = 2). */
static int check_lstm(sp_check *r) {
    enum { B = 3, H = 5, T = 2, G = 4 * H };
    float gx[B * T * G], rec[B * G], bias[G], dh[B * H], mask[B * H], got[T * B * G];
    for (size_t i = 0; i < B * H; i++) mask[i] = i % 3 == 1 ? 0.0f : 2.0f;
    double want[T * B * G], bound[T * B * G];
    sp_check_fill(r, gx, B * T * G, 0.0, -2.0f, 2.0f);
    sp_check_fill(r, rec, B * G, 0.0, -1.0f, 1.0f);
    sp_check_fill(r, bias, G, 0.0, -0.5f, 0.5f);
    sp_check_fill(r, dh, B * H, 0.0, -1.0f, 1.0f);
    spartan_tensor *tgx = sp_check_upload(r, gx, B * T, G), *trec = sp_check_upload(r, rec, B, G);
    spartan_tensor *tb = sp_check_upload(r, bias, 1, G), *tg = sp_check_upload(r, NULL, T * B, G);
    spartan_tensor *tc = sp_check_upload(r, NULL, T * B, H), *th = sp_check_upload(r, NULL, B, H);
    spartan_tensor *thr = sp_check_upload(r, NULL, B, H), *tdh = sp_check_upload(r, dh, B, H);
    spartan_tensor *tdc = sp_check_upload(r, NULL, B, H), *tdgt = sp_check_upload(r, NULL, B, G);
    spartan_tensor *tdgx = sp_check_upload(r, NULL, B * T, G);
    spartan_tensor *tgr = sp_check_upload(r, NULL, B, G), *tm = sp_check_upload(r, mask, B, H);
    if (r->failed) goto done;
    for (size_t t = 0; t < T; t++)
        if (sp_check_call(r,
                          sp_lstm_forward_step(r->ctx, tgx->mem, trec->mem, tb->mem, tg->mem,
                                               tc->mem, th->mem, thr->mem, tm->mem, 1.0f, B, H, T,
                                               t),
                          "LSTM forward step"))
            goto done;
    /* the host cell: gates (time-major rows t B + b: i, f, g, o), cell states, the last h */
    double gates[T * B * G], cell[T * B * H], hlast[B * H];
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < H; j++) {
                double pre[4];
                for (size_t q = 0; q < 4; q++)
                    pre[q] = (double)gx[(b * T + t) * G + q * H + j] + bias[q * H + j] +
                             (t ? (double)rec[b * G + q * H + j] : 0.0);
                const double i = 1.0 / (1.0 + exp(-pre[0])), f = 1.0 / (1.0 + exp(-pre[1]));
                const double g = tanh(pre[2]), o = 1.0 / (1.0 + exp(-pre[3]));
                const double cp = t ? cell[((t - 1) * B + b) * H + j] : 0.0, c = f * cp + i * g;
                const double v[4] = {i, f, g, o};
                for (size_t q = 0; q < 4; q++) gates[(t * B + b) * G + q * H + j] = v[q];
                cell[(t * B + b) * H + j] = c;
                hlast[b * H + j] = o * tanh(c) * mask[b * H + j];
            }
    for (size_t i = 0; i < T * B * G; i++) bound[i] = eps_bound(16, 2.0); /* |c| <= T */
    if (sp_check_download(r, tg, got) ||
        sp_check_compare(r, "LSTM gates", got, gates, bound, T * B * G) ||
        sp_check_download(r, tc, got) ||
        sp_check_compare(r, "LSTM cell states", got, cell, bound, T * B * H) ||
        sp_check_download(r, th, got) ||
        sp_check_compare(r, "LSTM hidden state", got, hlast, bound, B * H) ||
        sp_check_call(r, spartan_tensor_fill(tdc, 0.0f), "fill") ||
        sp_check_call(r,
                      sp_lstm_backward_step(r->ctx, tg->mem, tc->mem, tdh->mem, tdc->mem, tdgt->mem,
                                            tdgx->mem, tgr->mem, tm->mem, 1.0f, B, H, T, T - 1),
                      "LSTM backward step") ||
        sp_check_download(r, tdgt, got))
        goto done;
    /* the last step's pre-activation gradients, from dh alone (dc 0) */
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < H; j++) {
            const double *ga = gates + ((T - 1) * B + b) * G;
            const double i = ga[j], f = ga[H + j], g = ga[2 * H + j], o = ga[3 * H + j];
            const double c = cell[((T - 1) * B + b) * H + j], cp = cell[b * H + j];
            const double th_c = tanh(c), d = (double)dh[b * H + j] * mask[b * H + j];
            const double dc = d * o * (1.0 - th_c * th_c);
            const double dp[4] = {dc * g * i * (1.0 - i), dc * cp * f * (1.0 - f),
                                  dc * i * (1.0 - g * g), d * th_c * o * (1.0 - o)};
            for (size_t q = 0; q < 4; q++) want[b * G + q * H + j] = dp[q];
        }
    sp_check_compare(r, "LSTM gate gradients", got, want, bound, B * G);
done:
    sp_check_release(r);
    return r->failed;
}

int sp_check_nn(sp_check *r) {
    return check_bias_relu(r) || check_im2col(r) || check_maxpool(r) || check_avgpool(r) ||
           check_dropout_sgd(r) || check_rows(r) || check_lstm(r) || check_softmax(r);
}

/* The implicit-GEMM convolution (kernels_cl/conv.cl), dense and sparse kernels, plain and with a
 * bias and a ReLU in the store, on window w with out_c outputs, small integers (a fifth of x
 * zero): every sum exact, compared exactly with the im2col product on the host. */
static int check_conv_window(sp_check *r, const spartan_window *w, size_t out_c) {
    const size_t oh = spartan_window_out_h(w), ow = spartan_window_out_w(w);
    const size_t image = w->batch * w->in_h * w->in_w * w->in_c, patch = w->k_h * w->k_w * w->in_c;
    const size_t pixels = w->batch * oh * ow, outs = pixels * out_c;
    sp_check_host h = {0};
    float *x = sp_check_alloc(r, &h, image, sizeof(float));
    float *wt = sp_check_alloc(r, &h, patch * out_c, sizeof(float));
    float *got = sp_check_alloc(r, &h, outs, sizeof(float));
    double *want = sp_check_alloc(r, &h, outs, sizeof(double));
    float *bias = sp_check_alloc(r, &h, out_c, sizeof(float));
    if (r->failed) goto done;
    sp_check_fill_int(r, x, image, 0.2, 3, 0);
    sp_check_fill_int(r, wt, patch * out_c, 0.1, 3, 0);
    spartan_tensor *tx = sp_check_upload(r, x, image, 1);
    spartan_tensor *tw = sp_check_upload(r, wt, patch, out_c);
    spartan_tensor *ty = sp_check_upload(r, NULL, pixels, out_c);
    if (r->failed) goto done;
    for (size_t p = 0; p < pixels; p++) {
        for (size_t e = 0; e < patch; e++) {
            long i = patch_source(w, oh, ow, p, e);
            if (i < 0) continue;
            for (size_t j = 0; j < out_c; j++)
                want[p * out_c + j] += (double)x[i] * wt[e * out_c + j];
        }
    }
    for (int path = SPARTAN_PATH_DENSE; path <= SPARTAN_PATH_SPARSE && !r->failed; path++) {
        const int sparse = path == SPARTAN_PATH_SPARSE;
        if (sp_check_call(r, spartan_conv2d_forward(r->ctx, (spartan_path)path, w, tx, tw, ty),
                          sparse ? "conv sparse" : "conv") ||
            sp_check_download(r, ty, got))
            break;
        sp_check_compare(r,
                         sparse ? "implicit-GEMM convolution, sparse" : "implicit-GEMM convolution",
                         got, want, NULL, outs);
    }
    /* with the bias and the ReLU after it (b: small integers, so y + b stays exact) */
    for (size_t j = 0; j < out_c; j++) bias[j] = (float)((int)(j % 5) - 2);
    for (size_t o = 0; o < outs; o++) want[o] = fmax(want[o] + bias[o % out_c], 0.0);
    spartan_tensor *tb = sp_check_upload(r, bias, 1, out_c);
    for (int path = SPARTAN_PATH_DENSE; path <= SPARTAN_PATH_SPARSE && !r->failed; path++) {
        const char *what = path == SPARTAN_PATH_SPARSE ? "convolution, bias and ReLU, sparse"
                                                       : "convolution, bias and ReLU";
        if (sp_check_call(
                r, spartan_conv2d_forward_relu(r->ctx, (spartan_path)path, w, tx, tw, tb, ty),
                what) ||
            sp_check_download(r, ty, got))
            break;
        sp_check_compare(r, what, got, want, NULL, outs);
    }
done:
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

/* A padded, strided, non-square window on sizes no vector divides, with a partial last vector
 * of outputs; a reduction long enough (k_h k_w in_c of 6,300, or 1,350 on simulators) that the
 * launcher cuts it into slices; and a 5 x 5 window (the sparse stride-1 kernel is compiled apart
 * for 3 x 3, the deep window, and 5 x 5). */
int sp_check_conv(sp_check *r) {
    const spartan_window odd = {2, 9, 11, 5, 3, 2, 2, 1};
    const size_t in_c = r->tall > 65536 ? 700 : 150;
    const spartan_window deep = {1, 4, 3, in_c, 3, 3, 1, 1};
    const spartan_window five = {1, 6, 7, 9, 5, 5, 1, 2};
    return check_conv_window(r, &odd, 19) || check_conv_window(r, &deep, 3) ||
           check_conv_window(r, &five, 7);
}
