/* Tests of the layers and the model (runtime/nn): finite-difference gradient checks of every
 * parameter of small models that contain every layer kind, on the dense and the sparse path; the
 * two paths giving the same losses over several steps; reproducibility from the seed; a
 * training smoke test on 512 real Fashion-MNIST images; and the refusals of bad calls (layers
 * added after prepare among them).
 *
 * Gradient checks: the model's loss is piecewise smooth in each parameter (ReLU and max-pool
 * have kinks). For a parameter entry w with analytic gradient g, the central difference
 * d(h) = (L(w + h) - L(w - h)) / 2h has two errors: rounding, at most 2 * eps_L / 2h where eps_L
 * bounds the float error of one loss evaluation, eps_L = (K + 2) * FLT_EPSILON * max(1, L) with
 * K the longest chain of accumulated terms (the sum of the layers' reduction lengths), and
 * truncation, at most h^2 * |L'''| / 6 on a smooth piece; we bound the latter by h * |g| (the
 * curvature of the softmax is at most 1 per unit of logit). A step that crosses a kink is seen
 * as d(h) and d(h/2) disagreeing by more than that tolerance; such entries are skipped, and at
 * most a fifth of the checked entries may be. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grad_check.h"
#include "harness.h"
#include "spartan/spartan.h"

static spartan_context *ctx;
static int small; /* SPARTAN_TEST_SMALL=1 (the rusticl run): the slowest new cases trimmed */

static void setup(void) {
    spartan_status st = spartan_context_create(NULL, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
}

static void teardown(void) {
    spartan_context_destroy(ctx);
    ctx = NULL;
}

#define OK(call) TH_OK(ctx, call)

/* A small CNN with every layer kind after a trainable layer (so every backward is exercised by
 * the first convolution's gradient): 7x7x2 -> conv 4 3x3 pad 1 -> relu -> conv 5 3x3 stride 2
 * pad 1 -> relu -> maxpool 2 -> flatten -> dropout 0.25 -> fc 6 -> relu -> fc 3. */
static spartan_model *small_cnn(void) {
    spartan_model *m;
    OK(spartan_model_create(ctx, 7, 7, 2, 3, &m));
    OK(spartan_model_add_conv(m, 4, 3, 1, 1));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_conv(m, 5, 3, 2, 1));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_maxpool(m, 2, 2));
    OK(spartan_model_add_flatten(m));
    OK(spartan_model_add_dropout(m, 0.25f));
    OK(spartan_model_add_fc(m, 6));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_fc(m, 3));
    return m;
}
#define SMALL_CNN_K (18 + 36 + 20 + 6)

/* An MLP on 3x3x1 inputs: fc 7 -> relu -> fc 5 -> relu -> fc 3. */
static spartan_model *small_mlp(void) {
    spartan_model *m;
    OK(spartan_model_create(ctx, 3, 3, 1, 3, &m));
    OK(spartan_model_add_fc(m, 7));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_fc(m, 5));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_fc(m, 3));
    return m;
}
#define SMALL_MLP_K (9 + 7 + 5)

/* Checks every parameter tensor's gradient at up to `per` entries against central differences
 * (grad_check.c), on a batch of 4 with the policy's paths. */
static void gradient_check(spartan_model *m, spartan_policy_mode policy, size_t k_chain, size_t per,
                           size_t px) {
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = 4;
    cfg.policy = policy;
    cfg.seed = 7;
    cfg.sample_every = 1;
    th_gradient_check(ctx, m, &cfg, k_chain, per, px, 3);
}

START_TEST(gradients_cnn_dense) {
    spartan_model *m = small_cnn();
    gradient_check(m, SPARTAN_POLICY_DENSE, SMALL_CNN_K, 12, 7 * 7 * 2);
    spartan_model_destroy(m);
}
END_TEST

START_TEST(gradients_cnn_sparse) {
    spartan_model *m = small_cnn();
    gradient_check(m, SPARTAN_POLICY_SPARSE, SMALL_CNN_K, 12, 7 * 7 * 2);
    spartan_model_destroy(m);
}
END_TEST

