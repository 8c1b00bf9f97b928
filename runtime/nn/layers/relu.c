/* ReLU with the fused sparsity monitor: at every training step the ReLU counts its output's
 * zeros per tile for free (spartan_relu_monitor); the count is read when the step samples. After
 * a GEMM layer it also adds that layer's bias in the same pass (spartan_bias_relu_monitor). Before
 * a max-pool its backward is the pool's (spartan_maxpool_relu_backward): it passes dy on; and so
 * is its forward, on the steps that sample no monitor (spartan_relu_maxpool_forward): it passes
 * its input on, and the pool adds the bias and takes max(z, 0) as it reads. Before a convolution
 * its backward is in the convolution's backward-by-input store
 * (spartan_conv2d_backward_input_relu): it passes dy on. */
#include "nn/layers/layer.h"

static spartan_status same_shape(spartan_context *ctx, sp_layer *L) {
    (void)ctx;
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    L->out_c = L->in_c;
    return SPARTAN_OK;
}

static spartan_status relu_prepare(sp_layer *L, spartan_context *ctx,
                                   const spartan_train_config *cfg) {
    return sp_layer_prepare_output(L, ctx, cfg->batch, 1);
}

/* After an fc layer whose outputs a row dropout thins (gemm.c, sp_gemm_forward_rows): in a
 * training step X holds the kept neurons alone (count x nc), the bias is the kept one, and the
 * monitor counts the kept outputs (its descriptor takes their width). */
static int rows(const sp_layer *L, const sp_step *s) {
    return s->train && L->bias_from && L->bias_from->drop_out;
}

static spartan_status relu_rows_forward(sp_layer *L, const sp_step *s, const spartan_tensor *x) {
    const sp_layer *P = L->bias_from;
    spartan_tensor xv, yv, bc;
    spartan_status st = sp_view2(&xv, x, s->count, P->nc);
    if (st == SPARTAN_OK) st = sp_view2(&yv, L->y, s->count, P->nc);
    if (st == SPARTAN_OK) st = sp_view2(&bc, P->bc, 1, P->nc);
    if (st == SPARTAN_OK) st = sp_sparse_reshape(L->sy, s->count, P->nc);
    if (st == SPARTAN_OK) st = spartan_bias_relu_monitor(s->ctx, &xv, &bc, &yv, L->sy);
    if (st == SPARTAN_OK && s->sampling) st = sp_sample_take(&L->ys);
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_FWD) : st;
}

static spartan_status relu_forward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                   const spartan_tensor **y) {
    if (rows(L, s)) {
        *y = L->y;
        return relu_rows_forward(L, s, x);
    }
    /* the max-pool after it, or the convolution before it, applies the ReLU */
    if ((L->forward_by_next || L->forward_by_prev) && sp_relu_fused(s)) {
        *y = x;
        return sp_layer_done(L, s, SPARTAN_PASS_FWD);
    }
    spartan_tensor xv, yv;
    spartan_status st = sp_view4(&xv, x, s->count, L->in_h, L->in_w, L->in_c);
    if (st == SPARTAN_OK) st = sp_view4(&yv, L->y, s->count, L->out_h, L->out_w, L->out_c);
    if (st != SPARTAN_OK) return st;
    *y = L->y;
    /* the previous GEMM's bias is added here (gemm.c leaves it out): in the monitor's pass in
     * training; at evaluation (a batch of any size, no monitor) into X first */
    const spartan_tensor *b = L->bias_from ? L->bias_from->g.b : NULL;
    if (s->train)
        st = b ? spartan_bias_relu_monitor(s->ctx, &xv, b, &yv, L->sy)
               : spartan_relu_monitor(s->ctx, &xv, &yv, L->sy);
    else if (b && (st = spartan_bias_add(s->ctx, &xv, b)) != SPARTAN_OK)
        return st;
    else
        st = spartan_relu(s->ctx, &xv, &yv);
    if (st == SPARTAN_OK && s->train && s->sampling) st = sp_sample_take(&L->ys);
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_FWD) : st;
}

static spartan_status relu_backward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                    const spartan_tensor *dy, const spartan_tensor **dx) {
    (void)x;
    if (L->backward_by_next) { /* the max-pool or conv after it masks the gradient */
        *dx = L->need_dx ? dy : NULL;
        return sp_layer_done(L, s, SPARTAN_PASS_BWD_INPUT);
    }
    *dx = L->need_dx ? L->dx : NULL;
    if (!L->need_dx) return SPARTAN_OK;
    spartan_tensor dyv, yv, dxv; /* dy in this layer's output shape (a flatten may have passed
                                    it on), or the kept neurons' */
    spartan_status st;
    if (rows(L, s)) {
        const size_t nc = L->bias_from->nc;
        st = sp_view2(&dyv, dy, L->batch, nc);
        if (st == SPARTAN_OK) st = sp_view2(&yv, L->y, L->batch, nc);
        if (st == SPARTAN_OK) st = sp_view2(&dxv, L->dx, L->batch, nc);
        if (st == SPARTAN_OK) st = spartan_relu_backward(s->ctx, &yv, &dyv, &dxv);
        return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_BWD_INPUT) : st;
    }
    st = sp_view4(&dyv, dy, L->batch, L->out_h, L->out_w, L->out_c);
    if (st == SPARTAN_OK) st = spartan_relu_backward(s->ctx, L->y, &dyv, L->dx);
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_BWD_INPUT) : st;
}

const sp_layer_ops sp_layer_relu = {
    .name = "relu",
    .keys = "",
    .shape = same_shape,
    .prepare = relu_prepare,
    .forward = relu_forward,
    .backward = relu_backward,
    .collect = sp_layer_collect_output,
    .release = sp_layer_release_output,
};
