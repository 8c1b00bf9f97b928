/* Approximate Random Dropout's row patterns (Song et al., DATE'19; docs/training.md, "Structured
 * dropout"): instead of dropping each neuron by its own coin, a step drops a regular pattern
 * (every `period` consecutive positions keep the first `keep`, the whole pattern turned by a
 * random offset), so the kept neurons make a smaller dense GEMM. A plan holds the patterns over
 * n neurons and the distribution over them found by sp_ard_plan's search; a step draws one
 * pattern and one offset from (seed, step, layer), so nothing is stored. */
#ifndef SP_NN_ARD_H
#define SP_NN_ARD_H

#include <stddef.h>
#include <stdint.h>

#include "ops/ops_internal.h"

/* The longest period of the patterns: the kept fractions keep / period, 0 < keep <= period <=
 * SP_ARD_PERIOD_MAX (all of them: keep == period). */
#define SP_ARD_PERIOD_MAX 32

typedef struct sp_ard_plan {
    size_t n;     /* neurons */
    double p;     /* the drop rate asked for */
    size_t count; /* patterns with probability > 0, in prob/cdf/period/keep */
    double mean;  /* the expected kept fraction under the distribution (the target 1 - p) */
    double sd;    /* the standard deviation of the kept fraction (Bernoulli's: sqrt(p(1-p)/n)) */
    double cvm;   /* the objective's distance term at the end (see ard.c) */
    unsigned iterations;
    unsigned short period[SP_ARD_PERIOD_MAX * (SP_ARD_PERIOD_MAX + 1) / 2];
    unsigned short keep[SP_ARD_PERIOD_MAX * (SP_ARD_PERIOD_MAX + 1) / 2];
    double prob[SP_ARD_PERIOD_MAX * (SP_ARD_PERIOD_MAX + 1) / 2];
    double cdf[SP_ARD_PERIOD_MAX * (SP_ARD_PERIOD_MAX + 1) / 2];
} sp_ard_plan;

/* The distribution over the patterns of n neurons for drop rate p in [0, 1): the SGD search of
 * ard.c. Host arithmetic only (about 0.1 s for 1024 neurons). -1 when n is 0, p is outside
 * [0, 1), or no distribution over the patterns keeps 1 - p of the n on average (n too small). */
int sp_ard_plan_make(size_t n, double p, sp_ard_plan *out);

/* The pattern of a step: drawn from the plan by a hash of (seed, step, layer). */
sp_row_pattern sp_ard_draw(const sp_ard_plan *plan, uint64_t seed, uint64_t step, uint64_t layer);

#endif /* SP_NN_ARD_H */
