/* Tests of the policy (runtime/policy): the fixed modes; the adaptive rule on synthetic layers
 * whose calibration is given (so no timing enters an assertion): dense at 0 % and sparse at
 * 95 %, one switch when the sparsity crosses over slowly, none while it hovers at the
 * crossover, the online correction overriding a wrong calibration, exploration of the path
 * not taken; and the calibration by real microbenchmarks, written to the cache and reused by
 * the next policy (no benchmark runs then), a corrupt cache file ignored. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "policy/policy_internal.h"
#include "spartan/spartan.h"

static spartan_context *ctx;

static void setup(void) {
    spartan_status st = spartan_context_create(NULL, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
}

static void teardown(void) {
    spartan_context_destroy(ctx);
    ctx = NULL;
}

/* A synthetic layer: dense 10 ms; sparse 12 ms at 50 % zeros and 4 ms at 90 %, so the model's
 * sparse time is 4 + (0.9 - s) * 20 ms and the crossover is at s = 0.6. */
static const sp_policy_cal synthetic = {10.0,   12.0, 4.0, SPARTAN_GEMM_OWN, 10.0, -1.0,
                                        {0, 0}, -1.0, -1.0};
#define CROSSOVER 0.6

static double true_sparse_ms(double s) {
    return 4.0 + (0.9 - s) * 20.0;
}

static spartan_policy *adaptive_with(size_t layers) {
    spartan_policy *p;
    ck_assert_int_eq(spartan_policy_create(ctx, SPARTAN_POLICY_ADAPTIVE, &p), SPARTAN_OK);
    for (size_t l = 0; l < layers; l++)
        ck_assert_int_eq(sp_policy_register(p, l, SPARTAN_PASS_FWD, 4096, 256, 512, 1, &synthetic),
                         SPARTAN_OK);
    return p;
}

static spartan_path ask(spartan_policy *p, size_t layer, double sparsity, const char **why) {
    spartan_policy_query q = {layer, SPARTAN_PASS_FWD, 4096, 256, 512, sparsity, 1};
    return spartan_policy_choose(p, &q, why);
}

/* Switches (events whose path changed) recorded so far. */
static size_t switches(const spartan_policy *p) {
    size_t n = spartan_policy_events(p, 0, NULL, 0), count = 0;
    for (size_t i = 0; i < n; i++) {
        spartan_policy_event e;
        spartan_policy_events(p, i, &e, 1);
        count += e.from != e.to;
    }
    return count;
}

/* One training step at sparsity s: the decision, then the measured time of the path run (the
 * truth of the synthetic layer, with +-3 % deterministic jitter). */
static spartan_path step(spartan_policy *p, size_t t, double s) {
    sp_policy_set_step(p, t);
    spartan_path path = ask(p, 0, s, NULL);
    double jitter = 1.0 + 0.03 * sin((double)t * 1.7);
    double ms = path == SPARTAN_PATH_DENSE ? 10.0 : true_sparse_ms(s);
    sp_policy_observe(p, 0, SPARTAN_PASS_FWD, path, s, ms * jitter);
    return path;
}

