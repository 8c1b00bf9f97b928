/* The convolution's backward-by-input of ops.h (kernels_cl/conv_dx.cl): dx = col2im(dy . W^T)
 * as an output-stationary transposed convolution, no cols matrix. This file validates
 * arguments, rearranges W per window position into a scratch buffer, cuts the reduction so that
 * no work-item walks more than LOOP_MAX steps, and launches the dense or the sparse kernel; when
 * the conv_dx family is off on the device it computes the same thing through the dense GEMM into
 * a scratch cols matrix and col2im. The sparse path of a stride-1 3 x 3 or 5 x 5 window runs the
 * forward's sparse kernel (conv.c's sp_conv_strip) on dy with the window turned round. With a
 * ReLU's output as the mask, the same store keeps dx only where the ReLU passed its input
 * (spartan_conv2d_backward_input_relu). */
#include "ops/ops_internal.h"

/* dx pixels per work-item of conv_dx_sparse: SRB in conv_dx.cl. */
#define SPARSE_RB 4

/* The kernels' arguments besides the buffers: the window (NN_WINDOW_ARGS' order), out_c, the
 * units of the pixel order (conv_dx.cl), the slices of the reduction (kc indices or units each);
 * for the sparse kernel the chunks of dy's lists of non-zeros (nch of ch_len output channels) and
 * where their entries start (ent). */
typedef struct dx_launch {
    sp_geom g;
    cl_uint out_c, kc, ch_len, nch, ent;
    size_t units;
    cl_mem dy, wf, lists;
    sp_kernel_id kernel; /* the dense path's: conv_dx_dense or conv_dx_rows */
    cl_mem mask;         /* the ReLU's output masking dx, or NULL */
    cl_mem dx;           /* the call's dx: a slice written there is the whole result */
} dx_launch;

/* The mask's arguments of conv_dx_dense and conv_dx_sparse: masked where the launch writes the
 * whole dx (one slice, into dx itself), else unmasked (finish masks the sum). */
static void mask_args(const dx_launch *c, cl_mem dst, sp_arg *args) {
    static const cl_uint on = 1, off = 0;
    const int masked = c->mask && dst == c->dx;
    args[0] = SP_ARG(*(masked ? &c->mask : &c->wf));
    args[1] = SP_ARG(*(masked ? &on : &off));
}

/* The budget of loop iterations for a work-item's walk over its slice: LOOP_MAX less its set-up
 * and stores (RB or SPARSE_RB pixels x (NB + 1) at most), counted as if the compiler unrolled
 * nothing. */
static size_t walk_budget(const spartan_context *ctx) {
    size_t rb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_RB");
    size_t nb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_NB");
    if (rb < SPARSE_RB) rb = SPARSE_RB;
    return sp_loop_max(ctx) - 8 * rb * (1 + nb); /* LOOP_MAX >= 1024 (tuned.c) */
}

/* How long a slice of the dense kernel's reduction (e = (ky k_w + kx) out_c + oc) may be. Per
 * index (conv_dx_dense): the oc loop, NB loads of wf, RB rows of a load and NB FMAs; per window
 * position it enters, the position loop and RB pixel tests. A slice of kc indices enters at
 * most kc / out_c + 2 positions, so kc (step + pos / out_c) + 2 pos <= the budget. */
static size_t dense_slice_max(const spartan_context *ctx, size_t out_c) {
    size_t rb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_RB");
    size_t nb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_NB");
    size_t step = 1 + nb + rb * (1 + nb), pos = 2 + rb;
    size_t kc = (walk_budget(ctx) - 2 * pos) * out_c / (step * out_c + pos);
    return kc ? kc : 1;
}

/* One launch of c->kernel, conv_dx_dense or conv_dx_rows (c->dy: dy transposed, c->wf: the
 * weight as it is), over the slices [part0, part0 + nparts) (sp_split_reduce). */
