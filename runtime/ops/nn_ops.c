/* The layer operations of ops.h (kernels_cl/nn.cl): im2col / col2im, bias, ReLU backward,
 * max- and average-pooling, dropout, softmax + cross-entropy and the SGD step. This file
 * validates arguments and launches; the layers that use these live in runtime/nn. */
#include "ops/ops_internal.h"

/* ---- helpers --------------------------------------------------------------------------------- */

/* a * b, or 0 with *ok cleared when it overflows */
static size_t mul(size_t a, size_t b, int *ok) {
    if (a && b > SIZE_MAX / a) {
        *ok = 0;
        return 0;
    }
    return a * b;
}

/* Launches over `items` work-items in groups of the tuned WG, after checking that the rounded-up
 * global size still fits the kernels' uint ids. */
static spartan_status launch(spartan_context *ctx, sp_kernel_id k, size_t items, const sp_arg *args,
                             cl_uint nargs) {
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "WG");
    if (items > 0xffffffffu - wg)
        return sp_invalid(ctx, "%s: %zu work-items are above the kernels' 32-bit range",
                          sp_kernel_name(k), items);
    return sp_launch_1d(ctx, k, items, args, nargs);
}

/* Work-items of a launch that gives each one SP_VEC consecutive elements of n. */
static size_t vec_items(const spartan_context *ctx, size_t n) {
    size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
    return (n + vec - 1) / vec;
}

/* Tensors a and b have as many elements. */
static spartan_status same_numel(spartan_context *ctx, const char *fn, const char *na,
                                 const spartan_tensor *a, const char *nb, const spartan_tensor *b) {
    if (a->numel != b->numel)
        return sp_invalid(ctx, "%s: %s has %zu elements, %s %zu", fn, na, a->numel, nb, b->numel);
    return SPARTAN_OK;
}

/* ---- window geometry ------------------------------------------------------------------------- */

static size_t out_size(size_t in, size_t k, size_t stride, size_t pad) {
    if (stride == 0 || k == 0 || pad > (SIZE_MAX - in) / 2 || in + 2 * pad < k) return 0;
    return (in + 2 * pad - k) / stride + 1;
}

size_t spartan_window_out_h(const spartan_window *w) {
    return w ? out_size(w->in_h, w->k_h, w->stride, w->pad) : 0;
}

size_t spartan_window_out_w(const spartan_window *w) {
    return w ? out_size(w->in_w, w->k_w, w->stride, w->pad) : 0;
}

spartan_status sp_window_geom(spartan_context *ctx, const char *fn, const spartan_window *w,
                              sp_geom *g) {
    if (w->stride == 0) return sp_invalid(ctx, "%s: stride is 0", fn);
    if (w->k_h == 0 || w->k_w == 0)
        return sp_invalid(ctx, "%s: empty %zux%zu window", fn, w->k_h, w->k_w);
    /* a work-item walks a window (pooling) or the windows covering a pixel (the gathers) */
    size_t most = sp_loop_max(ctx) / (1 + (size_t)sp_tuned_get(&ctx->tuned, "VEC"));
    if (w->k_w > most || w->k_h > most / w->k_w)
        return sp_invalid(ctx,
                          "%s: a %zux%zu window has more than %zu positions, the most one "
                          "work-item walks on this device (LOOP_MAX / (VEC + 1))",
                          fn, w->k_h, w->k_w, most);
    size_t out_h = spartan_window_out_h(w), out_w = spartan_window_out_w(w);
    if (out_h == 0 || out_w == 0)
        return sp_invalid(ctx, "%s: the %zux%zu window does not fit the %zux%zu image (pad %zu)",
                          fn, w->k_h, w->k_w, w->in_h, w->in_w, w->pad);
    const size_t sizes[10] = {w->batch, w->in_h,   w->in_w, w->in_c, w->k_h,
                              w->k_w,   w->stride, w->pad,  out_h,   out_w};
    static const char *const names[10] = {"batch", "in_h",   "in_w", "in_c",  "k_h",
                                          "k_w",   "stride", "pad",  "out_h", "out_w"};
    for (int i = 0; i < 10; i++) {
        spartan_status st = sp_u32(ctx, sizes[i], names[i], &g->v[i]);
        if (st != SPARTAN_OK) return st;
    }
    /* the kernels work in padded coordinates: in + 2 pad must fit too */
    cl_uint unused;
    spartan_status st = sp_u32(ctx, w->in_h + 2 * w->pad, "in_h + 2 pad", &unused);
    if (st == SPARTAN_OK) st = sp_u32(ctx, w->in_w + 2 * w->pad, "in_w + 2 pad", &unused);
    if (st != SPARTAN_OK) return st;
    int ok = 1;
    g->image = mul(mul(mul(w->batch, w->in_h, &ok), w->in_w, &ok), w->in_c, &ok);
    g->pixels = mul(mul(w->batch, out_h, &ok), out_w, &ok);
    g->patch = mul(mul(w->k_h, w->k_w, &ok), w->in_c, &ok);
    size_t cols = mul(g->pixels, g->patch, &ok);
    size_t outs = mul(g->pixels, w->in_c, &ok);
    if (!ok) return sp_invalid(ctx, "%s: the window's sizes overflow", fn);
    /* every index the kernels compute is below one of these */
    st = sp_u32(ctx, g->image, "image elements", &unused);
    if (st == SPARTAN_OK) st = sp_u32(ctx, cols, "im2col elements", &unused);
    if (st == SPARTAN_OK) st = sp_u32(ctx, outs, "output elements", &unused);
    return st;
}

