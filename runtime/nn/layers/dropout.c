/* Dropout: each element is zeroed with probability rate and the rest scaled by 1 / (1 - rate),
 * in training steps only. The mask is a counter-based hash of (seed, step, layer, element),
 * never stored: the backward pass draws the same mask again. */
#include "nn/layers/layer.h"

static void dropout_defaults(spartan_layer_spec *spec) {
    if (spec->rate < 0.0f) spec->rate = 0.5f;
}

static spartan_status dropout_shape(spartan_context *ctx, sp_layer *L) {
    const float p = L->spec.rate;
    if (!(p >= 0.0f && p < 1.0f)) return sp_invalid(ctx, "p = %g is not in [0, 1)", (double)p);
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    L->out_c = L->in_c;
    return SPARTAN_OK;
}

static spartan_status dropout_prepare(sp_layer *L, spartan_context *ctx,
                                      const spartan_train_config *cfg) {
    return sp_layer_prepare_output(L, ctx, cfg->batch, 1);
}

static unsigned long long counter(const sp_layer *L, const sp_step *s) {
    return ((unsigned long long)s->step << 8) | (L->index & 0xff);
}

static spartan_status dropout_forward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                      const spartan_tensor **y) {
    if (!s->train) { /* evaluation: the identity */
        *y = x;
        return SPARTAN_OK;
    }
    spartan_tensor xv, yv;
    spartan_status st = sp_view4(&xv, x, s->count, L->in_h, L->in_w, L->in_c);
    if (st == SPARTAN_OK) st = sp_view4(&yv, L->y, s->count, L->out_h, L->out_w, L->out_c);
    if (st != SPARTAN_OK) return st;
    *y = L->y;
    st = spartan_dropout_forward(s->ctx, &xv, &yv, L->spec.rate, s->seed, counter(L, s));
    if (st == SPARTAN_OK) st = sp_layer_sample_output(L, s, &yv);
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_FWD) : st;
}

static spartan_status dropout_backward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                       const spartan_tensor *dy, const spartan_tensor **dx) {
    (void)x;
    *dx = L->need_dx ? L->dx : NULL;
    if (!L->need_dx) return SPARTAN_OK;
    spartan_tensor dyv;
    spartan_status st = sp_view4(&dyv, dy, L->batch, L->out_h, L->out_w, L->out_c);
    if (st == SPARTAN_OK)
        st = spartan_dropout_backward(s->ctx, &dyv, L->dx, L->spec.rate, s->seed, counter(L, s));
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_BWD_INPUT) : st;
}

const sp_layer_ops sp_layer_dropout = {
    .name = "dropout",
    .keys = "p",
    .p_is_rate = 1,
    .keeps_mask = 1,
    .defaults = dropout_defaults,
    .shape = dropout_shape,
    .prepare = dropout_prepare,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .collect = sp_layer_collect_output,
    .release = sp_layer_release_output,
};
