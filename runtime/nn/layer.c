/* One layer's buffers, forward and backward passes. GEMM layers (fc, conv) ask the model's
 * policy for the path of each pass; the sparse paths are those of ops.h: the forward GEMM skips
 * X's zeros on the fly, the backward GEMMs run on X compacted once per step. */
#include <stdlib.h>

#include "nn/nn_internal.h"

static spartan_status tensor4(spartan_context *ctx, size_t b, size_t h, size_t w, size_t c,
                              spartan_tensor **out) {
    size_t dims[4] = {b, h, w, c};
    return spartan_tensor_create(ctx, 4, dims, out);
}

spartan_status sp_layer_alloc(spartan_model *m, sp_layer *L) {
    spartan_context *ctx = m->ctx;
    const size_t B = m->cfg.batch;
    spartan_status st = SPARTAN_OK;
#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((st = (call)) != SPARTAN_OK) return st;                                                \
    } while (0)
    if (L->kind != SP_FLATTEN) TRY(tensor4(ctx, B, L->out_h, L->out_w, L->out_c, &L->y));
    if (L->need_dx) TRY(tensor4(ctx, B, L->in_h, L->in_w, L->in_c, &L->dx));
    if (sp_layer_is_gemm(L)) {
        L->n = L->out_c;
        if (L->kind == SP_CONV) {
            L->m = B * L->out_h * L->out_w;
            L->k = L->kernel * L->kernel * L->in_c;
            TRY(tensor4(ctx, B, L->out_h, L->out_w, L->k, &L->cols));
            if (L->need_dx) TRY(tensor4(ctx, B, L->out_h, L->out_w, L->k, &L->dcols));
        } else {
            L->m = B;
            L->k = L->in_h * L->in_w * L->in_c;
        }
        TRY(spartan_tensor_create_2d(ctx, L->k, L->n, &L->w));
        TRY(spartan_tensor_create_2d(ctx, L->k, L->n, &L->dw));
        TRY(spartan_tensor_create_2d(ctx, L->k, L->n, &L->vw));
        TRY(spartan_tensor_create_2d(ctx, 1, L->n, &L->b));
        TRY(spartan_tensor_create_2d(ctx, 1, L->n, &L->db));
        TRY(spartan_tensor_create_2d(ctx, 1, L->n, &L->vb));
        TRY(spartan_sparse_create(ctx, L->m, L->k, &L->sx));
        if (L->form[SPARTAN_PASS_BWD_INPUT] == SP_SPARSE_ON_DY)
            TRY(spartan_tensor_create_2d(ctx, L->n, L->k, &L->wt));
        TRY(spartan_sparse_create(ctx, L->m, L->n, &L->sdy));
    } else if (L->kind != SP_FLATTEN) {
        TRY(spartan_sparse_create(ctx, B * L->out_h * L->out_w, L->out_c, &L->sy));
        if (L->kind == SP_MAXPOOL) TRY(tensor4(ctx, B, L->out_h, L->out_w, L->out_c, &L->arg));
    }
#undef TRY
    return st;
}

void sp_layer_free(sp_layer *L) {
    spartan_tensor *t[] = {L->w,    L->b,     L->dw, L->db, L->vw,  L->vb,
                           L->cols, L->dcols, L->y,  L->dx, L->arg, L->wt};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) spartan_tensor_destroy(t[i]);
    spartan_sparse_destroy(L->sx);
    spartan_sparse_destroy(L->sdy);
    spartan_sparse_destroy(L->sy);
}

/* base seen as count images of h x w x c (a prefix of its buffer). */
static spartan_status view4(spartan_tensor *v, const spartan_tensor *base, size_t count, size_t h,
                            size_t w, size_t c) {
    size_t dims[4] = {count, h, w, c};
    return sp_tensor_view(v, base, 4, dims);
}

/* base seen as a rows x cols matrix. */
static spartan_status view2(spartan_tensor *v, const spartan_tensor *base, size_t rows,
                            size_t cols) {
    size_t dims[2] = {rows, cols};
    return sp_tensor_view(v, base, 2, dims);
}

/* Fraction of zeros counted by the last monitor or compaction on s (blocking). */
static spartan_status zeros_of(spartan_sparse *s, double *zeros) {
    size_t nnz = 0, total = spartan_sparse_rows(s) * spartan_sparse_cols(s);
    spartan_status st = spartan_sparse_nnz(s, &nnz);
    *zeros = total ? 1.0 - (double)nnz / (double)total : 0.0;
    return st;
}

static void record_zeros(sp_zeros *z, double v) {
    if (z->first < 0) z->first = v;
    z->last = v;
    z->sum += v;
    z->n++;
}

