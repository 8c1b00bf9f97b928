/* Tests of the implicit-GEMM convolution (runtime/ops/conv.c, kernels_cl/conv.cl) against a
 * direct convolution in double (tests/ref, no patch matrix), within th_tol(k_h k_w in_c, scale):
 * 1 x 1, 3 x 3 pad 1 and 3, 5 x 5 pad 0, 1 and 2, stride 2, non-square 1 x 3 and 3 x 1 windows;
 * in_c 1, 3, 17, 32, 40, 64 (the sparse stride-1 kernel's chunks of 32 channels, whole and
 * partial); out_c 1, 5, 7, 16, 33, 64 (its weight rows padded to whole blocks); batch 1 to 3;
 * images of 1 to 28; an empty batch; a reduction cut into slices; the sparse path (skipping zeros
 * of x) on dense x and on 70 % zeros; the scalar (VEC=1) and wide (VEC=16) kernels, a 3 x 3
 * register block, a strip of 3 columns; against im2col + the dense GEMM; the
 * fallback when the conv family is off; and refusals. SPARTAN_TEST_SMALL=1 (Oclgrind, rusticl):
 * tiny shapes only. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops_fixture.h"
#include "ref/ref.h"
#include "spartan/spartan.h"

typedef struct {
    spartan_window w;
    size_t out_c;
} conv_case;

/* The first N_TINY are Oclgrind-sized. */
static const conv_case cases[] = {
    {{1, 7, 7, 3, 3, 3, 1, 1}, 5},     /* 3 x 3 pad 1 */
    {{3, 7, 7, 1, 1, 1, 1, 0}, 1},     /* 1 x 1, one channel, one output */
    {{1, 7, 7, 17, 5, 5, 1, 0}, 5},    /* 5 x 5 pad 0, channels past a vector */
    {{3, 7, 7, 3, 5, 5, 1, 2}, 1},     /* 5 x 5 pad 2 */
    {{1, 7, 7, 3, 3, 3, 2, 1}, 5},     /* stride 2 */
    {{1, 7, 7, 3, 1, 3, 1, 1}, 5},     /* 1 x 3 */
    {{3, 7, 7, 17, 3, 1, 2, 1}, 1},    /* 3 x 1, stride 2 */
    {{1, 1, 1, 3, 3, 3, 1, 1}, 5},     /* a 1 x 1 image, all padding but the centre */
    {{1, 1, 1, 17, 1, 1, 1, 0}, 64},   /* a 1 x 1 image, 1 x 1 window: a matrix product */
    {{0, 7, 7, 3, 3, 3, 1, 1}, 5},     /* no images */
    {{3, 28, 28, 1, 5, 5, 1, 2}, 5},   /* lenet5's first convolution */
    {{3, 28, 28, 3, 3, 3, 1, 1}, 64},  /* vgg-small-like, 64 outputs */
    {{1, 28, 28, 17, 5, 5, 2, 0}, 64}, /* 5 x 5 pad 0 stride 2 */
    {{3, 7, 7, 17, 1, 3, 1, 0}, 64},   /* 1 x 3 pad 0 */
    {{1, 28, 28, 17, 3, 1, 1, 1}, 5},  /* 3 x 1 pad 1 */
    {{3, 1, 1, 3, 1, 1, 2, 0}, 5},     /* stride past a 1 x 1 image */
    {{2, 9, 11, 40, 3, 3, 1, 1}, 33},  /* chunks of 32 channels and 8; a partial output block */
    {{1, 5, 12, 64, 5, 5, 1, 1}, 7},   /* two whole chunks, 5 x 5 pad 1, 7 outputs */
    {{2, 8, 8, 32, 3, 3, 1, 3}, 16},   /* padding past the window (k - 1 < pad) */
};
#define N_CASES (sizeof cases / sizeof cases[0])
#define N_TINY  10

static void describe(char *buf, size_t len, const conv_case *c) {
    const spartan_window *w = &c->w;
    snprintf(buf, len, "conv b=%zu %zux%zux%zu k=%zux%zu s=%zu p=%zu out_c=%zu", w->batch, w->in_h,
             w->in_w, w->in_c, w->k_h, w->k_w, w->stride, w->pad, c->out_c);
}

/* The sparse path (skipping the zeros of x) on x itself, then on x with about 70 % of its
 * elements zero, scattered and in whole pixels (a ReLU's output, a pooled map). */
