/* Tests of the convolution's backward-by-weight (runtime/ops/conv_dw.c, kernels_cl/conv_dw.cl)
 * against the definition's sums in double (tests/ref, no patch matrix), within
 * th_tol(batch out_h out_w, scale): all four kernels (vectors over input or output channels,
 * dense or sparse) and the public call on 1 x 1, 3 x 3 pad 1, 5 x 5 pad 0 and 2, stride 2 and 3,
 * 1 x 3 and 3 x 1 windows; in_c 1, 3, 5, 17, 32; out_c 1, 5, 6, 16, 64; images of 1 x 1 to
 * 28 x 28; an empty batch (zeros); pixel counts cut into many slices; zeros at 0, 50, 90 and
 * 100 %, in whole pixels and channels, and max-pool's pattern, in x and dY; the scalar and wide
 * kernels and another register block; against im2col + the dense GEMM; the fallback when the
 * conv_dw family is off; refusals. SPARTAN_TEST_SMALL=1 (Oclgrind, rusticl): tiny shapes only. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/conv_dw.h"
#include "ops_fixture.h"
#include "patterns.h"
#include "ref/ref.h"
#include "spartan/spartan.h"

typedef struct {
    spartan_window w;
    size_t out_c;
} dw_case;

/* The first N_TINY are Oclgrind-sized. */
static const dw_case cases[] = {
    {{1, 7, 7, 3, 3, 3, 1, 1}, 5},     /* 3 x 3 pad 1 */
    {{3, 7, 7, 1, 1, 1, 1, 0}, 1},     /* 1 x 1, one channel, one output */
    {{1, 7, 7, 17, 5, 5, 1, 0}, 5},    /* 5 x 5 pad 0, channels past a vector */
    {{2, 7, 7, 3, 5, 5, 1, 2}, 1},     /* 5 x 5 pad 2 */
    {{1, 7, 7, 3, 3, 3, 2, 1}, 5},     /* stride 2 */
    {{1, 8, 7, 5, 3, 3, 3, 0}, 6},     /* stride 3 */
    {{1, 7, 7, 3, 1, 3, 1, 1}, 5},     /* 1 x 3 */
    {{2, 7, 6, 17, 3, 1, 2, 1}, 1},    /* 3 x 1, stride 2 */
    {{1, 1, 1, 3, 3, 3, 1, 1}, 5},     /* a 1 x 1 image, all padding but the centre */
    {{1, 1, 1, 17, 1, 1, 1, 0}, 64},   /* a 1 x 1 image, 1 x 1 window: an outer product */
    {{0, 7, 7, 3, 3, 3, 1, 1}, 5},     /* no images: zeros */
    {{2, 5, 19, 1, 5, 5, 1, 2}, 6},    /* one channel, rows of 19: the row kernel's loads */
    {{3, 28, 28, 1, 5, 5, 1, 2}, 6},   /* lenet5's first convolution: 2,352 pixels */
    {{3, 14, 14, 6, 5, 5, 1, 0}, 16},  /* lenet5's second */
    {{3, 28, 28, 3, 3, 3, 1, 1}, 64},  /* 64 outputs */
    {{2, 14, 14, 32, 3, 3, 1, 1}, 64}, /* vgg-small-like */
    {{1, 28, 28, 17, 5, 5, 2, 0}, 64}, /* 5 x 5 pad 0 stride 2 */
    {{3, 7, 7, 17, 1, 3, 1, 0}, 64},   /* 1 x 3 pad 0 */
    {{1, 28, 28, 17, 3, 1, 1, 1}, 5},  /* 3 x 1 pad 1 */
    {{3, 1, 1, 3, 1, 1, 2, 0}, 5},     /* stride past a 1 x 1 image */
    {{2, 13, 11, 5, 3, 3, 3, 2}, 7},   /* stride 3 pad 2 */
    {{8, 30, 30, 16, 3, 3, 1, 1}, 16}, /* 7,200 pixels: many slices */
};
#define N_CASES (sizeof cases / sizeof cases[0])
#define N_TINY  12

