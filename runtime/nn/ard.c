/* Approximate Random Dropout's pattern distribution (ard.h). The search, after the paper's
 * "SGD-based search": the patterns are the reduced fractions keep / period (period <=
 * SP_ARD_PERIOD_MAX) and keep-all; pattern i keeps c_i neurons of n (whatever the offset) and,
 * the offset being uniform over the n neurons, each neuron with probability c_i / n. Under a
 * distribution pi over the patterns every neuron is therefore kept with probability
 * m(pi) = sum_i pi_i c_i / n, and a step keeps c_i neurons with probability pi_i. Bernoulli
 * dropout keeps each neuron with probability q = 1 - p, and Binomial(n, q) of them. The search
 * minimises
 *
 *     L(pi) = A (m(pi) - q)^2 / s^2 + D(pi) / s,    s^2 = q (1 - q) / n (Bernoulli's variance of
 *                                                   the kept fraction), A = 10,
 *     D(pi) = (1/n) sum_{x=0..n} (F_pi(x) - F_B(x))^2,
 *
 * F_pi and F_B the distribution functions of the kept count under pi and under Binomial(n, q) (a
 * Cramer-von Mises distance): the first term makes every neuron's keep rate q, the second makes
 * the kept count spread like Bernoulli's as far as the patterns' counts allow. pi = softmax(theta),
 * theta from a Gaussian around q (theta_i = -(c_i / n - q)^2 / 2 s^2), descended by Adam (step
 * 0.05, 2000 steps). Last, the mean is made exact by mixing a little of the pattern closest to q
 * strictly on the other side of m (A keeps that mix small), after the patterns below 1e-9 are
 * dropped. When no distribution has the mean (n too small: every pattern keeps at least one neuron,
 * and the counts are coarse), there is no plan. */
#include "nn/ard.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

#define PATTERNS_MAX (SP_ARD_PERIOD_MAX * (SP_ARD_PERIOD_MAX + 1) / 2)
#define STEPS        2000

