/* Tests of runtime/tensor: refusals whose messages name the actual problem (an overflowing
 * shape, a bad rank, a NULL buffer), and the shapes they leave unchanged. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "spartan/spartan.h"

#define ctx th_ctx

/* The call returned INVALID_ARGUMENT and ctx's message holds phrase. */
static void refused(spartan_status st, const char *phrase) {
    const char *msg = spartan_last_error(ctx);
    ck_assert_msg(st == SPARTAN_STATUS_INVALID_ARGUMENT, "%s: %s", spartan_status_name(st), msg);
    ck_assert_msg(strstr(msg, phrase), "\"%s\" lacks \"%s\"", msg, phrase);
}

START_TEST(refusals_name_the_problem) {
    spartan_tensor *t = (spartan_tensor *)&t;
    /* The shape whose byte count overflows is named, not just "size overflows". */
    size_t huge[3] = {(size_t)1 << 40, (size_t)1 << 30, 64};
    refused(spartan_tensor_create(ctx, 3, huge, &t),
            "spartan_tensor_create: 1099511627776 x 1073741824 x 64 floats are more bytes");
    ck_assert_ptr_null(t);
    refused(spartan_tensor_create(ctx, 5, huge, &t), "rank 5 is not 1..4");

    size_t dims[2] = {3, 4};
    TH_OK(ctx, spartan_tensor_create(ctx, 2, dims, &t));
    /* A bad rank is a bad rank (it used to be "shape does not hold 12 elements"). */
    refused(spartan_tensor_reshape(t, 0, dims), "spartan_tensor_reshape: rank 0 is not 1..4");
    refused(spartan_tensor_reshape(t, 1, NULL), "spartan_tensor_reshape: NULL dims");
    size_t other[2] = {5, 2};
    refused(spartan_tensor_reshape(t, 2, other), "5 x 2 does not hold the tensor's 12 elements");
    ck_assert_uint_eq(spartan_tensor_rows(t), 3);
    /* A NULL host buffer with the right count (it used to say "12 elements, the tensor holds
     * 12"). */
    refused(spartan_tensor_write(t, NULL, 12), "spartan_tensor_write: NULL host buffer");
    refused(spartan_tensor_read(t, NULL, 12), "spartan_tensor_read: NULL host buffer");
    refused(spartan_tensor_read(t, (float *)&t, 11), "11 elements, the tensor holds 12");
    spartan_tensor_destroy(t);
}
END_TEST

static Suite *tensor_suite(void) {
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("tensor");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, th_ctx_setup, th_ctx_teardown);
    tcase_add_test(tc, refusals_name_the_problem);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(tensor_suite());
}
