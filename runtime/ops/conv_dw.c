/* The convolution's backward-by-weight of ops.h without the patch matrix (kernels_cl/conv_dw.cl):
 * dW = im2col(x)^T . dY, reduced over the output pixels. This file validates arguments, picks
 * the kernel's orientation, cuts the pixels into slices (so that no work-item walks more than
 * LOOP_MAX steps and the device has enough work-items) and launches; the slices' partial dW are
 * summed by sp_split_reduce (deterministic, no atomics). When the conv_dw family is off on the
 * device it computes the same product through im2col into a scratch buffer and the dense GEMM.
 * The layers do not call it yet. */
#include "ops/conv_dw.h"

/* The kernel's arguments besides the buffers: the window (NN_WINDOW_ARGS' order), out_c, the
 * blocks of dW one slice has, and the pixels per slice; the sparse kernel's lists of dY's
 * non-zeros (NULL for the others) and the slices they were made for. */
typedef struct dw_launch {
    sp_geom g;
    cl_uint out_c, blocks, pc, parts;
    sp_kernel_id k;
    cl_mem x, dy, lists;
} dw_launch;

/* Work-items per compute unit the slices aim at: a GPU's multiprocessor hides its memory
 * latency with a thousand or two resident; a CPU core gets 64 work-groups of 16 to balance. */
#define ITEMS_PER_UNIT 1024
/* Fewest pixels a slice gets for the sake of the work-item count (the loop bound may cut
 * shorter): a slice costs a partial dW written and summed, worth it over 64 pixels of FMAs. */
#define SLICE_MIN      64

static size_t ceil_div(size_t a, size_t b) {
    return (a + b - 1) / b;
}

/* The fraction of n a blocking by `block` leaves in use (n > 0). */
static double fill(size_t n, size_t block) {
    return (double)n / (double)(ceil_div(n, block) * block);
}

/* The orientation whose register blocks hold the most useful FMAs per pixel: vectors over the
 * input channels fill SP_VEC lanes with in_c and RB rows with out_c; vectors over the output
 * channels fill the lanes with out_c and the rows with k_h k_w in_c. A tie goes to the input
 * channels', whose sparse kernel skips dY's zeros (65-92 % in training, against x's 50-70 %).
 * So in_c >= VEC takes vectors over input channels (vgg-small's convolutions but the first),
 * and in_c of 1 or 6 with out_c of 6 or 16 (lenet5) vectors over the output channels. */
sp_dw_orient sp_conv_dw_pick(const spartan_context *ctx, const spartan_window *w, size_t out_c) {
    size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
    size_t rb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_RB");
    size_t patch = w->k_h * w->k_w * w->in_c;
    if (w->in_c == 0 || out_c == 0) return SP_DW_CVEC;
    double cvec = fill(w->in_c, vec) * fill(out_c, rb);
    double ocvec = fill(out_c, vec) * fill(patch, rb);
    return cvec >= ocvec ? SP_DW_CVEC : SP_DW_OCVEC;
}

/* How many pixels one work-item may walk. Counted as if the compiler unrolled nothing
 * (conv_dw.cl): per pixel (or listed non-zero) the loop, its walk, loads and tests, then RB
 * rows of NB vector loads (SP_VEC lane steps each where the vectors have a partial one) and NB
 * FMAs; and once the set-up and the stores, RB x NB vectors of up to 2 SP_VEC lane steps each.
 * The lists' kernel walks a slice twice with a few steps per pixel: less. */
static size_t slice_max(const spartan_context *ctx, int partial) {
    size_t rb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_RB");
    size_t nb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_NB");
    size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
    size_t step = 8 + rb * (2 + nb * (2 + (partial ? vec : 0)));
    size_t fixed = rb * nb * (4 + 2 * vec) + 4 * rb + 32, max = sp_loop_max(ctx);
    size_t pc = max > fixed ? (max - fixed) / step : 1;
    return pc ? pc : 1;
}

