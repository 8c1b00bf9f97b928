/* Tests that every operation of ops.h refuses, with INVALID_ARGUMENT and a message that says
 * why, a tensor of another context and an output that shares its buffer with an input it
 * cannot be written over (a GEMM whose C is A or B once returned OK with a wrong result); and
 * that the in-place uses ops.h allows still work. */
#include <check.h>
#include <string.h>

#include "harness.h"
#include "spartan/spartan.h"

static spartan_context *ctx, *other;

static void setup(void) {
    spartan_context_opts o = spartan_context_opts_default();
    o.device = "pocl";
    ck_assert_msg(spartan_context_create(&o, &ctx) == SPARTAN_OK, "%s", spartan_last_error(NULL));
    ck_assert_msg(spartan_context_create(&o, &other) == SPARTAN_OK, "%s", spartan_last_error(NULL));
}

static void teardown(void) {
    spartan_context_destroy(ctx);
    spartan_context_destroy(other);
}

static spartan_tensor *mat(spartan_context *c, size_t rows, size_t cols) {
    spartan_tensor *t;
    TH_OK(c, spartan_tensor_create_2d(c, rows, cols, &t));
    TH_OK(c, spartan_tensor_fill(t, 0.5f));
    return t;
}

/* st is INVALID_ARGUMENT and ctx's message holds want. */
#define REFUSED(call, want)                                                                        \
    do {                                                                                           \
        spartan_status st_ = (call);                                                               \
        ck_assert_msg(st_ == SPARTAN_STATUS_INVALID_ARGUMENT, "%s: %s, wanted INVALID_ARGUMENT",   \
                      #call, spartan_status_name(st_));                                            \
        ck_assert_msg(strstr(spartan_last_error(ctx), want) != NULL,                               \
                      "%s: message '%s' lacks '%s'", #call, spartan_last_error(ctx), want);        \
    } while (0)

#define OTHER  "another context"
#define SHARES "shares its buffer"

START_TEST(tensors_of_another_context_are_refused) {
    spartan_tensor *a = mat(ctx, 8, 8), *b = mat(ctx, 8, 8), *c = mat(ctx, 8, 8);
    spartan_tensor *x = mat(other, 8, 8);
    REFUSED(spartan_gemm_dense(ctx, SPARTAN_GEMM_OWN, 0, 0, 1.0f, x, b, 0.0f, c), OTHER);
    REFUSED(spartan_transpose(ctx, x, c), OTHER);
    REFUSED(spartan_relu(ctx, x, c), OTHER);
    REFUSED(spartan_relu(ctx, a, x), OTHER);
    REFUSED(spartan_gemm_sparse_fwd_direct(ctx, a, x, c), OTHER);
    spartan_window w = {2, 4, 4, 2, 2, 2, 2, 0};
    spartan_tensor *img = mat(ctx, 64, 1), *cols = mat(ctx, 8, 8), *pool = mat(ctx, 8, 2);
    spartan_tensor *arg = mat(ctx, 8, 2), *ximg = mat(other, 64, 1);
    REFUSED(spartan_im2col(ctx, &w, ximg, cols), OTHER);
    REFUSED(spartan_col2im(ctx, &w, cols, ximg), OTHER);
    spartan_tensor *conv_w = mat(ctx, 8, 8);
    REFUSED(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &w, ximg, conv_w, cols), OTHER);
    REFUSED(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &w, img, x, cols), OTHER);
    REFUSED(spartan_conv2d_backward_input(ctx, SPARTAN_PATH_DENSE, &w, cols, conv_w, ximg), OTHER);
    REFUSED(spartan_conv2d_backward_input(ctx, SPARTAN_PATH_SPARSE, &w, cols, x, img), OTHER);
    /* backward-by-weight: x 64, dy 8 x 8 (out 2 x 2, batch 2), dweight 8 x 8 */
    REFUSED(spartan_conv2d_backward_weight(ctx, SPARTAN_PATH_DENSE, &w, ximg, a, conv_w), OTHER);
    REFUSED(spartan_conv2d_backward_weight(ctx, SPARTAN_PATH_SPARSE, &w, img, x, conv_w), OTHER);
    REFUSED(spartan_conv2d_backward_weight(ctx, SPARTAN_PATH_DENSE, &w, img, a, x), OTHER);
    spartan_tensor_destroy(conv_w);
    spartan_tensor *bias = mat(ctx, 1, 8), *xbias = mat(other, 1, 8);
    REFUSED(spartan_bias_add(ctx, a, xbias), OTHER);
    REFUSED(spartan_bias_grad(ctx, x, bias), OTHER);
    REFUSED(spartan_relu_backward(ctx, a, x, c), OTHER);
    REFUSED(spartan_maxpool_forward(ctx, &w, ximg, pool, arg), OTHER);
    spartan_tensor *pb = mat(ctx, 1, 2), *xpb = mat(other, 1, 2);
    REFUSED(spartan_relu_maxpool_forward(ctx, &w, ximg, pb, pool, arg), OTHER);
    REFUSED(spartan_relu_maxpool_forward(ctx, &w, img, xpb, pool, arg), OTHER);
    REFUSED(spartan_maxpool_backward(ctx, &w, pool, arg, ximg), OTHER);
    REFUSED(spartan_maxpool_relu_backward(ctx, &w, pool, arg, pool, ximg), OTHER);
    REFUSED(spartan_avgpool_forward(ctx, &w, ximg, pool), OTHER);
    REFUSED(spartan_avgpool_backward(ctx, &w, pool, ximg), OTHER);
    REFUSED(spartan_dropout_forward(ctx, x, a, 0.5f, 1, 2), OTHER);
    REFUSED(spartan_dropout_backward(ctx, a, x, 0.5f, 1, 2), OTHER);
    spartan_tensor *labels = mat(ctx, 8, 1), *stats = mat(ctx, 8, 2);
    REFUSED(spartan_softmax_xent(ctx, x, labels, 1.0f, NULL, stats), OTHER);
    REFUSED(spartan_softmax_xent(ctx, a, labels, 1.0f, x, stats), OTHER);
    REFUSED(spartan_sgd_step(ctx, a, x, b, 0.1f, 0.9f, 0.0f), OTHER);
    spartan_sparse *s;
    TH_OK(ctx, spartan_sparse_create(ctx, 8, 8, &s));
    REFUSED(spartan_relu_monitor(ctx, x, a, s), OTHER);
    REFUSED(spartan_compact(ctx, x, s, SPARTAN_COMPACT_ROWS), OTHER);
    TH_OK(ctx, spartan_compact(ctx, a, s, SPARTAN_COMPACT_ROWS | SPARTAN_COMPACT_COLS));
    REFUSED(spartan_gemm_sparse_fwd(ctx, s, x, c), OTHER);
    REFUSED(spartan_gemm_sparse_bwd_input(ctx, s, x, b, c), OTHER);
    REFUSED(spartan_gemm_sparse_bwd_weight(ctx, s, x, c), OTHER);
    spartan_sparse_destroy(s);
    spartan_tensor *all[] = {a,    b,    c,     x,      img,   cols, pool, arg,
                             ximg, bias, xbias, labels, stats, pb,   xpb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) spartan_tensor_destroy(all[i]);
}
END_TEST

