/* What the layer kinds share (layer.h): views, the monitors' deferred samples, the output buffer
 * and timing mark of the kinds without a GEMM, and the table of every kind. */
#include <stdlib.h>

#include "nn/layers/layer.h"

const sp_layer_ops *const sp_layer_kinds[SPARTAN_LAYER_KIND_COUNT] = {
#define SP_X_(ENUM, name) [SPARTAN_LAYER_##ENUM] = &sp_layer_##name,
    SP_LAYER_KINDS(SP_X_)
#undef SP_X_
};

/* One list entry per public kind, no more: the list and the enum cannot drift apart. */
#define SP_X_(ENUM, name) +1
static_assert(0 SP_LAYER_KINDS(SP_X_) == SPARTAN_LAYER_KIND_COUNT,
              "SP_LAYER_KINDS and spartan_layer_kind disagree");
#undef SP_X_

spartan_status sp_view4(spartan_tensor *v, const spartan_tensor *base, size_t count, size_t h,
                        size_t w, size_t c) {
    size_t dims[4] = {count, h, w, c};
    return sp_tensor_view(v, base, 4, dims);
}

spartan_status sp_view2(spartan_tensor *v, const spartan_tensor *base, size_t rows, size_t cols) {
    size_t dims[2] = {rows, cols};
    return sp_tensor_view(v, base, 2, dims);
}

spartan_status sp_tensor4(spartan_context *ctx, size_t b, size_t h, size_t w, size_t c,
                          spartan_tensor **out) {
    size_t dims[4] = {b, h, w, c};
    return spartan_tensor_create(ctx, 4, dims, out);
}

size_t sp_window_out(size_t in, size_t k, size_t stride, size_t pad) {
    if (!stride || in + 2 * pad < k) return 0;
    return (in + 2 * pad - k) / stride + 1;
}

/* ---- Deferred samples ------------------------------------------------------------------------ */

spartan_status sp_sample_init(spartan_context *ctx, sp_sample *smp, spartan_sparse *s,
                              sp_zeros *into) {
    size_t n = sp_sparse_partial_count(s);
    *smp = (sp_sample){s, malloc((n ? n : 1) * sizeof(unsigned)), into, 0};
    if (!smp->host) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "samples");
    return SPARTAN_OK;
}

void sp_sample_free(sp_sample *smp) {
    free(smp->host);
    *smp = (sp_sample){0};
}

spartan_status sp_sample_take(sp_sample *smp) {
    spartan_status st = sp_sparse_nnz_enqueue(smp->s, smp->host);
    smp->pending = st == SPARTAN_OK;
    return st;
}

void sp_zeros_record(sp_zeros *z, double v) {
    if (z->first < 0) z->first = v;
    z->last = v;
    z->sum += v;
    z->n++;
}

int sp_sample_collect(sp_sample *smp) {
    if (!smp->pending) return 0;
    smp->pending = 0;
    size_t total = spartan_sparse_rows(smp->s) * spartan_sparse_cols(smp->s);
    size_t nnz = sp_sparse_nnz_sum(smp->s, smp->host);
    sp_zeros_record(smp->into, total ? 1.0 - (double)nnz / (double)total : 0.0);
    return 1;
}

/* ---- Kinds without a GEMM -------------------------------------------------------------------- */

spartan_status sp_layer_prepare_output(sp_layer *L, spartan_context *ctx, size_t batch,
                                       int monitored) {
    L->batch = batch;
    spartan_status st = sp_tensor4(ctx, batch, L->out_h, L->out_w, L->out_c, &L->y);
    if (st == SPARTAN_OK && L->need_dx && !L->backward_by_next)
        st = sp_tensor4(ctx, batch, L->in_h, L->in_w, L->in_c, &L->dx);
    if (st == SPARTAN_OK && monitored)
        st = spartan_sparse_create(ctx, batch * L->out_h * L->out_w, L->out_c, &L->sy);
    if (st == SPARTAN_OK && monitored) st = sp_sample_init(ctx, &L->ys, L->sy, &L->xz);
    return st;
}

void sp_layer_release_output(sp_layer *L) {
    spartan_tensor_destroy(L->y);
    spartan_tensor_destroy(L->dx);
    spartan_tensor_destroy(L->arg);
    spartan_sparse_destroy(L->sy);
    sp_sample_free(&L->ys);
    L->y = L->dx = L->arg = NULL;
    L->sy = NULL;
}

spartan_status sp_layer_done(sp_layer *L, const sp_step *s, spartan_pass pass) {
    if (!s->recording) return SPARTAN_OK;
    L->calls[pass]++;
    return sp_marks_add(s->marks, &L->sec[pass], NULL);
}

spartan_status sp_layer_sample_output(sp_layer *L, const sp_step *s, const spartan_tensor *y) {
    if (!(s->train && s->sampling)) return SPARTAN_OK;
    spartan_status st = spartan_monitor(s->ctx, y, L->sy);
    return st == SPARTAN_OK ? sp_sample_take(&L->ys) : st;
}

void sp_layer_collect_output(sp_layer *L) {
    if (sp_sample_collect(&L->ys)) {
        L->samples++;
        L->sampled = 1;
    }
}

spartan_window sp_layer_window(const sp_layer *L, size_t count, size_t pad) {
    return (spartan_window){count,          L->in_h,        L->in_w,        L->in_c,
                            L->spec.kernel, L->spec.kernel, L->spec.stride, pad};
}

spartan_status sp_layer_sgd(const sp_layer *L, const sp_step *s, const spartan_train_config *cfg) {
    spartan_param ps[SP_LAYER_PARAMS];
    const size_t np = L->ops->params ? L->ops->params(L, ps) : 0;
    spartan_status st = SPARTAN_OK;
    for (size_t k = 0; k < np && st == SPARTAN_OK; k++)
        st = spartan_sgd_step(s->ctx, ps[k].value, ps[k].grad, ps[k].momentum, cfg->lr,
                              cfg->momentum, cfg->weight_decay);
    return st;
}
