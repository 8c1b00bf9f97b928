/* Plain C references in double precision, written for clarity, never for speed. Every kernel's
 * test compares against one of these, never against another kernel of ours. */
#ifndef SPARTAN_TEST_REF_H
#define SPARTAN_TEST_REF_H

#include <stddef.h>

#include "spartan/ops.h" /* spartan_window */

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

/* ---- nn: layer operations (kernels_cl/nn.cl); images NHWC ------------------------------------
 */

/* Output size of a window along one axis: (in + 2 pad - k) / stride + 1, 0 when it does not
 * fit, stride is 0 or k is 0. */
size_t ref_window_out(size_t in, size_t k, size_t stride, size_t pad);

/* cols[(b*out_h + oy)*out_w + ox, (ky*k_w + kx)*in_c + c] = x[b, oy*stride + ky - pad,
 * ox*stride + kx - pad, c], 0 outside the image: an exact copy. */
void ref_im2col(float *cols, const float *x, const spartan_window *w);

/* The adjoint: dx[b, y, x, c] = the sum of the cols entries im2col copies from (b, y, x, c). */
void ref_col2im(double *dx, const float *cols, const spartan_window *w);

/* Direct convolution: y[b, oy, ox, j] = sum over ky, kx, c of x[b, oy*stride + ky - pad,
 * ox*stride + kx - pad, c] * wt[(ky*k_w + kx)*in_c + c, j], the positions outside the image
 * skipped; y is (batch*out_h*out_w) x out_c. Written as the seven nested loops of the definition,
 * with no patch matrix (independent of im2col). */
void ref_conv2d_forward(double *y, const float *x, const float *wt, const spartan_window *w,
                        size_t out_c);
/* Its backward-by-input: dx[b, iy, ix, c] = sum over oy, ox, ky, kx, j with
 * oy*stride + ky - pad = iy, ox*stride + kx - pad = ix of dy[b, oy, ox, j] *
 * wt[(ky*k_w + kx)*in_c + c, j]; dy is (batch*out_h*out_w) x out_c. Written as the scatter of
 * each dy element into the dx elements its window covers, loops of the definition (neither
 * col2im nor the kernels' gather). */
void ref_conv2d_backward_input(double *dx, const float *dy, const float *wt,
                               const spartan_window *w, size_t out_c);

/* Convolution backward-by-weight: dw[(ky*k_w + kx)*in_c + c, j] = sum over b, oy, ox of
 * x[b, oy*stride + ky - pad, ox*stride + kx - pad, c] * dy[(b*out_h + oy)*out_w + ox, j], the
 * positions outside the image skipped; dw is (k_h*k_w*in_c) x out_c. One sum per element of dw,
 * written as the definition's loops, with no patch matrix. */
void ref_conv2d_backward_weight(double *dw, const float *x, const float *dy,
                                const spartan_window *w, size_t out_c);

/* out[r, j] = y[r, j] + b[j] (rows x n) */
void ref_bias_add(double *out, const float *y, const float *b, size_t rows, size_t n);

/* db[j] = sum over r of dy[r, j] */
void ref_bias_grad(double *db, const float *dy, size_t rows, size_t n);

/* dz[i] = y[i] > 0 ? dy[i] : 0, exact in float */
void ref_relu_backward(float *dz, const float *y, const float *dy, size_t n);

/* Max-pooling (pad 0): y = the window's first maximum in row-major window order, NaN
 * propagating (the first NaN wins), arg = its window position ky*k_w + kx. Exact. */
void ref_maxpool_forward(float *y, float *arg, const float *x, const spartan_window *w);

/* dx[b, y, x, c] = the sum of dy over the windows whose arg points at (b, y, x, c). */
void ref_maxpool_backward(double *dx, const float *dy, const float *arg, const spartan_window *w);

/* Average pooling, padding counted (count_include_pad): y[b, oy, ox, c] = the sum of the
 * window's elements inside the image divided by k_h*k_w. */
void ref_avgpool_forward(double *y, const float *x, const spartan_window *w);

/* Its adjoint, scattered: every dy[b, oy, ox, c] / (k_h*k_w) added to each image element of its
 * window; 0 where no window reaches. */
void ref_avgpool_backward(double *dx, const float *dy, const spartan_window *w);

/* 1 when dropout drops element i (ops.h's hash: splitmix64 from a key mixed from seed and
 * counter, top 24 bits as a uniform in [0, 1), dropped when below p). */
int ref_dropout_dropped(unsigned long long seed, unsigned long long counter, size_t i, float p);

/* y[i] = 0 where dropped, else x[i] / (1 - p) */
void ref_dropout(double *y, const float *x, size_t n, float p, unsigned long long seed,
                 unsigned long long counter);

/* Per row of logits (rows x classes): loss[r] = -log softmax(logits[r])[label] (NaN when the
 * label is not an integer in [0, classes)), correct[r] = 1 when the first argmax is the label,
 * and, when dlogits is not NULL, dlogits[r, j] = scale * (softmax[j] - (j == label)). */
void ref_softmax_xent(double *loss, double *correct, double *dlogits, const float *logits,
                      const float *labels, size_t rows, size_t classes, double scale);

/* One SGD step in place (PyTorch's rule): g' = g + wd * w; v = momentum * v + g';
 * w = w - lr * v. */
void ref_sgd_step(double *w, double *v, const float *g, size_t n, double lr, double momentum,
                  double wd);

#endif /* SPARTAN_TEST_REF_H */
