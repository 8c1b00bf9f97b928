/* The implicit-GEMM convolution of ops.h (kernels_cl/conv.cl): y = im2col(x) . W with the
 * patches gathered inside the kernel, no patch matrix. This file validates arguments, cuts the
 * reduction so that no work-item walks more than LOOP_MAX steps, and launches; when the conv
 * family is off on the device it computes the same product through im2col into a scratch buffer
 * and the dense GEMM. The sparse path of a stride-1 3 x 3 or 5 x 5 window makes a bit mask of
 * x's non-zeros per pixel and 32 channels (conv_strip_masks) and runs conv_strip_sparse, which
 * the backward-by-input (conv_dx.c) runs too; other windows list the non-zeros of each input
 * pixel first (conv_nonzeros), then walk those per window position (conv_forward_sparse). */
#include "ops/ops_internal.h"

/* The kernel's arguments besides the buffers: the window (NN_WINDOW_ARGS' order), out_c, and
 * the slices of the patch index: kc indices each. */
typedef struct conv_launch {
    sp_geom g;
    cl_uint out_c, kc;
    cl_mem x, w;
    sp_kernel_id kernel;    /* conv_forward, conv_forward_rows, or conv_forward_sparse */
    cl_mem count, idx, val; /* conv_forward_sparse: the lists of x's non-zeros */
    int relu;               /* y = max(the product + bias, 0) (bias NULL: none) */
    int whole;              /* one slice: the launch writes the whole product into y */
    cl_mem bias;
} conv_launch;

/* How long a slice of the patch index one work-item may walk. Counted as if the compiler unrolled
 * nothing (conv.cl): per patch index the channel loop, NB loads of W and RB rows of a load and NB
 * FMAs; per window position it enters, the position loop, RB pixel tests and the channel loop's
 * entry; and RB x (NB + 1) set-up and stores. A slice of kc indices enters at most kc / in_c + 2
 * positions, so kc (step + pos / in_c) + 2 pos + fixed <= LOOP_MAX. */
static size_t slice_max(const spartan_context *ctx, size_t in_c) {
    size_t rb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_RB");
    size_t nb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_NB");
    size_t step = 1 + nb + rb * (1 + nb), pos = 2 + rb, fixed = 8 * rb * (1 + nb);
    size_t budget = sp_loop_max(ctx) - fixed - 2 * pos; /* LOOP_MAX >= 1024 (tuned.c) */
    size_t kc = budget * in_c / (step * in_c + pos);
    return kc ? kc : 1;
}

/* One launch of the kernel over the slices [part0, part0 + nparts) (sp_split_reduce). */
static spartan_status conv_slices(spartan_context *ctx, void *arg, size_t part0, size_t nparts,
                                  cl_mem dst, float alpha, float beta) {
    const conv_launch *c = arg;
    size_t rb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_RB");
    size_t cb = (size_t)(sp_tuned_get(&ctx->tuned, "VEC") * sp_tuned_get(&ctx->tuned, "GEMM_NB"));
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_WG");
    size_t g[3] = {(c->g.pixels + rb - 1) / rb, (c->out_c + cb - 1) / cb, nparts};
    if (c->kernel == SP_K_conv_forward_rows) {
        const size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
        const size_t out_w = c->g.v[9], rows = c->g.pixels / out_w; /* batch x out_h */
        g[0] = rows * ((out_w + vec - 1) / vec);
        g[1] = (c->out_c + SP_ROWS_BLOCK - 1) / SP_ROWS_BLOCK;
    }
    size_t l[3] = {wg, 1, 1};
    cl_uint e0 = (cl_uint)(part0 * c->kc);
    sp_arg args[23] = {SP_ARG(c->x), SP_ARG(c->w), SP_ARG(dst)};
    for (int i = 0; i < 10; i++) args[3 + i] = SP_ARG(c->g.v[i]);
    args[13] = SP_ARG(c->out_c);
    args[14] = SP_ARG(e0);
    args[15] = SP_ARG(c->kc);
    args[16] = SP_ARG(alpha);
    args[17] = SP_ARG(beta);
    /* the bias and the ReLU in the store when this launch writes the whole product (never in
     * the rows kernel: the caller applies them after) */
    static const cl_uint modes[3] = {0, 1, 2}; /* none, ReLU, bias and ReLU (conv.cl) */
    const int relu = c->relu && c->whole && c->kernel != SP_K_conv_forward_rows;
    args[18] = SP_ARG(*(relu && c->bias ? &c->bias : &c->x));
    args[19] = SP_ARG(modes[relu ? (c->bias ? 2 : 1) : 0]);
    args[20] = SP_ARG(c->count);
    args[21] = SP_ARG(c->idx);
    args[22] = SP_ARG(c->val);
    return sp_launch(ctx, c->kernel, 3, g, l, args,
                     c->kernel == SP_K_conv_forward_sparse ? 23 : 20);
}

