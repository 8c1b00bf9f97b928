/* Max-pooling over k x k windows (no padding); the arg-max of each window is kept for the
 * backward pass. After a ReLU, the backward does the ReLU's too, in the same pass, and so does
 * the forward (and the bias the ReLU adds) but on the steps that sample the ReLU's monitor. */
#include "nn/layers/layer.h"

static void maxpool_defaults(spartan_layer_spec *spec) {
    if (!spec->stride) spec->stride = spec->kernel;
}

static spartan_status maxpool_shape(spartan_context *ctx, sp_layer *L) {
    const spartan_layer_spec *p = &L->spec;
    L->out_h = sp_window_out(L->in_h, p->kernel, p->stride, 0);
    L->out_w = sp_window_out(L->in_w, p->kernel, p->stride, 0);
    L->out_c = L->in_c;
    if (!p->kernel || !L->out_h || !L->out_w)
        return sp_invalid(ctx, "%zux%zu window, stride %zu do not fit a %zux%zu input", p->kernel,
                          p->kernel, p->stride, L->in_h, L->in_w);
    return SPARTAN_OK;
}

static spartan_status maxpool_prepare(sp_layer *L, spartan_context *ctx,
                                      const spartan_train_config *cfg) {
    spartan_status st = sp_layer_prepare_output(L, ctx, cfg->batch, 1);
    return st == SPARTAN_OK ? sp_tensor4(ctx, cfg->batch, L->out_h, L->out_w, L->out_c, &L->arg)
                            : st;
}

static spartan_status maxpool_forward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                      const spartan_tensor **y) {
    spartan_window win = sp_layer_window(L, s->count, 0);
    spartan_tensor xv, yv, av;
    spartan_status st = sp_view4(&xv, x, s->count, L->in_h, L->in_w, L->in_c);
    if (st == SPARTAN_OK) st = sp_view4(&yv, L->y, s->count, L->out_h, L->out_w, L->out_c);
    if (st == SPARTAN_OK) st = sp_view4(&av, L->arg, s->count, L->out_h, L->out_w, L->out_c);
    if (st != SPARTAN_OK) return st;
    *y = L->y;
    const sp_layer *R = L->relu_before;
    if (R && sp_relu_fused(s)) /* x is the ReLU's input: the pool does its work */
        st = spartan_relu_maxpool_forward(s->ctx, &win, &xv,
                                          R->bias_from ? R->bias_from->g.b : NULL, &yv, &av);
    else
        st = spartan_maxpool_forward(s->ctx, &win, &xv, &yv, &av);
    if (st == SPARTAN_OK) st = sp_layer_sample_output(L, s, &yv);
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_FWD) : st;
}

static spartan_status maxpool_backward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                       const spartan_tensor *dy, const spartan_tensor **dx) {
    (void)x;
    *dx = L->need_dx ? L->dx : NULL;
    if (!L->need_dx) return SPARTAN_OK;
    spartan_window win = sp_layer_window(L, L->batch, 0);
    spartan_tensor dyv;
    spartan_status st = sp_view4(&dyv, dy, L->batch, L->out_h, L->out_w, L->out_c);
    spartan_tensor yv; /* the ReLU before the pool: a window passes dy on where its max is > 0 */
    if (st == SPARTAN_OK && L->relu_before)
        st = sp_view4(&yv, L->y, L->batch, L->out_h, L->out_w, L->out_c);
    if (st == SPARTAN_OK)
        st = L->relu_before ? spartan_maxpool_relu_backward(s->ctx, &win, &dyv, L->arg, &yv, L->dx)
                            : spartan_maxpool_backward(s->ctx, &win, &dyv, L->arg, L->dx);
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_BWD_INPUT) : st;
}

const sp_layer_ops sp_layer_maxpool = {
    .name = "maxpool",
    .keys = "ks",
    .keeps_mask = 1,
    .defaults = maxpool_defaults,
    .shape = maxpool_shape,
    .prepare = maxpool_prepare,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .collect = sp_layer_collect_output,
    .release = sp_layer_release_output,
};