/* The kernels: each orientation on both paths, then the public call (its own pick). */
typedef struct {
    sp_dw_orient orient;
    spartan_path path;
    const char *name;
} variant;
static const variant variants[] = {
    {SP_DW_CVEC, SPARTAN_PATH_DENSE, "cvec dense"},
    {SP_DW_CVEC, SPARTAN_PATH_SPARSE, "cvec sparse"},
    {SP_DW_OCVEC, SPARTAN_PATH_DENSE, "ocvec dense"},
    {SP_DW_OCVEC, SPARTAN_PATH_SPARSE, "ocvec sparse"},
    {SP_DW_ROWS, SPARTAN_PATH_DENSE, "rows dense"},
    {SP_DW_ROWS, SPARTAN_PATH_SPARSE, "rows sparse"},
    {SP_DW_AUTO, SPARTAN_PATH_DENSE, "public dense"},
    {SP_DW_AUTO, SPARTAN_PATH_SPARSE, "public sparse"},
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

static void describe(char *buf, size_t len, const dw_case *c, const char *extra) {
    const spartan_window *w = &c->w;
    snprintf(buf, len, "conv_dw b=%zu %zux%zux%zu k=%zux%zu s=%zu p=%zu out_c=%zu %s", w->batch,
             w->in_h, w->in_w, w->in_c, w->k_h, w->k_w, w->stride, w->pad, c->out_c, extra);
}

static size_t out_pixels(const spartan_window *w) {
    return w->batch * ref_window_out(w->in_h, w->k_h, w->stride, w->pad) *
           ref_window_out(w->in_w, w->k_w, w->stride, w->pad);
}

/* One run of variant v into a NaN-filled dW, read back. */
static float *run(const variant *v, const spartan_window *w, spartan_tensor *tx,
                  spartan_tensor *tdy, size_t patch, size_t out_c) {
    spartan_tensor *tdw = fx_nan_matrix(patch, out_c);
    if (v->orient == SP_DW_AUTO)
        ok(spartan_conv2d_backward_weight(ctx, v->path, w, tx, tdy, tdw));
    else
        ok(sp_conv_dw(ctx, v->path, v->orient, w, tx, tdy, tdw));
    return fx_read_all(tdw);
}

/* x and dY filled with pattern k at zero fraction s (x by image pixel and channel, dY by output
 * pixel and channel), every variant against the reference; with against_gemm, the public call
 * also against im2col + the dense GEMM. */
static void check_case(const dw_case *c, pat_kind k, double s, uint64_t seed, int against_gemm) {
    const spartan_window *w = &c->w;
    char what[200];
    size_t pix = w->batch * w->in_h * w->in_w, image = pix * w->in_c;
    size_t rows = out_pixels(w), patch = w->k_h * w->k_w * w->in_c, outs = patch * c->out_c;
    float *x = fx_floats(image), *dy = fx_floats(rows * c->out_c);
    pat_fill(x, pix, w->in_c, k, s, 1, seed);
    pat_fill(dy, rows, c->out_c, k, s, 1, seed + 1);
    double *want = fx_doubles(outs);
    ref_conv2d_backward_weight(want, x, dy, w, c->out_c);
    double tol = th_tol(rows, fx_max_abs(x, image) * fx_max_abs(dy, rows * c->out_c));
    spartan_tensor *tx = fx_upload(x, pix, w->in_c), *tdy = fx_upload(dy, rows, c->out_c);
    for (size_t i = 0; i < N_VARIANTS; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, "%s %s %.0f%% zeros", variants[i].name, pat_name(k),
                 100.0 * s);
        describe(what, sizeof what, c, extra);
        float *got = run(&variants[i], w, tx, tdy, patch, c->out_c);
        fx_assert_close(got, want, outs, tol, what);
    }
    if (!against_gemm || rows == 0) return;
    spartan_tensor *tcols = fx_matrix(rows, patch), *tdw = fx_nan_matrix(patch, c->out_c);
    ok(spartan_im2col(ctx, w, tx, tcols));
    ok(spartan_gemm_dense(ctx, SPARTAN_GEMM_BEST, 1, 0, 1.0f, tcols, tdy, 0.0f, tdw));
    float *gemm = fx_read_all(tdw), *got = run(&variants[6], w, tx, tdy, patch, c->out_c);
    double *as_double = fx_doubles(outs);
    for (size_t i = 0; i < outs; i++) as_double[i] = gemm[i];
    describe(what, sizeof what, c, "vs im2col + GEMM");
    fx_assert_close(got, as_double, outs, 2.0 * tol, what);
}