/* How many chunks of 32 input channels one work-item of conv_strip_sparse may walk, counted as
 * if the compiler unrolled nothing (conv.cl): per chunk, k_h window rows of STRIP_COLS + k_w - 1
 * pixels, each at most 32 set bits, each a loop of STRIP_COLS outputs of NB FMAs; the set-up and
 * the stores. */
static size_t strip_chunks_max(const spartan_context *ctx, size_t k_h, size_t k_w) {
    size_t sc = (size_t)sp_tuned_get(&ctx->tuned, "STRIP_COLS");
    size_t nb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_NB");
    size_t pixel = 2 + 32 * (1 + sc * (1 + nb));
    size_t chunk = 1 + k_h * (1 + (sc + k_w - 1) * pixel);
    size_t fixed = 8 * sc * (1 + nb);
    size_t most = sp_loop_max(ctx);
    return most > fixed + chunk ? (most - fixed) / chunk : 1;
}

typedef struct strip_launch {
    const sp_strip_conv *s;
    cl_mem masks;
    cl_uint kc;
    int whole;
} strip_launch;

/* One launch of conv_strip_sparse over the slices [part0, part0 + nparts) (sp_split_reduce). */
static spartan_status strip_slices(spartan_context *ctx, void *arg, size_t part0, size_t nparts,
                                   cl_mem dst, float alpha, float beta) {
    const strip_launch *l = arg;
    const sp_strip_conv *s = l->s;
    size_t sc = (size_t)sp_tuned_get(&ctx->tuned, "STRIP_COLS");
    size_t cb = (size_t)(sp_tuned_get(&ctx->tuned, "VEC") * sp_tuned_get(&ctx->tuned, "GEMM_NB"));
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_WG");
    size_t g[3] = {s->batch * s->out_h * ((s->out_w + sc - 1) / sc), (s->out_c + cb - 1) / cb,
                   nparts};
    size_t loc[3] = {wg, 1, 1};
    /* sizes within 32 bits: the callers' sp_conv_check */
    cl_uint v[12] = {(cl_uint)s->batch, (cl_uint)s->in_h,  (cl_uint)s->in_w,  (cl_uint)s->in_c,
                     (cl_uint)s->k_h,   (cl_uint)s->k_w,   (cl_uint)s->pad_y, (cl_uint)s->pad_x,
                     (cl_uint)s->out_h, (cl_uint)s->out_w, (cl_uint)s->out_c, (cl_uint)s->ldw};
    cl_int flip = s->flip;
    cl_uint k0 = (cl_uint)(part0 * l->kc);
    cl_uint mode = l->whole ? (cl_uint)s->mode : 0;
    cl_mem aux = s->aux ? s->aux : s->x;
    sp_arg args[23] = {SP_ARG(s->x), SP_ARG(l->masks), SP_ARG(s->w), SP_ARG(dst)};
    for (int i = 0; i < 12; i++) args[4 + i] = SP_ARG(v[i]);
    args[16] = SP_ARG(flip);
    args[17] = SP_ARG(k0);
    args[18] = SP_ARG(l->kc);
    args[19] = SP_ARG(alpha);
    args[20] = SP_ARG(beta);
    args[21] = SP_ARG(aux);
    args[22] = SP_ARG(mode);
    return sp_launch(ctx, SP_K_conv_strip_sparse, 3, g, loc, args, 23);
}

int sp_conv_strip_fits(const spartan_window *w) {
    return w->stride == 1 && w->k_h == w->k_w && (w->k_w == 3 || w->k_w == 5);
}

size_t sp_conv_strip_ldw(const spartan_context *ctx, size_t n) {
    size_t cb = (size_t)(sp_tuned_get(&ctx->tuned, "VEC") * sp_tuned_get(&ctx->tuned, "GEMM_NB"));
    return (n + cb - 1) / cb * cb;
}

/* The forward's weight with its rows padded to whole blocks of output channels
 * (sp_conv_strip_ldw), zeros past out_c, in scratch: the kernel loads whole vectors. */
static spartan_status strip_weight(spartan_context *ctx, cl_mem weight, size_t rows, size_t out_c,
                                   size_t ldw, cl_mem *out) {
    spartan_status st = sp_scratch(ctx, SP_SCRATCH_TRANSPOSE, rows * ldw * sizeof(float), out);
    if (st == SPARTAN_OK) st = sp_fill_zero(ctx, *out, 0, rows * ldw);
    if (st != SPARTAN_OK) return st;
    const size_t origin[3] = {0, 0, 0}, region[3] = {out_c * sizeof(float), rows, 1};
    cl_int rc =
        clEnqueueCopyBufferRect(ctx->queue, weight, *out, origin, origin, region,
                                out_c * sizeof(float), 0, ldw * sizeof(float), 0, 0, NULL, NULL);
    return rc == CL_SUCCESS ? SPARTAN_OK
                            : sp_ctx_cl_fail(ctx, rc, "clEnqueueCopyBufferRect", "padded weight");
}

