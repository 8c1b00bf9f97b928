/* The sparsity monitor (kernels_cl/monitor.cl) and the spartan_sparse object that holds its
 * counts and, after compaction (compact.c), the compacted operand. */
#include <stdlib.h>

#include "ops/ops_internal.h"

static void release(spartan_context *ctx, cl_mem *m) {
    sp_buffer_release(ctx, *m);
    *m = NULL;
}

void spartan_sparse_destroy(spartan_sparse *s) {
    if (!s) return;
    cl_mem *all[] = {&s->counts,   &s->partials, &s->tpos_row, &s->tpos_col, &s->list_row,
                     &s->list_col, &s->rowoff,   &s->coloff,   &s->idx_r,    &s->idx_c};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) release(s->ctx, all[i]);
    for (int l = 0; l < SP_SCAN_LEVELS; l++) {
        release(s->ctx, &s->scan_sums[l]);
        release(s->ctx, &s->scan_offs[l]);
    }
    free(s);
}

/* The tile grid of a rows x cols matrix, and the monitor's work-groups over it. */
static void set_shape(spartan_sparse *s, size_t rows, size_t cols) {
    s->rows = rows;
    s->cols = cols;
    s->tiles_r = (rows + s->tile_rows - 1) / s->tile_rows;
    s->tiles_c = (cols + s->tile_cols - 1) / s->tile_cols;
    s->ntiles = s->tiles_r * s->tiles_c;
    const size_t wg = (size_t)sp_tuned_get(&s->ctx->tuned, "WG");
    s->partial_count = (s->ntiles + wg - 1) / wg;
}

spartan_status sp_sparse_reshape(spartan_sparse *s, size_t rows, size_t cols) {
    if (!s) return sp_invalid(NULL, "sp_sparse_reshape: NULL argument");
    if (rows == s->rows && cols == s->cols) return SPARTAN_OK;
    const size_t tiles =
        ((rows + s->tile_rows - 1) / s->tile_rows) * ((cols + s->tile_cols - 1) / s->tile_cols);
    if (tiles > s->cap_tiles)
        return sp_invalid(s->ctx, "sp_sparse_reshape: %zux%zu needs %zu tiles, %zu were made", rows,
                          cols, tiles, s->cap_tiles);
    set_shape(s, rows, cols);
    s->forms = 0;
    s->filled = 0;
    s->source = NULL;
    return SPARTAN_OK;
}

spartan_status spartan_sparse_create(spartan_context *ctx, size_t rows, size_t cols,
                                     spartan_sparse **out) {
    if (out) *out = NULL;
    if (!ctx || !out) return sp_invalid(ctx, "spartan_sparse_create: NULL argument");
    if (rows > 0xffffffffu || cols > 0x7fffffffu || (rows && cols > SIZE_MAX / rows / 8))
        return sp_invalid(ctx, "spartan_sparse_create: %zux%zu is too large", rows, cols);
    spartan_sparse *s = calloc(1, sizeof *s);
    if (!s)
        return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "spartan_sparse_create");
    s->ctx = ctx;
    s->tile_rows = (size_t)sp_tuned_get(&ctx->tuned, "TILE_ROWS");
    s->tile_cols = (size_t)sp_tuned_get(&ctx->tuned, "TILE_COLS");
    set_shape(s, rows, cols);
    s->cap_tiles = s->ntiles;
    if (s->ntiles == 0) {
        *out = s;
        return SPARTAN_OK;
    }
    size_t n = s->ntiles, u = sizeof(cl_uint), h = sizeof(cl_ushort);
    struct {
        cl_mem *m;
        size_t bytes;
        const char *what;
    } bufs[] = {
        {&s->counts, n * u, "tile counts"},
        {&s->partials, s->partial_count * u, "monitor partial sums"},
        {&s->tpos_row, (n + 1) * u, "tile positions (rows)"},
        {&s->tpos_col, (n + 1) * u, "tile positions (columns)"},
        {&s->list_row, n * u, "tile list (rows)"},
        {&s->list_col, n * u, "tile list (columns)"},
        {&s->rowoff, n * (s->tile_rows + 1) * h, "row offsets"},
        {&s->coloff, n * (s->tile_cols + 1) * h, "column offsets"},
    };
    spartan_status st = SPARTAN_OK;
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0] && st == SPARTAN_OK; i++)
        st = sp_buffer_create(ctx, bufs[i].bytes, bufs[i].what, bufs[i].m);
    /* the scan's levels: chunk sums and their scans, until one chunk is left */
    size_t len = n;
    for (int l = 0; st == SPARTAN_OK && len > SP_SCAN_CHUNK; l++) {
        size_t chunks = (len + SP_SCAN_CHUNK - 1) / SP_SCAN_CHUNK;
        if (l >= SP_SCAN_LEVELS) {
            st = sp_invalid(ctx, "spartan_sparse_create: too many tiles");
            break;
        }
        st = sp_buffer_create(ctx, chunks * u, "scan sums", &s->scan_sums[l]);
        if (st == SPARTAN_OK)
            st = sp_buffer_create(ctx, (chunks + 1) * u, "scan", &s->scan_offs[l]);
        len = chunks;
    }
    if (st != SPARTAN_OK) {
        spartan_sparse_destroy(s);
        return st;
    }
    *out = s;
    return SPARTAN_OK;
}

