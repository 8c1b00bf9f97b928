/* Tests of Dropback (runtime/nn/dropback.c, runtime/ops/dropback.c, the nn_w0_fill and
 * nn_dropback_* kernels): the initial values regenerated on the device equal the ones prepare set,
 * bit for bit, and both equal this file's own implementation of the generator (Irwin-Hall over
 * splitmix64), with the He variance; the device threshold keeps exactly the budget (no ties in
 * these scores) and every element it drops is reset to d w0; updates against a host reference of
 * the algorithm (the same SGD step run by a model without Dropback, then a sort), every update
 * selecting or every third (the set kept in between), with the churn counted like the host's; the
 * untracked elements reaching exact zero as d decays; the refusals. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "spartan/spartan.h"

#define OK(call) TH_OK(th_ctx, call)

/* ---- The generator, written again from its definition (docs/training.md, "Dropback") -------- */

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Element i of the weight of the layer at `index` (its stream: seed phi + index + 1), He std. */
static float w0(uint64_t seed, size_t index, size_t fan_in, size_t i) {
    const uint64_t key = seed * 0x9e3779b97f4a7c15ull + index + 1, g = 0x9e3779b97f4a7c15ull;
    int64_t sum = 0;
    for (int h = 1; h <= 2; h++) {
        const uint64_t v = mix(key + (2 * (uint64_t)i + (uint64_t)h) * g);
        for (int f = 0; f < 3; f++) sum += (int64_t)((v >> (21 * f)) & 0x1fffff);
    }
    const float scale = (float)(sqrt(2.0 / (double)fan_in) / sqrt((4398046511104.0 - 1.0) / 2.0));
    return (float)(sum - 3 * 0x1fffff) * scale;
}

/* ---- Models ---------------------------------------------------------------------------------- */

/* 6x6x1 -> conv 4 3x3 -> relu -> maxpool 2 -> fc 20 -> relu -> fc 3 (layer indices 0, 3, 5). */
static spartan_model *small_net(void) {
    spartan_model *m;
    OK(spartan_model_create(th_ctx, 6, 6, 1, 3, &m));
    OK(spartan_model_add_conv(m, 4, 3, 1, 1));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_maxpool(m, 2, 2));
    OK(spartan_model_add_fc(m, 20));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_fc(m, 3));
    return m;
}
#define SMALL_PX 36
static const size_t small_layer[] = {0, 0, 3, 3, 5, 5}; /* of each parameter */
static const size_t small_fan_in[] = {9, 9, 36, 36, 20, 20};

static spartan_train_config base_config(void) {
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = 8;
    cfg.policy = SPARTAN_POLICY_DENSE;
    cfg.seed = 11;
    return cfg;
}

static float *read_tensor(const spartan_tensor *t, size_t *n) {
    *n = spartan_tensor_numel(t);
    float *v = th_floats(*n ? *n : 1);
    OK(spartan_tensor_read(t, v, *n));
    return v;
}

static void random_batch(th_rng *r, float *img, float *lab, size_t count) {
    for (size_t i = 0; i < count * SMALL_PX; i++) img[i] = th_rng_uniform(r, 0.0f, 1.0f);
    for (size_t i = 0; i < count; i++) lab[i] = (float)(th_rng_next(r) % 3);
}

/* b takes a's parameter values and momenta (same architecture). */
static void copy_state(spartan_model *a, spartan_model *b) {
    for (size_t i = 0; i < spartan_model_param_count(a); i++) {
        spartan_param pa, pb;
        OK(spartan_model_param(a, i, &pa));
        OK(spartan_model_param(b, i, &pb));
        size_t n;
        float *v = read_tensor(pa.value, &n), *mo = read_tensor(pa.momentum, &n);
        OK(spartan_tensor_write(pb.value, v, n));
        OK(spartan_tensor_write(pb.momentum, mo, n));
        free(v);
        free(mo);
    }
}

static size_t total_elements(spartan_model *m) {
    size_t t = 0;
    for (size_t i = 0; i < spartan_model_param_count(m); i++) {
        spartan_param p;
        OK(spartan_model_param(m, i, &p));
        t += spartan_tensor_numel(p.value);
    }
    return t;
}

/* ---- Tests ------------------------------------------------------------------------------------
 */

