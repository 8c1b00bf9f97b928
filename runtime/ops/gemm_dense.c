/* Dense GEMM, two paths: CLBlast (portable, tuned for GPUs) and the runtime's own
 * register-blocked vector kernel (kernels_cl/gemm_dense.cl), which is what wins on CPUs, where
 * CLBlast has no tuned parameters. "Best dense" is the faster of the two for the device. */
#include <stdio.h>

#include "core/log.h"
#include "ops/selftest.h"

#ifdef SPARTAN_HAVE_CLBLAST
#include <clblast_c.h>
#endif

int spartan_have_clblast(void) {
#ifdef SPARTAN_HAVE_CLBLAST
    return 1;
#else
    return 0;
#endif
}

/* CPU drivers and simulators, where the own kernel is the one worth running. */
static int cpu_like(const spartan_context *ctx) {
    return (ctx->dev.info.type & SPARTAN_DEVICE_CPU) ||
           ctx->dev.info.vendor == SPARTAN_VENDOR_POCL ||
           ctx->dev.info.vendor == SPARTAN_VENDOR_SIMULATOR;
}

spartan_gemm_path spartan_gemm_best(const spartan_context *ctx) {
    if (!ctx || !spartan_have_clblast()) return SPARTAN_GEMM_OWN;
    /* CLBlast's database has no entry for CPU OpenCL drivers: its vendor defaults run at
     * 0.03-0.40x OpenBLAS on POCL, where the own kernel is at 0.5-1.2x. On a simulator
     * (Oclgrind) the own kernel is the one worth checking. */
    return cpu_like(ctx) ? SPARTAN_GEMM_OWN : SPARTAN_GEMM_CLBLAST;
}

/* Whether CLBlast computes right on ctx's device: its known-answer test, once per context. */
static int clblast_ok(spartan_context *ctx) {
    sp_clblast_check *c = sp_clblast_check_of(ctx);
    if (!c) return 0;
    if (c->state == 0) {
        c->state = 2; /* the check itself runs CLBlast */
        int bad = sp_selftest_gemm(ctx, SPARTAN_GEMM_CLBLAST, c->why, sizeof c->why);
        c->state = bad ? -1 : 1;
        if (bad) {
            sp_log(SPARTAN_LOG_WARN,
                   "CLBlast failed its validation on %s: %s; the own or the reference GEMM runs "
                   "instead",
                   ctx->dev.info.name, c->why);
            spartan_context_finish(ctx);
            sp_err_clear(&ctx->err);
        }
    }
    return c->state > 0;
}

/* What runs a GEMM asked for on path: CLBlast when asked (or best) and it validated; else the
 * own kernel when its family validated; else CLBlast on GPUs, where it is fast; else the
 * reference kernel. */
typedef enum { RUN_OWN, RUN_CLBLAST, RUN_REFERENCE } gemm_impl;

static gemm_impl resolve(spartan_context *ctx, spartan_gemm_path path) {
    if (path == SPARTAN_GEMM_BEST) path = spartan_gemm_best(ctx);
    int own = sp_family_usable(ctx, SP_FAMILY_gemm_dense);
    if (path == SPARTAN_GEMM_CLBLAST && clblast_ok(ctx)) return RUN_CLBLAST;
    if (own) return RUN_OWN;
    if (spartan_have_clblast() && !cpu_like(ctx) && clblast_ok(ctx)) return RUN_CLBLAST;
    return RUN_REFERENCE;
}

