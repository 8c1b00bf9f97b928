/* Tests of the convolution's backward-by-input (runtime/ops/conv_dx.c, kernels_cl/conv_dx.cl)
 * against a direct double reference (tests/ref: the scatter of each dy element, no col2im),
 * within th_tol(k_h k_w out_c, scale), on both paths: 1 x 1, 3 x 3 pad 1, 5 x 5 pad 0 and 2,
 * strides 2 and 3, non-square 1 x 3 and 3 x 1 windows; in_c 1, 3, 7, 17, 33, 40; out_c 1, 5, 33,
 * 40, 64 (the sparse stride-1 kernel, conv.cl's conv_strip_sparse on dy with the window turned
 * round: dy's chunks of 32 channels whole and partial, dx's blocks padded); images of 1 to 28;
 * an empty batch; dy with 0, 50 and 90 % zeros and with whole pixels zero; each run twice for the
 * same bits; the adjoint identity with the forward; a reduction cut into slices; the scalar
 * (VEC=1) and wide (VEC=16) kernels, a 3 x 3 register block, a strip of 3 columns; the fallback
 * when the conv_dx family is off; and
 * refusals. SPARTAN_TEST_SMALL=1 (Oclgrind, rusticl): tiny shapes only. */
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
} dx_case;

/* The first N_TINY are Oclgrind-sized. */
static const dx_case cases[] = {
    {{1, 7, 7, 3, 3, 3, 1, 1}, 5},     /* 3 x 3 pad 1 */
    {{3, 7, 7, 1, 1, 1, 1, 0}, 1},     /* 1 x 1, one channel, one output */
    {{1, 7, 7, 17, 5, 5, 1, 0}, 5},    /* 5 x 5 pad 0, channels past a vector */
    {{2, 7, 7, 3, 5, 5, 1, 2}, 1},     /* 5 x 5 pad 2 */
    {{1, 7, 7, 3, 3, 3, 2, 1}, 5},     /* stride 2 */
    {{1, 7, 8, 3, 1, 3, 1, 1}, 5},     /* 1 x 3 */
    {{2, 7, 7, 17, 3, 1, 2, 1}, 1},    /* 3 x 1, stride 2 */
    {{1, 8, 7, 1, 2, 2, 3, 0}, 5},     /* stride 3 past a 2 x 2 window: pixels no window covers */
    {{1, 1, 1, 3, 3, 3, 1, 1}, 5},     /* a 1 x 1 image, all padding but the centre */
    {{0, 7, 7, 3, 3, 3, 1, 1}, 5},     /* no images */
    {{1, 1, 1, 17, 1, 1, 1, 0}, 64},   /* a 1 x 1 image, 1 x 1 window: a matrix product */
    {{3, 28, 28, 1, 5, 5, 1, 2}, 6},   /* lenet5's first convolution */
    {{2, 14, 14, 6, 5, 5, 1, 0}, 16},  /* lenet5's second */
    {{2, 14, 14, 32, 3, 3, 1, 1}, 64}, /* vgg-small-like */
    {{1, 28, 28, 17, 5, 5, 2, 0}, 64}, /* 5 x 5 pad 0 stride 2 */
    {{3, 7, 7, 17, 1, 3, 1, 0}, 64},   /* 1 x 3 pad 0 */
    {{1, 28, 28, 17, 3, 1, 1, 1}, 5},  /* 3 x 1 pad 1 */
    {{1, 13, 11, 3, 3, 3, 3, 1}, 17},  /* stride 3 with padding */
    {{3, 1, 1, 3, 1, 1, 2, 0}, 5},     /* stride past a 1 x 1 image */
    {{2, 6, 7, 2, 3, 3, 1, 2}, 5},     /* padding past the window (k - 1 < pad) */
    {{2, 9, 11, 40, 3, 3, 1, 1}, 33},  /* dy in chunks of 32 channels and 1; dx 40 channels */
    {{1, 5, 12, 7, 5, 5, 1, 1}, 64},   /* dy in two whole chunks; 7 dx channels, 5 x 5 pad 1 */
    {{2, 6, 9, 33, 3, 3, 1, 0}, 40},   /* pad 0: the turned-round window pads 2 */
};
#define N_CASES (sizeof cases / sizeof cases[0])
#define N_TINY  11

/* The zeros of dy: none, half, 90 % at random, or whole pixels (70 % of them; a third of the
 * rest's elements) as max-pool's backward and dead units leave them. */
enum { Z_NONE, Z_HALF, Z_MOST, Z_PIXELS, Z_COUNT };
static const char *const z_names[Z_COUNT] = {"0 % zeros", "50 % zeros", "90 % zeros",
                                             "zero pixels"};

