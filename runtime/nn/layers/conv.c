/* Convolution: each pass runs on the engine the policy gives its path (sp_policy_engine): the
 * implicit-GEMM kernels, which gather the patches inside the kernel (no patch matrix; sparse:
 * skipping the zeros of X forward, of dY backward), or im2col + the GEMM layer's pass on the
 * patch matrix (col2im after backward-by-input), through sp_conv_pass_run (ops/conv_pass.c).
 * The patch matrix and its gradient are made only when a pass first runs on the GEMM engine.
 * Square kernels, the same stride and zero padding along both axes. */
#include "nn/layers/layer.h"

/* The pass's engine for the path the policy gave, recorded in the statistics when recording. */
static sp_conv_engine engine_of(sp_layer *L, const sp_step *s, spartan_pass pass,
                                spartan_path path) {
    const sp_conv_engine e = sp_policy_engine(s->policy, L->index, pass, path);
    if (s->recording) L->engine[pass] = e == SP_CONV_IMPLICIT ? "implicit" : "im2col";
    return e;
}

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
    g->conv = 1;
    g->cols_fresh = 0;
    return sp_gemm_prepare(L, ctx, cfg, B * L->out_h * L->out_w, k);
}

/* The patch matrix (and, for backward-by-input, its gradient) of the prepared batch, made on
 * first use by the GEMM engine, with its compaction (W^T, for the sparse backward-by-input on
 * dY, is made at prepare: sp_gemm_prepare). */
static spartan_status need_cols(sp_layer *L, spartan_context *ctx, int grad) {
    sp_gemm_state *g = &L->g;
    spartan_status st = SPARTAN_OK;
    if (!g->cols) st = sp_tensor4(ctx, L->batch, L->out_h, L->out_w, g->k, &g->cols);
    if (st == SPARTAN_OK && !g->scols) st = spartan_sparse_create(ctx, g->m, g->k, &g->scols);
    if (st == SPARTAN_OK && grad && !g->dcols)
        st = sp_tensor4(ctx, L->batch, L->out_h, L->out_w, g->k, &g->dcols);
    return st;
}

/* The operands of a pass over count images: x (the input images) and the GEMM engine's matrices
 * (views of the patch matrix and its gradient when made). */
static spartan_status operands(sp_layer *L, size_t count, const spartan_tensor *x,
                               sp_conv_operands *o, spartan_tensor *xv, spartan_tensor *cv,
                               spartan_tensor *dcv) {
    sp_gemm_state *g = &L->g;
    const size_t rows = count * L->out_h * L->out_w;
    *o = (sp_conv_operands){.win = sp_layer_window(L, count, L->spec.pad), .x = xv};
    spartan_status st = sp_view2(xv, x, count * L->in_h * L->in_w, L->in_c);
    if (st == SPARTAN_OK && g->cols) st = sp_view2(cv, g->cols, rows, g->k);
    if (st == SPARTAN_OK && g->dcols) st = sp_view2(dcv, g->dcols, rows, g->k);
    o->g = (spartan_gemm_operands){.x = g->cols ? cv : NULL,
                                   .w = g->w,
                                   .dx = g->dcols ? dcv : NULL,
                                   .wt = g->wt,
                                   .sx = g->scols,
                                   .sdy = g->sdy};
    return st;
}

static spartan_status conv_forward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                   const spartan_tensor **y) {
    sp_gemm_state *g = &L->g;
    const size_t rows = s->count * L->out_h * L->out_w;
    const spartan_path path = sp_gemm_choose(L, s, SPARTAN_PASS_FWD, rows);
    const sp_conv_engine engine = engine_of(L, s, SPARTAN_PASS_FWD, path);
    *y = L->y;
    g->cols_fresh = 0;
    spartan_status st = engine == SP_CONV_GEMM ? need_cols(L, s->ctx, 0) : SPARTAN_OK;
    sp_conv_operands o;
    spartan_tensor xv, cv, dcv, yv;
    if (st == SPARTAN_OK) st = operands(L, s->count, x, &o, &xv, &cv, &dcv);
    if (st == SPARTAN_OK) st = sp_view2(&yv, L->y, rows, g->n);
    if (st != SPARTAN_OK) return st;
    o.d = &g->pass[SPARTAN_PASS_FWD];
    o.g.y = &yv;
    /* a ReLU and a convolution next: this store adds the bias and applies the ReLU (the ReLU
     * passes Y on) but on the steps that sample the ReLU's monitor */
    o.relu_y = L->relu_in_store && sp_relu_fused(s);
    o.relu_bias = g->b;
    if ((st = sp_gemm_mark(L, s, SPARTAN_PASS_FWD, 0)) != SPARTAN_OK) return st;
    spartan_gemm_path dense = spartan_policy_dense_path(s->policy, L->index, SPARTAN_PASS_FWD);
    st = sp_conv_pass_run(s->ctx, SPARTAN_PASS_FWD, engine, path, dense, &o);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_FWD, 1);
    /* the patch matrix of a training step serves backward-by-weight on the GEMM engine */
    g->cols_fresh = o.cols_fresh && s->train && s->count == L->batch;
    /* with a ReLU next, the bias is added by the ReLU as it reads Y: one pass less */
    if (st == SPARTAN_OK && !g->bias_in_relu) st = spartan_bias_add(s->ctx, &yv, g->b);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_FWD, 0);
    return st;
}

