/* The GEMM layers' passes (fc.c, conv.c): each of the three GEMMs asks the policy for its path
 * and runs through its pass descriptor (spartan_gemm_pass_run, ops.h): the forward GEMM skips X's
 * zeros on the fly, the backward GEMMs run on X or dY compacted once per step.
 *
 * Sparsity samples: X and dY are counted once per sampled step, in the backward pass, by the
 * compaction when a sparse pass makes one, else by a monitor; an fc layer fed by a monitored layer
 * (ReLU, pool, dropout; through flattens) takes that count instead. The counts are read at the
 * step's end (sp_sample): the policy decides on the latest sample before this step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "nn/layers/layer.h"
#include "nn/wpath.h"

void sp_gemm_pass_shape(const sp_layer *L, spartan_pass pass, size_t rows, size_t *m, size_t *n,
                        size_t *k) {
    spartan_gemm_pass p;
    spartan_gemm_pass_init(pass, SPARTAN_FORM_NONE, rows, L->g.k, L->g.n, &p);
    *m = p.m;
    *n = p.gn;
    *k = p.gk;
}

uint64_t sp_gemm_w0_key(const sp_layer *L, uint64_t seed) {
    return seed * 0x9e3779b97f4a7c15ull + L->index + 1;
}

float sp_gemm_w0_scale(const sp_layer *L) {
    return sp_rng_w0_scale(sqrt(2.0 / (double)L->g.k));
}

/* He/Kaiming weights (std sqrt(2 / fan_in); sp_rng_w0: nearly normal, regenerable on the device),
 * from the seed and the layer's index (so adding a layer does not change the others' draws), zero
 * biases and momenta. */
static spartan_status init_params(sp_layer *L, spartan_context *ctx, uint64_t seed) {
    sp_gemm_state *g = &L->g;
    const size_t count = g->k * g->n;
    if (count > 0xffffffffu) return sp_invalid(ctx, "%s: %zu weights", L->name, count);
    float *host = malloc((count ? count : 1) * sizeof *host);
    if (!host) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "weights");
    const uint64_t key = sp_gemm_w0_key(L, seed);
    const float scale = sp_gemm_w0_scale(L);
    for (size_t i = 0; i < count; i++) host[i] = sp_rng_w0(key, (uint32_t)i, scale);
    spartan_status st = spartan_tensor_write(g->w, host, count);
    free(host);
    if (st == SPARTAN_OK) st = spartan_tensor_fill(g->b, 0.0f);
    if (st == SPARTAN_OK) st = spartan_tensor_fill(g->vw, 0.0f);
    if (st == SPARTAN_OK) st = spartan_tensor_fill(g->vb, 0.0f);
    return st;
}

spartan_status sp_gemm_prepare(sp_layer *L, spartan_context *ctx, const spartan_train_config *cfg,
                               size_t rows, size_t k) {
    const size_t batch = cfg->batch;
    sp_gemm_state *g = &L->g;
    L->batch = batch;
    spartan_status st = SPARTAN_OK;
    g->m = rows;
    g->n = L->out_c;
    g->k = k;
    for (int p = 0; p < SPARTAN_PASS_COUNT && st == SPARTAN_OK; p++)
        st = spartan_gemm_pass_init((spartan_pass)p, (spartan_sparse_form)g->form[p], rows, k, g->n,
                                    &g->pass[p]);
#define TRY(call)                                                                                  \
    do {                                                                                           \
        if (st == SPARTAN_OK) st = (call);                                                         \
    } while (0)
    TRY(sp_tensor4(ctx, batch, L->out_h, L->out_w, L->out_c, &L->y));
    if (L->need_dx) TRY(sp_tensor4(ctx, batch, L->in_h, L->in_w, L->in_c, &L->dx));
    TRY(spartan_tensor_create_2d(ctx, k, g->n, &g->w));
    TRY(spartan_tensor_create_2d(ctx, k, g->n, &g->dw));
    TRY(spartan_tensor_create_2d(ctx, k, g->n, &g->vw));
    TRY(spartan_tensor_create_2d(ctx, 1, g->n, &g->b));
    TRY(spartan_tensor_create_2d(ctx, 1, g->n, &g->db));
    TRY(spartan_tensor_create_2d(ctx, 1, g->n, &g->vb));
    /* X's monitor: a convolution's counts its input images (the patch matrix, when one is
     * made, has its own compaction: conv.c) */
    if (g->conv)
        TRY(spartan_sparse_create(ctx, batch * L->in_h * L->in_w, L->in_c, &g->sx));
    else
        TRY(spartan_sparse_create(ctx, rows, k, &g->sx));
    if (g->form[SPARTAN_PASS_BWD_INPUT] == SP_SPARSE_ON_DY)
        TRY(spartan_tensor_create_2d(ctx, g->n, k, &g->wt));
    TRY(spartan_sparse_create(ctx, rows, g->n, &g->sdy));
    TRY(sp_sample_init(ctx, &g->xs, g->sx, &L->xz));
    TRY(sp_sample_init(ctx, &g->gs, g->sdy, &L->gz));
#undef TRY
    snprintf(g->wname, sizeof g->wname, "%s.weight", L->name);
    snprintf(g->bname, sizeof g->bname, "%s.bias", L->name);
    if (!g->wrank) {
        g->wrank = 2;
        g->wshape[0] = k;
        g->wshape[1] = g->n;
    }
    return st == SPARTAN_OK ? init_params(L, ctx, cfg->seed) : st;
}

