/* Tests of the gradient hooks (spartan_model_set_grad_hooks, the seam of data parallelism; the
 * MPI exchange on top has test_dist): ready() once per parameter in the backward pass's order and
 * finish() once after it; the update applying the gradients as finish() left them (a replica
 * whose finish() puts in a reference model's gradient over twice the images steps exactly as
 * that model does); the plain update that replaces the fused ones of row and tile dropout
 * applying the same rule; a hook's failure failing the step with its message and cancel()
 * called, the model usable after. No MPI: in one process, so it runs under the sanitizers too. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "spartan/spartan.h"

static spartan_context *ctx;

static void setup(void) {
    spartan_status st = spartan_context_create(NULL, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
}

static void teardown(void) {
    spartan_context_destroy(ctx);
    ctx = NULL;
}

#define OK(call) TH_OK(ctx, call)

/* Images and labels of a seeded batch of n 28 x 28 images, a third of the pixels 0. */
static void data(th_rng *r, size_t n, float *img, float *lab) {
    for (size_t i = 0; i < n * 784; i++) {
        const float v = th_rng_uniform(r, -1.0f, 1.0f);
        img[i] = v < -0.33f ? 0.0f : v;
    }
    for (size_t i = 0; i < n; i++) lab[i] = (float)(th_rng_next(r) % 10);
}

/* What the hooks saw, and what finish() does. */
typedef struct record {
    size_t calls[64], ncalls;
    int finished, cancelled;
    spartan_model *self, *source; /* finish: copy source's gradients into self's (NULL: none) */
    size_t fail_at;               /* ready() fails at this call (SIZE_MAX: never) */
} record;

static spartan_status rec_ready(void *user, size_t param, char *why, size_t why_size) {
    record *r = user;
    if (r->ncalls == r->fail_at) {
        snprintf(why, why_size, "the link went down at parameter %zu", param);
        return SPARTAN_STATUS_COMMUNICATION;
    }
    if (r->ncalls < 64) r->calls[r->ncalls] = param;
    r->ncalls++;
    return SPARTAN_OK;
}

/* Copies every gradient of r->source into r->self's grad tensors (blocking: allowed). */
static spartan_status rec_finish(void *user, char *why, size_t why_size) {
    record *r = user;
    r->finished++;
    for (size_t i = 0; r->source && i < spartan_model_param_count(r->self); i++) {
        spartan_param a, b;
        if (spartan_model_param(r->self, i, &a) != SPARTAN_OK ||
            spartan_model_param(r->source, i, &b) != SPARTAN_OK) {
            snprintf(why, why_size, "no parameter %zu", i);
            return SPARTAN_STATUS_INTERNAL;
        }
        const size_t n = spartan_tensor_numel(a.grad);
        float *host = malloc(n * sizeof *host);
        spartan_status st = host ? spartan_tensor_read(b.grad, host, n) : SPARTAN_STATUS_INTERNAL;
        if (st == SPARTAN_OK) st = spartan_tensor_write(a.grad, host, n);
        free(host);
        if (st != SPARTAN_OK) {
            snprintf(why, why_size, "copying parameter %zu", i);
            return st;
        }
    }
    return SPARTAN_OK;
}

static void rec_cancel(void *user) {
    ((record *)user)->cancelled++;
}

static void set_hooks(spartan_model *m, record *r) {
    const spartan_grad_hooks h = {rec_ready, rec_finish, rec_cancel, r};
    OK(spartan_model_set_grad_hooks(m, &h));
}

/* A preset prepared for batches of `batch` on the dense path; dropout: every dropout's rate and
 * an LSTM's (< 0: each layer's own). */
static spartan_model *preset_p(const char *name, size_t batch, spartan_dropout_kind kind,
                               float dropout) {
    spartan_model *m = NULL;
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = batch;
    cfg.policy = SPARTAN_POLICY_DENSE;
    cfg.dropout_kind = kind;
    cfg.dropout = dropout;
    OK(spartan_model_create_preset(ctx, name, &m));
    OK(spartan_model_prepare(m, &cfg));
    return m;
}

static spartan_model *preset(const char *name, size_t batch, spartan_dropout_kind kind) {
    return preset_p(name, batch, kind, -1.0f);
}

