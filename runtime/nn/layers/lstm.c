/* LSTM: one layer of PyTorch's nn.LSTM (batch_first, gates i, f, g, o) over the input's rows as
 * time steps (T = in_h steps of F = in_w x in_c features: Fashion-MNIST read row by row); the
 * output is the last step's hidden state, 1 x 1 x H. The input GEMM runs once over every step
 * (X (B T x F) . W_x into gx), the recurrent one per step (h_{t-1} . W_h), and a kernel per step
 * applies the gates (ops/lstm.c). Backpropagation through time walks the steps back: per step the
 * gates' gradients (dgt, and dgx and grev for all steps) and the gradient reaching h_{t-1} through
 * W_h (transposed once per pass); then W_h's from every step at once (hrev^T grev: the kernels lay
 * h_{t-1} and dG_t out side by side, latest first, so the T - 1 steps are a prefix of both), and
 * W_x's, the bias's and the input's from dgx at once. Every GEMM is the device's dense one.
 *
 * Dropout of the hidden units (option p, or the configuration's rate; Gal and Ghahramani's
 * variational dropout: a unit is dropped for the whole sequence, from the recurrence and from the
 * output, h_t = mask o tanh(c_t)), in training steps, of the configuration's kind:
 * - bernoulli: each image's units dropped independently (a mask of batch x units, drawn like the
 *   dropout layer's, passed to the gate kernels);
 * - row: Approximate Random Dropout's row pattern (ard.h), the same units for every image. With an
 *   fc layer next (compact, linked by the model) the LSTM runs on the kept units alone: W_x's,
 *   W_h's and the bias's kept columns (and W_h's kept rows) gathered into smaller weights, every
 *   GEMM and gate kernel over H' < H units, the output and its gradient the kept units' (the fc
 *   layer reads its kept input rows), the update stepping the kept weights in place. Elsewhere the
 *   pattern is a mask as in the bernoulli kind.
 * The tile kind (tiles of an fc layer's weights) drops the units like bernoulli. */
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
    /* dropout: ones and this step's mask (batch x H); row kind, compact: the kept weights
     * (wxc F x 4H', whc H' x 4H', bc 4 x H'), their gradients, and whr (H' x 4H: W_h's kept rows,
     * then the kept rows of its gradient on the way back); each as large as H' = H */
    spartan_tensor *ones, *mask, *wxc, *whc, *bc, *dwxc, *dwhc, *dbc, *whr;
    char names[3][40];
} lstm_state;

/* How a step runs the layer. */
typedef enum { LSTM_WHOLE, LSTM_MASK, LSTM_ROWS } lstm_mode;

static lstm_mode mode_of(const sp_layer *L, const sp_step *s) {
    if (!s->train || !(L->rate > 0.0f)) return LSTM_WHOLE;
    return L->kind == SPARTAN_DROPOUT_ROW && L->compact ? LSTM_ROWS : LSTM_MASK;
}

static float lstm_scale(const sp_layer *L) {
    return 1.0f / (1.0f - L->rate);
}

static void lstm_defaults(spartan_layer_spec *spec) {
    if (spec->rate < 0.0f) spec->rate = 0.0f;
}

static spartan_status lstm_shape(spartan_context *ctx, sp_layer *L) {
    if (!L->spec.outputs) return sp_invalid(ctx, "0 hidden units");
    const float p = L->spec.rate;
    if (!(p >= 0.0f && p < 1.0f)) return sp_invalid(ctx, "p = %g is not in [0, 1)", (double)p);
    L->out_h = L->out_w = 1;
    L->out_c = L->spec.outputs;
    return SPARTAN_OK;
}

