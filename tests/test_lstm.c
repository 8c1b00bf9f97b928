/* Tests of the LSTM layer (runtime/nn/layers/lstm.c, the nn_lstm_* kernels): every parameter's
 * gradient, the input's among them (a layer before it), by finite differences (grad_check.c) over
 * several time steps and over one; with dropout of the hidden units too (Bernoulli, and row
 * patterns both computed on the kept units alone and applied as a mask), and the kept units'
 * LSTM against the masked whole one step by step; a partial batch in evaluation giving the full
 * batch's rows; its description and refusals. One step against PyTorch's nn.LSTM is the parity
 * test's. */
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

/* Dropout of the hidden units: the gradients of the step's masked network, each kind; row with
 * an fc layer next runs on the kept units (the fc's engine "rows"), with a flatten between
 * applies the pattern as a mask. */
START_TEST(test_dropout_gradients) {
    static const char *const models[] = {"input 5x3x1\nlstm 6 p=0.5\nfc 3\n",
                                         "input 5x3x1\nlstm 6 p=0.5\nflatten\nfc 3\n"};
    for (int kind = 0; kind < SPARTAN_DROPOUT_KIND_COUNT; kind++)
        for (size_t i = 0; i < 2; i++) {
            spartan_train_config cfg = config();
            cfg.dropout_kind = (spartan_dropout_kind)kind;
            spartan_model *m = from_text(models[i]);
            th_gradient_check(th_ctx, m, &cfg, chain(5, 3, 6), th_small() ? 6 : 16, 15, 3);
            spartan_layer_info info;
            OK(spartan_model_layer_info(m, i + 1, &info));
            const int rows = kind == SPARTAN_DROPOUT_ROW && i == 0;
            ck_assert_str_eq(info.engine[SPARTAN_PASS_FWD], rows ? "rows" : "gemm");
            spartan_model_destroy(m);
        }
}
END_TEST

/* Row dropout: the LSTM on its kept units (gathered weights, every GEMM smaller, the update in
 * place) against the whole LSTM with the same patterns as masks; Bernoulli: the masks drop
 * something (the training loss differs from evaluation's) and p = 0 is no dropout. */
START_TEST(test_rows_equal_mask) {
    spartan_train_config cfg = config();
    cfg.batch = 8;
    cfg.dropout_kind = SPARTAN_DROPOUT_ROW;
    for (int p = 0; p < 2; p++) {
        cfg.dropout = p ? 0.7f : -1.0f;
        spartan_model *a = from_text("input 6x4x1\nlstm 9 p=0.4\nfc 3\n");
        spartan_model *b = from_text("input 6x4x1\nlstm 9 p=0.4\nflatten\nfc 3\n");
        th_same_function(th_ctx, a, b, &cfg, NULL, chain(6, 4, 9), 24, 3);
        spartan_layer_info info;
        OK(spartan_model_layer_info(a, 1, &info));
        ck_assert_str_eq(info.engine[SPARTAN_PASS_FWD], "rows");
        spartan_model_destroy(a);
        spartan_model_destroy(b);
    }
    float img[8 * 24], lab[8];
    for (size_t i = 0; i < 8 * 24; i++) img[i] = (float)sin(0.61 * (double)i);
    for (size_t i = 0; i < 8; i++) lab[i] = (float)(i % 3);
    cfg.dropout_kind = SPARTAN_DROPOUT_BERNOULLI;
    for (int p = 0; p < 2; p++) {
        cfg.dropout = p ? 0.5f : 0.0f;
        spartan_model *m = from_text("input 6x4x1\nlstm 9 p=0.4\nfc 3\n");
        OK(spartan_model_prepare(m, &cfg));
        spartan_step_result tr, ev;
        OK(spartan_model_train_loss(m, img, lab, 8, &tr));
        OK(spartan_model_evaluate(m, img, lab, 8, &ev));
        if (p)
            ck_assert_msg(tr.loss != ev.loss, "p 0.5: the training loss is evaluation's");
        else
            ck_assert_msg(tr.loss == ev.loss, "p 0: training %.9g, evaluation %.9g", tr.loss,
                          ev.loss);
        spartan_model_destroy(m);
    }
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
    ck_assert_ptr_nonnull(strstr(buf, "lstm 16\n")); /* no dropout: no p written */
    spartan_model_destroy(m);
    m = from_text("input 28x28x1\nlstm 16 p=0.25\nfc 10\n");
    spartan_model_describe(m, buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "lstm 16 p=0.25\n"));
    spartan_model_destroy(m);
    ck_assert_int_eq(spartan_model_create_from_text(th_ctx, "input 4x4x1\nlstm 3 p=1\nfc 3\n", &m),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
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
    tcase_add_test(tc, test_dropout_gradients);
    tcase_add_test(tc, test_rows_equal_mask);
    tcase_add_test(tc, test_partial_batch);
    tcase_add_test(tc, test_describe_and_refusals);
    tcase_set_timeout(tc, 600);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(suite());
}