/* The largest |a - b| over the parameters' values, and the largest |b|. */
static void param_diff(spartan_model *a, spartan_model *b, double *diff, double *size) {
    *diff = *size = 0.0;
    for (size_t i = 0; i < spartan_model_param_count(a); i++) {
        spartan_param pa, pb;
        OK(spartan_model_param(a, i, &pa));
        OK(spartan_model_param(b, i, &pb));
        const size_t n = spartan_tensor_numel(pa.value);
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        ck_assert_ptr_nonnull(x);
        ck_assert_ptr_nonnull(y);
        OK(spartan_tensor_read(pa.value, x, n));
        OK(spartan_tensor_read(pb.value, y, n));
        for (size_t j = 0; j < n; j++) {
            *diff = fmax(*diff, fabs((double)x[j] - (double)y[j]));
            *size = fmax(*size, fabs((double)y[j]));
        }
        free(x);
        free(y);
    }
}

START_TEST(order_and_once) {
    spartan_model *m = preset("lenet5", 8, SPARTAN_DROPOUT_BERNOULLI);
    record r = {.self = m, .fail_at = SIZE_MAX};
    set_hooks(m, &r);
    float img[8 * 784], lab[8];
    th_rng g;
    th_rng_init(&g, 16);
    data(&g, 8, img, lab);
    OK(spartan_model_train_step(m, img, lab, 8, NULL));
    const size_t np = spartan_model_param_count(m);
    ck_assert_uint_eq(r.ncalls, np);
    for (size_t k = 0; k < np; k++) ck_assert_uint_eq(r.calls[k], np - 1 - k);
    ck_assert_int_eq(r.finished, 1);
    ck_assert_int_eq(r.cancelled, 0);
    /* spartan_model_gradients too; evaluation and predictions never */
    OK(spartan_model_gradients(m, img, lab, 8, NULL));
    OK(spartan_model_evaluate(m, img, lab, 8, NULL));
    ck_assert_uint_eq(r.ncalls, 2 * np);
    ck_assert_int_eq(r.finished, 2);
    /* removed: none */
    OK(spartan_model_set_grad_hooks(m, NULL));
    OK(spartan_model_train_step(m, img, lab, 8, NULL));
    ck_assert_uint_eq(r.ncalls, 2 * np);
    /* ready without finish is refused */
    const spartan_grad_hooks half = {rec_ready, NULL, NULL, &r};
    ck_assert_int_eq(spartan_model_set_grad_hooks(m, &half), SPARTAN_STATUS_INVALID_ARGUMENT);
    spartan_model_destroy(m);
}
END_TEST

/* A replica on the first half of each batch, its gradients replaced in finish() by those of a
 * model on the whole batch: it must step exactly as that model does (same kernels, same values:
 * bit for bit), for `steps` steps. kind: the dropout of both (row and tile patterns are the same
 * for the whole batch, so the replica's step matches: the replica runs the plain update, the
 * reference the fused one over the kept rows or tiles, the same rule; within rounding). */
static void replica_steps(const char *name, spartan_dropout_kind kind, int exact) {
    const size_t steps = 6;
    spartan_model *rep = preset(name, 16, kind), *full = preset(name, 32, kind),
                  *grad = preset(name, 32, kind);
    record r = {.self = rep, .source = grad, .fail_at = SIZE_MAX};
    set_hooks(rep, &r);
    float *img = malloc(32 * 784 * sizeof *img), lab[32];
    ck_assert_ptr_nonnull(img);
    th_rng g;
    th_rng_init(&g, 3);
    for (size_t t = 0; t < steps; t++) {
        data(&g, 32, img, lab);
        /* grad: the whole batch's gradient at the same weights, then its update undone by
         * stepping it along (it follows full: same images, same updates) */
        OK(spartan_model_gradients(grad, img, lab, 32, NULL));
        OK(spartan_model_train_step(rep, img, lab, 16, NULL));
        OK(spartan_model_train_step(full, img, lab, 32, NULL));
        OK(spartan_model_train_step(grad, img, lab, 32, NULL));
    }
    double diff, size;
    param_diff(rep, full, &diff, &size);
    if (exact)
        ck_assert_msg(diff == 0.0, "%s: the replica is %.3g from the model it copies", name, diff);
    else /* the fused rule against the plain one: a few roundings of each update, per step */
        ck_assert_msg(diff <= 8.0 * (double)steps * 5.96e-8 * size,
                      "%s (%s dropout): the replica is %.3g from the model (|w| up to %.3g)", name,
                      spartan_dropout_kind_name(kind), diff, size);
    ck_assert_int_eq(r.finished, (int)steps);
    free(img);
    spartan_model_destroy(rep);
    spartan_model_destroy(full);
    spartan_model_destroy(grad);
}

