/* Tests of the training-step operations (runtime/ops/nn_ops.c, kernels_cl/nn.cl) against
 * tests/ref: softmax + cross-entropy (with and without the gradient, large logits, bad labels);
 * three SGD steps (with and without momentum and weight decay); dropout exactly (mask
 * reproducibility, in place, backward, p = 0 as an identity, the kept fraction). Sizes: 0, 1,
 * VEC + 1, primes; then the scalar (VEC=1) and wide (VEC=16) kernels; bad arguments and empty
 * tensors. The image and layer operations are in test_nn_ops.c.
 * SPARTAN_TEST_SMALL=1 (Oclgrind): tiny shapes only. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops_fixture.h"
#include "ref/ref.h"
#include "spartan/spartan.h"

/* A matrix shape: rows x cols. */
typedef struct {
    size_t rows, cols;
} shape;

/* The loss's error: the maximum's subtraction and the final one round at most |max| +
 * |x[label]| <= 2 M; the sum of K exponentials (each within a few ulps) and its log add about
 * (K + 6) eps of log(sum) <= log K + 1 (the terms are at most 1 and one is 1). So K + 8 eps of
 * 2 M + log K + 1 bounds it. */
static double loss_tol(size_t classes, double m) {
    return th_tol(classes + 8, 2.0 * m + log((double)classes) + 1.0);
}

static void check_softmax(size_t rows, size_t classes, float spread, int grad, uint64_t seed) {
    char what[96];
    snprintf(what, sizeof what, "softmax_xent %zux%zu spread %g%s", rows, classes, (double)spread,
             grad ? "" : " no grad");
    size_t n = rows * classes;
    float *x = fx_random_floats(n, -spread, spread, seed);
    float *labels = fx_random_floats(rows, 0.0f, (float)classes, seed + 1);
    for (size_t r = 0; r < rows; r++) {
        labels[r] = floorf(labels[r]);
        if (labels[r] >= (float)classes) labels[r] = (float)classes - 1.0f;
        /* one row in seven has its label's logit the largest: correct must be 1 there */
        if (r % 7 == 3 && classes) x[r * classes + (size_t)labels[r]] = spread * 1.5f;
    }
    float scale = rows ? 1.0f / (float)rows : 1.0f;
    spartan_tensor *tx = fx_upload(x, rows, classes), *tl = fx_upload(labels, rows, 1);
    spartan_tensor *ts = fx_nan_matrix(rows, 2), *td = grad ? fx_nan_matrix(rows, classes) : NULL;
    ok(spartan_softmax_xent(ctx, tx, tl, scale, td, ts));
    float *stats = fx_read_all(ts);
    double *loss = fx_doubles(rows), *correct = fx_doubles(rows), *wd = fx_doubles(n);
    ref_softmax_xent(loss, correct, grad ? wd : NULL, x, labels, rows, classes, scale);
    double tol = loss_tol(classes, fx_max_abs(x, n));
    for (size_t r = 0; r < rows; r++) {
        ck_assert_msg(isfinite(stats[2 * r]) && fabs(stats[2 * r] - loss[r]) <= tol,
                      "%s: loss[%zu] = %.9g, want %.9g", what, r, (double)stats[2 * r], loss[r]);
        ck_assert_msg(stats[2 * r + 1] == (float)correct[r], "%s: correct[%zu] = %g, want %g", what,
                      r, (double)stats[2 * r + 1], correct[r]);
    }
    if (grad) {
        float *d = fx_read_all(td);
        /* softmax within (K + 8) eps relative (the sum, two exponentials, a division), times
         * scale */
        fx_assert_close(d, wd, n, th_tol(classes + 8, scale), what);
        /* in place (ops.h allows dlogits = logits): the same gradient, bit for bit */
        spartan_tensor *tin = fx_upload(x, rows, classes);
        ok(spartan_softmax_xent(ctx, tin, tl, scale, tin, ts));
        fx_assert_same(fx_read_all(tin), d, n, what);
    }
    fx_release();
}