spartan_status sp_check_image(spartan_context *ctx, const char *fn, const char *name,
                              const spartan_tensor *t, const sp_geom *g) {
    if (t->numel != g->image)
        return sp_invalid(ctx,
                          "%s: %s has %zu elements, the window's images have %zu "
                          "(batch x in_h x in_w x in_c)",
                          fn, name, t->numel, g->image);
    return SPARTAN_OK;
}

/* A per-output-pixel tensor: pixels x cols as a matrix. */
static spartan_status check_out(spartan_context *ctx, const char *fn, const char *name,
                                const spartan_tensor *t, size_t pixels, size_t cols) {
    if (spartan_tensor_rows(t) != pixels || spartan_tensor_cols(t) != cols)
        return sp_invalid(ctx, "%s: %s is %zux%zu, the window wants %zux%zu", fn, name,
                          spartan_tensor_rows(t), spartan_tensor_cols(t), pixels, cols);
    return SPARTAN_OK;
}

/* The window kernels: two or three buffers, then the geometry. */
static spartan_status launch_window(spartan_context *ctx, sp_kernel_id k, size_t items, sp_geom *g,
                                    cl_mem *bufs, cl_uint nbufs) {
    sp_arg args[13];
    for (cl_uint i = 0; i < nbufs; i++) args[i] = SP_ARG(bufs[i]);
    for (cl_uint i = 0; i < 10; i++) args[nbufs + i] = SP_ARG(g->v[i]);
    return launch(ctx, k, items, args, nbufs + 10);
}

/* Work-items of the kernels that give each one SP_VEC of the `per` elements of a unit (the
 * channels of a pixel, say). */
static size_t chunk_items(const spartan_context *ctx, size_t units, size_t per) {
    return units * vec_items(ctx, per);
}

/* ---- im2col / col2im ------------------------------------------------------------------------- */

spartan_status spartan_im2col(spartan_context *ctx, const spartan_window *w,
                              const spartan_tensor *x, spartan_tensor *cols) {
    static const char fn[] = "spartan_im2col";
    if (!ctx || !w || !x || !cols) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status cst = sp_check_ctx(ctx, fn, SP_TENSORS(x, cols));
    if (!cst) cst = sp_check_apart(ctx, fn, "cols", cols, "x", x);
    if (cst) return cst;
    sp_geom g;
    spartan_status st = sp_window_geom(ctx, fn, w, &g);
    if (st == SPARTAN_OK) st = sp_check_image(ctx, fn, "x", x, &g);
    if (st == SPARTAN_OK) st = check_out(ctx, fn, "cols", cols, g.pixels, g.patch);
    if (st != SPARTAN_OK || cols->numel == 0) return st;
    cl_mem bufs[] = {x->mem, cols->mem};
    /* a work-item per SP_VEC elements of a window row (k_w * in_c consecutive floats) */
    return launch_window(ctx, SP_K_nn_im2col, chunk_items(ctx, g.pixels * w->k_h, w->k_w * w->in_c),
                         &g, bufs, 2);
}

