/* Tests of the image and layer operations (runtime/ops/nn_ops.c, kernels_cl/nn.cl) against
 * tests/ref: window output sizes; im2col exactly and col2im within the tolerance of its sums, and
 * the two as adjoints; max-pooling exactly (ties, NaNs, overlapping windows, uncovered edges);
 * average pooling within its tolerance, as the adjoint of its backward, whose gradient also
 * matches central differences, with padding and as global pooling; bias add and gradient; ReLU
 * backward. Shapes: batch 1 and 0, odd and prime sizes, k = 1, stride 2 and 3, pad 1 and 2, windows
 * as large as the image, channel counts that are not multiples of VEC; then the scalar (VEC=1) and
 * wide (VEC=16) kernels; bad arguments and empty tensors. The training-step operations (softmax +
 * cross-entropy, SGD, dropout) are in test_nn_loss.c. SPARTAN_TEST_SMALL=1 (Oclgrind): tiny shapes
 * only. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops_fixture.h"
#include "ref/ref.h"
#include "spartan/spartan.h"

/* ---- window geometry ------------------------------------------------------------------------ */

typedef struct {
    size_t batch, in_h, in_w, in_c, k_h, k_w, stride, pad;
} win;

static spartan_window to_window(win s) {
    spartan_window w = {s.batch, s.in_h, s.in_w, s.in_c, s.k_h, s.k_w, s.stride, s.pad};
    return w;
}

static void describe(char *buf, size_t len, const char *op, const spartan_window *w) {
    snprintf(buf, len, "%s b=%zu %zux%zux%zu k=%zux%zu s=%zu p=%zu", op, w->batch, w->in_h, w->in_w,
             w->in_c, w->k_h, w->k_w, w->stride, w->pad);
}

/* Convolution windows; the first N_CONV_TINY are Oclgrind-sized. */
static const win conv_windows[] = {
    {1, 5, 5, 1, 3, 3, 1, 0},    /* the plain case */
    {2, 7, 6, 3, 3, 3, 1, 1},    /* pad 1, odd sizes */
    {3, 9, 11, 5, 3, 2, 2, 1},   /* stride 2, a non-square window */
    {1, 4, 4, 2, 4, 4, 1, 0},    /* the window is the image */
    {2, 5, 7, 17, 1, 1, 1, 0},   /* k = 1, channels past a vector */
    {1, 6, 5, 4, 5, 5, 1, 2},    /* pad 2 */
    {0, 5, 5, 3, 3, 3, 1, 1},    /* no images */
    {2, 13, 11, 7, 5, 3, 3, 2},  /* primes, stride 3 */
    {1, 3, 3, 1, 5, 5, 1, 2},    /* window as large as the padded image */
    {4, 28, 28, 1, 5, 5, 1, 2},  /* MNIST's first convolution */
    {8, 14, 14, 32, 3, 3, 2, 1}, /* a deeper layer, stride 2 */
    {2, 31, 29, 19, 3, 3, 1, 1}, /* primes everywhere */
    {3, 17, 17, 64, 4, 4, 3, 2}, /* wide channels, stride not dividing */
};
#define N_CONV      (sizeof conv_windows / sizeof conv_windows[0])
#define N_CONV_TINY 9

/* im2col exactly, col2im within the tolerance of its sums, and <im2col(x), c> = <x, col2im(c)>. */
static void check_conv(const spartan_window *w, uint64_t seed) {
    char what[160];
    describe(what, sizeof what, "im2col", w);
    size_t out_h = ref_window_out(w->in_h, w->k_h, w->stride, w->pad);
    size_t out_w = ref_window_out(w->in_w, w->k_w, w->stride, w->pad);
    ck_assert_uint_eq(spartan_window_out_h(w), out_h);
    ck_assert_uint_eq(spartan_window_out_w(w), out_w);
    size_t pix = w->batch * w->in_h * w->in_w, image = pix * w->in_c;
    size_t rows = w->batch * out_h * out_w, patch = w->k_h * w->k_w * w->in_c;
    float *x = fx_random_floats(image, -2.0f, 2.0f, seed);
    float *c = fx_random_floats(rows * patch, -1.0f, 1.0f, seed + 1);
    float *want = fx_floats(rows * patch);
    ref_im2col(want, x, w);

    spartan_tensor *tx = fx_upload(x, pix, w->in_c), *tcols = fx_nan_matrix(rows, patch);
    ok(spartan_im2col(ctx, w, tx, tcols));
    float *got = fx_read_all(tcols);
    fx_assert_same(got, want, rows * patch, what);

    /* col2im of other values c */
    describe(what, sizeof what, "col2im", w);
    ok(spartan_tensor_write(tcols, c, rows * patch));
    spartan_tensor *tdx = fx_nan_matrix(pix, w->in_c);
    ok(spartan_col2im(ctx, w, tcols, tdx));
    float *dx = fx_read_all(tdx);
    double *wdx = fx_doubles(image);
    ref_col2im(wdx, c, w);
    /* each element sums at most k_h * k_w entries of c */
    double tol = th_tol(w->k_h * w->k_w, fx_max_abs(c, rows * patch));
    fx_assert_close(dx, wdx, image, tol, what);

    /* adjointness, both sides in double from the device's results */
    double lhs = 0.0, rhs = 0.0, xs = 0.0;
    for (size_t i = 0; i < rows * patch; i++) lhs += (double)got[i] * c[i];
    for (size_t i = 0; i < image; i++) {
        rhs += (double)x[i] * dx[i];
        xs += fabs((double)x[i]);
    }
    ck_assert_msg(fabs(lhs - rhs) <= tol * xs, "%s: <im2col(x), c> = %.12g, <x, col2im(c)> = %.12g",
                  what, lhs, rhs);

    fx_release();
}

