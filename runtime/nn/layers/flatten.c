/* Flatten: h x w x c images become 1 x 1 x (h * w * c); NHWC is already that order, so the
 * layer passes its input on (and the gradient back) without a copy or a buffer of its own. */
#include "nn/layers/layer.h"

static spartan_status flatten_shape(spartan_context *ctx, sp_layer *L) {
    (void)ctx;
    L->out_h = L->out_w = 1;
    L->out_c = L->in_h * L->in_w * L->in_c;
    return SPARTAN_OK;
}

static spartan_status flatten_prepare(sp_layer *L, spartan_context *ctx,
                                      const spartan_train_config *cfg) {
    (void)ctx;
    L->batch = cfg->batch;
    return SPARTAN_OK;
}

static spartan_status flatten_forward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                      const spartan_tensor **y) {
    (void)L, (void)s;
    *y = x;
    return SPARTAN_OK;
}

static spartan_status flatten_backward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                       const spartan_tensor *dy, const spartan_tensor **dx) {
    (void)L, (void)s, (void)x;
    *dx = dy;
    return SPARTAN_OK;
}

const sp_layer_ops sp_layer_flatten = {
    .name = "flatten",
    .keys = "",
    .keeps_mask = 1,
    .shape = flatten_shape,
    .prepare = flatten_prepare,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .release = sp_layer_release_output,
};
