/* Tests of the weight-sparse GEMMs (runtime/ops/gemm_wsparse.c, kernels_cl/gemm_sparse.cl
 * gemm_wsparse_*): Y = X . W (the W form), dX = dY . W^T (the W^T form) and Y = X . W skipping
 * the zeros of both, against plain double loops, with W of densities 0 to 1 and X with and
 * without zeros, on shapes of 1, primes, non-multiples of the vector width and of the union
 * kernel's 64-column blocks, and empty ones. The tolerance of each output is (terms + 2) float
 * epsilons times the sum of its terms' magnitudes (terms: W's non-zeros in the dot product), the
 * bound of a float sum of that many products. Also: a W whose non-zeros shrank since the build
 * (still exact: the stale positions read zeros), a rebuild after the set grew, and the refusals.
 * SPARTAN_TEST_SMALL=1 (Oclgrind, rusticl): small shapes only. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "spartan/spartan.h"

static spartan_context *ctx;
static int small;

static void setup(void) {
    spartan_status st = spartan_context_create(NULL, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
    small = th_small();
}

static void teardown(void) {
    spartan_context_destroy(ctx);
    ctx = NULL;
}

#define OK(call) TH_OK(ctx, call)

/* n floats in [-1, 1), each zero with probability zero_p. */
static float *random_matrix(th_rng *r, size_t n, double zero_p) {
    float *a = th_floats(n);
    for (size_t i = 0; i < n; i++) {
        const float u = th_rng_uniform(r, 0.0f, 1.0f);
        a[i] = (double)u < zero_p ? 0.0f : th_rng_uniform(r, -1.0f, 1.0f);
    }
    return a;
}

static spartan_tensor *upload(const float *host, size_t rows, size_t cols) {
    return th_upload(ctx, host, rows, cols);
}

static float *read_back(const spartan_tensor *t) {
    float *h = th_floats(spartan_tensor_numel(t) ? spartan_tensor_numel(t) : 1);
    if (spartan_tensor_numel(t)) OK(spartan_tensor_read(t, h, spartan_tensor_numel(t)));
    return h;
}

/* out (rows x cols) against the double reference: out[r][c] = sum over t of a(r, t) b(t, c) with
 * a(r, t) = A[r * a_r + t * a_t], b(t, c) = B[t * b_t + c * b_c], t < inner. */
static void check_product(const char *what, const float *out, size_t rows, size_t cols,
                          size_t inner, const float *A, size_t a_r, size_t a_t, const float *B,
                          size_t b_t, size_t b_c) {
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            double want = 0.0, mag = 0.0;
            size_t terms = 0;
            for (size_t t = 0; t < inner; t++) {
                const double p = (double)A[r * a_r + t * a_t] * (double)B[t * b_t + c * b_c];
                terms += B[t * b_t + c * b_c] != 0.0f;
                want += p;
                mag += fabs(p);
            }
            const double tol = (double)(terms + 2) * FLT_EPSILON * mag;
            const double got = (double)out[r * cols + c];
            ck_assert_msg(fabs(got - want) <= tol, "%s [%zu, %zu]: %.9g, want %.9g (tol %.3g)",
                          what, r, c, got, want, tol);
        }
}

/* One shape and density: all three GEMMs against the reference. */
static void check_shape(th_rng *r, size_t m, size_t k, size_t n, double w_zero, double x_zero) {
    float *x = random_matrix(r, m * k, x_zero), *w = random_matrix(r, k * n, w_zero);
    float *dy = random_matrix(r, m * n, x_zero);
    spartan_tensor *tx = upload(x, m, k), *tw = upload(w, k, n), *tdy = upload(dy, m, n);
    spartan_tensor *ty, *tdx;
    OK(spartan_tensor_create_2d(ctx, m, n, &ty));
    OK(spartan_tensor_create_2d(ctx, m, k, &tdx));
    spartan_wsparse *ws;
    OK(spartan_wsparse_create(ctx, k, n, &ws));
    OK(spartan_wsparse_build(ws, tw));
    size_t nnz = 0;
    for (size_t e = 0; e < k * n; e++) nnz += w[e] != 0.0f;
    ck_assert_uint_eq(spartan_wsparse_nnz(ws), nnz);
    char what[96];
    snprintf(what, sizeof what, "fwd %zux%zux%zu w0 %.2f x0 %.2f", m, k, n, w_zero, x_zero);
    OK(spartan_gemm_wsparse_fwd(ctx, tx, tw, ws, ty));
    float *y = read_back(ty);
    check_product(what, y, m, n, k, x, k, 1, w, n, 1);
    free(y);
    what[0] = 'F'; /* the same product, both operands' zeros skipped */
    OK(spartan_tensor_fill(ty, NAN));
    OK(spartan_gemm_wsparse_fwd_both(ctx, tx, tw, ws, ty));
    y = read_back(ty);
    check_product(what, y, m, n, k, x, k, 1, w, n, 1);
    free(y);
    snprintf(what, sizeof what, "bwd_input %zux%zux%zu w0 %.2f", m, k, n, w_zero);
    OK(spartan_tensor_fill(tdx, NAN));
    OK(spartan_gemm_wsparse_bwd_input(ctx, tdy, tw, ws, tdx));
    float *dx = read_back(tdx);
    /* dX[r][i] = sum_j dY[r][j] W[i][j]: B(t = j, c = i) = W[i * n + j] */
    check_product(what, dx, m, k, n, dy, n, 1, w, 1, n);
    free(dx);
    spartan_wsparse_destroy(ws);
    spartan_tensor *all[] = {tx, tw, tdy, ty, tdx};
    for (size_t i = 0; i < 5; i++) spartan_tensor_destroy(all[i]);
    free(x);
    free(w);
    free(dy);
}