spartan_status spartan_col2im(spartan_context *ctx, const spartan_window *w,
                              const spartan_tensor *cols, spartan_tensor *dx) {
    static const char fn[] = "spartan_col2im";
    if (!ctx || !w || !cols || !dx) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status cst = sp_check_ctx(ctx, fn, SP_TENSORS(cols, dx));
    if (!cst) cst = sp_check_apart(ctx, fn, "dx", dx, "cols", cols);
    if (cst) return cst;
    sp_geom g;
    spartan_status st = sp_window_geom(ctx, fn, w, &g);
    if (st == SPARTAN_OK) st = check_out(ctx, fn, "cols", cols, g.pixels, g.patch);
    if (st == SPARTAN_OK) st = sp_check_image(ctx, fn, "dx", dx, &g);
    if (st != SPARTAN_OK || dx->numel == 0) return st;
    cl_mem bufs[] = {cols->mem, dx->mem};
    return launch_window(ctx, SP_K_nn_col2im,
                         chunk_items(ctx, w->batch * w->in_h * w->in_w, w->in_c), &g, bufs, 2);
}

/* ---- bias and ReLU --------------------------------------------------------------------------- */

/* a rows x n matrix and a vector of n elements */
static spartan_status check_bias(spartan_context *ctx, const char *fn, const spartan_tensor *m,
                                 const spartan_tensor *b, cl_uint *rows, cl_uint *n) {
    spartan_status cst = sp_check_ctx(ctx, fn, SP_TENSORS(m, b));
    if (!cst) cst = sp_check_apart(ctx, fn, "the matrix", m, "the bias vector", b);
    if (cst) return cst;
    if (b->numel != spartan_tensor_cols(m))
        return sp_invalid(ctx, "%s: the bias has %zu elements, the matrix %zu columns", fn,
                          b->numel, spartan_tensor_cols(m));
    cl_uint unused;
    spartan_status st = sp_u32(ctx, m->numel, "elements", &unused);
    if (st == SPARTAN_OK) st = sp_u32(ctx, spartan_tensor_rows(m), "rows", rows);
    if (st == SPARTAN_OK) st = sp_u32(ctx, b->numel, "columns", n);
    return st;
}

spartan_status spartan_bias_add(spartan_context *ctx, spartan_tensor *y, const spartan_tensor *b) {
    static const char fn[] = "spartan_bias_add";
    if (!ctx || !y || !b) return sp_invalid(ctx, "%s: NULL argument", fn);
    cl_uint rows, n;
    spartan_status st = check_bias(ctx, fn, y, b, &rows, &n);
    if (st != SPARTAN_OK || y->numel == 0) return st;
    sp_arg args[] = {SP_ARG(y->mem), SP_ARG(b->mem), SP_ARG(rows), SP_ARG(n)};
    return launch(ctx, SP_K_nn_bias_add, (size_t)rows * vec_items(ctx, n), args, 4);
}

/* One launch of nn_bias_grad over slices [part0, part0 + nparts) of per rows. */
typedef struct bias_call {
    cl_mem dy;
    cl_uint rows, n, per;
} bias_call;

static spartan_status bias_slices(spartan_context *ctx, void *arg, size_t part0, size_t nparts,
                                  cl_mem dst, float alpha, float beta) {
    const bias_call *c = arg;
    (void)alpha;
    cl_uint accumulate = beta != 0.0f, p0 = (cl_uint)part0;
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "WG");
    size_t g[2] = {vec_items(ctx, c->n) * wg, nparts}, l[2] = {wg, 1};
    sp_arg args[] = {SP_ARG(c->dy),      SP_ARG(dst), SP_ARG(c->rows), SP_ARG(c->n),
                     SP_ARG(accumulate), SP_ARG(p0),  SP_ARG(c->per)};
    return sp_launch(ctx, SP_K_nn_bias_grad, 2, g, l, args, 7);
}

/* Narrow rows (n filling less than 3/4 of the vectors nn_bias_grad loads per row) take the flat
 * walk, nn_bias_grad_flat and _fold (nn.cl), when its loops fit LOOP_MAX: about 64 vectors per
 * work-item, as many work-items as that takes. Returns SP_NOT_FLAT for the others. */
