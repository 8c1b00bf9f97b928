/* Row patterns on the device (kernels_cl/nn.cl, nn_row_*): the index maps of a pattern, and the
 * gathers and scatters that turn a GEMM over all neurons into a smaller dense GEMM over the kept
 * ones (Approximate Random Dropout's row dropout, runtime/nn/ard.c). */
#include "ops/ops_internal.h"
#include "tensor/tensor_internal.h"

size_t sp_row_pattern_count(const sp_row_pattern *p) {
    if (!p->period) return 0;
    const size_t whole = p->n / p->period, rest = p->n % p->period;
    return whole * p->keep + (rest < p->keep ? rest : p->keep);
}

size_t sp_row_pattern_index(const sp_row_pattern *p, size_t j) {
    const size_t u = j >= p->offset ? j - p->offset : j + (p->n - p->offset);
    const size_t r = u % p->period;
    return r < p->keep ? (u / p->period) * p->keep + r : SIZE_MAX;
}

spartan_status sp_row_maps_create(spartan_context *ctx, size_t n, sp_row_maps *m) {
    *m = (sp_row_maps){.ctx = ctx, .n = n};
    const size_t bytes = (n ? n : 1) * sizeof(cl_uint);
    spartan_status st = sp_buffer_create(ctx, bytes, "row pattern map", &m->map);
    if (st == SPARTAN_OK) st = sp_buffer_create(ctx, bytes, "row pattern map", &m->inv);
    if (st != SPARTAN_OK) sp_row_maps_release(m);
    return st;
}

void sp_row_maps_release(sp_row_maps *m) {
    if (!m->ctx) return;
    sp_buffer_release(m->ctx, m->map);
    sp_buffer_release(m->ctx, m->inv);
    m->map = m->inv = NULL;
}

spartan_status sp_row_maps_set(spartan_context *ctx, sp_row_maps *m, const sp_row_pattern *p) {
    if (p->n != m->n || !p->period || p->keep > p->period || p->offset >= (p->n ? p->n : 1))
        return sp_invalid(ctx,
                          "row pattern: n %zu, period %zu, keep %zu, offset %zu does not fit "
                          "maps of %zu neurons",
                          p->n, p->period, p->keep, p->offset, m->n);
    cl_uint n, period, keep, offset;
    spartan_status st = sp_u32(ctx, p->n, "neurons", &n);
    if (st == SPARTAN_OK) st = sp_u32(ctx, p->period, "period", &period);
    if (st == SPARTAN_OK) st = sp_u32(ctx, p->keep, "keep", &keep);
    if (st == SPARTAN_OK) st = sp_u32(ctx, p->offset, "offset", &offset);
    if (st != SPARTAN_OK) return st;
    m->count = sp_row_pattern_count(p);
    if (!n) return SPARTAN_OK;
    sp_arg args[] = {SP_ARG(m->map), SP_ARG(m->inv), SP_ARG(n),
                     SP_ARG(period), SP_ARG(keep),   SP_ARG(offset)};
    return sp_launch_1d(ctx, SP_K_nn_row_map, n, args, 6);
}

/* A launch over cols x rows work-items (dimension 0 the columns, in groups of the tuned WG). */
static spartan_status launch_2d(spartan_context *ctx, sp_kernel_id k, size_t cols, size_t rows,
                                const sp_arg *args, cl_uint nargs) {
    const size_t global[2] = {cols, rows}, local[2] = {(size_t)sp_tuned_get(&ctx->tuned, "WG"), 1};
    return sp_launch(ctx, k, 2, global, local, args, nargs);
}

/* The kept rows and columns of rows x cols (r, c: NULL for all), and the checks both ways share. */
static spartan_status shapes(spartan_context *ctx, const char *fn, size_t rows, size_t cols,
                             const sp_row_maps *r, const sp_row_maps *c, size_t *rows_c,
                             size_t *cols_c) {
    if ((r && r->n != rows) || (c && c->n != cols))
        return sp_invalid(ctx, "%s: patterns over %zu x %zu neurons for a %zu x %zu matrix", fn,
                          r ? r->n : rows, c ? c->n : cols, rows, cols);
    *rows_c = r ? r->count : rows;
    *cols_c = c ? c->count : cols;
    return SPARTAN_OK;
}

/* The kernels' map arguments: r's and c's map (or, inverse, inv) buffers, any buffer where a
 * pattern is absent (has_* 0: never read). */
typedef struct maps_args {
    cl_mem r, c;
    cl_int has_r, has_c;
} maps_args;

static maps_args maps_of(const sp_row_maps *r, const sp_row_maps *c, int inverse, cl_mem any) {
    maps_args a = {any, any, r != NULL, c != NULL};
    if (r) a.r = inverse ? r->inv : r->map;
    if (c) a.c = inverse ? c->inv : c->map;
    return a;
}

