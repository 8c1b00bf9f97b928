/* The training step (include/spartan/nn.h): forward, loss, backward and the update, enqueued
 * without waiting; then its one blocking read (the loss statistics), after which the monitors'
 * samples, the timing marks, the policy's feedback and the monitor's sampling period are
 * settled. Evaluation. Each layer call gets the step's state (sp_step) explicitly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_internal.h"

/* ---- Batches --------------------------------------------------------------------------------- */

/* Where a call's batch is: host arrays (uploaded into the model's buffers) or device tensors of
 * the model's context (read in place). labels: NULL for predictions. */
typedef struct batch {
    const float *images, *labels;
    const spartan_tensor *timages, *tlabels;
} batch;

/* exact: the count must be the prepared batch (a training step); else 1..batch. */
static spartan_status check_batch(spartan_model *m, const batch *b, size_t count, int exact,
                                  int want_labels, const char *fn) {
    if (!m) return sp_invalid(NULL, "%s: NULL model", fn);
    if (!m->prepared) return sp_invalid(m->ctx, "%s: call spartan_model_prepare first", fn);
    const int host = b->images != NULL || b->timages == NULL;
    if (host ? !b->images || (want_labels && !b->labels)
             : !b->timages || (want_labels && !b->tlabels))
        return sp_invalid(m->ctx, "%s: NULL images%s", fn, want_labels ? " or labels" : "");
    if (exact ? count != m->cfg.batch : (count == 0 || count > m->cfg.batch))
        return sp_invalid(m->ctx, "%s: %zu images, the model was prepared for batches of %zu", fn,
                          count, m->cfg.batch);
    if (host) return SPARTAN_OK;
    const size_t px = m->in_h * m->in_w * m->in_c;
    const spartan_tensor *t[2] = {b->timages, want_labels ? b->tlabels : NULL};
    const size_t need[2] = {count * px, count};
    for (int i = 0; i < 2; i++) {
        if (!t[i]) continue;
        if (t[i]->ctx != m->ctx)
            return sp_invalid(m->ctx, "%s: the %s tensor belongs to another context", fn,
                              i ? "labels" : "images");
        if (spartan_tensor_numel(t[i]) < need[i])
            return sp_invalid(m->ctx, "%s: the %s tensor holds %zu values, %zu images need %zu", fn,
                              i ? "labels" : "images", spartan_tensor_numel(t[i]), count, need[i]);
    }
    return SPARTAN_OK;
}

/* The batch's images and labels as device tensors of count rows: the user's tensors seen
 * through views, or host arrays written (non-blocking) into the model's buffers. */
