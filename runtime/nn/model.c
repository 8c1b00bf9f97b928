/* Sequential models: building, presets, preparation (parameters, buffers, the policy's
 * registration) and the per-layer statistics (include/spartan/nn.h). The step is in step.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "nn/nn_internal.h"

spartan_train_config spartan_train_config_default(void) {
    spartan_train_config c = {64, 0.05f, 0.9f, 5e-4f, 1, SPARTAN_POLICY_ADAPTIVE, 0};
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
    for (size_t i = 0; i < m->nlayers; i++) {
        sp_layer *L = &m->layers[i];
        sp_layer_free(L);
        L->w = L->b = L->dw = L->db = L->vw = L->vb = L->cols = L->dcols = L->wt = NULL;
        L->y = L->dx = L->arg = NULL;
        L->sx = L->sdy = L->sy = NULL;
    }
    spartan_tensor_destroy(m->input);
    spartan_tensor_destroy(m->labels);
    spartan_tensor_destroy(m->dlogits);
    spartan_tensor_destroy(m->stats);
    m->input = m->labels = m->dlogits = m->stats = NULL;
    free(m->stats_host);
    m->stats_host = NULL;
    spartan_policy_destroy(m->policy);
    m->policy = NULL;
    sp_model_release_marks(m);
    free(m->marks);
    m->marks = NULL;
    m->mark_cap = 0;
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

static const char *const kind_names[] = {"fc", "conv", "relu", "maxpool", "dropout", "flatten"};

static spartan_status append(spartan_model *m, sp_layer *proto) {
    if (m->nlayers == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        sp_layer *l = realloc(m->layers, cap * sizeof *l);
        if (!l) return sp_err_set(&m->ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "layers");
        m->layers = l;
        m->cap = cap;
    }
    size_t same = 1;
    for (size_t i = 0; i < m->nlayers; i++) same += m->layers[i].kind == proto->kind;
    proto->index = m->nlayers;
    snprintf(proto->name, sizeof proto->name, "%s%zu", kind_names[proto->kind], same);
    snprintf(proto->wname, sizeof proto->wname, "%s.weight", proto->name);
    snprintf(proto->bname, sizeof proto->bname, "%s.bias", proto->name);
    m->layers[m->nlayers++] = *proto;
    return SPARTAN_OK;
}

static spartan_status new_layer(spartan_model *m, sp_kind kind, sp_layer *L, const char *fn) {
    if (!m) return sp_invalid(NULL, "%s: NULL model", fn);
    if (m->prepared)
        return sp_invalid(m->ctx,
                          "%s: the model is already prepared: layers are added before "
                          "spartan_model_prepare (build a new model for other layers)",
                          fn);
    memset(L, 0, sizeof *L);
    L->kind = kind;
    tail_shape(m, &L->in_h, &L->in_w, &L->in_c);
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    L->out_c = L->in_c;
    return SPARTAN_OK;
}

spartan_status spartan_model_add_fc(spartan_model *m, size_t out_features) {
    sp_layer L;
    spartan_status st = new_layer(m, SP_FC, &L, "spartan_model_add_fc");
    if (st != SPARTAN_OK) return st;
    if (!out_features) return sp_invalid(m->ctx, "spartan_model_add_fc: 0 outputs");
    L.out_h = L.out_w = 1;
    L.out_c = out_features;
    return append(m, &L);
}

/* Output size of a window along one axis, 0 when it does not fit. */
static size_t window_out(size_t in, size_t k, size_t stride, size_t pad) {
    if (!stride || in + 2 * pad < k) return 0;
    return (in + 2 * pad - k) / stride + 1;
}

spartan_status spartan_model_add_conv(spartan_model *m, size_t out_channels, size_t kernel,
                                      size_t stride, size_t pad) {
    sp_layer L;
    spartan_status st = new_layer(m, SP_CONV, &L, "spartan_model_add_conv");
    if (st != SPARTAN_OK) return st;
    L.kernel = kernel;
    L.stride = stride;
    L.pad = pad;
    L.out_h = window_out(L.in_h, kernel, stride, pad);
    L.out_w = window_out(L.in_w, kernel, stride, pad);
    L.out_c = out_channels;
    if (!out_channels || !kernel || !L.out_h || !L.out_w)
        return sp_invalid(m->ctx,
                          "spartan_model_add_conv: %zu channels, %zux%zu kernel, stride %zu, pad "
                          "%zu do not fit a %zux%zux%zu input",
                          out_channels, kernel, kernel, stride, pad, L.in_h, L.in_w, L.in_c);
    return append(m, &L);
}

