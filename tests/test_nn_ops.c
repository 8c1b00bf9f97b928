/* Tests of the image and layer operations (runtime/ops/nn_ops.c, kernels_cl/nn.cl) against
 * tests/ref: window output sizes; im2col exactly and col2im within the tolerance of its sums, and
 * the two as adjoints; max-pooling exactly (ties, NaNs, overlapping windows, uncovered edges);
 * bias add and gradient; ReLU backward. Shapes: batch 1 and 0, odd and prime sizes, k = 1,
 * stride 2 and 3, pad 1 and 2, windows as large as the image, channel counts that are not
 * multiples of VEC; then the scalar (VEC=1) and wide (VEC=16) kernels; bad arguments and empty
 * tensors. The training-step operations (softmax + cross-entropy, SGD, dropout) are in
 * test_nn_loss.c. SPARTAN_TEST_SMALL=1 (Oclgrind): tiny shapes only. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref/ref.h"
#include "spartan/spartan.h"

static spartan_context *ctx;
static int small; /* SPARTAN_TEST_SMALL=1: tiny shapes only */

static void setup(void) {
    small = th_small();
    spartan_status st = spartan_context_create(NULL, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
}

/* Host arrays and tensors made by the helpers below are kept here and released together
 * (release(): at the end of each check, and in teardown). */
#define MAX_HELD 64
static void *held[MAX_HELD];
static spartan_tensor *held_t[MAX_HELD];
static size_t nheld, nheld_t;

static void release(void) {
    for (size_t i = 0; i < nheld; i++) free(held[i]);
    for (size_t i = 0; i < nheld_t; i++) spartan_tensor_destroy(held_t[i]);
    nheld = nheld_t = 0;
}

static void teardown(void) {
    release();
    spartan_context_destroy(ctx);
    ctx = NULL;
}

static void *hold(void *p) {
    ck_assert_uint_lt(nheld, MAX_HELD);
    return held[nheld++] = p;
}

static spartan_tensor *hold_t(spartan_tensor *t) {
    ck_assert_uint_lt(nheld_t, MAX_HELD);
    return held_t[nheld_t++] = t;
}

static float *floats(size_t n) {
    return hold(th_floats(n));
}

static double *doubles(size_t n) {
    return hold(th_doubles(n));
}

static spartan_tensor *matrix(size_t rows, size_t cols) {
    return hold_t(th_matrix(ctx, rows, cols));
}

static spartan_tensor *nan_matrix(size_t rows, size_t cols) {
    return hold_t(th_nan_matrix(ctx, rows, cols));
}

static spartan_tensor *upload(const float *host, size_t rows, size_t cols) {
    return hold_t(th_upload(ctx, host, rows, cols));
}

/* ---- helpers -------------------------------------------------------------------------------- */

#define SEED(i, j) (th_seed() * 1000003u + (uint64_t)(i)*64u + (uint64_t)(j))

static const spartan_status INV = SPARTAN_STATUS_INVALID_ARGUMENT;

#define ok(call)                                                                                   \
    do {                                                                                           \
        spartan_status st_ = (call);                                                               \
        ck_assert_msg(st_ == SPARTAN_OK, "%s: %s (%s)", #call, spartan_status_name(st_),           \
                      spartan_last_error(ctx));                                                    \
    } while (0)

static float *random_floats(size_t n, float lo, float hi, uint64_t seed) {
    float *x = floats(n);
    th_rng rng;
    th_rng_init(&rng, seed);
    for (size_t i = 0; i < n; i++) x[i] = th_rng_uniform(&rng, lo, hi);
    return x;
}

static float *read_all(const spartan_tensor *t) {
    size_t n = spartan_tensor_numel(t);
    float *h = floats(n);
    ok(spartan_tensor_read(t, h, n));
    return h;
}

/* First index where got and want differ bitwise-or-value (NaN equals NaN); n when none. */
static size_t first_diff(const float *got, const float *want, size_t n) {
    size_t i = 0;
    while (i < n && (got[i] == want[i] || (isnan(got[i]) && isnan(want[i])))) i++;
    return i;
}

static double max_abs(const float *x, size_t n) {
    return ref_max_abs(x, n);
}

static void assert_close(const float *got, const double *want, size_t n, double tol,
                         const char *what) {
    size_t first = 0;
    ck_assert_msg(th_count_bad(got, want, n, tol, &first) == 0,
                  "%s: [%zu] = %.9g, want %.9g (tol %g)", what, first, (double)got[first],
                  want[first], tol);
}

static void assert_same(const float *got, const float *want, size_t n, const char *what) {
    size_t i = first_diff(got, want, n);
    ck_assert_msg(i == n, "%s: [%zu] = %.9g, want %.9g", what, i, (double)got[i < n ? i : 0],
                  (double)want[i < n ? i : 0]);
}

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
    float *x = random_floats(image, -2.0f, 2.0f, seed);
    float *c = random_floats(rows * patch, -1.0f, 1.0f, seed + 1);
    float *want = floats(rows * patch);
    ref_im2col(want, x, w);

    spartan_tensor *tx = upload(x, pix, w->in_c), *tcols = nan_matrix(rows, patch);
    ok(spartan_im2col(ctx, w, tx, tcols));
    float *got = read_all(tcols);
    assert_same(got, want, rows * patch, what);

    /* col2im of other values c */
    describe(what, sizeof what, "col2im", w);
    ok(spartan_tensor_write(tcols, c, rows * patch));
    spartan_tensor *tdx = nan_matrix(pix, w->in_c);
    ok(spartan_col2im(ctx, w, tcols, tdx));
    float *dx = read_all(tdx);
    double *wdx = doubles(image);
    ref_col2im(wdx, c, w);
    /* each element sums at most k_h * k_w entries of c */
    double tol = th_tol(w->k_h * w->k_w, max_abs(c, rows * patch));
    assert_close(dx, wdx, image, tol, what);

    /* adjointness, both sides in double from the device's results */
    double lhs = 0.0, rhs = 0.0, xs = 0.0;
    for (size_t i = 0; i < rows * patch; i++) lhs += (double)got[i] * c[i];
    for (size_t i = 0; i < image; i++) {
        rhs += (double)x[i] * dx[i];
        xs += fabs((double)x[i]);
    }
    ck_assert_msg(fabs(lhs - rhs) <= tol * xs, "%s: <im2col(x), c> = %.12g, <x, col2im(c)> = %.12g",
                  what, lhs, rhs);

    release();
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
    float *x = random_floats(n, -3.0f, 3.0f, seed);
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
    float *dy = random_floats(outs, -1.0f, 1.0f, seed + 1);
    float *wy = floats(outs), *warg = floats(outs);
    ref_maxpool_forward(wy, warg, x, w);

    spartan_tensor *tx = upload(x, pix, w->in_c);
    spartan_tensor *ty = nan_matrix(opix, w->in_c), *targ = nan_matrix(opix, w->in_c);
    ok(spartan_maxpool_forward(ctx, w, tx, ty, targ));
    float *y = read_all(ty), *arg = read_all(targ);
    assert_same(y, wy, outs, what);
    assert_same(arg, warg, outs, what);

    spartan_tensor *tdy = upload(dy, opix, w->in_c), *tdx = nan_matrix(pix, w->in_c);
    ok(spartan_maxpool_backward(ctx, w, tdy, targ, tdx));
    float *dx = read_all(tdx);
    double *wdx = doubles(image);
    ref_maxpool_backward(wdx, dy, warg, w);
    int overlap = w->stride < w->k_h || w->stride < w->k_w;
    /* an element is the maximum of at most k_h * k_w windows */
    double tol = overlap ? th_tol(w->k_h * w->k_w, max_abs(dy, outs)) : 0.0;
    assert_close(dx, wdx, image, tol, what);

    release();
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
    float *y = random_floats(rows * n, -2.0f, 2.0f, seed),
          *b = random_floats(n, -1.0f, 1.0f, seed + 1);
    spartan_tensor *ty = upload(y, rows, n), *tb = upload(b, 1, n);
    ok(spartan_bias_add(ctx, ty, tb));
    float *got = read_all(ty);
    double *want = doubles(rows * n);
    ref_bias_add(want, y, b, rows, n);
    /* one rounded addition */
    assert_close(got, want, rows * n, th_tol(1, max_abs(y, rows * n) + max_abs(b, n)), what);

    spartan_tensor *tdb = nan_matrix(1, n);
    ok(spartan_bias_grad(ctx, ty, tdb)); /* the gradient of y + b's values: any data does */
    float *db = read_all(tdb);
    double *wdb = doubles(n);
    ref_bias_grad(wdb, got, rows, n);
    assert_close(db, wdb, n, th_tol(rows, max_abs(got, rows * n)), what);

    release();
}

