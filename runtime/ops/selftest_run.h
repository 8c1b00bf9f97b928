/* What the self-test checks share (selftest_checks.c, selftest_nn.c, selftest_util.c): one run's
 * state, seeded data, tensors held until the check ends, and the comparison with a host
 * reference. */
#ifndef SP_OPS_SELFTEST_RUN_H
#define SP_OPS_SELFTEST_RUN_H

#include "core/rng.h"
#include "ops/selftest.h"

#define SELFTEST_HELD 16

typedef struct sp_check {
    spartan_context *ctx;
    sp_rng rng;
    size_t tall; /* rows of the tall shapes: more than 65,536 except on simulators */
    size_t wide; /* the long side of the wide-block shapes: 6,007, or 613 on simulators */
    char *why;
    size_t why_len;
    int failed;
    spartan_tensor *held[SELFTEST_HELD]; /* released by sp_check_release */
    spartan_sparse *sparse[2];
} sp_check;

/* Host arrays of one check, freed together. */
typedef struct sp_check_host {
    void *p[12];
    int n;
} sp_check_host;

void sp_check_init(sp_check *r, spartan_context *ctx, char *why, size_t why_len, uint64_t seed);

/* Records the first failure's reason; returns 1. */
int sp_check_fail(sp_check *r, const char *fmt, ...) SP_PRINTF(2, 3);

/* 0 when st is OK, else a failure naming the call and the context's message. */
int sp_check_call(sp_check *r, spartan_status st, const char *what);

/* A device matrix holding host (rows x cols; NULL: undefined contents), held until
 * sp_check_release; NULL after a failure. */
spartan_tensor *sp_check_upload(sp_check *r, const float *host, size_t rows, size_t cols);
spartan_sparse *sp_check_sparse(sp_check *r, size_t rows, size_t cols);
int sp_check_download(sp_check *r, const spartan_tensor *t, float *host);
void sp_check_release(sp_check *r);

/* n values in [lo, hi), each 0 with probability zeros. */
void sp_check_fill(sp_check *r, float *h, size_t n, double zeros, float lo, float hi);

/* n small integers, each 0 with probability zeros, else one of +-1 .. +-mag (1 .. mag when
 * positive): sums and products of a few hundred thousand of them are exact in float, whatever
 * the order, so a result that is off by one missing term shows. */
void sp_check_fill_int(sp_check *r, float *h, size_t n, double zeros, int mag, int positive);

/* got against want: exactly where bound is NULL (NaN matches NaN), else within bound[i]. */
int sp_check_compare(sp_check *r, const char *what, const float *got, const double *want,
                     const double *bound, size_t n);

/* count zeroed elements of size bytes, freed by sp_check_host_free; NULL after a failure. */
void *sp_check_alloc(sp_check *r, sp_check_host *h, size_t count, size_t size);
void sp_check_host_free(sp_check_host *h);

/* The layer operations' check (selftest_nn.c). */
int sp_check_nn(sp_check *r);
/* The implicit-GEMM convolution's check (selftest_nn.c). */
int sp_check_conv(sp_check *r);
/* The convolution backward-by-input's check (selftest_conv_dx.c). */
int sp_check_conv_dx(sp_check *r);
/* The convolution backward-by-weight's check (selftest_conv_dw.c). */
int sp_check_conv_dw(sp_check *r);

#endif /* SP_OPS_SELFTEST_RUN_H */