spartan_status spartan_model_add_relu(spartan_model *m) {
    sp_layer L;
    spartan_status st = new_layer(m, SP_RELU, &L, "spartan_model_add_relu");
    return st == SPARTAN_OK ? append(m, &L) : st;
}

spartan_status spartan_model_add_maxpool(spartan_model *m, size_t kernel, size_t stride) {
    sp_layer L;
    spartan_status st = new_layer(m, SP_MAXPOOL, &L, "spartan_model_add_maxpool");
    if (st != SPARTAN_OK) return st;
    L.kernel = kernel;
    L.stride = stride;
    L.out_h = window_out(L.in_h, kernel, stride, 0);
    L.out_w = window_out(L.in_w, kernel, stride, 0);
    if (!kernel || !L.out_h || !L.out_w)
        return sp_invalid(m->ctx,
                          "spartan_model_add_maxpool: %zux%zu window, stride %zu do not "
                          "fit a %zux%zu input",
                          kernel, kernel, stride, L.in_h, L.in_w);
    return append(m, &L);
}

spartan_status spartan_model_add_dropout(spartan_model *m, float p) {
    sp_layer L;
    spartan_status st = new_layer(m, SP_DROPOUT, &L, "spartan_model_add_dropout");
    if (st != SPARTAN_OK) return st;
    if (!(p >= 0.0f && p < 1.0f))
        return sp_invalid(m->ctx, "spartan_model_add_dropout: p = %g is not in [0, 1)", (double)p);
    L.p = p;
    return append(m, &L);
}

spartan_status spartan_model_add_flatten(spartan_model *m) {
    sp_layer L;
    spartan_status st = new_layer(m, SP_FLATTEN, &L, "spartan_model_add_flatten");
    if (st != SPARTAN_OK) return st;
    L.out_h = L.out_w = 1;
    L.out_c = L.in_h * L.in_w * L.in_c;
    return append(m, &L);
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
extern const unsigned char sp_model_mlp[], sp_model_lenet5[], sp_model_vgg_small[];
static const char *const preset_names[] = {"mlp", "lenet5", "vgg-small", NULL};
static const unsigned char *const preset_texts[] = {sp_model_mlp, sp_model_lenet5,
                                                    sp_model_vgg_small};

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
                      "lenet5, vgg-small)",
                      name);
}

/* ---- Preparation ------------------------------------------------------------------------------
 */

/* He/Kaiming normal weights (std sqrt(2 / fan_in)), zero biases and momenta, from the seed and
 * the layer's index (so adding a layer does not change the others' draws). */
static spartan_status init_params(spartan_model *m, sp_layer *L) {
    const size_t count = L->k * L->n;
    float *host = malloc((count ? count : 1) * sizeof *host);
    if (!host) return sp_err_set(&m->ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "weights");
    sp_rng r = {m->cfg.seed * 0x9e3779b97f4a7c15ull + L->index + 1};
    const double std = sqrt(2.0 / (double)L->k);
    for (size_t i = 0; i < count; i++) host[i] = (float)(std * sp_rng_normal(&r));
    spartan_status st = spartan_tensor_write(L->w, host, count);
    free(host);
    if (st == SPARTAN_OK) st = spartan_tensor_fill(L->b, 0.0f);
    if (st == SPARTAN_OK) st = spartan_tensor_fill(L->vw, 0.0f);
    if (st == SPARTAN_OK) st = spartan_tensor_fill(L->vb, 0.0f);
    return st;
}

static void clear_stats(sp_layer *L, int all) {
    for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
        L->sec[p] = 0.0;
        L->calls[p] = L->sparse_calls[p] = 0;
    }
    L->xz.sum = L->gz.sum = 0.0;
    L->xz.n = L->gz.n = 0;
    if (all) {
        L->xz.first = L->gz.first = L->xz.last = L->gz.last = L->zeros_prev = -1.0;
        L->samples = 0;
        for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
            L->path[p] = SPARTAN_PATH_DENSE;
            L->reason[p] = "not run yet";
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
    for (int p = 0; p < SPARTAN_PASS_COUNT; p++) L->form[p] = SP_SPARSE_NONE;
    if (!sp_layer_is_gemm(L)) return;
    const int relu_next = i + 1 < m->nlayers && m->layers[i + 1].kind == SP_RELU;
    L->form[SPARTAN_PASS_FWD] = SP_SPARSE_ON_X;
    L->form[SPARTAN_PASS_BWD_WEIGHT] = relu_next ? SP_SPARSE_ON_DY : SP_SPARSE_ON_X;
    if (!L->need_dx) return;
    if (relu_next && (L->kind == SP_CONV || !relu_feeds))
        L->form[SPARTAN_PASS_BWD_INPUT] = SP_SPARSE_ON_DY;
    else if (relu_feeds)
        L->form[SPARTAN_PASS_BWD_INPUT] = SP_SPARSE_ON_X;
}

