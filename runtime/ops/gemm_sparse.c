/* The sparse GEMMs of the three training passes (kernels_cl/gemm_sparse.cl) over an operand
 * compacted by compact.c. */
#include "ops/ops_internal.h"

/* The kernel arguments that describe one form of s (sp_form in gemm_sparse.cl). */
typedef struct form_args {
    cl_uint lines, sub_lines, tiles_per_line, stride;
    cl_mem tpos, list, off, idx, src;
    cl_uint src_cols, tiles_c, form;
} form_args;

static spartan_status form_of(spartan_context *ctx, const spartan_sparse *s, unsigned form,
                              const char *fn, form_args *f) {
    if (!(s->forms & form))
        return sp_invalid(ctx,
                          "%s: the sparse operand has no %s form: call spartan_compact with "
                          "SPARTAN_COMPACT_%s first",
                          fn, form == SPARTAN_COMPACT_ROWS ? "row" : "column",
                          form == SPARTAN_COMPACT_ROWS ? "ROWS" : "COLS");
    cl_mem src = s->source ? s->source->mem : NULL;
    if (form == SPARTAN_COMPACT_ROWS) {
        *f = (form_args){(cl_uint)s->rows,
                         (cl_uint)s->tile_rows,
                         (cl_uint)s->tiles_c,
                         (cl_uint)(s->tile_rows + 1),
                         s->tpos_row,
                         s->list_row,
                         s->rowoff,
                         s->idx_r,
                         src,
                         (cl_uint)s->cols,
                         (cl_uint)s->tiles_c,
                         0};
    } else {
        *f = (form_args){(cl_uint)s->cols,
                         (cl_uint)s->tile_cols,
                         (cl_uint)s->tiles_r,
                         (cl_uint)(s->tile_cols + 1),
                         s->tpos_col,
                         s->list_col,
                         s->coloff,
                         s->idx_c,
                         src,
                         (cl_uint)s->cols,
                         (cl_uint)s->tiles_c,
                         1};
    }
    return SPARTAN_OK;
}

static spartan_status zero(spartan_tensor *t) {
    return spartan_tensor_fill(t, 0.0f);
}

/* out = op(a) . b on the best dense GEMM (op(a) = a^T with trans_a): what a sparse GEMM computes
 * where the sparse kernels are off (sp_sparse_usable). */
static spartan_status dense(spartan_context *ctx, int trans_a, const spartan_tensor *a,
                            const spartan_tensor *b, spartan_tensor *out) {
    return spartan_gemm_dense(ctx, SPARTAN_GEMM_BEST, trans_a, 0, 1.0f, a, b, 0.0f, out);
}

/* The widest of the four block widths of the kernels (SPARSE_NB vectors, /2, /4, /8) that fits
 * in n columns; *cb: its columns. */
static int block_level(const spartan_context *ctx, size_t n, size_t *cb) {
    size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
    size_t nb = (size_t)sp_tuned_get(&ctx->tuned, "SPARSE_NB");
    int level = 0;
    while (level < 3 && nb > 1 && vec * nb > n) {
        nb = nb / 2;
        level++;
    }
    *cb = vec * nb;
    return level;
}

/* One launch of gemm_sparse_fwd (ROWS form) or gemm_sparse_bwd_weight (COLS form) over slices
 * [part0, part0 + nparts) of per tiles of every line (sp_split_reduce). */
typedef struct lines_call {
    const spartan_sparse *s;
    const form_args *f;
    cl_mem d;
    cl_uint n, trans_out, per;
    int level;
    size_t cb;
} lines_call;