/* The patch-matrix engine of every convolution pass (SPARTAN_CONV_ENGINE=im2col), both paths. */
START_TEST(gradients_cnn_im2col_engine) {
    setenv("SPARTAN_CONV_ENGINE", "im2col", 1);
    for (int p = 0; p < 2; p++) {
        spartan_model *m = small_cnn();
        gradient_check(m, p ? SPARTAN_POLICY_SPARSE : SPARTAN_POLICY_DENSE, SMALL_CNN_K, 12,
                       7 * 7 * 2);
        spartan_model_destroy(m);
    }
    unsetenv("SPARTAN_CONV_ENGINE");
}
END_TEST

START_TEST(gradients_mlp_both_paths) {
    for (int p = 0; p < 2; p++) {
        spartan_model *m = small_mlp();
        gradient_check(m, p ? SPARTAN_POLICY_SPARSE : SPARTAN_POLICY_DENSE, SMALL_MLP_K, 16, 9);
        spartan_model_destroy(m);
    }
}
END_TEST

static void real_batch(size_t n, float **img, float **lab);

/* The pooling kinds inside a CNN: 8x8x2 -> conv 4 3x3 pad 1 -> relu -> avgpool 3x3 stride 2
 * pad 1 (overlapping windows, padding counted) -> conv 5 3x3 pad 1 -> relu -> globalavgpool ->
 * fc 3. Every parameter's gradient passes back through both pools. */
static spartan_model *pooling_cnn(void) {
    spartan_model *m;
    OK(spartan_model_create(ctx, 8, 8, 2, 3, &m));
    OK(spartan_model_add_conv(m, 4, 3, 1, 1));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_avgpool(m, 3, 2, 1));
    OK(spartan_model_add_conv(m, 5, 3, 1, 1));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_globalavgpool(m));
    OK(spartan_model_add_fc(m, 3));
    spartan_layer_info li;
    OK(spartan_model_layer_info(m, 2, &li));
    ck_assert_int_eq(li.type, SPARTAN_LAYER_AVGPOOL);
    ck_assert_uint_eq(li.out_h, 4); /* (8 + 2 - 3) / 2 + 1 */
    OK(spartan_model_layer_info(m, 5, &li));
    ck_assert_int_eq(li.type, SPARTAN_LAYER_GLOBALAVGPOOL);
    ck_assert(li.out_h == 1 && li.out_w == 1 && li.out_c == 5);
    return m;
}
/* the chains: conv 18, the avgpool's 9, conv 36, the global pool's 16, fc 5 */
#define POOLING_CNN_K (18 + 9 + 36 + 16 + 5)

START_TEST(gradients_pooling_both_paths) {
    for (int p = small ? 1 : 0; p < 2; p++) { /* small: the sparse path (POCL runs both) */
        spartan_model *m = pooling_cnn();
        gradient_check(m, p ? SPARTAN_POLICY_SPARSE : SPARTAN_POLICY_DENSE, POOLING_CNN_K, 12,
                       8 * 8 * 2);
        spartan_model_destroy(m);
    }
}
END_TEST