#define SP_NOT_FLAT ((spartan_status)-1)
static spartan_status bias_grad_flat(spartan_context *ctx, const spartan_tensor *dy,
                                     spartan_tensor *db, cl_uint n) {
    const size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC"), most = sp_loop_max(ctx);
    const size_t chunks = (n + vec - 1) / vec;
    if (4 * (size_t)n >= 3 * chunks * vec) return SP_NOT_FLAT;
    size_t a = n, b = vec; /* gcd(n, vec): the period is p = n * vec / gcd floats, v vectors */
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    const size_t p = n * vec / a, v = p / vec, vectors = (dy->numel + vec - 1) / vec;
    const size_t qmax = most / (p / n); /* the fold walks q rows of p / n entries per column */
    size_t q = (vectors + v * 64 - 1) / (v * 64);
    if (q > qmax) q = qmax;
    if (q == 0 || (vectors + v * q - 1) / (v * q) >= most) return SP_NOT_FLAT;
    cl_mem parts;
    spartan_status st = sp_scratch(ctx, SP_SCRATCH_SPLIT, q * p * sizeof(float), &parts);
    if (st != SPARTAN_OK) return st;
    cl_uint total = (cl_uint)dy->numel, w = (cl_uint)(q * v), up = (cl_uint)p, uq = (cl_uint)q;
    sp_arg flat[] = {SP_ARG(dy->mem), SP_ARG(parts), SP_ARG(total), SP_ARG(w)};
    sp_arg fold[] = {SP_ARG(parts), SP_ARG(db->mem), SP_ARG(n), SP_ARG(up), SP_ARG(uq)};
    st = launch(ctx, SP_K_nn_bias_grad_flat, w, flat, 4);
    return st == SPARTAN_OK ? launch(ctx, SP_K_nn_bias_grad_fold, n, fold, 5) : st;
}

spartan_status spartan_bias_grad(spartan_context *ctx, const spartan_tensor *dy,
                                 spartan_tensor *db) {
    static const char fn[] = "spartan_bias_grad";
    if (!ctx || !dy || !db) return sp_invalid(ctx, "%s: NULL argument", fn);
    cl_uint rows, n;
    spartan_status st = check_bias(ctx, fn, dy, db, &rows, &n);
    if (st != SPARTAN_OK || db->numel == 0) return st;
    if (dy->numel == 0) return spartan_tensor_fill(db, 0.0f); /* no rows: sums of nothing */
    st = bias_grad_flat(ctx, dy, db, n);
    if (st != SP_NOT_FLAT) return st;
    /* one work-group per vector of columns and slice of rows, a vector of partial sums per
     * work-item (the tuned parameters keep WG x VEC floats within the local memory) */
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "WG");
    size_t steps = (sp_loop_max(ctx) - 64) / (2 + (size_t)sp_tuned_get(&ctx->tuned, "VEC"));
    size_t per, parts = sp_slices(rows, wg * steps, wg, &per);
    bias_call c = {dy->mem, rows, n, (cl_uint)per};
    return sp_split_reduce(ctx, parts, n, db->mem, 1.0f, 0.0f, bias_slices, &c);
}

spartan_status spartan_relu_backward(spartan_context *ctx, const spartan_tensor *y,
                                     const spartan_tensor *dy, spartan_tensor *dz) {
    static const char fn[] = "spartan_relu_backward";
    if (!ctx || !y || !dy || !dz) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status cst = sp_check_ctx(ctx, fn, SP_TENSORS(y, dy, dz)); /* dz may be y or dy */
    if (cst) return cst;
    spartan_status st = same_numel(ctx, fn, "y", y, "dy", dy);
    if (st == SPARTAN_OK) st = same_numel(ctx, fn, "y", y, "dz", dz);
    cl_uint n;
    if (st == SPARTAN_OK) st = sp_u32(ctx, y->numel, "elements", &n);
    if (st != SPARTAN_OK || n == 0) return st;
    sp_arg args[] = {SP_ARG(y->mem), SP_ARG(dy->mem), SP_ARG(dz->mem), SP_ARG(n)};
    return launch(ctx, SP_K_nn_relu_backward, vec_items(ctx, n), args, 4);
}

