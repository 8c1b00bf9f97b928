/* Fully connected layer: Y = X . W + b, X the input flattened to (images) x (h * w * c). */
#include "nn/layers/layer.h"

static spartan_status fc_shape(spartan_context *ctx, sp_layer *L) {
    if (!L->spec.outputs) return sp_invalid(ctx, "0 outputs");
    L->out_h = L->out_w = 1;
    L->out_c = L->spec.outputs;
    return SPARTAN_OK;
}

static spartan_status fc_prepare(sp_layer *L, spartan_context *ctx,
                                 const spartan_train_config *cfg) {
    return sp_gemm_prepare(L, ctx, cfg, cfg->batch, L->in_h * L->in_w * L->in_c);
}

/* A training step next to a row dropout: the GEMMs run over the kept neurons alone. */
static int rows(const sp_layer *L, const sp_step *s) {
    return s->train && (L->drop_in || L->drop_out);
}

/* A training step after a tile dropout: the GEMMs skip W's dropped tiles. */
static int tiles(const sp_layer *L, const sp_step *s) {
    return s->train && L->drop_tiles;
}

static spartan_status fc_forward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                 const spartan_tensor **y) {
    *y = L->y;
    if (rows(L, s)) return sp_gemm_forward_rows(L, s, x);
    if (tiles(L, s)) return sp_gemm_forward_tiles(L, s, x);
    L->kc = L->nc = 0;
    spartan_tensor a;
    spartan_status st = sp_view2(&a, x, s->count, L->g.k);
    return st == SPARTAN_OK ? sp_gemm_forward_x(L, s, &a, s->count) : st;
}

static spartan_status fc_backward(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                  const spartan_tensor *dy, const spartan_tensor **dx) {
    *dx = L->need_dx ? L->dx : NULL;
    if (rows(L, s)) return sp_gemm_backward_rows(L, s, x, dy);
    if (tiles(L, s)) return sp_gemm_backward_tiles(L, s, x, dy);
    spartan_tensor a, da;
    spartan_status st = sp_view2(&a, x, L->g.m, L->g.k);
    if (st == SPARTAN_OK && L->need_dx) st = sp_view2(&da, L->dx, L->g.m, L->g.k);
    if (st == SPARTAN_OK) st = sp_gemm_backward_x(L, s, &a, dy, L->need_dx ? &da : NULL);
    /* nothing between the GEMM and the end of bwd_input: an empty segment, as for conv's col2im */
    if (st == SPARTAN_OK && L->need_dx && s->recording)
        st = sp_marks_add(s->marks, &L->sec[SPARTAN_PASS_BWD_INPUT], NULL);
    return st;
}

static spartan_status fc_update(sp_layer *L, const sp_step *s, const spartan_train_config *cfg) {
    if (rows(L, s)) return sp_gemm_rows_update(L, s, cfg);
    return tiles(L, s) ? sp_gemm_tiles_update(L, s, cfg) : sp_layer_sgd(L, s, cfg);
}

const sp_layer_ops sp_layer_fc = {
    .name = "fc",
    .gemm = 1,
    .takes_outputs = 1,
    .keys = "",
    .shape = fc_shape,
    .prepare = fc_prepare,
    .forward = fc_forward,
    .backward = fc_backward,
    .update = fc_update,
    .params = sp_gemm_params,
    .collect = sp_gemm_collect,
    .release = sp_gemm_release,
};
