/* References for the layer operations (kernels_cl/nn.cl): straightforward loops over NHWC
 * images and rows, in double where the operation rounds. */
#include <math.h>
#include <stdint.h>

#include "ref/ref.h"

size_t ref_window_out(size_t in, size_t k, size_t stride, size_t pad) {
    if (stride == 0 || k == 0 || in + 2 * pad < k) return 0;
    return (in + 2 * pad - k) / stride + 1;
}

/* The image element under window position (ky, kx) of output pixel (b, oy, ox), or -1 when it
 * falls in the padding. */
static long image_index(const spartan_window *w, size_t b, size_t oy, size_t ox, size_t ky,
                        size_t kx) {
    long y = (long)(oy * w->stride + ky) - (long)w->pad;
    long x = (long)(ox * w->stride + kx) - (long)w->pad;
    if (y < 0 || x < 0 || y >= (long)w->in_h || x >= (long)w->in_w) return -1;
    return (((long)b * (long)w->in_h + y) * (long)w->in_w + x) * (long)w->in_c;
}

/* Calls fn for every (output pixel, window position): the row of cols, the column where the
 * window position starts, and the image element (-1 in the padding). */
#define FOR_WINDOWS(w, BODY)                                                                       \
    do {                                                                                           \
        size_t out_h_ = ref_window_out((w)->in_h, (w)->k_h, (w)->stride, (w)->pad);                \
        size_t out_w_ = ref_window_out((w)->in_w, (w)->k_w, (w)->stride, (w)->pad);                \
        for (size_t b = 0; b < (w)->batch; b++)                                                    \
            for (size_t oy = 0; oy < out_h_; oy++)                                                 \
                for (size_t ox = 0; ox < out_w_; ox++)                                             \
                    for (size_t ky = 0; ky < (w)->k_h; ky++)                                       \
                        for (size_t kx = 0; kx < (w)->k_w; kx++) {                                 \
                            size_t pix = (b * out_h_ + oy) * out_w_ + ox;                          \
                            size_t kpos = ky * (w)->k_w + kx;                                      \
                            long src = image_index((w), b, oy, ox, ky, kx);                        \
                            BODY                                                                   \
                        }                                                                          \
    } while (0)

void ref_im2col(float *cols, const float *x, const spartan_window *w) {
    size_t patch = w->k_h * w->k_w * w->in_c;
    FOR_WINDOWS(w, {
        for (size_t c = 0; c < w->in_c; c++)
            cols[pix * patch + kpos * w->in_c + c] = src < 0 ? 0.0f : x[(size_t)src + c];
    });
}

void ref_col2im(double *dx, const float *cols, const spartan_window *w) {
    size_t patch = w->k_h * w->k_w * w->in_c;
    for (size_t i = 0; i < w->batch * w->in_h * w->in_w * w->in_c; i++) dx[i] = 0.0;
    FOR_WINDOWS(w, {
        if (src >= 0)
            for (size_t c = 0; c < w->in_c; c++)
                dx[(size_t)src + c] += cols[pix * patch + kpos * w->in_c + c];
    });
}

void ref_bias_add(double *out, const float *y, const float *b, size_t rows, size_t n) {
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++) out[r * n + j] = (double)y[r * n + j] + (double)b[j];
}

void ref_bias_grad(double *db, const float *dy, size_t rows, size_t n) {
    for (size_t j = 0; j < n; j++) db[j] = 0.0;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++) db[j] += dy[r * n + j];
}