static float *make_dy(size_t pixels, size_t out_c, int zeros, uint64_t seed) {
    float *dy = fx_random_floats(pixels * out_c, -2.0f, 2.0f, seed);
    th_rng r;
    th_rng_init(&r, seed ^ 0x5eed);
    static const float frac[Z_COUNT] = {0.0f, 0.5f, 0.9f, 0.33f};
    for (size_t p = 0; p < pixels; p++) {
        int dead = zeros == Z_PIXELS && th_rng_uniform(&r, 0.0f, 1.0f) < 0.7f;
        for (size_t j = 0; j < out_c; j++)
            if (dead || th_rng_uniform(&r, 0.0f, 1.0f) < frac[zeros]) dy[p * out_c + j] = 0.0f;
    }
    return dy;
}

static void describe(char *buf, size_t len, const dx_case *c, int path, int zeros) {
    const spartan_window *w = &c->w;
    snprintf(buf, len, "conv_dx %s b=%zu %zux%zux%zu k=%zux%zu s=%zu p=%zu out_c=%zu, %s",
             path ? "sparse" : "dense", w->batch, w->in_h, w->in_w, w->in_c, w->k_h, w->k_w,
             w->stride, w->pad, c->out_c, z_names[zeros]);
}

/* Both paths on dy with the given zeros, against the reference, on a dx of NaNs; each path run
 * again for the same bits (not on the simulators: they are slow, and the order of the sums is
 * fixed by the code, not the device). */
static void check_case(const dx_case *c, int zeros, uint64_t seed) {
    const spartan_window *w = &c->w;
    size_t oh = ref_window_out(w->in_h, w->k_h, w->stride, w->pad);
    size_t ow = ref_window_out(w->in_w, w->k_w, w->stride, w->pad);
    size_t pix = w->batch * w->in_h * w->in_w, image = pix * w->in_c;
    size_t rows = w->batch * oh * ow, patch = w->k_h * w->k_w * w->in_c;
    float *dy = make_dy(rows, c->out_c, zeros, seed);
    float *wt = fx_random_floats(patch * c->out_c, -1.0f, 1.0f, seed + 1);
    double *want = fx_doubles(image);
    ref_conv2d_backward_input(want, dy, wt, w, c->out_c);
    double tol = th_tol(w->k_h * w->k_w * c->out_c,
                        fx_max_abs(dy, rows * c->out_c) * fx_max_abs(wt, patch * c->out_c));
    spartan_tensor *tdy = fx_upload(dy, rows, c->out_c), *tw = fx_upload(wt, patch, c->out_c);
    for (int path = 0; path < 2; path++) {
        char what[200];
        describe(what, sizeof what, c, path, zeros);
        float *got[2];
        for (int run = 0; run < (small ? 1 : 2); run++) {
            spartan_tensor *tdx = fx_nan_matrix(pix, w->in_c);
            ok(spartan_conv2d_backward_input(ctx, (spartan_path)path, w, tdy, tw, tdx));
            got[run] = fx_read_all(tdx);
        }
        fx_assert_close(got[0], want, image, tol, what);
        if (!small) fx_assert_same(got[1], got[0], image, what);
    }
    /* through a ReLU before the convolution: dx kept only where its input x (the ReLU's output)
     * is positive; x holds negatives, zeros of both signs and a NaN or two */
    float *x = fx_random_floats(image, -1.0f, 1.0f, seed + 2);
    for (size_t i = 0; i < image; i += 7) x[i] = i % 2 ? 0.0f : -0.0f;
    for (size_t i = 5; i < image; i += 61) x[i] = NAN;
    for (size_t i = 0; i < image; i++)
        if (!(x[i] > 0.0f)) want[i] = 0.0;
    spartan_tensor *tx = fx_upload(x, pix, w->in_c);
    for (int path = 0; path < 2; path++) {
        char what[220];
        describe(what, sizeof what, c, path, zeros);
        strcat(what, ", ReLU-masked");
        spartan_tensor *tdx = fx_nan_matrix(pix, w->in_c);
        ok(spartan_conv2d_backward_input_relu(ctx, (spartan_path)path, w, tdy, tw, tx, tdx));
        fx_assert_close(fx_read_all(tdx), want, image, tol, what);
    }
}

/* Whether ctx runs the conv_dx kernels (else the fallback computes, and these tests would not
 * see a kernel that is wrong only where the self-test does not look). */
