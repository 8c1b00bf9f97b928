/* Parity with PyTorch: lenet5's loss and every parameter's gradient after one forward and
 * backward pass, on the dense and the sparse path, against tests/fixtures/lenet5_parity
 * .safetensors, which tools/pytorch_parity.py wrote (PyTorch in float64 from float32 weights and
 * eight Fashion-MNIST images, converted to Spartan's layouts and names); and an LSTM's against
 * nn.LSTM (tests/fixtures/lstm_parity.safetensors, tools/pytorch_lstm_parity.py).
 *
 * Tolerance: an element is the end of a chain of accumulations: the forward GEMMs (reductions of
 * k), the loss, the backward GEMMs by input (n) and by weight (m), col2im (at most k terms of a
 * convolution). Each rounds with at most FLT_EPSILON relative to the magnitude of its terms, so
 * with K the sum of the reduction lengths on an element's chain (the loss's is classes + 8, as
 * in test_nn_ops) the error is at most (K + 2) eps times the scale of the terms of the last
 * reduction: th_tol(K, scale), where the fixture gives each gradient's scale (the largest sum of
 * |x| |dy| over an element's reduction, "<param>.grad.scale") and the loss's ("loss.scale"). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/safetensors.h"
#include "spartan/spartan.h"

#define FIXTURE      SPARTAN_TEST_FIXTURES "/lenet5_parity.safetensors"
#define LSTM_FIXTURE SPARTAN_TEST_FIXTURES "/lstm_parity.safetensors"

static spartan_context *ctx;
static sp_st_file fixture;

static void open_fixture(const char *path) {
    spartan_status st = spartan_context_create(NULL, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
    sp_err err = {0};
    st = sp_st_read(path, SIZE_MAX, &fixture, &err);
    ck_assert_msg(st == SPARTAN_OK, "%s", sp_err_message(&err));
    sp_err_free(&err);
}

static void setup(void) {
    open_fixture(FIXTURE);
}

static void setup_lstm(void) {
    open_fixture(LSTM_FIXTURE);
}

static void teardown(void) {
    sp_st_free(&fixture);
    spartan_context_destroy(ctx);
    ctx = NULL;
}

#define OK(call) TH_OK(ctx, call)

/* The fixture's F32 tensor `name` of numel elements, as host floats (caller frees). */
static float *fixture_floats(const char *name, size_t numel) {
    const sp_st_tensor *t = sp_st_find(&fixture, name);
    ck_assert_msg(t != NULL, "the fixture has no tensor %s", name);
    ck_assert_msg(t->dtype == SP_ST_F32 && t->bytes == 4 * numel,
                  "fixture tensor %s: %s of %zu bytes, expected F32 of %zu elements", name,
                  sp_st_dtype_name(t->dtype), t->bytes, numel);
    float *v = th_floats(numel);
    sp_st_f32_load(t->data, numel, v);
    return v;
}

static double fixture_scalar(const char *name) {
    float *v = fixture_floats(name, 1);
    double d = v[0];
    free(v);
    return d;
}

/* The chain lengths (see the top): of the loss, the forward reductions and the loss's own;
 * k_param[i] for the i-th GEMM layer's weight and bias gradients, the loss's chain, then the
 * backward reductions of the layers after it (by input: n; col2im of a convolution: at most k),
 * then its own by weight (m: the batch rows, which the bias gradient sums too). */
static size_t chain_lengths(const spartan_model *m, size_t classes, size_t *k_param) {
    size_t fwd = classes + 8, up = 0, g = 0;
    spartan_layer_info li;
    for (size_t i = 0; i < spartan_model_layer_count(m); i++) {
        OK(spartan_model_layer_info(m, i, &li));
        if (li.gemm) fwd += li.k, g++;
    }
    for (size_t i = spartan_model_layer_count(m); i-- > 0;) {
        OK(spartan_model_layer_info(m, i, &li));
        if (!li.gemm) continue;
        k_param[--g] = fwd + up + li.m;
        up += li.n + (strcmp(li.kind, "conv") == 0 ? li.k : 0);
    }
    return fwd;
}

/* Prepares m with cfg, gives it the fixture's nparams parameters and takes the gradients of the
 * fixture's images (cfg->batch of 28 x 28). */
static spartan_step_result fixture_gradients(spartan_model *m, const spartan_train_config *cfg,
                                             size_t nparams) {
    const size_t batch = cfg->batch;
    OK(spartan_model_prepare(m, cfg));
    ck_assert_uint_eq(spartan_model_param_count(m), nparams);
    for (size_t i = 0; i < nparams; i++) {
        spartan_param p;
        OK(spartan_model_param(m, i, &p));
        size_t n = spartan_tensor_numel(p.value);
        float *w = fixture_floats(p.name, n);
        OK(spartan_tensor_write(p.value, w, n));
        free(w);
    }
    float *img = fixture_floats("images", batch * 784), *lab = fixture_floats("labels", batch);
    spartan_step_result r;
    OK(spartan_model_gradients(m, img, lab, batch, &r));
    free(img);
    free(lab);
    return r;
}

