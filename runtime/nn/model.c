/* Sequential models: building, presets, preparation (parameters, buffers, the policy's
 * registration) and the per-layer statistics (include/spartan/nn.h). The step is in step.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_internal.h"

spartan_train_config spartan_train_config_default(void) {
    spartan_train_config c = {64,    0.05f,
                              0.9f,  5e-4f,
                              1,     SPARTAN_POLICY_ADAPTIVE,
                              0,     SPARTAN_DROPOUT_BERNOULLI,
                              -1.0f, 0.0f,
                              0.0f,  0,
                              0.9f,  1,
                              0};
    return c;
}

spartan_status spartan_model_create(spartan_context *ctx, size_t in_h, size_t in_w, size_t in_c,
                                    size_t classes, spartan_model **out) {
    if (out) *out = NULL;
    if (!ctx || !out) return sp_invalid(ctx, "spartan_model_create: NULL argument");
    if (!in_h || !in_w || !in_c || !classes)
        return sp_invalid(ctx, "spartan_model_create: zero input size or class count");
    spartan_model *m = calloc(1, sizeof *m);
    if (!m) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "model");
    m->ctx = ctx;
    m->in_h = in_h;
    m->in_w = in_w;
    m->in_c = in_c;
    m->classes = classes;
    m->cfg = spartan_train_config_default();
    *out = m;
    return SPARTAN_OK;
}

/* Frees what prepare made (buffers, policy, parameters list, markers). */
static void unprepare(spartan_model *m) {
    for (size_t i = 0; i < m->nlayers; i++) m->layers[i].ops->release(&m->layers[i]);
    spartan_tensor_destroy(m->input);
    spartan_tensor_destroy(m->labels);
    spartan_tensor_destroy(m->dlogits);
    spartan_tensor_destroy(m->stats);
    m->input = m->labels = m->dlogits = m->stats = NULL;
    free(m->stats_host);
    m->stats_host = NULL;
    spartan_policy_destroy(m->policy);
    m->policy = NULL;
    sp_dropback_free(m->ctx, m->dropback);
    m->dropback = NULL;
    sp_marks_free(&m->marks);
    free(m->params);
    m->params = NULL;
    free(m->acts);
    m->acts = NULL;
    m->nparams = 0;
    m->prepared = 0;
}

void spartan_model_destroy(spartan_model *m) {
    if (!m) return;
    unprepare(m);
    free(m->layers);
    free(m);
}

const char *spartan_layer_kind_name(spartan_layer_kind kind) {
    return (unsigned)kind < SPARTAN_LAYER_KIND_COUNT ? sp_layer_kinds[kind]->name : NULL;
}

float spartan_model_dropout_max(const spartan_model *m, float rate) {
    float p = 0.0f;
    for (size_t i = 0; m && i < m->nlayers; i++)
        if (m->layers[i].ops == &sp_layer_dropout)
            p = fmaxf(p, rate >= 0.0f ? rate : m->layers[i].spec.rate);
    return p;
}

const char *spartan_dropout_kind_name(spartan_dropout_kind kind) {
    static const char *const names[] = {"bernoulli", "row", "tile"};
    return (unsigned)kind < SPARTAN_DROPOUT_KIND_COUNT ? names[kind] : NULL;
}

/* The shape the next layer receives. */
static void tail_shape(const spartan_model *m, size_t *h, size_t *w, size_t *c) {
    if (m->nlayers == 0) {
        *h = m->in_h;
        *w = m->in_w;
        *c = m->in_c;
    } else {
        const sp_layer *L = &m->layers[m->nlayers - 1];
        *h = L->out_h;
        *w = L->out_w;
        *c = L->out_c;
    }
}