void sp_layer_pass_shape(const sp_layer *L, spartan_pass pass, size_t rows, size_t *m, size_t *n,
                         size_t *k) {
    *m = pass == SPARTAN_PASS_BWD_WEIGHT ? L->k : rows;
    *n = pass == SPARTAN_PASS_BWD_INPUT ? L->k : L->n;
    *k = pass == SPARTAN_PASS_FWD ? L->k : pass == SPARTAN_PASS_BWD_INPUT ? L->n : rows;
}

/* The policy's path for a pass; record: count it in the layer's statistics (training only). */
static spartan_path choose(spartan_model *m, sp_layer *L, spartan_pass pass, size_t rows,
                           int record) {
    /* the sparsity of the operand the pass's sparse form skips */
    const double zeros = L->form[pass] == SP_SPARSE_ON_DY ? L->gz.last : L->xz.last;
    spartan_policy_query q = {L->index, pass, 0, 0, 0, zeros, L->form[pass] != SP_SPARSE_NONE};
    sp_layer_pass_shape(L, pass, rows, &q.m, &q.n, &q.k);
    const char *reason = NULL;
    spartan_path path = spartan_policy_choose(m->policy, &q, &reason);
    if (!record) return path;
    L->path[pass] = path;
    L->step_zeros[pass] = zeros;
    L->reason[pass] = reason;
    L->calls[pass]++;
    if (path == SPARTAN_PATH_SPARSE) L->sparse_calls[pass]++;
    return path;
}

/* The dense implementation of a pass: the policy's (own kernel or CLBlast) when it calibrated
 * both, else the device's best. */
static spartan_gemm_path dense_path(const spartan_model *m, const sp_layer *L, spartan_pass pass) {
    return spartan_policy_dense_path(m->policy, L->index, pass);
}

/* The GEMM layers' forward: X (im2col of the input for conv) . W + b. */
static spartan_status gemm_forward(spartan_model *m, sp_layer *L, const spartan_tensor *x,
                                   size_t count, int train, spartan_tensor *y) {
    spartan_context *ctx = m->ctx;
    spartan_status st;
    spartan_tensor a, yv;
    const size_t rows = count * L->out_h * L->out_w;
    if (L->kind == SP_CONV) {
        spartan_window win = {count,     L->in_h,   L->in_w,   L->in_c,
                              L->kernel, L->kernel, L->stride, L->pad};
        spartan_tensor xv, cv;
        if ((st = view4(&xv, x, count, L->in_h, L->in_w, L->in_c)) != SPARTAN_OK ||
            (st = view2(&cv, L->cols, rows, L->k)) != SPARTAN_OK ||
            (st = spartan_im2col(ctx, &win, &xv, &cv)) != SPARTAN_OK)
            return st;
        a = cv;
    } else if ((st = view2(&a, x, rows, L->k)) != SPARTAN_OK) {
        return st;
    }
    if ((st = view2(&yv, y, rows, L->n)) != SPARTAN_OK) return st;
    if (train && m->sampling) {
        double z;
        if ((st = spartan_monitor(ctx, &a, L->sx)) != SPARTAN_OK ||
            (st = zeros_of(L->sx, &z)) != SPARTAN_OK)
            return st;
        record_zeros(&L->xz, z);
        L->samples++;
    }
    spartan_path path = choose(m, L, SPARTAN_PASS_FWD, rows, m->recording);
    if (m->recording && (st = sp_model_mark(m, L, SPARTAN_PASS_FWD, 0)) != SPARTAN_OK) return st;
    if (path == SPARTAN_PATH_SPARSE)
        st = spartan_gemm_sparse_fwd_direct(ctx, &a, L->w, &yv);
    else
        st = spartan_gemm_dense(ctx, dense_path(m, L, SPARTAN_PASS_FWD), 0, 0, 1.0f, &a, L->w, 0.0f,
                                &yv);
    if (st == SPARTAN_OK && m->recording) st = sp_model_mark(m, L, SPARTAN_PASS_FWD, 1);
    if (st == SPARTAN_OK) st = spartan_bias_add(ctx, &yv, L->b);
    return st;
}

static unsigned long long dropout_counter(const spartan_model *m, const sp_layer *L) {
    return ((unsigned long long)m->step << 8) | (L->index & 0xff);
}