START_TEST(every_kind_through_the_enum) {
    /* spartan_model_add takes every kind of the enum; the name table covers it, and a value
     * outside it is refused. */
    spartan_model *m;
    OK(spartan_model_create(ctx, 6, 6, 2, 4, &m));
    const spartan_layer_spec specs[] = {
        {SPARTAN_LAYER_CONV, 3, 3, 1, 1, 0},       {SPARTAN_LAYER_RELU, 0, 0, 0, 0, 0},
        {SPARTAN_LAYER_MAXPOOL, 0, 2, 1, 0, 0},    {SPARTAN_LAYER_AVGPOOL, 0, 2, 1, 0, 0},
        {SPARTAN_LAYER_DROPOUT, 0, 0, 0, 0, .25f}, {SPARTAN_LAYER_GLOBALAVGPOOL, 0, 0, 0, 0, 0},
        {SPARTAN_LAYER_FLATTEN, 0, 0, 0, 0, 0},    {SPARTAN_LAYER_LSTM, 5, 0, 0, 0, 0},
        {SPARTAN_LAYER_FC, 4, 0, 0, 0, 0}};
    int seen[SPARTAN_LAYER_KIND_COUNT] = {0};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        OK(spartan_model_add(m, &specs[i]));
        spartan_layer_info li;
        OK(spartan_model_layer_info(m, i, &li));
        ck_assert_int_eq(li.type, specs[i].kind);
        ck_assert_str_eq(li.kind, spartan_layer_kind_name(specs[i].kind));
        seen[specs[i].kind] = 1;
    }
    for (int k = 0; k < SPARTAN_LAYER_KIND_COUNT; k++) {
        ck_assert_msg(seen[k], "kind %d not covered", k);
        ck_assert_ptr_nonnull(spartan_layer_kind_name((spartan_layer_kind)k));
    }
    ck_assert_ptr_null(spartan_layer_kind_name(SPARTAN_LAYER_KIND_COUNT));
    spartan_layer_spec bad = {(spartan_layer_kind)99, 1, 0, 0, 0, 0};
    ck_assert_int_eq(spartan_model_add(m, &bad), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(ctx), "99 is not a layer kind"));
    ck_assert_int_eq(spartan_model_add(m, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = 3;
    OK(spartan_model_prepare(m, &cfg));
    float img[3 * 72], lab[3] = {0, 1, 3};
    for (size_t i = 0; i < 3 * 72; i++) img[i] = (float)((i * 7) % 11) / 11.0f;
    spartan_step_result r;
    OK(spartan_model_train_step(m, img, lab, 3, &r));
    ck_assert(isfinite(r.loss));
    spartan_model_destroy(m);
    /* the pools refuse windows that do not fit */
    OK(spartan_model_create(ctx, 4, 4, 1, 3, &m));
    ck_assert_int_eq(spartan_model_add_avgpool(m, 5, 1, 0), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(ctx), "spartan_model_add_avgpool: 5x5 window"));
    ck_assert_int_eq(spartan_model_add_avgpool(m, 2, 2, 2), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_model_add_avgpool(m, 2, 0, 0), SPARTAN_STATUS_INVALID_ARGUMENT);
    spartan_model_destroy(m);
}
END_TEST

START_TEST(one_host_sync_per_step) {
    /* A training step reads back once, at its end (the loss statistics), on a sampled step as on
     * any other; timing marks on the host clock add one wait each, so the count is asserted
     * only where the context times with profiling events. */
    spartan_timing timing;
    const char *why;
    spartan_context_timing(ctx, &timing, &why);
    float *img, *lab;
    real_batch(16, &img, &lab);
    for (int preset = 0; preset < 2; preset++) {
        spartan_model *m;
        OK(spartan_model_create_preset(ctx, preset ? "lenet5" : "mlp", &m));
        spartan_train_config cfg = spartan_train_config_default();
        cfg.batch = 16;
        cfg.sample_every = 1; /* every step samples every monitor */
        cfg.policy = preset ? SPARTAN_POLICY_SPARSE : SPARTAN_POLICY_DENSE;
        OK(spartan_model_prepare(m, &cfg));
        spartan_layer_info li0;
        for (int step = 0; step < 3; step++) {
            spartan_step_result r;
            size_t before = spartan_context_syncs(ctx), launched = spartan_context_launches(ctx);
            OK(spartan_model_train_step(m, img, lab, 16, &r));
            ck_assert_uint_eq(r.syncs, spartan_context_syncs(ctx) - before);
            ck_assert_uint_eq(r.launches, spartan_context_launches(ctx) - launched);
            ck_assert_uint_ge(r.launches, 10); /* at least a GEMM, bias and SGD per layer */
            if (timing == SPARTAN_TIMING_EVENTS)
                ck_assert_msg(r.syncs == 1, "%s step %d: %zu syncs", preset ? "lenet5" : "mlp",
                              step, r.syncs);
            else
                ck_assert_uint_ge(r.syncs, 1);
        }
        /* the sparse forms are visible per pass: lenet5's conv1 (first layer, ReLU next) skips
         * X forward and dY in bwd_weight, and has no bwd_input */
        if (preset) {
            OK(spartan_model_layer_info(m, 0, &li0));
            ck_assert_int_eq(li0.form[SPARTAN_PASS_FWD], SPARTAN_FORM_ON_X);
            ck_assert_int_eq(li0.form[SPARTAN_PASS_BWD_INPUT], SPARTAN_FORM_NONE);
            ck_assert_int_eq(li0.form[SPARTAN_PASS_BWD_WEIGHT], SPARTAN_FORM_ON_DY);
            ck_assert_str_eq(spartan_sparse_form_name(li0.form[SPARTAN_PASS_BWD_WEIGHT]), "dy");
        }
        /* the samples reached the statistics: every monitored layer has one per step */
        spartan_layer_info li;
        OK(spartan_model_layer_info(m, preset ? 1 : 2, &li)); /* relu1 */
        ck_assert_uint_eq(li.samples, 3);
        ck_assert(li.zeros_last >= 0.0 && li.zeros_last <= 1.0);
        OK(spartan_model_layer_info(m, preset ? 7 : 3, &li)); /* an fc fed by a pool or ReLU */
        ck_assert_uint_eq(li.samples, 3);
        ck_assert(li.grad_zeros_last >= 0.0 && li.grad_zeros_last <= 1.0);
        spartan_step_result e;
        size_t before = spartan_context_syncs(ctx);
        OK(spartan_model_evaluate(m, img, lab, 16, &e));
        ck_assert_uint_eq(e.syncs, spartan_context_syncs(ctx) - before);
        ck_assert_uint_eq(e.syncs, 1);
        spartan_model_destroy(m);
    }
    free(img);
    free(lab);
}
END_TEST