#ifdef SPARTAN_HAVE_CLBLAST
static spartan_status run_clblast(spartan_context *ctx, int ta, int tb, size_t m, size_t n,
                                  size_t k, float alpha, const spartan_tensor *a,
                                  const spartan_tensor *b, float beta, spartan_tensor *c) {
    cl_command_queue q = ctx->queue;
    CLBlastStatusCode rc = CLBlastSgemm(
        CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
        tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a->mem, 0,
        spartan_tensor_cols(a), b->mem, 0, spartan_tensor_cols(b), beta, c->mem, 0, n, &q, NULL);
    ctx->launches++; /* one call: CLBlast may launch one to three kernels for it */
    if (rc == CLBlastSuccess) return SPARTAN_OK;
    spartan_status st = (rc == CLBlastOpenCLOutOfResources || rc == CLBlastTempBufferAllocFailure)
                            ? SPARTAN_STATUS_OUT_OF_DEVICE_MEMORY
                            : SPARTAN_STATUS_OPENCL_ERROR;
    return sp_err_set(&ctx->err, st, "CLBlastSgemm (%zux%zux%zu) failed with CLBlast status %d", m,
                      n, k, (int)rc);
}
#endif

/* How many slices to cut K into: when K is long and C small (backward-by-weight: C is a
 * weight matrix, K is batch x pixels), slices of ~1024 give every work-group panels that fit
 * in cache and give the device more groups than C alone would (the partial sums cost M x N
 * floats per slice, so only small C are split that way); and always enough that no work-item
 * runs more than the loop bound. A step of k costs, counted as if the compiler unrolled
 * nothing (gemm_dense.cl): the k loop, NB loads of B, and RB rows of NB FMAs; its stores and
 * set-up RB x NB more. */
static size_t split_parts(const spartan_context *ctx, size_t m, size_t n, size_t k) {
    size_t parts = 1;
    if (k >= 4096 && m * n <= ((size_t)1 << 20)) parts = k / 1024 > 32 ? 32 : k / 1024;
    size_t rb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_RB");
    size_t nb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_NB");
    size_t step = 1 + nb + rb * (1 + nb), fixed = 4 * rb * (1 + nb);
    size_t kc_max = (sp_loop_max(ctx) - fixed) / step;
    size_t bounded = (k + kc_max - 1) / kc_max;
    return parts > bounded ? parts : bounded;
}

spartan_status sp_transpose_mem(spartan_context *ctx, cl_uint rows, cl_uint cols, cl_mem in,
                                cl_mem out) {
    /* groups of WG work-items, 8 columns by WG / 8 rows: POCL runs each group as a task (groups
     * of 16 cost a 400 x 120 transpose 0.15-0.2 ms), and a group writes a row of out per column,
     * rows apart by the row count: 16 of them, 4 KiB apart for 1024 rows, thrashed an 8-way cache
     * (1024 x 1024: 1.86 ms with 16 x 16 groups, 0.40 with 8 x 32; 784 x 1024: 0.30 -> 0.24) */
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "WG");
    size_t g[2] = {cols, rows}, l[2] = {wg >= 8 ? 8 : wg, wg >= 16 ? wg / 8 : 1};
    sp_arg args[] = {SP_ARG(rows), SP_ARG(cols), SP_ARG(in), SP_ARG(out)};
    return sp_launch(ctx, SP_K_eltwise_transpose, 2, g, l, args, 4);
}

/* One launch of the own kernel over K-slices [part0, part0 + nparts) of kc (split_reduce);
 * tiles: a gemm_tiles_* kernel and its pattern (sp_gemm_tiles), else 0. */
typedef struct own_gemm {
    int ta;
    cl_uint m, n, k, kc;
    cl_mem a, b;
    sp_kernel_id tiles;
    cl_uint targs[6]; /* tile_args: size, rows of tiles, tiles, period, keep, offset */
} own_gemm;