/* Pooling windows (pad 0); the first N_POOL_TINY are Oclgrind-sized. */
static const win pool_windows[] = {
    {1, 4, 4, 1, 2, 2, 2, 0},     /* the plain case */
    {2, 5, 7, 3, 2, 2, 2, 0},     /* the last row and column in no window */
    {1, 5, 5, 5, 3, 3, 1, 0},     /* overlapping windows */
    {3, 6, 6, 17, 3, 3, 2, 0},    /* overlapping, stride 2, channels past a vector */
    {1, 3, 3, 2, 3, 3, 1, 0},     /* the window is the image */
    {0, 4, 4, 2, 2, 2, 2, 0},     /* no images */
    {2, 7, 5, 3, 1, 1, 1, 0},     /* k = 1: a copy */
    {2, 9, 8, 6, 3, 2, 3, 0},     /* stride larger than the window */
    {16, 28, 28, 16, 2, 2, 2, 0}, /* MNIST-sized */
    {4, 13, 13, 37, 3, 3, 2, 0},  /* primes, overlap */
};
#define N_POOL      (sizeof pool_windows / sizeof pool_windows[0])
#define N_POOL_TINY 8

/* Values on a coarse grid so that windows hold ties; with_nan puts NaNs in a few places. */
static float *pool_input(size_t n, uint64_t seed, int with_nan) {
    float *x = fx_random_floats(n, -3.0f, 3.0f, seed);
    for (size_t i = 0; i < n; i++) x[i] = floorf(x[i]);
    if (with_nan)
        for (size_t i = 3; i < n; i += 29) x[i] = NAN;
    return x;
}

/* Forward exactly (values and positions), backward within the tolerance of its sums (exactly
 * when windows do not overlap). */
static void check_pool(const spartan_window *w, uint64_t seed, int with_nan) {
    char what[160];
    describe(what, sizeof what, with_nan ? "maxpool with NaNs" : "maxpool", w);
    size_t out_h = ref_window_out(w->in_h, w->k_h, w->stride, 0);
    size_t out_w = ref_window_out(w->in_w, w->k_w, w->stride, 0);
    size_t pix = w->batch * w->in_h * w->in_w, image = pix * w->in_c;
    size_t opix = w->batch * out_h * out_w, outs = opix * w->in_c;
    float *x = pool_input(image, seed, with_nan);
    float *dy = fx_random_floats(outs, -1.0f, 1.0f, seed + 1);
    float *wy = fx_floats(outs), *warg = fx_floats(outs);
    ref_maxpool_forward(wy, warg, x, w);

    spartan_tensor *tx = fx_upload(x, pix, w->in_c);
    spartan_tensor *ty = fx_nan_matrix(opix, w->in_c), *targ = fx_nan_matrix(opix, w->in_c);
    ok(spartan_maxpool_forward(ctx, w, tx, ty, targ));
    float *y = fx_read_all(ty), *arg = fx_read_all(targ);
    fx_assert_same(y, wy, outs, what);
    fx_assert_same(arg, warg, outs, what);

    spartan_tensor *tdy = fx_upload(dy, opix, w->in_c), *tdx = fx_nan_matrix(pix, w->in_c);
    ok(spartan_maxpool_backward(ctx, w, tdy, targ, tdx));
    float *dx = fx_read_all(tdx);
    double *wdx = fx_doubles(image);
    ref_maxpool_backward(wdx, dy, warg, w);
    int overlap = w->stride < w->k_h || w->stride < w->k_w;
    /* an element is the maximum of at most k_h * k_w windows */
    double tol = overlap ? th_tol(w->k_h * w->k_w, fx_max_abs(dy, outs)) : 0.0;
    fx_assert_close(dx, wdx, image, tol, what);

    /* through a ReLU before the pool: an element's gradient passes where x > 0 (the ReLU's
     * output there), whether the kernel tiles the blocks or gathers over windows */
    describe(what, sizeof what, with_nan ? "maxpool+relu with NaNs" : "maxpool+relu", w);
    spartan_tensor *tdr = fx_nan_matrix(pix, w->in_c);
    ok(spartan_maxpool_relu_backward(ctx, w, tdy, targ, ty, tdr));
    float *dr = fx_read_all(tdr);
    for (size_t i = 0; i < image; i++)
        if (!(x[i] > 0.0f)) wdx[i] = 0.0;
    fx_assert_close(dr, wdx, image, tol, what);

    /* the ReLU (and a bias before it) inside the pool's forward: exactly the pool of
     * max(x + b, 0) as the monitor's ReLU computes it in float, values and positions */
    float *bias = fx_random_floats(w->in_c, -2.0f, 2.0f, seed + 2), *xr = fx_floats(image);
    for (size_t c = 0; c < w->in_c; c++) bias[c] = floorf(bias[c]);
    spartan_tensor *tb = fx_upload(bias, 1, w->in_c);
    for (int biased = 0; biased <= 1; biased++) {
        describe(what, sizeof what, biased ? "bias+relu+maxpool" : "relu+maxpool", w);
        for (size_t i = 0; i < image; i++) {
            float v = biased ? x[i] + bias[i % w->in_c] : x[i];
            xr[i] = v < 0.0f ? 0.0f : v; /* a NaN stays */
        }
        ref_maxpool_forward(wy, warg, xr, w);
        spartan_tensor *tyr = fx_nan_matrix(opix, w->in_c), *tar = fx_nan_matrix(opix, w->in_c);
        ok(spartan_relu_maxpool_forward(ctx, w, tx, biased ? tb : NULL, tyr, tar));
        fx_assert_same(fx_read_all(tyr), wy, outs, what);
        fx_assert_same(fx_read_all(tar), warg, outs, what);
    }

    fx_release();
}