START_TEST(test_shapes) {
    th_rng r;
    th_rng_init(&r, th_seed());
    static const size_t shapes[][3] = {{1, 1, 1},     {1, 7, 1},    {3, 1, 5},
                                       {5, 13, 17},   {17, 31, 29}, {2, 65, 3},
                                       {33, 19, 130}, {16, 64, 64}, {7, 200, 67}};
    static const double densities[] = {0.0, 0.02, 0.1, 0.5, 1.0};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        if (small && shapes[s][0] * shapes[s][1] * shapes[s][2] > 20000) continue;
        for (size_t d = 0; d < sizeof densities / sizeof densities[0]; d++)
            check_shape(&r, shapes[s][0], shapes[s][1], shapes[s][2], 1.0 - densities[d],
                        d % 2 ? 0.5 : 0.0);
    }
}
END_TEST

/* mlp's layer shapes at the densities Dropback's 10 % gives them, X half zeros (POCL only). */
START_TEST(test_layer_shapes) {
    if (small) return;
    th_rng r;
    th_rng_init(&r, th_seed());
    check_shape(&r, 64, 784, 512, 0.93, 0.5);
    check_shape(&r, 64, 512, 512, 0.86, 0.5);
    check_shape(&r, 64, 512, 10, 0.77, 0.5);
}
END_TEST

START_TEST(test_empty) {
    th_rng r;
    th_rng_init(&r, th_seed());
    check_shape(&r, 0, 5, 3, 0.5, 0.0);
    check_shape(&r, 4, 5, 0, 0.5, 0.0);
    check_shape(&r, 4, 0, 3, 0.5, 0.0);
}
END_TEST

/* After the build, some non-zeros of W become zero (exact: the stale positions contribute
 * zeros) and the values change (read from W at each call); after others appear, a rebuild. */
START_TEST(test_stale_and_rebuild) {
    th_rng r;
    th_rng_init(&r, th_seed());
    const size_t m = 9, k = 23, n = 70;
    float *x = random_matrix(&r, m * k, 0.3), *w = random_matrix(&r, k * n, 0.9);
    spartan_tensor *tx = upload(x, m, k), *tw = upload(w, k, n), *ty;
    OK(spartan_tensor_create_2d(ctx, m, n, &ty));
    spartan_wsparse *ws;
    OK(spartan_wsparse_create(ctx, k, n, &ws));
    OK(spartan_wsparse_build(ws, tw));
    for (size_t e = 0; e < k * n; e++)
        if (w[e] != 0.0f) w[e] = e % 3 ? 2.0f * w[e] : 0.0f;
    OK(spartan_tensor_write(tw, w, k * n));
    OK(spartan_gemm_wsparse_fwd(ctx, tx, tw, ws, ty));
    float *y = read_back(ty);
    check_product("shrunk", y, m, n, k, x, k, 1, w, n, 1);
    free(y);
    for (size_t e = 0; e < k * n; e += 7) w[e] = 0.5f;
    OK(spartan_tensor_write(tw, w, k * n));
    OK(spartan_wsparse_build(ws, tw));
    OK(spartan_gemm_wsparse_fwd_both(ctx, tx, tw, ws, ty));
    y = read_back(ty);
    check_product("rebuilt", y, m, n, k, x, k, 1, w, n, 1);
    free(y);
    spartan_wsparse_destroy(ws);
    spartan_tensor_destroy(tx);
    spartan_tensor_destroy(tw);
    spartan_tensor_destroy(ty);
    free(x);
    free(w);
}
END_TEST

START_TEST(test_refusals) {
    spartan_wsparse *ws;
    spartan_tensor *w, *x, *y;
    OK(spartan_tensor_create_2d(ctx, 4, 6, &w));
    OK(spartan_tensor_create_2d(ctx, 3, 4, &x));
    OK(spartan_tensor_create_2d(ctx, 3, 6, &y));
    OK(spartan_tensor_fill(w, 1.0f));
    OK(spartan_wsparse_create(ctx, 4, 6, &ws));
    /* not built yet */
    ck_assert_int_eq(spartan_gemm_wsparse_fwd(ctx, x, w, ws, y), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(ctx), "not built"));
    OK(spartan_wsparse_build(ws, w));
    ck_assert_uint_eq(spartan_wsparse_nnz(ws), 24);
    /* W of another shape, an output of the wrong width, the output aliasing the input */
    spartan_tensor *w2;
    OK(spartan_tensor_create_2d(ctx, 6, 4, &w2));
    ck_assert_int_eq(spartan_wsparse_build(ws, w2), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_gemm_wsparse_fwd(ctx, x, w, ws, x), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_gemm_wsparse_bwd_input(ctx, x, w, ws, y),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_gemm_wsparse_fwd(ctx, NULL, w, ws, y),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_wsparse_create(ctx, 4, 6, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    spartan_wsparse_destroy(ws);
    spartan_wsparse_destroy(NULL);
    spartan_tensor *all[] = {w, x, y, w2};
    for (size_t i = 0; i < 4; i++) spartan_tensor_destroy(all[i]);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("wsparse");
    TCase *t = tcase_create("gemm");
    tcase_set_timeout(t, 600);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_shapes);
    tcase_add_test(t, test_layer_shapes);
    tcase_add_test(t, test_empty);
    tcase_add_test(t, test_stale_and_rebuild);
    tcase_add_test(t, test_refusals);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    return th_run_suite(suite());
}