/* Three steps of SGD against the formula in double, with new gradients every step. */
static void check_sgd(size_t n, float lr, float momentum, float wd, uint64_t seed) {
    char what[96];
    snprintf(what, sizeof what, "sgd_step n=%zu lr=%g m=%g wd=%g", n, (double)lr, (double)momentum,
             (double)wd);
    const size_t steps = 3;
    float *w = fx_random_floats(n, -1.0f, 1.0f, seed), *v = fx_floats(n);
    double *ww = fx_doubles(n), *wv = fx_doubles(n);
    for (size_t i = 0; i < n; i++) {
        v[i] = 0.0f;
        ww[i] = w[i];
        wv[i] = 0.0;
    }
    spartan_tensor *tw = fx_upload(w, 1, n), *tv = fx_upload(v, 1, n), *tg = fx_matrix(1, n);
    double bound = 0.0; /* the largest magnitude any intermediate reaches */
    for (size_t s = 0; s < steps; s++) {
        float *g = fx_random_floats(n, -1.0f, 1.0f, seed + 1 + s);
        ok(spartan_tensor_write(tg, g, n));
        ok(spartan_sgd_step(ctx, tw, tg, tv, lr, momentum, wd));
        ref_sgd_step(ww, wv, g, n, lr, momentum, wd);
        for (size_t i = 0; i < n; i++) {
            double m = fmax(fabs(ww[i]), fabs(wv[i]));
            m = fmax(m, fabs((double)g[i]) + fabs(wd * ww[i]));
            bound = fmax(bound, m);
        }
    }
    float *gw = fx_read_all(tw), *gv = fx_read_all(tv);
    /* six roundings a step; an error in v reaches w in every later step (lr, momentum and wd
     * are at most 1), so the errors of step s count up to steps - s times: 6 steps^2 in all */
    double tol = th_tol(6 * steps * steps, bound);
    fx_assert_close(gw, ww, n, tol, what);
    fx_assert_close(gv, wv, n, tol, what);
    fx_release();
}

/* Dropout on n elements: the mask and values against the reference, the same mask again from
 * the same (seed, counter), and backward applying it. Returns the number of kept elements. */
static size_t check_dropout(size_t n, float p, unsigned long long seed,
                            unsigned long long counter) {
    char what[96];
    snprintf(what, sizeof what, "dropout n=%zu p=%g", n, (double)p);
    float *x = fx_random_floats(n, 0.5f, 2.0f, seed); /* no zeros: a kept element is never 0 */
    double *want = fx_doubles(n);
    ref_dropout(want, x, n, p, seed, counter);
    spartan_tensor *tx = fx_upload(x, 1, n), *ty = fx_nan_matrix(1, n);
    ok(spartan_dropout_forward(ctx, tx, ty, p, seed, counter));
    float *y = fx_read_all(ty);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        int dropped = ref_dropout_dropped(seed, counter, i, p);
        ck_assert_msg(dropped ? y[i] == 0.0f : y[i] != 0.0f, "%s: element %zu %s", what, i,
                      dropped ? "kept, want dropped" : "dropped, want kept");
        kept += !dropped;
    }
    /* one rounded multiplication by 1 / (1 - p), itself rounded */
    fx_assert_close(y, want, n, th_tol(2, 2.0 / (1.0 - p)), what);
    /* the same mask again, in place; and backward applies it to another tensor */
    ok(spartan_dropout_forward(ctx, tx, tx, p, seed, counter));
    float *again = fx_read_all(tx);
    fx_assert_same(again, y, n, what);
    ok(spartan_tensor_write(tx, x, n));
    ok(spartan_dropout_backward(ctx, tx, ty, p, seed, counter));
    float *back = fx_read_all(ty);
    fx_assert_same(back, y, n, what);
    if (p == 0.0f) fx_assert_same(y, x, n, "dropout p=0 is the identity");
    fx_release();
    return kept;
}

/* ---- tests ---------------------------------------------------------------------------------- */

START_TEST(softmax_xent_matches_reference) {
    static const shape sh[] = {{1, 1},  {1, 10}, {7, 3},    {37, 10},   {5, 1000},
                               {0, 10}, {3, 2},  {64, 100}, {50000, 10}};
    size_t n = small ? 7 : sizeof sh / sizeof sh[0];
    for (size_t i = 0; i < n; i++) {
        check_softmax(sh[i].rows, sh[i].cols, 4.0f, 1, SEED(6, i));
        check_softmax(sh[i].rows, sh[i].cols, 4.0f, 0, SEED(7, i));
    }
}
END_TEST

/* Logits of +-1e4: exp would overflow without the maximum's subtraction. */
START_TEST(softmax_xent_large_logits_stay_finite) {
    check_softmax(small ? 9 : 257, 10, 1e4f, 1, SEED(8, 0));
    check_softmax(3, 1000, 1e4f, 1, SEED(8, 1));
}
END_TEST

