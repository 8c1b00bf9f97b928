/* A convolution layer's pass on either engine (ops_internal.h, "The convolution's passes"): the
 * implicit kernels, or im2col / col2im around the GEMM descriptor. */
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
            return spartan_conv2d_forward(ctx, path, &o->win, o->x, g->w, g->y);
        case SPARTAN_PASS_BWD_INPUT:
            return spartan_conv2d_backward_input(ctx, path, &o->win, g->dy, g->w, o->dx);
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
    return st;
}