static void lstm_release(sp_layer *L) {
    lstm_state *S = L->state;
    if (S) {
        spartan_tensor *t[] = {S->wx, S->wh,   S->b,     S->dwx, S->dwh,  S->db,   S->vwx, S->vwh,
                               S->vb, S->gx,   S->gates, S->cs,  S->rec,  S->dgx,  S->dgt, S->dh,
                               S->dc, S->hrev, S->grev,  S->wht, S->ones, S->mask, S->wxc, S->whc,
                               S->bc, S->dwxc, S->dwhc,  S->dbc, S->whr};
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) spartan_tensor_destroy(t[i]);
        for (size_t i = 0; S->hs && i < S->T; i++) spartan_tensor_destroy(S->hs[i]);
        free(S->hs);
        free(S);
    }
    sp_dropout_plan_release(L);
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
    /* dropout of the hidden units: the configuration's rate and kind */
    L->rate = cfg->dropout >= 0.0f ? cfg->dropout : L->spec.rate;
    L->kind = cfg->dropout_kind;
    L->rows_drawn = 0;
    if (L->rate > 0.0f) {
        TRY(spartan_tensor_create_2d(ctx, B, H, &S->ones));
        TRY(spartan_tensor_create_2d(ctx, B, H, &S->mask));
        TRY(spartan_tensor_fill(S->ones, 1.0f));
    }
    if (L->rate > 0.0f && L->kind == SPARTAN_DROPOUT_ROW) {
        TRY(sp_dropout_plan(L, ctx, H, 1));
        TRY(spartan_tensor_create_2d(ctx, F, H4, &S->wxc));
        TRY(spartan_tensor_create_2d(ctx, H, H4, &S->whc));
        TRY(spartan_tensor_create_2d(ctx, 1, H4, &S->bc));
        TRY(spartan_tensor_create_2d(ctx, F, H4, &S->dwxc));
        TRY(spartan_tensor_create_2d(ctx, H, H4, &S->dwhc));
        TRY(spartan_tensor_create_2d(ctx, 1, H4, &S->dbc));
        TRY(spartan_tensor_create_2d(ctx, H, H4, &S->whr));
    }
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

/* One step's weights and sizes: the whole layer's, or (LSTM_ROWS) the kept units' gathered. */
typedef struct lstm_run {
    lstm_mode mode;
    size_t H;                 /* units computed: H, or the pattern's kept count */
    spartan_tensor wx, wh, b; /* views of the weights the GEMMs read (F x 4H, H x 4H, 1 x 4H) */
    cl_mem mask;              /* the gate kernels' mask (NULL: scale) */
    float scale;
} lstm_run;

/* The mask of this step (LSTM_MASK: Bernoulli per image and unit, or the row pattern for every
 * image), drawn by the forward pass into S->mask, which the backward pass reads. */
static spartan_status draw_mask(sp_layer *L, const sp_step *s) {
    lstm_state *S = L->state;
    if (L->kind != SPARTAN_DROPOUT_ROW) /* bernoulli, and tile (no weight tiles here) */
        return sp_dropout_from(s->ctx, S->ones, S->mask, L->rate, s->seed,
                               ((unsigned long long)s->step << 8) | (L->index & 0xff),
                               (uint64_t)s->image0 * S->H);
    spartan_status st = sp_dropout_rows(L, s);
    return st == SPARTAN_OK ? sp_row_mask(s->ctx, S->ones, S->mask, S->H, &L->rows, lstm_scale(L))
                            : st;
}

/* The step's run; gather: LSTM_ROWS gathers the kept weights (the forward pass; the backward
 * reads them again). */
static spartan_status run_of(sp_layer *L, const sp_step *s, int gather, lstm_run *r) {
    lstm_state *S = L->state;
    const size_t F = S->F, H = S->H;
    spartan_context *ctx = s->ctx;
    *r = (lstm_run){mode_of(L, s), H, *S->wx, *S->wh, *S->b, NULL, 1.0f};
    if (r->mode == LSTM_WHOLE) return SPARTAN_OK;
    if (r->mode == LSTM_MASK) {
        r->mask = S->mask->mem;
        return gather ? draw_mask(L, s) : SPARTAN_OK;
    }
    spartan_status st = sp_dropout_rows(L, s);
    if (st != SPARTAN_OK) return st;
    const size_t Hc = r->H = L->rows.count;
    r->scale = lstm_scale(L);
    st = sp_view2(&r->wx, S->wxc, F, 4 * Hc);
    if (st == SPARTAN_OK) st = sp_view2(&r->wh, S->whc, Hc, 4 * Hc);
    if (st == SPARTAN_OK) st = sp_view2(&r->b, S->bc, 1, 4 * Hc);
    if (st != SPARTAN_OK || !gather) return st;
    /* W_x (F x 4H) as 4F x H: its kept columns, F x 4H' with each gate's block of H' */
    st = sp_row_gather(ctx, S->wx, 4 * F, H, NULL, &L->rows, 1.0f, S->wxc);
    /* W_h: the kept rows (H' x 4H), then as 4H' x H their kept columns */
    if (st == SPARTAN_OK) st = sp_row_gather(ctx, S->wh, H, 4 * H, &L->rows, NULL, 1.0f, S->whr);
    if (st == SPARTAN_OK) st = sp_row_gather(ctx, S->whr, 4 * Hc, H, NULL, &L->rows, 1.0f, S->whc);
    if (st == SPARTAN_OK) st = sp_row_gather(ctx, S->b, 4, H, NULL, &L->rows, 1.0f, S->bc);
    return st;
}

