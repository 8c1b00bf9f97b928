/* A convolution layer's pass on either engine (ops_internal.h, "The convolution's passes"): the
 * implicit kernels, or im2col / col2im around the GEMM descriptor; and what the three
 * convolution operations share: their argument checks and their fallbacks' patch matrix. */
#include "ops/ops_internal.h"

static sp_family implicit_family(spartan_pass pass) {
    return pass == SPARTAN_PASS_FWD         ? SP_FAMILY_conv
           : pass == SPARTAN_PASS_BWD_INPUT ? SP_FAMILY_conv_dx
                                            : SP_FAMILY_conv_dw;
}

int sp_conv_engine_usable(const spartan_context *ctx, spartan_pass pass, spartan_path path,
                          spartan_sparse_form form, sp_conv_engine engine) {
    if (engine == SP_CONV_GEMM) return 1;
    if (!sp_family_usable(ctx, implicit_family(pass))) return 0;
    if (path == SPARTAN_PATH_DENSE) return 1;
    return form == (pass == SPARTAN_PASS_FWD ? SPARTAN_FORM_ON_X : SPARTAN_FORM_ON_DY);
}

spartan_status sp_conv_pass_run(spartan_context *ctx, spartan_pass pass, sp_conv_engine engine,
                                spartan_path path, spartan_gemm_path dense, sp_conv_operands *o) {
    spartan_gemm_operands *g = &o->g;
    if (engine == SP_CONV_IMPLICIT) {
        switch (pass) {
        case SPARTAN_PASS_FWD:
            return o->relu_y ? spartan_conv2d_forward_relu(ctx, path, &o->win, o->x, g->w,
                                                           o->relu_bias, g->y)
                             : spartan_conv2d_forward(ctx, path, &o->win, o->x, g->w, g->y);
        case SPARTAN_PASS_BWD_INPUT:
            return o->mask_dx
                       ? spartan_conv2d_backward_input_relu(ctx, path, &o->win, g->dy, g->w, o->x,
                                                            o->dx)
                       : spartan_conv2d_backward_input(ctx, path, &o->win, g->dy, g->w, o->dx);
        default:
            return spartan_conv2d_backward_weight(ctx, path, &o->win, o->x, g->dy, g->dw);
        }
    }
    spartan_status st = SPARTAN_OK;
    /* the forward pass and backward-by-weight read the patch matrix (made once a step), and so
     * does backward-by-input when sparse on X (computed only under its non-zeros) */
    const int reads_x = pass != SPARTAN_PASS_BWD_INPUT ||
                        (path == SPARTAN_PATH_SPARSE && o->d->form == SPARTAN_FORM_ON_X);
    if (reads_x && !o->cols_fresh) {
        st = spartan_im2col(ctx, &o->win, o->x, (spartan_tensor *)g->x);
        if (st != SPARTAN_OK) return st;
        o->cols_fresh = 1;
        g->x_forms = 0; /* a new X: its compaction is stale */
    }
    st = spartan_gemm_pass_run(ctx, o->d, path, dense, g);
    if (st == SPARTAN_OK && pass == SPARTAN_PASS_BWD_INPUT)
        st = spartan_col2im(ctx, &o->win, g->dx, o->dx);
    if (st == SPARTAN_OK && pass == SPARTAN_PASS_BWD_INPUT && o->mask_dx)
        st = spartan_relu_backward(ctx, o->x, o->dx, o->dx);
    if (st == SPARTAN_OK && pass == SPARTAN_PASS_FWD && o->relu_y && o->relu_bias)
        st = spartan_bias_add(ctx, g->y, o->relu_bias);
    if (st == SPARTAN_OK && pass == SPARTAN_PASS_FWD && o->relu_y)
        st = spartan_relu(ctx, g->y, g->y);
    return st;
}

