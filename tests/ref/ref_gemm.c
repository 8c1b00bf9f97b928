/* References for the dense GEMMs (kernels_cl/gemm_dense.cl, CLBlast) and the sparse GEMMs
 * (kernels_cl/gemm_sparse.cl): the textbook triple loop in double precision. */
#include "ref/ref.h"

#include <math.h>

double ref_max_abs(const float *x, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)x[i]) > m) m = fabs((double)x[i]);
    return m;
}

void ref_gemm(double *c, int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha,
              const float *a, const float *b, double beta, const float *c0) {
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            double sum = 0.0;
            for (size_t p = 0; p < k; p++) {
                double av = trans_a ? a[p * m + i] : a[i * k + p];
                double bv = trans_b ? b[j * k + p] : b[p * n + j];
                sum += av * bv;
            }
            double v = alpha * sum;
            if (beta != 0.0) v += beta * (double)c0[i * n + j];
            c[i * n + j] = v;
        }
    }
}

void ref_gemm_masked(double *dx, const float *x, const float *dz, const float *w, size_t m,
                     size_t k, size_t n) {
    for (size_t i = 0; i < m; i++) {
        for (size_t p = 0; p < k; p++) {
            double sum = 0.0;
            if (x[i * k + p] != 0.0f)
                for (size_t j = 0; j < n; j++) sum += (double)dz[i * n + j] * (double)w[p * n + j];
            dx[i * k + p] = sum;
        }
    }
}