START_TEST(update_takes_finished_gradients) {
    replica_steps("lenet5", SPARTAN_DROPOUT_BERNOULLI, 1);
}
END_TEST

START_TEST(row_and_tile_dropout) {
    replica_steps("mlp-dropout", SPARTAN_DROPOUT_ROW, 0);
    replica_steps("mlp-dropout", SPARTAN_DROPOUT_TILE, 0);
}
END_TEST

/* spartan_model_set_shard: two halves of a batch, the second told where it sits, draw the masks
 * of one model on the whole batch (Bernoulli dropout, an LSTM's hidden-unit dropout): the mean of
 * their training-mode losses is the whole batch's, up to the rounding of the mean. Without the
 * shard the second half repeats the first half's masks, and the losses part. */
static void shard_losses(const char *name, double *with, double *without) {
    spartan_model *a = preset_p(name, 16, SPARTAN_DROPOUT_BERNOULLI, 0.3f),
                  *b = preset_p(name, 16, SPARTAN_DROPOUT_BERNOULLI, 0.3f),
                  *whole = preset_p(name, 32, SPARTAN_DROPOUT_BERNOULLI, 0.3f);
    float *img = malloc(32 * 784 * sizeof *img), lab[32];
    ck_assert_ptr_nonnull(img);
    th_rng g;
    th_rng_init(&g, 9);
    data(&g, 32, img, lab);
    spartan_step_result ra, rb, rw;
    OK(spartan_model_train_loss(whole, img, lab, 32, &rw));
    OK(spartan_model_train_loss(a, img, lab, 16, &ra));
    OK(spartan_model_train_loss(b, img + 16 * 784, lab + 16, 16, &rb));
    *without = fabs(0.5 * (ra.loss + rb.loss) - rw.loss) / rw.loss;
    spartan_model_set_shard(b, 16);
    OK(spartan_model_train_loss(b, img + 16 * 784, lab + 16, 16, &rb));
    *with = fabs(0.5 * (ra.loss + rb.loss) - rw.loss) / rw.loss;
    free(img);
    spartan_model_destroy(a);
    spartan_model_destroy(b);
    spartan_model_destroy(whole);
}

START_TEST(shard_masks) {
    const char *names[] = {"mlp-dropout", "lstm"};
    for (int i = 0; i < 2; i++) {
        double with, without;
        shard_losses(names[i], &with, &without);
        /* the mean of 32 losses against two means of 16: a few roundings (relative) */
        ck_assert_msg(with <= 64 * 5.96e-8, "%s: the halves' loss %.3g from the whole's", names[i],
                      with);
        ck_assert_msg(without > 1e-4,
                      "%s: without the shard only %.3g apart: the test sees no masks", names[i],
                      without);
    }
}
END_TEST

START_TEST(failure) {
    spartan_model *m = preset("mlp", 8, SPARTAN_DROPOUT_BERNOULLI);
    record r = {.self = m, .fail_at = 2};
    set_hooks(m, &r);
    float img[8 * 784], lab[8];
    th_rng g;
    th_rng_init(&g, 5);
    data(&g, 8, img, lab);
    ck_assert_int_eq(spartan_model_train_step(m, img, lab, 8, NULL), SPARTAN_STATUS_COMMUNICATION);
    ck_assert_str_eq(spartan_last_error(ctx),
                     "gradient exchange: the link went down at parameter 3");
    ck_assert_int_eq(r.cancelled, 1);
    ck_assert_int_eq(r.finished, 0);
    ck_assert_uint_eq(spartan_model_steps(m), 0);
    /* the model goes on once the hooks are gone */
    OK(spartan_model_set_grad_hooks(m, NULL));
    OK(spartan_model_train_step(m, img, lab, 8, NULL));
    ck_assert_uint_eq(spartan_model_steps(m), 1);
    spartan_model_destroy(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("grad_hooks");
    TCase *tc = tcase_create("hooks");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, order_and_once);
    tcase_add_test(tc, update_takes_finished_gradients);
    tcase_add_test(tc, row_and_tile_dropout);
    tcase_add_test(tc, shard_masks);
    tcase_add_test(tc, failure);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