void sp_gemm_release(sp_layer *L) {
    sp_gemm_state *g = &L->g;
    spartan_tensor *t[] = {g->w,     g->b,  g->dw, g->db, g->vw,  g->vb, g->cols,
                           g->dcols, g->wt, L->wc, L->bc, L->dwc, L->dbc};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) spartan_tensor_destroy(t[i]);
    sp_wpath_release(L);
    spartan_sparse_destroy(g->sx);
    spartan_sparse_destroy(g->sdy);
    spartan_sparse_destroy(g->scols);
    g->scols = NULL;
    sp_sample_free(&g->xs);
    sp_sample_free(&g->gs);
    g->w = g->b = g->dw = g->db = g->vw = g->vb = g->cols = g->dcols = g->wt = NULL;
    L->wc = L->bc = L->dwc = L->dbc = NULL;
    g->sx = g->sdy = NULL;
    sp_layer_release_output(L);
}

/* The policy's path for one pass of shape m x n x k (spartan_policy_query), recorded under
 * `engine` when the step records. */
static spartan_path choose(sp_layer *L, const sp_step *s, spartan_pass pass, size_t m, size_t n,
                           size_t k, const char *engine) {
    sp_gemm_state *g = &L->g;
    /* the sparsity of the operand the pass's sparse form skips */
    const double zeros = g->form[pass] == SP_SPARSE_ON_DY ? L->gz.last : L->xz.last;
    spartan_policy_query q = {L->index, pass, m, n, k, zeros, g->form[pass] != SP_SPARSE_NONE};
    const char *reason = NULL;
    spartan_path path = spartan_policy_choose(s->policy, &q, &reason);
    if (!s->recording) return path;
    L->path[pass] = path;
    g->step_zeros[pass] = zeros;
    L->reason[pass] = reason;
    L->engine[pass] = engine;
    L->calls[pass]++;
    if (path == SPARTAN_PATH_SPARSE) L->sparse_calls[pass]++;
    return path;
}

spartan_path sp_gemm_choose(sp_layer *L, const sp_step *s, spartan_pass pass, size_t rows) {
    size_t m, n, k;
    sp_gemm_pass_shape(L, pass, rows, &m, &n, &k);
    /* a convolution says which of its engines (conv.c) */
    return choose(L, s, pass, m, n, k, "gemm");
}

spartan_status sp_gemm_mark(sp_layer *L, const sp_step *s, spartan_pass pass, int gemm) {
    if (!s->recording) return SPARTAN_OK;
    return sp_marks_add(s->marks, &L->sec[pass], gemm ? &L->g.step_gemm[pass] : NULL);
}

/* The matrices a step's GEMMs run on: the layer's own, or (row dropout) views of the kept
 * neurons' weights, bias and gradients with descriptors of their shape. */