/* Average-pooling windows (padding allowed); the first N_AVG_TINY are Oclgrind-sized. */
static const win avg_windows[] = {
    {1, 1, 1, 1, 1, 1, 1, 0},      /* a 1 x 1 image */
    {1, 4, 4, 1, 2, 2, 2, 0},      /* the plain case */
    {2, 5, 7, 3, 2, 2, 2, 0},      /* the last row and column in no window */
    {1, 5, 5, 5, 3, 3, 1, 1},      /* overlapping, pad 1 */
    {3, 6, 6, 17, 3, 3, 2, 1},     /* overlapping, stride 2, pad 1, channels past a vector */
    {2, 3, 3, 1, 3, 3, 1, 0},      /* global: the window is the image */
    {3, 7, 7, 5, 7, 7, 3, 0},      /* global with stride 3: no second window fits */
    {0, 4, 4, 2, 2, 2, 2, 0},      /* no images */
    {2, 7, 5, 3, 1, 1, 1, 0},      /* k = 1: a copy */
    {1, 3, 3, 2, 5, 5, 1, 2},      /* the window as large as the padded image */
    {3, 2, 3, 5, 2, 2, 1, 2},      /* pad >= k: windows wholly in the padding give 0 */
    {2, 9, 8, 6, 3, 2, 3, 1},      /* stride larger than the window, pad */
    {1, 11, 13, 1, 5, 3, 2, 2},    /* primes, a non-square window */
    {16, 28, 28, 16, 2, 2, 2, 0},  /* MNIST-sized */
    {3, 13, 11, 37, 3, 3, 2, 1},   /* primes, overlap, pad */
    {2, 31, 29, 19, 5, 3, 2, 2},   /* primes everywhere */
    {4, 7, 7, 64, 7, 7, 1, 0},     /* global 7 x 7 (a ResNet's head) */
    {8, 14, 14, 33, 14, 14, 1, 0}, /* global 14 x 14 */
};
#define N_AVG      (sizeof avg_windows / sizeof avg_windows[0])
#define N_AVG_TINY 13

/* Tolerance of an average pooling result, n = k_h*k_w: a float sum of m <= n terms bounded by
 * scale (rounding error <= (m - 1) u m scale, u = FLT_EPSILON / 2), divided by n (<= 2.5 ulp of a
 * result <= scale in OpenCL C): at most ((n - 1) / 2 + 2.5) FLT_EPSILON scale, within
 * th_tol(n, scale). The backward sums the dy of at most n windows the same way. */
static double avg_tol(const spartan_window *w, double scale) {
    return th_tol(w->k_h * w->k_w, scale);
}

/* Forward and backward against the reference within avg_tol, and the two as adjoints:
 * <dy, avgpool(x)> = <avgpool_backward(dy), x>, both sides in double from the device's results. */
static void check_avgpool(const spartan_window *w, uint64_t seed) {
    char what[160];
    describe(what, sizeof what, "avgpool", w);
    size_t out_h = ref_window_out(w->in_h, w->k_h, w->stride, w->pad);
    size_t out_w = ref_window_out(w->in_w, w->k_w, w->stride, w->pad);
    ck_assert_uint_eq(spartan_window_out_h(w), out_h);
    ck_assert_uint_eq(spartan_window_out_w(w), out_w);
    size_t pix = w->batch * w->in_h * w->in_w, image = pix * w->in_c;
    size_t opix = w->batch * out_h * out_w, outs = opix * w->in_c;
    float *x = fx_random_floats(image, -2.0f, 2.0f, seed);
    float *dy = fx_random_floats(outs, -1.0f, 1.0f, seed + 1);
    double *wy = fx_doubles(outs), *wdx = fx_doubles(image);
    ref_avgpool_forward(wy, x, w);
    ref_avgpool_backward(wdx, dy, w);

    spartan_tensor *tx = fx_upload(x, pix, w->in_c), *ty = fx_nan_matrix(opix, w->in_c);
    ok(spartan_avgpool_forward(ctx, w, tx, ty));
    float *y = fx_read_all(ty);
    double tol_y = avg_tol(w, fx_max_abs(x, image));
    fx_assert_close(y, wy, outs, tol_y, what);

    describe(what, sizeof what, "avgpool_backward", w);
    spartan_tensor *tdy = fx_upload(dy, opix, w->in_c), *tdx = fx_nan_matrix(pix, w->in_c);
    ok(spartan_avgpool_backward(ctx, w, tdy, tdx));
    float *dx = fx_read_all(tdx);
    double tol_dx = avg_tol(w, fx_max_abs(dy, outs));
    fx_assert_close(dx, wdx, image, tol_dx, what);

    /* each side is off from the exact <dy, A x> by at most its elements' tolerance times the
     * other factor's sum of magnitudes (the double sums add far less) */
    double lhs = 0.0, rhs = 0.0, dys = 0.0, xs = 0.0;
    for (size_t o = 0; o < outs; o++) {
        lhs += (double)dy[o] * y[o];
        dys += fabs((double)dy[o]);
    }
    for (size_t i = 0; i < image; i++) {
        rhs += (double)x[i] * dx[i];
        xs += fabs((double)x[i]);
    }
    ck_assert_msg(fabs(lhs - rhs) <= tol_y * dys + tol_dx * xs,
                  "%s: <dy, avgpool(x)> = %.12g, <avgpool_backward(dy), x> = %.12g", what, lhs,
                  rhs);
    fx_release();
}