static size_t gcd(size_t a, size_t b) {
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static size_t kept(size_t n, size_t period, size_t keep) {
    const size_t rest = n % period;
    return n / period * keep + (rest < keep ? rest : keep);
}

/* Binomial(n, q)'s distribution function at 0..n into F (n + 1 values). */
static void binomial_cdf(size_t n, double q, double *F) {
    const double lq = log(q), lr = log1p(-q), ln = lgamma((double)n + 1.0);
    double acc = 0.0;
    for (size_t x = 0; x <= n; x++) {
        const double lp = ln - lgamma((double)x + 1.0) - lgamma((double)(n - x) + 1.0) +
                          (double)x * lq + (double)(n - x) * lr;
        acc += exp(lp);
        F[x] = acc < 1.0 ? acc : 1.0;
    }
}

/* L's gradient with respect to pi into g (P values); returns the distance D / s. F_B: Binomial's
 * distribution function, G: n + 1 values of scratch. */
static double gradient(size_t n, double q, double s, size_t P, const size_t *c, const double *pi,
                       const double *FB, double *G, double *g) {
    memset(G, 0, (n + 1) * sizeof *G);
    double m = 0.0;
    for (size_t i = 0; i < P; i++) {
        G[c[i]] += pi[i];
        m += pi[i] * (double)c[i] / (double)n;
    }
    double F = 0.0, D = 0.0;
    for (size_t x = 0; x <= n; x++) { /* G: F_pi - F_B */
        F += G[x];
        G[x] = F - FB[x];
        D += G[x] * G[x];
    }
    for (size_t x = n; x-- > 0;) G[x] += G[x + 1]; /* suffix sums: dD/dpi_i = 2 S(c_i) / n */
    const double A = 10.0;
    for (size_t i = 0; i < P; i++)
        g[i] = 2.0 * G[c[i]] / ((double)n * s) +
               2.0 * A * (m - q) * (double)c[i] / ((double)n * s * s);
    return D / ((double)n * s);
}

int sp_ard_plan_make(size_t n, double p, sp_ard_plan *out) {
    memset(out, 0, sizeof *out);
    if (n == 0 || !(p >= 0.0 && p < 1.0)) return -1;
    out->n = n;
    out->p = p;
    const double q = 1.0 - p;
    size_t P = 0, c[PATTERNS_MAX];
    unsigned short per[PATTERNS_MAX], kp[PATTERNS_MAX];
    for (size_t d = 1; d <= SP_ARD_PERIOD_MAX; d++)
        for (size_t k = 1; k <= d; k++)
            if (gcd(d, k) == 1 && (k < d || d == 1)) {
                per[P] = (unsigned short)d;
                kp[P] = (unsigned short)k;
                c[P] = kept(n, d, k);
                P++;
            }
    double pi[PATTERNS_MAX];
    if (p == 0.0) { /* keep-all alone */
        for (size_t i = 0; i < P; i++) pi[i] = per[i] == 1 ? 1.0 : 0.0;
    } else {
        double *FB = malloc((n + 1) * sizeof *FB), *G = malloc((n + 1) * sizeof *G);
        if (!FB || !G) {
            free(FB);
            free(G);
            return -1;
        }
        binomial_cdf(n, q, FB);
        const double s = sqrt(q * (1.0 - q) / (double)n);
        double theta[PATTERNS_MAX], mom[PATTERNS_MAX] = {0}, var[PATTERNS_MAX] = {0};
        double g[PATTERNS_MAX];
        for (size_t i = 0; i < P; i++) {
            const double z = ((double)c[i] / (double)n - q) / s;
            theta[i] = -0.5 * (z * z < 400.0 ? z * z : 400.0);
        }
        const double b1 = 0.9, b2 = 0.999, eta = 0.05;
        double b1t = 1.0, b2t = 1.0;
        for (unsigned it = 0; it < STEPS; it++) {
            double top = theta[0], sum = 0.0;
            for (size_t i = 1; i < P; i++) top = fmax(top, theta[i]);
            for (size_t i = 0; i < P; i++) sum += pi[i] = exp(theta[i] - top);
            for (size_t i = 0; i < P; i++) pi[i] /= sum;
            out->cvm = gradient(n, q, s, P, c, pi, FB, G, g);
            double dot = 0.0; /* through the softmax: dL/dtheta_i = pi_i (g_i - pi . g) */
            for (size_t i = 0; i < P; i++) dot += pi[i] * g[i];
            b1t *= b1;
            b2t *= b2;
            for (size_t i = 0; i < P; i++) {
                const double gt = pi[i] * (g[i] - dot);
                mom[i] = b1 * mom[i] + (1.0 - b1) * gt;
                var[i] = b2 * var[i] + (1.0 - b2) * gt * gt;
                theta[i] -= eta * (mom[i] / (1.0 - b1t)) / (sqrt(var[i] / (1.0 - b2t)) + 1e-12);
            }
            out->iterations = it + 1;
        }
        free(FB);
        free(G);
        /* the patterns below 1e-9 dropped; then the mean made exact: a little of the pattern
         * nearest q strictly on the far side of m; with none there, all of the mass on the
         * pattern at q (if any) */
        double kept_mass = 0.0;
        for (size_t i = 0; i < P; i++) kept_mass += pi[i] = pi[i] < 1e-9 ? 0.0 : pi[i];
        for (size_t i = 0; i < P; i++) pi[i] /= kept_mass;
        double m = 0.0;
        for (size_t i = 0; i < P; i++) m += pi[i] * (double)c[i] / (double)n;
        size_t far = P, at = P;
        for (size_t i = 0; i < P; i++) {
            const double f = (double)c[i] / (double)n;
            if (fabs(f - q) < 1e-12) at = i;
            if ((m > q ? f < q - 1e-12 : f > q + 1e-12) &&
                (far == P || fabs(f - q) < fabs((double)c[far] / (double)n - q)))
                far = i;
        }
        if (far < P && fabs(m - q) > 1e-15) {
            const double f = (double)c[far] / (double)n, t = (m - q) / (m - f);
            for (size_t i = 0; i < P; i++) pi[i] *= 1.0 - t;
            pi[far] += t;
        } else if (at < P && fabs(m - q) > 1e-15) {
            for (size_t i = 0; i < P; i++) pi[i] = i == at ? 1.0 : 0.0;
        }
    }
    double total = 0.0, m = 0.0, m2 = 0.0;
    for (size_t i = 0; i < P; i++) {
        if (pi[i] <= 0.0) continue;
        const size_t j = out->count++;
        out->period[j] = per[i];
        out->keep[j] = kp[i];
        out->prob[j] = pi[i];
        total += pi[i];
    }
    double acc = 0.0;
    for (size_t j = 0; j < out->count; j++) {
        out->prob[j] /= total;
        acc += out->prob[j];
        out->cdf[j] = acc;
        const double f = (double)kept(n, out->period[j], out->keep[j]) / (double)n;
        m += out->prob[j] * f;
        m2 += out->prob[j] * f * f;
    }
    if (out->count) out->cdf[out->count - 1] = 1.0;
    out->mean = m;
    out->sd = sqrt(fmax(0.0, m2 - m * m));
    /* no distribution keeps 1 - p on average (too few neurons: every pattern keeps one) */
    return out->count && fabs(m - q) <= 1e-9 ? 0 : -1;
}

sp_row_pattern sp_ard_draw(const sp_ard_plan *plan, uint64_t seed, uint64_t step, uint64_t layer) {
    const uint64_t key = sp_mix64(seed ^ sp_mix64(step * 0x100000001b3ull + layer + 1));
    const double u = (double)(sp_mix64(key + 0x9e3779b97f4a7c15ull) >> 11) * 0x1.0p-53;
    size_t i = 0;
    while (i + 1 < plan->count && plan->cdf[i] <= u) i++;
    sp_row_pattern r = {plan->n, plan->period[i], plan->keep[i], 0};
    r.offset = (size_t)(sp_mix64(key + 2 * 0x9e3779b97f4a7c15ull) % plan->n);
    return r;
}