/* Real data: the first n Fashion-MNIST training images. */
static void real_batch(size_t n, float **img, float **lab) {
    spartan_dataset *d;
    spartan_status st = spartan_dataset_load(NULL, "train", &d);
    ck_assert_msg(st == SPARTAN_OK, "Fashion-MNIST (tools/lib/deps.sh installs it): %s",
                  spartan_last_error(NULL));
    *img = th_floats(n * 784);
    *lab = th_floats(n);
    OK(spartan_dataset_batch(d, 0, n, *img, *lab));
    spartan_dataset_destroy(d);
}

START_TEST(device_tensors_and_predictions) {
    /* Training on device tensors gives the same run, bit for bit, as on host arrays; evaluation
     * on tensors the same loss; predictions are the arg-max of the logits and agree with the
     * evaluation's count of correct images. */
    const size_t batch = 8, px = 784;
    float *img, *lab;
    real_batch(batch, &img, &lab);
    spartan_model *a, *b;
    OK(spartan_model_create_preset(ctx, "lenet5", &a));
    OK(spartan_model_create_preset(ctx, "lenet5", &b));
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = batch;
    cfg.policy = SPARTAN_POLICY_SPARSE;
    OK(spartan_model_prepare(a, &cfg));
    OK(spartan_model_prepare(b, &cfg));
    spartan_tensor *timg, *tlab;
    size_t dims[4] = {batch, 28, 28, 1};
    OK(spartan_tensor_create(ctx, 4, dims, &timg));
    OK(spartan_tensor_create_2d(ctx, batch, 1, &tlab));
    OK(spartan_tensor_write(timg, img, batch * px));
    OK(spartan_tensor_write(tlab, lab, batch));
    for (int step = 0; step < 3; step++) {
        spartan_step_result ra, rb;
        OK(spartan_model_train_step(a, img, lab, batch, &ra));
        OK(spartan_model_train_step_tensors(b, timg, tlab, batch, &rb));
        ck_assert_msg(ra.loss == rb.loss && ra.correct == rb.correct,
                      "step %d: host %.9g, tensors %.9g", step, ra.loss, rb.loss);
    }
    spartan_step_result ea, eb;
    OK(spartan_model_evaluate(a, img, lab, batch, &ea));
    OK(spartan_model_evaluate_tensors(b, timg, tlab, batch, &eb));
    ck_assert(ea.loss == eb.loss && ea.correct == eb.correct);
    float logits[8 * 10];
    size_t pred[8], pred_only[8], correct = 0;
    OK(spartan_model_predict(a, img, batch, logits, pred));
    OK(spartan_model_predict(a, img, batch, NULL, pred_only));
    for (size_t i = 0; i < batch; i++) {
        size_t best = 0;
        for (size_t c = 1; c < 10; c++)
            if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
        ck_assert_uint_eq(pred[i], best);
        ck_assert_uint_eq(pred_only[i], best);
        correct += (float)pred[i] == lab[i];
    }
    ck_assert_uint_eq(correct, ea.correct);
    /* a partial batch predicts the same as the full one */
    size_t pred3[3];
    OK(spartan_model_predict(a, img, 3, NULL, pred3));
    for (size_t i = 0; i < 3; i++) ck_assert_uint_eq(pred3[i], pred[i]);
    /* refusals: nothing asked for, too small a tensor, a tensor of another context */
    ck_assert_int_eq(spartan_model_predict(a, img, batch, NULL, NULL),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    spartan_tensor *small_img;
    OK(spartan_tensor_create_2d(ctx, batch - 1, px, &small_img));
    ck_assert_int_eq(spartan_model_train_step_tensors(b, small_img, tlab, batch, NULL),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(spartan_last_error(ctx), "images tensor holds"), "%s",
                  spartan_last_error(ctx));
    spartan_context *other;
    OK(spartan_context_create(NULL, &other));
    spartan_tensor *foreign;
    TH_OK(other, spartan_tensor_create(other, 4, dims, &foreign));
    ck_assert_int_eq(spartan_model_evaluate_tensors(b, foreign, tlab, batch, NULL),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(ctx), "another context"));
    spartan_tensor_destroy(foreign);
    spartan_context_destroy(other);
    spartan_tensor_destroy(small_img);
    spartan_tensor_destroy(timg);
    spartan_tensor_destroy(tlab);
    spartan_model_destroy(a);
    spartan_model_destroy(b);
    free(img);
    free(lab);
}
END_TEST