void spartan_sparse_tile(const spartan_sparse *s, size_t *tile_rows, size_t *tile_cols) {
    if (tile_rows) *tile_rows = s ? s->tile_rows : 0;
    if (tile_cols) *tile_cols = s ? s->tile_cols : 0;
}

size_t spartan_sparse_rows(const spartan_sparse *s) {
    return s ? s->rows : 0;
}
size_t spartan_sparse_cols(const spartan_sparse *s) {
    return s ? s->cols : 0;
}

static spartan_status monitor(spartan_context *ctx, const char *fn, int relu,
                              const spartan_tensor *z, const spartan_tensor *b, spartan_tensor *y,
                              spartan_sparse *s) {
    if (!ctx || !z || !y || !s) return sp_invalid(ctx, "%s: NULL argument", fn);
    if (z->ctx != ctx || y->ctx != ctx || s->ctx != ctx || (b && b->ctx != ctx))
        return sp_invalid(ctx, "%s: objects of another context", fn);
    if (b && (spartan_tensor_numel(b) != spartan_tensor_cols(z) || b->mem == y->mem))
        return sp_invalid(ctx,
                          "%s: the bias has %zu values for %zu columns (or is the output's "
                          "buffer)",
                          fn, spartan_tensor_numel(b), spartan_tensor_cols(z));
    if (spartan_tensor_rows(z) != s->rows || spartan_tensor_cols(z) != s->cols ||
        spartan_tensor_rows(y) != s->rows || spartan_tensor_cols(y) != s->cols)
        return sp_invalid(ctx, "%s: tensor %zux%zu, sparse %zux%zu (must match)", fn,
                          spartan_tensor_rows(z), spartan_tensor_cols(z), s->rows, s->cols);
    s->forms = 0;
    s->filled = s->ntiles == 0;
    if (s->ntiles == 0) return SPARTAN_OK;
    cl_uint rows = (cl_uint)s->rows, cols = (cl_uint)s->cols, tiles_c = (cl_uint)s->tiles_c, ntiles;
    spartan_status st = sp_u32(ctx, s->ntiles, "tiles", &ntiles);
    if (st != SPARTAN_OK) return st;
    /* the monitor's kernels failed on this device: the reference count, in two passes (with a
     * bias: y = z, y += b, then the count in place) */
    if (!sp_family_usable(ctx, SP_FAMILY_monitor)) {
        if (!b) return sp_reference_count(ctx, z, y, relu, s);
        if (z->mem != y->mem) {
            cl_int rc = clEnqueueCopyBuffer(ctx->queue, z->mem, y->mem, 0, 0,
                                            spartan_tensor_numel(z) * sizeof(float), 0, NULL, NULL);
            if (rc != CL_SUCCESS) return sp_ctx_cl_fail(ctx, rc, "clEnqueueCopyBuffer", fn);
        }
        st = spartan_bias_add(ctx, y, b);
        return st == SPARTAN_OK ? sp_reference_count(ctx, y, y, relu, s) : st;
    }
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "WG");
    size_t g = s->ntiles;
    cl_mem bias = b ? b->mem : z->mem; /* monitor_relu and _count take no bias */
    sp_arg args[] = {SP_ARG(z->mem),    SP_ARG(y->mem),      SP_ARG(rows),
                     SP_ARG(cols),      SP_ARG(tiles_c),     SP_ARG(ntiles),
                     SP_ARG(s->counts), SP_ARG(s->partials), SP_ARG(bias)};
    sp_kernel_id k = b ? SP_K_monitor_bias_relu : relu ? SP_K_monitor_relu : SP_K_monitor_count;
    st = sp_launch(ctx, k, 1, &g, &wg, args, b ? 9 : 8);
    s->filled = st == SPARTAN_OK;
    return st;
}