/* ---- max-pooling ----------------------------------------------------------------------------- */

static spartan_status pool_geom(spartan_context *ctx, const char *fn, const spartan_window *w,
                                sp_geom *g) {
    if (w->pad != 0) return sp_invalid(ctx, "%s: pad is %zu, pooling takes none", fn, w->pad);
    return sp_window_geom(ctx, fn, w, g);
}

/* Both max-pooling forwards; relu 0: the pool of x, b unused; relu 1: of max(x + b, 0), b
 * NULL for no bias. */
static spartan_status maxpool_forward(spartan_context *ctx, const char *fn, const spartan_window *w,
                                      const spartan_tensor *x, const spartan_tensor *b, int relu,
                                      spartan_tensor *y, spartan_tensor *arg) {
    if (!ctx || !w || !x || !y || !arg) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status cst = sp_check_ctx(ctx, fn, SP_TENSORS(x, y, arg, b ? b : x));
    if (!cst) cst = sp_check_apart(ctx, fn, "y", y, "x", x);
    if (!cst) cst = sp_check_apart(ctx, fn, "arg", arg, "x", x);
    if (!cst) cst = sp_check_apart(ctx, fn, "arg", arg, "y", y);
    if (!cst && b) cst = sp_check_apart(ctx, fn, "y", y, "b", b);
    if (!cst && b) cst = sp_check_apart(ctx, fn, "arg", arg, "b", b);
    if (cst) return cst;
    if (b && b->numel != w->in_c)
        return sp_invalid(ctx, "%s: the bias has %zu elements, the images %zu channels", fn,
                          b->numel, w->in_c);
    sp_geom g;
    spartan_status st = pool_geom(ctx, fn, w, &g);
    if (st == SPARTAN_OK) st = sp_check_image(ctx, fn, "x", x, &g);
    if (st == SPARTAN_OK) st = check_out(ctx, fn, "y", y, g.pixels, w->in_c);
    if (st == SPARTAN_OK) st = check_out(ctx, fn, "arg", arg, g.pixels, w->in_c);
    if (st != SPARTAN_OK || y->numel == 0) return st;
    cl_uint on = relu != 0, biased = b != NULL;
    cl_mem bmem = b ? b->mem : x->mem; /* not read unbiased */
    sp_arg args[16] = {SP_ARG(x->mem),   SP_ARG(bmem), SP_ARG(y->mem),
                       SP_ARG(arg->mem), SP_ARG(on),   SP_ARG(biased)};
    for (cl_uint i = 0; i < 10; i++) args[6 + i] = SP_ARG(g.v[i]);
    return launch(ctx, SP_K_nn_maxpool_forward, chunk_items(ctx, g.pixels, w->in_c), args, 16);
}

spartan_status spartan_maxpool_forward(spartan_context *ctx, const spartan_window *w,
                                       const spartan_tensor *x, spartan_tensor *y,
                                       spartan_tensor *arg) {
    return maxpool_forward(ctx, "spartan_maxpool_forward", w, x, NULL, 0, y, arg);
}

spartan_status spartan_relu_maxpool_forward(spartan_context *ctx, const spartan_window *w,
                                            const spartan_tensor *x, const spartan_tensor *b,
                                            spartan_tensor *y, spartan_tensor *arg) {
    return maxpool_forward(ctx, "spartan_relu_maxpool_forward", w, x, b, 1, y, arg);
}

/* Both max-pooling backwards; y NULL: no ReLU mask. Windows that do not overlap take the tiled
 * kernel (a work-item per output pixel writes its block of dx) unless a block is too long to
 * walk; overlapping ones gather per input pixel. */
