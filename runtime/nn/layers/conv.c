/* Convolution: each pass runs on the engine the policy gives its path (sp_policy_engine): the
 * implicit-GEMM kernels, which gather the patches inside the kernel (no patch matrix; sparse:
 * skipping the zeros of X forward, of dY backward), or im2col + the GEMM layer's pass on the
 * patch matrix (col2im after backward-by-input), through sp_conv_pass_run (ops/conv_pass.c).
 * The patch matrix and its gradient are made only when a pass first runs on the GEMM engine.
 * Square kernels, the same stride and zero padding along both axes. With channel dropout
 * (spartan_train_config.channel_dropout) a training step runs all three passes on the input
 * channels it keeps (sp_chan_state, nn/chan.h): x and W gathered, the implicit kernels on the
 * path the policy gives, dW and dx scattered back. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "nn/chan.h"
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

/* ---- Channel dropout (sp_chan_state) ------------------------------------------------------ */

static void chan_release(sp_layer *L) {
    sp_chan_state *S = L->state;
    if (!S) return;
    spartan_tensor *t[] = {S->sums, S->xc, S->wc, S->dwc, S->dxc, S->rscale};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) spartan_tensor_destroy(t[i]);
    sp_row_maps_release(&S->xm);
    sp_row_maps_release(&S->wm);
    void *h[] = {S->next, S->sens, S->d, S->dropped, S->xmap, S->xinv, S->wmap, S->winv, S->wscale};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    free(S);
    L->state = NULL;
}

/* Channel dropout where it applies: a ReLU's output (through pools) whose kept channels fill at
 * least two of the device's vectors on average. The implicit kernels run their vectors over the
 * input channels; on fewer the smaller convolution was no faster than the whole one (vgg-small's
 * conv2, 32 channels at p = 0.5 on POCL: forward 3.67 -> 3.62 ms, backward-by-input 3.62 ->
 * 4.98, backward-by-weight 4.44 -> 5.12, the gathers and scatters included; conv4, 64 channels:
 * 3.64 -> 2.69, 3.65 -> 2.60, 3.84 -> 2.29). */
static spartan_status chan_prepare(sp_layer *L, spartan_context *ctx,
                                   const spartan_train_config *cfg) {
    const double vec = (double)sp_tuned_get(&ctx->tuned, "VEC");
    if (!(cfg->channel_dropout > 0.0f) || !L->input_masked || L->in_c < 2 ||
        (double)L->in_c * (1.0 - cfg->channel_dropout) < 2.0 * vec)
        return SPARTAN_OK;
    /* the kept count rounded to whole vectors (64 channels at p = 0.3: 48, not 44.8) */
    const double keep = fmin(
        (double)L->in_c, vec * floor((double)L->in_c * (1.0 - cfg->channel_dropout) / vec + 0.5));
    sp_chan_state *S = calloc(1, sizeof *S);
    if (!S) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "channel dropout");
    L->state = S;
    const size_t C = L->in_c, kk = L->spec.kernel * L->spec.kernel, n = L->out_c;
    const size_t px = cfg->batch * L->in_h * L->in_w;
    S->rate = (float)(1.0 - keep / (double)C);
    S->C = C;
    S->kk = kk;
    S->next = calloc(C, sizeof *S->next);
    S->sens = calloc(C, sizeof *S->sens);
    S->d = calloc(C, sizeof *S->d);
    S->dropped = calloc(C, 1);
    S->xmap = calloc(C, sizeof *S->xmap);
    S->xinv = calloc(C, sizeof *S->xinv);
    S->wmap = calloc(kk * C, sizeof *S->wmap);
    S->winv = calloc(kk * C, sizeof *S->winv);
    S->wscale = calloc(kk * C, sizeof *S->wscale);
    if (!S->next || !S->sens || !S->d || !S->dropped || !S->xmap || !S->xinv || !S->wmap ||
        !S->winv || !S->wscale)
        return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "channel dropout");
    spartan_status st = sp_row_maps_create(ctx, C, &S->xm);
    if (st == SPARTAN_OK) st = sp_row_maps_create(ctx, kk * C, &S->wm);
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, 1, C, &S->sums);
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, px, C, &S->xc);
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, px, C, &S->dxc);
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, kk * C, n, &S->wc);
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, kk * C, n, &S->dwc);
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, 1, kk * C, &S->rscale);
    return st;
}

/* This step's channels (chosen once per step from the sensitivities the last ended step
 * measured) and their maps and scales, written without blocking. */
