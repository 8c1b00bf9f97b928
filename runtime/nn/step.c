/* The training step (include/spartan/nn.h): timing marks (spartan_mark: profiling events or the
 * host clock, as the context decided), forward, loss, backward, the update, the policy's
 * feedback and the monitor's sampling period; evaluation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_internal.h"

/* ---- Timing marks ---------------------------------------------------------------------------
 */

spartan_status sp_model_mark(spartan_model *m, sp_layer *layer, int pass, int gemm) {
    if (m->nmarks == m->mark_cap) {
        size_t cap = m->mark_cap ? 2 * m->mark_cap : 64;
        sp_mark *k = realloc(m->marks, cap * sizeof *k);
        if (!k) return sp_err_set(&m->ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "markers");
        m->marks = k;
        m->mark_cap = cap;
    }
    sp_mark *k = &m->marks[m->nmarks];
    spartan_status st = spartan_mark_record(m->ctx, &k->mark);
    if (st != SPARTAN_OK) return st;
    k->layer = layer;
    k->pass = pass;
    k->gemm = gemm;
    m->nmarks++;
    return SPARTAN_OK;
}

void sp_model_release_marks(spartan_model *m) {
    for (size_t i = 0; i < m->nmarks; i++) spartan_mark_release(&m->marks[i].mark);
    m->nmarks = 0;
}

/* After the queue has finished: charges each segment between marks to its layer and pass, then
 * releases the marks. A segment whose time cannot be read is charged to nobody. */
static void settle_marks(spartan_model *m) {
    for (size_t i = 1; i < m->nmarks; i++) {
        sp_mark *k = &m->marks[i];
        double ms;
        if (!k->layer ||
            spartan_mark_elapsed(m->ctx, &m->marks[i - 1].mark, &k->mark, &ms) != SPARTAN_OK)
            continue;
        k->layer->sec[k->pass] += ms * 1e-3;
        if (k->gemm) k->layer->step_gemm[k->pass] += ms * 1e-3;
    }
    sp_model_release_marks(m);
}

/* Waits for the queue and releases the marks without charging them (a failed step). */
static void drop_marks(spartan_model *m) {
    spartan_context_finish(m->ctx);
    sp_model_release_marks(m);
}

/* ---- Steps ------------------------------------------------------------------------------------
 */

static spartan_status check_batch(spartan_model *m, const float *images, const float *labels,
                                  size_t count, int exact, const char *fn) {
    if (!m) return sp_invalid(NULL, "%s: NULL model", fn);
    if (!m->prepared) return sp_invalid(m->ctx, "%s: call spartan_model_prepare first", fn);
    if (!images || !labels) return sp_invalid(m->ctx, "%s: NULL images or labels", fn);
    if (exact ? count != m->cfg.batch : (count == 0 || count > m->cfg.batch))
        return sp_invalid(m->ctx, "%s: %zu images, the model was prepared for batches of %zu", fn,
                          count, m->cfg.batch);
    return SPARTAN_OK;
}

/* Reads the loss statistics (blocking: after everything is enqueued). */
static spartan_status read_stats(spartan_model *m, size_t count, spartan_step_result *res) {
    spartan_tensor stats;
    size_t sd[2] = {count, 2};
    spartan_status st = sp_tensor_view(&stats, m->stats, 2, sd);
    if (st == SPARTAN_OK) st = spartan_tensor_read(&stats, m->stats_host, 2 * count);
    if (st != SPARTAN_OK) return st;
    double loss = 0.0;
    size_t correct = 0;
    for (size_t i = 0; i < count; i++) {
        loss += m->stats_host[2 * i];
        correct += m->stats_host[2 * i + 1] != 0.0f;
    }
    res->loss = loss / (double)count;
    res->correct = correct;
    res->count = count;
    return SPARTAN_OK;
}

/* Uploads the batch and runs the forward pass (each layer's input kept in m->acts) and the loss;
 * train: dropout and monitors on. backward: the loss gradient too, and the loss is left on the
 * device for the step to read at its end; else it is read back here (blocking). */
static spartan_status forward_loss(spartan_model *m, const float *images, const float *labels,
                                   size_t count, int train, int backward,
                                   spartan_step_result *res) {
    const spartan_tensor **acts = m->acts;
    spartan_context *ctx = m->ctx;
    spartan_status st;
    const size_t px = m->in_h * m->in_w * m->in_c;
    spartan_tensor *in = &m->input_view, lab, logits, dl, stats;
    size_t dims[4] = {count, m->in_h, m->in_w, m->in_c};
    if ((st = sp_tensor_view(in, m->input, 4, dims)) != SPARTAN_OK) return st;
    size_t ld[2] = {count, 1}, lg[2] = {count, m->classes}, sd[2] = {count, 2};
    if ((st = sp_tensor_view(&lab, m->labels, 2, ld)) != SPARTAN_OK ||
        (st = sp_tensor_view(&dl, m->dlogits, 2, lg)) != SPARTAN_OK ||
        (st = sp_tensor_view(&stats, m->stats, 2, sd)) != SPARTAN_OK)
        return st;
    if ((st = sp_tensor_write_async(in, images, count * px)) != SPARTAN_OK ||
        (st = sp_tensor_write_async(&lab, labels, count)) != SPARTAN_OK)
        return st;
    if (m->recording && (st = sp_model_mark(m, NULL, 0, 0)) != SPARTAN_OK) return st;
    const spartan_tensor *x = in;
    for (size_t i = 0; i < m->nlayers; i++) {
        acts[i] = x;
        if ((st = sp_layer_forward(m, &m->layers[i], x, count, train, &x)) != SPARTAN_OK) return st;
    }
    acts[m->nlayers] = x;
    if ((st = sp_tensor_view(&logits, x, 2, lg)) != SPARTAN_OK) return st;
    st = spartan_softmax_xent(ctx, &logits, &lab, 1.0f / (float)count, backward ? &dl : NULL,
                              &stats);
    if (st == SPARTAN_OK && m->recording) st = sp_model_mark(m, NULL, 0, 0);
    if (st != SPARTAN_OK) return st;
    if (!backward) return read_stats(m, count, res);
    return SPARTAN_OK;
}