/* A label outside [0, classes) or not an integer: a NaN loss in its row, the other rows fine. */
START_TEST(softmax_xent_bad_label_gives_nan) {
    const size_t rows = 5, classes = 4;
    float x[20], labels[5] = {1.0f, 4.0f, -1.0f, 2.5f, 3.0f}, stats[10];
    for (size_t i = 0; i < rows * classes; i++) x[i] = (float)(i % 7) * 0.25f;
    spartan_tensor *tx = fx_upload(x, rows, classes), *tl = fx_upload(labels, rows, 1);
    spartan_tensor *ts = fx_nan_matrix(rows, 2), *td = fx_nan_matrix(rows, classes);
    ok(spartan_softmax_xent(ctx, tx, tl, 1.0f, td, ts));
    ok(spartan_tensor_read(ts, stats, 10));
    double loss[5], correct[5];
    ref_softmax_xent(loss, correct, NULL, x, labels, rows, classes, 1.0);
    for (size_t r = 0; r < rows; r++) {
        int bad = r >= 1 && r <= 3;
        ck_assert_msg(bad ? isnan(stats[2 * r]) : fabs(stats[2 * r] - loss[r]) <= loss_tol(4, 1.5),
                      "row %zu: loss %g (label %g)", r, (double)stats[2 * r], (double)labels[r]);
        ck_assert_msg(stats[2 * r + 1] == (float)correct[r], "row %zu: correct %g", r,
                      (double)stats[2 * r + 1]);
    }
}
END_TEST

START_TEST(sgd_step_matches_formula) {
    const size_t vec = (size_t)spartan_context_tuned(ctx, "VEC");
    const size_t sizes[] = {1, 3, vec + 1, 1009, 65537};
    size_t n = small ? 4 : 5;
    for (size_t i = 0; i < n; i++) {
        check_sgd(sizes[i], 0.1f, 0.9f, 5e-4f, SEED(9, i));
        check_sgd(sizes[i], 0.5f, 0.0f, 0.0f, SEED(10, i)); /* plain SGD */
        check_sgd(sizes[i], 1.0f, 0.5f, 0.25f, SEED(11, i));
    }
}
END_TEST

START_TEST(dropout_matches_reference) {
    const size_t vec = (size_t)spartan_context_tuned(ctx, "VEC");
    const size_t sizes[] = {1, 3, vec + 1, 1009, 100003};
    const float ps[] = {0.0f, 0.1f, 0.5f, 0.9f};
    size_t n = small ? 4 : 5;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < sizeof ps / sizeof ps[0]; j++)
            check_dropout(sizes[i], ps[j], SEED(12, i), 1000 + j);
}
END_TEST

/* The kept fraction is binomial(n, 1 - p): within 5 standard deviations of n (1 - p). Different
 * counters give different masks. */
START_TEST(dropout_keeps_one_minus_p) {
    const size_t n = small ? 1600 : (size_t)1 << 20;
    const float ps[] = {0.1f, 0.5f, 0.8f};
    for (size_t j = 0; j < sizeof ps / sizeof ps[0]; j++) {
        double p = ps[j];
        size_t kept = check_dropout(n, ps[j], SEED(13, j), 7);
        double sigma = sqrt((double)n * p * (1.0 - p));
        ck_assert_msg(fabs((double)kept - (double)n * (1.0 - p)) <= 5.0 * sigma,
                      "p=%g: kept %zu of %zu", p, kept, n);
        size_t same = 0;
        for (size_t i = 0; i < n; i++)
            same += ref_dropout_dropped(SEED(13, j), 7, i, ps[j]) ==
                    ref_dropout_dropped(SEED(13, j), 8, i, ps[j]);
        ck_assert_msg(same < n, "p=%g: counters 7 and 8 give the same mask", p);
    }
}
END_TEST

/* Everything again with other vector widths: VEC=1 (scalar kernels, every chunk full) and
 * VEC=16 (a partial chunk at the end). */