static spartan_status chan_choose(sp_layer *L, const sp_step *s) {
    sp_chan_state *S = L->state;
    if (S->drawn && S->step == s->step) return SPARTAN_OK;
    const size_t C = S->C, kk = S->kk;
    sp_chan_probabilities(S->have_sens ? S->sens : NULL, C, S->rate, S->d);
    sp_rng r = {s->seed * 0x9e3779b97f4a7c15ull ^ (s->step * 0xbf58476d1ce4e5b9ull + L->index)};
    sp_rng_next(&r);
    size_t kept = sp_chan_sample(S->d, C, 1.0 - sp_rng_uniform(&r), S->dropped);
    if (kept == 0) { /* every channel drawn: keep the likeliest one (its scale as drawn) */
        size_t best = 0;
        for (size_t c = 1; c < C; c++) best = S->d[c] < S->d[best] ? c : best;
        S->dropped[best] = 0;
        kept = 1;
    }
    for (size_t c = 0, cc = 0; c < C; c++) {
        S->xinv[c] = S->dropped[c] ? 0xffffffffu : (cl_uint)cc;
        if (!S->dropped[c]) S->xmap[cc++] = (cl_uint)c;
    }
    for (size_t t = 0; t < kk; t++)
        for (size_t c = 0; c < C; c++) {
            const cl_uint cc = S->xinv[c];
            S->winv[t * C + c] = cc == 0xffffffffu ? cc : (cl_uint)(t * kept + cc);
            if (cc != 0xffffffffu) {
                S->wmap[t * kept + cc] = (cl_uint)(t * C + c);
                S->wscale[t * kept + cc] = (float)(1.0 / (1.0 - S->d[c]));
            }
        }
    S->kept = kept;
    spartan_tensor rv;
    spartan_status st = sp_row_maps_write(s->ctx, &S->xm, kept, S->xmap, S->xinv);
    if (st == SPARTAN_OK) st = sp_row_maps_write(s->ctx, &S->wm, kk * kept, S->wmap, S->winv);
    if (st == SPARTAN_OK) st = sp_view2(&rv, S->rscale, 1, kk * kept);
    if (st == SPARTAN_OK) st = sp_tensor_write_async(&rv, S->wscale, kk * kept);
    S->drawn = st == SPARTAN_OK;
    S->step = s->step;
    return st;
}

/* The views of a step on the kept channels: the window, x (px x C'), W (k k C' x out_c). */
static spartan_status chan_views(sp_layer *L, size_t count, spartan_window *win, spartan_tensor *xc,
                                 spartan_tensor *wc) {
    sp_chan_state *S = L->state;
    *win = sp_layer_window(L, count, L->spec.pad);
    win->in_c = S->kept;
    spartan_status st = sp_view2(xc, S->xc, count * L->in_h * L->in_w, S->kept);
    return st == SPARTAN_OK ? sp_view2(wc, S->wc, S->kk * S->kept, L->out_c) : st;
}

static void chan_record(sp_layer *L, const sp_step *s, spartan_pass pass) {
    if (s->recording) L->engine[pass] = "channels";
}

/* Forward on the kept channels: x's column sums for the next step's choice, then x and W
 * gathered (W's rows scaled) and the convolution on the path the policy gives. */
static spartan_status chan_forward(sp_layer *L, const sp_step *s, const spartan_tensor *xv,
                                   spartan_tensor *yv, spartan_path path, int relu_y) {
    sp_chan_state *S = L->state;
    sp_gemm_state *g = &L->g;
    spartan_context *ctx = s->ctx;
    spartan_window win;
    spartan_tensor xc, wc;
    spartan_status st = SPARTAN_OK;
    if (s->sampling || !S->have_sens) { /* on the monitors' steps: x >= 0, the magnitudes */
        st = spartan_bias_grad(ctx, xv, S->sums);
        if (st == SPARTAN_OK) st = sp_tensor_read_async(S->sums, S->next, S->C);
        S->pending = st == SPARTAN_OK;
    }
    if (st == SPARTAN_OK) st = chan_choose(L, s);
    if (st == SPARTAN_OK) st = chan_views(L, s->count, &win, &xc, &wc);
    if (st != SPARTAN_OK) return st;
    chan_record(L, s, SPARTAN_PASS_FWD);
    st = sp_row_gather(ctx, xv, spartan_tensor_rows(xv), S->C, NULL, &S->xm, 1.0f, &xc);
    if (st == SPARTAN_OK)
        st = sp_row_gather_scaled(ctx, g->w, S->kk * S->C, L->out_c, &S->wm, NULL, 1.0f, S->rscale,
                                  &wc);
    if (st == SPARTAN_OK)
        st = relu_y ? spartan_conv2d_forward_relu(ctx, path, &win, &xc, &wc, g->b, yv)
                    : spartan_conv2d_forward(ctx, path, &win, &xc, &wc, yv);
    return st;
}