/* The gradient of f(x) = <dy, avgpool(x)> by central differences of the device's forward, in
 * double on the host, against the device's backward: for each element i,
 * (f(x + h e_i) - f(x - h e_i)) / (x_i+ - x_i-). f is linear, so the difference has no
 * truncation error: only the rounding of the forward's outputs counts, and only that of the at
 * most k_h*k_w outputs whose window holds i (the others are the same bits in both runs). */
static void check_avgpool_gradient(const spartan_window *w, uint64_t seed) {
    char what[160];
    describe(what, sizeof what, "avgpool finite differences", w);
    size_t out_h = ref_window_out(w->in_h, w->k_h, w->stride, w->pad);
    size_t out_w = ref_window_out(w->in_w, w->k_w, w->stride, w->pad);
    size_t pix = w->batch * w->in_h * w->in_w, image = pix * w->in_c;
    size_t opix = w->batch * out_h * out_w, outs = opix * w->in_c;
    const float h = 0.5f;
    float *x = fx_random_floats(image, -1.0f, 1.0f, seed);
    float *dy = fx_random_floats(outs, -1.0f, 1.0f, seed + 1);
    float *xh = fx_floats(image), *yp = fx_floats(outs), *ym = fx_floats(outs);
    spartan_tensor *tx = fx_upload(x, pix, w->in_c), *ty = fx_nan_matrix(opix, w->in_c);
    spartan_tensor *tdy = fx_upload(dy, opix, w->in_c), *tdx = fx_nan_matrix(pix, w->in_c);
    ok(spartan_avgpool_backward(ctx, w, tdy, tdx));
    float *dx = fx_read_all(tdx);
    size_t area = w->k_h * w->k_w;
    /* each output within avg_tol of max|x +- h| in each run, weighted by |dy| in the difference;
     * the backward within avg_tol of max|dy| */
    double tol_y = avg_tol(w, fx_max_abs(x, image) + h);
    double tol_diff = (double)area * fx_max_abs(dy, outs) * 2.0 * tol_y;
    double tol_dx = avg_tol(w, fx_max_abs(dy, outs));
    memcpy(xh, x, image * sizeof *x);
    for (size_t i = 0; i < image; i++) {
        xh[i] = x[i] + h;
        double step = (double)xh[i];
        ok(spartan_tensor_write(tx, xh, image));
        ok(spartan_avgpool_forward(ctx, w, tx, ty));
        ok(spartan_tensor_read(ty, yp, outs));
        xh[i] = x[i] - h;
        step -= (double)xh[i];
        ok(spartan_tensor_write(tx, xh, image));
        ok(spartan_avgpool_forward(ctx, w, tx, ty));
        ok(spartan_tensor_read(ty, ym, outs));
        xh[i] = x[i];
        double diff = 0.0;
        for (size_t o = 0; o < outs; o++) diff += (double)dy[o] * ((double)yp[o] - (double)ym[o]);
        double fd = diff / step;
        ck_assert_msg(fabs(fd - dx[i]) <= tol_diff / step + tol_dx,
                      "%s: [%zu] backward %.9g, differences %.9g", what, i, (double)dx[i], fd);
    }
    fx_release();
}

/* ---- matrix shapes -------------------------------------------------------------------------- */

typedef struct {
    size_t rows, cols;
} shape;

/* The first N_ROWS_TINY are Oclgrind-sized; 130 rows is past one work-group there. */
static const shape row_shapes[] = {{1, 1},  {1, 10}, {7, 3},      {37, 17},   {130, 9},   {3, 0},
                                   {0, 10}, {64, 5}, {1000, 513}, {2049, 64}, {50000, 10}};
#define N_ROWS      (sizeof row_shapes / sizeof row_shapes[0])
#define N_ROWS_TINY 8

static void check_bias(size_t rows, size_t n, uint64_t seed) {
    char what[96];
    snprintf(what, sizeof what, "bias %zux%zu", rows, n);
    float *y = fx_random_floats(rows * n, -2.0f, 2.0f, seed),
          *b = fx_random_floats(n, -1.0f, 1.0f, seed + 1);
    spartan_tensor *ty = fx_upload(y, rows, n), *tb = fx_upload(b, 1, n);
    ok(spartan_bias_add(ctx, ty, tb));
    float *got = fx_read_all(ty);
    double *want = fx_doubles(rows * n);
    ref_bias_add(want, y, b, rows, n);
    /* one rounded addition */
    fx_assert_close(got, want, rows * n, th_tol(1, fx_max_abs(y, rows * n) + fx_max_abs(b, n)),
                    what);

    spartan_tensor *tdb = fx_nan_matrix(1, n);
    ok(spartan_bias_grad(ctx, ty, tdb)); /* the gradient of y + b's values: any data does */
    float *db = fx_read_all(tdb);
    double *wdb = fx_doubles(n);
    ref_bias_grad(wdb, got, rows, n);
    fx_assert_close(db, wdb, n, th_tol(rows, fx_max_abs(got, rows * n)), what);

    fx_release();
}

