/* Convolution: im2col of the input, then the GEMM layer's passes on that matrix (gemm.c); the
 * input gradient is col2im of the GEMM's. Square kernels, the same stride and zero padding
 * along both axes. */
#include "nn/layers/layer.h"

static void conv_defaults(spartan_layer_spec *spec) {
    if (!spec->stride) spec->stride = 1;
}

static spartan_status conv_shape(spartan_context *ctx, sp_layer *L) {
    const spartan_layer_spec *p = &L->spec;
    L->out_h = sp_window_out(L->in_h, p->kernel, p->stride, p->pad);
    L->out_w = sp_window_out(L->in_w, p->kernel, p->stride, p->pad);
    L->out_c = p->outputs;
    if (!p->outputs || !p->kernel || !L->out_h || !L->out_w)
        return sp_invalid(ctx,
                          "%zu channels, %zux%zu kernel, stride %zu, pad %zu do not fit a "
                          "%zux%zux%zu input",
                          p->outputs, p->kernel, p->kernel, p->stride, p->pad, L->in_h, L->in_w,
                          L->in_c);
    return SPARTAN_OK;
}

static spartan_status conv_prepare(sp_layer *L, spartan_context *ctx,
                                   const spartan_train_config *cfg) {
    sp_gemm_state *g = &L->g;
    const size_t B = cfg->batch, k = L->spec.kernel * L->spec.kernel * L->in_c;
    /* the weight as a parameter: kernel x kernel x in_c x out_c (HWIO) */
    g->wrank = 4;
    g->wshape[0] = g->wshape[1] = L->spec.kernel;
    g->wshape[2] = L->in_c;
    g->wshape[3] = L->out_c;
    spartan_status st = sp_tensor4(ctx, B, L->out_h, L->out_w, k, &g->cols);
    if (st == SPARTAN_OK && L->need_dx) st = sp_tensor4(ctx, B, L->out_h, L->out_w, k, &g->dcols);
    return st == SPARTAN_OK ? sp_gemm_prepare(L, ctx, cfg, B * L->out_h * L->out_w, k) : st;
}

static spartan_status conv_forward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                   const spartan_tensor **y) {
    const size_t rows = s->count * L->out_h * L->out_w;
    spartan_window win = sp_layer_window(L, s->count, L->spec.pad);
    spartan_tensor xv, cv;
    spartan_status st = sp_view4(&xv, x, s->count, L->in_h, L->in_w, L->in_c);
    if (st == SPARTAN_OK) st = sp_view2(&cv, L->g.cols, rows, L->g.k);
    if (st == SPARTAN_OK) st = spartan_im2col(s->ctx, &win, &xv, &cv);
    *y = L->y;
    return st == SPARTAN_OK ? sp_gemm_forward_x(L, s, &cv, rows) : st;
}

static spartan_status conv_backward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                    const spartan_tensor *dy, const spartan_tensor **dx) {
    (void)x; /* the GEMM's X is the im2col matrix the forward pass left in cols */
    spartan_tensor a, da;
    spartan_status st = sp_view2(&a, L->g.cols, L->g.m, L->g.k);
    if (st == SPARTAN_OK && L->need_dx) st = sp_view2(&da, L->g.dcols, L->g.m, L->g.k);
    if (st == SPARTAN_OK) st = sp_gemm_backward_x(L, s, &a, dy, L->need_dx ? &da : NULL);
    *dx = L->need_dx ? L->dx : NULL;
    if (st != SPARTAN_OK || !L->need_dx) return st;
    spartan_window win = sp_layer_window(L, L->batch, L->spec.pad);
    st = spartan_col2im(s->ctx, &win, &da, L->dx);
    if (st == SPARTAN_OK && s->recording)
        st = sp_marks_add(s->marks, &L->sec[SPARTAN_PASS_BWD_INPUT], NULL);
    return st;
}

const sp_layer_ops sp_layer_conv = {
    .name = "conv",
    .gemm = 1,
    .takes_outputs = 1,
    .keys = "ksp",
    .defaults = conv_defaults,
    .shape = conv_shape,
    .prepare = conv_prepare,
    .forward = conv_forward,
    .backward = conv_backward,
    .collect = sp_gemm_collect,
    .release = sp_gemm_release,
};
