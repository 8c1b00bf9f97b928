/* OpenBLAS on the host: cblas_sgemm as the CPU reference line of the GEMM benchmark and as the
 * reference result every device result is checked against (an implementation independent of
 * the device's). Also the comparison and its tolerance. */
#include <cblas.h>
#include <float.h>
#include <math.h>

#include "bench.h"

void host_sgemm(int ta, int tb, size_t m, size_t n, size_t k, const float *a, const float *b,
                float *c) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)k, 1.0f, a, (blasint)(ta ? m : k), b,
                (blasint)(tb ? k : n), 0.0f, c, (blasint)n);
}

const char *host_blas_core(void) {
    return openblas_get_corename();
}

int host_blas_threads(void) {
    return openblas_get_num_threads();
}

double host_max_abs(const float *x, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double v = fabs((double)x[i]);
        if (v > m) m = v;
    }
    return m;
}

double host_tolerance(size_t k, double max_a, double max_b) {
    return 2.0 * (double)(k + 2) * FLT_EPSILON * max_a * max_b;
}

bench_check host_compare(const float *got, const float *want, const float *mask, size_t n,
                         double tol) {
    bench_check c = {0.0, tol, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= tol)) c.bad++; /* NaN counts as bad */
        if (d > c.max_diff || isnan(d)) c.max_diff = d;
        if (mask && mask[i] == 0.0f && got[i] != 0.0f) c.off_mask++;
    }
    c.ok = c.bad == 0 && c.off_mask == 0;
    return c;
}