/* Losses of `steps` SGD steps of a preset on real images; with engine (not NULL), every pass of
 * every convolution must have run on it ("implicit" or "im2col", spartan_layer_info.engine). */
static void train_losses(const char *preset, spartan_policy_mode policy, const float *img,
                         const float *lab, size_t batch, size_t steps, double *losses,
                         const char *engine) {
    spartan_model *m;
    OK(spartan_model_create_preset(ctx, preset, &m));
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = batch;
    cfg.policy = policy;
    cfg.sample_every = 2;
    OK(spartan_model_prepare(m, &cfg));
    for (size_t s = 0; s < steps; s++) {
        spartan_step_result r;
        OK(spartan_model_train_step(m, img + (s % 4) * batch * 784, lab + (s % 4) * batch, batch,
                                    &r));
        losses[s] = r.loss;
    }
    for (size_t i = 0; engine && i < spartan_model_layer_count(m); i++) {
        spartan_layer_info li;
        OK(spartan_model_layer_info(m, i, &li));
        for (int p = 0; li.type == SPARTAN_LAYER_CONV && p < SPARTAN_PASS_COUNT; p++)
            ck_assert_msg(!li.calls[p] || (li.engine[p] && strcmp(li.engine[p], engine) == 0),
                          "%s %s ran on %s, not %s", li.name, spartan_pass_name((spartan_pass)p),
                          li.engine[p] ? li.engine[p] : "nothing", engine);
    }
    spartan_model_destroy(m);
}

/* The two paths compute the same sums in different orders: after s steps the losses differ by
 * rounding only. Each step's loss carries an error of about (K + 2) eps relative (K the longest
 * reduction); the parameters' differences grow by at most the learning rate times the gradient
 * difference per step, so we allow (K + 2) * eps * (1 + s) relative per step, K the widest layer.
 */
static void paths_agree(const char *preset, size_t k_max) {
    const size_t batch = 32, steps = 6;
    float *img, *lab;
    real_batch(4 * batch, &img, &lab);
    double dense[6], sparse[6];
    train_losses(preset, SPARTAN_POLICY_DENSE, img, lab, batch, steps, dense, NULL);
    train_losses(preset, SPARTAN_POLICY_SPARSE, img, lab, batch, steps, sparse, NULL);
    for (size_t s = 0; s < steps; s++) {
        double tol = (double)(k_max + 2) * FLT_EPSILON * (double)(1 + s) * fmax(1.0, dense[s]);
        ck_assert_msg(fabs(dense[s] - sparse[s]) <= tol,
                      "%s step %zu: dense loss %.9g, sparse %.9g (tolerance %.3g)", preset, s,
                      dense[s], sparse[s], tol);
    }
    ck_assert_msg(dense[steps - 1] < dense[0], "%s: loss did not fall (%g -> %g)", preset, dense[0],
                  dense[steps - 1]);
    free(img);
    free(lab);
}

START_TEST(dense_and_sparse_agree_mlp) {
    paths_agree("mlp", 784);
}
END_TEST

