/* References for kernels_cl/eltwise.cl. */
#include "ref/ref.h"

void ref_fill(double *x, size_t n, double value) {
    for (size_t i = 0; i < n; i++) x[i] = value;
}

void ref_axpy(double *out, const float *y, const float *x, size_t n, float a) {
    for (size_t i = 0; i < n; i++) out[i] = (double)a * (double)x[i] + (double)y[i];
}
