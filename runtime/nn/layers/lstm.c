/* LSTM: one layer of PyTorch's nn.LSTM (batch_first, gates i, f, g, o) over the input's rows as
 * time steps (T = in_h steps of F = in_w x in_c features: Fashion-MNIST read row by row); the
 * output is the last step's hidden state, 1 x 1 x H. The input GEMM runs once over every step
 * (X (B T x F) . W_x into gx), the recurrent one per step (h_{t-1} . W_h), and a kernel per step
 * applies the gates (ops/lstm.c). Backpropagation through time walks the steps back: per step the
 * gates' gradients (dgt, and dgx and grev for all steps) and the gradient reaching h_{t-1} through
 * W_h (transposed once per pass); then W_h's from every step at once (hrev^T grev: the kernels lay
 * h_{t-1} and dG_t out side by side, latest first, so the T - 1 steps are a prefix of both), and
 * W_x's, the bias's and the input's from dgx at once. Every GEMM is the device's dense one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/rng.h"
#include "nn/layers/layer.h"

typedef struct lstm_state {
    size_t T, F, H;
    spartan_tensor *wx, *wh, *b, *dwx, *dwh, *db, *vwx, *vwh, *vb;
    spartan_tensor *gx, *gates, *cs, *rec, *dgx, *dgt, *dh, *dc, *hrev, *grev, *wht;
    spartan_tensor **hs; /* T tensors of batch x H: each step's hidden state */
    char names[3][40];
} lstm_state;

static spartan_status lstm_shape(spartan_context *ctx, sp_layer *L) {
    if (!L->spec.outputs) return sp_invalid(ctx, "0 hidden units");
    L->out_h = L->out_w = 1;
    L->out_c = L->spec.outputs;
    return SPARTAN_OK;
}

static void lstm_release(sp_layer *L) {
    lstm_state *S = L->state;
    if (S) {
        spartan_tensor *t[] = {S->wx,  S->wh, S->b,  S->dwx,   S->dwh,  S->db,  S->vwx,
                               S->vwh, S->vb, S->gx, S->gates, S->cs,   S->rec, S->dgx,
                               S->dgt, S->dh, S->dc, S->hrev,  S->grev, S->wht};
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) spartan_tensor_destroy(t[i]);
        for (size_t i = 0; S->hs && i < S->T; i++) spartan_tensor_destroy(S->hs[i]);
        free(S->hs);
        free(S);
    }
    L->state = NULL;
    spartan_tensor_destroy(L->dx);
    L->dx = NULL;
    L->y = NULL; /* the last step's hidden state, freed above */
}

/* PyTorch's initialisation: every weight uniform in +-1/sqrt(H); the bias the sum of its two
 * (b_ih + b_hh), from the seed and the layer's index. */
static spartan_status init_params(lstm_state *S, sp_layer *L, spartan_context *ctx, uint64_t seed) {
    const size_t H4 = 4 * S->H, count = (S->F + S->H + 1) * H4;
    float *host = malloc(count * sizeof *host);
    if (!host) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "LSTM weights");
    sp_rng r = {seed * 0x9e3779b97f4a7c15ull + L->index + 1};
    const double a = 1.0 / sqrt((double)S->H);
    for (size_t i = 0; i < (S->F + S->H) * H4; i++)
        host[i] = (float)(a * (2.0 * sp_rng_uniform(&r) - 1.0));
    float *bias = host + (S->F + S->H) * H4;
    for (size_t i = 0; i < H4; i++)
        bias[i] =
            (float)(a * (2.0 * sp_rng_uniform(&r) - 1.0) + a * (2.0 * sp_rng_uniform(&r) - 1.0));
    spartan_status st = spartan_tensor_write(S->wx, host, S->F * H4);
    if (st == SPARTAN_OK) st = spartan_tensor_write(S->wh, host + S->F * H4, S->H * H4);
    if (st == SPARTAN_OK) st = spartan_tensor_write(S->b, bias, H4);
    free(host);
    spartan_tensor *zero[] = {S->vwx, S->vwh, S->vb};
    for (size_t i = 0; i < 3 && st == SPARTAN_OK; i++) st = spartan_tensor_fill(zero[i], 0.0f);
    return st;
}