/* db, then backward-by-weight, then (when an input gradient is needed) backward-by-input, each
 * on its path's engine. The sampled counts: dY by a monitor; X by the layer that made it (through
 * pools and flattens), or by a monitor of the input images (the first layer). */
static spartan_status conv_backward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                    const spartan_tensor *dy, const spartan_tensor **dx) {
    sp_gemm_state *g = &L->g;
    spartan_context *ctx = s->ctx;
    const size_t rows = g->m;
    *dx = L->need_dx ? L->dx : NULL;
    spartan_tensor dyv;
    spartan_status st = sp_view2(&dyv, dy, rows, g->n);
    if (st == SPARTAN_OK) st = spartan_bias_grad(ctx, &dyv, g->db);
    if (st != SPARTAN_OK) return st;
    const spartan_path pw = sp_gemm_choose(L, s, SPARTAN_PASS_BWD_WEIGHT, rows);
    const spartan_path pi =
        L->need_dx ? sp_gemm_choose(L, s, SPARTAN_PASS_BWD_INPUT, rows) : SPARTAN_PATH_DENSE;
    const sp_conv_engine ew = engine_of(L, s, SPARTAN_PASS_BWD_WEIGHT, pw);
    const sp_conv_engine ei =
        L->need_dx ? engine_of(L, s, SPARTAN_PASS_BWD_INPUT, pi) : SP_CONV_IMPLICIT;
    if (ew == SP_CONV_GEMM) st = need_cols(L, ctx, 0);
    if (st == SPARTAN_OK && L->need_dx && ei == SP_CONV_GEMM) st = need_cols(L, ctx, 1);
    sp_conv_operands o;
    spartan_tensor xv, cv, dcv;
    if (st == SPARTAN_OK) st = operands(L, L->batch, x, &o, &xv, &cv, &dcv);
    if (st == SPARTAN_OK && s->sampling) st = spartan_monitor(ctx, &dyv, g->sdy);
    if (st == SPARTAN_OK && s->sampling) st = sp_sample_take(&g->gs);
    if (st == SPARTAN_OK && s->sampling && !L->x_source) st = spartan_monitor(ctx, &xv, g->sx);
    if (st == SPARTAN_OK && s->sampling && !L->x_source) st = sp_sample_take(&g->xs);
    /* the segment so far (bias gradient, monitors) is charged to bwd_weight */
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_BWD_WEIGHT, 0);
    if (st != SPARTAN_OK) return st;
    o.g.dy = &dyv;
    o.g.dw = g->dw;
    o.cols_fresh = g->cols_fresh;
    o.d = &g->pass[SPARTAN_PASS_BWD_WEIGHT];
    spartan_gemm_path dense =
        spartan_policy_dense_path(s->policy, L->index, SPARTAN_PASS_BWD_WEIGHT);
    st = sp_conv_pass_run(ctx, SPARTAN_PASS_BWD_WEIGHT, ew, pw, dense, &o);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_BWD_WEIGHT, 1);
    if (st == SPARTAN_OK && L->need_dx) {
        o.g.dw = NULL;
        o.dx = L->dx;
        o.d = &g->pass[SPARTAN_PASS_BWD_INPUT];
        o.mask_dx = L->relu_before != NULL; /* x, a ReLU's output, masks dx: its backward */
        dense = spartan_policy_dense_path(s->policy, L->index, SPARTAN_PASS_BWD_INPUT);
        st = sp_conv_pass_run(ctx, SPARTAN_PASS_BWD_INPUT, ei, pi, dense, &o);
        if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_BWD_INPUT, 1);
    }
    g->cols_fresh = 0;
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
    .params = sp_gemm_params,
    .collect = sp_gemm_collect,
    .release = sp_gemm_release,
};