static spartan_status dense_slices(spartan_context *ctx, void *arg, size_t part0, size_t nparts,
                                   cl_mem dst, float alpha, float beta) {
    const dx_launch *c = arg;
    size_t rb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_RB");
    size_t cb = (size_t)(sp_tuned_get(&ctx->tuned, "VEC") * sp_tuned_get(&ctx->tuned, "GEMM_NB"));
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_WG");
    size_t g[3] = {(c->units + rb - 1) / rb, (c->g.v[3] + cb - 1) / cb, nparts};
    if (c->kernel == SP_K_conv_dx_rows) {
        size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
        size_t in_w = c->g.v[2], rows = (size_t)c->g.v[0] * c->g.v[1];
        g[0] = rows * ((in_w + vec - 1) / vec);
        g[1] = (c->g.v[3] + SP_ROWS_BLOCK - 1) / SP_ROWS_BLOCK;
    }
    size_t l[3] = {wg, 1, 1};
    cl_uint e0 = (cl_uint)(part0 * c->kc);
    sp_arg args[20] = {SP_ARG(c->dy), SP_ARG(c->wf), SP_ARG(dst)};
    for (int i = 0; i < 10; i++) args[3 + i] = SP_ARG(c->g.v[i]);
    args[13] = SP_ARG(c->out_c);
    args[14] = SP_ARG(e0);
    args[15] = SP_ARG(c->kc);
    args[16] = SP_ARG(alpha);
    args[17] = SP_ARG(beta);
    if (c->kernel == SP_K_conv_dx_rows) return sp_launch(ctx, c->kernel, 3, g, l, args, 18);
    mask_args(c, dst, args + 18);
    return sp_launch(ctx, c->kernel, 3, g, l, args, 20);
}

/* The dense kernel for the shape: conv_dx_rows (vectors over a row's dx pixels, sp_conv_rows_fit)
 * for stride 1, else conv_dx_dense (vectors over input channels). */
static int use_rows(const spartan_context *ctx, const spartan_window *w) {
    return w->stride == 1 && sp_conv_rows_fit(ctx, w->in_c);
}

/* The dense path through conv_dx_rows: dy transposed into scratch, then the slices. */
static spartan_status run_rows(spartan_context *ctx, const spartan_window *w,
                               const spartan_tensor *dy, const spartan_tensor *weight,
                               spartan_tensor *dx, dx_launch *c) {
    cl_mem dyt;
    cl_uint pixels = (cl_uint)c->g.pixels, n; /* within 32 bits: sp_window_geom */
    /* SP_CONVDX_SLACK (conv_dx.cl): the kernel's lanes reach past dy's rows */
    size_t reach = w->k_w - 1 > w->pad ? w->k_w - 1 - w->pad : 0;
    cl_uint slack = (cl_uint)(reach + (size_t)sp_tuned_get(&ctx->tuned, "VEC"));
    spartan_status st = sp_u32(ctx, dy->numel + 2 * (size_t)slack, "dy's elements", &n);
    if (st == SPARTAN_OK) st = sp_scratch(ctx, SP_SCRATCH_COLS, n * sizeof(float), &dyt);
    if (st != SPARTAN_OK) return st;
    sp_arg args[] = {SP_ARG(c->dy), SP_ARG(dyt), SP_ARG(pixels), SP_ARG(c->out_c), SP_ARG(slack)};
    if ((st = sp_launch_1d(ctx, SP_K_conv_dx_transpose, n, args, 5))) return st;
    c->dy = dyt;
    c->wf = weight->mem;
    size_t reduction = w->k_h * w->k_w * c->out_c, per;
    size_t parts = sp_slices(reduction, sp_conv_rows_slice_max(ctx, c->out_c), 1, &per);
    c->kc = (cl_uint)per;
    c->kernel = SP_K_conv_dx_rows;
    return sp_split_reduce(ctx, parts, dx->numel, dx->mem, 1.0f, 0.0f, dense_slices, c);
}