spartan_status spartan_relu_monitor(spartan_context *ctx, const spartan_tensor *z,
                                    spartan_tensor *y, spartan_sparse *s) {
    return monitor(ctx, "spartan_relu_monitor", 1, z, NULL, y, s);
}

spartan_status spartan_bias_relu_monitor(spartan_context *ctx, const spartan_tensor *z,
                                         const spartan_tensor *b, spartan_tensor *y,
                                         spartan_sparse *s) {
    if (!b) return sp_invalid(ctx, "spartan_bias_relu_monitor: NULL bias");
    return monitor(ctx, "spartan_bias_relu_monitor", 1, z, b, y, s);
}

spartan_status spartan_monitor(spartan_context *ctx, const spartan_tensor *x, spartan_sparse *s) {
    return monitor(ctx, "spartan_monitor", 0, x, NULL, (spartan_tensor *)x, s);
}

/* The counts exist only once a monitor or compaction wrote them (the buffers start
 * uninitialised). */
static spartan_status need_filled(const spartan_sparse *s, const char *fn) {
    if (s->filled) return SPARTAN_OK;
    return sp_invalid(s->ctx,
                      "%s: the spartan_sparse has not been filled: call spartan_relu_monitor, "
                      "spartan_monitor or spartan_compact first",
                      fn);
}

spartan_status spartan_sparse_nnz(spartan_sparse *s, size_t *nnz) {
    if (!s || !nnz) return sp_invalid(s ? s->ctx : NULL, "spartan_sparse_nnz: NULL argument");
    *nnz = 0;
    spartan_status st = need_filled(s, "spartan_sparse_nnz");
    if (st != SPARTAN_OK || s->ntiles == 0) return st;
    cl_uint stack[512];
    cl_uint *p = s->partial_count <= 512 ? stack : malloc(s->partial_count * sizeof *p);
    if (!p) return sp_err_set(&s->ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "nnz");
    s->ctx->syncs++;
    cl_int rc = clEnqueueReadBuffer(s->ctx->queue, s->partials, CL_TRUE, 0,
                                    s->partial_count * sizeof *p, p, 0, NULL, NULL);
    if (rc == CL_SUCCESS)
        for (size_t i = 0; i < s->partial_count; i++) *nnz += p[i];
    if (p != stack) free(p);
    return rc == CL_SUCCESS ? SPARTAN_OK
                            : sp_ctx_cl_fail(s->ctx, rc, "clEnqueueReadBuffer", "partial sums");
}

spartan_status spartan_sparse_tile_counts(spartan_sparse *s, unsigned *host, size_t count) {
    if (!s) return sp_invalid(NULL, "spartan_sparse_tile_counts: NULL argument");
    if (count != s->ntiles)
        return sp_invalid(s->ctx, "spartan_sparse_tile_counts: %zu asked, %zu tiles", count,
                          s->ntiles);
    if (count && !host) return sp_invalid(s->ctx, "spartan_sparse_tile_counts: NULL host buffer");
    spartan_status st = need_filled(s, "spartan_sparse_tile_counts");
    if (st != SPARTAN_OK || !count) return st;
    s->ctx->syncs++;
    cl_int rc = clEnqueueReadBuffer(s->ctx->queue, s->counts, CL_TRUE, 0, count * sizeof(cl_uint),
                                    host, 0, NULL, NULL);
    return rc == CL_SUCCESS ? SPARTAN_OK
                            : sp_ctx_cl_fail(s->ctx, rc, "clEnqueueReadBuffer", "tile counts");
}
