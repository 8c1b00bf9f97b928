/* The fixture shared by the layer-operation tests (test_nn_ops.c, test_nn_loss.c and the
 * test_conv*.c): a context per test (fx_setup / fx_teardown, for tcase_add_checked_fixture), host
 * arrays and tensors made through it and released together (fx_release: at the end of each
 * check, and in teardown), a context with a family broken on purpose, and the comparisons the
 * suites use. */
#ifndef SPARTAN_TEST_OPS_FIXTURE_H
#define SPARTAN_TEST_OPS_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "harness.h"
#include "spartan/spartan.h"

extern spartan_context *ctx; /* the current test's context */
extern int small;            /* SPARTAN_TEST_SMALL=1 (Oclgrind): tiny shapes only */

void fx_setup(void);
void fx_teardown(void);
void fx_release(void);

/* Held until fx_release: host arrays, and tensors of ctx (th_matrix, th_nan_matrix, th_upload). */
float *fx_floats(size_t n);
double *fx_doubles(size_t n);
spartan_tensor *fx_matrix(size_t rows, size_t cols);
spartan_tensor *fx_nan_matrix(size_t rows, size_t cols);
spartan_tensor *fx_upload(const float *host, size_t rows, size_t cols);

/* Replaces ctx by a context built from a copy of the kernel sources in which family's file
 * (<family>.cl) has `from` replaced by `to`, and asserts that the family failed its validation
 * there and that its fallback mentions fallback_word. The copy goes at fx_teardown. */
void fx_break_family(const char *family, const char *from, const char *to,
                     const char *fallback_word);

/* n uniform floats in [lo, hi) from seed; the whole tensor read back. */
float *fx_random_floats(size_t n, float lo, float hi, uint64_t seed);
float *fx_read_all(const spartan_tensor *t);

/* First index where got and want differ (NaN equals NaN); n when none. */
size_t fx_first_diff(const float *got, const float *want, size_t n);
double fx_max_abs(const float *x, size_t n);
/* Fail the test at the first element outside tol of the reference / not identical. */
void fx_assert_close(const float *got, const double *want, size_t n, double tol, const char *what);
void fx_assert_same(const float *got, const float *want, size_t n, const char *what);

#define SEED(i, j) (th_seed() * 1000003u + (uint64_t)(i)*64u + (uint64_t)(j))

#define INV SPARTAN_STATUS_INVALID_ARGUMENT

#define ok(call) TH_OK(ctx, call)

#endif /* SPARTAN_TEST_OPS_FIXTURE_H */
