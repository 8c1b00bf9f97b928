/* The finite-difference gradient check of test_nn.c's header comment, shared by the model tests
 * (test_nn, test_dropout, test_lstm), and the comparison of two models that compute one function
 * two ways (test_dropout, test_lstm). */
#include "grad_check.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "harness.h"

#define OK(call) TH_OK(ctx, call)

static void random_batch(th_rng *r, float *img, float *lab, size_t count, size_t px,
                         size_t classes) {
    for (size_t i = 0; i < count * px; i++) {
        /* ReLU-like inputs: a third exact zeros, so the first layer's sparse path skips some */
        float v = th_rng_uniform(r, -0.5f, 1.0f);
        img[i] = v < 0.0f ? 0.0f : v;
    }
    for (size_t i = 0; i < count; i++) lab[i] = (float)(th_rng_next(r) % classes);
}

static double train_loss(spartan_context *ctx, spartan_model *m, const float *img, const float *lab,
                         size_t count) {
    spartan_step_result r;
    OK(spartan_model_train_loss(m, img, lab, count, &r));
    return r.loss;
}

void th_gradient_check(spartan_context *ctx, spartan_model *m, const spartan_train_config *cfg,
                       size_t k_chain, size_t per, size_t px, size_t classes) {
    const size_t batch = cfg->batch;
    OK(spartan_model_prepare(m, cfg));
    spartan_param p0;
    OK(spartan_model_param(m, 0, &p0));
    float *img = th_floats(batch * px), *lab = th_floats(batch);
    th_rng r;
    th_rng_init(&r, th_seed());
    random_batch(&r, img, lab, batch, px, classes);
    spartan_step_result res;
    OK(spartan_model_gradients(m, img, lab, batch, &res));
    const double L = res.loss;
    ck_assert_msg(isfinite(L), "loss %g", L);
    const double h = 2e-3;
    const double eps_l = sqrt((double)(k_chain + 2)) * FLT_EPSILON * fmax(1.0, L);
    size_t checked = 0, skipped = 0;
    for (size_t pi = 0; pi < spartan_model_param_count(m); pi++) {
        spartan_param p;
        OK(spartan_model_param(m, pi, &p));
        size_t n = spartan_tensor_numel(p.value);
        float *w = th_floats(n), *g = th_floats(n);
        OK(spartan_tensor_read(p.value, w, n));
        OK(spartan_tensor_read(p.grad, g, n));
        size_t step = n > per ? n / per : 1;
        for (size_t i = 0; i < n; i += step) {
            const float w0 = w[i];
            double lp[2], lm[2], span[2];
            for (int half = 0; half < 2; half++) {
                const double hh = half ? h / 2 : h;
                w[i] = (float)(w0 + hh);
                OK(spartan_tensor_write(p.value, w, n));
                lp[half] = train_loss(ctx, m, img, lab, batch);
                w[i] = (float)(w0 - hh);
                OK(spartan_tensor_write(p.value, w, n));
                lm[half] = train_loss(ctx, m, img, lab, batch);
                /* the step actually taken, after rounding w0 +- hh to float */
                span[half] = (double)(float)(w0 + hh) - (double)(float)(w0 - hh);
            }
            w[i] = w0;
            OK(spartan_tensor_write(p.value, w, n));
            const double d = (lp[1] - lm[1]) / span[1], gi = (double)g[i];
            const double tol = 2.0 * eps_l / span[1] + h * fabs(gi);
            checked++;
            if (fabs(gi - d) <= tol) continue;
            /* A kink inside [w - h/2, w + h/2]: the analytic gradient is then the slope of one
             * side. The one-sided differences carry twice the rounding term and a curvature
             * term of at most h/2 * |L''| <= h/2 (|L''| <= 1 for inputs and weights of order
             * 1: the softmax's curvature is at most 1/4 per logit). */
            const double l0 = train_loss(ctx, m, img, lab, batch);
            const double fwd = (lp[1] - l0) / (span[1] / 2), bwd = (l0 - lm[1]) / (span[1] / 2);
            const double tol1 = 2.0 * tol + h / 2;
            ck_assert_msg(fabs(gi - fwd) <= tol1 || fabs(gi - bwd) <= tol1,
                          "%s path %s [%zu]: analytic %.6g, central difference %.6g (h %g: "
                          "%.6g), one-sided %.6g / %.6g, tolerance %.3g",
                          p.name, spartan_policy_mode_name(cfg->policy), i, gi, d, h,
                          (lp[0] - lm[0]) / span[0], fwd, bwd, tol);
            skipped++;
        }
        free(w);
        free(g);
    }
    ck_assert_msg(skipped * 5 <= checked, "%zu of %zu entries at kinks", skipped, checked);
    free(img);
    free(lab);
}

