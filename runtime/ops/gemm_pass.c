/* GEMM passes (include/spartan/ops.h): one layer pass, run dense or sparse in the form the
 * descriptor names. The one place that says which calls make each pass. */
#include <string.h>

#include "ops/ops_internal.h"

const char *spartan_sparse_form_name(spartan_sparse_form form) {
    static const char *const names[] = {"none", "x", "dy"};
    return (unsigned)form < SPARTAN_FORM_COUNT ? names[form] : "?";
}

spartan_status spartan_gemm_pass_init(spartan_pass pass, spartan_sparse_form form, size_t rows,
                                      size_t k, size_t n, spartan_gemm_pass *out) {
    if (!out) return sp_invalid(NULL, "spartan_gemm_pass_init: NULL out");
    memset(out, 0, sizeof *out);
    if ((unsigned)pass >= SPARTAN_PASS_COUNT)
        return sp_invalid(NULL, "spartan_gemm_pass_init: %d is not a pass", (int)pass);
    if ((unsigned)form >= SPARTAN_FORM_COUNT)
        return sp_invalid(NULL, "spartan_gemm_pass_init: %d is not a sparse form", (int)form);
    if (pass == SPARTAN_PASS_FWD && form == SPARTAN_FORM_ON_DY)
        return sp_invalid(NULL, "spartan_gemm_pass_init: the forward pass has no dY");
    *out = (spartan_gemm_pass){.pass = pass, .form = form, .rows = rows, .k = k, .n = n};
    switch (pass) {
    case SPARTAN_PASS_FWD: /* X . W */
        out->m = rows, out->gn = n, out->gk = k;
        break;
    case SPARTAN_PASS_BWD_INPUT: /* dY . W^T */
        out->m = rows, out->gn = k, out->gk = n, out->trans_b = 1;
        break;
    default: /* X^T . dY */
        out->m = k, out->gn = n, out->gk = rows, out->trans_a = 1;
        break;
    }
    return SPARTAN_OK;
}

static const char *pass_word(spartan_pass pass) {
    return pass == SPARTAN_PASS_FWD         ? "fwd"
           : pass == SPARTAN_PASS_BWD_INPUT ? "bwd_input"
                                            : "bwd_weight";
}

/* INVALID_ARGUMENT naming the missing operand. */
static spartan_status need(spartan_context *ctx, const spartan_gemm_pass *d, spartan_path path,
                           const void *operand, const char *what) {
    if (operand) return SPARTAN_OK;
    return sp_invalid(ctx, "spartan_gemm_pass_run: %s, %s path%s%s: NULL operand %s",
                      pass_word(d->pass), path == SPARTAN_PATH_SPARSE ? "sparse" : "dense",
                      path == SPARTAN_PATH_SPARSE ? " on " : "",
                      path == SPARTAN_PATH_SPARSE ? spartan_sparse_form_name(d->form) : "", what);
}

/* X compacted with `forms` (and the extra forms asked for), unless sx already holds them. */
static spartan_status compact_x(spartan_context *ctx, spartan_gemm_operands *o, unsigned forms) {
    if ((o->x_forms & forms) == forms) return SPARTAN_OK;
    const unsigned all = forms | o->x_forms_extra;
    spartan_status st = spartan_compact(ctx, o->x, o->sx, all);
    o->x_forms = st == SPARTAN_OK ? all : 0;
    return st;
}