START_TEST(dw_matches_reference) {
    if (small && (size_t)_i >= N_TINY) return;
    check_case(&cases[_i], PAT_RANDOM, 0.5, SEED(1, _i), 1);
    fx_release();
}
END_TEST

/* Zeros the sparse kernels skip, in every arrangement: none, half, nine in ten, all; whole
 * pixels and channels; at most one non-zero per 2 x 2 window of dY's rows (max-pool's
 * backward). On a shape of each orientation. */
START_TEST(sparsity_patterns) {
    static const struct {
        pat_kind k;
        double s;
    } pats[] = {{PAT_RANDOM, 0.0},   {PAT_RANDOM, 0.5},  {PAT_RANDOM, 0.9},   {PAT_RANDOM, 1.0},
                {PAT_DEADROWS, 0.5}, {PAT_CLUSTER, 0.7}, {PAT_PREPOOL, 0.85}, {PAT_DEADROWS, 0.95}};
    const dw_case big[] = {{{2, 14, 14, 32, 3, 3, 1, 1}, 32}, {{2, 28, 28, 1, 5, 5, 1, 2}, 6}};
    const dw_case tiny[] = {{{1, 6, 5, 17, 3, 3, 1, 1}, 5}, {{1, 6, 6, 1, 5, 5, 1, 2}, 6}};
    for (size_t p = 0; p < sizeof pats / sizeof pats[0]; p++) {
        for (size_t i = 0; i < 2; i++)
            check_case(small ? &tiny[i] : &big[i], pats[p].k, pats[p].s, SEED(2, p * 2 + i), 0);
        fx_release();
    }
}
END_TEST

/* The same inputs twice: the same bits (slices summed in a fixed order, no atomics). */
START_TEST(results_are_deterministic) {
    const dw_case c = {{2, 9, 9, 19, 3, 3, 1, 1}, 21};
    size_t pix = 2 * 81, rows = out_pixels(&c.w), patch = 9 * 19;
    float *x = fx_random_floats(pix * 19, -1.0f, 1.0f, SEED(3, 0));
    float *dy = fx_random_floats(rows * 21, -1.0f, 1.0f, SEED(3, 1));
    spartan_tensor *tx = fx_upload(x, pix, 19), *tdy = fx_upload(dy, rows, 21);
    for (size_t i = 0; i < N_VARIANTS; i++) {
        float *a = run(&variants[i], &c.w, tx, tdy, patch, 21);
        float *b = run(&variants[i], &c.w, tx, tdy, patch, 21);
        fx_assert_same(a, b, patch * 21, variants[i].name);
    }
    fx_release();
}
END_TEST

/* A lowered LOOP_MAX cuts even short walks into many slices (more than the 64 a split sums at
 * once on the larger shapes). */