static spartan_status rows_launch(spartan_context *ctx, const char *fn, sp_kernel_id k,
                                  const spartan_tensor *in, size_t in_numel, spartan_tensor *out,
                                  size_t out_rows, size_t out_cols, size_t a, size_t b, size_t d,
                                  const sp_row_maps *r, const sp_row_maps *c, int inverse,
                                  float scale, const spartan_tensor *rscale) {
    const size_t out_numel = out_rows * out_cols;
    if (!ctx || !in || !out) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status st = sp_check_ctx(ctx, fn, SP_TENSORS(in, out));
    if (st == SPARTAN_OK) st = sp_check_apart(ctx, fn, "the output", out, "the input", in);
    if (st != SPARTAN_OK) return st;
    if (in->numel < in_numel || out->numel < out_numel)
        return sp_invalid(ctx, "%s: %zu and %zu elements, the shapes need %zu and %zu", fn,
                          in->numel, out->numel, in_numel, out_numel);
    cl_uint a0, a1, a2, items;
    st = sp_u32(ctx, a, "rows", &a0);
    if (st == SPARTAN_OK) st = sp_u32(ctx, b, "columns", &a1);
    if (st == SPARTAN_OK) st = sp_u32(ctx, d, "columns", &a2);
    if (st == SPARTAN_OK) st = sp_u32(ctx, out_numel, "elements", &items);
    if (st != SPARTAN_OK || items == 0) return st;
    if (rscale && (!r || rscale->numel < r->count))
        return sp_invalid(ctx, "%s: row scales without a row pattern, or fewer than its %zu rows",
                          fn, r ? r->count : 0);
    const maps_args m = maps_of(r, c, inverse, in->mem);
    const cl_mem rs = rscale ? rscale->mem : in->mem; /* never read without has_rs */
    const cl_int has_rs = rscale != NULL;
    sp_arg args[] = {SP_ARG(in->mem), SP_ARG(out->mem), SP_ARG(a0),  SP_ARG(a1),
                     SP_ARG(a2),      SP_ARG(m.r),      SP_ARG(m.c), SP_ARG(m.has_r),
                     SP_ARG(m.has_c), SP_ARG(scale),    SP_ARG(rs),  SP_ARG(has_rs)};
    /* fewer columns than a group: one work-item per element over a 1-D range (a
     * convolution's input channels: a 2-D range of 64 x 14 x 14 rows of 3 idled 61 of 64) */
    if (out_cols < (size_t)sp_tuned_get(&ctx->tuned, "WG"))
        return sp_launch_1d(
            ctx, k == SP_K_nn_row_gather ? SP_K_nn_row_gather_1d : SP_K_nn_row_scatter_1d,
            out_numel, args, 12);
    return launch_2d(ctx, k, out_cols, out_rows, args, 12);
}

spartan_status sp_row_gather_scaled(spartan_context *ctx, const spartan_tensor *in, size_t rows,
                                    size_t cols, const sp_row_maps *r, const sp_row_maps *c,
                                    float scale, const spartan_tensor *rscale,
                                    spartan_tensor *out) {
    static const char fn[] = "sp_row_gather";
    size_t rows_c = 0, cols_c = 0;
    spartan_status st = shapes(ctx, fn, rows, cols, r, c, &rows_c, &cols_c);
    if (st != SPARTAN_OK) return st;
    /* nn_row_gather(in, out, cols, rows_c, cols_c, rmap, cmap, has_r, has_c, scale, rscale, ..) */
    return rows_launch(ctx, fn, SP_K_nn_row_gather, in, rows * cols, out, rows_c, cols_c, cols,
                       rows_c, cols_c, r, c, 0, scale, rscale);
}

spartan_status sp_row_gather(spartan_context *ctx, const spartan_tensor *in, size_t rows,
                             size_t cols, const sp_row_maps *r, const sp_row_maps *c, float scale,
                             spartan_tensor *out) {
    return sp_row_gather_scaled(ctx, in, rows, cols, r, c, scale, NULL, out);
}

spartan_status sp_row_scatter_scaled(spartan_context *ctx, const spartan_tensor *in, size_t rows,
                                     size_t cols, const sp_row_maps *r, const sp_row_maps *c,
                                     float scale, const spartan_tensor *rscale,
                                     spartan_tensor *out) {
    static const char fn[] = "sp_row_scatter";
    size_t rows_c = 0, cols_c = 0;
    spartan_status st = shapes(ctx, fn, rows, cols, r, c, &rows_c, &cols_c);
    if (st != SPARTAN_OK) return st;
    /* nn_row_scatter(in, out, rows, cols, cols_c, rinv, cinv, has_r, has_c, scale, rscale, ..) */
    return rows_launch(ctx, fn, SP_K_nn_row_scatter, in, rows_c * cols_c, out, rows, cols, rows,
                       cols, cols_c, r, c, 1, scale, rscale);
}