START_TEST(dense_and_sparse_agree_lenet5) {
    paths_agree("lenet5", 400);
}
END_TEST

/* lenet5's convolutions on the implicit kernels and on the patch matrix (SPARTAN_CONV_ENGINE),
 * dense and sparse: the same sums in other orders, within paths_agree's tolerance. */
START_TEST(conv_engines_agree_lenet5) {
    const size_t batch = 32, steps = 4;
    float *img, *lab;
    real_batch(4 * batch, &img, &lab);
    for (int p = 0; p < 2; p++) {
        const spartan_policy_mode policy = p ? SPARTAN_POLICY_SPARSE : SPARTAN_POLICY_DENSE;
        double implicit[4], im2col[4];
        setenv("SPARTAN_CONV_ENGINE", "implicit", 1);
        train_losses("lenet5", policy, img, lab, batch, steps, implicit, "implicit");
        setenv("SPARTAN_CONV_ENGINE", "im2col", 1);
        train_losses("lenet5", policy, img, lab, batch, steps, im2col, "im2col");
        unsetenv("SPARTAN_CONV_ENGINE");
        for (size_t s = 0; s < steps; s++) {
            double tol = (400.0 + 2) * FLT_EPSILON * (double)(1 + s) * fmax(1.0, implicit[s]);
            ck_assert_msg(fabs(implicit[s] - im2col[s]) <= tol,
                          "%s step %zu: implicit loss %.9g, im2col %.9g (tolerance %.3g)",
                          spartan_policy_mode_name(policy), s, implicit[s], im2col[s], tol);
        }
    }
    free(img);
    free(lab);
}
END_TEST

START_TEST(same_seed_same_run) {
    const size_t batch = 16;
    float *img, *lab;
    real_batch(4 * batch, &img, &lab);
    double a[3], b[3];
    train_losses("lenet5", SPARTAN_POLICY_SPARSE, img, lab, batch, 3, a, NULL);
    train_losses("lenet5", SPARTAN_POLICY_SPARSE, img, lab, batch, 3, b, NULL);
    for (int s = 0; s < 3; s++) ck_assert_msg(a[s] == b[s], "step %d: %.9g vs %.9g", s, a[s], b[s]);
    free(img);
    free(lab);
}
END_TEST

/* 512 real images, 4 epochs of 8 steps: the training loss falls well below its start and the
 * model fits its training images better than chance by far. */
START_TEST(smoke_training_lowers_loss) {
    const size_t n = 512, batch = 64;
    spartan_dataset *d;
    OK(spartan_dataset_load(NULL, "train", &d));
    spartan_dataset_limit(d, n);
    float *img = th_floats(batch * 784), *lab = th_floats(batch);
    /* small: the sparse path only (a step of this MLP takes about 1.3 s on llvmpipe);
     * dense_and_sparse_agree_mlp still runs both there */
    for (int policy = small ? 1 : 0; policy < 2; policy++) {
        spartan_model *m;
        OK(spartan_model_create_preset(ctx, "mlp", &m));
        spartan_train_config cfg = spartan_train_config_default();
        cfg.batch = batch;
        cfg.policy = (spartan_policy_mode)policy;
        OK(spartan_model_prepare(m, &cfg));
        double first = 0.0, last = 0.0;
        for (int e = 0; e < 4; e++) {
            spartan_dataset_shuffle(d, 3, (uint64_t)e);
            double sum = 0.0;
            for (size_t s = 0; s < n / batch; s++) {
                spartan_step_result r;
                OK(spartan_dataset_batch(d, s * batch, batch, img, lab));
                OK(spartan_model_train_step(m, img, lab, batch, &r));
                sum += r.loss;
            }
            if (e == 0) first = sum / (double)(n / batch);
            last = sum / (double)(n / batch);
        }
        ck_assert_msg(last < 0.6 * first, "policy %d: mean loss %g in epoch 1, %g in epoch 4",
                      policy, first, last);
        size_t correct = 0;
        for (size_t s = 0; s < n / batch; s++) {
            spartan_step_result r;
            OK(spartan_dataset_batch(d, s * batch, batch, img, lab));
            OK(spartan_model_evaluate(m, img, lab, batch, &r));
            correct += r.correct;
        }
        ck_assert_msg(correct * 2 > n, "policy %d: %zu of %zu training images right", policy,
                      correct, n);
        /* the per-layer statistics saw every pass */
        spartan_layer_info li;
        OK(spartan_model_layer_info(m, 3, &li)); /* fc2 */
        ck_assert_str_eq(li.name, "fc2");
        ck_assert(li.calls[SPARTAN_PASS_FWD] > 0 && li.calls[SPARTAN_PASS_BWD_INPUT] > 0 &&
                  li.calls[SPARTAN_PASS_BWD_WEIGHT] > 0);
        ck_assert(li.seconds[SPARTAN_PASS_FWD] > 0.0);
        ck_assert(li.zeros_first > 0.2 && li.zeros_first < 0.9);
        ck_assert_int_eq(li.path[SPARTAN_PASS_BWD_INPUT],
                         policy ? SPARTAN_PATH_SPARSE : SPARTAN_PATH_DENSE);
        spartan_model_destroy(m);
    }
    free(img);
    free(lab);
    spartan_dataset_destroy(d);
}
END_TEST