START_TEST(many_slices) {
    th_context_with_tune(&ctx, "LOOP_MAX=1024");
    const dw_case deep[] = {
        {{1, 9, 9, 40, 3, 3, 1, 1}, 5}, /* 81 pixels in slices of a few */
        {{2, 20, 20, 1, 5, 5, 1, 2}, 3},
        {{3, 16, 16, 17, 3, 3, 1, 1}, 20},
    };
    for (size_t i = 0; i < (small ? 1u : 3u); i++)
        check_case(&deep[i], PAT_RANDOM, 0.5, SEED(4, i), 0);
    fx_release();
}
END_TEST

/* The scalar and wide kernels, and the register block of 3 x 3 vectors. */
START_TEST(tuned_variants) {
    static const char *const tunes[] = {"VEC=1", "VEC=16", "GEMM_RB=3,GEMM_NB=3,STRIP_COLS=3"};
    th_context_with_tune(&ctx, tunes[_i]);
    for (size_t i = 0; i < N_TINY; i += 2) {
        check_case(&cases[i], PAT_RANDOM, 0.5, SEED(5, i), 0);
        fx_release();
    }
}
END_TEST

/* With conv_dw.cl broken, the family fails its validation and both paths still compute right,
 * through im2col and the dense GEMM. */
START_TEST(broken_family_falls_back) {
    fx_break_family("conv_dw", "floatv t = (floatv)(alpha)*acc;",
                    "floatv t = (floatv)(alpha)*acc + (floatv)(0.5f);", "im2col");
    for (size_t i = 0; i < N_TINY; i += 3) {
        check_case(&cases[i], PAT_RANDOM, 0.5, SEED(6, i), 1);
        fx_release();
    }
}
END_TEST

/* NULLs, an unknown path, sizes that do not match, windows that do not fit, an output over an
 * input, other contexts: INVALID_ARGUMENT with a message, and dW not written. */