static void check_some(void) {
    check_softmax(37, 10, 4.0f, 1, SEED(24, 0));
    check_sgd(37, 0.1f, 0.9f, 5e-4f, SEED(25, 0));
    check_dropout(37, 0.5f, SEED(26, 0), 1);
    check_dropout(37, 0.0f, SEED(26, 1), 1);
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

/* NULLs, sizes that do not match, p outside [0, 1): INVALID_ARGUMENT with a message, and nothing
 * written. */
START_TEST(bad_arguments_are_invalid) {
    spartan_tensor *y = fx_matrix(8, 2), *arg = fx_matrix(8, 2), *y_bad = fx_matrix(8, 3);
    /* dropout: p in [0, 1) */
    const float bad_p[] = {1.0f, -0.1f, 1.5f, NAN};
    for (size_t i = 0; i < sizeof bad_p / sizeof bad_p[0]; i++) {
        ck_assert_int_eq(spartan_dropout_forward(ctx, y, y, bad_p[i], 1, 2), INV);
        ck_assert_int_eq(spartan_dropout_backward(ctx, y, y, bad_p[i], 1, 2), INV);
    }
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "[0, 1)"));
    ck_assert_int_eq(spartan_dropout_forward(ctx, y, y_bad, 0.5f, 1, 2), INV);
    ck_assert_int_eq(spartan_dropout_forward(ctx, NULL, y, 0.5f, 1, 2), INV);

    /* softmax: labels, stats and dlogits shaped by the logits; at least one class */
    spartan_tensor *lab8 = fx_matrix(8, 1), *lab7 = fx_matrix(7, 1);
    spartan_tensor *st8 = fx_matrix(8, 2), *st7 = fx_matrix(7, 2);
    spartan_tensor *st83 = fx_matrix(8, 3), *empty = fx_matrix(8, 0);
    ck_assert_int_eq(spartan_softmax_xent(ctx, y, lab7, 1.0f, NULL, st8), INV);
    ck_assert_int_eq(spartan_softmax_xent(ctx, y, lab8, 1.0f, NULL, st7), INV);
    ck_assert_int_eq(spartan_softmax_xent(ctx, y, lab8, 1.0f, NULL, st83), INV);
    ck_assert_int_eq(spartan_softmax_xent(ctx, y, lab8, 1.0f, y_bad, st8), INV);
    ck_assert_int_eq(spartan_softmax_xent(ctx, y, NULL, 1.0f, NULL, st8), INV);
    ck_assert_int_eq(spartan_softmax_xent(ctx, y, lab8, 1.0f, NULL, NULL), INV);
    ck_assert_int_eq(spartan_softmax_xent(ctx, empty, lab8, 1.0f, NULL, st8), INV);

    /* sgd: w, g and v alike */
    ck_assert_int_eq(spartan_sgd_step(ctx, y, y_bad, arg, 0.1f, 0.9f, 0.0f), INV);
    ck_assert_int_eq(spartan_sgd_step(ctx, y, arg, y_bad, 0.1f, 0.9f, 0.0f), INV);
    ck_assert_int_eq(spartan_sgd_step(ctx, y, NULL, arg, 0.1f, 0.9f, 0.0f), INV);
    ok(spartan_context_finish(ctx));
}
END_TEST

/* Zero-sized tensors: every operation is a no-op that succeeds. */
START_TEST(empty_tensors_are_no_ops) {
    float dummy = 0.0f;
    spartan_tensor *e = fx_upload(&dummy, 0, 6), *e2 = fx_matrix(0, 2);
    ok(spartan_dropout_forward(ctx, e, e, 0.5f, 1, 2));
    ok(spartan_dropout_backward(ctx, e, e, 0.5f, 1, 2));
    ok(spartan_sgd_step(ctx, e, e, e, 0.1f, 0.9f, 0.0f));
    spartan_tensor *lab = fx_matrix(0, 1);
    ok(spartan_softmax_xent(ctx, e, lab, 1.0f, e, e2));
    ok(spartan_softmax_xent(ctx, e, lab, 1.0f, NULL, e2));
    ok(spartan_context_finish(ctx));
}
END_TEST

static Suite *nn_loss_suite(void) {
    Suite *s = suite_create("nn_loss");
    TCase *tc = tcase_create("nn_loss");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, softmax_xent_matches_reference);
    tcase_add_test(tc, softmax_xent_large_logits_stay_finite);
    tcase_add_test(tc, softmax_xent_bad_label_gives_nan);
    tcase_add_test(tc, sgd_step_matches_formula);
    tcase_add_test(tc, dropout_matches_reference);
    tcase_add_test(tc, dropout_keeps_one_minus_p);
    tcase_add_test(tc, tune_scalar);
    tcase_add_test(tc, tune_wide);
    tcase_add_test(tc, bad_arguments_are_invalid);
    tcase_add_test(tc, empty_tensors_are_no_ops);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(nn_loss_suite());
}
