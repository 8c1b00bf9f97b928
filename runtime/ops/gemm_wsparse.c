/* Weight-sparse GEMMs (include/spartan/ops.h; kernels_cl/gemm_sparse.cl, gemm_wsparse_*): the
 * positions of W's non-zeros, built on the host from W read back (a build is rare: Dropback's
 * tracked set changes by a few elements per update once the initial values have decayed), in
 * three orders, and the GEMMs over them. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"
#include "tensor/tensor_internal.h"

#define UNION_BLOCK 64 /* columns of Y per work-item of the GEMM that skips both zeros */

static void release(spartan_wsparse *ws) {
    cl_mem *all[] = {&ws->col_ptr, &ws->col_idx,   &ws->col_order, &ws->row_ptr,
                     &ws->row_idx, &ws->row_order, &ws->bptr,      &ws->bj,
                     &ws->pos,     &ws->col_at,    &ws->vals};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        sp_buffer_release(ws->ctx, *all[i]);
        *all[i] = NULL;
    }
    ws->built = 0;
    ws->nnz = 0;
}

void spartan_wsparse_destroy(spartan_wsparse *ws) {
    if (!ws) return;
    release(ws);
    sp_buffer_release(ws->ctx, ws->scratch);
    free(ws);
}

spartan_status spartan_wsparse_create(spartan_context *ctx, size_t k, size_t n,
                                      spartan_wsparse **out) {
    if (out) *out = NULL;
    if (!ctx || !out) return sp_invalid(ctx, "spartan_wsparse_create: NULL argument");
    if (k > 0xffffffffu || n > 0xffffffffu || (k && n > SIZE_MAX / k) || k * n > 0xffffffffu)
        return sp_invalid(ctx, "spartan_wsparse_create: %zu x %zu is too large", k, n);
    spartan_wsparse *ws = calloc(1, sizeof *ws);
    if (!ws) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "wsparse");
    *ws = (spartan_wsparse){.ctx = ctx, .k = k, .n = n, .bw = UNION_BLOCK};
    ws->blocks = (n + ws->bw - 1) / ws->bw;
    *out = ws;
    return SPARTAN_OK;
}

size_t spartan_wsparse_nnz(const spartan_wsparse *ws) {
    return ws ? ws->nnz : 0;
}

/* A buffer of count elements of size bytes (at least one) holding host. */
static spartan_status upload(spartan_context *ctx, const void *host, size_t count, size_t size,
                             const char *what, cl_mem *out) {
    spartan_status st = sp_buffer_create(ctx, (count ? count : 1) * size, what, out);
    if (st != SPARTAN_OK || !count) return st;
    cl_int rc =
        clEnqueueWriteBuffer(ctx->queue, *out, CL_TRUE, 0, count * size, host, 0, NULL, NULL);
    return rc == CL_SUCCESS ? SPARTAN_OK : sp_ctx_cl_fail(ctx, rc, "clEnqueueWriteBuffer", what);
}

/* The lists of `lists` lines given each non-zero's line (line[]) and position in it (pos[]), in
 * the order of the non-zeros: ptr (lists + 1), idx (nnz), order (lists by length, longest
 * first; ties by line), and the longest list. */
typedef struct lists {
    uint32_t *ptr, *idx, *order;
    size_t longest;
} lists;

/* The lists ordered by length, longest first, ties by line: sorted as keys (length complement
 * above, line below). */
