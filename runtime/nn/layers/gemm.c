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

#include "core/rng.h"
#include "nn/layers/layer.h"

void sp_gemm_pass_shape(const sp_layer *L, spartan_pass pass, size_t rows, size_t *m, size_t *n,
                        size_t *k) {
    spartan_gemm_pass p;
    spartan_gemm_pass_init(pass, SPARTAN_FORM_NONE, rows, L->g.k, L->g.n, &p);
    *m = p.m;
    *n = p.gn;
    *k = p.gk;
}

/* He/Kaiming normal weights (std sqrt(2 / fan_in)), zero biases and momenta, from the seed and
 * the layer's index (so adding a layer does not change the others' draws). */
static spartan_status init_params(sp_layer *L, spartan_context *ctx, uint64_t seed) {
    sp_gemm_state *g = &L->g;
    const size_t count = g->k * g->n;
    float *host = malloc((count ? count : 1) * sizeof *host);
    if (!host) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "weights");
    sp_rng r = {seed * 0x9e3779b97f4a7c15ull + L->index + 1};
    const double std = sqrt(2.0 / (double)g->k);
    for (size_t i = 0; i < count; i++) host[i] = (float)(std * sp_rng_normal(&r));
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
    spartan_tensor *t[] = {g->w, g->b, g->dw, g->db, g->vw, g->vb, g->cols, g->dcols, g->wt};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) spartan_tensor_destroy(t[i]);
    spartan_sparse_destroy(g->sx);
    spartan_sparse_destroy(g->sdy);
    spartan_sparse_destroy(g->scols);
    g->scols = NULL;
    sp_sample_free(&g->xs);
    sp_sample_free(&g->gs);
    g->w = g->b = g->dw = g->db = g->vw = g->vb = g->cols = g->dcols = g->wt = NULL;
    g->sx = g->sdy = NULL;
    sp_layer_release_output(L);
}

spartan_path sp_gemm_choose(sp_layer *L, const sp_step *s, spartan_pass pass, size_t rows) {
    sp_gemm_state *g = &L->g;
    /* the sparsity of the operand the pass's sparse form skips */
    const double zeros = g->form[pass] == SP_SPARSE_ON_DY ? L->gz.last : L->xz.last;
    spartan_policy_query q = {L->index, pass, 0, 0, 0, zeros, g->form[pass] != SP_SPARSE_NONE};
    sp_gemm_pass_shape(L, pass, rows, &q.m, &q.n, &q.k);
    const char *reason = NULL;
    spartan_path path = spartan_policy_choose(s->policy, &q, &reason);
    if (!s->recording) return path;
    L->path[pass] = path;
    g->step_zeros[pass] = zeros;
    L->reason[pass] = reason;
    L->engine[pass] = "gemm"; /* a convolution says which of its engines (conv.c) */
    L->calls[pass]++;
    if (path == SPARTAN_PATH_SPARSE) L->sparse_calls[pass]++;
    return path;
}

spartan_status sp_gemm_mark(sp_layer *L, const sp_step *s, spartan_pass pass, int gemm) {
    if (!s->recording) return SPARTAN_OK;
    return sp_marks_add(s->marks, &L->sec[pass], gemm ? &L->g.step_gemm[pass] : NULL);
}

static spartan_status run(sp_layer *L, const sp_step *s, spartan_pass pass, spartan_path path,
                          spartan_gemm_operands *o) {
    spartan_gemm_path dense = spartan_policy_dense_path(s->policy, L->index, pass);
    return spartan_gemm_pass_run(s->ctx, &L->g.pass[pass], path, dense, o);
}

spartan_status sp_gemm_forward_x(sp_layer *L, const sp_step *s, const spartan_tensor *a,
                                 size_t rows) {
    spartan_tensor yv;
    spartan_status st = sp_view2(&yv, L->y, rows, L->g.n);
    if (st != SPARTAN_OK) return st;
    spartan_path path = sp_gemm_choose(L, s, SPARTAN_PASS_FWD, rows);
    if ((st = sp_gemm_mark(L, s, SPARTAN_PASS_FWD, 0)) != SPARTAN_OK) return st;
    spartan_gemm_operands o = {.x = a, .w = L->g.w, .y = &yv};
    st = run(L, s, SPARTAN_PASS_FWD, path, &o);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_FWD, 1);
    /* with a ReLU next, the bias is added by the ReLU as it reads Y: one pass less */
    if (st == SPARTAN_OK && !L->g.bias_in_relu) st = spartan_bias_add(s->ctx, &yv, L->g.b);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_FWD, 0);
    return st;
}

spartan_status sp_gemm_backward_x(sp_layer *L, const sp_step *s, const spartan_tensor *a,
                                  const spartan_tensor *dy, spartan_tensor *da) {
    sp_gemm_state *g = &L->g;
    spartan_context *ctx = s->ctx;
    const size_t rows = g->m;
    spartan_tensor dyv;
    spartan_status st = sp_view2(&dyv, dy, rows, g->n);
    if (st != SPARTAN_OK) return st;
    if ((st = spartan_bias_grad(ctx, &dyv, g->db)) != SPARTAN_OK) return st;

    const spartan_path S = SPARTAN_PATH_SPARSE;
    spartan_path pw = sp_gemm_choose(L, s, SPARTAN_PASS_BWD_WEIGHT, rows);
    spartan_path pi =
        L->need_dx ? sp_gemm_choose(L, s, SPARTAN_PASS_BWD_INPUT, rows) : SPARTAN_PATH_DENSE;
    const int w_on_dy = g->form[SPARTAN_PASS_BWD_WEIGHT] == SP_SPARSE_ON_DY;
    const int i_on_dy = g->form[SPARTAN_PASS_BWD_INPUT] == SP_SPARSE_ON_DY;
    const int dy_compacted = pw == S && w_on_dy;
    const int x_compacted = (pw == S && !w_on_dy) || (pi == S && !i_on_dy);
    const int sample_x = s->sampling && !L->x_source;
    /* a sampled operand no compaction counts is counted by a monitor */
    if (s->sampling && !dy_compacted) {
        st = spartan_monitor(ctx, &dyv, g->sdy);
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
        .x = a, .w = g->w, .dy = &dyv, .dw = g->dw, .wt = g->wt, .sx = g->sx, .sdy = g->sdy};
    if (pw == S && !w_on_dy && pi == S && !i_on_dy) o.x_forms_extra = SPARTAN_COMPACT_ROWS;
    st = run(L, s, SPARTAN_PASS_BWD_WEIGHT, pw, &o);
    if (st == SPARTAN_OK && s->sampling && dy_compacted) st = sp_sample_take(&g->gs);
    if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_BWD_WEIGHT, 1);
    if (st == SPARTAN_OK && L->need_dx) {
        o.dw = NULL;
        o.dx = da;
        st = run(L, s, SPARTAN_PASS_BWD_INPUT, pi, &o);
        if (st == SPARTAN_OK) st = sp_gemm_mark(L, s, SPARTAN_PASS_BWD_INPUT, 1);
    }
    if (st == SPARTAN_OK && sample_x && x_compacted) st = sp_sample_take(&g->xs);
    return st;
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