static spartan_status lstm_forward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                   const spartan_tensor **y) {
    lstm_state *S = L->state;
    const size_t B = s->count, T = S->T;
    const spartan_gemm_path dense = spartan_gemm_best(s->ctx);
    lstm_run r;
    spartan_status st = run_of(L, s, 1, &r);
    const size_t H = r.H;
    spartan_tensor xv, gxv, recv, hprev;
    if (st == SPARTAN_OK) st = sp_view2(&xv, x, B * T, S->F);
    if (st == SPARTAN_OK) st = sp_view2(&gxv, S->gx, B * T, 4 * H);
    if (st == SPARTAN_OK) st = sp_view2(&recv, S->rec, B, 4 * H);
    if (st == SPARTAN_OK)
        st = spartan_gemm_dense(s->ctx, dense, 0, 0, 1.0f, &xv, &r.wx, 0.0f, &gxv);
    for (size_t t = 0; t < T && st == SPARTAN_OK; t++) {
        if (t > 0) {
            st = sp_view2(&hprev, S->hs[t - 1], B, H);
            if (st == SPARTAN_OK)
                st = spartan_gemm_dense(s->ctx, dense, 0, 0, 1.0f, &hprev, &r.wh, 0.0f, &recv);
        }
        if (st == SPARTAN_OK)
            st = sp_lstm_forward_step(s->ctx, S->gx->mem, S->rec->mem, r.b.mem, S->gates->mem,
                                      S->cs->mem, S->hs[t]->mem, S->hrev->mem, r.mask, r.scale, B,
                                      H, T, t);
    }
    *y = S->hs[T - 1]; /* LSTM_ROWS: the kept units', B x H', read by the fc layer next */
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_FWD) : st;
}

/* The kept weights' gradient of W_h (H' x 4H') scattered to its kept rows' columns (whr,
 * H' x 4H, zeros in the dropped columns). */
static spartan_status dwh_rows(sp_layer *L, spartan_context *ctx, size_t Hc) {
    lstm_state *S = L->state;
    return sp_row_scatter(ctx, S->dwhc, 4 * Hc, S->H, NULL, &L->rows, 1.0f, S->whr);
}