static spartan_status lines_slices(spartan_context *ctx, void *arg, size_t part0, size_t nparts,
                                   cl_mem dst, float alpha, float beta) {
    const lines_call *c = arg;
    const form_args *f = c->f;
    (void)alpha; /* always 1: the sparse GEMMs have no scale */
    cl_uint accumulate = beta != 0.0f, p0 = (cl_uint)part0;
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_WG");
    size_t g[3] = {f->lines, (c->n + c->cb - 1) / c->cb, nparts}, l[3] = {wg, 1, 1};
    sp_arg a[] = {SP_ARG(f->lines),     SP_ARG(f->sub_lines), SP_ARG(f->tiles_per_line),
                  SP_ARG(f->tpos),      SP_ARG(f->list),      SP_ARG(c->s->counts),
                  SP_ARG(f->off),       SP_ARG(f->stride),    SP_ARG(f->idx),
                  SP_ARG(f->src),       SP_ARG(f->src_cols),  SP_ARG(f->tiles_c),
                  SP_ARG(c->d),         SP_ARG(c->n),         SP_ARG(dst),
                  SP_ARG(c->trans_out), SP_ARG(accumulate),   SP_ARG(p0),
                  SP_ARG(c->per)};
    /* rows walk their tile lists on their own; columns walk in step (see the kernels) */
    sp_kernel_id k = f->form == 0 ? SP_K_gemm_sparse_fwd_b0 : SP_K_gemm_sparse_bwd_weight_b0;
    /* one slice: a 2-D range (get_global_id(2) is 0 there) */
    return sp_launch(ctx, (sp_kernel_id)(k + c->level), nparts > 1 ? 3 : 2, g, l, a,
                     (cl_uint)(sizeof a / sizeof a[0]));
}

/* out (lines x n, or n x lines with trans_out) = S's lines gathering rows of d (? x n). A
 * line's tiles are cut into slices the loop bound allows, each work-item's walk counted as if the
 * compiler unrolled nothing (gemm_sparse.cl): per tile its step and the line's non-zeros in it,
 * each of those NB vector FMAs and, when a partial block exists (N not a multiple of the
 * block), VEC single ones. */
static spartan_status lines(spartan_context *ctx, const spartan_sparse *s, const form_args *f,
                            const spartan_tensor *d, spartan_tensor *out, cl_uint trans_out) {
    lines_call c = {s, f, d->mem, 0, trans_out, 0, 0, 0};
    spartan_status st = sp_u32(ctx, spartan_tensor_cols(d), "N", &c.n);
    if (st != SPARTAN_OK) return st;
    c.level = block_level(ctx, c.n, &c.cb);
    size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
    size_t nb = c.cb / vec, tile_len = f->form == 0 ? s->tile_cols : s->tile_rows;
    size_t per_nz = 2 + nb + (c.n % c.cb ? vec : 0); /* a partial block's single FMAs */
    size_t per_tile = 2 + tile_len * per_nz, fixed = 2 * (nb + 1) * vec;
    size_t per,
        parts = sp_slices(f->tiles_per_line, (sp_loop_max(ctx) - fixed) / per_tile, 1, &per);
    c.per = (cl_uint)per;
    return sp_split_reduce(ctx, parts, out->numel, out->mem, 1.0f, 0.0f, lines_slices, &c);
}

static int same_ctx(spartan_context *ctx, const spartan_sparse *s, const spartan_tensor *a,
                    const spartan_tensor *b, const spartan_tensor *c) {
    return s->ctx == ctx && a->ctx == ctx && b->ctx == ctx && (!c || c->ctx == ctx);
}

spartan_status spartan_gemm_sparse_fwd(spartan_context *ctx, const spartan_sparse *x,
                                       const spartan_tensor *w, spartan_tensor *y) {
    const char *fn = "spartan_gemm_sparse_fwd";
    if (!ctx || !x || !w || !y) return sp_invalid(ctx, "%s: NULL argument", fn);
    if (!same_ctx(ctx, x, w, y, NULL)) return sp_invalid(ctx, "%s: objects of another context", fn);
    spartan_status ast = sp_check_apart(ctx, fn, "Y", y, "W", w);
    if (!ast) ast = sp_check_apart(ctx, fn, "Y", y, "the compacted X", x->source);
    if (ast) return ast;
    size_t n = spartan_tensor_cols(w);
    if (spartan_tensor_rows(w) != x->cols || spartan_tensor_rows(y) != x->rows ||
        spartan_tensor_cols(y) != n)
        return sp_invalid(ctx, "%s: X %zux%zu, W %zux%zu, Y %zux%zu (need MxK, KxN, MxN)", fn,
                          x->rows, x->cols, spartan_tensor_rows(w), n, spartan_tensor_rows(y),
                          spartan_tensor_cols(y));
    form_args f;
    spartan_status st = form_of(ctx, x, SPARTAN_COMPACT_ROWS, fn, &f);
    if (st != SPARTAN_OK || y->numel == 0) return st;
    if (x->ntiles == 0) return zero(y);
    if (!sp_sparse_usable(ctx)) return dense(ctx, 0, x->source, w, y);
    return lines(ctx, x, &f, w, y, 0);
}