/* Appends a layer of spec's kind after checking its shape (fn: the public call, for messages). */
static spartan_status add(spartan_model *m, const spartan_layer_spec *spec, const char *fn) {
    if (!m) return sp_invalid(NULL, "%s: NULL model", fn);
    if (!spec) return sp_invalid(m->ctx, "%s: NULL spec", fn);
    if (m->prepared)
        return sp_invalid(m->ctx,
                          "%s: the model is already prepared: layers are added before "
                          "spartan_model_prepare (build a new model for other layers)",
                          fn);
    if ((unsigned)spec->kind >= SPARTAN_LAYER_KIND_COUNT)
        return sp_invalid(m->ctx, "%s: %d is not a layer kind", fn, (int)spec->kind);
    sp_layer L;
    memset(&L, 0, sizeof L);
    L.ops = sp_layer_kinds[spec->kind];
    L.spec = *spec;
    tail_shape(m, &L.in_h, &L.in_w, &L.in_c);
    spartan_status st = L.ops->shape(m->ctx, &L);
    if (st != SPARTAN_OK) {
        char msg[384]; /* the kind's reason, after the call's name */
        snprintf(msg, sizeof msg, "%s", spartan_last_error(m->ctx));
        return sp_invalid(m->ctx, "%s: %s", fn, msg);
    }
    if (m->nlayers == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        sp_layer *l = realloc(m->layers, cap * sizeof *l);
        if (!l) return sp_err_set(&m->ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "layers");
        m->layers = l;
        m->cap = cap;
    }
    size_t same = 1;
    for (size_t i = 0; i < m->nlayers; i++) same += m->layers[i].ops == L.ops;
    L.index = m->nlayers;
    snprintf(L.name, sizeof L.name, "%s%zu", L.ops->name, same);
    m->layers[m->nlayers++] = L;
    return SPARTAN_OK;
}

spartan_status spartan_model_add(spartan_model *m, const spartan_layer_spec *spec) {
    return add(m, spec, "spartan_model_add");
}

spartan_status spartan_model_add_fc(spartan_model *m, size_t out_features) {
    spartan_layer_spec s = {.kind = SPARTAN_LAYER_FC, .outputs = out_features};
    return add(m, &s, "spartan_model_add_fc");
}

spartan_status spartan_model_add_conv(spartan_model *m, size_t out_channels, size_t kernel,
                                      size_t stride, size_t pad) {
    spartan_layer_spec s = {SPARTAN_LAYER_CONV, out_channels, kernel, stride, pad, 0.0f};
    return add(m, &s, "spartan_model_add_conv");
}

spartan_status spartan_model_add_relu(spartan_model *m) {
    spartan_layer_spec s = {.kind = SPARTAN_LAYER_RELU};
    return add(m, &s, "spartan_model_add_relu");
}

spartan_status spartan_model_add_maxpool(spartan_model *m, size_t kernel, size_t stride) {
    spartan_layer_spec s = {.kind = SPARTAN_LAYER_MAXPOOL, .kernel = kernel, .stride = stride};
    return add(m, &s, "spartan_model_add_maxpool");
}

spartan_status spartan_model_add_avgpool(spartan_model *m, size_t kernel, size_t stride,
                                         size_t pad) {
    spartan_layer_spec s = {SPARTAN_LAYER_AVGPOOL, 0, kernel, stride, pad, 0.0f};
    return add(m, &s, "spartan_model_add_avgpool");
}

spartan_status spartan_model_add_globalavgpool(spartan_model *m) {
    spartan_layer_spec s = {.kind = SPARTAN_LAYER_GLOBALAVGPOOL};
    return add(m, &s, "spartan_model_add_globalavgpool");
}

spartan_status spartan_model_add_dropout(spartan_model *m, float p) {
    spartan_layer_spec s = {.kind = SPARTAN_LAYER_DROPOUT, .rate = p};
    return add(m, &s, "spartan_model_add_dropout");
}

spartan_status spartan_model_add_lstm(spartan_model *m, size_t hidden) {
    spartan_layer_spec s = {.kind = SPARTAN_LAYER_LSTM, .outputs = hidden};
    return add(m, &s, "spartan_model_add_lstm");
}

spartan_status spartan_model_add_flatten(spartan_model *m) {
    spartan_layer_spec s = {.kind = SPARTAN_LAYER_FLATTEN};
    return add(m, &s, "spartan_model_add_flatten");
}

/* ---- Presets ----------------------------------------------------------------------------------
 */