/* One launch over the slices [part0, part0 + nparts) (sp_split_reduce). */
static spartan_status dw_slices(spartan_context *ctx, void *arg, size_t part0, size_t nparts,
                                cl_mem dst, float alpha, float beta) {
    const dw_launch *c = arg;
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_WG");
    size_t n = (size_t)c->blocks * nparts;
    cl_uint np = (cl_uint)nparts, p0 = (cl_uint)part0;
    sp_arg args[22] = {SP_ARG(c->x), SP_ARG(c->dy), SP_ARG(dst)};
    for (int i = 0; i < 10; i++) args[3 + i] = SP_ARG(c->g.v[i]);
    args[13] = SP_ARG(c->out_c);
    args[14] = SP_ARG(c->blocks);
    args[15] = SP_ARG(np);
    args[16] = SP_ARG(p0);
    args[17] = SP_ARG(c->pc);
    args[18] = SP_ARG(alpha);
    args[19] = SP_ARG(beta);
    args[20] = SP_ARG(c->lists);
    args[21] = SP_ARG(c->parts);
    return sp_launch(ctx, c->k, 1, &n, &wg, args, c->lists ? 22 : 20);
}

/* The sparse kernel's lists of dY's non-zeros (conv_dw.cl, SP_DW_TAB / SP_DW_ENT) for c's
 * slices, in scratch; 0 with c->lists NULL when they would not fit a quarter of the device's
 * largest allocation (the dense kernel runs then). */
static spartan_status make_lists(spartan_context *ctx, dw_launch *c) {
    size_t words = c->parts * (size_t)c->out_c * (1 + 2 * (size_t)c->pc) + 4 * c->g.pixels;
    if (words * sizeof(cl_uint) > ctx->dev.info.max_alloc_bytes / 4) return SPARTAN_OK;
    spartan_status st = sp_scratch(ctx, SP_SCRATCH_COLS, words * sizeof(cl_uint), &c->lists);
    if (st != SPARTAN_OK) return st;
    sp_arg args[15] = {SP_ARG(c->dy), SP_ARG(c->lists)};
    for (int i = 0; i < 10; i++) args[2 + i] = SP_ARG(c->g.v[i]);
    args[12] = SP_ARG(c->out_c);
    args[13] = SP_ARG(c->parts);
    args[14] = SP_ARG(c->pc);
    return sp_launch_1d(ctx, SP_K_conv_dw_lists, c->parts * (size_t)c->out_c, args, 15);
}

/* The same product without the family: the patch matrix in scratch, then the dense GEMM with
 * the patches transposed (the best path for the device; its own fallbacks apply). */
static spartan_status through_im2col(spartan_context *ctx, const spartan_window *w,
                                     const sp_geom *g, const spartan_tensor *x,
                                     const spartan_tensor *dy, spartan_tensor *dweight) {
    cl_mem mem;
    size_t numel = g->pixels * g->patch;
    spartan_status st = sp_scratch(ctx, SP_SCRATCH_COLS, numel * sizeof(float), &mem);
    if (st != SPARTAN_OK) return st;
    spartan_tensor cols = {ctx, 2, {g->pixels, g->patch}, numel, mem};
    st = spartan_im2col(ctx, w, x, &cols);
    if (st == SPARTAN_OK)
        st = spartan_gemm_dense(ctx, SPARTAN_GEMM_BEST, 1, 0, 1.0f, &cols, dy, 0.0f, dweight);
    return st;
}

/* The kernel's launches for a checked call: the blocks of dW, the slices, the lists of the
 * sparse kernel, the sums. */
