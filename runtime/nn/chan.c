/* Sensitivity-aware feature-map dropout's choice of channels (chan.h). */
#include "nn/chan.h"

#include <math.h>

/* The sum of min(d_max, lambda w[c]). */
static double total(const double *w, size_t C, double lambda, double dmax) {
    double s = 0.0;
    for (size_t c = 0; c < C; c++) s += fmin(dmax, lambda * w[c]);
    return s;
}

void sp_chan_probabilities(const double *sens, size_t C, double p, double *d) {
    if (!C) return;
    const double dmax = fmax(SP_CHAN_DROP_MAX, p), want = p * (double)C;
    double mean = 0.0;
    for (size_t c = 0; sens && c < C; c++) mean += fmax(sens[c], 0.0) / (double)C;
    const double eps = 0.1 * mean + 1e-30;
    /* the weights 1 / (s + eps) in d itself, then lambda by bisection: total() grows with it */
    for (size_t c = 0; c < C; c++) d[c] = sens ? 1.0 / (fmax(sens[c], 0.0) + eps) : 1.0;
    double lo = 0.0, hi = 1.0;
    while (total(d, C, hi, dmax) < want && hi < 1e300) hi *= 2.0;
    for (int it = 0; it < 200; it++) {
        const double mid = 0.5 * (lo + hi);
        if (total(d, C, mid, dmax) < want)
            lo = mid;
        else
            hi = mid;
    }
    for (size_t c = 0; c < C; c++) d[c] = fmin(dmax, hi * d[c]);
    /* the bisection's last rounding, spread so the sum is p C to the last bit it can be */
    const double err = want - total(d, C, 1.0, dmax);
    size_t free_n = 0;
    for (size_t c = 0; c < C; c++) free_n += d[c] < dmax;
    for (size_t c = 0; free_n && c < C; c++)
        if (d[c] < dmax) d[c] = fmin(dmax, fmax(0.0, d[c] + err / (double)free_n));
}

size_t sp_chan_sample(const double *d, size_t C, double u0, unsigned char *dropped) {
    double run = 0.0;
    size_t kept = 0;
    for (size_t c = 0; c < C; c++) {
        const double before = floor(run - u0);
        run += d[c];
        dropped[c] = floor(run - u0) > before;
        kept += !dropped[c];
    }
    return kept;
}