static spartan_status maxpool_backward(spartan_context *ctx, const char *fn,
                                       const spartan_window *w, const spartan_tensor *dy,
                                       const spartan_tensor *arg, const spartan_tensor *y,
                                       spartan_tensor *dx) {
    if (!ctx || !w || !dy || !arg || !dx) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status cst = sp_check_ctx(ctx, fn, SP_TENSORS(dy, arg, y ? y : dy, dx));
    if (!cst) cst = sp_check_apart(ctx, fn, "dx", dx, "dy", dy);
    if (!cst) cst = sp_check_apart(ctx, fn, "dx", dx, "arg", arg);
    if (!cst && y) cst = sp_check_apart(ctx, fn, "dx", dx, "y", y);
    if (cst) return cst;
    sp_geom g;
    spartan_status st = pool_geom(ctx, fn, w, &g);
    if (st == SPARTAN_OK) st = check_out(ctx, fn, "dy", dy, g.pixels, w->in_c);
    if (st == SPARTAN_OK) st = check_out(ctx, fn, "arg", arg, g.pixels, w->in_c);
    if (st == SPARTAN_OK && y) st = check_out(ctx, fn, "y", y, g.pixels, w->in_c);
    if (st == SPARTAN_OK) st = sp_check_image(ctx, fn, "dx", dx, &g);
    if (st != SPARTAN_OK || dx->numel == 0) return st;
    /* the tiled kernel's block: its window and the gap to the next, the last ones up to the
     * image's edge (k + (in - k) mod stride rows or columns) */
    size_t most = sp_loop_max(ctx) / (1 + (size_t)sp_tuned_get(&ctx->tuned, "VEC"));
    size_t block_h = w->k_h + (w->in_h - w->k_h) % w->stride;
    size_t block_w = w->k_w + (w->in_w - w->k_w) % w->stride;
    if (block_h < w->stride) block_h = w->stride;
    if (block_w < w->stride) block_w = w->stride;
    int tiled =
        w->stride >= w->k_h && w->stride >= w->k_w && block_w <= most && block_h <= most / block_w;
    cl_uint masked = y != NULL;
    cl_mem ymem = y ? y->mem : dy->mem; /* not read unmasked */
    sp_arg args[15] = {SP_ARG(dy->mem), SP_ARG(arg->mem), SP_ARG(ymem), SP_ARG(dx->mem),
                       SP_ARG(masked)};
    for (cl_uint i = 0; i < 10; i++) args[5 + i] = SP_ARG(g.v[i]);
    if (tiled)
        return launch(ctx, SP_K_nn_maxpool_backward_tiled, chunk_items(ctx, g.pixels, w->in_c),
                      args, 15);
    return launch(ctx, SP_K_nn_maxpool_backward,
                  chunk_items(ctx, w->batch * w->in_h * w->in_w, w->in_c), args, 15);
}

spartan_status spartan_maxpool_backward(spartan_context *ctx, const spartan_window *w,
                                        const spartan_tensor *dy, const spartan_tensor *arg,
                                        spartan_tensor *dx) {
    return maxpool_backward(ctx, "spartan_maxpool_backward", w, dy, arg, NULL, dx);
}

spartan_status spartan_maxpool_relu_backward(spartan_context *ctx, const spartan_window *w,
                                             const spartan_tensor *dy, const spartan_tensor *arg,
                                             const spartan_tensor *y, spartan_tensor *dx) {
    static const char fn[] = "spartan_maxpool_relu_backward";
    if (!y) return sp_invalid(ctx, "%s: NULL argument", fn);
    return maxpool_backward(ctx, fn, w, dy, arg, y, dx);
}

/* ---- average pooling ------------------------------------------------------------------------ */

spartan_status spartan_avgpool_forward(spartan_context *ctx, const spartan_window *w,
                                       const spartan_tensor *x, spartan_tensor *y) {
    static const char fn[] = "spartan_avgpool_forward";
    if (!ctx || !w || !x || !y) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status st = sp_check_ctx(ctx, fn, SP_TENSORS(x, y));
    if (!st) st = sp_check_apart(ctx, fn, "y", y, "x", x);
    sp_geom g;
    if (!st) st = sp_window_geom(ctx, fn, w, &g); /* padding allowed, unlike max-pooling */
    if (!st) st = sp_check_image(ctx, fn, "x", x, &g);
    if (!st) st = check_out(ctx, fn, "y", y, g.pixels, w->in_c);
    if (st != SPARTAN_OK || y->numel == 0) return st;
    cl_mem bufs[] = {x->mem, y->mem};
    return launch_window(ctx, SP_K_nn_avgpool_forward, chunk_items(ctx, g.pixels, w->in_c), &g,
                         bufs, 2);
}