void spartan_model_shape(const spartan_model *m, size_t *in_h, size_t *in_w, size_t *in_c,
                         size_t *classes) {
    if (in_h) *in_h = m ? m->in_h : 0;
    if (in_w) *in_w = m ? m->in_w : 0;
    if (in_c) *in_c = m ? m->in_c : 0;
    if (classes) *classes = m ? m->classes : 0;
}

/* The presets are the description files models/<name>.model, embedded at build time. */
extern const unsigned char sp_model_mlp[], sp_model_lenet5[], sp_model_vgg_small[],
    sp_model_mlp_dropout[], sp_model_lstm[];
static const char *const preset_names[] = {"mlp",         "lenet5", "vgg-small",
                                           "mlp-dropout", "lstm",   NULL};
static const unsigned char *const preset_texts[] = {
    sp_model_mlp, sp_model_lenet5, sp_model_vgg_small, sp_model_mlp_dropout, sp_model_lstm};

const char *const *spartan_model_presets(void) {
    return preset_names;
}

spartan_status spartan_model_create_preset(spartan_context *ctx, const char *name,
                                           spartan_model **out) {
    if (out) *out = NULL;
    if (!ctx || !name || !out) return sp_invalid(ctx, "spartan_model_create_preset: NULL argument");
    for (int i = 0; preset_names[i]; i++)
        if (strcmp(name, preset_names[i]) == 0)
            return spartan_model_create_from_text(ctx, (const char *)preset_texts[i], out);
    return sp_invalid(ctx,
                      "spartan_model_create_preset: unknown model \"%s\" (presets: mlp, "
                      "lenet5, vgg-small, mlp-dropout, lstm)",
                      name);
}

/* ---- Preparation ------------------------------------------------------------------------------
 */

static void clear_stats(sp_layer *L, int all) {
    for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
        L->sec[p] = 0.0;
        L->calls[p] = L->sparse_calls[p] = L->g.ws_calls[p] = 0;
    }
    L->xz.sum = L->gz.sum = 0.0;
    L->xz.n = L->gz.n = 0;
    if (all) {
        L->xz.first = L->gz.first = L->xz.last = L->gz.last = L->zeros_prev = -1.0;
        L->samples = 0;
        for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
            L->path[p] = SPARTAN_PATH_DENSE;
            L->reason[p] = "not run yet";
            L->g.step_gemm[p] = 0.0;
        }
    }
}

/* The sparse form of each pass of GEMM layer i (docs/policy.md): the forward pass skips X's
 * zeros. With a ReLU next, dY is masked (85-92 % zeros before a pool) and backward-by-weight
 * skips dY's zeros; so does backward-by-input of a convolution (the masked product on the im2col
 * matrix ran 0.4-0.7x dense there) or of a layer not fed by a ReLU, while a fully connected layer
 * fed by one keeps the product masked by X (1.1-1.8x dense at 50-80 % zeros; on dY it ran 0.7x
 * on mlp). Without a ReLU next, both skip X's zeros, backward-by-input only where X comes from a
 * ReLU (its gradient is discarded at X's zeros anyway). */
static void sparse_forms(spartan_model *m, size_t i, int relu_feeds) {
    sp_layer *L = &m->layers[i];
    int *form = L->g.form;
    for (int p = 0; p < SPARTAN_PASS_COUNT; p++) form[p] = SP_SPARSE_NONE;
    if (!L->ops->gemm) return;
    const int relu_next = i + 1 < m->nlayers && m->layers[i + 1].ops == &sp_layer_relu;
    const int conv = L->ops == &sp_layer_conv;
    form[SPARTAN_PASS_FWD] = SP_SPARSE_ON_X;
    form[SPARTAN_PASS_BWD_WEIGHT] = relu_next ? SP_SPARSE_ON_DY : SP_SPARSE_ON_X;
    if (!L->need_dx) return;
    if (relu_next && (conv || !relu_feeds))
        form[SPARTAN_PASS_BWD_INPUT] = SP_SPARSE_ON_DY;
    else if (relu_feeds)
        form[SPARTAN_PASS_BWD_INPUT] = SP_SPARSE_ON_X;
}