static int by_key(const void *a, const void *b) {
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int make_lists(size_t nlists, size_t nnz, const uint32_t *line, const uint32_t *pos,
                      uint32_t *at, lists *l) {
    l->ptr = calloc(nlists + 1, sizeof *l->ptr);
    l->idx = malloc((nnz ? nnz : 1) * sizeof *l->idx);
    l->order = malloc((nlists ? nlists : 1) * sizeof *l->order);
    if (!l->ptr || !l->idx || !l->order) return 0;
    for (size_t p = 0; p < nnz; p++) l->ptr[line[p] + 1]++;
    l->longest = 0;
    for (size_t c = 0; c < nlists; c++) {
        if (l->ptr[c + 1] > l->longest) l->longest = l->ptr[c + 1];
        l->ptr[c + 1] += l->ptr[c];
    }
    uint32_t *fill = malloc((nlists ? nlists : 1) * sizeof *fill);
    if (!fill) return 0;
    memcpy(fill, l->ptr, nlists * sizeof *fill);
    for (size_t p = 0; p < nnz; p++) {
        if (at) at[p] = fill[line[p]];
        l->idx[fill[line[p]]++] = pos[p];
    }
    free(fill);
    uint64_t *key = malloc((nlists ? nlists : 1) * sizeof *key);
    if (!key) return 0;
    for (size_t c = 0; c < nlists; c++)
        key[c] = (uint64_t)(UINT32_MAX - (l->ptr[c + 1] - l->ptr[c])) << 32 | c;
    qsort(key, nlists, sizeof *key, by_key);
    for (size_t c = 0; c < nlists; c++) l->order[c] = (uint32_t)key[c];
    free(key);
    return 1;
}

static void free_lists(lists *l) {
    free(l->ptr);
    free(l->idx);
    free(l->order);
}

spartan_status spartan_wsparse_build(spartan_wsparse *ws, const spartan_tensor *w) {
    if (!ws || !w) return sp_invalid(ws ? ws->ctx : NULL, "spartan_wsparse_build: NULL argument");
    spartan_context *ctx = ws->ctx;
    const size_t k = ws->k, n = ws->n;
    spartan_status st = sp_check_ctx(ctx, "spartan_wsparse_build", SP_TENSORS(w));
    if (st != SPARTAN_OK) return st;
    if (w->numel != k * n || (w->numel && spartan_tensor_cols(w) != n))
        return sp_invalid(ctx, "spartan_wsparse_build: W %zux%zu, the description is %zux%zu",
                          spartan_tensor_rows(w), spartan_tensor_cols(w), k, n);
    float *host = malloc((k * n > 0 ? k * n : 1) * sizeof *host);
    if (!host) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "wsparse build");
    if ((st = spartan_tensor_read(w, host, k * n)) != SPARTAN_OK) {
        free(host);
        return st;
    }
    size_t nnz = 0;
    for (size_t e = 0; e < k * n; e++) nnz += host[e] != 0.0f;
    /* the non-zeros in row-major order: each one's row, column, and block-row line */
    uint32_t *ri = malloc((nnz ? nnz : 1) * sizeof *ri), *ci = malloc((nnz ? nnz : 1) * sizeof *ci);
    uint32_t *bl = malloc((nnz ? nnz : 1) * sizeof *bl);
    uint16_t *bj = malloc((nnz ? nnz : 1) * sizeof *bj);
    uint32_t *pos = malloc((nnz ? nnz : 1) * sizeof *pos),
             *col_at = malloc((nnz ? nnz : 1) * sizeof *col_at);
    lists byc = {0}, byr = {0}, byb = {0};
    int ok = ri && ci && bl && bj && pos && col_at;
    for (size_t e = 0, p = 0; ok && e < k * n; e++)
        if (host[e] != 0.0f) {
            ri[p] = (uint32_t)(e / n), ci[p] = (uint32_t)(e % n);
            bl[p] = (uint32_t)(ri[p] * ws->blocks + ci[p] / ws->bw);
            bj[p] = (uint16_t)(ci[p] % ws->bw);
            pos[p] = (uint32_t)e;
            p++;
        }
    free(host);
    /* by column: the rows (ascending: the non-zeros are in row-major order); by row: the columns;
     * by block-row: bj is already in its order (row-major order visits the block-rows of a row
     * in turn), only the offsets are needed */
    ok = ok && make_lists(n, nnz, ci, ri, col_at, &byc) && make_lists(k, nnz, ri, ci, NULL, &byr) &&
         make_lists(k * ws->blocks, nnz, bl, ri, NULL, &byb);
    if (!ok) st = sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "wsparse build");
    release(ws);
    if (st == SPARTAN_OK) st = upload(ctx, byc.ptr, n + 1, 4, "wsparse", &ws->col_ptr);
    if (st == SPARTAN_OK) st = upload(ctx, byc.idx, nnz, 4, "wsparse", &ws->col_idx);
    if (st == SPARTAN_OK) st = upload(ctx, byc.order, n, 4, "wsparse", &ws->col_order);
    if (st == SPARTAN_OK) st = upload(ctx, byr.ptr, k + 1, 4, "wsparse", &ws->row_ptr);
    if (st == SPARTAN_OK) st = upload(ctx, byr.idx, nnz, 4, "wsparse", &ws->row_idx);
    if (st == SPARTAN_OK) st = upload(ctx, byr.order, k, 4, "wsparse", &ws->row_order);
    if (st == SPARTAN_OK) st = upload(ctx, byb.ptr, k * ws->blocks + 1, 4, "wsparse", &ws->bptr);
    if (st == SPARTAN_OK) st = upload(ctx, bj, nnz, 2, "wsparse", &ws->bj);
    if (st == SPARTAN_OK) st = upload(ctx, pos, nnz, 4, "wsparse", &ws->pos);
    if (st == SPARTAN_OK) st = upload(ctx, col_at, nnz, 4, "wsparse", &ws->col_at);
    if (st == SPARTAN_OK) st = upload(ctx, NULL, 0, 4 * (nnz ? nnz : 1), "wsparse", &ws->vals);
    if (st == SPARTAN_OK) {
        ws->nnz = nnz;
        ws->longest_col = byc.longest;
        ws->longest_row = byr.longest;
        /* a work-item of the union GEMM: its zeroing, the K elements of X's row, and at most
         * every non-zero of its block */
        size_t most = 0;
        for (size_t b = 0; b < ws->blocks; b++) {
            size_t in = 0;
            for (size_t i = 0; i < k; i++)
                in += byb.ptr[i * ws->blocks + b + 1] - byb.ptr[i * ws->blocks + b];
            if (in > most) most = in;
        }
        ws->longest_union = ws->bw + k + most;
        ws->built = 1;
    } else {
        release(ws);
    }
    free_lists(&byc);
    free_lists(&byr);
    free_lists(&byb);
    free(ri);
    free(ci);
    free(bl);
    free(bj);
    free(pos);
    free(col_at);
    return st;
}