static void check_sparse(const conv_case *c, const float *x, const float *wt, double tol,
                         const char *what, uint64_t seed) {
    const spartan_window *w = &c->w;
    size_t pix = w->batch * w->in_h * w->in_w, image = pix * w->in_c;
    size_t rows = ref_window_out(w->in_h, w->k_h, w->stride, w->pad) *
                  ref_window_out(w->in_w, w->k_w, w->stride, w->pad) * w->batch;
    size_t patch = w->k_h * w->k_w * w->in_c, outs = rows * c->out_c;
    float *xz = fx_random_floats(image, 0.0f, 1.0f, seed + 7);
    for (size_t i = 0; i < image; i++) xz[i] = xz[i] < 0.6f || (i / w->in_c) % 3 == 1 ? 0.0f : x[i];
    spartan_tensor *tw = fx_upload(wt, patch, c->out_c), *ty = fx_nan_matrix(rows, c->out_c);
    for (int zeros = small ? 1 : 0; zeros < 2; zeros++) { /* simulators: the 70 % run only */
        const float *in = zeros ? xz : x;
        double *want = fx_doubles(outs);
        ref_conv2d_forward(want, in, wt, w, c->out_c);
        ok(spartan_conv2d_forward(ctx, SPARTAN_PATH_SPARSE, w, fx_upload(in, pix, w->in_c), tw,
                                  ty));
        char msg[200];
        snprintf(msg, sizeof msg, "%s, sparse path%s", what, zeros ? ", 70 %% zeros" : "");
        fx_assert_close(fx_read_all(ty), want, outs, tol, msg);
    }
}

/* The convolution of random data against the direct reference; with against_gemm, also against
 * im2col + the dense GEMM (the path it replaces), within the same tolerance. */
/* The bias and the ReLU after the convolution, on both paths, with and without a bias: the same
 * bits as the plain op's y, then y + b and max(y, 0) in float (the two operations the layer ran
 * after it), whether the kernel's store applies them or a pass after does. */
static void check_relu(const conv_case *c, const spartan_tensor *tx, const spartan_tensor *tw,
                       uint64_t seed) {
    const spartan_window *w = &c->w;
    size_t rows = w->batch * ref_window_out(w->in_h, w->k_h, w->stride, w->pad) *
                  ref_window_out(w->in_w, w->k_w, w->stride, w->pad);
    size_t outs = rows * c->out_c;
    float *bias = fx_random_floats(c->out_c ? c->out_c : 1, -1.0f, 1.0f, seed + 3);
    float *plain = fx_floats(outs), *want = fx_floats(outs), *got = fx_floats(outs);
    spartan_tensor *tb = fx_upload(bias, 1, c->out_c), *ty = fx_nan_matrix(rows, c->out_c);
    for (int path = 0; path < 2; path++) {
        ok(spartan_conv2d_forward(ctx, (spartan_path)path, w, tx, tw, ty));
        ok(spartan_tensor_read(ty, plain, outs));
        for (int biased = 0; biased < 2; biased++) {
            char what[200];
            describe(what, sizeof what, c);
            strcat(what, path ? ", sparse" : ", dense");
            strcat(what, biased ? ", bias + ReLU" : ", ReLU");
            for (size_t i = 0; i < outs; i++) {
                float v = biased ? plain[i] + bias[i % c->out_c] : plain[i];
                want[i] = v < 0.0f ? 0.0f : v;
            }
            ok(spartan_tensor_fill(ty, NAN));
            ok(spartan_conv2d_forward_relu(ctx, (spartan_path)path, w, tx, tw, biased ? tb : NULL,
                                           ty));
            ok(spartan_tensor_read(ty, got, outs));
            fx_assert_same(got, want, outs, what);
        }
    }
}