/* A partial batch evaluates (views of the batch buffers) the same as those images in a full one. */
START_TEST(partial_batch_evaluation) {
    const size_t batch = 8;
    float *img, *lab;
    real_batch(batch, &img, &lab);
    spartan_model *m;
    OK(spartan_model_create_preset(ctx, "lenet5", &m));
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = batch;
    OK(spartan_model_prepare(m, &cfg));
    spartan_step_result full, part;
    OK(spartan_model_evaluate(m, img, lab, batch, &full));
    double sum = 0.0;
    for (size_t i = 0; i < batch; i++) {
        OK(spartan_model_evaluate(m, img + i * 784, lab + i, 1, &part));
        ck_assert_uint_eq(part.count, 1);
        sum += part.loss;
    }
    ck_assert_msg(fabs(sum / batch - full.loss) <= 400 * FLT_EPSILON * fmax(1.0, full.loss),
                  "one by one %.9g, batched %.9g", sum / batch, full.loss);
    spartan_model_destroy(m);
    free(img);
    free(lab);
}
END_TEST

START_TEST(bad_calls_are_refused) {
    spartan_model *m = NULL;
    ck_assert_int_eq(spartan_model_create_preset(ctx, "resnet", &m),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    ck_assert(strstr(spartan_last_error(ctx), "resnet"));
    OK(spartan_model_create(ctx, 4, 4, 1, 3, &m));
    ck_assert_int_eq(spartan_model_add_conv(m, 2, 5, 1, 0), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_model_add_dropout(m, 1.0f), SPARTAN_STATUS_INVALID_ARGUMENT);
    OK(spartan_model_add_fc(m, 4));
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = 2;
    ck_assert_int_eq(spartan_model_prepare(m, &cfg), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(ctx), "classes"));
    OK(spartan_model_add_fc(m, 3));
    cfg.policy = (spartan_policy_mode)7;
    ck_assert_int_eq(spartan_model_prepare(m, &cfg), SPARTAN_STATUS_INVALID_ARGUMENT);
    cfg.policy = SPARTAN_POLICY_DENSE;
    float img[3 * 16] = {0}, lab[3] = {0};
    ck_assert_int_eq(spartan_model_train_step(m, img, lab, 2, NULL),
                     SPARTAN_STATUS_INVALID_ARGUMENT); /* not prepared */
    OK(spartan_model_prepare(m, &cfg));
    ck_assert_int_eq(spartan_model_train_step(m, img, lab, 3, NULL),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_model_evaluate(m, img, lab, 0, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    OK(spartan_model_train_step(m, img, lab, 2, NULL));
    spartan_model_destroy(m);
    spartan_policy_mode mode;
    ck_assert_int_eq(spartan_policy_mode_parse("fast", &mode), SPARTAN_STATUS_INVALID_ARGUMENT);
}
END_TEST

/* One fully connected layer, 2x2x1 inputs to 3 classes, and a dense configuration for batches
 * of 2. */
static spartan_model *one_fc(spartan_train_config *cfg) {
    spartan_model *m;
    OK(spartan_model_create(ctx, 2, 2, 1, 3, &m));
    OK(spartan_model_add_fc(m, 3));
    *cfg = spartan_train_config_default();
    cfg->batch = 2;
    cfg->policy = SPARTAN_POLICY_DENSE;
    return m;
}

START_TEST(refusals_name_the_function_and_cause) {
    /* Each message names the function called and what is wrong with its arguments (they used
     * to name spartan_policy_create, or say "no layer 0" for a NULL output). */
    spartan_train_config cfg;
    spartan_model *m = one_fc(&cfg);
    cfg.policy = (spartan_policy_mode)7;
    ck_assert_int_eq(spartan_model_prepare(m, &cfg), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(spartan_last_error(ctx), "spartan_model_prepare: cfg->policy 7"), "%s",
                  spartan_last_error(ctx));
    ck_assert_int_eq(spartan_model_layer_info(m, 0, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(ctx), "spartan_model_layer_info: NULL model or out"));
    spartan_layer_info li;
    ck_assert_int_eq(spartan_model_layer_info(m, 1, &li), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(ctx), "no layer 1 (the model has 1)"));
    ck_assert_int_eq(spartan_model_param(m, 0, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(ctx), "spartan_model_param: NULL model or out"));
    spartan_model *p = NULL;
    ck_assert_int_eq(spartan_model_create_preset(ctx, "resnet", &p),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(ctx), "spartan_model_create_preset: unknown model"));
    spartan_model_destroy(m);
}
END_TEST