/* Checks of a weight-sparse GEMM's operands: in (M x `in_cols`), W (ws's K x N), out (M x
 * out_cols); *m: M. */
static spartan_status check(spartan_context *ctx, const char *fn, const spartan_tensor *in,
                            size_t in_cols, const spartan_tensor *w, const spartan_wsparse *ws,
                            const spartan_tensor *out, size_t out_cols, size_t *m) {
    if (!ctx || !in || !w || !ws || !out) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status st = sp_check_ctx(ctx, fn, SP_TENSORS(in, w, out));
    if (!st) st = sp_check_apart(ctx, fn, "the output", out, "the input", in);
    if (!st) st = sp_check_apart(ctx, fn, "the output", out, "W", w);
    if (st) return st;
    if (ws->ctx != ctx) return sp_invalid(ctx, "%s: the description is of another context", fn);
    if (!ws->built) return sp_invalid(ctx, "%s: the description was not built", fn);
    *m = spartan_tensor_rows(in);
    if (spartan_tensor_cols(in) != in_cols || w->numel != ws->k * ws->n ||
        (w->numel && spartan_tensor_cols(w) != ws->n) || spartan_tensor_rows(out) != *m ||
        spartan_tensor_cols(out) != out_cols)
        return sp_invalid(ctx,
                          "%s: input %zux%zu, W %zux%zu, output %zux%zu for a %zux%zu "
                          "description (need M x %zu, %zu x %zu, M x %zu)",
                          fn, *m, spartan_tensor_cols(in), spartan_tensor_rows(w),
                          spartan_tensor_cols(w), spartan_tensor_rows(out),
                          spartan_tensor_cols(out), ws->k, ws->n, in_cols, ws->k, ws->n, out_cols);
    return sp_u32(ctx, *m, "M", &(cl_uint){0});
}

/* The scratch for `floats` (the transposed operand). */
static spartan_status scratch(spartan_wsparse *ws, size_t floats) {
    if (ws->scratch_floats >= floats) return SPARTAN_OK;
    sp_buffer_release(ws->ctx, ws->scratch);
    ws->scratch = NULL;
    ws->scratch_floats = 0;
    spartan_status st =
        sp_buffer_create(ws->ctx, floats * sizeof(float), "wsparse scratch", &ws->scratch);
    if (st == SPARTAN_OK) ws->scratch_floats = floats;
    return st;
}

/* out (M x lists) from in (M x inner) transposed and the lists (ptr, idx, order), W's values
 * gathered into their order first (by col_at for the column lists; the row lists are in W's
 * order). */
static spartan_status run_lists(spartan_context *ctx, spartan_wsparse *ws, size_t m, size_t inner,
                                const spartan_tensor *in, const spartan_tensor *w, size_t nlists,
                                cl_mem ptr, cl_mem idx, cl_mem order, int by_column,
                                spartan_tensor *out) {
    cl_uint nnz = (cl_uint)ws->nnz, permute = by_column != 0;
    sp_arg gargs[] = {SP_ARG(nnz),     SP_ARG(ws->pos), SP_ARG(ws->col_at),
                      SP_ARG(permute), SP_ARG(w->mem),  SP_ARG(ws->vals)};
    spartan_status st = sp_launch_1d(ctx, SP_K_gemm_wsparse_gather, ws->nnz, gargs, 6);
    if (st == SPARTAN_OK) st = scratch(ws, m * inner);
    if (st == SPARTAN_OK)
        st = sp_transpose_mem(ctx, (cl_uint)m, (cl_uint)inner, in->mem, ws->scratch);
    if (st != SPARTAN_OK) return st;
    const size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
    const size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "WG");
    const size_t l1 = wg < nlists ? wg : nlists;
    size_t g[2] = {(m + vec - 1) / vec, (nlists + l1 - 1) / l1 * l1}, l[2] = {1, l1};
    cl_uint um = (cl_uint)m, un = (cl_uint)nlists, ld = (cl_uint)nlists;
    sp_arg args[] = {SP_ARG(um),          SP_ARG(un),       SP_ARG(ptr),
                     SP_ARG(idx),         SP_ARG(order),    SP_ARG(ws->vals),
                     SP_ARG(ws->scratch), SP_ARG(out->mem), SP_ARG(ld)};
    return sp_launch(ctx, SP_K_gemm_wsparse_lists, 2, g, l, args, 9);
}