START_TEST(test_initial_regenerated) {
    spartan_model *m = small_net();
    spartan_train_config cfg = base_config();
    OK(spartan_model_prepare(m, &cfg));
    for (size_t i = 0; i < spartan_model_param_count(m); i++) {
        spartan_param p;
        OK(spartan_model_param(m, i, &p));
        size_t n;
        float *set = read_tensor(p.value, &n);
        spartan_tensor *t;
        OK(spartan_tensor_create_2d(th_ctx, 1, n, &t));
        OK(spartan_model_param_initial(m, i, t));
        float *again = read_tensor(t, &n);
        ck_assert_msg(memcmp(set, again, n * sizeof *set) == 0, "%s regenerated differs", p.name);
        for (size_t j = 0; j < n; j++) {
            const float want = i % 2 ? 0.0f : w0(cfg.seed, small_layer[i], small_fan_in[i], j);
            ck_assert_msg(memcmp(&set[j], &want, sizeof want) == 0, "%s[%zu]: %.9g, want %.9g",
                          p.name, j, (double)set[j], (double)want);
        }
        free(set);
        free(again);
        spartan_tensor_destroy(t);
    }
    /* a wrong size is refused */
    spartan_tensor *t;
    OK(spartan_tensor_create_2d(th_ctx, 1, 5, &t));
    ck_assert_int_eq(spartan_model_param_initial(m, 0, t), SPARTAN_STATUS_INVALID_ARGUMENT);
    spartan_tensor_destroy(t);
    spartan_model_destroy(m);
}
END_TEST

/* The generator's moments over 2^20 draws of fan-in 784: mean 0 and std sqrt(2 / 784), each within
 * 5 standard errors; bounded (Irwin-Hall of six: |z| <= sqrt(18)). */
START_TEST(test_initial_moments) {
    const size_t n = (size_t)1 << 20;
    double s1 = 0.0, s2 = 0.0, most = 0.0;
    const double sd = sqrt(2.0 / 784.0);
    for (size_t i = 0; i < n; i++) {
        const double v = w0(3, 2, 784, i) / sd;
        s1 += v;
        s2 += v * v;
        most = fmax(most, fabs(v));
    }
    const double mean = s1 / (double)n, var = s2 / (double)n - mean * mean;
    ck_assert_msg(fabs(mean) < 5.0 / sqrt((double)n), "mean %g", mean);
    /* var of the sample variance of a unit-variance law of kurtosis 3 - 1.2 / 6: (k - 1) / n */
    ck_assert_msg(fabs(var - 1.0) < 5.0 * sqrt(1.8 / (double)n), "variance %g", var);
    ck_assert(most <= sqrt(18.0) + 1e-6);
}
END_TEST

/* Host Dropback of one update: given w after SGD (all parameters, in order) and d, keep the k
 * largest |w - d w0| (d w0 = 0 for biases), reset the rest; returns the threshold. tracked (one
 * per element of all the parameters): whether the element was tracked after the update before,
 * updated; *joined: the elements tracked now and not then. */
static float host_dropback(float **w, const size_t *n, size_t np, uint64_t seed, float d, size_t k,
                           unsigned char *tracked, size_t *joined) {
    size_t total = 0;
    for (size_t i = 0; i < np; i++) total += n[i];
    float *sc = th_floats(total);
    size_t at = 0;
    for (size_t i = 0; i < np; i++)
        for (size_t j = 0; j < n[i]; j++) {
            const float base = i % 2 ? 0.0f : d * w0(seed, small_layer[i], small_fan_in[i], j);
            sc[at++] = fabsf(w[i][j] - base);
        }
    /* the k-th largest by a selection sort of the top k (small pools) */
    float t = INFINITY;
    for (size_t r = 0; r < k; r++) {
        size_t best = SIZE_MAX;
        for (size_t e = 0; e < total; e++)
            if (sc[e] >= 0.0f && (best == SIZE_MAX || sc[e] > sc[best])) best = e;
        t = sc[best];
        sc[best] = -1.0f;
    }
    free(sc);
    at = 0;
    *joined = 0;
    for (size_t i = 0; i < np; i++)
        for (size_t j = 0; j < n[i]; j++, at++) {
            const float base = i % 2 ? 0.0f : d * w0(seed, small_layer[i], small_fan_in[i], j);
            const float score = fabsf(w[i][j] - base);
            const unsigned char now = score >= t && score > 0.0f;
            *joined += now && !tracked[at];
            tracked[at] = now;
            if (!(score >= t)) w[i][j] = base;
        }
    return t;
}