spartan_status spartan_avgpool_backward(spartan_context *ctx, const spartan_window *w,
                                        const spartan_tensor *dy, spartan_tensor *dx) {
    static const char fn[] = "spartan_avgpool_backward";
    if (!ctx || !w || !dy || !dx) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status st = sp_check_ctx(ctx, fn, SP_TENSORS(dy, dx));
    if (!st) st = sp_check_apart(ctx, fn, "dx", dx, "dy", dy);
    sp_geom g;
    if (!st) st = sp_window_geom(ctx, fn, w, &g);
    if (!st) st = check_out(ctx, fn, "dy", dy, g.pixels, w->in_c);
    if (!st) st = sp_check_image(ctx, fn, "dx", dx, &g);
    if (st != SPARTAN_OK || dx->numel == 0) return st;
    cl_mem bufs[] = {dy->mem, dx->mem};
    /* a work-item per input pixel and SP_VEC channels, gathering from the windows covering it */
    return launch_window(ctx, SP_K_nn_avgpool_backward,
                         chunk_items(ctx, w->batch * w->in_h * w->in_w, w->in_c), &g, bufs, 2);
}

/* ---- dropout --------------------------------------------------------------------------------- */

static spartan_status dropout(spartan_context *ctx, const char *fn, const spartan_tensor *x,
                              spartan_tensor *y, float p, unsigned long long seed,
                              unsigned long long counter, uint64_t first) {
    if (!ctx || !x || !y) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status cst = sp_check_ctx(ctx, fn, SP_TENSORS(x, y)); /* y may be x */
    if (cst) return cst;
    if (!(p >= 0.0f && p < 1.0f))
        return sp_invalid(ctx, "%s: drop probability %g is outside [0, 1)", fn, (double)p);
    spartan_status st = same_numel(ctx, fn, "the input", x, "the output", y);
    cl_uint n;
    if (st == SPARTAN_OK) st = sp_u32(ctx, x->numel, "elements", &n);
    if (st != SPARTAN_OK || n == 0) return st;
    /* the stream's state: seed and counter mixed, so nearby counters give unrelated masks;
     * element i hashes key + (i + 1) phi, so starting at element `first` is key + first phi */
    cl_ulong key = sp_dropout_key(seed, counter) + (cl_ulong)first * 0x9E3779B97F4A7C15UL;
    float scale = 1.0f / (1.0f - p);
    sp_arg args[] = {SP_ARG(x->mem), SP_ARG(y->mem), SP_ARG(n),
                     SP_ARG(key),    SP_ARG(p),      SP_ARG(scale)};
    return launch(ctx, SP_K_nn_dropout, vec_items(ctx, n), args, 6);
}

spartan_status spartan_dropout_forward(spartan_context *ctx, const spartan_tensor *x,
                                       spartan_tensor *y, float p, unsigned long long seed,
                                       unsigned long long counter) {
    return dropout(ctx, "spartan_dropout_forward", x, y, p, seed, counter, 0);
}

spartan_status sp_dropout_from(spartan_context *ctx, const spartan_tensor *x, spartan_tensor *y,
                               float p, unsigned long long seed, unsigned long long counter,
                               uint64_t first) {
    return dropout(ctx, "dropout", x, y, p, seed, counter, first);
}

spartan_status spartan_dropout_backward(spartan_context *ctx, const spartan_tensor *dy,
                                        spartan_tensor *dx, float p, unsigned long long seed,
                                        unsigned long long counter) {
    return dropout(ctx, "spartan_dropout_backward", dy, dx, p, seed, counter, 0);
}

/* ---- softmax + cross-entropy ----------------------------------------------------------------- */