static void check_relu_backward(size_t rows, size_t n, uint64_t seed) {
    char what[96];
    snprintf(what, sizeof what, "relu_backward %zux%zu", rows, n);
    size_t len = rows * n;
    float *y = random_floats(len, -1.0f, 1.0f, seed),
          *dy = random_floats(len, -1.0f, 1.0f, seed + 1);
    for (size_t i = 0; i < len; i += 5) y[i] = 0.0f; /* ReLU outputs: zeros are common */
    if (len > 7) y[7] = NAN;
    float *want = floats(len);
    ref_relu_backward(want, y, dy, len);
    spartan_tensor *ty = upload(y, rows, n), *tdy = upload(dy, rows, n);
    spartan_tensor *tdz = nan_matrix(rows, n);
    ok(spartan_relu_backward(ctx, ty, tdy, tdz));
    float *got = read_all(tdz);
    assert_same(got, want, len, what);
    ok(spartan_relu_backward(ctx, ty, tdy, tdy)); /* in place */
    got = read_all(tdy);
    assert_same(got, want, len, what);
    release();
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

START_TEST(bias_matches_reference) {
    size_t n = small ? N_ROWS_TINY : N_ROWS;
    for (size_t i = 0; i < n; i++) check_bias(row_shapes[i].rows, row_shapes[i].cols, SEED(4, i));
}
END_TEST

/* No rows: the gradient is all zeros (db is overwritten, not left alone). */
START_TEST(bias_grad_of_no_rows_is_zero) {
    float dummy = 0.0f, db[5];
    spartan_tensor *dy = upload(&dummy, 0, 5), *tdb = nan_matrix(1, 5);
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
    spartan_tensor *x = upload(host, 32, 2), *cols = matrix(32, 18);
    spartan_tensor *x_bad = matrix(31, 2), *cols_bad = matrix(32, 17);
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
    spartan_tensor *y = matrix(8, 2), *arg = matrix(8, 2), *y_bad = matrix(8, 3);
    spartan_window pp = pw;
    pp.pad = 1;
    ck_assert_int_eq(spartan_maxpool_forward(ctx, &pp, x, y, arg), INV);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "pad"));
    ck_assert_int_eq(spartan_maxpool_backward(ctx, &pp, y, arg, x), INV);
    ck_assert_int_eq(spartan_maxpool_forward(ctx, &pw, x, y_bad, arg), INV);
    ck_assert_int_eq(spartan_maxpool_forward(ctx, &pw, x, y, NULL), INV);
    ck_assert_int_eq(spartan_maxpool_backward(ctx, &pw, y, y_bad, x), INV);
    ck_assert_int_eq(spartan_maxpool_backward(ctx, &pw, y, arg, x_bad), INV);
    ok(spartan_maxpool_forward(ctx, &pw, x, y, arg));

    /* bias: n elements for n columns */
    spartan_tensor *b3 = matrix(1, 3), *b2 = matrix(1, 2);
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

/* Zero-sized tensors: every operation is a no-op that succeeds. */
START_TEST(empty_tensors_are_no_ops) {
    float dummy = 0.0f;
    spartan_tensor *e = upload(&dummy, 0, 6), *b = matrix(1, 6);
    ok(spartan_bias_add(ctx, e, b));
    ok(spartan_relu_backward(ctx, e, e, e));
    ok(spartan_context_finish(ctx));
}
END_TEST

static Suite *nn_ops_suite(void) {
    Suite *s = suite_create("nn_ops");
    TCase *tc = tcase_create("nn_ops");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, window_out_sizes);
    tcase_add_test(tc, im2col_col2im_match_reference);
    tcase_add_test(tc, maxpool_matches_reference);
    tcase_add_test(tc, bias_matches_reference);
    tcase_add_test(tc, bias_grad_of_no_rows_is_zero);
    tcase_add_test(tc, relu_backward_matches_reference);
    tcase_add_test(tc, tune_scalar);
    tcase_add_test(tc, tune_wide);
    tcase_add_test(tc, bad_arguments_are_invalid);
    tcase_add_test(tc, empty_tensors_are_no_ops);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(nn_ops_suite());
}
