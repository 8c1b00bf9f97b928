/* The sparse GEMMs of the three training passes (kernels_cl/gemm_sparse.cl) over an operand
 * compacted by compact.c. */
#include <stdio.h>

#include "ops/ops_internal.h"

/* The kernel arguments that describe one form of s (S_ARGS in gemm_sparse.cl). */
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

/* out (lines x n, or n x lines with trans_out) = S's lines gathering rows of d (? x n). */
static spartan_status lines(spartan_context *ctx, const spartan_sparse *s, const form_args *f,
                            const spartan_tensor *d, spartan_tensor *out, cl_uint trans_out) {
    cl_uint n;
    spartan_status st = sp_u32(ctx, spartan_tensor_cols(d), "N", &n);
    if (st != SPARTAN_OK) return st;
    size_t cb;
    int level = block_level(ctx, n, &cb);
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_WG");
    size_t g[2] = {f->lines, (n + cb - 1) / cb}, l[2] = {wg, 1};
    sp_arg a[] = {SP_ARG(f->lines),
                  SP_ARG(f->sub_lines),
                  SP_ARG(f->tiles_per_line),
                  SP_ARG(f->tpos),
                  SP_ARG(f->list),
                  SP_ARG(s->counts),
                  SP_ARG(f->off),
                  SP_ARG(f->stride),
                  SP_ARG(f->idx),
                  SP_ARG(f->src),
                  SP_ARG(f->src_cols),
                  SP_ARG(f->tiles_c),
                  SP_ARG(d->mem),
                  SP_ARG(n),
                  SP_ARG(out->mem),
                  SP_ARG(trans_out)};
    /* rows walk their tile lists on their own; columns walk in step (see the kernels) */
    char kernel[32];
    snprintf(kernel, sizeof kernel, "gemm_sparse_%s_b%d", f->form == 0 ? "rows" : "cols", level);
    return sp_launch(ctx, kernel, 2, g, l, a, 16);
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
    return lines(ctx, x, &f, w, y, 0);
}

spartan_status spartan_gemm_sparse_bwd_weight(spartan_context *ctx, const spartan_sparse *x,
                                              const spartan_tensor *dz, spartan_tensor *dw) {
    const char *fn = "spartan_gemm_sparse_bwd_weight";
    if (!ctx || !x || !dz || !dw) return sp_invalid(ctx, "%s: NULL argument", fn);
    if (!same_ctx(ctx, x, dz, dw, NULL))
        return sp_invalid(ctx, "%s: objects of another context", fn);
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
    return lines(ctx, x, &f, dz, dw, 0);
}

spartan_status spartan_gemm_sparse_bwd_weight_dz(spartan_context *ctx, const spartan_tensor *x,
                                                 const spartan_sparse *dz, spartan_tensor *dw) {
    const char *fn = "spartan_gemm_sparse_bwd_weight_dz";
    if (!ctx || !x || !dz || !dw) return sp_invalid(ctx, "%s: NULL argument", fn);
    if (!same_ctx(ctx, dz, x, dw, NULL))
        return sp_invalid(ctx, "%s: objects of another context", fn);
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
    /* dW^T = dZ^T . X: the columns of dZ gather rows of X; stored transposed into dW. */
    return lines(ctx, dz, &f, x, dw, 1);
}

spartan_status spartan_gemm_sparse_bwd_input(spartan_context *ctx, const spartan_sparse *mask,
                                             const spartan_tensor *dz, const spartan_tensor *w,
                                             spartan_tensor *dx) {
    const char *fn = "spartan_gemm_sparse_bwd_input";
    if (!ctx || !mask || !dz || !w || !dx) return sp_invalid(ctx, "%s: NULL argument", fn);
    if (!same_ctx(ctx, mask, dz, w, dx))
        return sp_invalid(ctx, "%s: objects of another context", fn);
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
    cl_uint un, cols = (cl_uint)mask->cols;
    if ((st = sp_u32(ctx, n, "N", &un))) return st;
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_WG");
    size_t g = f.lines;
    sp_arg a[] = {SP_ARG(f.lines), SP_ARG(f.sub_lines), SP_ARG(f.tiles_per_line),
                  SP_ARG(f.tpos),  SP_ARG(f.list),      SP_ARG(mask->counts),
                  SP_ARG(f.off),   SP_ARG(f.stride),    SP_ARG(f.idx),
                  SP_ARG(f.src),   SP_ARG(f.src_cols),  SP_ARG(f.tiles_c),
                  SP_ARG(dz->mem), SP_ARG(w->mem),      SP_ARG(un),
                  SP_ARG(cols),    SP_ARG(dx->mem)};
    return sp_launch(ctx, "gemm_sparse_sddmm", 1, &g, &wg, a, 17);
}

spartan_status spartan_gemm_sparse_fwd_direct(spartan_context *ctx, const spartan_tensor *x,
                                              const spartan_tensor *w, spartan_tensor *y) {
    const char *fn = "spartan_gemm_sparse_fwd_direct";
    if (!ctx || !x || !w || !y) return sp_invalid(ctx, "%s: NULL argument", fn);
    if (x->ctx != ctx || w->ctx != ctx || y->ctx != ctx)
        return sp_invalid(ctx, "%s: objects of another context", fn);
    size_t m = spartan_tensor_rows(x), k = spartan_tensor_cols(x), n = spartan_tensor_cols(w);
    if (spartan_tensor_rows(w) != k || spartan_tensor_rows(y) != m || spartan_tensor_cols(y) != n)
        return sp_invalid(ctx, "%s: X %zux%zu, W %zux%zu, Y %zux%zu (need MxK, KxN, MxN)", fn, m, k,
                          spartan_tensor_rows(w), n, spartan_tensor_rows(y),
                          spartan_tensor_cols(y));
    if (y->numel == 0) return SPARTAN_OK;
    if (k == 0) return zero(y);
    cl_uint um, uk, un;
    spartan_status st;
    if ((st = sp_u32(ctx, m, "M", &um)) || (st = sp_u32(ctx, k, "K", &uk)) ||
        (st = sp_u32(ctx, n, "N", &un)))
        return st;
    cl_mem lut;
    if ((st = sp_compact_lut(ctx, &lut))) return st;
    size_t cb;
    int level = block_level(ctx, n, &cb);
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_WG");
    size_t g[2] = {m, (n + cb - 1) / cb}, l[2] = {wg, 1};
    char kernel[32];
    snprintf(kernel, sizeof kernel, "gemm_sparse_direct_b%d", level);
    sp_arg a[] = {SP_ARG(x->mem), SP_ARG(um),     SP_ARG(uk), SP_ARG(w->mem),
                  SP_ARG(un),     SP_ARG(y->mem), SP_ARG(lut)};
    return sp_launch(ctx, kernel, 2, g, l, a, 7);
}
