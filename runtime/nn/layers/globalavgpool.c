/* Global average pooling: each channel's mean over the whole image, h x w x c -> 1 x 1 x c (the
 * average pooling op with one window the size of the image). */
#include "nn/layers/layer.h"

static spartan_status globalavgpool_shape(spartan_context *ctx, sp_layer *L) {
    (void)ctx;
    L->out_h = L->out_w = 1;
    L->out_c = L->in_c;
    return SPARTAN_OK;
}

static spartan_status globalavgpool_prepare(sp_layer *L, spartan_context *ctx,
                                            const spartan_train_config *cfg) {
    return sp_layer_prepare_output(L, ctx, cfg->batch, 1);
}

static spartan_window whole_image(const sp_layer *L, size_t count) {
    return (spartan_window){count, L->in_h, L->in_w, L->in_c, L->in_h, L->in_w, 1, 0};
}

static spartan_status globalavgpool_forward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                            const spartan_tensor **y) {
    spartan_window win = whole_image(L, s->count);
    spartan_tensor xv, yv;
    spartan_status st = sp_view4(&xv, x, s->count, L->in_h, L->in_w, L->in_c);
    if (st == SPARTAN_OK) st = sp_view4(&yv, L->y, s->count, 1, 1, L->out_c);
    if (st != SPARTAN_OK) return st;
    *y = L->y;
    st = spartan_avgpool_forward(s->ctx, &win, &xv, &yv);
    if (st == SPARTAN_OK) st = sp_layer_sample_output(L, s, &yv);
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_FWD) : st;
}

static spartan_status globalavgpool_backward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                             const spartan_tensor *dy, const spartan_tensor **dx) {
    (void)x;
    *dx = L->need_dx ? L->dx : NULL;
    if (!L->need_dx) return SPARTAN_OK;
    spartan_window win = whole_image(L, L->batch);
    spartan_tensor dyv;
    spartan_status st = sp_view4(&dyv, dy, L->batch, 1, 1, L->out_c);
    if (st == SPARTAN_OK) st = spartan_avgpool_backward(s->ctx, &win, &dyv, L->dx);
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_BWD_INPUT) : st;
}

const sp_layer_ops sp_layer_globalavgpool = {
    .name = "globalavgpool",
    .keys = "",
    .keeps_mask = 1,
    .shape = globalavgpool_shape,
    .prepare = globalavgpool_prepare,
    .forward = globalavgpool_forward,
    .backward = globalavgpool_backward,
    .collect = sp_layer_collect_output,
    .release = sp_layer_release_output,
};