static spartan_status own_slices(spartan_context *ctx, void *arg, size_t part0, size_t nparts,
                                 cl_mem dst, float alpha, float beta) {
    const own_gemm *o = arg;
    size_t rb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_RB");
    size_t cb = (size_t)(sp_tuned_get(&ctx->tuned, "VEC") * sp_tuned_get(&ctx->tuned, "GEMM_NB"));
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_WG");
    size_t g[3] = {(o->m + rb - 1) / rb, (o->n + cb - 1) / cb, nparts};
    size_t l[3] = {wg, 1, 1};
    cl_uint k0 = (cl_uint)(part0 * o->kc);
    sp_arg args[] = {
        SP_ARG(o->m),        SP_ARG(o->n),        SP_ARG(o->k),        SP_ARG(alpha),
        SP_ARG(o->a),        SP_ARG(o->b),        SP_ARG(beta),        SP_ARG(dst),
        SP_ARG(k0),          SP_ARG(o->kc),       SP_ARG(o->targs[0]), SP_ARG(o->targs[1]),
        SP_ARG(o->targs[2]), SP_ARG(o->targs[3]), SP_ARG(o->targs[4]), SP_ARG(o->targs[5])};
    if (o->tiles) return sp_launch(ctx, o->tiles, 3, g, l, args, 16);
    return sp_launch(ctx, o->ta ? SP_K_gemm_dense_tn : SP_K_gemm_dense_nn, 3, g, l, args, 10);
}

static spartan_status run_own(spartan_context *ctx, int ta, int tb, size_t m, size_t n, size_t k,
                              float alpha, const spartan_tensor *a, const spartan_tensor *b,
                              float beta, spartan_tensor *c) {
    own_gemm o = {.ta = ta, .a = a->mem, .b = b->mem};
    spartan_status st;
    if ((st = sp_u32(ctx, m, "M", &o.m)) || (st = sp_u32(ctx, n, "N", &o.n)) ||
        (st = sp_u32(ctx, k, "K", &o.k)) || (st = sp_u32(ctx, m * n, "M*N", &o.kc)))
        return st;
    if (tb) { /* B is stored N x K: transpose it into scratch (weights: small) */
        st = sp_scratch(ctx, SP_SCRATCH_TRANSPOSE, n * k * sizeof(float), &o.b);
        if (st != SPARTAN_OK) return st;
        if ((st = sp_transpose_mem(ctx, o.n, o.k, b->mem, o.b)) != SPARTAN_OK) return st;
    }
    size_t parts = split_parts(ctx, m, n, k);
    o.kc = (cl_uint)((k + parts - 1) / parts);
    return sp_split_reduce(ctx, parts, m * n, c->mem, alpha, beta, own_slices, &o);
}