void ref_relu_backward(float *dz, const float *y, const float *dy, size_t n) {
    for (size_t i = 0; i < n; i++) dz[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void ref_maxpool_forward(float *y, float *arg, const float *x, const spartan_window *w) {
    FOR_WINDOWS(w, {
        for (size_t c = 0; c < w->in_c; c++) {
            float v = x[(size_t)src + c];
            size_t o = pix * w->in_c + c;
            int first = kpos == 0;
            /* replace on a larger value, or on the first NaN */
            if (first || v > y[o] || (isnan(v) && !isnan(y[o]))) {
                y[o] = v;
                arg[o] = (float)kpos;
            }
        }
    });
}

void ref_maxpool_backward(double *dx, const float *dy, const float *arg, const spartan_window *w) {
    for (size_t i = 0; i < w->batch * w->in_h * w->in_w * w->in_c; i++) dx[i] = 0.0;
    FOR_WINDOWS(w, {
        for (size_t c = 0; c < w->in_c; c++) {
            size_t o = pix * w->in_c + c;
            if (arg[o] == (float)kpos) dx[(size_t)src + c] += dy[o];
        }
    });
}

void ref_avgpool_forward(double *y, const float *x, const spartan_window *w) {
    size_t outs = ref_window_out(w->in_h, w->k_h, w->stride, w->pad) *
                  ref_window_out(w->in_w, w->k_w, w->stride, w->pad) * w->batch * w->in_c;
    double area = (double)w->k_h * (double)w->k_w;
    for (size_t o = 0; o < outs; o++) y[o] = 0.0;
    FOR_WINDOWS(w, {
        (void)kpos;
        if (src >= 0)
            for (size_t c = 0; c < w->in_c; c++) y[pix * w->in_c + c] += x[(size_t)src + c];
    });
    for (size_t o = 0; o < outs; o++) y[o] /= area;
}

void ref_avgpool_backward(double *dx, const float *dy, const spartan_window *w) {
    double area = (double)w->k_h * (double)w->k_w;
    for (size_t i = 0; i < w->batch * w->in_h * w->in_w * w->in_c; i++) dx[i] = 0.0;
    FOR_WINDOWS(w, {
        (void)kpos;
        if (src >= 0)
            for (size_t c = 0; c < w->in_c; c++)
                dx[(size_t)src + c] += (double)dy[pix * w->in_c + c] / area;
    });
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int ref_dropout_dropped(unsigned long long seed, unsigned long long counter, size_t i, float p) {
    uint64_t key = mix64((uint64_t)seed ^ mix64((uint64_t)counter));
    uint64_t h = mix64(key + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull);
    double u = (double)(h >> 40) / 16777216.0;
    return u < (double)p;
}

void ref_dropout(double *y, const float *x, size_t n, float p, unsigned long long seed,
                 unsigned long long counter) {
    for (size_t i = 0; i < n; i++)
        y[i] = ref_dropout_dropped(seed, counter, i, p) ? 0.0 : (double)x[i] / (1.0 - (double)p);
}

void ref_softmax_xent(double *loss, double *correct, double *dlogits, const float *logits,
                      const float *labels, size_t rows, size_t classes, double scale) {
    for (size_t r = 0; r < rows; r++) {
        const float *x = logits + r * classes;
        size_t am = 0;
        for (size_t j = 1; j < classes; j++)
            if (x[j] > x[am]) am = j;
        double m = x[am], sum = 0.0;
        for (size_t j = 0; j < classes; j++) sum += exp((double)x[j] - m);
        double lf = labels[r];
        int valid = lf >= 0.0 && lf < (double)classes && lf == floor(lf);
        size_t label = valid ? (size_t)lf : classes;
        loss[r] = valid ? m + log(sum) - (double)x[label] : NAN;
        correct[r] = valid && am == label ? 1.0 : 0.0;
        if (dlogits)
            for (size_t j = 0; j < classes; j++)
                dlogits[r * classes + j] =
                    scale * (exp((double)x[j] - m) / sum - (j == label ? 1.0 : 0.0));
    }
}

void ref_sgd_step(double *w, double *v, const float *g, size_t n, double lr, double momentum,
                  double wd) {
    for (size_t i = 0; i < n; i++) {
        v[i] = momentum * v[i] + ((double)g[i] + wd * w[i]);
        w[i] -= lr * v[i];
    }
}

void ref_conv2d_forward(double *y, const float *x, const float *wt, const spartan_window *w,
                        size_t out_c) {
    size_t oh = ref_window_out(w->in_h, w->k_h, w->stride, w->pad);
    size_t ow = ref_window_out(w->in_w, w->k_w, w->stride, w->pad);
    for (size_t b = 0; b < w->batch; b++)
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++) {
                double *out = y + ((b * oh + oy) * ow + ox) * out_c;
                for (size_t j = 0; j < out_c; j++) out[j] = 0.0;
                for (size_t ky = 0; ky < w->k_h; ky++) {
                    long iy = (long)(oy * w->stride + ky) - (long)w->pad;
                    if (iy < 0 || iy >= (long)w->in_h) continue;
                    for (size_t kx = 0; kx < w->k_w; kx++) {
                        long ix = (long)(ox * w->stride + kx) - (long)w->pad;
                        if (ix < 0 || ix >= (long)w->in_w) continue;
                        const float *px =
                            x + ((b * w->in_h + (size_t)iy) * w->in_w + (size_t)ix) * w->in_c;
                        for (size_t c = 0; c < w->in_c; c++) {
                            const float *wr = wt + ((ky * w->k_w + kx) * w->in_c + c) * out_c;
                            for (size_t j = 0; j < out_c; j++) out[j] += (double)px[c] * wr[j];
                        }
                    }
                }
            }
}

void ref_conv2d_backward_input(double *dx, const float *dy, const float *wt,
                               const spartan_window *w, size_t out_c) {
    size_t oh = ref_window_out(w->in_h, w->k_h, w->stride, w->pad);
    size_t ow = ref_window_out(w->in_w, w->k_w, w->stride, w->pad);
    for (size_t i = 0; i < w->batch * w->in_h * w->in_w * w->in_c; i++) dx[i] = 0.0;
    for (size_t b = 0; b < w->batch; b++)
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++) {
                const float *g = dy + ((b * oh + oy) * ow + ox) * out_c;
                for (size_t ky = 0; ky < w->k_h; ky++) {
                    long iy = (long)(oy * w->stride + ky) - (long)w->pad;
                    if (iy < 0 || iy >= (long)w->in_h) continue;
                    for (size_t kx = 0; kx < w->k_w; kx++) {
                        long ix = (long)(ox * w->stride + kx) - (long)w->pad;
                        if (ix < 0 || ix >= (long)w->in_w) continue;
                        double *px =
                            dx + ((b * w->in_h + (size_t)iy) * w->in_w + (size_t)ix) * w->in_c;
                        for (size_t c = 0; c < w->in_c; c++) {
                            const float *wr = wt + ((ky * w->k_w + kx) * w->in_c + c) * out_c;
                            for (size_t j = 0; j < out_c; j++) px[c] += (double)g[j] * wr[j];
                        }
                    }
                }
            }
}

void ref_conv2d_backward_weight(double *dw, const float *x, const float *dy,
                                const spartan_window *w, size_t out_c) {
    size_t oh = ref_window_out(w->in_h, w->k_h, w->stride, w->pad);
    size_t ow = ref_window_out(w->in_w, w->k_w, w->stride, w->pad);
    for (size_t ky = 0; ky < w->k_h; ky++)
        for (size_t kx = 0; kx < w->k_w; kx++)
            for (size_t c = 0; c < w->in_c; c++)
                for (size_t j = 0; j < out_c; j++) {
                    double sum = 0.0;
                    for (size_t b = 0; b < w->batch; b++)
                        for (size_t oy = 0; oy < oh; oy++) {
                            long iy = (long)(oy * w->stride + ky) - (long)w->pad;
                            if (iy < 0 || iy >= (long)w->in_h) continue;
                            for (size_t ox = 0; ox < ow; ox++) {
                                long ix = (long)(ox * w->stride + kx) - (long)w->pad;
                                if (ix < 0 || ix >= (long)w->in_w) continue;
                                size_t pix = (b * w->in_h + (size_t)iy) * w->in_w + (size_t)ix;
                                size_t p = (b * oh + oy) * ow + ox;
                                sum += (double)x[pix * w->in_c + c] * dy[p * out_c + j];
                            }
                        }
                    dw[((ky * w->k_w + kx) * w->in_c + c) * out_c + j] = sum;
                }
}