START_TEST(layers_after_prepare_are_refused) {
    /* Adding a layer used to unprepare the model silently, throwing away its parameters and
     * buffers; now every spartan_model_add_* refuses and the prepared model stays usable. */
    spartan_train_config cfg;
    spartan_model *m = one_fc(&cfg);
    OK(spartan_model_prepare(m, &cfg));
    float img[2 * 4] = {1, 0, 2, 0, 0, 3, 0, 4}, lab[2] = {0, 2};
    OK(spartan_model_train_step(m, img, lab, 2, NULL));
    spartan_status st[] = {spartan_model_add_fc(m, 3),
                           spartan_model_add_relu(m),
                           spartan_model_add_conv(m, 1, 1, 1, 0),
                           spartan_model_add_maxpool(m, 1, 1),
                           spartan_model_add_dropout(m, 0.5f),
                           spartan_model_add_flatten(m),
                           spartan_model_add_avgpool(m, 1, 1, 0),
                           spartan_model_add_globalavgpool(m)};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
        ck_assert_int_eq(st[i], SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(spartan_last_error(ctx), "spartan_model_add_globalavgpool: the model is "
                                                  "already prepared"),
                  "%s", spartan_last_error(ctx));
    ck_assert_uint_eq(spartan_model_layer_count(m), 1);
    ck_assert_uint_eq(spartan_model_param_count(m), 2);
    OK(spartan_model_train_step(m, img, lab, 2, NULL));
    ck_assert_uint_eq(spartan_model_steps(m), 2);
    spartan_model_destroy(m);
}
END_TEST

static Suite *nn_suite(void) {
    Suite *s = suite_create("nn");
    TCase *tc = tcase_create("nn");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, gradients_cnn_dense);
    tcase_add_test(tc, gradients_cnn_sparse);
    tcase_add_test(tc, gradients_mlp_both_paths);
    tcase_add_test(tc, gradients_pooling_both_paths);
    if (!small) tcase_add_test(tc, gradients_cnn_im2col_engine);
    tcase_add_test(tc, every_kind_through_the_enum);
    tcase_add_test(tc, one_host_sync_per_step);
    if (!small) tcase_add_test(tc, device_tensors_and_predictions); /* two contexts */
    tcase_add_test(tc, dense_and_sparse_agree_mlp);
    tcase_add_test(tc, dense_and_sparse_agree_lenet5);
    if (!small) tcase_add_test(tc, conv_engines_agree_lenet5);
    tcase_add_test(tc, same_seed_same_run);
    tcase_add_test(tc, smoke_training_lowers_loss);
    tcase_add_test(tc, partial_batch_evaluation);
    tcase_add_test(tc, bad_calls_are_refused);
    tcase_add_test(tc, layers_after_prepare_are_refused);
    tcase_add_test(tc, refusals_name_the_function_and_cause);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    const char *e = getenv("SPARTAN_TEST_SMALL");
    small = e && strcmp(e, "1") == 0;
    return th_run_suite(nn_suite());
}