/* One launch of conv_dx_sparse over the slices [part0, part0 + nparts). */
static spartan_status sparse_slices(spartan_context *ctx, void *arg, size_t part0, size_t nparts,
                                    cl_mem dst, float alpha, float beta) {
    const dx_launch *c = arg;
    size_t cb = (size_t)(sp_tuned_get(&ctx->tuned, "VEC") * sp_tuned_get(&ctx->tuned, "GEMM_NB"));
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_WG");
    size_t g[3] = {(c->units + SPARSE_RB - 1) / SPARSE_RB, (c->g.v[3] + cb - 1) / cb, nparts};
    size_t l[3] = {wg, 1, 1};
    cl_uint u0 = (cl_uint)(part0 * c->kc);
    sp_arg args[23] = {SP_ARG(c->lists), SP_ARG(c->wf), SP_ARG(dst)};
    for (int i = 0; i < 10; i++) args[3 + i] = SP_ARG(c->g.v[i]);
    args[13] = SP_ARG(c->out_c);
    args[14] = SP_ARG(c->ch_len);
    args[15] = SP_ARG(c->nch);
    args[16] = SP_ARG(c->ent);
    args[17] = SP_ARG(u0);
    args[18] = SP_ARG(c->kc);
    args[19] = SP_ARG(alpha);
    args[20] = SP_ARG(beta);
    mask_args(c, dst, args + 21);
    return sp_launch(ctx, SP_K_conv_dx_sparse, 3, g, l, args, 23);
}

/* The sparse path: dy's non-zeros listed per pixel and chunk of output channels into scratch
 * (conv_dx_lists), then conv_dx_sparse over slices of units (a window position and a chunk). Per
 * unit the kernel walks the unit loop and, for each of its SPARSE_RB pixels, a test and the list
 * of the dy pixel that covers it; per list entry the list loop and NB loads and FMAs. So a chunk
 * holds as many output channels as half the budget allows, and a slice as many units as the
 * budget allows (the list building walks a chunk: less). */
static spartan_status run_sparse(spartan_context *ctx, const spartan_window *w,
                                 const spartan_tensor *dy, spartan_tensor *dx, dx_launch *c,
                                 size_t *parts_out) {
    size_t nb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_NB"), budget = walk_budget(ctx);
    size_t entry = SPARSE_RB * (1 + nb), unit = 1 + SPARSE_RB;
    size_t most = budget / 2 > unit + entry ? (budget / 2 - unit) / entry : 1;
    size_t ch_len, nch = sp_slices(c->out_c, most, 1, &ch_len);
    size_t counts = c->g.pixels * nch, numel = counts + 2 * dy->numel;
    spartan_status st;
    if ((st = sp_u32(ctx, numel, "the lists of dy's non-zeros", &c->ent))) return st;
    c->ent = (cl_uint)counts;
    c->ch_len = (cl_uint)ch_len;
    c->nch = (cl_uint)nch;
    if ((st = sp_scratch(ctx, SP_SCRATCH_COLS, numel * sizeof(cl_uint), &c->lists))) return st;
    cl_uint pixels = (cl_uint)c->g.pixels;
    sp_arg args[] = {SP_ARG(c->dy),     SP_ARG(c->lists), SP_ARG(pixels), SP_ARG(c->out_c),
                     SP_ARG(c->ch_len), SP_ARG(c->nch),   SP_ARG(c->ent)};
    if ((st = sp_launch_1d(ctx, SP_K_conv_dx_lists, counts, args, 7))) return st;
    size_t units = w->k_h * w->k_w * nch, per;
    size_t parts = sp_slices(units, budget / (unit + ch_len * entry), 1, &per);
    *parts_out = parts;
    c->kc = (cl_uint)per;
    return sp_split_reduce(ctx, parts, dx->numel, dx->mem, 1.0f, 0.0f, sparse_slices, c);
}

/* The same result without the conv_dx family: dy . W^T into the cols matrix in scratch by the
 * dense GEMM (the best path for the device; its own fallbacks apply), then col2im. */
