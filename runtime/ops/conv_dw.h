/* The convolution's backward-by-weight (conv_dw.c, kernels_cl/conv_dw.cl) with its kernel's
 * orientation chosen by the caller: the self-test and the tests run both on every shape. */
#ifndef SP_OPS_CONV_DW_H
#define SP_OPS_CONV_DW_H

#include "ops/ops_internal.h"

/* Which way the kernel's vectors run: over the input channels (conv_dw_cvec, whose sparse
 * kernel skips the zeros of dY), over the output channels (conv_dw_ocvec, whose sparse kernel
 * skips the zeros of x) or over a row's output pixels (conv_dw_rows, dense only: its sparse
 * path is the better of the other two's); AUTO: the one sp_conv_dw_pick gives for the shape. */
typedef enum sp_dw_orient { SP_DW_AUTO = 0, SP_DW_CVEC, SP_DW_OCVEC, SP_DW_ROWS } sp_dw_orient;

/* The orientation spartan_conv2d_backward_weight takes for window w and out_c outputs with the
 * device's tuned VEC and GEMM_RB (conv_dw.c says the rule). */
sp_dw_orient sp_conv_dw_pick(size_t vec, size_t rb, const spartan_window *w, size_t out_c);

/* 1 when conv_dw_rows takes the window: stride 1 and one input channel (forced on another,
 * SP_DW_ROWS takes the channel orientations' pick). */
int sp_conv_dw_rows_fit(const spartan_window *w);

/* spartan_conv2d_backward_weight in the orientation orient (when the conv_dw family is off,
 * both run through im2col and the dense GEMM). */
spartan_status sp_conv_dw(spartan_context *ctx, spartan_path path, sp_dw_orient orient,
                          const spartan_window *w, const spartan_tensor *x,
                          const spartan_tensor *dy, spartan_tensor *dweight);

#endif /* SP_OPS_CONV_DW_H */