START_TEST(outputs_over_their_inputs_are_refused) {
    spartan_tensor *a = mat(ctx, 8, 8), *b = mat(ctx, 8, 8), *c = mat(ctx, 8, 8);
    REFUSED(spartan_gemm_dense(ctx, SPARTAN_GEMM_OWN, 0, 0, 1.0f, a, b, 0.0f, a), SHARES);
    REFUSED(spartan_gemm_dense(ctx, SPARTAN_GEMM_BEST, 0, 1, 1.0f, a, b, 1.0f, b), SHARES);
    REFUSED(spartan_transpose(ctx, a, a), SHARES);
    REFUSED(spartan_gemm_sparse_fwd_direct(ctx, a, b, a), SHARES);
    REFUSED(spartan_gemm_sparse_fwd_direct(ctx, a, b, b), SHARES);
    spartan_sparse *s;
    TH_OK(ctx, spartan_sparse_create(ctx, 8, 8, &s));
    TH_OK(ctx, spartan_compact(ctx, a, s, SPARTAN_COMPACT_ROWS | SPARTAN_COMPACT_COLS));
    REFUSED(spartan_gemm_sparse_fwd(ctx, s, b, a), SHARES); /* over the compacted X */
    REFUSED(spartan_gemm_sparse_fwd(ctx, s, b, b), SHARES);
    REFUSED(spartan_gemm_sparse_bwd_input(ctx, s, b, c, b), SHARES);
    REFUSED(spartan_gemm_sparse_bwd_input(ctx, s, b, c, a), SHARES);
    REFUSED(spartan_gemm_sparse_bwd_weight(ctx, s, b, b), SHARES);
    REFUSED(spartan_gemm_sparse_bwd_weight_dz(ctx, b, s, a), SHARES);
    REFUSED(spartan_gemm_sparse_bwd_weight_dz(ctx, b, s, b), SHARES);
    spartan_sparse_destroy(s);
    spartan_window w = {1, 8, 8, 1, 1, 1, 1, 0}; /* 1 x 1 windows: every shape matches */
    REFUSED(spartan_im2col(ctx, &w, a, a), SHARES);
    REFUSED(spartan_col2im(ctx, &w, a, a), SHARES);
    REFUSED(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &w, a, b, a), SHARES);
    REFUSED(spartan_conv2d_forward(ctx, SPARTAN_PATH_DENSE, &w, a, b, b), SHARES);
    REFUSED(spartan_conv2d_backward_input(ctx, SPARTAN_PATH_DENSE, &w, a, b, a), SHARES);
    REFUSED(spartan_conv2d_backward_input(ctx, SPARTAN_PATH_SPARSE, &w, a, b, b), SHARES);
    spartan_window w2 = {2, 4, 4, 2, 2, 2, 2, 0}; /* x 64, dy 8 x 8, dweight 8 x 8 */
    REFUSED(spartan_conv2d_backward_weight(ctx, SPARTAN_PATH_DENSE, &w2, a, b, a), SHARES);
    REFUSED(spartan_conv2d_backward_weight(ctx, SPARTAN_PATH_SPARSE, &w2, a, b, b), SHARES);
    REFUSED(spartan_maxpool_forward(ctx, &w, a, a, b), SHARES);
    REFUSED(spartan_maxpool_forward(ctx, &w, a, b, b), SHARES);
    REFUSED(spartan_relu_maxpool_forward(ctx, &w, a, NULL, a, b), SHARES);
    REFUSED(spartan_relu_maxpool_forward(ctx, &w, a, b, b, c), SHARES); /* the bias over y */
    REFUSED(spartan_relu_maxpool_forward(ctx, &w, a, c, b, c), SHARES); /* over arg */
    REFUSED(spartan_maxpool_backward(ctx, &w, a, b, a), SHARES);
    REFUSED(spartan_maxpool_relu_backward(ctx, &w, a, b, c, c), SHARES);
    REFUSED(spartan_avgpool_forward(ctx, &w, a, a), SHARES);
    REFUSED(spartan_avgpool_backward(ctx, &w, a, a), SHARES);
    spartan_tensor *row = mat(ctx, 1, 8), *labels = mat(ctx, 8, 1), *stats = mat(ctx, 8, 2);
    REFUSED(spartan_bias_grad(ctx, row, row), SHARES);
    REFUSED(spartan_softmax_xent(ctx, stats, labels, 1.0f, NULL, stats), SHARES);
    REFUSED(spartan_sgd_step(ctx, a, b, a, 0.1f, 0.9f, 0.0f), SHARES);
    REFUSED(spartan_sgd_step(ctx, a, a, b, 0.1f, 0.9f, 0.0f), SHARES);
    /* what ops.h allows in place still runs */
    TH_OK(ctx, spartan_relu(ctx, a, a));
    TH_OK(ctx, spartan_dropout_forward(ctx, a, a, 0.5f, 1, 2));
    TH_OK(ctx, spartan_relu_backward(ctx, a, b, b));
    TH_OK(ctx, spartan_gemm_dense(ctx, SPARTAN_GEMM_OWN, 0, 0, 1.0f, a, a, 0.0f, c));
    TH_OK(ctx, spartan_context_finish(ctx));
    spartan_tensor *all[] = {a, b, c, row, labels, stats};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) spartan_tensor_destroy(all[i]);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ops_args");
    TCase *tc = tcase_create("ops_args");
    tcase_set_timeout(tc, 300); /* the default 4 s: less than a cold context on a busy machine */
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, tensors_of_another_context_are_refused);
    tcase_add_test(tc, outputs_over_their_inputs_are_refused);
    suite_add_tcase(s, tc);
    return th_run_suite(s);
}
