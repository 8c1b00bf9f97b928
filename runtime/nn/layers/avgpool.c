/* Average pooling over k x k windows with stride s and zero padding p; the padding counts in
 * the average (every window divides by k * k, as PyTorch's AvgPool2d by default). A window of a
 * ReLU's output averages to zero only when all its inputs are zero, so a ReLU's mask survives
 * it: the layers after it may still take the sparse paths that rely on that mask. */
#include "nn/layers/layer.h"

static void avgpool_defaults(spartan_layer_spec *spec) {
    if (!spec->stride) spec->stride = spec->kernel;
}

static spartan_status avgpool_shape(spartan_context *ctx, sp_layer *L) {
    const spartan_layer_spec *p = &L->spec;
    L->out_h = sp_window_out(L->in_h, p->kernel, p->stride, p->pad);
    L->out_w = sp_window_out(L->in_w, p->kernel, p->stride, p->pad);
    L->out_c = L->in_c;
    if (!p->kernel || !L->out_h || !L->out_w || p->pad >= p->kernel)
        return sp_invalid(ctx,
                          "%zux%zu window, stride %zu, pad %zu do not fit a %zux%zu input (the "
                          "padding must be smaller than the window)",
                          p->kernel, p->kernel, p->stride, p->pad, L->in_h, L->in_w);
    return SPARTAN_OK;
}

static spartan_status avgpool_prepare(sp_layer *L, spartan_context *ctx,
                                      const spartan_train_config *cfg) {
    return sp_layer_prepare_output(L, ctx, cfg->batch, 1);
}

static spartan_status avgpool_forward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                      const spartan_tensor **y) {
    spartan_window win = sp_layer_window(L, s->count, L->spec.pad);
    spartan_tensor xv, yv;
    spartan_status st = sp_view4(&xv, x, s->count, L->in_h, L->in_w, L->in_c);
    if (st == SPARTAN_OK) st = sp_view4(&yv, L->y, s->count, L->out_h, L->out_w, L->out_c);
    if (st != SPARTAN_OK) return st;
    *y = L->y;
    st = spartan_avgpool_forward(s->ctx, &win, &xv, &yv);
    if (st == SPARTAN_OK) st = sp_layer_sample_output(L, s, &yv);
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_FWD) : st;
}

static spartan_status avgpool_backward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                       const spartan_tensor *dy, const spartan_tensor **dx) {
    (void)x;
    *dx = L->need_dx ? L->dx : NULL;
    if (!L->need_dx) return SPARTAN_OK;
    spartan_window win = sp_layer_window(L, L->batch, L->spec.pad);
    spartan_tensor dyv;
    spartan_status st = sp_view4(&dyv, dy, L->batch, L->out_h, L->out_w, L->out_c);
    if (st == SPARTAN_OK) st = spartan_avgpool_backward(s->ctx, &win, &dyv, L->dx);
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_BWD_INPUT) : st;
}

const sp_layer_ops sp_layer_avgpool = {
    .name = "avgpool",
    .keys = "ksp",
    .keeps_mask = 1,
    .defaults = avgpool_defaults,
    .shape = avgpool_shape,
    .prepare = avgpool_prepare,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .collect = sp_layer_collect_output,
    .release = sp_layer_release_output,
};
