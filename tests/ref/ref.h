/* Plain C references in double precision, written for clarity, never for speed. Every kernel's
 * test compares against one of these, never against another kernel of ours. */
#ifndef SPARTAN_TEST_REF_H
#define SPARTAN_TEST_REF_H

#include <stddef.h>

/* ---- eltwise ----------------------------------------------------------------------------------
 */

/* x[i] = value */
void ref_fill(double *x, size_t n, double value);

/* out[i] = a * x[i] + y[i] */
void ref_axpy(double *out, const float *y, const float *x, size_t n, float a);

/* ---- gemm (dense and sparse): row-major matrices ------------------------------------------------
 */

/* Largest |x[i]| (0 for n = 0): the scale of a tolerance. */
double ref_max_abs(const float *x, size_t n);

/* c = alpha * op(a) . op(b) + beta * c0; op(a) is m x k (a is stored k x m when trans_a), op(b)
 * is k x n (b is stored n x k when trans_b), c and c0 are m x n. With beta == 0, c0 is not read
 * (it may be NULL or hold NaNs). */
void ref_gemm(double *c, int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha,
              const float *a, const float *b, double beta, const float *c0);

/* The backward-by-input pass of a sparse layer: dx = (dz . w^T) (*) (x != 0), with x m x k,
 * dz m x n, w k x n; exactly zero where x is zero. */
void ref_gemm_masked(double *dx, const float *x, const float *dz, const float *w, size_t m,
                     size_t k, size_t n);

/* ---- monitor ----------------------------------------------------------------------------------
 */

/* y[i] = max(z[i], 0), exact in float. */
void ref_relu(float *y, const float *z, size_t n);

/* Non-zeros of x (NaN counts as non-zero, -0.0 as zero). */
size_t ref_nonzeros(const float *x, size_t n);

/* The non-zero count of every tile_rows x tile_cols tile of x (rows x cols), row-major over the
 * grid of ceil(rows / tile_rows) x ceil(cols / tile_cols) tiles; edge tiles are partial. */
void ref_tile_counts(unsigned *counts, const float *x, size_t rows, size_t cols, size_t tile_rows,
                     size_t tile_cols);

#endif /* SPARTAN_TEST_REF_H */