static spartan_status run_dense(spartan_context *ctx, const spartan_gemm_pass *p,
                                spartan_gemm_path dense, spartan_gemm_operands *o) {
    spartan_status st;
    switch (p->pass) {
    case SPARTAN_PASS_FWD:
        if ((st = need(ctx, p, SPARTAN_PATH_DENSE, o->x, "x")) != SPARTAN_OK ||
            (st = need(ctx, p, SPARTAN_PATH_DENSE, o->y, "y")) != SPARTAN_OK)
            return st;
        return spartan_gemm_dense(ctx, dense, 0, 0, 1.0f, o->x, o->w, 0.0f, o->y);
    case SPARTAN_PASS_BWD_INPUT:
        if ((st = need(ctx, p, SPARTAN_PATH_DENSE, o->dy, "dy")) != SPARTAN_OK ||
            (st = need(ctx, p, SPARTAN_PATH_DENSE, o->dx, "dx")) != SPARTAN_OK)
            return st;
        return spartan_gemm_dense(ctx, dense, 0, 1, 1.0f, o->dy, o->w, 0.0f, o->dx);
    default:
        if ((st = need(ctx, p, SPARTAN_PATH_DENSE, o->x, "x")) != SPARTAN_OK ||
            (st = need(ctx, p, SPARTAN_PATH_DENSE, o->dy, "dy")) != SPARTAN_OK ||
            (st = need(ctx, p, SPARTAN_PATH_DENSE, o->dw, "dw")) != SPARTAN_OK)
            return st;
        return spartan_gemm_dense(ctx, dense, 1, 0, 1.0f, o->x, o->dy, 0.0f, o->dw);
    }
}

static spartan_status run_sparse(spartan_context *ctx, const spartan_gemm_pass *p,
                                 spartan_gemm_operands *o) {
    const spartan_path S = SPARTAN_PATH_SPARSE;
    const int on_dy = p->form == SPARTAN_FORM_ON_DY;
    spartan_status st;
    switch (p->pass) {
    case SPARTAN_PASS_FWD:
        if ((st = need(ctx, p, S, o->x, "x")) != SPARTAN_OK ||
            (st = need(ctx, p, S, o->w, "w")) != SPARTAN_OK ||
            (st = need(ctx, p, S, o->y, "y")) != SPARTAN_OK)
            return st;
        return spartan_gemm_sparse_fwd_direct(ctx, o->x, o->w, o->y);
    case SPARTAN_PASS_BWD_INPUT:
        if ((st = need(ctx, p, S, o->dy, "dy")) != SPARTAN_OK ||
            (st = need(ctx, p, S, o->w, "w")) != SPARTAN_OK ||
            (st = need(ctx, p, S, o->dx, "dx")) != SPARTAN_OK)
            return st;
        if (on_dy) { /* dX = dY . W^T skipping dY's zeros: the forward kernel on dY and W^T */
            if ((st = need(ctx, p, S, o->wt, "wt")) != SPARTAN_OK) return st;
            st = spartan_transpose(ctx, o->w, o->wt);
            return st == SPARTAN_OK ? spartan_gemm_sparse_fwd_direct(ctx, o->dy, o->wt, o->dx) : st;
        }
        if ((st = need(ctx, p, S, o->x, "x")) != SPARTAN_OK ||
            (st = need(ctx, p, S, o->sx, "sx")) != SPARTAN_OK ||
            (st = compact_x(ctx, o, SPARTAN_COMPACT_ROWS)) != SPARTAN_OK)
            return st;
        return spartan_gemm_sparse_bwd_input(ctx, o->sx, o->dy, o->w, o->dx);
    default:
        if ((st = need(ctx, p, S, o->x, "x")) != SPARTAN_OK ||
            (st = need(ctx, p, S, o->dy, "dy")) != SPARTAN_OK ||
            (st = need(ctx, p, S, o->dw, "dw")) != SPARTAN_OK)
            return st;
        if (on_dy) {
            if ((st = need(ctx, p, S, o->sdy, "sdy")) != SPARTAN_OK ||
                (st = spartan_compact(ctx, o->dy, o->sdy, SPARTAN_COMPACT_COLS)) != SPARTAN_OK)
                return st;
            return spartan_gemm_sparse_bwd_weight_dz(ctx, o->x, o->sdy, o->dw);
        }
        if ((st = need(ctx, p, S, o->sx, "sx")) != SPARTAN_OK ||
            (st = compact_x(ctx, o, SPARTAN_COMPACT_COLS)) != SPARTAN_OK)
            return st;
        return spartan_gemm_sparse_bwd_weight(ctx, o->sx, o->dy, o->dw);
    }
}

