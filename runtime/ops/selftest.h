/* On-device validation of the kernel families (selftest.c, selftest_checks.c). Drivers differ in
 * more than speed: loops a driver ends silently, vector code it miscompiles, limits it does not
 * report. So the first time a family is built for a device and build options, a known-answer
 * test runs its operations on shapes that stress that (a tall column of 65,536 rows and more, a
 * long reduction, a wide row, sizes that are multiples of no tile) and compares them with a
 * double-precision host reference within a bound derived from the reduction length and float
 * epsilon. The verdicts are cached next to the kernel binaries, keyed by every family's binary
 * key, so a warm start runs nothing. */
#ifndef SP_OPS_SELFTEST_H
#define SP_OPS_SELFTEST_H

#include "ops/ops_internal.h"

/* Validates (or reads the cached verdicts of) every family of a freshly opened context. An
 * optional family that fails is disabled with the reason, and logged once; an essential one
 * (or a device left with no dense GEMM) fails with VALIDATION_FAILED and the reason in err. */
spartan_status sp_selftest_run(spartan_context *ctx, sp_err *err);

/* The known-answer test of one family on ctx, as sp_selftest_run runs it: 0 when it passes,
 * else 1 with the reason in why. */
int sp_selftest_family(spartan_context *ctx, sp_family f, char *why, size_t why_len);

/* The dense GEMM's test on one path (SPARTAN_GEMM_OWN, SPARTAN_GEMM_CLBLAST, or -1 for the
 * reference kernels): 0 when it passes, else 1 with the reason in why. */
int sp_selftest_gemm(spartan_context *ctx, int path, char *why, size_t why_len);

#endif /* SP_OPS_SELFTEST_H */
