/* Sparsity patterns for tests and benchmarks, from one generator (so both see the same data):
 *   RANDOM   independent zeros, as ReLU gives (each element zero with probability s);
 *   CLUSTER  zeros in whole 8x8 blocks and dead columns (channels), as dead units, structured
 *            dropout and pruned weights give;
 *   PREPOOL  the gradient in front of a 2x2 max-pool: in each window of 4 rows of a column at
 *            most one non-zero (75 % zeros), then independent zeros on top to reach s (for
 *            s < 0.75, windows keep more than one);
 *   DEADROWS whole zero rows and columns (half of s each), for the tests.
 * Values of non-zeros are uniform in [0.1, 1] (ReLU outputs) or [-1, 1] \ (-0.1, 0.1) when
 * signed. The fraction of zeros reached is within a few 1/1000 of s for large matrices; pat_zeros
 * counts it exactly. */
#ifndef SPARTAN_TOOLS_PATTERNS_H
#define SPARTAN_TOOLS_PATTERNS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { PAT_RANDOM = 0, PAT_CLUSTER, PAT_PREPOOL, PAT_DEADROWS, PAT_COUNT } pat_kind;

/* "random", "cluster", "prepool", "deadrows". */
const char *pat_name(pat_kind k);
/* -1 for an unknown name. */
int pat_parse(const char *name);

/* Fills x (rows x cols, row-major) with pattern k at zero fraction s in [0, 1], from seed. */
void pat_fill(float *x, size_t rows, size_t cols, pat_kind k, double s, int is_signed,
              uint64_t seed);

/* Dense values in [-1, 1] (weights, gradients). */
void pat_fill_dense(float *x, size_t n, uint64_t seed);

size_t pat_zeros(const float *x, size_t n);

#endif /* SPARTAN_TOOLS_PATTERNS_H */