spartan_status sp_conv_strip(spartan_context *ctx, const sp_strip_conv *s, cl_mem y, size_t y_numel,
                             int *stored) {
    size_t chunks = (s->in_c + 31) / 32, per, pixels = s->batch * s->in_h * s->in_w;
    size_t parts = sp_slices(chunks, strip_chunks_max(ctx, s->k_h, s->k_w), 1, &per);
    strip_launch l = {s, NULL, (cl_uint)per, parts <= 1};
    *stored = l.whole;
    /* the masks: within 32 bits, as x's elements are (sp_conv_check) */
    cl_uint np = (cl_uint)pixels, in_c = (cl_uint)s->in_c;
    spartan_status st =
        sp_scratch(ctx, SP_SCRATCH_NZ_COUNT, pixels * chunks * sizeof(cl_uint), &l.masks);
    sp_arg margs[4] = {SP_ARG(s->x), SP_ARG(np), SP_ARG(in_c), SP_ARG(l.masks)};
    if (st == SPARTAN_OK) st = sp_launch_1d(ctx, SP_K_conv_strip_masks, pixels * chunks, margs, 4);
    if (st == SPARTAN_OK)
        st = sp_split_reduce(ctx, parts, y_numel, y, 1.0f, 0.0f, strip_slices, &l);
    return st;
}

/* The lists of x's non-zeros per input pixel (conv_nonzeros) in scratch buffers, for the
 * sparse kernel. */
static spartan_status nonzero_lists(spartan_context *ctx, const spartan_window *w, conv_launch *c) {
    const size_t pixels = w->batch * w->in_h * w->in_w, image = pixels * w->in_c;
    spartan_status st = sp_scratch(ctx, SP_SCRATCH_NZ_COUNT, pixels * sizeof(cl_uint), &c->count);
    if (st == SPARTAN_OK) st = sp_scratch(ctx, SP_SCRATCH_NZ_IDX, image * sizeof(cl_uint), &c->idx);
    if (st == SPARTAN_OK)
        st = sp_scratch(ctx, SP_SCRATCH_NZ_VAL, image * sizeof(cl_float), &c->val);
    if (st != SPARTAN_OK) return st;
    cl_uint np = (cl_uint)pixels, in_c = (cl_uint)w->in_c; /* within 32 bits: sp_window_geom */
    sp_arg args[6] = {SP_ARG(c->x),     SP_ARG(np),     SP_ARG(in_c),
                      SP_ARG(c->count), SP_ARG(c->idx), SP_ARG(c->val)};
    return sp_launch_1d(ctx, SP_K_conv_nonzeros, pixels, args, 6);
}

/* The same product without the conv family: the patch matrix in scratch, then the dense GEMM
 * (the best path for the device; its own fallbacks apply). */
static spartan_status through_im2col(spartan_context *ctx, const spartan_window *w,
                                     const sp_geom *g, const spartan_tensor *x,
                                     const spartan_tensor *weight, spartan_tensor *y) {
    spartan_tensor cols;
    spartan_status st = sp_conv_scratch_cols(ctx, g, &cols);
    if (st == SPARTAN_OK) st = spartan_im2col(ctx, w, x, &cols);
    if (st == SPARTAN_OK)
        st = spartan_gemm_dense(ctx, SPARTAN_GEMM_BEST, 0, 0, 1.0f, &cols, weight, 0.0f, y);
    return st;
}

/* The bias and the ReLU over a y that no kernel store finished: y = max(y + b, 0) in two passes,
 * the same float operations as the store's. */
static spartan_status finish(spartan_context *ctx, const spartan_tensor *b, spartan_tensor *y) {
    spartan_status st = b ? spartan_bias_add(ctx, y, b) : SPARTAN_OK;
    return st == SPARTAN_OK ? spartan_relu(ctx, y, y) : st;
}

/* Both forwards; relu 0: the product alone (b unused); relu 1: max(product + b, 0), b NULL for
 * none. conv_forward and conv_forward_sparse apply the bias and the ReLU in their store when one
 * slice writes y; the rows kernel, split reductions, the fallback and an empty patch after. */