/* Whether the kernels can run the description here: the sparse family usable and no work-item's
 * loop past LOOP_MAX; else the dense GEMM computes the same product. */
static int usable(spartan_context *ctx, size_t longest) {
    return sp_sparse_usable(ctx) && longest <= sp_loop_max(ctx);
}

enum { OP_FWD, OP_BWD_INPUT, OP_BOTH };

/* What the three calls share: the checks (in: X, or dY for OP_BWD_INPUT), and the cases the kernels
 * leave to others: an empty output, a W without non-zeros (zeros), a description the kernels
 * cannot run here (the dense GEMM). *done when the call is complete; else *m: M. */
static spartan_status start(spartan_context *ctx, int op, const spartan_tensor *in,
                            const spartan_tensor *w, spartan_wsparse *ws, spartan_tensor *out,
                            size_t *m, int *done) {
    static const char *const fn[] = {"spartan_gemm_wsparse_fwd", "spartan_gemm_wsparse_bwd_input",
                                     "spartan_gemm_wsparse_fwd_both"};
    const int bi = op == OP_BWD_INPUT;
    *done = 1;
    spartan_status st = check(ctx, fn[op], in, ws ? (bi ? ws->n : ws->k) : 0, w, ws, out,
                              ws ? (bi ? ws->k : ws->n) : 0, m);
    if (st != SPARTAN_OK || out->numel == 0) return st;
    if (!ws->nnz) return spartan_tensor_fill(out, 0.0f);
    const size_t longest = op == OP_FWD ? ws->longest_col
                           : bi         ? ws->longest_row
                                        : ws->longest_union;
    if (!usable(ctx, longest))
        return spartan_gemm_dense(ctx, SPARTAN_GEMM_BEST, 0, bi, 1.0f, in, w, 0.0f, out);
    *done = 0;
    return SPARTAN_OK;
}

spartan_status spartan_gemm_wsparse_fwd(spartan_context *ctx, const spartan_tensor *x,
                                        const spartan_tensor *w, spartan_wsparse *ws,
                                        spartan_tensor *y) {
    size_t m = 0;
    int done;
    spartan_status st = start(ctx, OP_FWD, x, w, ws, y, &m, &done);
    if (done) return st;
    return run_lists(ctx, ws, m, ws->k, x, w, ws->n, ws->col_ptr, ws->col_idx, ws->col_order, 1, y);
}

spartan_status spartan_gemm_wsparse_bwd_input(spartan_context *ctx, const spartan_tensor *dy,
                                              const spartan_tensor *w, spartan_wsparse *ws,
                                              spartan_tensor *dx) {
    size_t m = 0;
    int done;
    spartan_status st = start(ctx, OP_BWD_INPUT, dy, w, ws, dx, &m, &done);
    if (done) return st;
    return run_lists(ctx, ws, m, ws->n, dy, w, ws->k, ws->row_ptr, ws->row_idx, ws->row_order, 0,
                     dx);
}

spartan_status spartan_gemm_wsparse_fwd_both(spartan_context *ctx, const spartan_tensor *x,
                                             const spartan_tensor *w, spartan_wsparse *ws,
                                             spartan_tensor *y) {
    size_t m = 0;
    int done;
    spartan_status st = start(ctx, OP_BOTH, x, w, ws, y, &m, &done);
    if (done) return st;
    cl_uint um = (cl_uint)m, uk = (cl_uint)ws->k, un = (cl_uint)ws->n, bw = (cl_uint)ws->bw,
            nb = (cl_uint)ws->blocks;
    const size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "WG");
    const size_t l0 = wg < m ? wg : m;
    size_t g[2] = {(m + l0 - 1) / l0 * l0, ws->blocks}, l[2] = {l0, 1};
    sp_arg args[] = {SP_ARG(um),     SP_ARG(uk),     SP_ARG(un),       SP_ARG(bw),
                     SP_ARG(nb),     SP_ARG(x->mem), SP_ARG(ws->bptr), SP_ARG(ws->bj),
                     SP_ARG(w->mem), SP_ARG(y->mem)};
    return sp_launch(ctx, SP_K_gemm_wsparse_union, 2, g, l, args, 10);
}