/* Parameter i of m, read into a new array of its element count *n. */
static float *read_param(spartan_context *ctx, spartan_model *m, size_t i, int grad, size_t *n,
                         spartan_param *p) {
    OK(spartan_model_param(m, i, p));
    *n = spartan_tensor_numel(p->value);
    float *v = th_floats(*n);
    OK(spartan_tensor_read(grad ? p->grad : p->value, v, *n));
    return v;
}

void th_same_function(spartan_context *ctx, spartan_model *a, spartan_model *b,
                      const spartan_train_config *cfg, const spartan_train_config *cfg_b,
                      size_t k_chain, size_t px, size_t classes) {
    OK(spartan_model_prepare(a, cfg));
    OK(spartan_model_prepare(b, cfg_b ? cfg_b : cfg));
    const size_t np = spartan_model_param_count(a);
    ck_assert_uint_eq(np, spartan_model_param_count(b));
    for (size_t i = 0; i < np; i++) {
        spartan_param pa, pb;
        size_t n;
        float *v = read_param(ctx, a, i, 0, &n, &pa);
        OK(spartan_model_param(b, i, &pb));
        OK(spartan_tensor_write(pb.value, v, n));
        free(v);
    }
    const size_t batch = cfg->batch;
    float *img = th_floats(batch * px), *lab = th_floats(batch);
    th_rng r;
    th_rng_init(&r, th_seed());
    for (int step = 0; step < 5; step++) {
        random_batch(&r, img, lab, batch, px, classes);
        spartan_step_result ra, rb;
        OK(spartan_model_gradients(a, img, lab, batch, &ra));
        OK(spartan_model_gradients(b, img, lab, batch, &rb));
        /* the sums differ in order only (the dropped terms are exact zeros in b): each loss
         * within the chain's rounding bound */
        const double tol = th_tol(k_chain, fmax(1.0, ra.loss)) * 4.0;
        ck_assert_msg(fabs(ra.loss - rb.loss) <= tol, "step %d: loss %.9g and %.9g", step, ra.loss,
                      rb.loss);
        for (size_t i = 0; i < np; i++) {
            spartan_param pa, pb;
            size_t n;
            float *ga = read_param(ctx, a, i, 1, &n, &pa), *gb = read_param(ctx, b, i, 1, &n, &pb);
            double scale = 0.0;
            for (size_t j = 0; j < n; j++) scale = fmax(scale, fabs((double)gb[j]));
            for (size_t j = 0; j < n; j++)
                ck_assert_msg(fabs((double)ga[j] - gb[j]) <= th_tol(k_chain, scale) * 4.0 + 1e-7,
                              "step %d %s[%zu]: %g and %g", step, pa.name, j, (double)ga[j],
                              (double)gb[j]);
            free(ga);
            free(gb);
        }
        /* the next step draws new patterns */
        spartan_model_set_steps(a, (size_t)step + 1);
        spartan_model_set_steps(b, (size_t)step + 1);
    }
    /* training steps (a's update may step its kept weights in place, b's the whole ones): the
     * same losses step after step */
    for (int step = 0; step < 4; step++) {
        spartan_step_result ra, rb;
        OK(spartan_model_train_step(a, img, lab, batch, &ra));
        OK(spartan_model_train_step(b, img, lab, batch, &rb));
        ck_assert_msg(fabs(ra.loss - rb.loss) <= th_tol(k_chain, fmax(1.0, ra.loss)) * 16.0,
                      "training step %d: loss %.9g and %.9g", step, ra.loss, rb.loss);
    }
    /* at evaluation both are the whole network, the same function */
    spartan_step_result ea, eb;
    OK(spartan_model_evaluate(a, img, lab, batch, &ea));
    OK(spartan_model_evaluate(b, img, lab, batch, &eb));
    ck_assert(fabs(ea.loss - eb.loss) <= th_tol(k_chain, fmax(1.0, ea.loss)) * 4.0);
    free(img);
    free(lab);
}