/* Between selections (dropback_interval): the tracked set kept, the others reset to d w0. */
static void host_member(float **w, const size_t *n, size_t np, uint64_t seed, float d,
                        const unsigned char *tracked) {
    for (size_t i = 0, at = 0; i < np; i++)
        for (size_t j = 0; j < n[i]; j++, at++)
            if (!tracked[at])
                w[i][j] = i % 2 ? 0.0f : d * w0(seed, small_layer[i], small_fan_in[i], j);
}

/* Model a with Dropback against model b without it: before each update b takes a's values and
 * momenta, both step on the same batch (the same SGD, bit for bit), the host applies Dropback to
 * b's result, and a must equal it bit for bit; the budget kept exactly (no ties here). Every
 * interval-th update selects, the others keep the set. */
static void against_host(size_t interval, size_t ramp, size_t steps) {
    spartan_model *a = small_net(), *b = small_net();
    spartan_train_config ca = base_config(), cb = base_config();
    ca.dropback_density = 0.3f;
    ca.dropback_decay = 0.8f;
    ca.dropback_interval = interval;
    ca.dropback_ramp = ramp;
    OK(spartan_model_prepare(a, &ca));
    OK(spartan_model_prepare(b, &cb));
    const size_t np = spartan_model_param_count(a), total = total_elements(a);
    const size_t k = (size_t)floor(0.3 * (double)total + 0.5);
    float *img = th_floats(ca.batch * SMALL_PX), *lab = th_floats(ca.batch);
    unsigned char *tracked = calloc(total, 1);
    ck_assert_ptr_nonnull(tracked);
    size_t joined_total = 0, fast = 0, selections = 0, budget = k;
    float t = 0.0f;
    th_rng r;
    th_rng_init(&r, th_seed());
    for (size_t step = 0; step < steps; step++) {
        copy_state(a, b);
        random_batch(&r, img, lab, ca.batch);
        spartan_step_result ra, rb;
        OK(spartan_model_train_step(a, img, lab, ca.batch, &ra));
        OK(spartan_model_train_step(b, img, lab, ca.batch, &rb));
        ck_assert(ra.loss == rb.loss);
        float *w[6];
        size_t n[6];
        for (size_t i = 0; i < np; i++) {
            spartan_param pb;
            OK(spartan_model_param(b, i, &pb));
            w[i] = read_tensor(pb.value, &n[i]);
        }
        double dd = pow((double)ca.dropback_decay, (double)step);
        const float d = dd < 0x1p-64 ? 0.0f : (float)dd; /* d taken as 0 below 2^-64 */
        size_t joined = 0;
        /* the budget: all the elements shrinking to k over the ramp, cubically */
        const double left = step < ramp ? 1.0 - (double)step / (double)ramp : 0.0;
        if (step % interval == 0)
            budget = k + (size_t)floor((double)(total - k) * left * left * left);
        if (step % interval == 0) {
            t = host_dropback(w, n, np, ca.seed, d, budget, tracked, &joined);
            selections++;
        } else {
            host_member(w, n, np, ca.seed, d, tracked);
        }
        joined_total += joined;
        spartan_dropback_info info;
        size_t per_layer[6];
        OK(spartan_model_dropback_info(a, &info, per_layer));
        /* the first update counts every score (no threshold before it); the later ones may */
        if (!ramp) ck_assert_uint_ge(info.full_counts, 1); /* a full budget's is at 0: found */
        ck_assert_uint_eq(info.selections, selections);
        ck_assert_uint_le(info.full_counts, selections);
        fast = selections - info.full_counts;
        ck_assert_msg(info.joined == joined, "step %zu: %zu joined, host %zu", step, info.joined,
                      joined);
        ck_assert_uint_eq(info.joined_total, joined_total);
        ck_assert_uint_eq(info.total, total);
        ck_assert_uint_eq(info.keep, k);
        ck_assert_uint_eq(info.updates, step + 1);
        ck_assert(info.decay == d);
        ck_assert_msg(info.threshold == t, "step %zu: threshold %.9g, host %.9g", step,
                      (double)info.threshold, (double)t);
        /* the budget exactly (no ties), less the elements whose score is 0 (not moved) */
        size_t want = 0;
        for (size_t e = 0; e < total; e++) want += tracked[e];
        ck_assert_uint_le(want, budget);
        if (!ramp) ck_assert_uint_eq(want, budget); /* every score moved: the budget exactly */
        ck_assert_msg(info.tracked == want, "step %zu: tracked %zu, host %zu of %zu", step,
                      info.tracked, want, budget);
        ck_assert_uint_eq(per_layer[0] + per_layer[3] + per_layer[5], want);
        for (size_t i = 0; i < np; i++) {
            spartan_param pa;
            OK(spartan_model_param(a, i, &pa));
            size_t m;
            float *got = read_tensor(pa.value, &m);
            for (size_t j = 0; j < m; j++)
                ck_assert_msg(memcmp(&got[j], &w[i][j], sizeof got[j]) == 0,
                              "step %zu %s[%zu]: %.9g, host %.9g", step, pa.name, j, (double)got[j],
                              (double)w[i][j]);
            free(got);
            free(w[i]);
        }
    }
    /* the updates after the first found the threshold near the one before (the cheap path) */
    ck_assert_uint_ge(fast, 1);
    free(tracked);
    free(img);
    free(lab);
    spartan_model_destroy(a);
    spartan_model_destroy(b);
}