typedef struct gemm_view {
    const spartan_gemm_pass *d; /* [SPARTAN_PASS_COUNT] */
    const spartan_tensor *w, *b;
    spartan_tensor *dw, *db, *wt;
    const char *engine;
} gemm_view;

static gemm_view whole_view(sp_layer *L) {
    sp_gemm_state *g = &L->g;
    return (gemm_view){g->pass, g->w, g->b, g->dw, g->db, g->wt, "gemm"};
}

static spartan_path view_choose(sp_layer *L, const sp_step *s, const gemm_view *v,
                                spartan_pass pass) {
    const spartan_gemm_pass *d = &v->d[pass];
    return choose(L, s, pass, d->m, d->gn, d->gk, v->engine);
}

static spartan_status run(sp_layer *L, const sp_step *s, const gemm_view *v, spartan_pass pass,
                          spartan_path path, spartan_gemm_operands *o) {
    spartan_gemm_path dense = spartan_policy_dense_path(s->policy, L->index, pass);
    return spartan_gemm_pass_run(s->ctx, &v->d[pass], path, dense, o);
}

/* Whether this step's pass runs the weight-sparse GEMM (nn/wpath.c; the whole W only), and then
 * what the step records of it in the policy's place. */
static int weight_sparse(sp_layer *L, const sp_step *s, const gemm_view *v, spartan_pass pass) {
    if (!L->g.ws_use[pass] || v->w != L->g.w) return 0;
    if (s->recording) {
        L->engine[pass] = "wsparse";
        L->reason[pass] = "W's non-zeros only (Dropback): measured faster";
        L->calls[pass]++;
    }
    return 1;
}

/* Y = X . W (+ b) into yv, X (a) and Y as matrices of v's shape. */
static spartan_status forward(sp_layer *L, const sp_step *s, const gemm_view *v,
                              const spartan_tensor *a, spartan_tensor *yv) {
    const int ws = weight_sparse(L, s, v, SPARTAN_PASS_FWD);
    spartan_path path = ws ? SPARTAN_PATH_DENSE : view_choose(L, s, v, SPARTAN_PASS_FWD);
    spartan_status st = sp_gemm_mark(L, s, SPARTAN_PASS_FWD, 0);
    if (st != SPARTAN_OK) return st;
    spartan_gemm_operands o = {.x = a, .w = v->w, .y = yv};
    st = ws ? spartan_gemm_wsparse_fwd(s->ctx, a, v->w, L->g.ws, yv)
            : run(L, s, v, SPARTAN_PASS_FWD, path, &o);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_FWD, 1);
    /* with a ReLU next, the bias is added by the ReLU as it reads Y: one pass less */
    if (st == SPARTAN_OK && !L->g.bias_in_relu) st = spartan_bias_add(s->ctx, yv, v->b);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_FWD, 0);
    return st;
}

spartan_status sp_gemm_forward_x(sp_layer *L, const sp_step *s, const spartan_tensor *a,
                                 size_t rows) {
    spartan_tensor yv;
    spartan_status st = sp_view2(&yv, L->y, rows, L->g.n);
    const gemm_view v = whole_view(L);
    return st == SPARTAN_OK ? forward(L, s, &v, a, &yv) : st;
}

/* Over the full batch: db, dW (bwd_weight), then, when da, dX (bwd_input); a: X, dyv: dY, as
 * matrices of v's shape. */