static spartan_status through_col2im(spartan_context *ctx, const spartan_window *w,
                                     const sp_geom *g, const spartan_tensor *dy,
                                     const spartan_tensor *weight, spartan_tensor *dx) {
    spartan_tensor cols;
    spartan_status st = sp_conv_scratch_cols(ctx, g, &cols);
    if (st == SPARTAN_OK)
        st = spartan_gemm_dense(ctx, SPARTAN_GEMM_BEST, 0, 1, 1.0f, dy, weight, 0.0f, &cols);
    if (st == SPARTAN_OK) st = spartan_col2im(ctx, w, &cols, dx);
    return st;
}

/* W rearranged into the kernels' layout (conv_dx.cl: one out_c x ldw block per window position;
 * ldw = in_c rounded up to whole vectors, or whole blocks of GEMM_NB vectors for
 * conv_strip_sparse: ldw_blocks) in scratch: small (the weights), rewritten on every call. */
static spartan_status flip_weight(spartan_context *ctx, const spartan_window *w,
                                  const spartan_tensor *weight, cl_uint out_c, int ldw_blocks,
                                  cl_mem *out, size_t *ldw_out) {
    size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
    size_t ldw = ldw_blocks ? sp_conv_strip_ldw(ctx, w->in_c) : (w->in_c + vec - 1) / vec * vec;
    size_t numel = w->k_h * w->k_w * out_c * ldw;
    cl_uint n, in_c = (cl_uint)w->in_c, uldw = (cl_uint)ldw;
    *ldw_out = ldw;
    spartan_status st = sp_u32(ctx, numel, "the rearranged weight's elements", &n);
    if (st == SPARTAN_OK) st = sp_scratch(ctx, SP_SCRATCH_TRANSPOSE, numel * sizeof(float), out);
    if (st != SPARTAN_OK) return st;
    sp_arg args[] = {SP_ARG(weight->mem), SP_ARG(*out),  SP_ARG(n),
                     SP_ARG(in_c),        SP_ARG(out_c), SP_ARG(uldw)};
    return sp_launch_1d(ctx, SP_K_conv_dx_flip, n, args, 6);
}

/* The ReLU's mask over a dx that no kernel store masked: dx = dx where x > 0, else 0. */
static spartan_status finish(spartan_context *ctx, const spartan_tensor *mask, spartan_tensor *dx,
                             spartan_status st) {
    return st == SPARTAN_OK && mask ? spartan_relu_backward(ctx, mask, dx, dx) : st;
}

/* Both backward-by-inputs; mask NULL: unmasked. The dense and sparse kernels mask in their store
 * when one slice writes dx; the other paths (several slices, conv_dx_rows, the fallback) mask in
 * a pass after. */
