/* Tests of the LSTM layer (runtime/nn/layers/lstm.c, the nn_lstm_* kernels): every parameter's
 * gradient, the input's among them (a layer before it), by finite differences (grad_check.c) over
 * several time steps and over one; a partial batch in evaluation giving the full batch's rows;
 * its description and refusals. One step against PyTorch's nn.LSTM is the parity test's. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grad_check.h"
#include "harness.h"
#include "spartan/spartan.h"

#define OK(call) TH_OK(th_ctx, call)

static spartan_model *from_text(const char *text) {
    spartan_model *m;
    OK(spartan_model_create_from_text(th_ctx, text, &m));
    return m;
}

static spartan_train_config config(void) {
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = 3;
    cfg.policy = SPARTAN_POLICY_DENSE;
    cfg.seed = 5;
    return cfg;
}

/* The rounding chain of an LSTM over T steps of F features into H units, then fc 3. */
static size_t chain(size_t T, size_t F, size_t H) {
    return T * (F + H) + H;
}

START_TEST(test_gradients) {
    spartan_train_config cfg = config();
    spartan_model *m = from_text("input 5x3x1\nlstm 4\nfc 3\n");
    th_gradient_check(th_ctx, m, &cfg, chain(5, 3, 4), 16, 15, 3);
    spartan_model_destroy(m);
    /* a layer before it: the input's gradient through the LSTM reaches the convolution's */
    m = from_text("input 5x3x1\nconv 2 k=1\nlstm 4\nfc 3\n");
    th_gradient_check(th_ctx, m, &cfg, chain(5, 6, 4) + 1, 16, 15, 3);
    spartan_model_destroy(m);
    /* one time step: no recurrence */
    m = from_text("input 1x7x1\nlstm 5\nfc 3\n");
    th_gradient_check(th_ctx, m, &cfg, chain(1, 7, 5), 16, 7, 3);
    spartan_model_destroy(m);
}
END_TEST

/* Evaluation on the first k images of a batch gives the losses those rows give in the full
 * batch: the recurrence keeps the images apart, whatever the count. */
START_TEST(test_partial_batch) {
    spartan_train_config cfg = config();
    cfg.batch = 6;
    spartan_model *m = from_text("input 4x5x1\nlstm 7\nfc 3\n");
    OK(spartan_model_prepare(m, &cfg));
    float img[6 * 20], logits_full[6 * 3], logits_part[2 * 3];
    for (size_t i = 0; i < 6 * 20; i++) img[i] = (float)sin(0.37 * (double)i);
    OK(spartan_model_predict(m, img, 6, logits_full, NULL));
    OK(spartan_model_predict(m, img, 2, logits_part, NULL));
    for (size_t i = 0; i < 2 * 3; i++)
        ck_assert_msg(logits_full[i] == logits_part[i], "logit %zu: %g full, %g partial", i,
                      (double)logits_full[i], (double)logits_part[i]);
    spartan_layer_info info;
    OK(spartan_model_layer_info(m, 0, &info));
    ck_assert_str_eq(info.kind, "lstm");
    ck_assert_uint_eq(info.params, (5 + 7 + 1) * 4 * 7);
    ck_assert_uint_eq(info.out_c, 7);
    spartan_model_destroy(m);
}
END_TEST

START_TEST(test_describe_and_refusals) {
    spartan_model *m = from_text("input 28x28x1\nlstm 16\nfc 10\n");
    char buf[256];
    spartan_model_describe(m, buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "lstm 16"));
    spartan_model_destroy(m);
    ck_assert_int_eq(spartan_model_create_from_text(th_ctx, "input 4x4x1\nlstm 0\nfc 3\n", &m),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    OK(spartan_model_create_preset(th_ctx, "lstm", &m));
    spartan_param p;
    spartan_train_config cfg = config();
    OK(spartan_model_prepare(m, &cfg));
    OK(spartan_model_param(m, 0, &p));
    ck_assert_str_eq(p.name, "lstm1.weight_ih");
    ck_assert(p.rank == 2 && p.shape[0] == 28 && p.shape[1] == 512);
    OK(spartan_model_param(m, 2, &p));
    ck_assert_str_eq(p.name, "lstm1.bias");
    /* PyTorch's initialisation: weights within 1/sqrt(128), the bias within twice that */
    float *w = th_floats(512);
    OK(spartan_tensor_read(p.value, w, 512));
    for (size_t i = 0; i < 512; i++) ck_assert(fabsf(w[i]) <= 2.0f / sqrtf(128.0f));
    free(w);
    spartan_model_destroy(m);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("lstm");
    TCase *tc = tcase_create("lstm");
    tcase_add_checked_fixture(tc, th_ctx_setup, th_ctx_teardown);
    tcase_add_test(tc, test_gradients);
    tcase_add_test(tc, test_partial_batch);
    tcase_add_test(tc, test_describe_and_refusals);
    tcase_set_timeout(tc, 600);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(suite());
}