static void check_relu_backward(size_t rows, size_t n, uint64_t seed) {
    char what[96];
    snprintf(what, sizeof what, "relu_backward %zux%zu", rows, n);
    size_t len = rows * n;
    float *y = fx_random_floats(len, -1.0f, 1.0f, seed),
          *dy = fx_random_floats(len, -1.0f, 1.0f, seed + 1);
    for (size_t i = 0; i < len; i += 5) y[i] = 0.0f; /* ReLU outputs: zeros are common */
    if (len > 7) y[7] = NAN;
    float *want = fx_floats(len);
    ref_relu_backward(want, y, dy, len);
    spartan_tensor *ty = fx_upload(y, rows, n), *tdy = fx_upload(dy, rows, n);
    spartan_tensor *tdz = fx_nan_matrix(rows, n);
    ok(spartan_relu_backward(ctx, ty, tdy, tdz));
    float *got = fx_read_all(tdz);
    fx_assert_same(got, want, len, what);
    ok(spartan_relu_backward(ctx, ty, tdy, tdy)); /* in place */
    got = fx_read_all(tdy);
    fx_assert_same(got, want, len, what);
    spartan_tensor *tdy2 = fx_upload(dy, rows, n);
    ok(spartan_relu_backward(ctx, ty, tdy2, ty)); /* in place over y, as ops.h allows */
    got = fx_read_all(ty);
    fx_assert_same(got, want, len, what);
    fx_release();
}

/* ---- tests ---------------------------------------------------------------------------------- */

START_TEST(window_out_sizes) {
    spartan_window w = {1, 28, 28, 1, 5, 5, 1, 2};
    ck_assert_uint_eq(spartan_window_out_h(&w), 28);
    ck_assert_uint_eq(spartan_window_out_w(&w), 28);
    w = (spartan_window){1, 7, 6, 1, 2, 3, 2, 0};
    ck_assert_uint_eq(spartan_window_out_h(&w), 3);
    ck_assert_uint_eq(spartan_window_out_w(&w), 2);
    w.k_h = 8; /* does not fit */
    ck_assert_uint_eq(spartan_window_out_h(&w), 0);
    w.pad = 1; /* now it does: 7 + 2 - 8 = 1 */
    ck_assert_uint_eq(spartan_window_out_h(&w), 1);
    w.stride = 0;
    ck_assert_uint_eq(spartan_window_out_h(&w), 0);
    ck_assert_uint_eq(spartan_window_out_w(&w), 0);
    w = (spartan_window){1, 7, 6, 1, 0, 0, 1, 0}; /* empty window */
    ck_assert_uint_eq(spartan_window_out_h(&w), 0);
    ck_assert_uint_eq(spartan_window_out_h(NULL), 0);
    ck_assert_uint_eq(spartan_window_out_w(NULL), 0);
}
END_TEST

START_TEST(im2col_col2im_match_reference) {
    size_t n = small ? N_CONV_TINY : N_CONV;
    for (size_t i = 0; i < n; i++) {
        spartan_window w = to_window(conv_windows[i]);
        check_conv(&w, SEED(1, i));
    }
}
END_TEST

START_TEST(maxpool_matches_reference) {
    size_t n = small ? N_POOL_TINY : N_POOL;
    for (size_t i = 0; i < n; i++) {
        spartan_window w = to_window(pool_windows[i]);
        check_pool(&w, SEED(2, i), 0);
        check_pool(&w, SEED(3, i), 1);
    }
}
END_TEST

START_TEST(avgpool_matches_reference) {
    size_t n = small ? N_AVG_TINY : N_AVG;
    for (size_t i = 0; i < n; i++) {
        spartan_window w = to_window(avg_windows[i]);
        check_avgpool(&w, SEED(9, i));
    }
}
END_TEST

/* Overlapping windows with padding, a global pooling, and windows wholly in the padding (5
 * channels: a full vector and a partial one with the default VEC). */
START_TEST(avgpool_gradient_matches_finite_differences) {
    static const win fd[] = {
        {1, 5, 4, 3, 3, 3, 2, 1}, {2, 3, 3, 2, 3, 3, 1, 0}, {1, 3, 4, 5, 2, 2, 1, 2}};
    for (size_t i = 0; i < sizeof fd / sizeof fd[0]; i++) {
        spartan_window w = to_window(fd[i]);
        check_avgpool_gradient(&w, SEED(10, i));
    }
}
END_TEST

/* Global average pooling is the window k = the image with no padding, at any stride: one output
 * pixel per image (y is batch x in_c, the channel means), each input pixel in one window. */