static void check_case(const conv_case *c, uint64_t seed, int against_gemm) {
    char what[160];
    describe(what, sizeof what, c);
    const spartan_window *w = &c->w;
    size_t oh = ref_window_out(w->in_h, w->k_h, w->stride, w->pad);
    size_t ow = ref_window_out(w->in_w, w->k_w, w->stride, w->pad);
    size_t pix = w->batch * w->in_h * w->in_w, image = pix * w->in_c;
    size_t rows = w->batch * oh * ow, patch = w->k_h * w->k_w * w->in_c, outs = rows * c->out_c;
    float *x = fx_random_floats(image, -2.0f, 2.0f, seed);
    float *wt = fx_random_floats(patch * c->out_c, -1.0f, 1.0f, seed + 1);
    double *want = fx_doubles(outs);
    ref_conv2d_forward(want, x, wt, w, c->out_c);

    spartan_tensor *tx = fx_upload(x, pix, w->in_c), *tw = fx_upload(wt, patch, c->out_c);
    spartan_tensor *ty = fx_nan_matrix(rows, c->out_c);
    ok(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, w, tx, tw, ty));
    float *got = fx_read_all(ty);
    double tol = th_tol(patch, fx_max_abs(x, image) * fx_max_abs(wt, patch * c->out_c));
    fx_assert_close(got, want, outs, tol, what);
    if (rows && (!small || seed % 2)) check_sparse(c, x, wt, tol, what, seed);
    check_relu(c, tx, tw, seed);
    if (!against_gemm || rows == 0) return;

    spartan_tensor *tcols = fx_matrix(rows, patch), *ty2 = fx_nan_matrix(rows, c->out_c);
    ok(spartan_im2col(ctx, w, tx, tcols));
    ok(spartan_gemm_dense(ctx, SPARTAN_GEMM_BEST, 0, 0, 1.0f, tcols, tw, 0.0f, ty2));
    float *gemm = fx_read_all(ty2);
    double *as_double = fx_doubles(outs);
    for (size_t i = 0; i < outs; i++) as_double[i] = gemm[i];
    strncat(what, " vs im2col + GEMM", sizeof what - strlen(what) - 1);
    fx_assert_close(got, as_double, outs, 2.0 * tol, what);
}

START_TEST(conv_matches_reference) {
    if (small && (size_t)_i >= N_TINY) return;
    check_case(&cases[_i], SEED(1, _i), 1);
    fx_release();
}
END_TEST

/* A reduction longer than one work-item may walk: cut into slices and summed (a lowered
 * LOOP_MAX makes short ones long, so the tiny runs cut too). */
START_TEST(long_reduction_is_split) {
    th_context_with_tune(&ctx, "LOOP_MAX=1024");
    const conv_case deep[] = {
        {{1, 3, 4, 300, 3, 3, 1, 1}, 5}, /* 2,700 patch indices: several slices */
        {{2, 3, 3, 1, 5, 5, 1, 2}, 3},   /* one channel: a slice per few positions */
    };
    for (size_t i = 0; i < 2; i++) check_case(&deep[i], SEED(2, i), 0);
    fx_release();
}
END_TEST

/* The scalar and wide kernels, the register block of 3 pixels x 3 vectors, and the sparse
 * kernel's strip of 3 output columns x 3 vectors. */
START_TEST(tuned_variants) {
    static const char *const tunes[] = {"VEC=1", "VEC=16", "GEMM_RB=3,GEMM_NB=3,STRIP_COLS=3"};
    th_context_with_tune(&ctx, tunes[_i]);
    for (size_t i = 0; i < N_TINY; i += 2) check_case(&cases[i], SEED(3, i), 0);
    fx_release();
}
END_TEST

/* With conv.cl broken, the family fails its validation and the operation still computes right,
 * through im2col and the dense GEMM. */
START_TEST(broken_family_falls_back) {
    fx_break_family("conv", "floatv o = (floatv)(alpha)*acc;",
                    "floatv o = (floatv)(alpha)*acc + (floatv)(0.5f);", "im2col");
    for (size_t i = 0; i < N_TINY; i += 3) check_case(&cases[i], SEED(4, i), 0);
    fx_release();
}
END_TEST

/* NULLs, sizes that do not match, windows that do not fit, outputs over inputs, other contexts:
 * INVALID_ARGUMENT with a message, and y not written. */