static spartan_status backward(sp_layer *L, const sp_step *s, const gemm_view *v,
                               const spartan_tensor *a, const spartan_tensor *dyv,
                               spartan_tensor *da) {
    sp_gemm_state *g = &L->g;
    spartan_context *ctx = s->ctx;
    spartan_status st = spartan_bias_grad(ctx, dyv, v->db);
    if (st != SPARTAN_OK) return st;

    const spartan_path S = SPARTAN_PATH_SPARSE;
    spartan_path pw = view_choose(L, s, v, SPARTAN_PASS_BWD_WEIGHT);
    const int wi = da && weight_sparse(L, s, v, SPARTAN_PASS_BWD_INPUT);
    spartan_path pi = da && !wi ? view_choose(L, s, v, SPARTAN_PASS_BWD_INPUT) : SPARTAN_PATH_DENSE;
    const int w_on_dy = g->form[SPARTAN_PASS_BWD_WEIGHT] == SP_SPARSE_ON_DY;
    const int i_on_dy = g->form[SPARTAN_PASS_BWD_INPUT] == SP_SPARSE_ON_DY;
    const int dy_compacted = pw == S && w_on_dy;
    const int x_compacted = (pw == S && !w_on_dy) || (pi == S && !i_on_dy);
    const int sample_x = s->sampling && !L->x_source;
    /* a sampled operand no compaction counts is counted by a monitor */
    if (s->sampling && !dy_compacted) {
        st = spartan_monitor(ctx, dyv, g->sdy);
        if (st == SPARTAN_OK) st = sp_sample_take(&g->gs);
        if (st != SPARTAN_OK) return st;
    }
    if (sample_x && !x_compacted) {
        st = spartan_monitor(ctx, a, g->sx);
        if (st == SPARTAN_OK) st = sp_sample_take(&g->xs);
        if (st != SPARTAN_OK) return st;
    }
    /* The segment so far (bias gradient, monitors) is charged to bwd_weight; so is a compaction
     * of X that both sparse passes share (built once, with both forms). */
    if ((st = sp_gemm_mark(L, s, SPARTAN_PASS_BWD_WEIGHT, 0)) != SPARTAN_OK) return st;
    spartan_gemm_operands o = {
        .x = a, .w = v->w, .dy = dyv, .dw = v->dw, .wt = v->wt, .sx = g->sx, .sdy = g->sdy};
    if (pw == S && !w_on_dy && pi == S && !i_on_dy) o.x_forms_extra = SPARTAN_COMPACT_ROWS;
    st = run(L, s, v, SPARTAN_PASS_BWD_WEIGHT, pw, &o);
    if (st == SPARTAN_OK && s->sampling && dy_compacted) st = sp_sample_take(&g->gs);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_BWD_WEIGHT, 1);
    if (st == SPARTAN_OK && da) {
        o.dw = NULL;
        o.dx = da;
        st = wi ? spartan_gemm_wsparse_bwd_input(ctx, dyv, v->w, g->ws, da)
                : run(L, s, v, SPARTAN_PASS_BWD_INPUT, pi, &o);
        if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_BWD_INPUT, 1);
    }
    if (st == SPARTAN_OK && sample_x && x_compacted) st = sp_sample_take(&g->xs);
    return st;
}

spartan_status sp_gemm_backward_x(sp_layer *L, const sp_step *s, const spartan_tensor *a,
                                  const spartan_tensor *dy, spartan_tensor *da) {
    spartan_tensor dyv;
    spartan_status st = sp_view2(&dyv, dy, L->g.m, L->g.n);
    const gemm_view v = whole_view(L);
    return st == SPARTAN_OK ? backward(L, s, &v, a, &dyv, L->need_dx ? da : NULL) : st;
}

size_t sp_gemm_params(const sp_layer *L, spartan_param *out) {
    const sp_gemm_state *g = &L->g;
    if (out) {
        out[0] = (spartan_param){g->wname, g->w, g->dw, g->vw, g->wrank, {0}};
        memcpy(out[0].shape, g->wshape, sizeof out[0].shape);
        out[1] = (spartan_param){g->bname, g->b, g->db, g->vb, 1, {g->n}};
    }
    return 2;
}

void sp_gemm_collect(sp_layer *L) {
    sp_sample_collect(&L->g.gs);
    if (L->x_source) {
        /* the count of the layer that made X (collected first: it comes before) */
        if (L->x_source->sampled) {
            sp_zeros_record(&L->xz, L->x_source->xz.last);
            L->samples++;
            L->sampled = 1;
        }
        return;
    }
    if (sp_sample_collect(&L->g.xs)) {
        L->samples++;
        L->sampled = 1;
    }
}

/* ---- Row dropout around an fc layer (dropout.c): the GEMMs over the kept neurons alone --------
 */

/* The most neurons any pattern of D's plan keeps, and the mean kept under its distribution,
 * rounded (n, n without a plan). */