spartan_status spartan_gemm_pass_run(spartan_context *ctx, const spartan_gemm_pass *p,
                                     spartan_path path, spartan_gemm_path dense,
                                     spartan_gemm_operands *o) {
    if (!ctx || !p || !o) return sp_invalid(ctx, "spartan_gemm_pass_run: NULL argument");
    if ((unsigned)p->pass >= SPARTAN_PASS_COUNT || (unsigned)p->form >= SPARTAN_FORM_COUNT)
        return sp_invalid(ctx, "spartan_gemm_pass_run: the descriptor is not initialised");
    spartan_status st = need(ctx, p, path, o->w, "w");
    if (st != SPARTAN_OK) return st;
    if (path == SPARTAN_PATH_DENSE) return run_dense(ctx, p, dense, o);
    if (path != SPARTAN_PATH_SPARSE)
        return sp_invalid(ctx, "spartan_gemm_pass_run: %d is not a path", (int)path);
    if (p->form == SPARTAN_FORM_NONE)
        return sp_invalid(ctx, "spartan_gemm_pass_run: %s has no sparse form here",
                          pass_word(p->pass));
    return run_sparse(ctx, p, o);
}

void spartan_gemm_operands_destroy(spartan_gemm_operands *o) {
    if (!o) return;
    spartan_tensor *t[] = {(spartan_tensor *)o->x,
                           (spartan_tensor *)o->w,
                           (spartan_tensor *)o->dy,
                           o->y,
                           o->dx,
                           o->dw,
                           o->wt};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) spartan_tensor_destroy(t[i]);
    spartan_sparse_destroy(o->sx);
    spartan_sparse_destroy(o->sdy);
    memset(o, 0, sizeof *o);
}

spartan_status spartan_gemm_operands_create(spartan_context *ctx, const spartan_gemm_pass *p,
                                            spartan_gemm_operands *o) {
    if (o) memset(o, 0, sizeof *o);
    if (!ctx || !p || !o) return sp_invalid(ctx, "spartan_gemm_operands_create: NULL argument");
    spartan_tensor *x = NULL, *w = NULL, *dy = NULL;
    const size_t rows = p->rows, k = p->k, n = p->n;
    spartan_status st = spartan_tensor_create_2d(ctx, rows, k, &x);
    o->x = x;
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, k, n, &w);
    o->w = w;
    if (st == SPARTAN_OK && p->pass != SPARTAN_PASS_FWD)
        st = spartan_tensor_create_2d(ctx, rows, n, &dy);
    o->dy = dy;
    if (st == SPARTAN_OK && p->pass == SPARTAN_PASS_FWD)
        st = spartan_tensor_create_2d(ctx, rows, n, &o->y);
    if (st == SPARTAN_OK && p->pass == SPARTAN_PASS_BWD_INPUT)
        st = spartan_tensor_create_2d(ctx, rows, k, &o->dx);
    if (st == SPARTAN_OK && p->pass == SPARTAN_PASS_BWD_WEIGHT)
        st = spartan_tensor_create_2d(ctx, k, n, &o->dw);
    if (st == SPARTAN_OK && p->pass != SPARTAN_PASS_FWD && p->form == SPARTAN_FORM_ON_X)
        st = spartan_sparse_create(ctx, rows, k, &o->sx);
    if (st == SPARTAN_OK && p->pass == SPARTAN_PASS_BWD_WEIGHT && p->form == SPARTAN_FORM_ON_DY)
        st = spartan_sparse_create(ctx, rows, n, &o->sdy);
    if (st == SPARTAN_OK && p->pass == SPARTAN_PASS_BWD_INPUT && p->form == SPARTAN_FORM_ON_DY)
        st = spartan_tensor_create_2d(ctx, n, k, &o->wt);
    if (st != SPARTAN_OK) spartan_gemm_operands_destroy(o);
    return st;
}