/* Parameter i's gradient against the fixture's "<name>.grad", within th_tol(k, its scale). */
static void check_grad(const spartan_model *m, size_t i, size_t k, const char *what) {
    spartan_param p;
    OK(spartan_model_param(m, i, &p));
    const size_t n = spartan_tensor_numel(p.grad);
    char name[64];
    snprintf(name, sizeof name, "%s.grad", p.name);
    float *want = fixture_floats(name, n), *got = th_floats(n);
    snprintf(name, sizeof name, "%s.grad.scale", p.name);
    const double tol = th_tol(k, fixture_scalar(name));
    OK(spartan_tensor_read(p.grad, got, n));
    double *wantd = th_doubles(n), worst = 0.0, biggest = 0.0;
    for (size_t j = 0; j < n; j++) {
        wantd[j] = want[j];
        worst = fmax(worst, fabs((double)got[j] - wantd[j]));
        biggest = fmax(biggest, fabs(wantd[j]));
    }
    size_t first = 0, bad = th_count_bad(got, wantd, n, tol, &first);
    ck_assert_msg(bad == 0,
                  "%s: %s: %zu of %zu elements off, first [%zu] %.9g vs PyTorch %.9g; largest "
                  "error %.3g, tolerance %.3g",
                  what, p.name, bad, n, first, (double)got[first], wantd[first], worst, tol);
    /* a gradient that is all zeros would pass trivially */
    ck_assert_msg(biggest > 0.0, "%s: %s: the reference gradient is zero", what, p.name);
    free(want);
    free(got);
    free(wantd);
}

static void check_policy(spartan_policy_mode policy) {
    const size_t batch = 8;
    const char *pname = spartan_policy_mode_name(policy);
    spartan_model *m;
    OK(spartan_model_create_preset(ctx, "lenet5", &m));
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = batch;
    cfg.policy = policy;
    const spartan_step_result r = fixture_gradients(m, &cfg, 10);
    size_t k_param[5];
    const size_t k_loss = chain_lengths(m, 10, k_param);

    const double loss = fixture_scalar("loss"), ltol = th_tol(k_loss, fixture_scalar("loss.scale"));
    ck_assert_msg(fabs(r.loss - loss) <= ltol, "%s: loss %.9g, PyTorch %.9g (tolerance %.3g)",
                  pname, r.loss, loss, ltol);
    for (size_t i = 0; i < spartan_model_param_count(m); i++)
        check_grad(m, i, k_param[i / 2], pname);
    spartan_model_destroy(m);
}

START_TEST(lenet5_matches_pytorch_dense) {
    check_policy(SPARTAN_POLICY_DENSE);
}
END_TEST

START_TEST(lenet5_matches_pytorch_sparse) {
    check_policy(SPARTAN_POLICY_SPARSE);
}
END_TEST

/* An LSTM (tools/pytorch_lstm_parity.py: "input 28x28x1, lstm 32, fc 10", four images) against
 * nn.LSTM in float64. The chains: forward, per time step a reduction of F + H terms and the gates'
 * functions (a few ulps each, counted as 8 terms), T steps, then fc and the loss; backward, per
 * step the gradient through W_h (4H terms), T steps, then the weight's own reduction over B T
 * rows. */
static void check_lstm(spartan_policy_mode policy) {
    const size_t batch = 4, T = 28, F = 28, H = 32, classes = 10;
    spartan_model *m;
    OK(spartan_model_create_from_text(ctx, "input 28x28x1\nlstm 32\nfc 10\n", &m));
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = batch;
    cfg.policy = policy;
    const spartan_step_result r = fixture_gradients(m, &cfg, 5);
    const size_t fwd = T * (F + H + 8) + H + classes + 8, up = T * 4 * H;
    const double loss = fixture_scalar("loss"), ltol = th_tol(fwd, fixture_scalar("loss.scale"));
    ck_assert_msg(fabs(r.loss - loss) <= ltol, "lstm: loss %.9g, PyTorch %.9g (tolerance %.3g)",
                  r.loss, loss, ltol);
    for (size_t i = 0; i < 5; i++)
        check_grad(m, i, i < 3 ? fwd + up + batch * T : fwd + batch, "lstm");
    spartan_model_destroy(m);
}

START_TEST(lstm_matches_pytorch) {
    check_lstm(SPARTAN_POLICY_DENSE);
}
END_TEST

static Suite *parity_suite(void) {
    Suite *s = suite_create("parity");
    TCase *tc = tcase_create("parity");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, lenet5_matches_pytorch_dense);
    tcase_add_test(tc, lenet5_matches_pytorch_sparse);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("lstm");
    tcase_set_timeout(tl, 300);
    tcase_add_checked_fixture(tl, setup_lstm, teardown);
    tcase_add_test(tl, lstm_matches_pytorch);
    suite_add_tcase(s, tl);
    return s;
}

int main(void) {
    return th_run_suite(parity_suite());
}
