/* The known-answer check of the convolution's backward-by-weight (kernels_cl/conv_dw.cl;
 * selftest.h): all five kernels (vectors over input or output channels, dense or sparse, and
 * over a row's pixels, dense) on small-integer data with zeros, every sum exact, compared
 * exactly with the sums of the definition on the host. */
#include <math.h>

#include "ops/conv_dw.h"
#include "ops/selftest_run.h"

/* dweight[(ky k_w + kx) in_c + c, j] = sum over the pixels of x at the shifted pixel times dy:
 * the definition's loops, no patch matrix. */
static void host_dw(double *dw, const float *x, const float *dy, const spartan_window *w, size_t oh,
                    size_t ow, size_t out_c) {
    for (size_t b = 0; b < w->batch; b++)
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++) {
                const float *d = dy + ((b * oh + oy) * ow + ox) * out_c;
                for (size_t ky = 0; ky < w->k_h; ky++) {
                    long iy = (long)(oy * w->stride + ky) - (long)w->pad;
                    if (iy < 0 || iy >= (long)w->in_h) continue;
                    for (size_t kx = 0; kx < w->k_w; kx++) {
                        long ix = (long)(ox * w->stride + kx) - (long)w->pad;
                        if (ix < 0 || ix >= (long)w->in_w) continue;
                        const float *px =
                            x + ((b * w->in_h + (size_t)iy) * w->in_w + (size_t)ix) * w->in_c;
                        for (size_t c = 0; c < w->in_c; c++) {
                            double *row = dw + ((ky * w->k_w + kx) * w->in_c + c) * out_c;
                            for (size_t j = 0; j < out_c; j++) row[j] += (double)px[c] * d[j];
                        }
                    }
                }
            }
}

/* Window w with out_c outputs, half of x and of dy zero: each orientation on both paths. */
static int check_dw_window(sp_check *r, const spartan_window *w, size_t out_c) {
    const size_t oh = spartan_window_out_h(w), ow = spartan_window_out_w(w);
    const size_t image = w->batch * w->in_h * w->in_w * w->in_c, patch = w->k_h * w->k_w * w->in_c;
    const size_t pixels = w->batch * oh * ow, outs = patch * out_c;
    sp_check_host h = {0};
    float *x = sp_check_alloc(r, &h, image, sizeof(float));
    float *dy = sp_check_alloc(r, &h, pixels * out_c, sizeof(float));
    float *got = sp_check_alloc(r, &h, outs, sizeof(float));
    double *want = sp_check_alloc(r, &h, outs, sizeof(double));
    if (r->failed) goto done;
    sp_check_fill_int(r, x, image, 0.5, 3, 0);
    sp_check_fill_int(r, dy, pixels * out_c, 0.5, 3, 0);
    host_dw(want, x, dy, w, oh, ow, out_c);
    spartan_tensor *tx = sp_check_upload(r, x, image, 1);
    spartan_tensor *tdy = sp_check_upload(r, dy, pixels, out_c);
    spartan_tensor *tdw = sp_check_upload(r, NULL, patch, out_c);
    static const sp_dw_orient orients[3] = {SP_DW_CVEC, SP_DW_OCVEC, SP_DW_ROWS};
    static const char *const names[3][2] = {
        {"backward-by-weight, vectors over input channels", "the same, skipping dY's zeros"},
        {"backward-by-weight, vectors over output channels", "the same, skipping x's zeros"},
        {"backward-by-weight, vectors over a row's pixels", "the same, sparse"}};
    for (int o = 0; o < 3 && !r->failed; o++) {
        for (int sparse = 0; sparse < 2 && !r->failed; sparse++) {
            sp_dw_orient orient = orients[o];
            spartan_path path = sparse ? SPARTAN_PATH_SPARSE : SPARTAN_PATH_DENSE;
            if (sp_check_call(r, spartan_tensor_fill(tdw, NAN), "fill") || /* overwritten */
                sp_check_call(r, sp_conv_dw(r->ctx, path, orient, w, tx, tdy, tdw),
                              names[o][sparse]) ||
                sp_check_download(r, tdw, got))
                break;
            sp_check_compare(r, names[o][sparse], got, want, NULL, outs);
        }
    }
done:
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

/* A padded non-square window on sizes no vector or block divides (partial vectors of both
 * channel kinds, partial row blocks); a stride-2 5 x 5 window; one input channel with stride 1
 * and rows of 21 pixels (the row kernel's vector loads, a partial chunk at each row's end); and
 * enough pixels (4,620, or 180 on simulators) that the pixels are cut into several slices. */
int sp_check_conv_dw(sp_check *r) {
    const spartan_window odd = {2, 9, 11, 19, 3, 2, 1, 1};
    const spartan_window strided = {1, 11, 9, 3, 5, 5, 2, 2};
    const spartan_window gray = {2, 6, 21, 1, 5, 5, 1, 2};
    const int sim = r->wide < 1000;
    const spartan_window many = {sim ? 1 : 4, sim ? 12 : 33, sim ? 15 : 35, 5, 3, 3, 1, 1};
    return check_dw_window(r, &odd, 21) || check_dw_window(r, &strided, 6) ||
           check_dw_window(r, &gray, 6) || check_dw_window(r, &many, 17);
}