START_TEST(global_avgpool_is_the_channel_mean) {
    static const win g[] = {{3, 6, 5, 7, 6, 5, 1, 0},
                            {2, 9, 9, 3, 9, 9, 4, 0},
                            {1, 1, 1, 17, 1, 1, 1, 0},
                            {5, 8, 8, 32, 8, 8, 8, 0}};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        spartan_window w = to_window(g[i]);
        ck_assert_uint_eq(spartan_window_out_h(&w), 1);
        ck_assert_uint_eq(spartan_window_out_w(&w), 1);
        check_avgpool(&w, SEED(11, i));
        /* dy of ones: every dx element is exactly 1 / (in_h * in_w) rounded once */
        size_t image = w.batch * w.in_h * w.in_w * w.in_c;
        float *ones = fx_floats(w.batch * w.in_c);
        for (size_t j = 0; j < w.batch * w.in_c; j++) ones[j] = 1.0f;
        spartan_tensor *tdy = fx_upload(ones, w.batch, w.in_c);
        spartan_tensor *tdx = fx_nan_matrix(w.batch * w.in_h * w.in_w, w.in_c);
        ok(spartan_avgpool_backward(ctx, &w, tdy, tdx));
        float *dx = fx_read_all(tdx);
        double *want = fx_doubles(image);
        for (size_t j = 0; j < image; j++) want[j] = 1.0 / (double)(w.in_h * w.in_w);
        fx_assert_close(dx, want, image, th_tol(1, 1.0), "global avgpool of ones");
        fx_release();
    }
}
END_TEST

START_TEST(bias_matches_reference) {
    size_t n = small ? N_ROWS_TINY : N_ROWS;
    for (size_t i = 0; i < n; i++) check_bias(row_shapes[i].rows, row_shapes[i].cols, SEED(4, i));
}
END_TEST

/* No rows: the gradient is all zeros (db is overwritten, not left alone). */
/* The bias gradient of a tall column of small integers (every partial sum exact in float, in
 * any order: the result must be exact). */
static void check_bias_grad_exact(size_t rows, size_t n, uint64_t seed) {
    char what[96];
    snprintf(what, sizeof what, "bias_grad %zux%zu", rows, n);
    float *dy = fx_random_floats(rows * n, -4.0f, 4.0f, seed);
    for (size_t i = 0; i < rows * n; i++) dy[i] = floorf(dy[i]);
    spartan_tensor *tdy = fx_upload(dy, rows, n), *tdb = fx_nan_matrix(1, n);
    ok(spartan_bias_grad(ctx, tdy, tdb));
    float *db = fx_read_all(tdb);
    double *wdb = fx_doubles(n);
    ref_bias_grad(wdb, dy, rows, n);
    fx_assert_close(db, wdb, n, 0.0, what);
    fx_release();
}

/* Columns taller than 65,536 rows: narrow rows (5, 7 columns) take the flat walk, wider ones (13)
 * the kernel over rows, whose rows a lowered LOOP_MAX cuts into several slices (10 with POCL's
 * VEC 16 and WG 256) summed by a second kernel. */
START_TEST(bias_grad_of_tall_columns) {
    if (!th_tall()) return;
    check_bias(131101, 5, SEED(8, 0));
    check_bias_grad_exact(131101, 7, SEED(8, 1));
    th_context_with_tune(&ctx, "LOOP_MAX=1024");
    check_bias_grad_exact(131101, 13, SEED(8, 2));
}
END_TEST

START_TEST(bias_grad_of_no_rows_is_zero) {
    float dummy = 0.0f, db[5];
    spartan_tensor *dy = fx_upload(&dummy, 0, 5), *tdb = fx_nan_matrix(1, 5);
    ok(spartan_bias_grad(ctx, dy, tdb));
    ok(spartan_tensor_read(tdb, db, 5));
    for (int j = 0; j < 5; j++) ck_assert_msg(db[j] == 0.0f, "db[%d] = %g", j, (double)db[j]);
}
END_TEST

START_TEST(relu_backward_matches_reference) {
    size_t n = small ? N_ROWS_TINY : N_ROWS;
    for (size_t i = 0; i < n; i++)
        check_relu_backward(row_shapes[i].rows, row_shapes[i].cols, SEED(5, i));
}
END_TEST

/* Everything again with other vector widths: VEC=1 (scalar kernels, every chunk full) and
 * VEC=16 (most channel counts end in a partial chunk). */
static void check_some(void) {
    for (size_t i = 0; i < N_CONV_TINY; i++) {
        spartan_window w = to_window(conv_windows[i]);
        check_conv(&w, SEED(20, i));
    }
    for (size_t i = 0; i < N_POOL_TINY; i++) {
        spartan_window w = to_window(pool_windows[i]);
        check_pool(&w, SEED(21, i), (int)(i % 2));
    }
    for (size_t i = 0; i < N_AVG_TINY; i++) {
        spartan_window w = to_window(avg_windows[i]);
        check_avgpool(&w, SEED(24, i));
    }
    for (size_t i = 0; i < N_ROWS_TINY; i++) {
        check_bias(row_shapes[i].rows, row_shapes[i].cols, SEED(22, i));
        check_relu_backward(row_shapes[i].rows, row_shapes[i].cols, SEED(23, i));
    }
}

START_TEST(tune_scalar) {
    th_context_with_tune(&ctx, "VEC=1");
    check_some();
}
END_TEST

START_TEST(tune_wide) {
    th_context_with_tune(&ctx, "VEC=16");
    check_some();
}
END_TEST

/* NULLs, sizes that do not match, windows that do not fit, padded pooling: INVALID_ARGUMENT with
 * a message, and nothing written. */