static spartan_status lstm_prepare(sp_layer *L, spartan_context *ctx,
                                   const spartan_train_config *cfg) {
    lstm_state *S = calloc(1, sizeof *S);
    if (!S) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "LSTM state");
    L->state = S;
    L->batch = cfg->batch;
    S->T = L->in_h;
    S->F = L->in_w * L->in_c;
    S->H = L->spec.outputs;
    const size_t B = cfg->batch, T = S->T, F = S->F, H = S->H, H4 = 4 * H;
    spartan_status st = SPARTAN_OK;
#define TRY(call)                                                                                  \
    do {                                                                                           \
        if (st == SPARTAN_OK) st = (call);                                                         \
    } while (0)
    TRY(spartan_tensor_create_2d(ctx, F, H4, &S->wx));
    TRY(spartan_tensor_create_2d(ctx, H, H4, &S->wh));
    TRY(spartan_tensor_create_2d(ctx, 1, H4, &S->b));
    TRY(spartan_tensor_create_2d(ctx, F, H4, &S->dwx));
    TRY(spartan_tensor_create_2d(ctx, H, H4, &S->dwh));
    TRY(spartan_tensor_create_2d(ctx, 1, H4, &S->db));
    TRY(spartan_tensor_create_2d(ctx, F, H4, &S->vwx));
    TRY(spartan_tensor_create_2d(ctx, H, H4, &S->vwh));
    TRY(spartan_tensor_create_2d(ctx, 1, H4, &S->vb));
    TRY(spartan_tensor_create_2d(ctx, B * T, H4, &S->gx));
    TRY(spartan_tensor_create_2d(ctx, T * B, H4, &S->gates));
    TRY(spartan_tensor_create_2d(ctx, T * B, H, &S->cs));
    TRY(spartan_tensor_create_2d(ctx, B, H4, &S->rec));
    TRY(spartan_tensor_create_2d(ctx, B * T, H4, &S->dgx));
    TRY(spartan_tensor_create_2d(ctx, B, H4, &S->dgt));
    TRY(spartan_tensor_create_2d(ctx, B, H, &S->dh));
    TRY(spartan_tensor_create_2d(ctx, B, H, &S->dc));
    TRY(spartan_tensor_create_2d(ctx, (T > 1 ? T - 1 : 1) * B, H, &S->hrev));
    TRY(spartan_tensor_create_2d(ctx, (T > 1 ? T - 1 : 1) * B, H4, &S->grev));
    TRY(spartan_tensor_create_2d(ctx, H4, H, &S->wht));
    if (st == SPARTAN_OK && !(S->hs = calloc(T, sizeof *S->hs)))
        st = sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "LSTM states");
    for (size_t t = 0; t < T; t++) TRY(sp_tensor4(ctx, B, 1, 1, H, &S->hs[t]));
    if (L->need_dx) TRY(sp_tensor4(ctx, B, L->in_h, L->in_w, L->in_c, &L->dx));
#undef TRY
    if (st != SPARTAN_OK) return st;
    L->y = S->hs[T - 1];
    snprintf(S->names[0], sizeof S->names[0], "%s.weight_ih", L->name);
    snprintf(S->names[1], sizeof S->names[1], "%s.weight_hh", L->name);
    snprintf(S->names[2], sizeof S->names[2], "%s.bias", L->name);
    return init_params(S, L, ctx, cfg->seed);
}

static size_t lstm_params(const sp_layer *L, spartan_param *out) {
    const lstm_state *S = L->state;
    if (out) {
        out[0] = (spartan_param){S->names[0], S->wx, S->dwx, S->vwx, 2, {S->F, 4 * S->H}};
        out[1] = (spartan_param){S->names[1], S->wh, S->dwh, S->vwh, 2, {S->H, 4 * S->H}};
        out[2] = (spartan_param){S->names[2], S->b, S->db, S->vb, 1, {4 * S->H}};
    }
    return 3;
}

