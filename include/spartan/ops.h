/* Operations on device tensors: the dense GEMMs (CLBlast and the runtime's own kernel), the
 * sparsity monitor, the compaction engine and the sparse GEMMs of the three training passes.
 *
 * Every call enqueues work on the context's in-order queue and returns without waiting
 * (spartan_context_finish waits); results are visible to later calls in order. Matrices are the
 * matrix views of tensors (tensor.h): rows = all dimensions but the last, cols = the last.
 *
 * A training step with a ReLU layer followed by a GEMM layer, X = relu(Z):
 *
 *     spartan_relu_monitor(ctx, z, x, sx);          // x = max(z, 0); per-tile counts into sx
 *     spartan_sparse_nnz(sx, &nnz);                 // a few KB read back: the policy's input
 *     // if the policy picks the sparse path:
 *     spartan_compact(ctx, x, sx, SPARTAN_COMPACT_ROWS | SPARTAN_COMPACT_COLS);
 *     spartan_gemm_sparse_fwd(ctx, sx, w, y);                 // Y  = X . W
 *     spartan_gemm_sparse_bwd_weight(ctx, sx, dy, dw);        // dW = X^T . dY
 *     spartan_gemm_sparse_bwd_input(ctx, sx, dy, w, dx);      // dX = (dY . W^T) (*) (X != 0)
 *
 * The compacted form is described in docs/sparse-format.md.
 *
 * Every tensor and spartan_sparse given to a call must belong to ctx. Outputs: an output may be
 * the same tensor as an input only where its function says so (spartan_relu, _relu_monitor,
 * _relu_backward, _dropout_forward and _backward, spartan_softmax_xent's dlogits); every other
 * output must be distinct from the call's inputs and from the tensor a spartan_sparse input was
 * compacted from (the kernels read those while they write). A spartan_sparse must be destroyed
 * before its context; after spartan_compact it also refers to x (see there). */
#ifndef SPARTAN_OPS_H
#define SPARTAN_OPS_H

#include <stddef.h>

