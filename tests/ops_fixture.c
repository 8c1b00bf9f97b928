/* The fixture of the layer-operation tests (test_nn_ops.c, test_nn_loss.c): ops_fixture.h. */
#include "ops_fixture.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref/ref.h"

spartan_context *ctx;
int small;

void fx_setup(void) {
    small = th_small();
    spartan_status st = spartan_context_create(NULL, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
}

/* Host arrays and tensors made by the helpers below are kept here and released together
 * (fx_release(): at the end of each check, and in fx_teardown). */
#define MAX_HELD 128
static void *held[MAX_HELD];
static spartan_tensor *held_t[MAX_HELD];
static size_t nheld, nheld_t;

void fx_release(void) {
    for (size_t i = 0; i < nheld; i++) free(held[i]);
    for (size_t i = 0; i < nheld_t; i++) spartan_tensor_destroy(held_t[i]);
    nheld = nheld_t = 0;
}

/* fx_break_family's copy of the kernels and its cache directory (NULL: none). */
static char *broken_dir, *broken_cache;

void fx_teardown(void) {
    fx_release();
    spartan_context_destroy(ctx);
    ctx = NULL;
    if (broken_dir) th_rm_rf(broken_dir);
    free(broken_dir);
    if (broken_cache) th_shared_cache_done(broken_cache);
    broken_dir = broken_cache = NULL;
}

void fx_break_family(const char *family, const char *from, const char *to,
                     const char *fallback_word) {
    char file[64];
    snprintf(file, sizeof file, "%s.cl", family);
    broken_cache = th_shared_cache(family);
    broken_dir = th_copy_kernels();
    th_edit_kernel(broken_dir, file, from, to);
    spartan_context_destroy(ctx);
    spartan_context_opts o = spartan_context_opts_default();
    o.cache_dir = broken_cache;
    o.kernel_dir = broken_dir;
    ctx = NULL;
    TH_OK(NULL, spartan_context_create(&o, &ctx));
    spartan_family_status fs;
    int found = 0;
    for (unsigned i = 0; spartan_context_family(ctx, i, &fs) == SPARTAN_OK; i++) {
        if (strcmp(fs.name, family) != 0) continue;
        found = 1;
        ck_assert_msg(!fs.enabled && strstr(fs.why, "failed its validation"), "%s: %s", family,
                      fs.why);
        ck_assert_msg(strstr(fs.fallback, fallback_word) != NULL, "%s's fallback: %s", family,
                      fs.fallback);
    }
    ck_assert_msg(found, "no family %s", family);
}

static void *fx_hold(void *p) {
    ck_assert_uint_lt(nheld, MAX_HELD);
    return held[nheld++] = p;
}

static spartan_tensor *fx_hold_t(spartan_tensor *t) {
    ck_assert_uint_lt(nheld_t, MAX_HELD);
    return held_t[nheld_t++] = t;
}

float *fx_floats(size_t n) {
    return fx_hold(th_floats(n));
}

double *fx_doubles(size_t n) {
    return fx_hold(th_doubles(n));
}

spartan_tensor *fx_matrix(size_t rows, size_t cols) {
    return fx_hold_t(th_matrix(ctx, rows, cols));
}

spartan_tensor *fx_nan_matrix(size_t rows, size_t cols) {
    return fx_hold_t(th_nan_matrix(ctx, rows, cols));
}

spartan_tensor *fx_upload(const float *host, size_t rows, size_t cols) {
    return fx_hold_t(th_upload(ctx, host, rows, cols));
}

float *fx_random_floats(size_t n, float lo, float hi, uint64_t seed) {
    float *x = fx_floats(n);
    th_rng rng;
    th_rng_init(&rng, seed);
    for (size_t i = 0; i < n; i++) x[i] = th_rng_uniform(&rng, lo, hi);
    return x;
}

float *fx_read_all(const spartan_tensor *t) {
    size_t n = spartan_tensor_numel(t);
    float *h = fx_floats(n);
    ok(spartan_tensor_read(t, h, n));
    return h;
}

/* First index where got and want differ bitwise-or-value (NaN equals NaN); n when none. */
size_t fx_first_diff(const float *got, const float *want, size_t n) {
    size_t i = 0;
    while (i < n && (got[i] == want[i] || (isnan(got[i]) && isnan(want[i])))) i++;
    return i;
}

double fx_max_abs(const float *x, size_t n) {
    return ref_max_abs(x, n);
}

void fx_assert_close(const float *got, const double *want, size_t n, double tol, const char *what) {
    size_t first = 0;
    ck_assert_msg(th_count_bad(got, want, n, tol, &first) == 0,
                  "%s: [%zu] = %.9g, want %.9g (tol %g)", what, first, (double)got[first],
                  want[first], tol);
}

void fx_assert_same(const float *got, const float *want, size_t n, const char *what) {
    size_t i = fx_first_diff(got, want, n);
    ck_assert_msg(i == n, "%s: [%zu] = %.9g, want %.9g", what, i, (double)got[i < n ? i : 0],
                  (double)want[i < n ? i : 0]);
}