static int family_enabled(const char *name) {
    spartan_family_status fs;
    for (unsigned i = 0; spartan_context_family(ctx, i, &fs) == SPARTAN_OK; i++)
        if (strcmp(fs.name, name) == 0) return fs.enabled;
    return 0;
}

START_TEST(conv_dx_matches_reference) {
    if (small && (size_t)_i >= N_TINY) return;
    ck_assert_msg(family_enabled("conv_dx"), "conv_dx is off: the kernels are not tested");
    for (int z = 0; z < Z_COUNT; z++) check_case(&cases[_i], z, SEED(1, _i * Z_COUNT + z));
    fx_release();
}
END_TEST

/* The forward, dense (its own tests check its paths). */
static spartan_status forward(const spartan_window *w, const spartan_tensor *x,
                              const spartan_tensor *weight, spartan_tensor *y) {
    return spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, w, x, weight, y);
}

/* <conv_forward(x), dy> = <x, conv_backward_input(dy)>: the backward is the forward's adjoint,
 * within the two results' error bounds weighted by the other operand. */
START_TEST(adjoint_of_the_forward) {
    static const dx_case adj[] = {
        {{2, 7, 6, 3, 3, 3, 1, 1}, 5},
        {{1, 9, 8, 17, 3, 2, 2, 1}, 7},
        {{2, 11, 10, 6, 5, 5, 1, 2}, 16},
    };
    for (size_t i = 0; i < (small ? 1 : 3); i++) {
        const spartan_window *w = &adj[i].w;
        size_t out_c = adj[i].out_c, oh = ref_window_out(w->in_h, w->k_h, w->stride, w->pad);
        size_t ow = ref_window_out(w->in_w, w->k_w, w->stride, w->pad);
        size_t pix = w->batch * w->in_h * w->in_w, image = pix * w->in_c;
        size_t rows = w->batch * oh * ow, patch = w->k_h * w->k_w * w->in_c;
        float *x = fx_random_floats(image, -1.0f, 1.0f, SEED(5, 3 * i));
        float *wt = fx_random_floats(patch * out_c, -1.0f, 1.0f, SEED(5, 3 * i + 1));
        float *dy = make_dy(rows, out_c, Z_HALF, SEED(5, 3 * i + 2));
        spartan_tensor *tx = fx_upload(x, pix, w->in_c), *tw = fx_upload(wt, patch, out_c);
        spartan_tensor *tdy = fx_upload(dy, rows, out_c), *ty = fx_nan_matrix(rows, out_c);
        ok(forward(w, tx, tw, ty));
        float *y = fx_read_all(ty);
        double sum_dy = 0.0, sum_x = 0.0, lhs = 0.0;
        for (size_t j = 0; j < rows * out_c; j++) {
            lhs += (double)y[j] * dy[j];
            sum_dy += fabs(dy[j]);
        }
        for (size_t j = 0; j < image; j++) sum_x += fabs(x[j]);
        double wmax = fx_max_abs(wt, patch * out_c);
        double tol = th_tol(patch, fx_max_abs(x, image) * wmax) * sum_dy +
                     th_tol(w->k_h * w->k_w * out_c, fx_max_abs(dy, rows * out_c) * wmax) * sum_x;
        for (int path = 0; path < 2; path++) {
            spartan_tensor *tdx = fx_nan_matrix(pix, w->in_c);
            ok(spartan_conv2d_backward_input(ctx, (spartan_path)path, w, tdy, tw, tdx));
            float *dx = fx_read_all(tdx);
            double rhs = 0.0;
            for (size_t j = 0; j < image; j++) rhs += (double)x[j] * dx[j];
            ck_assert_msg(fabs(lhs - rhs) <= tol, "case %zu, %s: <y, dy> = %.9g, <x, dx> = %.9g", i,
                          path ? "sparse" : "dense", lhs, rhs);
        }
    }
    fx_release();
}
END_TEST

/* Reductions longer than one work-item may walk: cut into slices and summed, and the sparse
 * path's lists cut into chunks of output channels (a lowered LOOP_MAX makes short ones long, so
 * the tiny runs cut too). */
START_TEST(long_reduction_is_split) {
    th_context_with_tune(&ctx, "LOOP_MAX=1024");
    ck_assert(family_enabled("conv_dx"));
    const dx_case deep[] = {
        {{1, 3, 4, 5, 3, 3, 1, 1}, 300}, /* 2,700 reduction indices; chunks of output channels */
        {{2, 4, 3, 1, 5, 5, 1, 2}, 40},  /* one channel: several positions per slice */
        {{1, 5, 5, 3, 2, 2, 2, 0}, 250}, /* stride 2 */
    };
    for (size_t i = 0; i < 3; i++) {
        check_case(&deep[i], Z_NONE, SEED(2, 2 * i));
        check_case(&deep[i], Z_MOST, SEED(2, 2 * i + 1));
    }
    fx_release();
}
END_TEST