static spartan_status run_kernel(spartan_context *ctx, spartan_path path, sp_dw_orient orient,
                                 dw_launch *c, spartan_tensor *dweight) {
    size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
    size_t rb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_RB");
    size_t cb = vec * (size_t)sp_tuned_get(&ctx->tuned, "GEMM_NB");
    size_t in_c = c->g.v[3], out_c = c->out_c, npos = c->g.patch / in_c, blocks;
    int sparse = path == SPARTAN_PATH_SPARSE, partial;
    if (orient == SP_DW_CVEC) {
        partial = in_c % vec != 0;
        c->k = sparse ? SP_K_conv_dw_cvec_sparse : SP_K_conv_dw_cvec;
    } else {
        partial = out_c % vec != 0;
        c->k = sparse ? SP_K_conv_dw_ocvec_sparse : SP_K_conv_dw_ocvec;
    }
    /* enough slices for the loop bound; more, down to SLICE_MIN pixels, for the work-items */
    size_t pixels = c->g.pixels;
    size_t parts = ceil_div(pixels, slice_max(ctx, partial));
    size_t dense_blocks = orient == SP_DW_CVEC ? npos * ceil_div(in_c, cb) * ceil_div(out_c, rb)
                                               : ceil_div(c->g.patch, rb) * ceil_div(out_c, cb);
    size_t busy = ceil_div((size_t)ctx->dev.info.compute_units * ITEMS_PER_UNIT, dense_blocks);
    size_t most = ceil_div(pixels, SLICE_MIN);
    if (busy > most) busy = most;
    if (busy > parts) parts = busy;
    size_t pc = ceil_div(pixels, parts);
    parts = ceil_div(pixels, pc);
    spartan_status st;
    cl_uint unused;
    if ((st = sp_u32(ctx, pc, "pixels per slice", &c->pc)) ||
        (st = sp_u32(ctx, parts, "slices", &c->parts)))
        return st;
    blocks = dense_blocks;
    if (c->k == SP_K_conv_dw_cvec_sparse) {
        if ((st = make_lists(ctx, c)) != SPARTAN_OK) return st;
        if (c->lists) /* out_c x blocks of input channels x blocks of positions */
            blocks = out_c * ceil_div(in_c, cb) * ceil_div(npos, rb);
        else
            c->k = SP_K_conv_dw_cvec;
    }
    if ((st = sp_u32(ctx, blocks, "blocks of dweight", &c->blocks)) ||
        (st = sp_u32(ctx, blocks * parts, "work-items", &unused)))
        return st;
    return sp_split_reduce(ctx, parts, dweight->numel, dweight->mem, 1.0f, 0.0f, dw_slices, c);
}

spartan_status sp_conv_dw(spartan_context *ctx, spartan_path path, sp_dw_orient orient,
                          const spartan_window *w, const spartan_tensor *x,
                          const spartan_tensor *dy, spartan_tensor *dweight) {
    static const char fn[] = "spartan_conv2d_backward_weight";
    if (!ctx || !w || !x || !dy || !dweight) return sp_invalid(ctx, "%s: NULL argument", fn);
    if (path != SPARTAN_PATH_DENSE && path != SPARTAN_PATH_SPARSE)
        return sp_invalid(ctx, "%s: unknown path %d", fn, (int)path);
    spartan_status st = sp_check_ctx(ctx, fn, SP_TENSORS(x, dy, dweight));
    if (!st) st = sp_check_apart(ctx, fn, "dweight", dweight, "x", x);
    if (!st) st = sp_check_apart(ctx, fn, "dweight", dweight, "dy", dy);
    if (st) return st;
    dw_launch c = {.x = x->mem, .dy = dy->mem};
    if ((st = sp_window_geom(ctx, fn, w, &c.g)) || (st = sp_check_image(ctx, fn, "x", x, &c.g)))
        return st;
    size_t out_c = spartan_tensor_cols(dy);
    if (spartan_tensor_rows(dy) != c.g.pixels)
        return sp_invalid(ctx, "%s: dy is %zux%zu, the window has %zu output pixels", fn,
                          spartan_tensor_rows(dy), out_c, c.g.pixels);
    if (spartan_tensor_rows(dweight) != c.g.patch || spartan_tensor_cols(dweight) != out_c)
        return sp_invalid(ctx,
                          "%s: dweight is %zux%zu, the window and dy want %zux%zu (k_h x k_w x "
                          "in_c rows, out_c columns)",
                          fn, spartan_tensor_rows(dweight), spartan_tensor_cols(dweight), c.g.patch,
                          out_c);
    cl_uint unused;
    if ((st = sp_u32(ctx, out_c, "out_c", &c.out_c)) ||
        (st = sp_u32(ctx, dy->numel, "dy elements", &unused)) ||
        (st = sp_u32(ctx, dweight->numel, "dweight elements", &unused)))
        return st;
    if (dweight->numel == 0) return SPARTAN_OK;
    if (c.g.pixels == 0) return spartan_tensor_fill(dweight, 0.0f); /* no pixels: empty sums */
    if (!sp_family_usable(ctx, SP_FAMILY_conv_dw))
        return through_im2col(ctx, w, &c.g, x, dy, dweight);
    if (orient == SP_DW_AUTO) orient = sp_conv_dw_pick(ctx, w, out_c);
    return run_kernel(ctx, path, orient, &c, dweight);
}

spartan_status spartan_conv2d_backward_weight(spartan_context *ctx, spartan_path path,
                                              const spartan_window *w, const spartan_tensor *x,
                                              const spartan_tensor *dy, spartan_tensor *dweight) {
    return sp_conv_dw(ctx, path, SP_DW_AUTO, w, x, dy, dweight);
}
