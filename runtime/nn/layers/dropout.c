/* Dropout, in training steps only; two kinds (spartan_dropout_kind, the configuration's for every
 * dropout layer):
 * - bernoulli: each element is zeroed with probability rate and the rest scaled by
 *   1 / (1 - rate). The mask is a counter-based hash of (seed, step, layer, element), never
 *   stored: the backward pass draws the same mask again.
 * - row: Approximate Random Dropout (ard.h): a step drops whole neurons (features of an image,
 *   the same for every image) in a regular pattern drawn from (seed, step, the layer's rank
 *   among the dropout layers) out of the distribution its plan searched at prepare. Between
 *   fc -> relu and fc (compact) the fc layers compute the kept neurons alone and this layer
 *   passes its input on; elsewhere it applies the pattern as a mask, both ways.
 * - tile: Approximate Random Dropout's tile kind, DropConnect by tiles: before an fc layer (where
 *   the own GEMM kernels run) this layer passes its input on and the fc drops whole tiles of its
 *   weight matrix, a pattern over the rows of tiles drawn like row's (sp_gemm_tiles); elsewhere
 *   it drops like bernoulli. */
#include <stdlib.h>

#include "nn/layers/layer.h"

static void dropout_defaults(spartan_layer_spec *spec) {
    if (spec->rate < 0.0f) spec->rate = 0.5f;
}

static spartan_status dropout_shape(spartan_context *ctx, sp_layer *L) {
    const float p = L->spec.rate;
    if (!(p >= 0.0f && p < 1.0f)) return sp_invalid(ctx, "p = %g is not in [0, 1)", (double)p);
    L->out_h = L->in_h;
    L->out_w = L->in_w;
    L->out_c = L->in_c;
    return SPARTAN_OK;
}

static spartan_status dropout_prepare(sp_layer *L, spartan_context *ctx,
                                      const spartan_train_config *cfg) {
    L->rate = cfg->dropout >= 0.0f ? cfg->dropout : L->spec.rate;
    L->kind = cfg->dropout_kind;
    L->rows_drawn = 0;
    /* compact: it passes its input on both ways and in evaluation; no buffers of its own */
    L->batch = cfg->batch;
    spartan_status st = L->compact ? SPARTAN_OK : sp_layer_prepare_output(L, ctx, cfg->batch, 1);
    const size_t n = L->in_h * L->in_w * L->in_c;
    if (st != SPARTAN_OK) return st;
    if (L->kind == SPARTAN_DROPOUT_ROW) return sp_dropout_plan(L, ctx, n, 1);
    if (L->kind != SPARTAN_DROPOUT_TILE || !L->compact) return SPARTAN_OK;
    /* tile: patterns over the tiles of the next fc's W (n x its outputs) */
    const size_t tile = sp_gemm_tile_size(ctx), outs = L->drop_tiles->spec.outputs;
    return sp_dropout_plan(L, ctx, ((n + tile - 1) / tile) * ((outs + tile - 1) / tile), 0);
}

const sp_row_pattern *sp_dropout_tiles(sp_layer *D, const sp_step *s) {
    if (!(D->rows_drawn && D->rows_step == s->step)) {
        D->tiles = sp_ard_draw(D->ard, s->seed, s->step, D->rank);
        D->rows_drawn = 1;
        D->rows_step = s->step;
    }
    return &D->tiles;
}

spartan_status sp_dropout_plan(sp_layer *L, spartan_context *ctx, size_t n, int maps) {
    L->ard = malloc(sizeof *L->ard);
    if (!L->ard) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "dropout plan");
    if (sp_ard_plan_make(n, L->rate, L->ard) != 0)
        return sp_invalid(ctx,
                          "no %s pattern plan for %zu %s at p = %g (no distribution over the "
                          "patterns keeps 1 - p of them on average)%s",
                          maps ? "row" : "tile", n, maps ? "neurons" : "tiles", (double)L->rate,
                          maps ? ""
                               : ": the next fc layer's weights are too small for tile dropout");
    return maps ? sp_row_maps_create(ctx, n, &L->rows) : SPARTAN_OK;
}

void sp_dropout_plan_release(sp_layer *L) {
    sp_row_maps_release(&L->rows);
    free(L->ard);
    L->ard = NULL;
}

static void dropout_release(sp_layer *L) {
    sp_dropout_plan_release(L);
    sp_layer_release_output(L);
}

spartan_status sp_dropout_rows(sp_layer *D, const sp_step *s) {
    if (D->rows_drawn && D->rows_step == s->step) return SPARTAN_OK;
    const sp_row_pattern p = sp_ard_draw(D->ard, s->seed, s->step, D->rank);
    spartan_status st = sp_row_maps_set(s->ctx, &D->rows, &p);
    D->rows_drawn = st == SPARTAN_OK;
    D->rows_step = s->step;
    return st;
}

static unsigned long long counter(const sp_layer *L, const sp_step *s) {
    return ((unsigned long long)s->step << 8) | (L->index & 0xff);
}

static float scale(const sp_layer *L) {
    return 1.0f / (1.0f - L->rate);
}

/* y = x with the step's mask (both kinds), x and y count images of this layer's shape. */
static spartan_status apply(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                            spartan_tensor *y) {
    if (L->kind != SPARTAN_DROPOUT_ROW) /* tile without an fc next: Bernoulli's */
        return sp_dropout_from(s->ctx, x, y, L->rate, s->seed, counter(L, s),
                               (uint64_t)s->image0 * (L->in_h * L->in_w * L->in_c));
    spartan_status st = sp_dropout_rows(L, s);
    return st == SPARTAN_OK ? sp_row_mask(s->ctx, x, y, L->rows.n, &L->rows, scale(L)) : st;
}

static spartan_status dropout_forward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                      const spartan_tensor **y) {
    if (!s->train || L->compact) { /* evaluation: the identity; compact: the fc layers drop */
        *y = x;
        return L->compact && s->train ? sp_layer_done(L, s, SPARTAN_PASS_FWD) : SPARTAN_OK;
    }
    spartan_tensor xv, yv;
    spartan_status st = sp_view4(&xv, x, s->count, L->in_h, L->in_w, L->in_c);
    if (st == SPARTAN_OK) st = sp_view4(&yv, L->y, s->count, L->out_h, L->out_w, L->out_c);
    if (st != SPARTAN_OK) return st;
    *y = L->y;
    st = apply(L, s, &xv, &yv);
    if (st == SPARTAN_OK) st = sp_layer_sample_output(L, s, &yv);
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_FWD) : st;
}

static spartan_status dropout_backward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                       const spartan_tensor *dy, const spartan_tensor **dx) {
    (void)x;
    if (L->compact) {
        *dx = L->need_dx ? dy : NULL;
        return sp_layer_done(L, s, SPARTAN_PASS_BWD_INPUT);
    }
    *dx = L->need_dx ? L->dx : NULL;
    if (!L->need_dx) return SPARTAN_OK;
    spartan_tensor dyv;
    spartan_status st = sp_view4(&dyv, dy, L->batch, L->out_h, L->out_w, L->out_c);
    if (st == SPARTAN_OK) st = apply(L, s, &dyv, L->dx);
    return st == SPARTAN_OK ? sp_layer_done(L, s, SPARTAN_PASS_BWD_INPUT) : st;
}

const sp_layer_ops sp_layer_dropout = {
    .name = "dropout",
    .keys = "p",
    .p_is_rate = 1,
    .keeps_mask = 1,
    .defaults = dropout_defaults,
    .shape = dropout_shape,
    .prepare = dropout_prepare,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .collect = sp_layer_collect_output,
    .release = dropout_release,
};
