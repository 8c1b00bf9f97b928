/* Tests of kernels_cl/eltwise.cl against tests/ref on the device SPARTAN_DEVICE selects (ctest
 * runs this on POCL and, under the oclgrind label, on Oclgrind with its checks on). Sizes that
 * are not multiples of the vector width or the work-group, primes, 1; canaries after every
 * output catch writes past the end. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "program/context_internal.h"
#include "ref/ref.h"
#include "spartan/cl_interop.h"
#include "spartan/spartan.h"

#define CANARY       64
#define CANARY_VALUE -12345.5f

static spartan_context *ctx;
static cl_context clctx;
static cl_command_queue queue;

static void setup(void) {
    spartan_status st = spartan_context_create(NULL, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
    spartan_context_cl_handles(ctx, NULL, NULL, &clctx, &queue);
}

static void teardown(void) {
    spartan_context_destroy(ctx);
    ctx = NULL;
}

static cl_mem upload(const float *host, size_t n) {
    cl_int rc;
    cl_mem m = clCreateBuffer(clctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, n * sizeof(float),
                              (void *)host, &rc);
    ck_assert_msg(rc == CL_SUCCESS, "clCreateBuffer: %d", rc);
    return m;
}

static void download(cl_mem m, float *host, size_t n) {
    ck_assert_int_eq(
        clEnqueueReadBuffer(queue, m, CL_TRUE, 0, n * sizeof(float), host, 0, NULL, NULL),
        CL_SUCCESS);
}

/* Global size for n elements: ceil(n / VEC) work-items, rounded up to the work-group. */
static void launch(cl_kernel k, size_t n) {
    size_t vec = (size_t)spartan_context_tuned(ctx, "VEC");
    size_t wg = (size_t)spartan_context_tuned(ctx, "WG");
    size_t items = (n + vec - 1) / vec;
    size_t global = (items + wg - 1) / wg * wg;
    ck_assert_int_eq(clEnqueueNDRangeKernel(queue, k, 1, NULL, &global, &wg, 0, NULL, NULL),
                     CL_SUCCESS);
    ck_assert_int_eq(clFinish(queue), CL_SUCCESS);
}

static size_t sizes[16];
static size_t nsizes;

static void make_sizes(void) {
    size_t v = (size_t)spartan_context_tuned(ctx, "VEC");
    size_t g = (size_t)spartan_context_tuned(ctx, "WG");
    size_t s[] = {1, 2, 3, v - 1 ? v - 1 : 1, v, v + 1, v * g - 1, v * g, v * g + 1, 1009, 65537};
    nsizes = sizeof s / sizeof s[0];
    memcpy(sizes, s, sizeof s);
}

static void check_canary(const float *buf, size_t n) {
    for (size_t i = n; i < n + CANARY; i++)
        ck_assert_msg(buf[i] == CANARY_VALUE, "write past the end at %zu (n = %zu)", i, n);
}

START_TEST(fill_matches_reference) {
    make_sizes();
    cl_kernel k = sp_context_kernel(ctx, "eltwise_fill");
    ck_assert_ptr_nonnull(k);
    for (size_t s = 0; s < nsizes; s++) {
        size_t n = sizes[s];
        float *host = malloc((n + CANARY) * sizeof *host);
        double *want = malloc(n * sizeof *want);
        for (size_t i = 0; i < n + CANARY; i++) host[i] = CANARY_VALUE;
        cl_mem m = upload(host, n + CANARY);
        cl_uint nn = (cl_uint)n;
        float value = 0.375f + (float)s;
        clSetKernelArg(k, 0, sizeof m, &m);
        clSetKernelArg(k, 1, sizeof nn, &nn);
        clSetKernelArg(k, 2, sizeof value, &value);
        launch(k, n);
        download(m, host, n + CANARY);
        ref_fill(want, n, value);
        size_t first = 0;
        ck_assert_msg(th_count_bad(host, want, n, 0.0, &first) == 0, "n=%zu: x[%zu]=%g", n, first,
                      (double)host[first]);
        check_canary(host, n);
        clReleaseMemObject(m);
        free(host);
        free(want);
    }
}
END_TEST

START_TEST(axpy_matches_reference) {
    make_sizes();
    cl_kernel k = sp_context_kernel(ctx, "eltwise_axpy");
    ck_assert_ptr_nonnull(k);
    th_rng rng;
    th_rng_init(&rng, th_seed());
    for (size_t s = 0; s < nsizes; s++) {
        size_t n = sizes[s];
        float *x = malloc((n + CANARY) * sizeof *x), *y = malloc((n + CANARY) * sizeof *y);
        double *want = malloc(n * sizeof *want);
        for (size_t i = 0; i < n + CANARY; i++) {
            x[i] = i < n ? th_rng_uniform(&rng, -2.0f, 2.0f) : CANARY_VALUE;
            y[i] = i < n ? th_rng_uniform(&rng, -2.0f, 2.0f) : CANARY_VALUE;
        }
        float a = -0.7f;
        ref_axpy(want, y, x, n, a);
        cl_mem mx = upload(x, n + CANARY), my = upload(y, n + CANARY);
        cl_uint nn = (cl_uint)n;
        clSetKernelArg(k, 0, sizeof my, &my);
        clSetKernelArg(k, 1, sizeof mx, &mx);
        clSetKernelArg(k, 2, sizeof nn, &nn);
        clSetKernelArg(k, 3, sizeof a, &a);
        launch(k, n);
        download(my, y, n + CANARY);
        /* One multiply and one add: error within a few ulps of |a x| + |y| <= 0.7*2 + 2. */
        double tol = th_tol(1, 0.7 * 2.0 + 2.0);
        size_t first = 0;
        ck_assert_msg(th_count_bad(y, want, n, tol, &first) == 0, "n=%zu: y[%zu]=%.9g want %.9g", n,
                      first, (double)y[first], want[first]);
        check_canary(y, n);
        clReleaseMemObject(mx);
        clReleaseMemObject(my);
        free(x);
        free(y);
        free(want);
    }
}
END_TEST

static Suite *eltwise_suite(void) {
    Suite *s = suite_create("eltwise");
    TCase *tc = tcase_create("eltwise");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, fill_matches_reference);
    tcase_add_test(tc, axpy_matches_reference);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(eltwise_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