/* Registers the layer's passes with the policy, with their shapes and sparse forms. */
static spartan_status register_passes(spartan_model *m, const sp_layer *L) {
    spartan_status st = SPARTAN_OK;
    for (int p = 0; p < SPARTAN_PASS_COUNT && st == SPARTAN_OK; p++) {
        if (p == SPARTAN_PASS_BWD_INPUT && !L->need_dx) continue;
        const spartan_gemm_pass *d = &L->g.pass[p];
        /* next to a row dropout, training runs over the kept neurons: their shape on average */
        spartan_gemm_pass kept;
        if (L->drop_in || L->drop_out) {
            st = spartan_gemm_pass_init((spartan_pass)p, (spartan_sparse_form)L->g.form[p], L->g.m,
                                        L->kc_mean, L->nc_mean, &kept);
            d = &kept;
        }
        if (st != SPARTAN_OK) break;
        if (L->ops == &sp_layer_conv) {
            spartan_window win = sp_layer_window(L, L->batch, L->spec.pad);
            st = sp_policy_register_conv(m->policy, L->index, (spartan_pass)p, &win, L->out_c,
                                         L->g.form[p], NULL);
        } else {
            st = sp_policy_register(m->policy, L->index, (spartan_pass)p, d->m, d->gn, d->gk,
                                    L->g.form[p], NULL);
        }
    }
    return st;
}

/* Walks the layers in order: which compute an input gradient, which inputs are ReLU-masked,
 * the sparse forms, where an fc layer's input sparsity is counted. */
static void plan(spartan_model *m) {
    int trainable_before = 0, relu_feeds = 0;
    const sp_layer *monitored = NULL; /* the layer whose output the next layer reads, if counted */
    size_t dropouts = 0;
    for (size_t i = 0; i < m->nlayers; i++) { /* links set below, ahead of the walk */
        m->layers[i].drop_in = m->layers[i].drop_out = m->layers[i].drop_tiles = NULL;
        m->layers[i].compact = 0;
        if (m->layers[i].ops == &sp_layer_dropout || m->layers[i].ops == &sp_layer_lstm)
            m->layers[i].rank = dropouts++;
    }
    for (size_t i = 0; i < m->nlayers; i++) {
        sp_layer *L = &m->layers[i];
        L->need_dx = trainable_before;
        L->input_masked = relu_feeds;
        L->x_source = L->ops->gemm ? monitored : NULL;
        /* a GEMM layer's bias is added by the ReLU right after it, in the ReLU's pass */
        L->g.bias_in_relu = 0;
        L->bias_from = NULL;
        L->relu_before = NULL;
        L->backward_by_next = L->forward_by_next = 0;
        L->relu_in_store = L->forward_by_prev = 0;
        /* a max-pool or a convolution right after a ReLU does the ReLU's backward in its own
         * pass, and a max-pool its forward too */
        if (i > 0 && m->layers[i - 1].ops == &sp_layer_relu &&
            (L->ops == &sp_layer_maxpool || L->ops == &sp_layer_conv)) {
            L->relu_before = &m->layers[i - 1];
            m->layers[i - 1].backward_by_next = 1;
            m->layers[i - 1].forward_by_next = L->ops == &sp_layer_maxpool;
        }
        if (i > 0 && L->ops == &sp_layer_relu && m->layers[i - 1].ops->gemm) {
            L->bias_from = &m->layers[i - 1];
            m->layers[i - 1].g.bias_in_relu = 1;
            /* conv -> relu -> conv: the first convolution's store adds the bias and applies the
             * ReLU on the steps that do not sample the ReLU's monitor */
            if (m->layers[i - 1].ops == &sp_layer_conv && i + 1 < m->nlayers &&
                m->layers[i + 1].ops == &sp_layer_conv)
                m->layers[i - 1].relu_in_store = L->forward_by_prev = 1;
        }
        /* fc -> relu -> row dropout -> fc: both fc layers run over the kept neurons alone */
        if (L->ops == &sp_layer_dropout && m->cfg.dropout_kind == SPARTAN_DROPOUT_ROW && i >= 2 &&
            i + 1 < m->nlayers && m->layers[i - 2].ops == &sp_layer_fc &&
            m->layers[i - 1].ops == &sp_layer_relu && m->layers[i + 1].ops == &sp_layer_fc) {
            L->compact = 1;
            m->layers[i - 2].drop_out = L;
            m->layers[i + 1].drop_in = L;
        }
        /* tile dropout -> fc: the fc drops tiles of its weights instead (where the own GEMM
         * kernels, which skip them, run) */
        if (L->ops == &sp_layer_dropout && m->cfg.dropout_kind == SPARTAN_DROPOUT_TILE &&
            i + 1 < m->nlayers && m->layers[i + 1].ops == &sp_layer_fc &&
            sp_gemm_tiles_usable(m->ctx)) {
            L->compact = 1;
            L->drop_tiles = &m->layers[i + 1]; /* the layer whose tiles it drops */
            m->layers[i + 1].drop_tiles = L;
        }
        /* lstm with row dropout -> fc: the LSTM runs on its kept units, the fc on its kept
         * inputs */
        const float rate = m->cfg.dropout >= 0.0f ? m->cfg.dropout : L->spec.rate;
        if (L->ops == &sp_layer_lstm && m->cfg.dropout_kind == SPARTAN_DROPOUT_ROW && rate > 0.0f &&
            i + 1 < m->nlayers && m->layers[i + 1].ops == &sp_layer_fc) {
            L->compact = 1;
            m->layers[i + 1].drop_in = L;
        }
        sparse_forms(m, i, relu_feeds);
        if (L->ops == &sp_layer_relu)
            relu_feeds = 1;
        else if (!L->ops->keeps_mask)
            relu_feeds = 0;
        if (L->ops->params) trainable_before = 1;
        /* a compact dropout passes its input on (a row dropout's: the ReLU's kept outputs), which
         * the ReLU before counts */
        const int passes_on =
            L->ops == &sp_layer_flatten || (L->ops == &sp_layer_dropout && L->compact);
        if (!passes_on) monitored = L->ops->collect && !L->ops->gemm ? L : NULL;
    }
}