spartan_status sp_conv_check(spartan_context *ctx, const char *fn, spartan_path path,
                             const spartan_window *w, const sp_conv_args *a, sp_geom *g,
                             cl_uint *out_c) {
    const spartan_tensor *t[3] = {a->image, a->pixels, a->patches};
    const char *name[3] = {a->image_name, a->pixels_name, a->patches_name};
    if (!ctx || !w || !t[0] || !t[1] || !t[2]) return sp_invalid(ctx, "%s: NULL argument", fn);
    if (path != SPARTAN_PATH_DENSE && path != SPARTAN_PATH_SPARSE)
        return sp_invalid(ctx, "%s: unknown path %d", fn, (int)path);
    spartan_status st = sp_check_ctx(ctx, fn, t, 3);
    for (int i = 0; i < 3 && !st; i++)
        if (i != a->out) st = sp_check_apart(ctx, fn, name[a->out], t[a->out], name[i], t[i]);
    if (st || (st = sp_window_geom(ctx, fn, w, g)) ||
        (st = sp_check_image(ctx, fn, a->image_name, a->image, g)))
        return st;
    /* out_c from the matrix read (the weight when both are): its rows checked first */
    const int src = a->out == 2 ? 1 : 2, other = 3 - src;
    const size_t rows[3] = {0, g->pixels, g->patch}, oc = spartan_tensor_cols(t[src]);
    if (spartan_tensor_rows(t[src]) != rows[src])
        return sp_invalid(ctx, "%s: %s is %zux%zu, the window has %zu %s", fn, name[src],
                          spartan_tensor_rows(t[src]), oc, rows[src],
                          src == 2 ? "elements per patch (k_h x k_w x in_c rows)"
                                   : "output pixels");
    if (spartan_tensor_rows(t[other]) != rows[other] || spartan_tensor_cols(t[other]) != oc)
        return sp_invalid(ctx, "%s: %s is %zux%zu, the window and %s want %zux%zu", fn, name[other],
                          spartan_tensor_rows(t[other]), spartan_tensor_cols(t[other]), name[src],
                          rows[other], oc);
    cl_uint unused;
    if ((st = sp_u32(ctx, oc, "out_c", out_c)) || (st = sp_u32(ctx, t[1]->numel, name[1], &unused)))
        return st;
    return sp_u32(ctx, t[2]->numel, name[2], &unused);
}

spartan_status sp_conv_scratch_cols(spartan_context *ctx, const sp_geom *g, spartan_tensor *cols) {
    cl_mem mem;
    const size_t numel = g->pixels * g->patch;
    spartan_status st = sp_scratch(ctx, SP_SCRATCH_COLS, numel * sizeof(float), &mem);
    if (st == SPARTAN_OK) *cols = (spartan_tensor){ctx, 2, {g->pixels, g->patch}, numel, mem};
    return st;
}

spartan_status sp_fill_zero(spartan_context *ctx, cl_mem m, size_t at, size_t n) {
    const float zero = 0.0f;
    cl_int rc = n ? clEnqueueFillBuffer(ctx->queue, m, &zero, sizeof zero, at * sizeof(float),
                                        n * sizeof(float), 0, NULL, NULL)
                  : CL_SUCCESS;
    return rc == CL_SUCCESS ? SPARTAN_OK
                            : sp_ctx_cl_fail(ctx, rc, "clEnqueueFillBuffer", "scratch slack");
}

spartan_status sp_conv_slack_copy(spartan_context *ctx, int slot, cl_mem src, size_t n, size_t pad,
                                  cl_mem *out) {
    size_t slack = pad + (size_t)sp_tuned_get(&ctx->tuned, "VEC"); /* SP_ROW_SLACK(pad) */
    cl_uint unused;
    spartan_status st = sp_u32(ctx, n + 2 * slack, "the copy's floats", &unused);
    if (!st) st = sp_scratch(ctx, slot, (n + 2 * slack) * sizeof(float), out);
    if (!st) st = sp_fill_zero(ctx, *out, 0, slack);
    if (!st) st = sp_fill_zero(ctx, *out, slack + n, slack);
    if (st || n == 0) return st;
    cl_int rc = clEnqueueCopyBuffer(ctx->queue, src, *out, 0, slack * sizeof(float),
                                    n * sizeof(float), 0, NULL, NULL);
    return rc == CL_SUCCESS ? SPARTAN_OK
                            : sp_ctx_cl_fail(ctx, rc, "clEnqueueCopyBuffer", "scratch copy");
}

int sp_conv_rows_fit(const spartan_context *ctx, size_t channels) {
    return channels < (size_t)sp_tuned_get(&ctx->tuned, "VEC") && channels <= SP_ROWS_BLOCK;
}

size_t sp_conv_rows_slice_max(const spartan_context *ctx, size_t inner) {
    size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
    size_t step = 1 + vec + SP_ROWS_BLOCK, pos = 2, fixed = 8 * SP_ROWS_BLOCK * (vec + 1);
    /* LOOP_MAX >= 1024 but vec up to 16: the fixed part alone may reach it (then a slice per
     * index; the count is an upper bound, as the store's lane loops unroll) */
    size_t used = fixed + 2 * pos, max = sp_loop_max(ctx);
    size_t budget = max > used + step ? max - used : step;
    size_t kc = budget * inner / (step * inner + pos);
    return kc ? kc : 1;
}