spartan_status spartan_softmax_xent(spartan_context *ctx, const spartan_tensor *logits,
                                    const spartan_tensor *labels, float scale,
                                    spartan_tensor *dlogits, spartan_tensor *stats) {
    static const char fn[] = "spartan_softmax_xent";
    if (!ctx || !logits || !labels || !stats) return sp_invalid(ctx, "%s: NULL argument", fn);
    /* dlogits may be logits (each work-item reads its row before it writes it) */
    spartan_status cst = sp_check_ctx(ctx, fn, SP_TENSORS(logits, labels, dlogits, stats));
    if (!cst) cst = sp_check_apart(ctx, fn, "stats", stats, "logits", logits);
    if (!cst) cst = sp_check_apart(ctx, fn, "stats", stats, "labels", labels);
    if (!cst) cst = sp_check_apart(ctx, fn, "stats", stats, "dlogits", dlogits);
    if (!cst) cst = sp_check_apart(ctx, fn, "dlogits", dlogits, "labels", labels);
    if (cst) return cst;
    size_t rows = spartan_tensor_rows(logits), classes = spartan_tensor_cols(logits);
    if (labels->numel != rows)
        return sp_invalid(ctx, "%s: %zu labels for %zu rows of logits", fn, labels->numel, rows);
    if (spartan_tensor_rows(stats) != rows || spartan_tensor_cols(stats) != 2)
        return sp_invalid(ctx, "%s: stats is %zux%zu, want %zux2", fn, spartan_tensor_rows(stats),
                          spartan_tensor_cols(stats), rows);
    if (dlogits &&
        (spartan_tensor_rows(dlogits) != rows || spartan_tensor_cols(dlogits) != classes))
        return sp_invalid(ctx, "%s: dlogits is %zux%zu, logits %zux%zu", fn,
                          spartan_tensor_rows(dlogits), spartan_tensor_cols(dlogits), rows,
                          classes);
    if (rows == 0) return SPARTAN_OK;
    /* a work-item walks its row three times (maximum, sum, gradient) */
    if (classes == 0 || classes > sp_loop_max(ctx) / 3)
        return sp_invalid(ctx,
                          "%s: %zu classes: 1 to %zu are supported on this device (one work-item "
                          "walks a row three times, and its loops are bounded: LOOP_MAX / 3)",
                          fn, classes, sp_loop_max(ctx) / 3);
    cl_uint r, c = (cl_uint)classes, unused;
    spartan_status st = sp_u32(ctx, rows, "rows", &r);
    if (st == SPARTAN_OK) st = sp_u32(ctx, logits->numel, "logits elements", &unused);
    if (st == SPARTAN_OK) st = sp_u32(ctx, stats->numel, "stats elements", &unused);
    if (st != SPARTAN_OK) return st;
    cl_int want_grad = dlogits != NULL;
    cl_mem grad = dlogits ? dlogits->mem : stats->mem; /* not written without want_grad */
    sp_arg args[] = {SP_ARG(logits->mem), SP_ARG(labels->mem), SP_ARG(grad),  SP_ARG(stats->mem),
                     SP_ARG(r),           SP_ARG(c),           SP_ARG(scale), SP_ARG(want_grad)};
    return launch(ctx, SP_K_nn_softmax_xent, rows, args, 8);
}

/* ---- SGD ------------------------------------------------------------------------------------- */

spartan_status spartan_sgd_step(spartan_context *ctx, spartan_tensor *w, const spartan_tensor *g,
                                spartan_tensor *v, float lr, float momentum, float weight_decay) {
    static const char fn[] = "spartan_sgd_step";
    if (!ctx || !w || !g || !v) return sp_invalid(ctx, "%s: NULL argument", fn);
    spartan_status cst = sp_check_ctx(ctx, fn, SP_TENSORS(w, g, v));
    if (!cst) cst = sp_check_apart(ctx, fn, "w", w, "g", g);
    if (!cst) cst = sp_check_apart(ctx, fn, "v", v, "w", w);
    if (!cst) cst = sp_check_apart(ctx, fn, "v", v, "g", g);
    if (cst) return cst;
    spartan_status st = same_numel(ctx, fn, "w", w, "g", g);
    if (st == SPARTAN_OK) st = same_numel(ctx, fn, "w", w, "v", v);
    cl_uint n;
    if (st == SPARTAN_OK) st = sp_u32(ctx, w->numel, "elements", &n);
    if (st != SPARTAN_OK || n == 0) return st;
    sp_arg args[] = {SP_ARG(w->mem), SP_ARG(g->mem),   SP_ARG(v->mem),      SP_ARG(n),
                     SP_ARG(lr),     SP_ARG(momentum), SP_ARG(weight_decay)};
    return launch(ctx, SP_K_nn_sgd_step, vec_items(ctx, n), args, 7);
}
