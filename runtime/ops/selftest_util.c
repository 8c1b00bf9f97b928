/* The self-tests' shared helpers (selftest_run.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/selftest_run.h"

#define TALL_REAL 131101 /* 2^17 + 29: a walk down it at 10 % zeros is past 65,535 steps */
#define TALL_SIM  2053
/* Walks over wide blocks of columns: long enough that a compiler's unrolled and rolled loops both
 * run, prime; a simulator checks bounds and races, not loop limits, and runs 613 in a tenth of the
 * time */
#define WIDE_REAL 6007
#define WIDE_SIM  613

void sp_check_init(sp_check *r, spartan_context *ctx, char *why, size_t why_len, uint64_t seed) {
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
    r->rng.s = seed;
    int sim = ctx->dev.info.vendor == SPARTAN_VENDOR_SIMULATOR;
    r->tall = sim ? TALL_SIM : TALL_REAL;
    r->wide = sim ? WIDE_SIM : WIDE_REAL;
    r->why = why;
    r->why_len = why_len;
    why[0] = '\0';
}

int sp_check_fail(sp_check *r, const char *fmt, ...) {
    if (!r->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->why, r->why_len, fmt, ap);
        va_end(ap);
    }
    r->failed = 1;
    return 1;
}

int sp_check_call(sp_check *r, spartan_status st, const char *what) {
    if (st == SPARTAN_OK) return 0;
    return sp_check_fail(r, "%s: %s (%s)", what, spartan_status_name(st),
                         spartan_last_error(r->ctx));
}

void sp_check_release(sp_check *r) {
    for (int i = 0; i < SELFTEST_HELD; i++) {
        spartan_tensor_destroy(r->held[i]);
        r->held[i] = NULL;
    }
    for (int i = 0; i < 2; i++) {
        spartan_sparse_destroy(r->sparse[i]);
        r->sparse[i] = NULL;
    }
}

spartan_tensor *sp_check_upload(sp_check *r, const float *host, size_t rows, size_t cols) {
    int slot = 0;
    while (slot < SELFTEST_HELD && r->held[slot]) slot++;
    if (slot == SELFTEST_HELD) {
        sp_check_fail(r, "internal: too many tensors");
        return NULL;
    }
    spartan_tensor *t = NULL;
    if (sp_check_call(r, spartan_tensor_create_2d(r->ctx, rows, cols, &t), "creating a tensor"))
        return NULL;
    r->held[slot] = t;
    if (host && sp_check_call(r, spartan_tensor_write(t, host, rows * cols), "writing a tensor"))
        return NULL;
    return t;
}

spartan_sparse *sp_check_sparse(sp_check *r, size_t rows, size_t cols) {
    int slot = r->sparse[0] ? 1 : 0;
    if (sp_check_call(r, spartan_sparse_create(r->ctx, rows, cols, &r->sparse[slot]),
                      "sparse operand"))
        return NULL;
    return r->sparse[slot];
}

int sp_check_download(sp_check *r, const spartan_tensor *t, float *host) {
    return sp_check_call(r, spartan_tensor_read(t, host, spartan_tensor_numel(t)),
                         "reading a tensor");
}

void sp_check_fill(sp_check *r, float *h, size_t n, double zeros, float lo, float hi) {
    for (size_t i = 0; i < n; i++) {
        double u = sp_rng_uniform(&r->rng);
        h[i] = u <= zeros ? 0.0f : lo + (hi - lo) * (float)sp_rng_uniform(&r->rng);
    }
}

void sp_check_fill_int(sp_check *r, float *h, size_t n, double zeros, int mag, int positive) {
    for (size_t i = 0; i < n; i++) {
        double u = sp_rng_uniform(&r->rng);
        uint64_t v = sp_rng_next(&r->rng);
        int m = 1 + (int)(v % (uint64_t)mag);
        h[i] = u <= zeros ? 0.0f : (float)(positive || (v >> 32 & 1) ? m : -m);
    }
}

int sp_check_compare(sp_check *r, const char *what, const float *got, const double *want,
                     const double *bound, size_t n) {
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        int ok = bound ? d <= bound[i]
                       : (got[i] == (float)want[i] || (got[i] != got[i] && want[i] != want[i]));
        if (!ok && bad++ == 0) first = i;
    }
    if (!bad) return 0;
    if (!bound)
        return sp_check_fail(r, "%s: %zu of %zu results wrong (first at %zu: %.9g, want %.9g)",
                             what, bad, n, first, (double)got[first], want[first]);
    return sp_check_fail(r,
                         "%s: %zu of %zu results wrong (first at %zu: %.9g, want %.9g within "
                         "%.3g)",
                         what, bad, n, first, (double)got[first], want[first], bound[first]);
}

void *sp_check_alloc(sp_check *r, sp_check_host *h, size_t count, size_t size) {
    void *p = h->n < 12 ? calloc(count ? count : 1, size) : NULL;
    if (!p) {
        sp_check_fail(r, "out of host memory for the self-test");
        return NULL;
    }
    h->p[h->n++] = p;
    return p;
}

void sp_check_host_free(sp_check_host *h) {
    for (int i = 0; i < h->n; i++) free(h->p[i]);
    h->n = 0;
}