static void rows_kept(const sp_layer *D, size_t n, size_t *most, size_t *mean) {
    *most = *mean = n;
    if (!D || !D->ard) return;
    double sum = 0.0;
    *most = 0;
    for (size_t i = 0; i < D->ard->count; i++) {
        const sp_row_pattern p = {n, D->ard->period[i], D->ard->keep[i], 0};
        const size_t c = sp_row_pattern_count(&p);
        *most = c > *most ? c : *most;
        sum += D->ard->prob[i] * (double)c;
    }
    *mean = (size_t)(sum + 0.5);
    if (*mean < 1) *mean = 1;
}

spartan_status sp_gemm_rows_prepare(sp_layer *L, spartan_context *ctx) {
    sp_gemm_state *g = &L->g;
    size_t kc, nc;
    rows_kept(L->drop_in, g->k, &kc, &L->kc_mean);
    rows_kept(L->drop_out, g->n, &nc, &L->nc_mean);
    spartan_status st = spartan_tensor_create_2d(ctx, kc, nc, &L->wc);
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, kc, nc, &L->dwc);
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, 1, nc, &L->bc);
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, 1, nc, &L->dbc);
    return st;
}

/* The maps of the dropouts before and after L (NULL: none there). */
static void rows_maps(const sp_layer *L, const sp_row_maps **rin, const sp_row_maps **rout) {
    *rin = L->drop_in ? &L->drop_in->rows : NULL;
    *rout = L->drop_out ? &L->drop_out->rows : NULL;
}

/* A step's GEMMs over the kept neurons: the views of the kept weights, bias and gradients, and
 * the passes' descriptors of that shape; X's and dY's sparsity descriptors take its width. */
typedef struct rows_state {
    const sp_row_maps *rin, *rout;
    spartan_gemm_pass d[SPARTAN_PASS_COUNT];
    spartan_tensor wc, bc, dwc, dbc, wt;
    gemm_view v;
} rows_state;

/* This step's patterns (drawn by the first layer of the step that needs them), the kept counts,
 * and the views of the kept weights and bias for `rows` rows of X. */
static spartan_status rows_setup(sp_layer *L, const sp_step *s, size_t rows, rows_state *r) {
    sp_gemm_state *g = &L->g;
    spartan_status st = SPARTAN_OK;
    if (L->drop_in) st = sp_dropout_rows(L->drop_in, s);
    if (st == SPARTAN_OK && L->drop_out) st = sp_dropout_rows(L->drop_out, s);
    if (st != SPARTAN_OK) return st;
    rows_maps(L, &r->rin, &r->rout);
    const size_t kc = L->kc = r->rin ? r->rin->count : g->k;
    const size_t nc = L->nc = r->rout ? r->rout->count : g->n;
    for (int p = 0; p < SPARTAN_PASS_COUNT && st == SPARTAN_OK; p++)
        st = spartan_gemm_pass_init((spartan_pass)p, (spartan_sparse_form)g->form[p], rows, kc, nc,
                                    &r->d[p]);
    if (st == SPARTAN_OK) st = sp_view2(&r->wc, L->wc, kc, nc);
    if (st == SPARTAN_OK) st = sp_view2(&r->bc, L->bc, 1, nc);
    if (st == SPARTAN_OK) st = sp_view2(&r->dwc, L->dwc, kc, nc);
    if (st == SPARTAN_OK) st = sp_view2(&r->dbc, L->dbc, 1, nc);
    if (st == SPARTAN_OK && g->wt) st = sp_view2(&r->wt, g->wt, nc, kc);
    if (st == SPARTAN_OK) st = sp_sparse_reshape(g->sx, rows, kc);
    if (st == SPARTAN_OK) st = sp_sparse_reshape(g->sdy, rows, nc);
    r->v = (gemm_view){r->d,
                       &r->wc,
                       r->rout ? &r->bc : g->b,
                       &r->dwc,
                       r->rout ? &r->dbc : g->db,
                       g->wt ? &r->wt : NULL,
                       "rows"};
    return st;
}