START_TEST(bad_arguments_are_invalid) {
    spartan_window w = {2, 4, 4, 2, 3, 3, 1, 1}; /* out 4 x 4: dy 32 x out_c, patch 18 */
    const spartan_path D = SPARTAN_PATH_DENSE;
    float host[64] = {0};
    spartan_tensor *x = fx_upload(host, 32, 2), *dy = fx_matrix(32, 3), *dw = fx_nan_matrix(18, 3);
    ck_assert_int_eq(spartan_conv2d_backward_weight(NULL, D, &w, x, dy, dw), INV);
    ck_assert_int_eq(spartan_conv2d_backward_weight(ctx, D, NULL, x, dy, dw), INV);
    ck_assert_int_eq(spartan_conv2d_backward_weight(ctx, D, &w, NULL, dy, dw), INV);
    ck_assert_int_eq(spartan_conv2d_backward_weight(ctx, D, &w, x, NULL, dw), INV);
    ck_assert_int_eq(spartan_conv2d_backward_weight(ctx, D, &w, x, dy, NULL), INV);
    ck_assert_int_eq(spartan_conv2d_backward_weight(ctx, (spartan_path)2, &w, x, dy, dw), INV);
    ck_assert(strstr(spartan_last_error(ctx), "unknown path 2") != NULL);
    ck_assert_int_eq(spartan_conv2d_backward_weight(ctx, D, &w, fx_matrix(31, 2), dy, dw), INV);
    ck_assert(strstr(spartan_last_error(ctx), "x has 62 elements") != NULL);
    ck_assert_int_eq(spartan_conv2d_backward_weight(ctx, D, &w, x, fx_matrix(31, 3), dw), INV);
    ck_assert(strstr(spartan_last_error(ctx), "dy is 31x3") != NULL);
    ck_assert_int_eq(spartan_conv2d_backward_weight(ctx, D, &w, x, dy, fx_matrix(17, 3)), INV);
    ck_assert(strstr(spartan_last_error(ctx), "dweight is 17x3") != NULL);
    ck_assert_int_eq(spartan_conv2d_backward_weight(ctx, D, &w, x, dy, fx_matrix(18, 4)), INV);
    ck_assert(strstr(spartan_last_error(ctx), "dweight is 18x4") != NULL);
    spartan_window bad = w;
    bad.stride = 0;
    ck_assert_int_eq(spartan_conv2d_backward_weight(ctx, D, &bad, x, dy, dw), INV);
    bad = w;
    bad.pad = 0;
    bad.k_h = 5; /* taller than the image */
    ck_assert_int_eq(
        spartan_conv2d_backward_weight(ctx, D, &bad, x, fx_matrix(0, 3), fx_matrix(30, 3)), INV);
    bad = w;
    bad.k_w = 0;
    ck_assert_int_eq(
        spartan_conv2d_backward_weight(ctx, D, &bad, x, fx_matrix(32, 3), fx_matrix(0, 3)), INV);
    /* dW over an input: a 1 x 1 window on one channel makes dW 1 x out_c, x 1 x 16 fits it
     * with out_c = 16; on a 1 x 1 image dy is 1 x out_c too */
    spartan_window one = {1, 4, 4, 1, 1, 1, 1, 0};
    spartan_tensor *row = fx_matrix(1, 16), *d16 = fx_matrix(16, 16);
    ck_assert_int_eq(spartan_conv2d_backward_weight(ctx, SPARTAN_PATH_SPARSE, &one, row, d16, row),
                     INV);
    ck_assert(strstr(spartan_last_error(ctx), "shares its buffer with x") != NULL);
    spartan_window dot = {1, 1, 1, 1, 1, 1, 1, 0};
    spartan_tensor *x1 = fx_matrix(1, 1), *d1 = fx_matrix(1, 16);
    ck_assert_int_eq(spartan_conv2d_backward_weight(ctx, D, &dot, x1, d1, d1), INV);
    ck_assert(strstr(spartan_last_error(ctx), "shares its buffer with dy") != NULL);
    /* a tensor of another context */
    spartan_context *other;
    ok(spartan_context_create(NULL, &other));
    spartan_tensor *ox = th_matrix(other, 32, 2);
    ck_assert_int_eq(spartan_conv2d_backward_weight(ctx, D, &w, ox, dy, dw), INV);
    ck_assert(strstr(spartan_last_error(ctx), "another context") != NULL);
    spartan_tensor_destroy(ox);
    spartan_context_destroy(other);
    /* dW untouched by every refusal */
    float *got = fx_read_all(dw);
    for (size_t i = 0; i < 54; i++) ck_assert_msg(isnan(got[i]), "dw[%zu] = %g", i, (double)got[i]);
    fx_release();
}
END_TEST

/* No images: zeros; no outputs or no channels: nothing to do. */
START_TEST(empty_shapes) {
    float dummy = 0.0f;
    spartan_window none = {0, 4, 4, 2, 3, 3, 1, 1};
    spartan_tensor *e = fx_upload(&dummy, 0, 2), *ey = fx_upload(&dummy, 0, 3);
    for (int path = 0; path < 2; path++) {
        spartan_tensor *dw = fx_nan_matrix(18, 3);
        ok(spartan_conv2d_backward_weight(ctx, (spartan_path)path, &none, e, ey, dw));
        float *got = fx_read_all(dw);
        for (size_t i = 0; i < 54; i++)
            ck_assert_msg(got[i] == 0.0f, "dw[%zu] = %g", i, (double)got[i]);
    }
    spartan_window w = {1, 4, 4, 2, 3, 3, 1, 1};
    spartan_tensor *x = fx_matrix(16, 2), *dy0 = fx_upload(&dummy, 16, 0),
                   *dw0 = fx_upload(&dummy, 18, 0);
    ok(spartan_conv2d_backward_weight(ctx, SPARTAN_PATH_DENSE, &w, x, dy0, dw0));
    spartan_window nochan = {1, 4, 4, 0, 3, 3, 1, 1};
    spartan_tensor *x0 = fx_upload(&dummy, 16, 0), *dy = fx_matrix(16, 3),
                   *dwc = fx_upload(&dummy, 0, 3);
    ok(spartan_conv2d_backward_weight(ctx, SPARTAN_PATH_SPARSE, &nochan, x0, dy, dwc));
    ok(spartan_context_finish(ctx));
    fx_release();
}
END_TEST