START_TEST(test_update_against_host) {
    against_host(1, 0, 6);
}
END_TEST

/* Selections at updates 0, 3, 6: the set kept by the four updates between them. */
/* The budget ramped from every element down to k over 5 updates (dropback_ramp), then k. */
START_TEST(test_ramp_against_host) {
    against_host(1, 5, 7);
}
END_TEST

START_TEST(test_interval_against_host) {
    against_host(3, 0, 8);
}
END_TEST

/* The weight-sparse path (runtime/nn/wpath.c) forced on (SPARTAN_WSPARSE=on) against a model
 * forced off, in lockstep: before each step b takes a's values and momenta, both step on the same
 * batch. Once d is 0 (decay 0.05: after 16 updates) the fc layers' forward and backward-by-input
 * GEMMs run over W's non-zeros, rebuilt whenever W gained some; the losses agree to float
 * rounding (each GEMM's sums in another order: (k + 2) epsilon relative, k <= 36 here, three
 * GEMMs and the softmax: 1e-5 relative bounds it), and the updated weights likewise. */
START_TEST(test_weight_sparse_path) {
    spartan_model *m[2];
    spartan_train_config cfg = base_config();
    cfg.dropback_density = 0.3f;
    cfg.dropback_decay = 0.05f;
    for (int i = 0; i < 2; i++) {
        setenv("SPARTAN_WSPARSE", i ? "off" : "on", 1);
        m[i] = small_net();
        OK(spartan_model_prepare(m[i], &cfg));
    }
    unsetenv("SPARTAN_WSPARSE");
    float *img = th_floats(cfg.batch * SMALL_PX), *lab = th_floats(cfg.batch);
    th_rng r;
    th_rng_init(&r, th_seed());
    for (int step = 0; step < 30; step++) {
        copy_state(m[0], m[1]);
        random_batch(&r, img, lab, cfg.batch);
        spartan_step_result ra, rb;
        OK(spartan_model_train_step(m[0], img, lab, cfg.batch, &ra));
        OK(spartan_model_train_step(m[1], img, lab, cfg.batch, &rb));
        ck_assert_msg(fabs(ra.loss - rb.loss) <= 1e-5 * (1.0 + fabs(rb.loss)),
                      "step %d: loss %.9g with the weight-sparse path, %.9g without", step, ra.loss,
                      rb.loss);
    }
    /* the fc layers (3 and 5) ran it in both passes they have; the convolution never */
    for (size_t l = 0; l < spartan_model_layer_count(m[0]); l++) {
        spartan_layer_info on, off;
        OK(spartan_model_layer_info(m[0], l, &on));
        OK(spartan_model_layer_info(m[1], l, &off));
        ck_assert_uint_eq(off.wsparse_builds, 0);
        if (l != 3 && l != 5) {
            ck_assert_uint_eq(on.wsparse_builds, 0);
            continue;
        }
        ck_assert_uint_ge(on.wsparse_builds, 1);
        ck_assert(on.wsparse_density > 0.0 && on.wsparse_density < 1.0);
        ck_assert_uint_ge(on.wsparse_calls[SPARTAN_PASS_FWD], 10);
        ck_assert_uint_ge(on.wsparse_calls[SPARTAN_PASS_BWD_INPUT], 10);
        ck_assert_uint_eq(on.wsparse_calls[SPARTAN_PASS_BWD_WEIGHT], 0);
    }
    free(img);
    free(lab);
    spartan_model_destroy(m[0]);
    spartan_model_destroy(m[1]);
}
END_TEST