/* After a step: each GEMM pass's measured time goes to the policy (the path it ran and the
 * sparsity it was chosen on), and the auto sampling period adapts (docs/policy.md): every step
 * while some layer's input sparsity moved by more than SAMPLE_STABLE since its last sample,
 * doubling up to SAMPLE_MAX steps while all hold still. */
#define SAMPLE_STABLE 0.02
#define SAMPLE_MAX    32

static void learn(spartan_model *m) {
    double moved = 0.0;
    for (size_t i = 0; i < m->nlayers; i++) {
        sp_layer *L = &m->layers[i];
        for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
            if (L->step_gemm[p] > 0)
                sp_policy_observe(m->policy, L->index, (spartan_pass)p, L->path[p],
                                  L->step_zeros[p], 1e3 * L->step_gemm[p]);
            L->step_gemm[p] = 0.0;
        }
        if (m->sampling && L->zeros_prev >= 0)
            moved = fmax(moved, fabs(L->xz.last - L->zeros_prev));
        if (m->sampling) L->zeros_prev = L->xz.last;
    }
    if (m->cfg.sample_every || !m->sampling) return;
    m->sample_period = moved > SAMPLE_STABLE ? 1 : m->sample_period * 2;
    if (m->sample_period > SAMPLE_MAX) m->sample_period = SAMPLE_MAX;
    m->next_sample = m->step + m->sample_period;
}

static spartan_status run_step(spartan_model *m, const float *images, const float *labels,
                               size_t count, int update, spartan_step_result *res) {
    m->sampling =
        m->cfg.sample_every ? m->step % m->cfg.sample_every == 0 : m->step >= m->next_sample;
    m->recording = 1;
    sp_policy_set_step(m->policy, m->step);
    spartan_status st = forward_loss(m, images, labels, count, 1, 1, res);
    const spartan_tensor *g = m->dlogits;
    for (size_t i = m->nlayers; i-- > 0 && st == SPARTAN_OK;) {
        const spartan_tensor *dx = NULL;
        st = sp_layer_backward(m, &m->layers[i], m->acts[i], g, &dx);
        g = dx;
    }
    for (size_t i = 0; update && i < m->nparams && st == SPARTAN_OK; i++)
        st = spartan_sgd_step(m->ctx, m->params[i].value, m->params[i].grad, m->params[i].momentum,
                              m->cfg.lr, m->cfg.momentum, m->cfg.weight_decay);
    if (st == SPARTAN_OK) st = read_stats(m, count, res);
    m->recording = 0;
    if (st != SPARTAN_OK) {
        drop_marks(m); /* leave no half-counted markers behind */
        return st;
    }
    settle_marks(m);
    learn(m);
    if (update) m->step++;
    return SPARTAN_OK;
}

/* A checked training step; update: apply SGD (else only the gradients). res is written on
 * success only. */
static spartan_status step(spartan_model *m, const float *images, const float *labels, size_t count,
                           int update, spartan_step_result *res, const char *fn) {
    spartan_status st = check_batch(m, images, labels, count, 1, fn);
    if (st != SPARTAN_OK) return st;
    spartan_step_result r;
    st = run_step(m, images, labels, count, update, &r);
    if (st == SPARTAN_OK && res) *res = r;
    return st;
}

spartan_status spartan_model_train_step(spartan_model *m, const float *images, const float *labels,
                                        size_t count, spartan_step_result *res) {
    return step(m, images, labels, count, 1, res, "spartan_model_train_step");
}

spartan_status spartan_model_gradients(spartan_model *m, const float *images, const float *labels,
                                       size_t count, spartan_step_result *res) {
    return step(m, images, labels, count, 0, res, "spartan_model_gradients");
}

/* A forward pass that leaves the statistics alone (recording is off outside a step): train
 * selects the training-mode layers (dropout). */
static spartan_status forward_only(spartan_model *m, const float *images, const float *labels,
                                   size_t count, int train, spartan_step_result *res,
                                   const char *fn) {
    spartan_status st = check_batch(m, images, labels, count, train, fn);
    if (st != SPARTAN_OK) return st;
    m->sampling = 0;
    spartan_step_result r = {0, 0, 0};
    st = forward_loss(m, images, labels, count, train, 0, &r);
    if (st == SPARTAN_OK && res) *res = r;
    return st;
}

spartan_status spartan_model_train_loss(spartan_model *m, const float *images, const float *labels,
                                        size_t count, spartan_step_result *res) {
    return forward_only(m, images, labels, count, 1, res, "spartan_model_train_loss");
}

spartan_status spartan_model_evaluate(spartan_model *m, const float *images, const float *labels,
                                      size_t count, spartan_step_result *res) {
    return forward_only(m, images, labels, count, 0, res, "spartan_model_evaluate");
}