/* The family builds and passes its check on the device: every other test would pass through
 * the fallback too. */
START_TEST(family_is_on) {
    spartan_family_status fs;
    int found = 0;
    for (unsigned i = 0; spartan_context_family(ctx, i, &fs) == SPARTAN_OK; i++) {
        if (strcmp(fs.name, "conv_dw") != 0) continue;
        found = 1;
        ck_assert_msg(fs.enabled, "conv_dw is off: %s", fs.why);
    }
    ck_assert(found);
}
END_TEST

/* The documented pick, with POCL's AVX-512 blocking (VEC 16, RB 8) and a GPU's (VEC 4, RB 4):
 * vectors over the input channels when in_c fills them, over the output channels for lenet5's
 * second convolution and vgg-small's first (rows fill it only a little better, not enough to pay
 * for dY's transpose), over a row's pixels for lenet5's first with VEC 16 (a tie with the output
 * channels' with VEC 4, which they keep), never with stride 2 or two input channels. */
START_TEST(orientation_follows_the_shape) {
    const spartan_window vgg = {64, 28, 28, 32, 3, 3, 1, 1}, vgg4 = {64, 14, 14, 64, 3, 3, 1, 1};
    const spartan_window le1 = {64, 28, 28, 1, 5, 5, 1, 2}, le2 = {64, 14, 14, 6, 5, 5, 1, 0};
    const spartan_window le1s2 = {64, 28, 28, 1, 5, 5, 2, 2}, le1c2 = {64, 28, 28, 2, 5, 5, 1, 2};
    const spartan_window vgg1 = {64, 28, 28, 1, 3, 3, 1, 1};
    for (size_t vec = 4; vec <= 16; vec += 12) {
        size_t rb = vec == 16 ? 8 : 4;
        ck_assert_int_eq(sp_conv_dw_pick(vec, rb, &vgg, 32), SP_DW_CVEC);
        ck_assert_int_eq(sp_conv_dw_pick(vec, rb, &vgg, 64), SP_DW_CVEC);
        ck_assert_int_eq(sp_conv_dw_pick(vec, rb, &vgg4, 64), SP_DW_CVEC);
        ck_assert_int_eq(sp_conv_dw_pick(vec, rb, &le1, 6), vec == 16 ? SP_DW_ROWS : SP_DW_OCVEC);
        ck_assert_int_eq(sp_conv_dw_pick(vec, rb, &le2, 16), SP_DW_OCVEC);
        ck_assert_int_eq(sp_conv_dw_pick(vec, rb, &le1s2, 6), SP_DW_OCVEC);
        ck_assert_int_eq(sp_conv_dw_pick(vec, rb, &le1c2, 6), SP_DW_OCVEC);
        ck_assert_int_eq(sp_conv_dw_pick(vec, rb, &vgg1, 32), SP_DW_OCVEC);
    }
}
END_TEST

static Suite *conv_dw_suite(void) {
    Suite *s = suite_create("conv_dw");
    TCase *tc = tcase_create("conv_dw");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, family_is_on);
    tcase_add_loop_test(tc, dw_matches_reference, 0, (int)N_CASES);
    tcase_add_test(tc, sparsity_patterns);
    tcase_add_test(tc, results_are_deterministic);
    tcase_add_test(tc, many_slices);
    tcase_add_loop_test(tc, tuned_variants, 0, 3);
    tcase_add_test(tc, broken_family_falls_back);
    tcase_add_test(tc, bad_arguments_are_invalid);
    tcase_add_test(tc, empty_shapes);
    tcase_add_test(tc, orientation_follows_the_shape);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(conv_dw_suite());
}