/* The inverted-dropout scale of the outputs' pattern, carried by the kept weights and bias. */
static float rows_scale(const sp_layer *L) {
    return L->drop_out ? 1.0f / (1.0f - L->drop_out->rate) : 1.0f;
}

double sp_gemm_rows_work(const sp_layer *L) {
    if (!L->kc || !L->nc || !L->kc_mean || !L->nc_mean) return 1.0;
    return (double)(L->kc * L->nc) / (double)(L->kc_mean * L->nc_mean);
}

spartan_status sp_gemm_forward_rows(sp_layer *L, const sp_step *s, const spartan_tensor *x) {
    sp_gemm_state *g = &L->g;
    rows_state r;
    spartan_tensor a, yv;
    spartan_status st = rows_setup(L, s, s->count, &r);
    if (st == SPARTAN_OK) st = sp_view2(&a, x, s->count, L->kc);
    if (st == SPARTAN_OK) st = sp_view2(&yv, L->y, s->count, L->nc);
    if (st != SPARTAN_OK) return st;
    const float sc = rows_scale(L);
    st = sp_row_gather(s->ctx, g->w, g->k, g->n, r.rin, r.rout, sc, &r.wc);
    if (st == SPARTAN_OK && r.rout)
        st = sp_row_gather(s->ctx, g->b, 1, g->n, NULL, r.rout, sc, &r.bc);
    /* the gathers are charged to the forward pass, outside its GEMM's time */
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_FWD, 0);
    /* with a ReLU next, it adds the (kept) bias as it reads Y */
    return st == SPARTAN_OK ? forward(L, s, &r.v, &a, &yv) : st;
}

spartan_status sp_gemm_backward_rows(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                     const spartan_tensor *dy) {
    sp_gemm_state *g = &L->g;
    const size_t rows = g->m;
    rows_state r;
    spartan_tensor a, dyv, dxv;
    spartan_status st = rows_setup(L, s, rows, &r);
    if (st == SPARTAN_OK) st = sp_view2(&a, x, rows, L->kc);
    if (st == SPARTAN_OK) st = sp_view2(&dyv, dy, rows, L->nc);
    if (st == SPARTAN_OK && L->need_dx) st = sp_view2(&dxv, L->dx, rows, L->kc);
    if (st == SPARTAN_OK) st = backward(L, s, &r.v, &a, &dyv, L->need_dx ? &dxv : NULL);
    if (st != SPARTAN_OK || s->update) return st;
    /* the gradients of the kept weights, scaled like them, placed back among zeros (a dropped
     * neuron's weights get no gradient this step); when the update follows it reads them where
     * they are (sp_gemm_rows_update) */
    const float sc = rows_scale(L);
    if (r.rout) st = sp_row_scatter(s->ctx, &r.dbc, 1, g->n, NULL, r.rout, sc, g->db);
    if (st == SPARTAN_OK) st = sp_row_scatter(s->ctx, &r.dwc, g->k, g->n, r.rin, r.rout, sc, g->dw);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_BWD_WEIGHT, 0);
    return st;
}

spartan_status sp_gemm_rows_update(sp_layer *L, const sp_step *s, const spartan_train_config *cfg) {
    sp_gemm_state *g = &L->g;
    const sp_row_maps *rin, *rout;
    rows_maps(L, &rin, &rout);
    const float sc = rows_scale(L);
    spartan_tensor dwc, dbc;
    spartan_status st = sp_view2(&dwc, L->dwc, L->kc, L->nc);
    if (st == SPARTAN_OK) st = sp_view2(&dbc, L->dbc, 1, L->nc);
    if (st == SPARTAN_OK)
        st = sp_row_sgd(s->ctx, g->w, &dwc, g->vw, g->k, g->n, rin, rout, sc, cfg->lr,
                        cfg->momentum, cfg->weight_decay);
    if (st != SPARTAN_OK) return st;
    return rout ? sp_row_sgd(s->ctx, g->b, &dbc, g->vb, 1, g->n, NULL, rout, sc, cfg->lr,
                             cfg->momentum, cfg->weight_decay)
                : spartan_sgd_step(s->ctx, g->b, g->db, g->vb, cfg->lr, cfg->momentum,
                                   cfg->weight_decay);
}

