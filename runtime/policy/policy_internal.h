/* The policy as the layers above see it (nn/): registering each layer's passes, feeding back
 * the measured times, and the constants of the adaptive rule (docs/policy.md). */
#ifndef SP_POLICY_INTERNAL_H
#define SP_POLICY_INTERNAL_H

#include "spartan/ops.h"
#include "spartan/policy.h"
#include "ops/ops_internal.h"

/* The rule's constants (docs/policy.md). */
#define SP_POLICY_MARGIN        0.10 /* switch when the other path is predicted >= 10 % faster */
#define SP_POLICY_MIN_GAIN_MS   0.01 /* ... and by at least this much (below it, noise) */
#define SP_POLICY_PERSIST       3    /* ... in this many consecutive decisions */
#define SP_POLICY_DWELL         20   /* ... and not within this many steps of the last change */
#define SP_POLICY_ALPHA         0.25 /* weight of a new measurement in the online correction */
#define SP_POLICY_EXPLORE_FIRST 5    /* steps before the path not taken is first timed */
#define SP_POLICY_EXPLORE_EVERY 100  /* steps before the path not taken is timed again */
#define SP_POLICY_EXPLORE_RATIO 2.0  /* ... when it is predicted within this factor */
#define SP_POLICY_CAL_LOW       0.5  /* the two sparsities the sparse path is calibrated at */
#define SP_POLICY_CAL_HIGH      0.9
#define SP_POLICY_CAL_RUNS      3 /* timed runs per calibration point (median), after one warm-up */

/* A calibration: the dense time, and the sparse time at SP_POLICY_CAL_LOW and _HIGH zeros. */
typedef struct sp_policy_cal {
    double dense_ms, sparse_low_ms, sparse_high_ms;
    /* The dense implementation that gave dense_ms: the own kernel, or CLBlast when it was
     * calibrated too and faster for this shape (own_ms, clblast_ms: both timings; clblast_ms < 0
     * when CLBlast was not tried). */
    spartan_gemm_path dense_impl;
    double own_ms, clblast_ms;
    /* A convolution's engine of each path (sp_conv_engine: im2col + GEMM or implicit, the
     * faster calibrated; SP_CONV_GEMM for fc layers), and the dense engines' times (< 0: not
     * timed). */
    int engine[2];
    double im2col_ms, implicit_ms;
} sp_policy_cal;

/* Whether calibrations time CLBlast as well as the own kernel: when the library has CLBlast and
 * the device is a GPU or accelerator (on CPU drivers CLBlast has no tuned parameters and runs
 * 8-25x slower than the own kernel), or when SPARTAN_POLICY_CLBLAST=1 (tests). */
int sp_policy_tries_clblast(const spartan_policy *p);

/* The calibration of a registered (layer, pass) (INVALID_ARGUMENT when it has none). */
spartan_status sp_policy_calibration(const spartan_policy *p, size_t layer, spartan_pass pass,
                                     sp_policy_cal *out);

/* The sparse form of a pass (sparse_allowed of sp_policy_register): none, skipping the zeros of
 * X (every pass; backward-by-input computes only under X's non-zeros), or, for the backward
 * passes of a layer followed by a ReLU, skipping the zeros of its gradient dY
 * (spartan_gemm_sparse_bwd_weight_dz; dX = dY . W^T by spartan_gemm_sparse_fwd_direct). */
enum {
    SP_SPARSE_NONE = SPARTAN_FORM_NONE,
    SP_SPARSE_ON_X = SPARTAN_FORM_ON_X,
    SP_SPARSE_ON_DY = SPARTAN_FORM_ON_DY
};

/* Registers (layer, pass) with its GEMM shape (as in spartan_policy_query) and, for the
 * adaptive mode, calibrates it: from the cache file when it holds the shape, else by
 * microbenchmarks on the device (then written back). cal, when not NULL, is used instead of
 * both (tests). */
spartan_status sp_policy_register(spartan_policy *p, size_t layer, spartan_pass pass, size_t m,
                                  size_t n, size_t k, int sparse_allowed, const sp_policy_cal *cal);

/* The same for a convolution's pass: win is its window (batch: the layer's batch), n its
 * output channels; the calibration times both engines of each path (sp_conv_pass_run) and
 * keeps the faster. Under the dense and sparse modes the engines are the implicit kernels
 * wherever they can run the pass (sp_conv_engine_usable), else im2col + GEMM. */
spartan_status sp_policy_register_conv(spartan_policy *p, size_t layer, spartan_pass pass,
                                       const spartan_window *win, size_t n, int sparse_allowed,
                                       const sp_policy_cal *cal);

/* The engine a registered convolution pass runs on path (SP_CONV_GEMM when unknown). */
sp_conv_engine sp_policy_engine(const spartan_policy *p, size_t layer, spartan_pass pass,
                                spartan_path path);

/* The step the next decisions belong to. */
void sp_policy_set_step(spartan_policy *p, size_t step);

/* One measured run of (layer, pass) on path at sparsity (< 0: unknown), in milliseconds. */
void sp_policy_observe(spartan_policy *p, size_t layer, spartan_pass pass, spartan_path path,
                       double sparsity, double ms);

/* Microbenchmarks run by calibrations since the policy was made (tests: the cache is reused). */
size_t sp_policy_benchmarks_run(const spartan_policy *p);

#endif /* SP_POLICY_INTERNAL_H */