START_TEST(bad_arguments_are_invalid) {
    float host[256] = {0};
    spartan_window w = {2, 4, 4, 2, 3, 3, 1, 1}; /* out 4 x 4: cols 32 x 18 */
    spartan_tensor *x = fx_upload(host, 32, 2), *cols = fx_matrix(32, 18);
    spartan_tensor *x_bad = fx_matrix(31, 2), *cols_bad = fx_matrix(32, 17);
    ck_assert_int_eq(spartan_im2col(NULL, &w, x, cols), INV);
    ck_assert_int_eq(spartan_im2col(ctx, NULL, x, cols), INV);
    ck_assert_int_eq(spartan_im2col(ctx, &w, NULL, cols), INV);
    ck_assert_int_eq(spartan_im2col(ctx, &w, x, NULL), INV);
    ck_assert_int_eq(spartan_im2col(ctx, &w, x_bad, cols), INV);
    ck_assert_int_eq(spartan_im2col(ctx, &w, x, cols_bad), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "cols"));
    ck_assert_int_eq(spartan_col2im(ctx, &w, cols_bad, x), INV);
    ck_assert_int_eq(spartan_col2im(ctx, &w, cols, x_bad), INV);
    spartan_window bad = w;
    bad.stride = 0;
    ck_assert_int_eq(spartan_im2col(ctx, &bad, x, cols), INV);
    bad = w;
    bad.pad = 0;
    bad.k_h = 7; /* does not fit a 4 x 4 image */
    ck_assert_int_eq(spartan_im2col(ctx, &bad, x, cols), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "does not fit"));
    bad.k_h = 0;
    ck_assert_int_eq(spartan_col2im(ctx, &bad, cols, x), INV);
    ok(spartan_im2col(ctx, &w, x, cols));

    /* pooling: pad must be 0 */
    spartan_window pw = {2, 4, 4, 2, 2, 2, 2, 0}; /* out 2 x 2: 8 pixels */
    spartan_tensor *y = fx_matrix(8, 2), *arg = fx_matrix(8, 2), *y_bad = fx_matrix(8, 3);
    spartan_window pp = pw;
    pp.pad = 1;
    ck_assert_int_eq(spartan_maxpool_forward(ctx, &pp, x, y, arg), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "pad"));
    ck_assert_int_eq(spartan_maxpool_backward(ctx, &pp, y, arg, x), INV);
    ck_assert_int_eq(spartan_maxpool_forward(ctx, &pw, x, y_bad, arg), INV);
    ck_assert_int_eq(spartan_maxpool_forward(ctx, &pw, x, y, NULL), INV);
    ck_assert_int_eq(spartan_maxpool_backward(ctx, &pw, y, y_bad, x), INV);
    ck_assert_int_eq(spartan_maxpool_backward(ctx, &pw, y, arg, x_bad), INV);
    ck_assert_int_eq(spartan_maxpool_relu_backward(ctx, &pw, y, arg, NULL, x), INV);
    ck_assert_int_eq(spartan_maxpool_relu_backward(ctx, &pw, y, arg, y_bad, x), INV);
    ck_assert_int_eq(spartan_maxpool_relu_backward(ctx, &pp, y, arg, y, x), INV);
    ok(spartan_maxpool_forward(ctx, &pw, x, y, arg));

    /* bias: n elements for n columns */
    spartan_tensor *b3 = fx_matrix(1, 3), *b2 = fx_matrix(1, 2);
    ck_assert_int_eq(spartan_relu_maxpool_forward(ctx, &pw, x, b3, y, arg), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "bias"));
    ck_assert_int_eq(spartan_relu_maxpool_forward(ctx, &pp, x, b2, y, arg), INV);
    ck_assert_int_eq(spartan_relu_maxpool_forward(ctx, &pw, x, b2, y_bad, arg), INV);
    ck_assert_int_eq(spartan_relu_maxpool_forward(ctx, &pw, NULL, b2, y, arg), INV);
    ok(spartan_relu_maxpool_forward(ctx, &pw, x, b2, y, arg));
    ok(spartan_relu_maxpool_forward(ctx, &pw, x, NULL, y, arg));
    ck_assert_int_eq(spartan_bias_add(ctx, y, b3), INV);
    ck_assert_int_eq(spartan_bias_grad(ctx, y, b3), INV);
    ck_assert_int_eq(spartan_bias_add(ctx, NULL, b2), INV);
    ck_assert_int_eq(spartan_bias_grad(ctx, y, NULL), INV);
    ck_assert_int_eq(spartan_relu_backward(ctx, y, y_bad, y), INV);
    ck_assert_int_eq(spartan_relu_backward(ctx, y, y, y_bad), INV);
    ck_assert_int_eq(spartan_relu_backward(ctx, y, NULL, y), INV);
    ok(spartan_context_finish(ctx));
}
END_TEST

/* Average pooling's refusals (padding is allowed): INVALID_ARGUMENT with a message naming the
 * problem, and the output left as it was. */