spartan_status spartan_model_prepare(spartan_model *m, const spartan_train_config *cfg) {
    if (!m || !cfg) return sp_invalid(m ? m->ctx : NULL, "spartan_model_prepare: NULL argument");
    spartan_context *ctx = m->ctx;
    if (!cfg->batch) return sp_invalid(ctx, "spartan_model_prepare: batch 0");
    if ((unsigned)cfg->policy > SPARTAN_POLICY_ADAPTIVE)
        return sp_invalid(ctx, "spartan_model_prepare: cfg->policy %d is not a policy mode",
                          (int)cfg->policy);
    if ((unsigned)cfg->dropout_kind >= SPARTAN_DROPOUT_KIND_COUNT)
        return sp_invalid(ctx, "spartan_model_prepare: cfg->dropout_kind %d is not a dropout kind",
                          (int)cfg->dropout_kind);
    if (!(cfg->dropout < 1.0f)) /* NaN too */
        return sp_invalid(ctx, "spartan_model_prepare: cfg->dropout %g is not below 1",
                          (double)cfg->dropout);
    if (!(cfg->channel_dropout >= 0.0f && cfg->channel_dropout < 1.0f))
        return sp_invalid(ctx, "spartan_model_prepare: cfg->channel_dropout %g is not in [0, 1)",
                          (double)cfg->channel_dropout);
    if (!(cfg->dropback_density >= 0.0f && cfg->dropback_density <= 1.0f))
        return sp_invalid(ctx, "spartan_model_prepare: cfg->dropback_density %g is not in [0, 1]",
                          (double)cfg->dropback_density);
    if ((cfg->dropback_density > 0.0f || cfg->dropback_keep) &&
        !(cfg->dropback_decay > 0.0f && cfg->dropback_decay <= 1.0f))
        return sp_invalid(ctx, "spartan_model_prepare: cfg->dropback_decay %g is not in (0, 1]",
                          (double)cfg->dropback_decay);
    if ((cfg->dropback_density > 0.0f || cfg->dropback_keep) && !cfg->dropback_interval)
        return sp_invalid(ctx, "spartan_model_prepare: cfg->dropback_interval is 0 (1: every "
                               "update selects)");
    if (!m->nlayers) return sp_invalid(ctx, "spartan_model_prepare: the model has no layers");
    const sp_layer *last = &m->layers[m->nlayers - 1];
    if (last->out_h * last->out_w * last->out_c != m->classes)
        return sp_invalid(ctx,
                          "spartan_model_prepare: the last layer gives %zu outputs per image, "
                          "the model has %zu classes",
                          last->out_h * last->out_w * last->out_c, m->classes);
    unprepare(m);
    m->cfg = *cfg;
    m->step = 0;
    m->sample_period = 1;
    m->next_sample = 0;
    m->marks.ctx = ctx;
    spartan_status st = spartan_policy_create(ctx, cfg->policy, &m->policy);
    plan(m);
    size_t nparams = 0;
    for (size_t i = 0; i < m->nlayers && st == SPARTAN_OK; i++) {
        sp_layer *L = &m->layers[i];
        clear_stats(L, 1);
        st = L->ops->prepare(L, ctx, cfg);
        if (st == SPARTAN_OK && L->ops->params) nparams += L->ops->params(L, NULL);
        if (st == SPARTAN_OK && L->ops->gemm && !L->drop_in && !L->drop_out)
            st = register_passes(m, L);
    }
    /* the kept weights' scratch of fc layers next to a row dropout, sized by its plan, and their
     * passes registered at the shape it keeps on average */
    for (size_t i = 0; i < m->nlayers && st == SPARTAN_OK; i++) {
        sp_layer *L = &m->layers[i];
        if (!L->drop_in && !L->drop_out) continue;
        st = sp_gemm_rows_prepare(L, ctx);
        if (st == SPARTAN_OK) st = register_passes(m, L);
    }
    size_t dims[4] = {cfg->batch, m->in_h, m->in_w, m->in_c};
    if (st == SPARTAN_OK) st = spartan_tensor_create(ctx, 4, dims, &m->input);
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, cfg->batch, 1, &m->labels);
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, cfg->batch, m->classes, &m->dlogits);
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, cfg->batch, 2, &m->stats);
    if (st == SPARTAN_OK && !(m->stats_host = malloc(cfg->batch * 2 * sizeof(float))))
        st = sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "loss statistics");
    if (st == SPARTAN_OK && !(m->acts = calloc(m->nlayers + 1, sizeof *m->acts)))
        st = sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "activation list");
    if (st == SPARTAN_OK && !(m->params = calloc(nparams ? nparams : 1, sizeof *m->params)))
        st = sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "parameter list");
    for (size_t i = 0; i < m->nlayers && st == SPARTAN_OK; i++) {
        sp_layer *L = &m->layers[i];
        if (L->ops->params) m->nparams += L->ops->params(L, &m->params[m->nparams]);
    }
    if (st == SPARTAN_OK) st = sp_dropback_make(m, &m->dropback);
    if (st == SPARTAN_OK) st = sp_wpath_prepare(m);
    if (st == SPARTAN_OK) st = spartan_context_finish(ctx);
    if (st != SPARTAN_OK) {
        unprepare(m);
        return st;
    }
    m->prepared = 1;
    return SPARTAN_OK;
}

