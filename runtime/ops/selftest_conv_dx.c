/* The known-answer check of the convolution's backward-by-input (kernels_cl/conv_dx.cl;
 * selftest.h): both kernels, dense and sparse, plain and through a ReLU's mask, on small integers
 * with zeros in dy, every sum exact, against the host's scatter form (each dy element added into
 * the dx elements its windows cover: the other way round from the kernels' gather). */
#include <math.h>

#include "ops/selftest_run.h"

/* Window w with out_c outputs, on both paths: dx starts as NaN (the op overwrites it). */
static int check_window(sp_check *r, const spartan_window *w, size_t out_c) {
    const size_t oh = spartan_window_out_h(w), ow = spartan_window_out_w(w);
    const size_t image = w->batch * w->in_h * w->in_w * w->in_c, patch = w->k_h * w->k_w * w->in_c;
    const size_t pixels = w->batch * oh * ow;
    sp_check_host h = {0};
    float *dy = sp_check_alloc(r, &h, pixels * out_c, sizeof(float));
    float *wt = sp_check_alloc(r, &h, patch * out_c, sizeof(float));
    float *got = sp_check_alloc(r, &h, image, sizeof(float));
    double *want = sp_check_alloc(r, &h, image, sizeof(double));
    float *xm = sp_check_alloc(r, &h, image, sizeof(float));
    if (r->failed) goto done;
    sp_check_fill_int(r, dy, pixels * out_c, 0.5, 3, 0);
    sp_check_fill_int(r, wt, patch * out_c, 0.1, 3, 0);
    for (size_t p = 0; p < pixels; p++) {
        size_t b = p / (oh * ow), oy = p / ow % oh, ox = p % ow;
        for (size_t ky = 0; ky < w->k_h; ky++) {
            long iy = (long)(oy * w->stride + ky) - (long)w->pad;
            for (size_t kx = 0; kx < w->k_w; kx++) {
                long ix = (long)(ox * w->stride + kx) - (long)w->pad;
                if (iy < 0 || iy >= (long)w->in_h || ix < 0 || ix >= (long)w->in_w) continue;
                double *d = want + ((b * w->in_h + (size_t)iy) * w->in_w + (size_t)ix) * w->in_c;
                for (size_t c = 0; c < w->in_c; c++)
                    for (size_t j = 0; j < out_c; j++)
                        d[c] += (double)dy[p * out_c + j] *
                                wt[((ky * w->k_w + kx) * w->in_c + c) * out_c + j];
            }
        }
    }
    for (size_t i = 0; i < image; i++) got[i] = NAN;
    spartan_tensor *tdy = sp_check_upload(r, dy, pixels, out_c);
    spartan_tensor *tw = sp_check_upload(r, wt, patch, out_c);
    spartan_tensor *tdx = sp_check_upload(r, got, image, 1);
    static const char *const what[2] = {"convolution backward-by-input, dense",
                                        "convolution backward-by-input, sparse"};
    for (int path = 0; path < 2 && !r->failed; path++) {
        if (sp_check_call(
                r, spartan_conv2d_backward_input(r->ctx, (spartan_path)path, w, tdy, tw, tdx),
                what[path]) ||
            sp_check_download(r, tdx, got) ||
            sp_check_compare(r, what[path], got, want, NULL, image))
            break;
    }
    /* through a ReLU: dx kept where x > 0 (x: zeros and both signs) */
    sp_check_fill_int(r, xm, image, 0.3, 2, 0);
    for (size_t i = 0; i < image; i++)
        if (!(xm[i] > 0.0f)) want[i] = 0.0;
    spartan_tensor *tx = sp_check_upload(r, xm, image, 1);
    static const char *const masked[2] = {"convolution backward-by-input through a ReLU, dense",
                                          "convolution backward-by-input through a ReLU, sparse"};
    for (int path = 0; path < 2 && !r->failed; path++) {
        if (sp_check_call(
                r,
                spartan_conv2d_backward_input_relu(r->ctx, (spartan_path)path, w, tdy, tw, tx, tdx),
                masked[path]) ||
            sp_check_download(r, tdx, got) ||
            sp_check_compare(r, masked[path], got, want, NULL, image))
            break;
    }
done:
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

/* A padded non-square window on sizes no vector divides; a strided one over a full and a partial
 * vector of channels, with pixels no window covers (stride 3 past a 2-wide window); and a
 * reduction long enough (k_h k_w out_c of 6,300, or 1,350 on simulators) that the launcher cuts
 * it into slices; and a 5 x 5 window (the sparse stride-1 kernel, conv.cl, is compiled apart for
 * 3 x 3 and 5 x 5). */
int sp_check_conv_dx(sp_check *r) {
    const spartan_window odd = {2, 9, 11, 5, 3, 2, 1, 1};
    const spartan_window strided = {2, 9, 11, 37, 3, 3, 2, 1};
    const spartan_window gaps = {1, 7, 8, 3, 2, 2, 3, 0};
    const size_t out_c = r->tall > 65536 ? 700 : 150;
    const spartan_window deep = {1, 4, 3, 3, 3, 3, 1, 1};
    const spartan_window five = {1, 6, 7, 7, 5, 5, 1, 1};
    return check_window(r, &odd, 19) || check_window(r, &strided, 5) || check_window(r, &gaps, 4) ||
           check_window(r, &deep, out_c) || check_window(r, &five, 9);
}