/* ---- Tile dropout before an fc layer (dropout.c): the GEMMs skip W's dropped tiles ----------- */

/* The tile GEMMs are the own dense kernel's: no sparse form, no policy (its slots are the whole
 * GEMM's). */
static void tiles_record(sp_layer *L, const sp_step *s, spartan_pass pass) {
    if (!s->recording) return;
    L->path[pass] = SPARTAN_PATH_DENSE;
    L->reason[pass] = "tile dropout: the dense GEMM skipping the dropped tiles of W";
    L->engine[pass] = "tiles";
    L->calls[pass]++;
}

static float tiles_scale(const sp_layer *L) {
    return 1.0f / (1.0f - L->drop_tiles->rate);
}

spartan_status sp_gemm_forward_tiles(sp_layer *L, const sp_step *s, const spartan_tensor *x) {
    sp_gemm_state *g = &L->g;
    spartan_context *ctx = s->ctx;
    const sp_row_pattern *p = sp_dropout_tiles(L->drop_tiles, s);
    spartan_tensor a, yv;
    spartan_status st = sp_view2(&a, x, s->count, g->k);
    if (st == SPARTAN_OK) st = sp_view2(&yv, L->y, s->count, g->n);
    if (st != SPARTAN_OK) return st;
    tiles_record(L, s, SPARTAN_PASS_FWD);
    st = sp_gemm_mark(L, s, SPARTAN_PASS_FWD, 0);
    if (st == SPARTAN_OK)
        st = sp_gemm_tiles(ctx, SP_TILES_FORWARD, p, tiles_scale(L), &a, g->w, &yv);
    /* with a ReLU next, it adds the bias as it reads Y */
    if (st == SPARTAN_OK && !g->bias_in_relu) st = spartan_bias_add(ctx, &yv, g->b);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_FWD, 0);
    return st;
}

spartan_status sp_gemm_backward_tiles(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                      const spartan_tensor *dy) {
    sp_gemm_state *g = &L->g;
    spartan_context *ctx = s->ctx;
    const sp_row_pattern *p = sp_dropout_tiles(L->drop_tiles, s);
    const float sc = tiles_scale(L);
    spartan_tensor a, dyv, dxv;
    spartan_status st = sp_view2(&a, x, g->m, g->k);
    if (st == SPARTAN_OK) st = sp_view2(&dyv, dy, g->m, g->n);
    if (st == SPARTAN_OK && L->need_dx) st = sp_view2(&dxv, L->dx, g->m, g->k);
    if (st != SPARTAN_OK) return st;
    tiles_record(L, s, SPARTAN_PASS_BWD_WEIGHT);
    st = spartan_bias_grad(ctx, &dyv, g->db);
    /* with the update next the dropped tiles are left unwritten (sp_gemm_tiles_update) */
    if (st == SPARTAN_OK)
        st = sp_gemm_tiles(ctx, s->update ? SP_TILES_WEIGHT_KEPT : SP_TILES_WEIGHT, p, sc, &a, &dyv,
                           g->dw);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_BWD_WEIGHT, 0);
    if (st == SPARTAN_OK && L->need_dx) {
        tiles_record(L, s, SPARTAN_PASS_BWD_INPUT);
        st = sp_gemm_tiles(ctx, SP_TILES_INPUT, p, sc, &dyv, g->w, &dxv);
        if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_BWD_INPUT, 0);
    }
    return st;
}

spartan_status sp_gemm_tiles_update(sp_layer *L, const sp_step *s,
                                    const spartan_train_config *cfg) {
    sp_gemm_state *g = &L->g;
    const sp_row_pattern *p = sp_dropout_tiles(L->drop_tiles, s);
    spartan_status st =
        sp_gemm_tiles_sgd(s->ctx, p, g->w, g->dw, g->vw, cfg->lr, cfg->momentum, cfg->weight_decay);
    return st == SPARTAN_OK ? spartan_sgd_step(s->ctx, g->b, g->db, g->vb, cfg->lr, cfg->momentum,
                                               cfg->weight_decay)
                            : st;
}