spartan_status sp_layer_forward(spartan_model *m, sp_layer *L, const spartan_tensor *x,
                                size_t count, int train, const spartan_tensor **y) {
    spartan_context *ctx = m->ctx;
    spartan_status st;
    if (L->kind == SP_FLATTEN || (L->kind == SP_DROPOUT && !train)) {
        *y = x;
        return SPARTAN_OK;
    }
    spartan_tensor xv, yv;
    if ((st = view4(&xv, x, count, L->in_h, L->in_w, L->in_c)) != SPARTAN_OK ||
        (st = view4(&yv, L->y, count, L->out_h, L->out_w, L->out_c)) != SPARTAN_OK)
        return st;
    *y = L->y;
    int sample_out = train && m->sampling;
    switch (L->kind) {
    case SP_FC:
    case SP_CONV:
        st = gemm_forward(m, L, x, count, train, &yv);
        break;
    case SP_RELU:
        /* the fused monitor: free, so it runs at every training step */
        st = train ? spartan_relu_monitor(ctx, &xv, &yv, L->sy) : spartan_relu(ctx, &xv, &yv);
        break;
    case SP_MAXPOOL: {
        spartan_window win = {count, L->in_h, L->in_w, L->in_c, L->kernel, L->kernel, L->stride, 0};
        spartan_tensor av;
        if ((st = view4(&av, L->arg, count, L->out_h, L->out_w, L->out_c)) == SPARTAN_OK)
            st = spartan_maxpool_forward(ctx, &win, &xv, &yv, &av);
        if (st == SPARTAN_OK && sample_out) st = spartan_monitor(ctx, &yv, L->sy);
        break;
    }
    case SP_DROPOUT:
        st = spartan_dropout_forward(ctx, &xv, &yv, L->p, m->cfg.seed, dropout_counter(m, L));
        if (st == SPARTAN_OK && sample_out) st = spartan_monitor(ctx, &yv, L->sy);
        break;
    case SP_FLATTEN:
        break;
    }
    if (st == SPARTAN_OK && sample_out && L->sy) {
        double z;
        if ((st = zeros_of(L->sy, &z)) == SPARTAN_OK) {
            record_zeros(&L->xz, z);
            L->samples++;
        }
    }
    if (st == SPARTAN_OK && m->recording) {
        if (!sp_layer_is_gemm(L)) L->calls[SPARTAN_PASS_FWD]++;
        st = sp_model_mark(m, L, SPARTAN_PASS_FWD, 0);
    }
    return st;
}

/* GEMM layers' backward over a full batch: db, dW (bwd_weight), then dX (bwd_input). The
 * compaction of X, when a sparse pass needs it, is done once and charged to the first pass
 * that needs it. */
