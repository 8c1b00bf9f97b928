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
 * The compacted form is described in docs/sparse-format.md. */
#ifndef SPARTAN_OPS_H
#define SPARTAN_OPS_H

#include <stddef.h>

#include "spartan/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Dense GEMM ------------------------------------------------------------------------------ */

typedef enum spartan_gemm_path {
    SPARTAN_GEMM_BEST = 0,   /* the faster of the two for this device (see spartan_gemm_best) */
    SPARTAN_GEMM_OWN = 1,    /* the runtime's register-blocked vector kernel */
    SPARTAN_GEMM_CLBLAST = 2 /* CLBlastSgemm; UNSUPPORTED when built without CLBlast */
} spartan_gemm_path;

/* C = alpha * op(A) . op(B) + beta * C, op(X) = X or X^T. Shapes: op(A) is M x K, op(B) is
 * K x N, C is M x N; a mismatch is INVALID_ARGUMENT. Any of M, N, K may be 0 (K = 0 gives
 * C = beta * C). With beta == 0, C's old contents are ignored (NaNs included). */
SPARTAN_API spartan_status spartan_gemm_dense(spartan_context *ctx, spartan_gemm_path path,
                                              int trans_a, int trans_b, float alpha,
                                              const spartan_tensor *a, const spartan_tensor *b,
                                              float beta, spartan_tensor *c);

/* The path SPARTAN_GEMM_BEST takes on ctx's device: the own kernel on CPUs (CLBlast has no
 * tuned parameters for CPU OpenCL drivers), CLBlast elsewhere when it is built in. */
SPARTAN_API spartan_gemm_path spartan_gemm_best(const spartan_context *ctx);

/* 1 when the library was built with CLBlast. */
SPARTAN_API int spartan_have_clblast(void);

/* Y = max(X, 0), element-wise (no monitor). Y may be X. */
SPARTAN_API spartan_status spartan_relu(spartan_context *ctx, const spartan_tensor *x,
                                        spartan_tensor *y);

/* ---- Sparsity monitor and compacted operands --------------------------------------------------
 * A spartan_sparse describes one rows x cols matrix cut into tiles of TILE_ROWS x TILE_COLS (the
 * device's tuned parameters): the non-zero count of every tile (the monitor's output) and, after
 * spartan_compact, the non-empty tiles and the non-zeros inside them. */

typedef struct spartan_sparse spartan_sparse;

SPARTAN_API spartan_status spartan_sparse_create(spartan_context *ctx, size_t rows, size_t cols,
                                                 spartan_sparse **out);
SPARTAN_API void spartan_sparse_destroy(spartan_sparse *s);
SPARTAN_API void spartan_sparse_tile(const spartan_sparse *s, size_t *tile_rows, size_t *tile_cols);
SPARTAN_API size_t spartan_sparse_rows(const spartan_sparse *s);
SPARTAN_API size_t spartan_sparse_cols(const spartan_sparse *s);

/* Fused ReLU + monitor: Y = max(Z, 0) and, in the same pass, the non-zero count of every tile
 * of Y, reduced in local memory, plus one partial sum per work-group. Y may be Z. Z, Y and s
 * must have the same shape. */
SPARTAN_API spartan_status spartan_relu_monitor(spartan_context *ctx, const spartan_tensor *z,
                                                spartan_tensor *y, spartan_sparse *s);

/* The monitor alone, for tensors no ReLU produced (gradients, dropout output). */
SPARTAN_API spartan_status spartan_monitor(spartan_context *ctx, const spartan_tensor *x,
                                           spartan_sparse *s);

/* Non-zeros counted by the last monitor or compaction on s: reads the per-work-group sums
 * (a few KB, blocking). The fraction of zeros is 1 - nnz / (rows * cols). */
SPARTAN_API spartan_status spartan_sparse_nnz(spartan_sparse *s, size_t *nnz);

/* The per-tile counts of the last monitor or compaction (blocking), row-major over the tile grid of
 * ceil(rows / TILE_ROWS) x ceil(cols / TILE_COLS); count must be that product. */
SPARTAN_API spartan_status spartan_sparse_tile_counts(spartan_sparse *s, unsigned *host,
                                                      size_t count);

/* Which forms spartan_compact builds: by rows (for the forward and backward-by-input GEMMs),
 * by columns (for the backward-by-weight GEMMs). */
enum { SPARTAN_COMPACT_ROWS = 1, SPARTAN_COMPACT_COLS = 2 };

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

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_OPS_H */