static spartan_status forward(spartan_context *ctx, const char *fn, spartan_path path,
                              const spartan_window *w, const spartan_tensor *x,
                              const spartan_tensor *weight, const spartan_tensor *b, int relu,
                              spartan_tensor *y) {
    const sp_conv_args a = {x, y, weight, "x", "y", "the weight", 1};
    conv_launch c = {0};
    spartan_status st = sp_conv_check(ctx, fn, path, w, &a, &c.g, &c.out_c);
    if (st) return st;
    if (b && ((st = sp_check_ctx(ctx, fn, SP_TENSORS(b, y))) ||
              (st = sp_check_apart(ctx, fn, "y", y, "the bias", b))))
        return st;
    if (b && b->numel != c.out_c)
        return sp_invalid(ctx, "%s: the bias has %zu elements, y %u columns", fn, b->numel,
                          (unsigned)c.out_c);
    c.x = x->mem;
    c.w = weight->mem;
    c.relu = relu;
    c.bias = b ? b->mem : NULL;
    if (y->numel == 0) return SPARTAN_OK;
    if (c.g.patch == 0) { /* no channels: empty sums */
        st = spartan_tensor_fill(y, 0.0f);
        return st == SPARTAN_OK && relu ? finish(ctx, b, y) : st;
    }
    if (!sp_family_usable(ctx, SP_FAMILY_conv)) {
        st = through_im2col(ctx, w, &c.g, x, weight, y);
        return st == SPARTAN_OK && relu ? finish(ctx, b, y) : st;
    }
    /* the sparse kernel of stride-1 3 x 3 and 5 x 5 windows (its weight rows padded to whole
     * blocks of output channels when out_c is not one) */
    if (path == SPARTAN_PATH_SPARSE && sp_conv_strip_fits(w)) {
        sp_strip_conv s = {.x = x->mem,
                           .w = weight->mem,
                           .aux = c.bias,
                           .batch = w->batch,
                           .in_h = w->in_h,
                           .in_w = w->in_w,
                           .in_c = w->in_c,
                           .k_h = w->k_h,
                           .k_w = w->k_w,
                           .pad_y = w->pad,
                           .pad_x = w->pad,
                           .out_h = c.g.v[8],
                           .out_w = c.g.v[9],
                           .out_c = c.out_c,
                           .ldw = sp_conv_strip_ldw(ctx, c.out_c),
                           .flip = 0,
                           .mode = relu ? (b ? 2 : 1) : 0};
        if (s.ldw != c.out_c &&
            (st = strip_weight(ctx, weight->mem, c.g.patch, c.out_c, s.ldw, &s.w)))
            return st;
        int stored = 0;
        st = sp_conv_strip(ctx, &s, y->mem, y->numel, &stored);
        return st == SPARTAN_OK && relu && !stored ? finish(ctx, b, y) : st;
    }
    /* other windows: lists of x's non-zeros first (a walk of in_c per pixel: within the loop
     * bound on any device with LOOP_MAX >= in_c, else the dense kernel), then slices of whole
     * window positions */
    size_t align = 1;
    if (path == SPARTAN_PATH_SPARSE && w->in_c <= sp_loop_max(ctx)) {
        if ((st = nonzero_lists(ctx, w, &c)) != SPARTAN_OK) return st;
        c.kernel = SP_K_conv_forward_sparse;
        align = w->in_c;
    } else {
        c.kernel = sp_conv_rows_fit(ctx, c.out_c) ? SP_K_conv_forward_rows : SP_K_conv_forward;
    }
    /* the rows kernel's vector loads (stride 1, one channel) read x's copy with room around it */
    if (c.kernel == SP_K_conv_forward_rows && w->stride == 1 && w->in_c == 1 &&
        (st = sp_conv_slack_copy(ctx, SP_SCRATCH_COLS, x->mem, c.g.image, w->pad, &c.x)))
        return st;
    const size_t most = c.kernel == SP_K_conv_forward_rows ? sp_conv_rows_slice_max(ctx, w->in_c)
                                                           : slice_max(ctx, w->in_c);
    size_t per, parts = sp_slices(c.g.patch, most, align, &per);
    c.kc = (cl_uint)per;
    c.whole = parts <= 1; /* sp_split_reduce's one launch into y */
    st = sp_split_reduce(ctx, parts, y->numel, y->mem, 1.0f, 0.0f, conv_slices, &c);
    const int stored = c.whole && c.kernel != SP_K_conv_forward_rows;
    return st == SPARTAN_OK && relu && !stored ? finish(ctx, b, y) : st;
}

spartan_status spartan_conv2d_forward(spartan_context *ctx, spartan_path path,
                                      const spartan_window *w, const spartan_tensor *x,
                                      const spartan_tensor *weight, spartan_tensor *y) {
    return forward(ctx, "spartan_conv2d_forward", path, w, x, weight, NULL, 0, y);
}

spartan_status spartan_conv2d_forward_relu(spartan_context *ctx, spartan_path path,
                                           const spartan_window *w, const spartan_tensor *x,
                                           const spartan_tensor *weight, const spartan_tensor *b,
                                           spartan_tensor *y) {
    return forward(ctx, "spartan_conv2d_forward_relu", path, w, x, weight, b, 1, y);
}