/* Backward on the kept channels: dW's kept rows (scattered back with their scales, zeros at the
 * dropped channels) and, when needed, dx's kept columns (zeros elsewhere). */
static spartan_status chan_backward(sp_layer *L, const sp_step *s, const spartan_tensor *dyv,
                                    spartan_path pw, spartan_path pi) {
    sp_chan_state *S = L->state;
    sp_gemm_state *g = &L->g;
    spartan_context *ctx = s->ctx;
    const size_t px = L->batch * L->in_h * L->in_w;
    spartan_window win;
    spartan_tensor xc, wc, dwc, dxc;
    spartan_status st = chan_views(L, L->batch, &win, &xc, &wc);
    if (st == SPARTAN_OK) st = sp_view2(&dwc, S->dwc, S->kk * S->kept, L->out_c);
    if (st != SPARTAN_OK) return st;
    chan_record(L, s, SPARTAN_PASS_BWD_WEIGHT);
    st = spartan_conv2d_backward_weight(ctx, pw, &win, &xc, dyv, &dwc);
    if (st == SPARTAN_OK)
        st = sp_row_scatter_scaled(ctx, &dwc, S->kk * S->C, L->out_c, &S->wm, NULL, 1.0f, S->rscale,
                                   g->dw);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_BWD_WEIGHT, 0);
    if (st != SPARTAN_OK || !L->need_dx) return st;
    chan_record(L, s, SPARTAN_PASS_BWD_INPUT);
    st = sp_view2(&dxc, S->dxc, px, S->kept);
    if (st == SPARTAN_OK)
        st = L->relu_before /* x, a ReLU's output, masks dx: its backward */
                 ? spartan_conv2d_backward_input_relu(ctx, pi, &win, dyv, &wc, &xc, &dxc)
                 : spartan_conv2d_backward_input(ctx, pi, &win, dyv, &wc, &dxc);
    spartan_tensor dxv;
    if (st == SPARTAN_OK) st = sp_view2(&dxv, L->dx, px, S->C);
    if (st == SPARTAN_OK) st = sp_row_scatter(ctx, &dxc, px, S->C, NULL, &S->xm, 1.0f, &dxv);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_BWD_INPUT, 0);
    return st;
}

/* After the step's blocking read: the sums read this step are the next choice's sensitivities. */
static void conv_collect(sp_layer *L) {
    sp_gemm_collect(L);
    sp_chan_state *S = L->state;
    if (!S || !S->pending) return;
    for (size_t c = 0; c < S->C; c++) S->sens[c] = S->next[c];
    S->have_sens = 1;
    S->pending = 0;
}

static void conv_release(sp_layer *L) {
    chan_release(L);
    sp_gemm_release(L);
}

/* A training step with channel dropout. */
static int chan_on(const sp_layer *L, const sp_step *s) {
    return s->train && L->state;
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
    spartan_status st = sp_gemm_prepare(L, ctx, cfg, B * L->out_h * L->out_w, k);
    return st == SPARTAN_OK ? chan_prepare(L, ctx, cfg) : st;
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
    const int chan = chan_on(L, s);
    const sp_conv_engine engine = chan ? SP_CONV_IMPLICIT : engine_of(L, s, SPARTAN_PASS_FWD, path);
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
    /* channel dropout: the time is not the policy's (its model is of the whole convolution) */
    st = chan ? chan_forward(L, s, &xv, &yv, path, o.relu_y)
              : sp_conv_pass_run(s->ctx, SPARTAN_PASS_FWD, engine, path, dense, &o);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_FWD, !chan);
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
    const int chan = chan_on(L, s);
    const sp_conv_engine ew =
        chan ? SP_CONV_IMPLICIT : engine_of(L, s, SPARTAN_PASS_BWD_WEIGHT, pw);
    const sp_conv_engine ei =
        L->need_dx && !chan ? engine_of(L, s, SPARTAN_PASS_BWD_INPUT, pi) : SP_CONV_IMPLICIT;
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
    if (chan) return chan_backward(L, s, &dyv, pw, pi);
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
    .collect = conv_collect,
    .release = conv_release,
};