void spartan_model_set_lr(spartan_model *m, float lr) {
    if (m) m->cfg.lr = lr;
}

/* ---- Inspection -------------------------------------------------------------------------------
 */

size_t spartan_model_layer_count(const spartan_model *m) {
    return m ? m->nlayers : 0;
}

size_t spartan_model_steps(const spartan_model *m) {
    return m ? m->step : 0;
}

void spartan_model_set_steps(spartan_model *m, size_t steps) {
    if (m) m->step = steps;
}

spartan_context *spartan_model_context(const spartan_model *m) {
    return m ? m->ctx : NULL;
}

int spartan_model_is_prepared(const spartan_model *m) {
    return m && m->prepared;
}

spartan_status spartan_model_config(const spartan_model *m, spartan_train_config *out) {
    if (!m || !out) return sp_invalid(m ? m->ctx : NULL, "spartan_model_config: NULL model or out");
    if (!m->prepared)
        return sp_invalid(m->ctx, "spartan_model_config: call spartan_model_prepare first");
    *out = m->cfg;
    return SPARTAN_OK;
}

spartan_status spartan_model_layer_info(const spartan_model *m, size_t i, spartan_layer_info *out) {
    if (!m || !out)
        return sp_invalid(m ? m->ctx : NULL, "spartan_model_layer_info: NULL model or out");
    if (i >= m->nlayers)
        return sp_invalid(m->ctx, "spartan_model_layer_info: no layer %zu (the model has %zu)", i,
                          m->nlayers);
    const sp_layer *L = &m->layers[i];
    memset(out, 0, sizeof *out);
    out->name = L->name;
    out->kind = L->ops->name;
    out->type = L->spec.kind;
    out->spec = L->spec;
    out->in_h = L->in_h;
    out->in_w = L->in_w;
    out->in_c = L->in_c;
    out->gemm = L->ops->gemm;
    out->out_h = L->out_h;
    out->out_w = L->out_w;
    out->out_c = L->out_c;
    if (out->gemm) {
        out->m = L->g.m;
        out->n = L->g.n;
        out->k = L->g.k;
        for (int p = 0; p < SPARTAN_PASS_COUNT; p++)
            out->form[p] = (spartan_sparse_form)L->g.form[p];
    }
    spartan_param ps[SP_LAYER_PARAMS];
    const size_t np = L->ops->params && m->prepared ? L->ops->params(L, ps) : 0;
    for (size_t k = 0; k < np; k++) out->params += spartan_tensor_numel(ps[k].value);
    if (!np && out->gemm) out->params = L->g.k * L->g.n + L->g.n; /* before prepare */
    for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
        out->seconds[p] = L->sec[p];
        out->calls[p] = L->calls[p];
        out->sparse_calls[p] = L->sparse_calls[p];
        out->path[p] = L->path[p];
        out->reason[p] = L->reason[p];
        out->engine[p] = L->engine[p];
        out->wsparse_calls[p] = L->g.ws_calls[p];
        out->wsparse_ms[p] = L->g.ws_ms[p];
        out->other_ms[p] = L->g.alt_ms[p];
    }
    out->wsparse_density = L->g.ws_density;
    out->wsparse_builds = L->g.ws_builds;
    out->has_input_grad = L->need_dx;
    out->input_masked = L->input_masked;
    out->zeros_first = L->xz.first;
    out->zeros = L->xz.n ? L->xz.sum / (double)L->xz.n : -1.0;
    out->zeros_last = L->xz.last;
    out->grad_zeros_first = L->gz.first;
    out->grad_zeros = L->gz.n ? L->gz.sum / (double)L->gz.n : -1.0;
    out->grad_zeros_last = L->gz.last;
    out->samples = L->samples;
    return SPARTAN_OK;
}