static spartan_status lstm_forward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                   const spartan_tensor **y) {
    lstm_state *S = L->state;
    const size_t B = s->count, T = S->T, H = S->H;
    const spartan_gemm_path dense = spartan_gemm_best(s->ctx);
    spartan_tensor xv, gxv, recv, hprev;
    spartan_status st = sp_view2(&xv, x, B * T, S->F);
    if (st == SPARTAN_OK) st = sp_view2(&gxv, S->gx, B * T, 4 * H);
    if (st == SPARTAN_OK) st = sp_view2(&recv, S->rec, B, 4 * H);
    if (st == SPARTAN_OK)
        st = spartan_gemm_dense(s->ctx, dense, 0, 0, 1.0f, &xv, S->wx, 0.0f, &gxv);
    for (size_t t = 0; t < T && st == SPARTAN_OK; t++) {
        if (t > 0) {
            st = sp_view2(&hprev, S->hs[t - 1], B, H);
            if (st == SPARTAN_OK)
                st = spartan_gemm_dense(s->ctx, dense, 0, 0, 1.0f, &hprev, S->wh, 0.0f, &recv);
        }
        if (st == SPARTAN_OK)
            st = sp_lstm_forward_step(s->ctx, S->gx->mem, S->rec->mem, S->b->mem, S->gates->mem,
                                      S->cs->mem, S->hs[t]->mem, S->hrev->mem, B, H, T, t);
    }
    *y = S->hs[T - 1];
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_FWD) : st;
}

static spartan_status lstm_backward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                    const spartan_tensor *dy, const spartan_tensor **dx) {
    lstm_state *S = L->state;
    spartan_context *ctx = s->ctx;
    const size_t B = L->batch, T = S->T, H = S->H;
    const spartan_gemm_path dense = spartan_gemm_best(ctx);
    *dx = L->need_dx ? L->dx : NULL;
    spartan_tensor dyv, xv;
    spartan_status st = sp_view2(&dyv, dy, B, H);
    if (st == SPARTAN_OK) st = spartan_tensor_fill(S->dc, 0.0f);
    if (st == SPARTAN_OK && T > 1) st = spartan_transpose(ctx, S->wh, S->wht);
    for (size_t t = T; t-- > 0 && st == SPARTAN_OK;) {
        const spartan_tensor *dh = t + 1 == T ? &dyv : S->dh;
        st = sp_lstm_backward_step(ctx, S->gates->mem, S->cs->mem, dh->mem, S->dc->mem, S->dgt->mem,
                                   S->dgx->mem, S->grev->mem, B, H, T, t);
        /* dh_{t-1} = dG_t W_h^T */
        if (st == SPARTAN_OK && t > 0)
            st = spartan_gemm_dense(ctx, dense, 0, 0, 1.0f, S->dgt, S->wht, 0.0f, S->dh);
    }
    /* dW_h = sum over t >= 1 of h_{t-1}^T dG_t: one GEMM over the (T - 1) B rows */
    spartan_tensor hv, gv;
    if (st == SPARTAN_OK && T == 1) st = spartan_tensor_fill(S->dwh, 0.0f);
    if (st == SPARTAN_OK && T > 1) {
        st = sp_view2(&hv, S->hrev, (T - 1) * B, H);
        if (st == SPARTAN_OK) st = sp_view2(&gv, S->grev, (T - 1) * B, 4 * H);
        if (st == SPARTAN_OK)
            st = spartan_gemm_dense(ctx, dense, 1, 0, 1.0f, &hv, &gv, 0.0f, S->dwh);
    }
    if (st == SPARTAN_OK) st = spartan_bias_grad(ctx, S->dgx, S->db);
    if (st == SPARTAN_OK) st = sp_view2(&xv, x, B * T, S->F);
    if (st == SPARTAN_OK)
        st = spartan_gemm_dense(ctx, dense, 1, 0, 1.0f, &xv, S->dgx, 0.0f, S->dwx);
    if (st == SPARTAN_OK) st = sp_layer_done(L, s, SPARTAN_PASS_BWD_WEIGHT);
    if (st == SPARTAN_OK && L->need_dx) {
        spartan_tensor dxv;
        st = sp_view2(&dxv, L->dx, B * T, S->F);
        if (st == SPARTAN_OK)
            st = spartan_gemm_dense(ctx, dense, 0, 1, 1.0f, S->dgx, S->wx, 0.0f, &dxv);
        if (st == SPARTAN_OK) st = sp_layer_done(L, s, SPARTAN_PASS_BWD_INPUT);
    }
    return st;
}

const sp_layer_ops sp_layer_lstm = {
    .name = "lstm",
    .takes_outputs = 1,
    .keys = "",
    .shape = lstm_shape,
    .prepare = lstm_prepare,
    .forward = lstm_forward,
    .backward = lstm_backward,
    .params = lstm_params,
    .release = lstm_release,
};