static spartan_status gemm_backward(spartan_model *m, sp_layer *L, const spartan_tensor *x,
                                    const spartan_tensor *dy) {
    spartan_context *ctx = m->ctx;
    spartan_status st;
    const size_t rows = L->m;
    spartan_tensor a, dyv;
    if (L->kind == SP_CONV) {
        if ((st = view2(&a, L->cols, rows, L->k)) != SPARTAN_OK) return st;
    } else if ((st = view2(&a, x, rows, L->k)) != SPARTAN_OK) {
        return st;
    }
    if ((st = view2(&dyv, dy, rows, L->n)) != SPARTAN_OK) return st;
    if (m->sampling) {
        double z;
        if ((st = spartan_monitor(ctx, &dyv, L->sdy)) != SPARTAN_OK ||
            (st = zeros_of(L->sdy, &z)) != SPARTAN_OK)
            return st;
        record_zeros(&L->gz, z);
    }
    if ((st = spartan_bias_grad(ctx, &dyv, L->db)) != SPARTAN_OK) return st;

    spartan_path pw = choose(m, L, SPARTAN_PASS_BWD_WEIGHT, rows, 1);
    spartan_path pi =
        L->need_dx ? choose(m, L, SPARTAN_PASS_BWD_INPUT, rows, 1) : SPARTAN_PATH_DENSE;
    const int w_on_dy = L->form[SPARTAN_PASS_BWD_WEIGHT] == SP_SPARSE_ON_DY;
    const int x_on_dy = L->form[SPARTAN_PASS_BWD_INPUT] == SP_SPARSE_ON_DY;
    /* The compaction is charged to the first sparse pass that needs it (both forms at once
     * when both are sparse). */
    if ((st = sp_model_mark(m, L, SPARTAN_PASS_BWD_WEIGHT, 0)) != SPARTAN_OK) return st;
    const int x_compacted = pw == SPARTAN_PATH_SPARSE && !w_on_dy;
    const int rows_form = pi == SPARTAN_PATH_SPARSE && !x_on_dy; /* masked bwd_input on X */
    if (pw == SPARTAN_PATH_SPARSE && w_on_dy) {
        st = spartan_compact(ctx, &dyv, L->sdy, SPARTAN_COMPACT_COLS);
        if (st == SPARTAN_OK) st = spartan_gemm_sparse_bwd_weight_dz(ctx, &a, L->sdy, L->dw);
    } else if (pw == SPARTAN_PATH_SPARSE) {
        unsigned forms = SPARTAN_COMPACT_COLS | (rows_form ? SPARTAN_COMPACT_ROWS : 0u);
        st = spartan_compact(ctx, &a, L->sx, forms);
        if (st == SPARTAN_OK) st = spartan_gemm_sparse_bwd_weight(ctx, L->sx, &dyv, L->dw);
    } else {
        st = spartan_gemm_dense(ctx, dense_path(m, L, SPARTAN_PASS_BWD_WEIGHT), 1, 0, 1.0f, &a,
                                &dyv, 0.0f, L->dw);
    }
    if (st != SPARTAN_OK || (st = sp_model_mark(m, L, SPARTAN_PASS_BWD_WEIGHT, 1)) != SPARTAN_OK)
        return st;
    if (!L->need_dx) return SPARTAN_OK;

    spartan_tensor dav;
    if ((st = view2(&dav, L->kind == SP_CONV ? L->dcols : L->dx, rows, L->k)) != SPARTAN_OK)
        return st;
    if (pi == SPARTAN_PATH_SPARSE && x_on_dy) {
        /* dY is ReLU-masked (85-92 % zeros before a pool): dX = dY . W^T skipping dY's zeros,
         * the forward kernel on dY and W^T (exact: no mask needed) */
        st = spartan_transpose(ctx, L->w, L->wt);
        if (st == SPARTAN_OK) st = spartan_gemm_sparse_fwd_direct(ctx, &dyv, L->wt, &dav);
    } else if (pi == SPARTAN_PATH_SPARSE) {
        if (!x_compacted) st = spartan_compact(ctx, &a, L->sx, SPARTAN_COMPACT_ROWS);
        if (st == SPARTAN_OK) st = spartan_gemm_sparse_bwd_input(ctx, L->sx, &dyv, L->w, &dav);
    } else {
        st = spartan_gemm_dense(ctx, dense_path(m, L, SPARTAN_PASS_BWD_INPUT), 0, 1, 1.0f, &dyv,
                                L->w, 0.0f, &dav);
    }
    if (st == SPARTAN_OK) st = sp_model_mark(m, L, SPARTAN_PASS_BWD_INPUT, 1);
    if (st == SPARTAN_OK && L->kind == SP_CONV) {
        spartan_window win = {m->cfg.batch, L->in_h,   L->in_w,   L->in_c,
                              L->kernel,    L->kernel, L->stride, L->pad};
        st = spartan_col2im(ctx, &win, &dav, L->dx);
    }
    if (st == SPARTAN_OK) st = sp_model_mark(m, L, SPARTAN_PASS_BWD_INPUT, 0);
    return st;
}

spartan_status sp_layer_backward(spartan_model *m, sp_layer *L, const spartan_tensor *x,
                                 const spartan_tensor *dy, const spartan_tensor **dx) {
    spartan_context *ctx = m->ctx;
    spartan_status st = SPARTAN_OK;
    *dx = L->need_dx ? L->dx : NULL;
    switch (L->kind) {
    case SP_FLATTEN:
        *dx = dy;
        return SPARTAN_OK;
    case SP_FC:
    case SP_CONV:
        return gemm_backward(m, L, x, dy);
    default:
        break;
    }
    if (!L->need_dx) return SPARTAN_OK;
    spartan_tensor dyv; /* dy in this layer's output shape (a flatten may have passed it on) */
    if ((st = view4(&dyv, dy, m->cfg.batch, L->out_h, L->out_w, L->out_c)) != SPARTAN_OK) return st;
    switch (L->kind) {
    case SP_RELU:
        st = spartan_relu_backward(ctx, L->y, &dyv, L->dx);
        break;
    case SP_MAXPOOL: {
        spartan_window win = {m->cfg.batch, L->in_h,   L->in_w,   L->in_c,
                              L->kernel,    L->kernel, L->stride, 0};
        st = spartan_maxpool_backward(ctx, &win, &dyv, L->arg, L->dx);
        break;
    }
    case SP_DROPOUT:
        st = spartan_dropout_backward(ctx, &dyv, L->dx, L->p, m->cfg.seed, dropout_counter(m, L));
        break;
    default:
        break;
    }
    if (st == SPARTAN_OK) {
        L->calls[SPARTAN_PASS_BWD_INPUT]++;
        st = sp_model_mark(m, L, SPARTAN_PASS_BWD_INPUT, 0);
    }
    return st;
}