START_TEST(bad_arguments_are_invalid) {
    spartan_window w = {2, 4, 4, 2, 3, 3, 1, 1}; /* out 4 x 4: y 32 x out_c, patch 18 */
    float host[64] = {0};
    spartan_tensor *x = fx_upload(host, 32, 2), *wt = fx_matrix(18, 3), *y = fx_nan_matrix(32, 3);
    ck_assert_int_eq(spartan_conv2d_forward(NULL, SPARTAN_PATH_DENSE, &w, x, wt, y), INV);
    ck_assert_int_eq(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, NULL, x, wt, y), INV);
    ck_assert_int_eq(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &w, NULL, wt, y), INV);
    ck_assert_int_eq(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &w, x, NULL, y), INV);
    ck_assert_int_eq(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &w, x, wt, NULL), INV);
    ck_assert_int_eq(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &w, fx_matrix(31, 2), wt, y),
                     INV);
    ck_assert(strstr(spartan_last_error(ctx), "x has 62 elements") != NULL);
    spartan_tensor *b3 = fx_matrix(1, 3);
    ck_assert_int_eq(
        spartan_conv2d_forward_relu(ctx, SPARTAN_PATH_DENSE, &w, x, wt, fx_matrix(1, 2), y), INV);
    ck_assert(strstr(spartan_last_error(ctx), "the bias has 2 elements") != NULL);
    ck_assert_int_eq(spartan_conv2d_forward_relu(ctx, SPARTAN_PATH_DENSE, &w, x, wt, y, y), INV);
    ck_assert_int_eq(spartan_conv2d_forward_relu(ctx, SPARTAN_PATH_SPARSE, &w, NULL, wt, b3, y),
                     INV);

    ck_assert_int_eq(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &w, x, fx_matrix(17, 3), y),
                     INV);
    ck_assert(strstr(spartan_last_error(ctx), "the weight is 17x3") != NULL);
    ck_assert_int_eq(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &w, x, wt, fx_matrix(32, 4)),
                     INV);
    ck_assert_int_eq(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &w, x, wt, fx_matrix(31, 3)),
                     INV);
    ck_assert(strstr(spartan_last_error(ctx), "y is 31x3") != NULL);
    spartan_window bad = w;
    bad.stride = 0;
    ck_assert_int_eq(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &bad, x, wt, y), INV);
    bad = w;
    bad.pad = 0;
    bad.k_h = 5; /* taller than the image */
    ck_assert_int_eq(
        spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &bad, x, fx_matrix(30, 3), fx_matrix(0, 3)),
        INV);
    bad = w;
    bad.k_w = 0;
    ck_assert_int_eq(
        spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &bad, x, fx_matrix(0, 3), fx_matrix(32, 3)),
        INV);
    /* y over an input */
    spartan_window one = {1, 4, 4, 4, 1, 1, 1, 0}; /* x 16 x 4, weight 4 x 4, y 16 x 4 */
    spartan_tensor *sq = fx_matrix(16, 4), *w4 = fx_matrix(4, 4);
    ck_assert_int_eq(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &one, sq, w4, sq), INV);
    ck_assert(strstr(spartan_last_error(ctx), "shares its buffer") != NULL);
    ck_assert_int_eq(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &one, sq, w4, w4), INV);
    /* a tensor of another context */
    spartan_context *other;
    ok(spartan_context_create(NULL, &other));
    spartan_tensor *ox = th_matrix(other, 32, 2);
    ck_assert_int_eq(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &w, ox, wt, y), INV);
    ck_assert(strstr(spartan_last_error(ctx), "another context") != NULL);
    spartan_tensor_destroy(ox);
    spartan_context_destroy(other);
    /* y untouched by every refusal */
    float *got = fx_read_all(y);
    for (size_t i = 0; i < 96; i++) ck_assert_msg(isnan(got[i]), "y[%zu] = %g", i, (double)got[i]);
    fx_release();
}
END_TEST

/* No images, no outputs, no channels: nothing to do, or zeros. */
START_TEST(empty_shapes) {
    float dummy = 0.0f;
    spartan_window none = {0, 4, 4, 2, 3, 3, 1, 1};
    spartan_tensor *e = fx_upload(&dummy, 0, 2), *wt = fx_matrix(18, 3),
                   *ey = fx_upload(&dummy, 0, 3);
    ok(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &none, e, wt, ey));
    spartan_window w = {1, 4, 4, 2, 3, 3, 1, 1};
    spartan_tensor *x = fx_matrix(16, 2), *w0 = fx_upload(&dummy, 18, 0),
                   *y0 = fx_upload(&dummy, 16, 0);
    ok(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &w, x, w0, y0));
    spartan_window nochan = {1, 4, 4, 0, 3, 3, 1, 1};
    spartan_tensor *x0 = fx_upload(&dummy, 16, 0), *wc = fx_upload(&dummy, 0, 3);
    spartan_tensor *y = fx_nan_matrix(16, 3);
    ok(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &nochan, x0, wc, y));
    float *got = fx_read_all(y);
    for (size_t i = 0; i < 48; i++) ck_assert_msg(got[i] == 0.0f, "y[%zu] = %g", i, (double)got[i]);
    ok(spartan_context_finish(ctx));
    fx_release();
}
END_TEST

static Suite *conv_suite(void) {
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_loop_test(tc, conv_matches_reference, 0, (int)N_CASES);
    tcase_add_test(tc, long_reduction_is_split);
    tcase_add_loop_test(tc, tuned_variants, 0, 3);
    tcase_add_test(tc, broken_family_falls_back);
    tcase_add_test(tc, bad_arguments_are_invalid);
    tcase_add_test(tc, empty_shapes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(conv_suite());
}