spartan_status spartan_gemm_sparse_bwd_weight(spartan_context *ctx, const spartan_sparse *x,
                                              const spartan_tensor *dz, spartan_tensor *dw) {
    const char *fn = "spartan_gemm_sparse_bwd_weight";
    if (!ctx || !x || !dz || !dw) return sp_invalid(ctx, "%s: NULL argument", fn);
    if (!same_ctx(ctx, x, dz, dw, NULL))
        return sp_invalid(ctx, "%s: objects of another context", fn);
    spartan_status ast = sp_check_apart(ctx, fn, "dW", dw, "dZ", dz);
    if (!ast) ast = sp_check_apart(ctx, fn, "dW", dw, "the compacted X", x->source);
    if (ast) return ast;
    size_t n = spartan_tensor_cols(dz);
    if (spartan_tensor_rows(dz) != x->rows || spartan_tensor_rows(dw) != x->cols ||
        spartan_tensor_cols(dw) != n)
        return sp_invalid(ctx, "%s: X %zux%zu, dZ %zux%zu, dW %zux%zu (need MxK, MxN, KxN)", fn,
                          x->rows, x->cols, spartan_tensor_rows(dz), n, spartan_tensor_rows(dw),
                          spartan_tensor_cols(dw));
    form_args f;
    spartan_status st = form_of(ctx, x, SPARTAN_COMPACT_COLS, fn, &f);
    if (st != SPARTAN_OK || dw->numel == 0) return st;
    if (x->ntiles == 0) return zero(dw);
    if (!sp_sparse_usable(ctx)) return dense(ctx, 1, x->source, dz, dw);
    return lines(ctx, x, &f, dz, dw, 0);
}

spartan_status spartan_gemm_sparse_bwd_weight_dz(spartan_context *ctx, const spartan_tensor *x,
                                                 const spartan_sparse *dz, spartan_tensor *dw) {
    const char *fn = "spartan_gemm_sparse_bwd_weight_dz";
    if (!ctx || !x || !dz || !dw) return sp_invalid(ctx, "%s: NULL argument", fn);
    if (!same_ctx(ctx, dz, x, dw, NULL))
        return sp_invalid(ctx, "%s: objects of another context", fn);
    spartan_status ast = sp_check_apart(ctx, fn, "dW", dw, "X", x);
    if (!ast) ast = sp_check_apart(ctx, fn, "dW", dw, "the compacted dZ", dz->source);
    if (ast) return ast;
    size_t k = spartan_tensor_cols(x);
    if (spartan_tensor_rows(x) != dz->rows || spartan_tensor_rows(dw) != k ||
        spartan_tensor_cols(dw) != dz->cols)
        return sp_invalid(ctx, "%s: X %zux%zu, dZ %zux%zu, dW %zux%zu (need MxK, MxN, KxN)", fn,
                          spartan_tensor_rows(x), k, dz->rows, dz->cols, spartan_tensor_rows(dw),
                          spartan_tensor_cols(dw));
    form_args f;
    spartan_status st = form_of(ctx, dz, SPARTAN_COMPACT_COLS, fn, &f);
    if (st != SPARTAN_OK || dw->numel == 0) return st;
    if (dz->ntiles == 0) return zero(dw);
    if (!sp_sparse_usable(ctx)) return dense(ctx, 1, x, dz->source, dw);
    /* dW^T = dZ^T . X: the columns of dZ gather rows of X; stored transposed into dW. */
    return lines(ctx, dz, &f, x, dw, 1);
}

/* dX = (dZ . W^T) (*) (X != 0) through the best dense GEMM and a mask: the answer of the
 * masked kernel where it cannot run (dot products too long for the loop bound). */