spartan_status sp_row_scatter(spartan_context *ctx, const spartan_tensor *in, size_t rows,
                              size_t cols, const sp_row_maps *r, const sp_row_maps *c, float scale,
                              spartan_tensor *out) {
    return sp_row_scatter_scaled(ctx, in, rows, cols, r, c, scale, NULL, out);
}

spartan_status sp_row_maps_write(spartan_context *ctx, sp_row_maps *m, size_t count,
                                 const cl_uint *map, const cl_uint *inv) {
    if (count > m->n) return sp_invalid(ctx, "row maps: %zu kept of %zu neurons", count, m->n);
    m->count = count;
    cl_int rc = count ? clEnqueueWriteBuffer(ctx->queue, m->map, CL_FALSE, 0,
                                             count * sizeof(cl_uint), map, 0, NULL, NULL)
                      : CL_SUCCESS;
    if (rc == CL_SUCCESS && m->n)
        rc = clEnqueueWriteBuffer(ctx->queue, m->inv, CL_FALSE, 0, m->n * sizeof(cl_uint), inv, 0,
                                  NULL, NULL);
    return rc == CL_SUCCESS ? SPARTAN_OK
                            : sp_ctx_cl_fail(ctx, rc, "clEnqueueWriteBuffer", "row maps");
}

spartan_status sp_row_sgd(spartan_context *ctx, spartan_tensor *w, const spartan_tensor *in,
                          spartan_tensor *v, size_t rows, size_t cols, const sp_row_maps *r,
                          const sp_row_maps *c, float scale, float lr, float momentum,
                          float weight_decay) {
    static const char fn[] = "sp_row_sgd";
    if (!ctx || !w || !in || !v) return sp_invalid(ctx, "%s: NULL argument", fn);
    size_t rows_c = 0, cols_c = 0;
    spartan_status st = shapes(ctx, fn, rows, cols, r, c, &rows_c, &cols_c);
    if (st == SPARTAN_OK) st = sp_check_ctx(ctx, fn, SP_TENSORS(w, in, v));
    if (st == SPARTAN_OK) st = sp_check_apart(ctx, fn, "w", w, "the gradient", in);
    if (st == SPARTAN_OK) st = sp_check_apart(ctx, fn, "v", v, "w", w);
    if (st == SPARTAN_OK) st = sp_check_apart(ctx, fn, "v", v, "the gradient", in);
    if (st != SPARTAN_OK) return st;
    if (w->numel != rows * cols || v->numel != rows * cols || in->numel < rows_c * cols_c)
        return sp_invalid(ctx, "%s: w %zu, v %zu and the gradient %zu elements for %zu x %zu", fn,
                          w->numel, v->numel, in->numel, rows, cols);
    cl_uint a0, a1, a2, items;
    st = sp_u32(ctx, rows, "rows", &a0);
    if (st == SPARTAN_OK) st = sp_u32(ctx, cols, "columns", &a1);
    if (st == SPARTAN_OK) st = sp_u32(ctx, cols_c, "columns", &a2);
    if (st == SPARTAN_OK) st = sp_u32(ctx, rows * cols, "elements", &items);
    if (st != SPARTAN_OK || items == 0) return st;
    const maps_args m = maps_of(r, c, 1, in->mem);
    sp_arg args[] = {SP_ARG(w->mem),   SP_ARG(in->mem),     SP_ARG(v->mem), SP_ARG(a0),
                     SP_ARG(a1),       SP_ARG(a2),          SP_ARG(m.r),    SP_ARG(m.c),
                     SP_ARG(m.has_r),  SP_ARG(m.has_c),     SP_ARG(scale),  SP_ARG(lr),
                     SP_ARG(momentum), SP_ARG(weight_decay)};
    return launch_2d(ctx, SP_K_nn_row_sgd, cols, rows, args, 14);
}

spartan_status sp_row_mask(spartan_context *ctx, const spartan_tensor *x, spartan_tensor *y,
                           size_t features, const sp_row_maps *f, float scale) {
    static const char fn[] = "sp_row_mask";
    if (!ctx || !x || !y || !f) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status st = sp_check_ctx(ctx, fn, SP_TENSORS(x, y)); /* y may be x */
    if (st != SPARTAN_OK) return st;
    if (x->numel != y->numel || f->n != features || !features || x->numel % features)
        return sp_invalid(ctx, "%s: %zu and %zu elements, a pattern over %zu of %zu features", fn,
                          x->numel, y->numel, f->n, features);
    cl_uint n, nf, count;
    st = sp_u32(ctx, x->numel, "elements", &n);
    if (st == SPARTAN_OK) st = sp_u32(ctx, features, "features", &nf);
    if (st != SPARTAN_OK || n == 0) return st;
    count = n / nf;
    sp_arg args[] = {SP_ARG(x->mem), SP_ARG(y->mem), SP_ARG(count),
                     SP_ARG(nf),     SP_ARG(f->inv), SP_ARG(scale)};
    return launch_2d(ctx, SP_K_nn_row_mask, features, count, args, 6);
}