START_TEST(fixed_modes) {
    spartan_policy *p;
    const char *why;
    spartan_policy_query q = {0, SPARTAN_PASS_BWD_INPUT, 64, 512, 512, 0.9, 1};
    ck_assert_int_eq(spartan_policy_create(ctx, SPARTAN_POLICY_DENSE, &p), SPARTAN_OK);
    ck_assert_int_eq(spartan_policy_choose(p, &q, &why), SPARTAN_PATH_DENSE);
    spartan_policy_destroy(p);
    ck_assert_int_eq(spartan_policy_create(ctx, SPARTAN_POLICY_SPARSE, &p), SPARTAN_OK);
    ck_assert_int_eq(spartan_policy_choose(p, &q, &why), SPARTAN_PATH_SPARSE);
    q.sparse_allowed = 0;
    ck_assert_int_eq(spartan_policy_choose(p, &q, &why), SPARTAN_PATH_DENSE);
    ck_assert_str_eq(why, "no sparse form for this pass");
    spartan_policy_destroy(p);
    spartan_policy_mode mode;
    ck_assert_int_eq(spartan_policy_mode_parse("adaptive", &mode), SPARTAN_OK);
    ck_assert_int_eq(mode, SPARTAN_POLICY_ADAPTIVE);
    ck_assert_int_eq(spartan_policy_create(ctx, (spartan_policy_mode)9, &p),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(dense_at_zero_sparse_at_95) {
    spartan_policy *p = adaptive_with(2);
    const char *why;
    ck_assert_int_eq(ask(p, 0, 0.0, &why), SPARTAN_PATH_DENSE);
    ck_assert_int_eq(ask(p, 1, 0.95, &why), SPARTAN_PATH_SPARSE);
    double d, s;
    ck_assert_int_eq(spartan_policy_predict(p, 1, SPARTAN_PASS_FWD, 0.95, &d, &s), SPARTAN_OK);
    ck_assert(fabs(d - 10.0) < 1e-9 && fabs(s - true_sparse_ms(0.95)) < 1e-9);
    /* an unknown (layer, pass) is refused, not guessed */
    ck_assert_int_eq(spartan_policy_predict(p, 5, SPARTAN_PASS_FWD, 0.5, &d, &s),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_policy_events(p, 0, NULL, 0), 2); /* two first choices */
    spartan_policy_destroy(p);
}
END_TEST

/* Sparsity rising from 0.3 to 0.9 over 600 steps: dense first, sparse at the end, and one switch
 * in between (not back and forth), after the crossover plus the margin. */
START_TEST(slow_crossover_switches_once) {
    spartan_policy *p = adaptive_with(1);
    spartan_path first = SPARTAN_PATH_DENSE, last = SPARTAN_PATH_DENSE;
    for (size_t t = 0; t < 600; t++) {
        spartan_path path = step(p, t, 0.3 + 0.001 * (double)t);
        if (t == 0) first = path;
        last = path;
    }
    ck_assert_int_eq(first, SPARTAN_PATH_DENSE);
    ck_assert_int_eq(last, SPARTAN_PATH_SPARSE);
    ck_assert_uint_eq(switches(p), 1);
    spartan_policy_event e[2];
    ck_assert_uint_eq(spartan_policy_events(p, 0, e, 2), 2);
    ck_assert(e[1].from == SPARTAN_PATH_DENSE && e[1].to == SPARTAN_PATH_SPARSE);
    ck_assert_msg(e[1].sparsity > CROSSOVER, "switched at %.3f, before the crossover",
                  e[1].sparsity);
    spartan_policy_destroy(p);
}
END_TEST

/* Sparsity hovering at the crossover (+-0.02: the paths within 4 % of each other): no switch. */
START_TEST(hover_at_crossover_holds) {
    for (int start = 0; start < 2; start++) {
        spartan_policy *p = adaptive_with(1);
        for (size_t t = 0; t < 500; t++) {
            double s = CROSSOVER + (start ? 0.02 : -0.02) * ((t & 1) ? -1.0 : 1.0);
            step(p, t, s);
        }
        ck_assert_uint_eq(switches(p), 0);
        spartan_policy_destroy(p);
    }
}
END_TEST

/* The calibration says sparse wins at 0.7 zeros (8 ms against 10), but in training the sparse
 * pass takes twice as long. Until dense is timed, the policy cannot tell a slow sparse kernel
 * from a slow machine (dense borrows sparse's correction) and holds; the explorations (step 5,
 * dense's warm-up, and step 10) time dense, and the policy moves to dense, once. */
START_TEST(online_correction_overrides_calibration) {
    spartan_policy *p = adaptive_with(1);
    ck_assert_int_eq(ask(p, 0, 0.7, NULL), SPARTAN_PATH_SPARSE);
    size_t t = 0;
    for (; t < 120; t++) {
        sp_policy_set_step(p, t);
        spartan_path path = ask(p, 0, 0.7, NULL);
        sp_policy_observe(p, 0, SPARTAN_PASS_FWD, path, 0.7,
                          path == SPARTAN_PATH_DENSE ? 10.0 : 2.0 * true_sparse_ms(0.7));
        if (t < 5) ck_assert_int_eq(path, SPARTAN_PATH_SPARSE);
    }
    ck_assert_int_eq(ask(p, 0, 0.7, NULL), SPARTAN_PATH_DENSE);
    ck_assert_uint_eq(switches(p), 1);
    spartan_policy_destroy(p);
}
END_TEST

/* Holding dense at 0.4 zeros (sparse predicted 14 ms: within 2x), the sparse path is timed at
 * step 5 (its warm-up run, not learned from) and 10 (measured), then once every 100 steps, and
 * only then. */
START_TEST(explores_the_path_not_taken) {
    spartan_policy *p = adaptive_with(1);
    size_t explored = 0;
    for (size_t t = 0; t < 250; t++) {
        sp_policy_set_step(p, t);
        const char *why;
        spartan_path path = ask(p, 0, 0.4, &why);
        if (path == SPARTAN_PATH_SPARSE) {
            ck_assert_str_eq(why, "exploring: timing the path not taken");
            ck_assert(t == 5 || t == 10 || t == 110 || t == 210);
            explored++;
        }
        sp_policy_observe(p, 0, SPARTAN_PASS_FWD, path, 0.4,
                          path == SPARTAN_PATH_DENSE ? 10.0 : true_sparse_ms(0.4));
    }
    ck_assert_uint_eq(explored, 4);
    ck_assert_uint_eq(switches(p), 0);
    spartan_policy_destroy(p);
}
END_TEST

/* Real microbenchmarks on a small layer: positive, finite predictions that never rise with
 * sparsity; stored in the cache, so a second policy on the same device runs none and predicts
 * the same; a corrupt cache file is ignored (calibrated again, then rewritten). */
static void calibrate_layer(spartan_policy *p) {
    ck_assert_int_eq(sp_policy_register(p, 0, SPARTAN_PASS_FWD, 256, 64, 96, 1, NULL), SPARTAN_OK);
    ck_assert_int_eq(sp_policy_register(p, 0, SPARTAN_PASS_BWD_WEIGHT, 96, 64, 256, 1, NULL),
                     SPARTAN_OK);
    ck_assert_int_eq(sp_policy_register(p, 0, SPARTAN_PASS_BWD_INPUT, 256, 96, 64, 1, NULL),
                     SPARTAN_OK);
}

START_TEST(calibration_is_cached_per_device) {
    char *dir = th_tempdir("policy-cache");
    setenv("SPARTAN_CACHE_DIR", dir, 1);
    spartan_context_destroy(ctx);
    setup();
    spartan_policy *p;
    ck_assert_int_eq(spartan_policy_create(ctx, SPARTAN_POLICY_ADAPTIVE, &p), SPARTAN_OK);
    calibrate_layer(p);
    ck_assert_uint_eq(sp_policy_benchmarks_run(p), 9); /* 3 passes x (dense, sparse x 2) */
    double d[3][2];
    for (int pass = 0; pass < 3; pass++) {
        double s0, s95;
        ck_assert_int_eq(spartan_policy_predict(p, 0, (spartan_pass)pass, 0.0, &d[pass][0], &s0),
                         SPARTAN_OK);
        ck_assert_int_eq(spartan_policy_predict(p, 0, (spartan_pass)pass, 0.95, &d[pass][1], &s95),
                         SPARTAN_OK);
        d[pass][1] = s95;
        ck_assert(d[pass][0] > 0 && isfinite(d[pass][0]) && s0 > 0 && isfinite(s0));
        ck_assert_msg(s95 <= s0, "pass %d: sparse %.4f ms at 95 %% > %.4f at 0 %%", pass, s95, s0);
    }
    spartan_policy_destroy(p);

    ck_assert_int_eq(spartan_policy_create(ctx, SPARTAN_POLICY_ADAPTIVE, &p), SPARTAN_OK);
    calibrate_layer(p);
    ck_assert_uint_eq(sp_policy_benchmarks_run(p), 0);
    for (int pass = 0; pass < 3; pass++) {
        double dd, ss;
        ck_assert_int_eq(spartan_policy_predict(p, 0, (spartan_pass)pass, 0.95, &dd, &ss),
                         SPARTAN_OK);
        ck_assert(fabs(dd - d[pass][0]) <= 1e-6 * d[pass][0] &&
                  fabs(ss - d[pass][1]) <= 1e-6 * d[pass][1]);
    }
    spartan_policy_destroy(p);

    /* corrupt every calibration file: ignored, calibrated again, rewritten */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "for f in '%s'/policy/*.txt; do printf 'garbage\\n' > \"$f\"; done",
             dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(spartan_policy_create(ctx, SPARTAN_POLICY_ADAPTIVE, &p), SPARTAN_OK);
    calibrate_layer(p);
    ck_assert_uint_eq(sp_policy_benchmarks_run(p), 9);
    spartan_policy_destroy(p);
    ck_assert_int_eq(spartan_policy_create(ctx, SPARTAN_POLICY_ADAPTIVE, &p), SPARTAN_OK);
    calibrate_layer(p);
    ck_assert_uint_eq(sp_policy_benchmarks_run(p), 0);
    spartan_policy_destroy(p);

    /* a tuning database entry for the device (as spartan-tune writes one) changes the kernels'
     * build options: the calibration taken under the old ones is not reused */
    spartan_device_info info = *spartan_context_device(ctx);
    const long snb = spartan_context_tuned(ctx, "SPARSE_NB"), want = snb == 2 ? 4 : 2;
    char params[32];
    snprintf(params, sizeof params, "SPARSE_NB=%ld", want);
    ck_assert_int_eq(spartan_tuning_write(NULL, &info, params, NULL, NULL, 0), SPARTAN_OK);
    spartan_context_destroy(ctx);
    setup();
    ck_assert_int_eq(spartan_context_tuned(ctx, "SPARSE_NB"), want);
    for (unsigned expect = 9;; expect = 0) {
        ck_assert_int_eq(spartan_policy_create(ctx, SPARTAN_POLICY_ADAPTIVE, &p), SPARTAN_OK);
        calibrate_layer(p);
        ck_assert_uint_eq(sp_policy_benchmarks_run(p), expect);
        spartan_policy_destroy(p);
        if (!expect) break;
    }
    th_rm_rf(dir);
    free(dir);
}
END_TEST

/* Where CLBlast is built in, a calibration that tries it (forced here on the CPU driver, where
 * it is off by default: SPARTAN_POLICY_CLBLAST=1) times both dense implementations, and the
 * pass's dense path is the faster of the two; without the variable the CPU driver tries only the
 * own kernel. */
START_TEST(dense_implementation_is_the_faster) {
    char *dir = th_tempdir("policy-clblast");
    setenv("SPARTAN_CACHE_DIR", dir, 1);
    spartan_context_destroy(ctx);
    setup();
    spartan_policy *p;
    sp_policy_cal cal;
    ck_assert_int_eq(spartan_policy_create(ctx, SPARTAN_POLICY_ADAPTIVE, &p), SPARTAN_OK);
    ck_assert_int_eq(sp_policy_tries_clblast(p), 0); /* a CPU driver */
    ck_assert_int_eq(sp_policy_register(p, 0, SPARTAN_PASS_FWD, 128, 32, 64, 1, NULL), SPARTAN_OK);
    ck_assert_int_eq(sp_policy_calibration(p, 0, SPARTAN_PASS_FWD, &cal), SPARTAN_OK);
    ck_assert(cal.clblast_ms < 0 && cal.dense_impl == SPARTAN_GEMM_OWN && cal.own_ms > 0);
    ck_assert_int_eq(spartan_policy_dense_path(p, 0, SPARTAN_PASS_FWD), SPARTAN_GEMM_OWN);
    spartan_policy_destroy(p);
    if (spartan_have_clblast()) {
        setenv("SPARTAN_POLICY_CLBLAST", "1", 1);
        ck_assert_int_eq(spartan_policy_create(ctx, SPARTAN_POLICY_ADAPTIVE, &p), SPARTAN_OK);
        ck_assert_int_eq(sp_policy_tries_clblast(p), 1);
        /* another shape (not in the cache), and a pass without a sparse form: dense only */
        ck_assert_int_eq(sp_policy_register(p, 0, SPARTAN_PASS_FWD, 96, 32, 64, 1, NULL),
                         SPARTAN_OK);
        ck_assert_int_eq(sp_policy_register(p, 0, SPARTAN_PASS_BWD_INPUT, 96, 64, 32, 0, NULL),
                         SPARTAN_OK);
        for (int pass = 0; pass < 2; pass++) {
            spartan_pass ps = pass ? SPARTAN_PASS_BWD_INPUT : SPARTAN_PASS_FWD;
            ck_assert_int_eq(sp_policy_calibration(p, 0, ps, &cal), SPARTAN_OK);
            ck_assert(cal.own_ms > 0 && cal.clblast_ms > 0);
            spartan_gemm_path faster =
                cal.clblast_ms < cal.own_ms ? SPARTAN_GEMM_CLBLAST : SPARTAN_GEMM_OWN;
            ck_assert_int_eq(cal.dense_impl, faster);
            ck_assert(cal.dense_ms ==
                      (faster == SPARTAN_GEMM_CLBLAST ? cal.clblast_ms : cal.own_ms));
            ck_assert_int_eq(spartan_policy_dense_path(p, 0, ps), faster);
        }
        spartan_policy_destroy(p);
    }
    th_rm_rf(dir);
    free(dir);
}
END_TEST

static Suite *policy_suite(void) {
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("policy");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, fixed_modes);
    tcase_add_test(tc, dense_at_zero_sparse_at_95);
    tcase_add_test(tc, slow_crossover_switches_once);
    tcase_add_test(tc, hover_at_crossover_holds);
    tcase_add_test(tc, online_correction_overrides_calibration);
    tcase_add_test(tc, explores_the_path_not_taken);
    tcase_add_test(tc, calibration_is_cached_per_device);
    tcase_add_test(tc, dense_implementation_is_the_faster);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(policy_suite());
}