static spartan_status masked_dense(spartan_context *ctx, const spartan_sparse *mask,
                                   const spartan_tensor *dz, const spartan_tensor *w,
                                   spartan_tensor *dx) {
    cl_uint n;
    spartan_status st = sp_u32(ctx, dx->numel, "dX elements", &n);
    if (st == SPARTAN_OK)
        st = spartan_gemm_dense(ctx, SPARTAN_GEMM_BEST, 0, 1, 1.0f, dz, w, 0.0f, dx);
    if (st != SPARTAN_OK) return st;
    sp_arg a[] = {SP_ARG(dx->mem), SP_ARG(mask->source->mem), SP_ARG(n)};
    return sp_launch_1d(ctx, SP_K_eltwise_mask_zeros, n, a, 3);
}

spartan_status spartan_gemm_sparse_bwd_input(spartan_context *ctx, const spartan_sparse *mask,
                                             const spartan_tensor *dz, const spartan_tensor *w,
                                             spartan_tensor *dx) {
    const char *fn = "spartan_gemm_sparse_bwd_input";
    if (!ctx || !mask || !dz || !w || !dx) return sp_invalid(ctx, "%s: NULL argument", fn);
    if (!same_ctx(ctx, mask, dz, w, dx))
        return sp_invalid(ctx, "%s: objects of another context", fn);
    spartan_status ast = sp_check_apart(ctx, fn, "dX", dx, "dZ", dz);
    if (!ast) ast = sp_check_apart(ctx, fn, "dX", dx, "W", w);
    if (!ast) ast = sp_check_apart(ctx, fn, "dX", dx, "the compacted mask", mask->source);
    if (ast) return ast;
    size_t n = spartan_tensor_cols(dz);
    if (spartan_tensor_rows(dz) != mask->rows || spartan_tensor_rows(w) != mask->cols ||
        spartan_tensor_cols(w) != n || spartan_tensor_rows(dx) != mask->rows ||
        spartan_tensor_cols(dx) != mask->cols)
        return sp_invalid(ctx,
                          "%s: mask %zux%zu, dZ %zux%zu, W %zux%zu, dX %zux%zu (need MxK, MxN, "
                          "KxN, MxK)",
                          fn, mask->rows, mask->cols, spartan_tensor_rows(dz), n,
                          spartan_tensor_rows(w), spartan_tensor_cols(w), spartan_tensor_rows(dx),
                          spartan_tensor_cols(dx));
    form_args f;
    spartan_status st = form_of(ctx, mask, SPARTAN_COMPACT_ROWS, fn, &f);
    if (st != SPARTAN_OK || dx->numel == 0) return st;
    if (mask->ntiles == 0) return zero(dx); /* rows x 0: nothing; 0 x cols: nothing either */
    if (!sp_sparse_usable(ctx)) return masked_dense(ctx, mask, dz, w, dx);
    cl_uint un, cols = (cl_uint)mask->cols;
    if ((st = sp_u32(ctx, n, "N", &un))) return st;
    /* a work-item per (row, tile, slice of the row's positions in the tile): each position is a
     * dot product of n / VEC vector steps and at most VEC - 1 single ones; zeroing its part of
     * the row, when it owns it, TILE_COLS / VEC + VEC more */
    size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
    size_t dot = n / vec + vec + 1, tc = mask->tile_cols,
           budget = sp_loop_max(ctx) - tc / vec - vec;
    if (dot > budget / 2) return masked_dense(ctx, mask, dz, w, dx);
    size_t per = budget / dot;
    if (per > tc) per = tc;
    size_t chunks = (tc + per - 1) / per;
    cl_uint uper = (cl_uint)per, uzero = chunks == 1;
    if (!uzero && (st = zero(dx)) != SPARTAN_OK) return st;
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_WG");
    size_t g[3] = {f.lines, f.tiles_per_line, chunks}, l[3] = {wg, 1, 1};
    /* the mask's ROWS form, as far as the kernel walks it */
    sp_arg a[] = {SP_ARG(f.lines),   SP_ARG(f.sub_lines), SP_ARG(f.tiles_per_line),
                  SP_ARG(f.off),     SP_ARG(f.stride),    SP_ARG(f.idx),
                  SP_ARG(f.tiles_c), SP_ARG(dz->mem),     SP_ARG(w->mem),
                  SP_ARG(un),        SP_ARG(cols),        SP_ARG(dx->mem),
                  SP_ARG(uper),      SP_ARG(uzero)};
    return sp_launch(ctx, SP_K_gemm_sparse_bwd_input, 3, g, l, a,
                     (cl_uint)(sizeof a / sizeof a[0]));
}