/* The scalar and wide kernels, the register block of 3 pixels x 3 vectors, and the sparse
 * kernel's strip of 3 output columns x 3 vectors. */
START_TEST(tuned_variants) {
    static const char *const tunes[] = {"VEC=1", "VEC=16", "GEMM_RB=3,GEMM_NB=3,STRIP_COLS=3"};
    th_context_with_tune(&ctx, tunes[_i]);
    ck_assert_msg(family_enabled("conv_dx"), "conv_dx is off with %s", tunes[_i]);
    for (size_t i = 0; i < N_TINY; i += 2) check_case(&cases[i], Z_HALF, SEED(3, i));
    fx_release();
}
END_TEST

/* With conv_dx.cl broken, the family fails its validation and both paths still compute right,
 * through the dense GEMM and col2im. Not on the simulators: a context with a new kernel
 * directory builds and validates every family again (most of a minute on Oclgrind), for kernels
 * the gemm_dense and nn_ops suites check there already. */
START_TEST(broken_family_falls_back) {
    if (small) return;
    fx_break_family("conv_dx", "floatv o = (floatv)(alpha)*acc[v];",
                    "floatv o = (floatv)(alpha)*acc[v] + (floatv)(0.5f);", "col2im");
    for (size_t i = 0; i < N_TINY; i += 3) check_case(&cases[i], Z_HALF, SEED(4, i));
    fx_release();
}
END_TEST

/* NULLs, an unknown path, sizes that do not match, windows that do not fit, outputs over inputs,
 * other contexts: INVALID_ARGUMENT with a message, and dx not written. */
START_TEST(bad_arguments_are_invalid) {
    spartan_window w = {2, 4, 4, 2, 3, 3, 1, 1}; /* out 4 x 4: dy 32 x out_c, patch 18 */
    const spartan_path D = SPARTAN_PATH_DENSE;
    spartan_tensor *dy = fx_matrix(32, 3), *wt = fx_matrix(18, 3), *dx = fx_nan_matrix(32, 2);
    ck_assert_int_eq(spartan_conv2d_backward_input(NULL, D, &w, dy, wt, dx), INV);
    ck_assert_int_eq(spartan_conv2d_backward_input(ctx, D, NULL, dy, wt, dx), INV);
    ck_assert_int_eq(spartan_conv2d_backward_input(ctx, D, &w, NULL, wt, dx), INV);
    ck_assert_int_eq(spartan_conv2d_backward_input(ctx, D, &w, dy, NULL, dx), INV);
    ck_assert_int_eq(spartan_conv2d_backward_input(ctx, D, &w, dy, wt, NULL), INV);
    ck_assert_int_eq(spartan_conv2d_backward_input(ctx, (spartan_path)2, &w, dy, wt, dx), INV);
    ck_assert(strstr(spartan_last_error(ctx), "unknown path 2") != NULL);
    ck_assert_int_eq(spartan_conv2d_backward_input(ctx, D, &w, dy, wt, fx_matrix(31, 2)), INV);
    ck_assert(strstr(spartan_last_error(ctx), "dx has 62 elements") != NULL);
    ck_assert_int_eq(spartan_conv2d_backward_input(ctx, D, &w, dy, fx_matrix(17, 3), dx), INV);
    ck_assert(strstr(spartan_last_error(ctx), "the weight is 17x3") != NULL);
    ck_assert_int_eq(spartan_conv2d_backward_input(ctx, D, &w, fx_matrix(32, 4), wt, dx), INV);
    ck_assert_int_eq(spartan_conv2d_backward_input(ctx, D, &w, fx_matrix(31, 3), wt, dx), INV);
    ck_assert(strstr(spartan_last_error(ctx), "dy is 31x3") != NULL);
    spartan_window bad = w;
    bad.stride = 0;
    ck_assert_int_eq(spartan_conv2d_backward_input(ctx, D, &bad, dy, wt, dx), INV);
    bad = w;
    bad.pad = 0;
    bad.k_h = 5; /* taller than the image */
    ck_assert_int_eq(
        spartan_conv2d_backward_input(ctx, D, &bad, fx_matrix(0, 3), fx_matrix(30, 3), dx), INV);
    bad = w;
    bad.k_w = 0;
    ck_assert_int_eq(
        spartan_conv2d_backward_input(ctx, D, &bad, fx_matrix(32, 3), fx_matrix(0, 3), dx), INV);
    /* dx over an input */
    spartan_window one = {1, 4, 4, 4, 1, 1, 1, 0}; /* dy 16 x 4, weight 4 x 4, dx 16 x 4 */
    spartan_tensor *sq = fx_matrix(16, 4), *w4 = fx_matrix(4, 4);
    for (int path = 0; path < 2; path++) {
        ck_assert_int_eq(spartan_conv2d_backward_input(ctx, path, &one, sq, w4, sq), INV);
        ck_assert(strstr(spartan_last_error(ctx), "shares its buffer") != NULL);
        ck_assert_int_eq(spartan_conv2d_backward_input(ctx, path, &one, sq, w4, w4), INV);
    }
    /* the ReLU's mask: NULL, another size, dx's own buffer */
    spartan_tensor *x = fx_matrix(32, 2);
    ck_assert_int_eq(spartan_conv2d_backward_input_relu(ctx, D, &w, dy, wt, NULL, dx), INV);
    ck_assert_int_eq(spartan_conv2d_backward_input_relu(ctx, D, &w, dy, wt, fx_matrix(31, 2), dx),
                     INV);
    ck_assert(strstr(spartan_last_error(ctx), "x has 62 elements") != NULL);
    ck_assert_int_eq(spartan_conv2d_backward_input_relu(ctx, D, &w, dy, wt, dx, dx), INV);
    ck_assert_int_eq(spartan_conv2d_backward_input_relu(ctx, D, &w, dy, wt, x, NULL), INV);
    /* a tensor of another context */
    spartan_context *other;
    ok(spartan_context_create(NULL, &other));
    spartan_tensor *ody = th_matrix(other, 32, 3);
    ck_assert_int_eq(spartan_conv2d_backward_input(ctx, D, &w, ody, wt, dx), INV);
    ck_assert(strstr(spartan_last_error(ctx), "another context") != NULL);
    spartan_tensor_destroy(ody);
    spartan_context_destroy(other);
    /* dx untouched by every refusal */
    float *got = fx_read_all(dx);
    for (size_t i = 0; i < 64; i++) ck_assert_msg(isnan(got[i]), "dx[%zu] = %g", i, (double)got[i]);
    fx_release();
}
END_TEST