#include "spartan/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The experimental tier. These building-block operations change with the kernels: their
 * signatures and semantics are not yet a stable interface. Their declarations are visible only
 * to a program that defines SPARTAN_EXPERIMENTAL_API before it includes a Spartan header (as
 * zstd's ZSTD_STATIC_LINKING_ONLY); the types stay visible, since nn.h and policy.h use them.
 * A model's training and inference (nn.h) need none of them. */
#if defined(SPARTAN_EXPERIMENTAL_API) || defined(SPARTAN_BUILDING_LIBRARY)
#define SPARTAN_EXPERIMENTAL_DECLARED 1
#endif

/* ---- Dense GEMM ------------------------------------------------------------------------------ */

typedef enum spartan_gemm_path {
    SPARTAN_GEMM_BEST = 0,   /* the faster of the two for this device (see spartan_gemm_best) */
    SPARTAN_GEMM_OWN = 1,    /* the runtime's register-blocked vector kernel */
    SPARTAN_GEMM_CLBLAST = 2 /* CLBlastSgemm; UNSUPPORTED when built without CLBlast */
} spartan_gemm_path;

#ifdef SPARTAN_EXPERIMENTAL_DECLARED
/* C = alpha * op(A) . op(B) + beta * C, op(X) = X or X^T. Shapes: op(A) is M x K, op(B) is
 * K x N, C is M x N; a mismatch is INVALID_ARGUMENT. Any of M, N, K may be 0 (K = 0 gives
 * C = beta * C). With beta == 0, C's old contents are ignored (NaNs included). C must be
 * neither A nor B. */
SPARTAN_API spartan_status spartan_gemm_dense(spartan_context *ctx, spartan_gemm_path path,
                                              int trans_a, int trans_b, float alpha,
                                              const spartan_tensor *a, const spartan_tensor *b,
                                              float beta, spartan_tensor *c);
#endif /* SPARTAN_EXPERIMENTAL_DECLARED */

/* The path SPARTAN_GEMM_BEST takes on ctx's device: the own kernel on CPUs (CLBlast has no
 * tuned parameters for CPU OpenCL drivers), CLBlast elsewhere when it is built in. */
SPARTAN_API spartan_gemm_path spartan_gemm_best(const spartan_context *ctx);

/* 1 when the library was built with CLBlast. */
SPARTAN_API int spartan_have_clblast(void);

#ifdef SPARTAN_EXPERIMENTAL_DECLARED
/* B = A^T: A rows x cols, B cols x rows (a matrix view each; B must not be A). */
SPARTAN_API spartan_status spartan_transpose(spartan_context *ctx, const spartan_tensor *a,
                                             spartan_tensor *b);

/* Y = max(X, 0), element-wise (no monitor). Y may be X. */
SPARTAN_API spartan_status spartan_relu(spartan_context *ctx, const spartan_tensor *x,
                                        spartan_tensor *y);
#endif /* SPARTAN_EXPERIMENTAL_DECLARED */

/* ---- Sparsity monitor and compacted operands --------------------------------------------------
 * A spartan_sparse describes one rows x cols matrix cut into tiles of TILE_ROWS x TILE_COLS (the
 * device's tuned parameters): the non-zero count of every tile (the monitor's output) and, after
 * spartan_compact, the non-empty tiles and the non-zeros inside them. */

typedef struct spartan_sparse spartan_sparse;

#ifdef SPARTAN_EXPERIMENTAL_DECLARED
/* A descriptor for rows x cols matrices of ctx, with no counts yet (see spartan_sparse_nnz). */
SPARTAN_API spartan_status spartan_sparse_create(spartan_context *ctx, size_t rows, size_t cols,
                                                 spartan_sparse **out);
/* Before its context. NULL is a no-op. */
SPARTAN_API void spartan_sparse_destroy(spartan_sparse *s);
SPARTAN_API void spartan_sparse_tile(const spartan_sparse *s, size_t *tile_rows, size_t *tile_cols);
SPARTAN_API size_t spartan_sparse_rows(const spartan_sparse *s);
SPARTAN_API size_t spartan_sparse_cols(const spartan_sparse *s);

/* Fused ReLU + monitor: Y = max(Z, 0) and, in the same pass, the non-zero count of every tile
 * of Y, reduced in local memory, plus one partial sum per work-group. Y may be Z. Z, Y and s
 * must have the same shape. */
SPARTAN_API spartan_status spartan_relu_monitor(spartan_context *ctx, const spartan_tensor *z,
                                                spartan_tensor *y, spartan_sparse *s);

/* The ReLU of the previous GEMM's output with its bias added in the same pass, and monitored:
 * y = max(z + b[col], 0) (b: 1 x cols, one value per column); z is left unchanged, y may be z.
 * The same float sum as spartan_bias_add then spartan_relu_monitor, in one pass over memory. */
SPARTAN_API spartan_status spartan_bias_relu_monitor(spartan_context *ctx, const spartan_tensor *z,
                                                     const spartan_tensor *b, spartan_tensor *y,
                                                     spartan_sparse *s);

/* The monitor alone, for tensors no ReLU produced (gradients, dropout output). */
SPARTAN_API spartan_status spartan_monitor(spartan_context *ctx, const spartan_tensor *x,
                                           spartan_sparse *s);

/* Non-zeros counted by the last monitor or compaction on s: reads the per-work-group sums
 * (a few KB, blocking). The fraction of zeros is 1 - nnz / (rows * cols). INVALID_ARGUMENT (and
 * *nnz = 0) while no monitor or compaction has filled s, or after one failed. */
SPARTAN_API spartan_status spartan_sparse_nnz(spartan_sparse *s, size_t *nnz);

/* The per-tile counts of the last monitor or compaction (blocking), row-major over the tile grid of
 * ceil(rows / TILE_ROWS) x ceil(cols / TILE_COLS); count must be that product. INVALID_ARGUMENT
 * while s is not filled, as for spartan_sparse_nnz. */
SPARTAN_API spartan_status spartan_sparse_tile_counts(spartan_sparse *s, unsigned *host,
                                                      size_t count);
#endif /* SPARTAN_EXPERIMENTAL_DECLARED */

/* Which forms spartan_compact builds: by rows (for the forward and backward-by-input GEMMs),
 * by columns (for the backward-by-weight GEMMs). */
enum { SPARTAN_COMPACT_ROWS = 1, SPARTAN_COMPACT_COLS = 2 };

#ifdef SPARTAN_EXPERIMENTAL_DECLARED
/* Compaction on the device, in one pass over x: per tile, the non-zero count and the
 * positions of the non-zeros (per row and/or per column of the tile); then exclusive scans of
 * the non-empty flags and the lists of non-empty tiles of every tile-row and tile-column. It
 * counts by itself: no monitor call is needed first, and afterwards spartan_sparse_nnz and the
 * tile counts describe x. s keeps a pointer to x: the sparse GEMMs read the values from x, so
 * x must stay alive and unchanged while s is used (compact again after x changes). */
SPARTAN_API spartan_status spartan_compact(spartan_context *ctx, const spartan_tensor *x,
                                           spartan_sparse *s, unsigned forms);

/* ---- Sparse GEMMs (s: compacted with the form each names) -------------------------------------
 * Each skips empty tiles and, inside non-empty ones, zero elements. Outputs are overwritten. */

/* Forward: Y = X . W; X sparse (M x K, ROWS form), W dense K x N, Y M x N. */
SPARTAN_API spartan_status spartan_gemm_sparse_fwd(spartan_context *ctx, const spartan_sparse *x,
                                                   const spartan_tensor *w, spartan_tensor *y);

/* Forward without compaction: Y = X . W reading the dense X and skipping its zeros on the fly
 * (eight elements at a time, positions kept in private memory). For a forward pass alone it
 * saves the compaction's pass over X; use spartan_gemm_sparse_fwd when X is compacted anyway
 * (for the backward passes). X M x K, W K x N, Y M x N. */
SPARTAN_API spartan_status spartan_gemm_sparse_fwd_direct(spartan_context *ctx,
                                                          const spartan_tensor *x,
                                                          const spartan_tensor *w,
                                                          spartan_tensor *y);

/* Backward by input: dX = (dZ . W^T) (*) mask, mask = (X != 0) of the compacted X (ROWS form),
 * M x K; dZ M x N, W K x N. Only outputs under the mask are computed; the rest are zero. */
SPARTAN_API spartan_status spartan_gemm_sparse_bwd_input(spartan_context *ctx,
                                                         const spartan_sparse *mask,
                                                         const spartan_tensor *dz,
                                                         const spartan_tensor *w,
                                                         spartan_tensor *dx);

/* Backward by weight with X sparse: dW = X^T . dZ; X M x K (COLS form), dZ M x N, dW K x N. */
SPARTAN_API spartan_status spartan_gemm_sparse_bwd_weight(spartan_context *ctx,
                                                          const spartan_sparse *x,
                                                          const spartan_tensor *dz,
                                                          spartan_tensor *dw);

/* Backward by weight with dZ sparse: dW = X^T . dZ; X M x K dense, dZ M x N (COLS form). */
SPARTAN_API spartan_status spartan_gemm_sparse_bwd_weight_dz(spartan_context *ctx,
                                                             const spartan_tensor *x,
                                                             const spartan_sparse *dz,
                                                             spartan_tensor *dw);

/* ---- Weight-sparse GEMMs ---------------------------------------------------------------------
 * For a weight matrix W (K x N) with few non-zeros (Dropback's pruned weights): a description of
 * where they are, built from W, usable in both orders the passes need (W forward, W^T backward by
 * input), with the values read from W itself at each call (an optimiser updates them in place).
 * The GEMMs compute over the positions of the last build only: W's elements elsewhere must be
 * zero (rebuild when the set of non-zeros grows; a shrinking set stays exact, at the cost of its
 * stale positions). Outputs are overwritten.
 *
 *     spartan_wsparse *ws;
 *     spartan_wsparse_create(ctx, k, n, &ws);
 *     spartan_wsparse_build(ws, w);                  // reads W (blocking)
 *     spartan_gemm_wsparse_fwd(ctx, x, w, ws, y);    // Y = X . W
 *     spartan_gemm_wsparse_bwd_input(ctx, dy, w, ws, dx);   // dX = dY . W^T
 */
typedef struct spartan_wsparse spartan_wsparse;

SPARTAN_API spartan_status spartan_wsparse_create(spartan_context *ctx, size_t k, size_t n,
                                                  spartan_wsparse **out);
SPARTAN_API void spartan_wsparse_destroy(spartan_wsparse *ws);
/* The positions of W's non-zeros (K x N, ws's shape): reads W back (blocking). */
SPARTAN_API spartan_status spartan_wsparse_build(spartan_wsparse *ws, const spartan_tensor *w);
/* The non-zeros at the last build (0 before one). */
SPARTAN_API size_t spartan_wsparse_nnz(const spartan_wsparse *ws);

/* Y = X . W over W's non-zeros: X M x K, W K x N, Y M x N. X is transposed into ws's scratch
 * first, so each non-zero of W is one SP_VEC-wide FMA for SP_VEC rows of Y. */
SPARTAN_API spartan_status spartan_gemm_wsparse_fwd(spartan_context *ctx, const spartan_tensor *x,
                                                    const spartan_tensor *w, spartan_wsparse *ws,
                                                    spartan_tensor *y);
/* dX = dY . W^T over W's non-zeros: dY M x N, W K x N, dX M x K. */
SPARTAN_API spartan_status spartan_gemm_wsparse_bwd_input(spartan_context *ctx,
                                                          const spartan_tensor *dy,
                                                          const spartan_tensor *w,
                                                          spartan_wsparse *ws, spartan_tensor *dx);
/* Y = X . W skipping the zeros of both: for each non-zero X[r, i], the non-zeros of W's row i
 * (the product is made only where both are non-zero). X M x K, W K x N, Y M x N. */
SPARTAN_API spartan_status spartan_gemm_wsparse_fwd_both(spartan_context *ctx,
                                                         const spartan_tensor *x,
                                                         const spartan_tensor *w,
                                                         spartan_wsparse *ws, spartan_tensor *y);
#endif /* SPARTAN_EXPERIMENTAL_DECLARED */

/* ---- GEMM passes -------------------------------------------------------------------------------
 * One GEMM pass of a layer, run dense or sparse. A layer with input X (rows x k), weight W
 * (k x n) and output gradient dY (rows x n) has three:
 *
 *     fwd         Y  = X . W      dense: gemm_dense(nn)
 *                                 sparse on X: gemm_sparse_fwd_direct
 *     bwd_input   dX = dY . W^T   dense: gemm_dense(nt)
 *                                 sparse on X: compact(X, ROWS) + gemm_sparse_bwd_input (the
 *                                   result only under X's non-zeros)
 *                                 sparse on dY: transpose(W) + gemm_sparse_fwd_direct(dY, W^T)
 *     bwd_weight  dW = X^T . dY   dense: gemm_dense(tn)
 *                                 sparse on X: compact(X, COLS) + gemm_sparse_bwd_weight
 *                                 sparse on dY: compact(dY, COLS) + gemm_sparse_bwd_weight_dz
 *
 * The descriptor is built once per layer and pass (spartan_gemm_pass_init); the layers of nn.h,
 * the policy's calibration, spartan-bench gemm and the tests all run passes through
 * spartan_gemm_pass_run, so each measures exactly the forms training runs. */

/* The three GEMMs of a layer's training step. */
typedef enum spartan_pass {
    SPARTAN_PASS_FWD = 0,        /* Y = X . W */
    SPARTAN_PASS_BWD_INPUT = 1,  /* dX = dY . W^T (masked when sparse on X) */
    SPARTAN_PASS_BWD_WEIGHT = 2, /* dW = X^T . dY */
    SPARTAN_PASS_COUNT = 3
} spartan_pass;

typedef enum spartan_path {
    SPARTAN_PATH_DENSE = 0, /* the device's best dense GEMM */
    SPARTAN_PATH_SPARSE = 1 /* the sparse kernel of the pass */
} spartan_path;

/* Whose zeros a pass's sparse path skips. */
typedef enum spartan_sparse_form {
    SPARTAN_FORM_NONE = 0,  /* the pass has no sparse path here */
    SPARTAN_FORM_ON_X = 1,  /* the layer's input X (bwd_input: the result only under X != 0) */
    SPARTAN_FORM_ON_DY = 2, /* the output gradient dY (backward passes; ReLU-masked dY) */
    SPARTAN_FORM_COUNT = 3
} spartan_sparse_form;

typedef struct spartan_gemm_pass {
    spartan_pass pass;
    spartan_sparse_form form;
    size_t rows, k, n; /* the layer: X rows x k, W k x n, dY rows x n */
    /* The GEMM as C (m x n) = op(A) . op(B), op(A) m x k (the shape spartan_policy_query
     * takes), and the dense call's transposes: fwd X . W, bwd_input dY . W^T, bwd_weight
     * X^T . dY. */
    size_t m, gn, gk;
    int trans_a, trans_b;
} spartan_gemm_pass;

/* The operands of a pass; which ones it reads depends on the pass, path and form (the table
 * above). The result goes to y (fwd, rows x n), dx (bwd_input, rows x k) or dw (bwd_weight,
 * k x n). wt: n x k scratch for W^T (bwd_input on dY). sx, sdy: compactions of X and dY
 * (rows x k, rows x n). */
typedef struct spartan_gemm_operands {
    const spartan_tensor *x, *w, *dy;
    spartan_tensor *y, *dx, *dw, *wt;
    spartan_sparse *sx, *sdy;
    /* X's compaction: the forms sx already holds for this X (run skips building them again), and
     * forms to build besides its own when it compacts X (a layer whose both backward passes are
     * sparse on X compacts it once). run updates x_forms. */
    unsigned x_forms, x_forms_extra;
} spartan_gemm_operands;

#ifdef SPARTAN_EXPERIMENTAL_DECLARED
/* The descriptor of `pass` for a layer of rows x k input and n outputs, sparse form `form`.
 * INVALID_ARGUMENT for an unknown pass or form, or ON_DY for the forward pass. */
SPARTAN_API spartan_status spartan_gemm_pass_init(spartan_pass pass, spartan_sparse_form form,
                                                  size_t rows, size_t k, size_t n,
                                                  spartan_gemm_pass *out);
/* Runs the pass on `path` (sparse: the descriptor's form; INVALID_ARGUMENT when it has none),
 * the dense GEMM by `dense` (SPARTAN_GEMM_OWN, _CLBLAST or _BEST). The operands may have fewer
 * rows than the descriptor (a partial batch's forward). Enqueues only: nothing blocks. */
SPARTAN_API spartan_status spartan_gemm_pass_run(spartan_context *ctx, const spartan_gemm_pass *p,
                                                 spartan_path path, spartan_gemm_path dense,
                                                 spartan_gemm_operands *o);
/* Makes every operand the pass can read or write on either path, at the descriptor's shape
 * (contents undefined); *o is zeroed first, and on failure freed. */
SPARTAN_API spartan_status spartan_gemm_operands_create(spartan_context *ctx,
                                                        const spartan_gemm_pass *p,
                                                        spartan_gemm_operands *o);
/* Frees what spartan_gemm_operands_create made (and NULLs it). */
SPARTAN_API void spartan_gemm_operands_destroy(spartan_gemm_operands *o);
#endif /* SPARTAN_EXPERIMENTAL_DECLARED */

/* "none", "x", "dy" (stable: spartan_layer_info names its passes' forms with it). */
SPARTAN_API const char *spartan_sparse_form_name(spartan_sparse_form form);

/* ---- Layer operations (kernels_cl/nn.cl): what the layers of nn.h need besides the GEMMs -------
 * Images are NHWC: a tensor of batch x height x width x channels, row-major, channels last, so a
 * convolution is im2col + GEMM whose result (batch*out_h*out_w x out_c) is already NHWC. */

/* The geometry of a convolution or a pooling window over NHWC images. */
typedef struct spartan_window {
    size_t batch, in_h, in_w, in_c; /* input images */
    size_t k_h, k_w;                /* window */
    size_t stride, pad;             /* same along both axes; pad: zeros on every side */
} spartan_window;

#ifdef SPARTAN_EXPERIMENTAL_DECLARED
/* Output height and width of a window: (in + 2 pad - k) / stride + 1, or 0 when the window does
 * not fit (or stride is 0). */
SPARTAN_API size_t spartan_window_out_h(const spartan_window *w);
SPARTAN_API size_t spartan_window_out_w(const spartan_window *w);

/* im2col: cols[(b*out_h + oy)*out_w + ox, (ky*k_w + kx)*in_c + c] = x[b, oy*stride + ky - pad,
 * ox*stride + kx - pad, c], zero outside the image. x has batch*in_h*in_w*in_c elements, cols is
 * (batch*out_h*out_w) x (k_h*k_w*in_c). */
SPARTAN_API spartan_status spartan_im2col(spartan_context *ctx, const spartan_window *w,
                                          const spartan_tensor *x, spartan_tensor *cols);
/* col2im, the adjoint of im2col: dx[b, y, x, c] = sum of the cols entries im2col copied from
 * (b, y, x, c). Overwrites dx. Each dx element gathers its own sum (no atomics, deterministic). */
SPARTAN_API spartan_status spartan_col2im(spartan_context *ctx, const spartan_window *w,
                                          const spartan_tensor *cols, spartan_tensor *dx);

/* Convolution forward as an implicit GEMM: y = im2col(x) . weight, the patches gathered inside
 * the kernel (kernels_cl/conv.cl), no patch matrix. path SPARTAN_PATH_SPARSE skips the zeros of x
 * (the output of a ReLU) inside the kernel: the same sums up to float rounding. x has
 * batch*in_h*in_w*in_c elements (NHWC); weight is (k_h*k_w*in_c) x out_c, row (ky*k_w + kx)*in_c +
 * c (im2col's column order: the conv layer's W); y is (batch*out_h*out_w) x out_c, overwritten (its
 * old contents, NaNs included, ignored), already NHWC. Any window, stride and padding (non-square
 * windows too). y must share no buffer with x or weight. INVALID_ARGUMENT for NULLs, tensors of
 * another context, shapes that do not match, a window that does not fit or that spartan_im2col
 * refuses (more than LOOP_MAX / (VEC + 1) positions, sizes past the kernels' 32-bit indices).
 * Reductions longer than one work-item may walk are cut into slices and summed
 * (docs/architecture.md, "Loop bounds"). When the conv family is off on the device, the same
 * product runs as im2col into a scratch buffer and spartan_gemm_dense. An empty batch (or out_c =
 * 0) does nothing; in_c = 0 gives 0. */
SPARTAN_API spartan_status spartan_conv2d_forward(spartan_context *ctx, spartan_path path,
                                                  const spartan_window *w, const spartan_tensor *x,
                                                  const spartan_tensor *weight, spartan_tensor *y);
/* The convolution and then the bias and the ReLU after it: y = max(spartan_conv2d_forward's y +
 * b, 0), b[j] added to output channel j (b NULL: no bias; a NaN stays NaN). The dense and sparse
 * kernels apply them in their store when one slice of the reduction writes y (no pass of their
 * own); the other cases (split reductions, the kernel for few output channels, the fallback) in
 * spartan_bias_add and spartan_relu after: the same float operations either way, so the same
 * bits as spartan_conv2d_forward and then spartan_bias_relu_monitor. The same shapes and errors as
 * spartan_conv2d_forward; b has out_c elements and must not share y's buffer. */
SPARTAN_API spartan_status spartan_conv2d_forward_relu(spartan_context *ctx, spartan_path path,
                                                       const spartan_window *w,
                                                       const spartan_tensor *x,
                                                       const spartan_tensor *weight,
                                                       const spartan_tensor *b, spartan_tensor *y);

/* Convolution backward-by-input as an implicit transposed convolution: dx = col2im(dy . weight^T),
 * dx[b, iy, ix, c] = the sum over the window positions (ky, kx) and output channels oc with
 * oy*stride + ky - pad = iy, ox*stride + kx - pad = ix (oy, ox inside the output) of
 * dy[(b*out_h + oy)*out_w + ox, oc] * weight[(ky*k_w + kx)*in_c + c, oc], each dx element
 * gathering its own sum in a fixed order (kernels_cl/conv_dx.cl: no cols matrix, no atomics,
 * deterministic). dy is (batch*out_h*out_w) x out_c (NHWC), weight the forward's
 * (k_h*k_w*in_c) x out_c, dx has batch*in_h*in_w*in_c elements, overwritten (its old contents,
 * NaNs included, ignored). path SPARTAN_PATH_DENSE runs every term; SPARTAN_PATH_SPARSE lists
 * dy's non-zeros into a scratch buffer, then skips its zeros (the ReLU mask, max-pool's backward;
 * a zero times an infinite or NaN weight too): the same sums up to float rounding. Any window,
 * stride and padding. The weight is rearranged per window position into a scratch buffer on
 * every call. dx must share no buffer with dy or weight. INVALID_ARGUMENT for NULLs,
 * an unknown path, tensors of another context, shapes that do not match, a window that does not
 * fit or that spartan_col2im refuses, sizes past the kernels' 32-bit indices. Reductions longer
 * than one work-item may walk are cut into slices and summed. When the conv_dx family is off on
 * the device, both paths run dy . weight^T by spartan_gemm_dense into a scratch buffer, then
 * spartan_col2im. An empty batch (or in_c = 0) does nothing; out_c = 0 gives 0. */
SPARTAN_API spartan_status spartan_conv2d_backward_input(spartan_context *ctx, spartan_path path,
                                                         const spartan_window *w,
                                                         const spartan_tensor *dy,
                                                         const spartan_tensor *weight,
                                                         spartan_tensor *dx);
/* Backward-by-input through a ReLU right before the convolution: dx = what
 * spartan_relu_backward gives from x and spartan_conv2d_backward_input's dx, where x is the
 * convolution's input, the ReLU's output: dx is kept where x > 0, else 0 (a NaN x counts as not
 * positive). The dense and sparse kernels apply the mask in their store when one slice of the
 * reduction writes dx (no pass of its own); the other cases mask in a pass after. The same
 * shapes and errors as spartan_conv2d_backward_input; x has dx's elements and must not share
 * its buffer. */
SPARTAN_API spartan_status spartan_conv2d_backward_input_relu(
    spartan_context *ctx, spartan_path path, const spartan_window *w, const spartan_tensor *dy,
    const spartan_tensor *weight, const spartan_tensor *x, spartan_tensor *dx);
/* Convolution backward-by-weight without the patch matrix: dweight = im2col(x)^T . dy, that is
 * dweight[(ky*k_w + kx)*in_c + c, j] = the sum over b, oy, ox of
 * x[b, oy*stride + ky - pad, ox*stride + kx - pad, c] * dy[(b*out_h + oy)*out_w + ox, j]
 * (zero outside the image; kernels_cl/conv_dw.cl). x has batch*in_h*in_w*in_c elements (NHWC);
 * dy is (batch*out_h*out_w) x out_c; dweight is (k_h*k_w*in_c) x out_c (the layout of
 * spartan_conv2d_forward's weight), overwritten (its old contents, NaNs included, ignored).
 * path SPARTAN_PATH_DENSE runs a dense kernel; SPARTAN_PATH_SPARSE lists the non-zeros of one
 * operand first and does only their work: dy's where the kernel's vectors run over the input
 * channels (when in_c fills them at least as well as out_c does), x's where they run over the
 * output channels (a first convolution's in_c of 1 to 6) and the stride is 1 (other strides run
 * the dense kernel). The same sums either way, for any data; the lists cost a pass, so the
 * sparse path pays off from 70-85 % zeros on (runtime/ops/conv_dw.c has the figures). Any
 * window (non-square too), stride and padding. dweight must share no buffer with x or dy.
 * INVALID_ARGUMENT for NULLs, an unknown path, tensors of another context, shapes that do not
 * match, a window that does not fit or that spartan_im2col refuses, sizes past the kernels'
 * 32-bit indices. The sum over the pixels is cut into slices (or the non-zeros into chunks),
 * summed afterwards in a fixed order (deterministic, no atomics; docs/architecture.md, "Loop
 * bounds"). When the conv_dw family is off on the device, both paths run as im2col into a
 * scratch buffer and spartan_gemm_dense of its transpose and dy. An empty batch gives zeros;
 * in_c = 0 or out_c = 0 does nothing. */
SPARTAN_API spartan_status spartan_conv2d_backward_weight(spartan_context *ctx, spartan_path path,
                                                          const spartan_window *w,
                                                          const spartan_tensor *x,
                                                          const spartan_tensor *dy,
                                                          spartan_tensor *dweight);

/* y[r, j] += b[j] for every row r of y (rows x n); b has n elements. */
SPARTAN_API spartan_status spartan_bias_add(spartan_context *ctx, spartan_tensor *y,
                                            const spartan_tensor *b);
/* db[j] = sum over the rows r of dy of dy[r, j] (overwrites db; n elements). */
SPARTAN_API spartan_status spartan_bias_grad(spartan_context *ctx, const spartan_tensor *dy,
                                             spartan_tensor *db);

/* ReLU backward: dz = dy where y > 0, else 0 (y the ReLU's output). dz may be dy or y (each
 * element is read before it is written). y, dy and dz have the same number of elements. */
SPARTAN_API spartan_status spartan_relu_backward(spartan_context *ctx, const spartan_tensor *y,
                                                 const spartan_tensor *dy, spartan_tensor *dz);

/* Max-pooling over windows w (pad must be 0): y[b, oy, ox, c] = the max of the window, and
 * arg[b, oy, ox, c] = its position in the window, ky*k_w + kx, as a float (the first maximum
 * in row-major window order; NaN propagates). y and arg have batch*out_h*out_w*in_c elements. */
SPARTAN_API spartan_status spartan_maxpool_forward(spartan_context *ctx, const spartan_window *w,
                                                   const spartan_tensor *x, spartan_tensor *y,
                                                   spartan_tensor *arg);
/* Max-pooling of a ReLU's output in one pass, the ReLU's own output never stored: y and arg are
 * what spartan_maxpool_forward gives for the input max(x + b, 0), b[c] added to channel c first
 * (b NULL: no bias; a NaN stays NaN). The same results to the bit as spartan_bias_relu_monitor
 * (or spartan_relu_monitor) and then spartan_maxpool_forward, without the monitor's counts. The
 * same shapes and errors as spartan_maxpool_forward; b has in_c elements and must not share y's
 * or arg's buffer. */
SPARTAN_API spartan_status spartan_relu_maxpool_forward(spartan_context *ctx,
                                                        const spartan_window *w,
                                                        const spartan_tensor *x,
                                                        const spartan_tensor *b, spartan_tensor *y,
                                                        spartan_tensor *arg);
/* Max-pooling backward: dx[b, y, x, c] = the sum of dy over the windows whose maximum was
 * (b, y, x, c) (overlapping windows allowed). Overwrites dx. */
SPARTAN_API spartan_status spartan_maxpool_backward(spartan_context *ctx, const spartan_window *w,
                                                    const spartan_tensor *dy,
                                                    const spartan_tensor *arg, spartan_tensor *dx);
/* Max-pooling backward through a ReLU right before the pool, in one pass: dx = what
 * spartan_relu_backward gives for the gradient spartan_maxpool_backward computes, the ReLU's
 * output being the pool's input. y is the pool's output (spartan_maxpool_forward's): a window's
 * maximum is the ReLU's output at its arg-max, so a window passes its dy on only where y > 0 (a
 * NaN y counts as not positive). The same shapes and errors as spartan_maxpool_backward; y has
 * dy's shape and must not share dx's buffer. */
SPARTAN_API spartan_status spartan_maxpool_relu_backward(
    spartan_context *ctx, const spartan_window *w, const spartan_tensor *dy,
    const spartan_tensor *arg, const spartan_tensor *y, spartan_tensor *dx);

/* Average pooling over windows w, padding included (PyTorch's AvgPool2d with
 * count_include_pad=True, ceil_mode=False): y[b, oy, ox, c] = the sum of x over the window
 * (zeros where it reaches into the padding) divided by k_h*k_w, the whole window's size. x has
 * batch*in_h*in_w*in_c elements, y is (batch*out_h*out_w) x in_c and must not share x's
 * buffer. Any pad the window fits with is allowed (a window wholly in the padding gives 0).
 * Global average pooling is k_h = in_h, k_w = in_w, pad 0 (any stride): y is batch x in_c.
 * INVALID_ARGUMENT for a NULL, a tensor of another context, sizes that do not match, a window
 * that is empty, does not fit the padded image or is too large to walk on this device
 * (k_h*k_w above LOOP_MAX / (VEC + 1)), stride 0, or indices beyond 32 bits. */
SPARTAN_API spartan_status spartan_avgpool_forward(spartan_context *ctx, const spartan_window *w,
                                                   const spartan_tensor *x, spartan_tensor *y);
/* Average pooling backward, its adjoint: dx[b, y, x, c] = the sum of dy over the windows that
 * cover (b, y, x, c), divided by k_h*k_w (0 for a pixel no window covers). Overwrites dx, which
 * must not share dy's buffer; the same shapes and errors as spartan_avgpool_forward. Each dx
 * element gathers its own sum in a fixed order (no atomics, deterministic). */
SPARTAN_API spartan_status spartan_avgpool_backward(spartan_context *ctx, const spartan_window *w,
                                                    const spartan_tensor *dy, spartan_tensor *dx);

/* Dropout with drop probability p in [0, 1): y = x / (1 - p) where element i is kept, exactly 0
 * where it is dropped. Element i is dropped when a counter-based hash of (seed, counter, i)
 * (uniform in [0, 1)) is < p: the mask is reproducible from (seed, counter) and never stored.
 * The hash is splitmix64: with mix(z) its output function, key = mix(seed ^ mix(counter)) and
 * u_i = (mix(key + (i + 1) * 0x9E3779B97F4A7C15) >> 40) * 2^-24, compared with p as floats.
 * The scale is the float 1 / (1 - p), so p = 0 copies x exactly. Use a new counter per step.
 * spartan_dropout_backward applies the same mask and scale to dy. y may be x; dx may be dy. */
SPARTAN_API spartan_status spartan_dropout_forward(spartan_context *ctx, const spartan_tensor *x,
                                                   spartan_tensor *y, float p,
                                                   unsigned long long seed,
                                                   unsigned long long counter);
SPARTAN_API spartan_status spartan_dropout_backward(spartan_context *ctx, const spartan_tensor *dy,
                                                    spartan_tensor *dx, float p,
                                                    unsigned long long seed,
                                                    unsigned long long counter);

/* Softmax + cross-entropy over the rows of logits (batch x classes), labels: batch class
 * indices stored as floats (0 .. classes-1). For every row r: stats[r, 0] = the loss
 * -log softmax(logits[r])[label] (computed stably, log-sum-exp), stats[r, 1] = 1 when the
 * first argmax of the row equals the label, else 0; and when dlogits is not NULL,
 * dlogits[r, :] = scale * (softmax(logits[r]) - onehot(label)). stats is batch x 2. A label
 * outside [0, classes) (or not an integer) gives a NaN loss in its row, and that row's dlogits
 * lack the one-hot term. classes must be 1 to LOOP_MAX / 3 unless batch is 0 (5461 with the default
 * LOOP_MAX of spartan_context_tuned; a work-item walks a row three times, and every kernel bounds
 * its loops: some drivers end them silently at 65,535 iterations). dlogits may be logits (one
 * work-item per row reads each logit before it writes its gradient); stats must be distinct from
 * both. */
SPARTAN_API spartan_status spartan_softmax_xent(spartan_context *ctx, const spartan_tensor *logits,
                                                const spartan_tensor *labels, float scale,
                                                spartan_tensor *dlogits, spartan_tensor *stats);

/* SGD with momentum and weight decay, PyTorch's rule (dampening 0, no Nesterov):
 * g' = g + weight_decay * w;  v = momentum * v + g';  w = w - lr * v. w, g, v same size; w and
 * v are updated in place, and the three must be distinct tensors. */
SPARTAN_API spartan_status spartan_sgd_step(spartan_context *ctx, spartan_tensor *w,
                                            const spartan_tensor *g, spartan_tensor *v, float lr,
                                            float momentum, float weight_decay);
#endif /* SPARTAN_EXPERIMENTAL_DECLARED */

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_OPS_H */