spartan_status spartan_gemm_dense(spartan_context *ctx, spartan_gemm_path path, int trans_a,
                                  int trans_b, float alpha, const spartan_tensor *a,
                                  const spartan_tensor *b, float beta, spartan_tensor *c) {
    if (!ctx || !a || !b || !c) return sp_invalid(ctx, "spartan_gemm_dense: NULL argument");
    const char *fn = "spartan_gemm_dense";
    spartan_status cst = sp_check_ctx(ctx, fn, SP_TENSORS(a, b, c));
    if (!cst) cst = sp_check_apart(ctx, fn, "C", c, "A", a);
    if (!cst) cst = sp_check_apart(ctx, fn, "C", c, "B", b);
    if (cst) return cst;
    size_t m = trans_a ? spartan_tensor_cols(a) : spartan_tensor_rows(a);
    size_t k = trans_a ? spartan_tensor_rows(a) : spartan_tensor_cols(a);
    size_t kb = trans_b ? spartan_tensor_cols(b) : spartan_tensor_rows(b);
    size_t n = trans_b ? spartan_tensor_rows(b) : spartan_tensor_cols(b);
    if (k != kb || spartan_tensor_rows(c) != m || spartan_tensor_cols(c) != n)
        return sp_invalid(ctx,
                          "spartan_gemm_dense: op(A) is %zux%zu, op(B) is %zux%zu, C is %zux%zu "
                          "(need MxK, KxN, MxN)",
                          m, k, kb, n, spartan_tensor_rows(c), spartan_tensor_cols(c));
    if ((unsigned)path > SPARTAN_GEMM_CLBLAST)
        return sp_invalid(ctx, "spartan_gemm_dense: unknown path %d", (int)path);
    if (path == SPARTAN_GEMM_CLBLAST && !spartan_have_clblast())
        return sp_err_set(&ctx->err, SPARTAN_STATUS_UNSUPPORTED,
                          "spartan_gemm_dense: this libspartan was built without CLBlast "
                          "(SPARTAN_WITH_CLBLAST=OFF); use SPARTAN_GEMM_OWN or _BEST");
    if (m == 0 || n == 0) return SPARTAN_OK;
    if (k == 0) { /* C = beta * C */
        cl_uint count;
        spartan_status st = sp_u32(ctx, m * n, "M*N", &count);
        if (st != SPARTAN_OK) return st;
        sp_arg args[] = {SP_ARG(count), SP_ARG(beta), SP_ARG(c->mem)};
        return sp_launch_1d(ctx, SP_K_eltwise_scale, m * n, args, 3);
    }
    switch (resolve(ctx, path)) {
#ifdef SPARTAN_HAVE_CLBLAST
    case RUN_CLBLAST:
        return run_clblast(ctx, trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
#endif
    case RUN_OWN:
        return run_own(ctx, trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
    default:
        return sp_reference_gemm(ctx, trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
    }
}

spartan_status spartan_transpose(spartan_context *ctx, const spartan_tensor *a, spartan_tensor *b) {
    if (!ctx || !a || !b) return sp_invalid(ctx, "spartan_transpose: NULL argument");
    spartan_status cst = sp_check_ctx(ctx, "spartan_transpose", SP_TENSORS(a, b));
    if (!cst) cst = sp_check_apart(ctx, "spartan_transpose", "B", b, "A", a);
    if (cst) return cst;
    const size_t rows = spartan_tensor_rows(a), cols = spartan_tensor_cols(a);
    if (b->numel != a->numel || (b->numel && spartan_tensor_cols(b) != rows) ||
        (a->mem && a->mem == b->mem))
        return sp_invalid(ctx, "spartan_transpose: %zux%zu into a tensor that is not %zux%zu", rows,
                          cols, cols, rows);
    cl_uint ur, uc;
    spartan_status st;
    if ((st = sp_u32(ctx, rows, "rows", &ur)) || (st = sp_u32(ctx, cols, "cols", &uc))) return st;
    return a->numel ? sp_transpose_mem(ctx, ur, uc, a->mem, b->mem) : SPARTAN_OK;
}

/* ---- Tile dropout (kernels_cl/gemm_dense.cl, gemm_tiles_*) ------------------------------------
 */

size_t sp_gemm_tile_size(const spartan_context *ctx) {
    /* the register block's width, times what makes it at least 32 (simulators' blocks are of 1
     * column: tiles of 1 would make plans over every weight) */
    const size_t cb =
        (size_t)(sp_tuned_get(&ctx->tuned, "VEC") * sp_tuned_get(&ctx->tuned, "GEMM_NB"));
    return cb * ((32 + cb - 1) / cb);
}

int sp_gemm_tiles_usable(spartan_context *ctx) {
    return sp_family_usable(ctx, SP_FAMILY_gemm_dense);
}

/* The kernels' tile arguments for W of wk x wk (tile size, rows of tiles, tile count, period,
 * keep, offset), after checking that p is a pattern over W's tiles. */
static spartan_status tile_args(spartan_context *ctx, const char *fn, const sp_row_pattern *p,
                                size_t wk, size_t wn, cl_uint out[6]) {
    const size_t tile = sp_gemm_tile_size(ctx), rows_t = (wk + tile - 1) / tile;
    const size_t count = rows_t * ((wn + tile - 1) / tile);
    if (p->n != count || !p->period || p->keep > p->period || p->offset >= (p->n ? p->n : 1))
        return sp_invalid(ctx,
                          "%s: pattern n %zu, period %zu, keep %zu, offset %zu for %zu x %zu "
                          "tiles of %zu",
                          fn, p->n, p->period, p->keep, p->offset, rows_t,
                          count / (rows_t ? rows_t : 1), tile);
    const size_t v[6] = {tile, rows_t, p->n, p->period, p->keep, p->offset};
    spartan_status st = SPARTAN_OK;
    for (int i = 0; i < 6 && st == SPARTAN_OK; i++) st = sp_u32(ctx, v[i], "tile pattern", &out[i]);
    return st;
}

spartan_status sp_gemm_tiles(spartan_context *ctx, sp_tile_use use, const sp_row_pattern *p,
                             float alpha, const spartan_tensor *a, const spartan_tensor *b,
                             spartan_tensor *c) {
    static const char fn[] = "sp_gemm_tiles";
    if (!ctx || !a || !b || !c || !p) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status st = sp_check_ctx(ctx, fn, SP_TENSORS(a, b, c));
    if (st == SPARTAN_OK) st = sp_check_apart(ctx, fn, "C", c, "A", a);
    if (st == SPARTAN_OK) st = sp_check_apart(ctx, fn, "C", c, "B", b);
    if (st != SPARTAN_OK) return st;
    if (!sp_gemm_tiles_usable(ctx))
        return sp_err_set(&ctx->err, SPARTAN_STATUS_UNSUPPORTED,
                          "%s: the own GEMM kernels are off on %s (%s)", fn, ctx->dev.info.name,
                          ctx->programs[SP_FAMILY_gemm_dense].why);
    /* the weight matrix W (K x N: b, b again, or c) and the product's M x N x K */
    const int weight = use == SP_TILES_WEIGHT || use == SP_TILES_WEIGHT_KEPT, ta = weight;
    const spartan_tensor *w = weight ? c : b;
    const size_t wk = spartan_tensor_rows(w), wn = spartan_tensor_cols(w);
    const size_t m = ta ? spartan_tensor_cols(a) : spartan_tensor_rows(a);
    const size_t k = ta ? spartan_tensor_rows(a) : spartan_tensor_cols(a);
    const size_t n = use == SP_TILES_INPUT ? wk : wn;
    const size_t kb = weight ? spartan_tensor_rows(b) : use == SP_TILES_INPUT ? wn : wk;
    const size_t bn = weight ? spartan_tensor_cols(b) : n;
    if (k != kb || bn != n || spartan_tensor_rows(c) != m || spartan_tensor_cols(c) != n)
        return sp_invalid(ctx, "%s: A %zux%zu, B %zux%zu and C %zux%zu do not make a product", fn,
                          spartan_tensor_rows(a), spartan_tensor_cols(a), spartan_tensor_rows(b),
                          spartan_tensor_cols(b), spartan_tensor_rows(c), spartan_tensor_cols(c));
    static const sp_kernel_id kernels[] = {SP_K_gemm_tiles_nn, SP_K_gemm_tiles_nt,
                                           SP_K_gemm_tiles_tn, SP_K_gemm_tiles_tk};
    own_gemm o = {.ta = ta, .a = a->mem, .b = b->mem, .tiles = kernels[use]};
    if ((st = tile_args(ctx, fn, p, wk, wn, o.targs)) != SPARTAN_OK) return st;
    if (m == 0 || n == 0) return SPARTAN_OK;
    if ((st = sp_u32(ctx, m, "M", &o.m)) || (st = sp_u32(ctx, n, "N", &o.n)) ||
        (st = sp_u32(ctx, k, "K", &o.k)) || (st = sp_u32(ctx, m * n, "M*N", &o.kc)))
        return st;
    if (k == 0) return spartan_tensor_fill(c, 0.0f);
    const size_t tile = sp_gemm_tile_size(ctx), rb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_RB");
    if (use == SP_TILES_INPUT && tile % rb == 0) {
        /* dX^T = W dY^T (gemm_tiles_wa): W read in place, its dropped tiles skipped; dY and the
         * result (M x N of the product, small) transposed around it. Transposing all of W into
         * scratch instead cost fc2 (1024 x 1024) 0.4 ms a step, the kept tiles alone as much. */
        cl_mem dyt, ct;
        st = sp_scratch(ctx, SP_SCRATCH_TRANSPOSE, m * k * sizeof(float), &dyt);
        if (st == SPARTAN_OK) st = sp_scratch(ctx, SP_SCRATCH_COLS, m * n * sizeof(float), &ct);
        if (st == SPARTAN_OK) st = sp_transpose_mem(ctx, o.m, o.k, a->mem, dyt);
        if (st != SPARTAN_OK) return st;
        const cl_uint rows = o.n, cols = o.m;
        o.m = rows;
        o.n = cols;
        o.a = b->mem;
        o.b = dyt;
        o.tiles = SP_K_gemm_tiles_wa;
        size_t parts = split_parts(ctx, n, m, k);
        o.kc = (cl_uint)((k + parts - 1) / parts);
        st = sp_split_reduce(ctx, parts, m * n, ct, alpha, 0.0f, own_slices, &o);
        return st == SPARTAN_OK ? sp_transpose_mem(ctx, rows, cols, ct, c->mem) : st;
    }
    if (use == SP_TILES_INPUT) { /* W^T (N x K of the product) into scratch */
        st = sp_scratch(ctx, SP_SCRATCH_TRANSPOSE, n * k * sizeof(float), &o.b);
        if (st == SPARTAN_OK) st = sp_transpose_mem(ctx, (cl_uint)wk, (cl_uint)wn, b->mem, o.b);
        if (st != SPARTAN_OK) return st;
    }
    size_t parts = split_parts(ctx, m, n, k);
    o.kc = (cl_uint)((k + parts - 1) / parts);
    return sp_split_reduce(ctx, parts, m * n, c->mem, alpha, 0.0f, own_slices, &o);
}

spartan_status sp_gemm_tiles_sgd(spartan_context *ctx, const sp_row_pattern *p, spartan_tensor *w,
                                 const spartan_tensor *g, spartan_tensor *v, float lr,
                                 float momentum, float weight_decay) {
    static const char fn[] = "sp_gemm_tiles_sgd";
    if (!ctx || !p || !w || !g || !v) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status st = sp_check_ctx(ctx, fn, SP_TENSORS(w, g, v));
    if (st == SPARTAN_OK) st = sp_check_apart(ctx, fn, "w", w, "g", g);
    if (st == SPARTAN_OK) st = sp_check_apart(ctx, fn, "v", v, "w", w);
    if (st != SPARTAN_OK) return st;
    const size_t rows = spartan_tensor_rows(w), cols = spartan_tensor_cols(w);
    if (g->numel != w->numel || v->numel != w->numel)
        return sp_invalid(ctx, "%s: w, g, v of %zu, %zu, %zu elements", fn, w->numel, g->numel,
                          v->numel);
    cl_uint a[8];
    st = tile_args(ctx, fn, p, rows, cols, a + 2);
    if (st == SPARTAN_OK) st = sp_u32(ctx, rows, "rows", &a[0]);
    if (st == SPARTAN_OK) st = sp_u32(ctx, cols, "columns", &a[1]);
    if (st != SPARTAN_OK || !rows || !cols) return st;
    const size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
    const size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "WG");
    const size_t gs[2] = {(cols + vec - 1) / vec, rows}, ls[2] = {wg, 1};
    sp_arg args[] = {SP_ARG(w->mem),   SP_ARG(g->mem),      SP_ARG(v->mem), SP_ARG(a[0]),
                     SP_ARG(a[1]),     SP_ARG(a[2]),        SP_ARG(a[3]),   SP_ARG(a[4]),
                     SP_ARG(a[5]),     SP_ARG(a[6]),        SP_ARG(a[7]),   SP_ARG(lr),
                     SP_ARG(momentum), SP_ARG(weight_decay)};
    return sp_launch(ctx, SP_K_gemm_tiles_sgd, 2, gs, ls, args, 14);
}