/* Registers the layer's passes with the policy, with their shapes and sparse forms. */
static spartan_status register_passes(spartan_model *m, const sp_layer *L) {
    spartan_status st = SPARTAN_OK;
    for (int p = 0; p < SPARTAN_PASS_COUNT && st == SPARTAN_OK; p++) {
        if (p == SPARTAN_PASS_BWD_INPUT && !L->need_dx) continue;
        size_t gm, gn, gk;
        sp_layer_pass_shape(L, (spartan_pass)p, L->m, &gm, &gn, &gk);
        st = sp_policy_register(m->policy, L->index, (spartan_pass)p, gm, gn, gk, L->form[p], NULL);
    }
    return st;
}

spartan_status spartan_model_prepare(spartan_model *m, const spartan_train_config *cfg) {
    if (!m || !cfg) return sp_invalid(m ? m->ctx : NULL, "spartan_model_prepare: NULL argument");
    spartan_context *ctx = m->ctx;
    if (!cfg->batch) return sp_invalid(ctx, "spartan_model_prepare: batch 0");
    if ((unsigned)cfg->policy > SPARTAN_POLICY_ADAPTIVE)
        return sp_invalid(ctx, "spartan_model_prepare: cfg->policy %d is not a policy mode",
                          (int)cfg->policy);
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
    spartan_status st = spartan_policy_create(ctx, cfg->policy, &m->policy);
    int trainable_before = 0, relu_feeds = 0;
    size_t nparams = 0;
    for (size_t i = 0; i < m->nlayers && st == SPARTAN_OK; i++) {
        sp_layer *L = &m->layers[i];
        L->need_dx = trainable_before;
        L->input_masked = relu_feeds;
        sparse_forms(m, i, relu_feeds);
        if (L->kind == SP_RELU)
            relu_feeds = 1;
        else if (L->kind != SP_FLATTEN && L->kind != SP_MAXPOOL && L->kind != SP_DROPOUT)
            relu_feeds = 0;
        if (sp_layer_is_gemm(L)) {
            trainable_before = 1;
            nparams += 2;
        }
        clear_stats(L, 1);
        st = sp_layer_alloc(m, L);
        if (st == SPARTAN_OK && sp_layer_is_gemm(L)) st = init_params(m, L);
        if (st == SPARTAN_OK && sp_layer_is_gemm(L)) st = register_passes(m, L);
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
        if (!sp_layer_is_gemm(L)) continue;
        m->params[m->nparams++] = (spartan_param){L->wname, L->w, L->dw, L->vw};
        m->params[m->nparams++] = (spartan_param){L->bname, L->b, L->db, L->vb};
    }
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

spartan_status spartan_model_layer_info(const spartan_model *m, size_t i, spartan_layer_info *out) {
    if (!m || !out)
        return sp_invalid(m ? m->ctx : NULL, "spartan_model_layer_info: NULL model or out");
    if (i >= m->nlayers)
        return sp_invalid(m->ctx, "spartan_model_layer_info: no layer %zu (the model has %zu)", i,
                          m->nlayers);
    const sp_layer *L = &m->layers[i];
    memset(out, 0, sizeof *out);
    out->name = L->name;
    out->kind = kind_names[L->kind];
    out->gemm = sp_layer_is_gemm(L);
    out->out_h = L->out_h;
    out->out_w = L->out_w;
    out->out_c = L->out_c;
    if (out->gemm) {
        out->m = L->m;
        out->n = L->n;
        out->k = L->k;
        out->params = L->k * L->n + L->n;
    }
    for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
        out->seconds[p] = L->sec[p];
        out->calls[p] = L->calls[p];
        out->sparse_calls[p] = L->sparse_calls[p];
        out->path[p] = L->path[p];
        out->reason[p] = L->reason[p];
    }
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