/* One launch of gemm_sparse_fwd_direct over slices [part0, part0 + nparts) of per columns of X. */
typedef struct direct_call {
    cl_mem x, w, lut;
    cl_uint m, k, n, per;
    int level;
    size_t cb;
} direct_call;

static spartan_status direct_slices(spartan_context *ctx, void *arg, size_t part0, size_t nparts,
                                    cl_mem dst, float alpha, float beta) {
    const direct_call *c = arg;
    (void)alpha;
    cl_uint accumulate = beta != 0.0f, p0 = (cl_uint)part0;
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_WG");
    size_t g[3] = {c->m, (c->n + c->cb - 1) / c->cb, nparts}, l[3] = {wg, 1, 1};

    sp_arg a[] = {SP_ARG(c->x), SP_ARG(c->m),   SP_ARG(c->k),       SP_ARG(c->w), SP_ARG(c->n),
                  SP_ARG(dst),  SP_ARG(c->lut), SP_ARG(accumulate), SP_ARG(p0),   SP_ARG(c->per)};
    return sp_launch(ctx, (sp_kernel_id)(SP_K_gemm_sparse_fwd_direct_b0 + c->level), 3, g, l, a,
                     (cl_uint)(sizeof a / sizeof a[0]));
}

spartan_status spartan_gemm_sparse_fwd_direct(spartan_context *ctx, const spartan_tensor *x,
                                              const spartan_tensor *w, spartan_tensor *y) {
    const char *fn = "spartan_gemm_sparse_fwd_direct";
    if (!ctx || !x || !w || !y) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status ast = sp_check_ctx(ctx, fn, SP_TENSORS(x, w, y));
    if (!ast) ast = sp_check_apart(ctx, fn, "Y", y, "X", x);
    if (!ast) ast = sp_check_apart(ctx, fn, "Y", y, "W", w);
    if (ast) return ast;
    size_t m = spartan_tensor_rows(x), k = spartan_tensor_cols(x), n = spartan_tensor_cols(w);
    if (spartan_tensor_rows(w) != k || spartan_tensor_rows(y) != m || spartan_tensor_cols(y) != n)
        return sp_invalid(ctx, "%s: X %zux%zu, W %zux%zu, Y %zux%zu (need MxK, KxN, MxN)", fn, m, k,
                          spartan_tensor_rows(w), n, spartan_tensor_rows(y),
                          spartan_tensor_cols(y));
    if (y->numel == 0) return SPARTAN_OK;
    if (k == 0) return zero(y);
    if (!sp_sparse_usable(ctx)) return dense(ctx, 0, x, w, y);
    cl_uint um, uk, un;
    spartan_status st;
    if ((st = sp_u32(ctx, m, "M", &um)) || (st = sp_u32(ctx, k, "K", &uk)) ||
        (st = sp_u32(ctx, n, "N", &un)))
        return st;
    direct_call c = {x->mem, w->mem, NULL, um, uk, un, 0, 0, 0};
    if ((st = sp_compact_lut(ctx, &c.lut))) return st;
    c.level = block_level(ctx, n, &c.cb);
    /* per segment of seg columns: seg / 8 mask steps, up to 7 single ones, up to seg non-zeros
     * of NB vector FMAs and (the last block of a row) VEC single ones, and the segment's step.
     * Slices are whole segments; where not even one fits the loop bound (a large tuned
     * DIRECT_SEG), slices of whole groups of eight columns, each column costing at most
     * per_col + 1 */
    size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
    size_t seg = (size_t)sp_tuned_get(&ctx->tuned, "DIRECT_SEG");
    size_t per_col = 2 + c.cb / vec + (n % c.cb ? vec : 0), seg_cost = seg / 8 + 8 + seg * per_col;
    size_t budget = sp_loop_max(ctx) - 4 * c.cb, per, parts;
    if (budget >= seg_cost)
        parts = sp_slices(k, budget / seg_cost * seg, seg, &per);
    else
        parts = sp_slices(k, (budget > 8 ? budget - 8 : 0) / (per_col + 1), 8, &per);
    c.per = (cl_uint)per;
    return sp_split_reduce(ctx, parts, y->numel, y->mem, 1.0f, 0.0f, direct_slices, &c);
}