static spartan_status backward_input(spartan_context *ctx, const char *fn, spartan_path path,
                                     const spartan_window *w, const spartan_tensor *dy,
                                     const spartan_tensor *weight, const spartan_tensor *mask,
                                     spartan_tensor *dx) {
    const sp_conv_args a = {dx, dy, weight, "dx", "dy", "the weight", 0};
    dx_launch c = {0};
    spartan_status st = sp_conv_check(ctx, fn, path, w, &a, &c.g, &c.out_c);
    if (st) return st;
    if (mask && ((st = sp_check_ctx(ctx, fn, SP_TENSORS(mask, dx))) ||
                 (st = sp_check_apart(ctx, fn, "dx", dx, "x", mask))))
        return st;
    if (mask && mask->numel != dx->numel)
        return sp_invalid(ctx, "%s: x has %zu elements, dx %zu", fn, mask->numel, dx->numel);
    c.dy = dy->mem;
    c.mask = mask ? mask->mem : NULL;
    c.dx = dx->mem;
    /* the kernels' pixel order (conv_dx.cl): rows of stride x ceil(in_w / stride) units */
    size_t rows = w->batch * w->in_h, span = (w->in_w + w->stride - 1) / w->stride * w->stride;
    cl_uint unused;
    if (rows && span > ((size_t)0xffffffffu) / rows)
        return sp_invalid(ctx,
                          "%s: %zu image rows of %zu units are past the kernels' 32-bit "
                          "indices",
                          fn, rows, span);
    c.units = rows * span;
    if ((st = sp_u32(ctx, c.units, "pixel units", &unused))) return st;
    if (dx->numel == 0) return SPARTAN_OK;
    if (c.out_c == 0) return spartan_tensor_fill(dx, 0.0f); /* no outputs: empty sums */
    if (!sp_family_usable(ctx, SP_FAMILY_conv_dx))
        return finish(ctx, mask, dx, through_col2im(ctx, w, &c.g, dy, weight, dx));
    if (path != SPARTAN_PATH_SPARSE && use_rows(ctx, w))
        return finish(ctx, mask, dx, run_rows(ctx, w, dy, weight, dx, &c));
    /* stride-1 3 x 3 and 5 x 5 windows: dx is the forward convolution of dy with the window
     * turned round, pads k - 1 - pad (conv_strip_sparse) */
    size_t ldw;
    if (path == SPARTAN_PATH_SPARSE && sp_conv_strip_fits(w) && w->pad < w->k_w &&
        sp_family_usable(ctx, SP_FAMILY_conv)) {
        if ((st = flip_weight(ctx, w, weight, c.out_c, 1, &c.wf, &ldw))) return st;
        const size_t back = w->k_w - 1 - w->pad;
        const sp_strip_conv s = {.x = dy->mem,
                                 .w = c.wf,
                                 .aux = c.mask,
                                 .batch = w->batch,
                                 .in_h = c.g.v[8],
                                 .in_w = c.g.v[9],
                                 .in_c = c.out_c,
                                 .k_h = w->k_h,
                                 .k_w = w->k_w,
                                 .pad_y = back,
                                 .pad_x = back,
                                 .out_h = w->in_h,
                                 .out_w = w->in_w,
                                 .out_c = w->in_c,
                                 .ldw = ldw,
                                 .flip = 1,
                                 .mode = mask ? 3 : 0};
        int stored = 0;
        st = sp_conv_strip(ctx, &s, dx->mem, dx->numel, &stored);
        return stored ? st : finish(ctx, mask, dx, st);
    }
    if ((st = flip_weight(ctx, w, weight, c.out_c, 0, &c.wf, &ldw))) return st;
    size_t parts = 1;
    if (path == SPARTAN_PATH_SPARSE) {
        st = run_sparse(ctx, w, dy, dx, &c, &parts);
    } else {
        size_t reduction = w->k_h * w->k_w * c.out_c; /* <= the weight's elements: fits */
        size_t per;
        parts = sp_slices(reduction, dense_slice_max(ctx, c.out_c), 1, &per);
        c.kc = (cl_uint)per;
        c.kernel = SP_K_conv_dx_dense;
        st = sp_split_reduce(ctx, parts, dx->numel, dx->mem, 1.0f, 0.0f, dense_slices, &c);
    }
    return parts > 1 ? finish(ctx, mask, dx, st) : st;
}

spartan_status spartan_conv2d_backward_input(spartan_context *ctx, spartan_path path,
                                             const spartan_window *w, const spartan_tensor *dy,
                                             const spartan_tensor *weight, spartan_tensor *dx) {
    return backward_input(ctx, "spartan_conv2d_backward_input", path, w, dy, weight, NULL, dx);
}

spartan_status spartan_conv2d_backward_input_relu(spartan_context *ctx, spartan_path path,
                                                  const spartan_window *w, const spartan_tensor *dy,
                                                  const spartan_tensor *weight,
                                                  const spartan_tensor *x, spartan_tensor *dx) {
    static const char fn[] = "spartan_conv2d_backward_input_relu";
    if (!x) return sp_invalid(ctx, "%s: NULL argument", fn);
    return backward_input(ctx, fn, path, w, dy, weight, x, dx);
}