/* A fast decay: after 40 updates d = 0.05^39 is 0 in float, and every untracked element is an
 * exact zero: the non-zeros are the tracked ones. */
START_TEST(test_decay_to_zero) {
    spartan_model *m = small_net();
    spartan_train_config cfg = base_config();
    cfg.dropback_keep = 40;
    cfg.dropback_decay = 0.05f;
    OK(spartan_model_prepare(m, &cfg));
    float *img = th_floats(cfg.batch * SMALL_PX), *lab = th_floats(cfg.batch);
    th_rng r;
    th_rng_init(&r, th_seed());
    spartan_step_result res;
    for (int s = 0; s < 40; s++) {
        random_batch(&r, img, lab, cfg.batch);
        OK(spartan_model_train_step(m, img, lab, cfg.batch, &res));
    }
    spartan_dropback_info info;
    OK(spartan_model_dropback_info(m, &info, NULL));
    ck_assert(info.decay == 0.0f);
    size_t nonzero = 0;
    for (size_t i = 0; i < spartan_model_param_count(m); i++) {
        spartan_param p;
        OK(spartan_model_param(m, i, &p));
        size_t n;
        float *v = read_tensor(p.value, &n);
        for (size_t j = 0; j < n; j++) nonzero += v[j] != 0.0f;
        free(v);
    }
    ck_assert_uint_eq(nonzero, info.tracked);
    ck_assert_uint_eq(info.tracked, 40);
    ck_assert(isfinite(res.loss));
    free(img);
    free(lab);
    spartan_model_destroy(m);
}
END_TEST

START_TEST(test_refusals) {
    spartan_model *m = small_net();
    spartan_train_config cfg = base_config();
    spartan_dropback_info info;
    OK(spartan_model_prepare(m, &cfg));
    ck_assert_int_eq(spartan_model_dropback_info(m, &info, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    cfg.dropback_density = 1.5f;
    ck_assert_int_eq(spartan_model_prepare(m, &cfg), SPARTAN_STATUS_INVALID_ARGUMENT);
    cfg.dropback_density = 0.1f;
    cfg.dropback_decay = 0.0f;
    ck_assert_int_eq(spartan_model_prepare(m, &cfg), SPARTAN_STATUS_INVALID_ARGUMENT);
    cfg.dropback_decay = 0.9f;
    cfg.dropback_interval = 0;
    ck_assert_int_eq(spartan_model_prepare(m, &cfg), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(th_ctx), "interval"));
    cfg.dropback_interval = 1;
    cfg.dropback_keep = total_elements(m) + 1;
    ck_assert_int_eq(spartan_model_prepare(m, &cfg), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(th_ctx), "budget"));
    spartan_model_destroy(m);
    /* an LSTM's initial values are PyTorch's uniform draw: not regenerable */
    OK(spartan_model_create(th_ctx, 4, 4, 1, 3, &m));
    OK(spartan_model_add_lstm(m, 8));
    OK(spartan_model_add_fc(m, 3));
    cfg.dropback_keep = 10;
    ck_assert_int_eq(spartan_model_prepare(m, &cfg), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(th_ctx), "lstm"));
    spartan_model_destroy(m);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("dropback");
    TCase *g = tcase_create("generator");
    tcase_add_test(g, test_initial_moments);
    suite_add_tcase(s, g);
    TCase *m = tcase_create("model");
    tcase_set_timeout(m, 600);
    tcase_add_checked_fixture(m, th_ctx_setup, th_ctx_teardown);
    tcase_add_test(m, test_initial_regenerated);
    tcase_add_test(m, test_update_against_host);
    tcase_add_test(m, test_interval_against_host);
    tcase_add_test(m, test_ramp_against_host);
    tcase_add_test(m, test_weight_sparse_path);
    tcase_add_test(m, test_decay_to_zero);
    tcase_add_test(m, test_refusals);
    suite_add_tcase(s, m);
    return s;
}

int main(void) {
    return th_run_suite(suite());
}