/* No images, no input channels: nothing to do; no output channels: zeros. */
START_TEST(empty_shapes) {
    float dummy = 0.0f;
    for (int path = 0; path < 2; path++) {
        spartan_window none = {0, 4, 4, 2, 3, 3, 1, 1};
        spartan_tensor *e = fx_upload(&dummy, 0, 3), *wt = fx_matrix(18, 3),
                       *edx = fx_upload(&dummy, 0, 2);
        ok(spartan_conv2d_backward_input(ctx, path, &none, e, wt, edx));
        spartan_window nochan = {1, 4, 4, 0, 3, 3, 1, 1};
        spartan_tensor *dy = fx_matrix(16, 3), *wc = fx_upload(&dummy, 0, 3),
                       *dx0 = fx_upload(&dummy, 16, 0);
        ok(spartan_conv2d_backward_input(ctx, path, &nochan, dy, wc, dx0));
        spartan_window w = {1, 4, 4, 2, 3, 3, 1, 1};
        spartan_tensor *dyo = fx_upload(&dummy, 16, 0), *w0 = fx_upload(&dummy, 18, 0);
        spartan_tensor *dx = fx_nan_matrix(16, 2);
        ok(spartan_conv2d_backward_input(ctx, path, &w, dyo, w0, dx));
        float *got = fx_read_all(dx);
        for (size_t i = 0; i < 32; i++)
            ck_assert_msg(got[i] == 0.0f, "dx[%zu] = %g", i, (double)got[i]);
    }
    ok(spartan_context_finish(ctx));
    fx_release();
}
END_TEST

static Suite *conv_dx_suite(void) {
    Suite *s = suite_create("conv_dx");
    TCase *tc = tcase_create("conv_dx");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_loop_test(tc, conv_dx_matches_reference, 0, (int)N_CASES);
    tcase_add_test(tc, adjoint_of_the_forward);
    tcase_add_test(tc, long_reduction_is_split);
    tcase_add_loop_test(tc, tuned_variants, 0, 3);
    tcase_add_test(tc, broken_family_falls_back);
    tcase_add_test(tc, bad_arguments_are_invalid);
    tcase_add_test(tc, empty_shapes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(conv_dx_suite());
}