static spartan_status lstm_backward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                    const spartan_tensor *dy, const spartan_tensor **dx) {
    lstm_state *S = L->state;
    spartan_context *ctx = s->ctx;
    const size_t B = L->batch, T = S->T;
    const spartan_gemm_path dense = spartan_gemm_best(ctx);
    *dx = L->need_dx ? L->dx : NULL;
    lstm_run r;
    spartan_status st = run_of(L, s, 0, &r);
    const size_t H = r.H, H4 = 4 * H;
    spartan_tensor dyv, xv, dhv, dgtv, dgxv, wht, dwx = *S->dwx, dwh = *S->dwh, db = *S->db;
    if (st == SPARTAN_OK) st = sp_view2(&dyv, dy, B, H);
    if (st == SPARTAN_OK) st = sp_view2(&dhv, S->dh, B, H);
    if (st == SPARTAN_OK) st = sp_view2(&dgtv, S->dgt, B, H4);
    if (st == SPARTAN_OK) st = sp_view2(&dgxv, S->dgx, B * T, H4);
    if (st == SPARTAN_OK) st = sp_view2(&wht, S->wht, H4, H);
    if (st == SPARTAN_OK && r.mode == LSTM_ROWS) {
        st = sp_view2(&dwx, S->dwxc, S->F, H4);
        if (st == SPARTAN_OK) st = sp_view2(&dwh, S->dwhc, H, H4);
        if (st == SPARTAN_OK) st = sp_view2(&db, S->dbc, 1, H4);
    }
    if (st == SPARTAN_OK) st = spartan_tensor_fill(S->dc, 0.0f);
    if (st == SPARTAN_OK && T > 1) st = spartan_transpose(ctx, &r.wh, &wht);
    for (size_t t = T; t-- > 0 && st == SPARTAN_OK;) {
        const spartan_tensor *dh = t + 1 == T ? &dyv : &dhv;
        st = sp_lstm_backward_step(ctx, S->gates->mem, S->cs->mem, dh->mem, S->dc->mem, S->dgt->mem,
                                   S->dgx->mem, S->grev->mem, r.mask, r.scale, B, H, T, t);
        /* dh_{t-1} = dG_t W_h^T */
        if (st == SPARTAN_OK && t > 0)
            st = spartan_gemm_dense(ctx, dense, 0, 0, 1.0f, &dgtv, &wht, 0.0f, &dhv);
    }
    /* dW_h = sum over t >= 1 of h_{t-1}^T dG_t: one GEMM over the (T - 1) B rows */
    spartan_tensor hv, gv;
    if (st == SPARTAN_OK && T == 1) st = spartan_tensor_fill(&dwh, 0.0f);
    if (st == SPARTAN_OK && T > 1) {
        st = sp_view2(&hv, S->hrev, (T - 1) * B, H);
        if (st == SPARTAN_OK) st = sp_view2(&gv, S->grev, (T - 1) * B, H4);
        if (st == SPARTAN_OK) st = spartan_gemm_dense(ctx, dense, 1, 0, 1.0f, &hv, &gv, 0.0f, &dwh);
    }
    if (st == SPARTAN_OK) st = spartan_bias_grad(ctx, &dgxv, &db);
    if (st == SPARTAN_OK) st = sp_view2(&xv, x, B * T, S->F);
    if (st == SPARTAN_OK) st = spartan_gemm_dense(ctx, dense, 1, 0, 1.0f, &xv, &dgxv, 0.0f, &dwx);
    /* the kept weights' gradients placed back among zeros, unless the update follows, which reads
     * them where they are (lstm_update): a dropped unit's weights get no gradient this step */
    if (st == SPARTAN_OK && r.mode == LSTM_ROWS && !s->update) {
        st = sp_row_scatter(ctx, S->dwxc, 4 * S->F, S->H, NULL, &L->rows, 1.0f, S->dwx);
        if (st == SPARTAN_OK) st = dwh_rows(L, ctx, H);
        if (st == SPARTAN_OK)
            st = sp_row_scatter(ctx, S->whr, S->H, 4 * S->H, &L->rows, NULL, 1.0f, S->dwh);
        if (st == SPARTAN_OK)
            st = sp_row_scatter(ctx, S->dbc, 4, S->H, NULL, &L->rows, 1.0f, S->db);
    }
    if (st == SPARTAN_OK) st = sp_layer_done(L, s, SPARTAN_PASS_BWD_WEIGHT);
    if (st == SPARTAN_OK && L->need_dx) {
        spartan_tensor dxv;
        st = sp_view2(&dxv, L->dx, B * T, S->F);
        if (st == SPARTAN_OK)
            st = spartan_gemm_dense(ctx, dense, 0, 1, 1.0f, &dgxv, &r.wx, 0.0f, &dxv);
        if (st == SPARTAN_OK) st = sp_layer_done(L, s, SPARTAN_PASS_BWD_INPUT);
    }
    return st;
}

/* LSTM_ROWS: SGD on the kept weights in place from their gradients (sp_row_sgd; the dropped
 * ones' decay and momentum still run); otherwise SGD on each parameter. */
static spartan_status lstm_update(sp_layer *L, const sp_step *s, const spartan_train_config *cfg) {
    if (mode_of(L, s) != LSTM_ROWS) return sp_layer_sgd(L, s, cfg);
    lstm_state *S = L->state;
    spartan_context *ctx = s->ctx;
    const size_t F = S->F, H = S->H, Hc = L->rows.count;
    const float lr = cfg->lr, mom = cfg->momentum, wd = cfg->weight_decay;
    spartan_status st =
        sp_row_sgd(ctx, S->wx, S->dwxc, S->vwx, 4 * F, H, NULL, &L->rows, 1.0f, lr, mom, wd);
    if (st == SPARTAN_OK) st = dwh_rows(L, ctx, Hc);
    if (st == SPARTAN_OK)
        st = sp_row_sgd(ctx, S->wh, S->whr, S->vwh, H, 4 * H, &L->rows, NULL, 1.0f, lr, mom, wd);
    if (st == SPARTAN_OK)
        st = sp_row_sgd(ctx, S->b, S->dbc, S->vb, 4, H, NULL, &L->rows, 1.0f, lr, mom, wd);
    return st;
}

const sp_layer_ops sp_layer_lstm = {
    .name = "lstm",
    .takes_outputs = 1,
    .keys = "p",
    .p_is_rate = 1,
    .p_optional = 1,
    .defaults = lstm_defaults,
    .shape = lstm_shape,
    .prepare = lstm_prepare,
    .forward = lstm_forward,
    .backward = lstm_backward,
    .params = lstm_params,
    .update = lstm_update,
    .release = lstm_release,
};