static spartan_status place(spartan_model *m, const batch *b, size_t count, spartan_tensor *in,
                            spartan_tensor *lab) {
    size_t dims[4] = {count, m->in_h, m->in_w, m->in_c}, ld[2] = {count, 1};
    const int host = b->timages == NULL;
    spartan_status st = sp_tensor_view(in, host ? m->input : b->timages, 4, dims);
    const spartan_tensor *labels = host ? m->labels : b->tlabels;
    if (st == SPARTAN_OK && labels) st = sp_tensor_view(lab, labels, 2, ld);
    if (st != SPARTAN_OK || !host) return st;
    st = sp_tensor_write_async(in, b->images, count * m->in_h * m->in_w * m->in_c);
    if (st == SPARTAN_OK && b->labels) st = sp_tensor_write_async(lab, b->labels, count);
    return st;
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

/* The forward pass over the images in m->input_view (each layer's input kept in m->acts);
 * *logits: the last layer's output. */
static spartan_status forward(spartan_model *m, const sp_step *s, const spartan_tensor **logits) {
    spartan_status st;
    if (s->recording && (st = sp_marks_add(&m->marks, NULL, NULL)) != SPARTAN_OK) return st;
    const spartan_tensor *x = &m->input_view;
    for (size_t i = 0; i < m->nlayers; i++) {
        m->acts[i] = x;
        sp_layer *L = &m->layers[i];
        if ((st = L->ops->forward(L, s, x, &x)) != SPARTAN_OK) return st;
    }
    m->acts[m->nlayers] = x;
    *logits = x;
    return SPARTAN_OK;
}

/* Places the batch, runs the forward pass and the loss; train: dropout and monitors on.
 * backward: the loss gradient too, and the loss is left on the device for the step to read at
 * its end; else it is read back here (blocking). */
static spartan_status forward_loss(spartan_model *m, const sp_step *s, const batch *b, int backward,
                                   spartan_step_result *res) {
    const size_t count = s->count;
    spartan_tensor lab, logits, dl, stats;
    size_t lg[2] = {count, m->classes}, sd[2] = {count, 2};
    spartan_status st = place(m, b, count, &m->input_view, &lab);
    if (st == SPARTAN_OK) st = sp_tensor_view(&dl, m->dlogits, 2, lg);
    if (st == SPARTAN_OK) st = sp_tensor_view(&stats, m->stats, 2, sd);
    const spartan_tensor *out = NULL;
    if (st == SPARTAN_OK) st = forward(m, s, &out);
    if (st == SPARTAN_OK) st = sp_tensor_view(&logits, out, 2, lg);
    if (st != SPARTAN_OK) return st;
    st = spartan_softmax_xent(m->ctx, &logits, &lab, 1.0f / (float)count, backward ? &dl : NULL,
                              &stats);
    if (st == SPARTAN_OK && s->recording) st = sp_marks_add(&m->marks, NULL, NULL);
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

static void learn(spartan_model *m, int sampling) {
    double moved = 0.0;
    for (size_t i = 0; i < m->nlayers; i++) {
        sp_layer *L = &m->layers[i];
        for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
            /* a GEMM over the kept neurons: its time at the shape the policy models */
            if (L->g.step_gemm[p] > 0 && !L->g.ws_use[p])
                sp_policy_observe(m->policy, L->index, (spartan_pass)p, L->path[p],
                                  L->g.step_zeros[p],
                                  1e3 * L->g.step_gemm[p] / sp_gemm_rows_work(L));
            sp_wpath_observe(L, p, L->g.step_gemm[p]);
            L->g.step_gemm[p] = 0.0;
        }
        if (sampling && L->zeros_prev >= 0) moved = fmax(moved, fabs(L->xz.last - L->zeros_prev));
        if (sampling) L->zeros_prev = L->xz.last;
    }
    if (m->cfg.sample_every || !sampling) return;
    m->sample_period = moved > SAMPLE_STABLE ? 1 : m->sample_period * 2;
    if (m->sample_period > SAMPLE_MAX) m->sample_period = SAMPLE_MAX;
    m->next_sample = m->step + m->sample_period;
}

/* After the step's blocking read: every layer's samples of this step (in order: an fc layer
 * takes its input's count from the layer before it). */
static void collect(spartan_model *m) {
    for (size_t i = 0; i < m->nlayers; i++) {
        sp_layer *L = &m->layers[i];
        L->sampled = 0;
        if (L->ops->collect) L->ops->collect(L);
    }
}

/* A gradient-exchange hook's failure as the context's error. */
static spartan_status hook_failed(spartan_model *m, spartan_status st, const char *why) {
    if (st == SPARTAN_OK) st = SPARTAN_STATUS_INTERNAL; /* a hook that failed without saying */
    return sp_err_set(&m->ctx->err, st, "gradient exchange: %s", why[0] ? why : "failed");
}

/* The backward pass, layer by layer from the last; with gradient hooks, each layer's parameters
 * are handed to ready() as soon as its backward is enqueued, then finish() waits for them all. */
static spartan_status backward(spartan_model *m, const sp_step *s) {
    const spartan_grad_hooks *h = m->hooks.ready ? &m->hooks : NULL;
    char why[512] = "";
    size_t param_end = m->nparams; /* the parameters of layers i.. start here */
    spartan_status st = SPARTAN_OK;
    const spartan_tensor *g = m->dlogits;
    for (size_t i = m->nlayers; i-- > 0 && st == SPARTAN_OK;) {
        const spartan_tensor *dx = NULL;
        sp_layer *L = &m->layers[i];
        st = L->ops->backward(L, s, m->acts[i], g, &dx);
        g = dx;
        if (!h || !L->ops->params) continue; /* the hooks alone need the parameters' places */
        const size_t np = L->ops->params(L, NULL);
        for (size_t k = np; st == SPARTAN_OK && k-- > 0;)
            if ((st = h->ready(h->user, param_end - np + k, why, sizeof why)) != SPARTAN_OK)
                st = hook_failed(m, st, why);
        param_end -= np;
    }
    if (h && st == SPARTAN_OK && (st = h->finish(h->user, why, sizeof why)) != SPARTAN_OK)
        st = hook_failed(m, st, why);
    return st;
}

static spartan_status run_step(spartan_model *m, const batch *b, size_t count, int update,
                               spartan_step_result *res) {
    const size_t syncs = m->ctx->syncs, launches = m->ctx->launches;
    const int hooked = m->hooks.ready != NULL;
    sp_step s = {
        .ctx = m->ctx,
        .policy = m->policy,
        .count = count,
        .train = 1,
        .sampling =
            m->cfg.sample_every ? m->step % m->cfg.sample_every == 0 : m->step >= m->next_sample,
        .recording = 1,
        .step = m->step,
        /* with hooks the exchange needs every gradient whole: no fused update */
        .update = update && !hooked,
        .seed = m->cfg.seed,
        .image0 = m->image0,
        .marks = &m->marks,
    };
    sp_policy_set_step(m->policy, m->step);
    spartan_status st = update && m->dropback ? sp_wpath_plan(m, m->step) : SPARTAN_OK;
    if (st == SPARTAN_OK) st = forward_loss(m, &s, b, 1, res);
    if (st == SPARTAN_OK) st = backward(m, &s);
    if (st != SPARTAN_OK && hooked && m->hooks.cancel) m->hooks.cancel(m->hooks.user);
    /* the update: each layer's own (ops->update: the fused forms over the kept rows or tiles, the
     * same rule) or SGD on each of its parameters (always, after an exchange) */
    for (size_t i = 0; update && i < m->nlayers && st == SPARTAN_OK; i++) {
        sp_layer *L = &m->layers[i];
        if (!L->ops->params) continue;
        st = L->ops->update && s.update ? L->ops->update(L, &s, &m->cfg)
                                        : sp_layer_sgd(L, &s, &m->cfg);
    }
    if (update && m->dropback && st == SPARTAN_OK)
        st = sp_dropback_step(m->ctx, m->dropback, m->step);
    if (st == SPARTAN_OK) st = read_stats(m, count, res); /* the step's one blocking read */
    if (st != SPARTAN_OK) {
        /* leave no half-counted markers or half-read samples behind */
        spartan_context_finish(m->ctx);
        sp_marks_release(&m->marks);
        for (size_t i = 0; i < m->nlayers; i++) {
            m->layers[i].ys.pending = 0;
            m->layers[i].g.xs.pending = m->layers[i].g.gs.pending = 0;
        }
        return st;
    }
    res->syncs = m->ctx->syncs - syncs;
    res->launches = m->ctx->launches - launches;
    collect(m);
    sp_marks_settle(&m->marks);
    learn(m, s.sampling);
    if (update) sp_wpath_updated(m);
    if (update) m->step++;
    return SPARTAN_OK;
}

/* A checked training step; update: apply SGD (else only the gradients). res is written on
 * success only. */
static spartan_status step(spartan_model *m, const batch *b, size_t count, int update,
                           spartan_step_result *res, const char *fn) {
    spartan_status st = check_batch(m, b, count, 1, 1, fn);
    if (st != SPARTAN_OK) return st;
    spartan_step_result r = {0, 0, 0, 0, 0};
    st = run_step(m, b, count, update, &r);
    if (st == SPARTAN_OK && res) *res = r;
    return st;
}

spartan_status spartan_model_train_step(spartan_model *m, const float *images, const float *labels,
                                        size_t count, spartan_step_result *res) {
    batch b = {images, labels, NULL, NULL};
    return step(m, &b, count, 1, res, "spartan_model_train_step");
}

spartan_status spartan_model_train_step_tensors(spartan_model *m, const spartan_tensor *images,
                                                const spartan_tensor *labels, size_t count,
                                                spartan_step_result *res) {
    batch b = {NULL, NULL, images, labels};
    return step(m, &b, count, 1, res, "spartan_model_train_step_tensors");
}

spartan_status spartan_model_gradients(spartan_model *m, const float *images, const float *labels,
                                       size_t count, spartan_step_result *res) {
    batch b = {images, labels, NULL, NULL};
    return step(m, &b, count, 0, res, "spartan_model_gradients");
}

/* A forward pass that leaves the statistics alone (recording is off outside a step): train
 * selects the training-mode layers (dropout). */
static spartan_status forward_only(spartan_model *m, const batch *b, size_t count, int train,
                                   spartan_step_result *res, const char *fn) {
    spartan_status st = check_batch(m, b, count, train, 1, fn);
    if (st != SPARTAN_OK) return st;
    const size_t syncs = m->ctx->syncs, launches = m->ctx->launches;
    sp_step s = {.ctx = m->ctx,
                 .policy = m->policy,
                 .count = count,
                 .train = train,
                 .step = m->step,
                 .seed = m->cfg.seed,
                 .image0 = m->image0,
                 .marks = &m->marks};
    spartan_step_result r = {0, 0, 0, 0, 0};
    st = forward_loss(m, &s, b, 0, &r);
    r.syncs = m->ctx->syncs - syncs;
    r.launches = m->ctx->launches - launches;
    if (st == SPARTAN_OK && res) *res = r;
    return st;
}

spartan_status spartan_model_train_loss(spartan_model *m, const float *images, const float *labels,
                                        size_t count, spartan_step_result *res) {
    batch b = {images, labels, NULL, NULL};
    return forward_only(m, &b, count, 1, res, "spartan_model_train_loss");
}

spartan_status spartan_model_evaluate(spartan_model *m, const float *images, const float *labels,
                                      size_t count, spartan_step_result *res) {
    batch b = {images, labels, NULL, NULL};
    return forward_only(m, &b, count, 0, res, "spartan_model_evaluate");
}

spartan_status spartan_model_evaluate_tensors(spartan_model *m, const spartan_tensor *images,
                                              const spartan_tensor *labels, size_t count,
                                              spartan_step_result *res) {
    batch b = {NULL, NULL, images, labels};
    return forward_only(m, &b, count, 0, res, "spartan_model_evaluate_tensors");
}

spartan_status spartan_model_predict(spartan_model *m, const float *images, size_t count,
                                     float *logits, size_t *predictions) {
    static const char fn[] = "spartan_model_predict";
    batch b = {images, NULL, NULL, NULL};
    spartan_status st = check_batch(m, &b, count, 0, 0, fn);
    if (st != SPARTAN_OK) return st;
    if (!logits && !predictions)
        return sp_invalid(m->ctx, "%s: NULL logits and predictions: nothing to return", fn);
    sp_step s = {.ctx = m->ctx,
                 .policy = m->policy,
                 .count = count,
                 .step = m->step,
                 .seed = m->cfg.seed,
                 .marks = &m->marks};
    spartan_tensor lab, out_v;
    const spartan_tensor *out = NULL;
    size_t lg[2] = {count, m->classes};
    st = place(m, &b, count, &m->input_view, &lab);
    if (st == SPARTAN_OK) st = forward(m, &s, &out);
    if (st == SPARTAN_OK) st = sp_tensor_view(&out_v, out, 2, lg);
    float *host = logits ? logits : malloc(count * m->classes * sizeof *host);
    if (st == SPARTAN_OK && !host)
        st = sp_err_set(&m->ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "%s: logits", fn);
    if (st == SPARTAN_OK) st = spartan_tensor_read(&out_v, host, count * m->classes);
    for (size_t i = 0; st == SPARTAN_OK && predictions && i < count; i++) {
        const float *row = host + i * m->classes;
        size_t best = 0; /* the first maximum, as the loss kernel's hit count */
        for (size_t c = 1; c < m->classes; c++)
            if (row[c] > row[best]) best = c;
        predictions[i] = best;
    }
    if (host != logits) free(host);
    return st;
}