START_TEST(avgpool_bad_arguments_are_invalid) {
    float host[64] = {0};
    spartan_window w = {2, 4, 4, 2, 3, 3, 1, 1}; /* out 4 x 4: 32 pixels */
    spartan_tensor *x = fx_upload(host, 32, 2), *y = fx_nan_matrix(32, 2);
    spartan_tensor *x_bad = fx_matrix(31, 2), *y_bad = fx_matrix(32, 3), *y_rows = fx_matrix(31, 2);
    ck_assert_int_eq(spartan_avgpool_forward(NULL, &w, x, y), INV);
    ck_assert_int_eq(spartan_avgpool_forward(ctx, NULL, x, y), INV);
    ck_assert_int_eq(spartan_avgpool_forward(ctx, &w, NULL, y), INV);
    ck_assert_int_eq(spartan_avgpool_forward(ctx, &w, x, NULL), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "NULL"));
    ck_assert_int_eq(spartan_avgpool_backward(NULL, &w, y, x), INV);
    ck_assert_int_eq(spartan_avgpool_backward(ctx, NULL, y, x), INV);
    ck_assert_int_eq(spartan_avgpool_backward(ctx, &w, NULL, x), INV);
    ck_assert_int_eq(spartan_avgpool_backward(ctx, &w, y, NULL), INV);
    /* sizes */
    ck_assert_int_eq(spartan_avgpool_forward(ctx, &w, x_bad, y), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "x has 62 elements"));
    ck_assert_int_eq(spartan_avgpool_forward(ctx, &w, x, y_bad), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "y is 32x3"));
    ck_assert_int_eq(spartan_avgpool_forward(ctx, &w, x, y_rows), INV);
    ck_assert_int_eq(spartan_avgpool_backward(ctx, &w, y_bad, x), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "dy is 32x3"));
    ck_assert_int_eq(spartan_avgpool_backward(ctx, &w, y, x_bad), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "dx has 62 elements"));
    /* the output over the input */
    spartan_window same = {1, 8, 8, 1, 1, 1, 1, 0}; /* 1 x 1 windows: every shape matches */
    spartan_tensor *sq = fx_matrix(64, 1);
    ck_assert_int_eq(spartan_avgpool_forward(ctx, &same, sq, sq), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "shares its buffer"));
    ck_assert_int_eq(spartan_avgpool_backward(ctx, &same, sq, sq), INV);
    /* windows */
    spartan_window bad = w;
    bad.stride = 0;
    ck_assert_int_eq(spartan_avgpool_forward(ctx, &bad, x, y), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "stride"));
    bad = w;
    bad.k_w = 0;
    ck_assert_int_eq(spartan_avgpool_backward(ctx, &bad, y, x), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "empty"));
    bad = w;
    bad.k_h = 7; /* 4 + 2 pad < 7 */
    ck_assert_int_eq(spartan_avgpool_forward(ctx, &bad, x, y), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "does not fit"));
    /* a window longer than a work-item may walk (LOOP_MAX / (VEC + 1) positions) */
    bad = (spartan_window){1, 4096, 4096, 1, 4096, 4096, 1, 0};
    ck_assert_int_eq(spartan_avgpool_forward(ctx, &bad, x, y), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "positions"));
    /* indices past 32 bits: 70,000 x 70,000 pixels */
    bad = (spartan_window){1, 70000, 70000, 1, 2, 2, 2, 0};
    ck_assert_int_eq(spartan_avgpool_forward(ctx, &bad, x, y), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "32-bit"));
    ck_assert_int_eq(spartan_avgpool_backward(ctx, &bad, y, x), INV);
    bad.pad = (size_t)1 << 31; /* in + 2 pad past 32 bits */
    ck_assert_int_eq(spartan_avgpool_forward(ctx, &bad, x, y), INV);
    /* nothing was written */
    float *left = fx_read_all(y);
    for (size_t i = 0; i < 64; i++)
        ck_assert_msg(isnan(left[i]), "y[%zu] = %g", i, (double)left[i]);
    ok(spartan_avgpool_forward(ctx, &w, x, y));
    ok(spartan_avgpool_backward(ctx, &w, y, x));
    ok(spartan_context_finish(ctx));
}
END_TEST

/* Zero-sized tensors: every operation is a no-op that succeeds. */
START_TEST(empty_tensors_are_no_ops) {
    float dummy = 0.0f;
    spartan_tensor *e = fx_upload(&dummy, 0, 6), *b = fx_matrix(1, 6);
    ok(spartan_bias_add(ctx, e, b));
    ok(spartan_relu_backward(ctx, e, e, e));
    spartan_window none = {0, 4, 4, 6, 2, 2, 2, 1}; /* no images: 0 x 6 both sides */
    spartan_tensor *e2 = fx_upload(&dummy, 0, 6);
    ok(spartan_avgpool_forward(ctx, &none, e, e2));
    ok(spartan_avgpool_backward(ctx, &none, e2, e));
    ok(spartan_context_finish(ctx));
}
END_TEST

static Suite *nn_ops_suite(void) {
    Suite *s = suite_create("nn_ops");
    TCase *tc = tcase_create("nn_ops");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, window_out_sizes);
    tcase_add_test(tc, im2col_col2im_match_reference);
    tcase_add_test(tc, maxpool_matches_reference);
    tcase_add_test(tc, avgpool_matches_reference);
    tcase_add_test(tc, avgpool_gradient_matches_finite_differences);
    tcase_add_test(tc, global_avgpool_is_the_channel_mean);
    tcase_add_test(tc, bias_matches_reference);
    tcase_add_test(tc, bias_grad_of_no_rows_is_zero);
    tcase_add_test(tc, bias_grad_of_tall_columns);
    tcase_add_test(tc, relu_backward_matches_reference);
    tcase_add_test(tc, tune_scalar);
    tcase_add_test(tc, tune_wide);
    tcase_add_test(tc, bad_arguments_are_invalid);
    tcase_add_test(tc, avgpool_bad_arguments_are_invalid);
    tcase_add_test(tc, empty_tensors_are_no_ops);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(nn_ops_suite());
}