void spartan_model_reset_stats(spartan_model *m) {
    for (size_t i = 0; m && i < m->nlayers; i++) clear_stats(&m->layers[i], 0);
}

spartan_policy *spartan_model_policy(const spartan_model *m) {
    return m ? m->policy : NULL;
}

size_t spartan_model_param_count(const spartan_model *m) {
    return m ? m->nparams : 0;
}

spartan_status spartan_model_param(const spartan_model *m, size_t i, spartan_param *out) {
    if (!m || !out) return sp_invalid(m ? m->ctx : NULL, "spartan_model_param: NULL model or out");
    if (i >= m->nparams)
        return sp_invalid(m->ctx, "spartan_model_param: no parameter %zu (the model has %zu)", i,
                          m->nparams);
    *out = m->params[i];
    return SPARTAN_OK;
}

spartan_status spartan_model_set_grad_hooks(spartan_model *m, const spartan_grad_hooks *hooks) {
    if (!m) return sp_invalid(NULL, "spartan_model_set_grad_hooks: NULL model");
    if (hooks && hooks->ready && !hooks->finish)
        return sp_invalid(m->ctx, "spartan_model_set_grad_hooks: ready without finish");
    m->hooks = hooks && hooks->ready ? *hooks : (spartan_grad_hooks){0};
    return SPARTAN_OK;
}

void spartan_model_set_shard(spartan_model *m, size_t first_image) {
    if (m) m->image0 = first_image;
}
