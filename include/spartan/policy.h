/* The policy: which GEMM path each layer's pass takes.
 *
 * Every GEMM layer asks the policy, for each of its three passes, whether to run a dense GEMM
 * (CLBlast or the own kernel: spartan_policy_dense_path) or the sparse kernel, giving it
 * the sparsity the monitor last measured and the GEMM's shape. The answer and its reason are
 * recorded, so a caller can see every decision.
 *
 * Modes:
 *  - DENSE: always dense.
 *  - SPARSE: sparse wherever the pass can be sparse: the forward pass always; backward-by-input
 *    only when the layer's input came from a ReLU, so that the gradient of its zeros is discarded
 *    anyway; backward-by-weight always.
 *  - ADAPTIVE (the default of spartan_train_config_default): per layer and pass, the path whose
 *    predicted time is lower, from a cost model of this device: calibrated at first use by short
 *    microbenchmarks of both paths on the layer's shape (stored in the cache directory, keyed by
 *    device, so the next run starts calibrated), corrected online from the measured times
 *    (spartan_mark: profiling events, or the host clock where they cannot be trusted) of
 *    the path actually run and, every so often, of the path not taken; a switch happens only
 *    when the predicted gain exceeds a margin (hysteresis). docs/policy.md has the rule and its
 *    constants.
 *
 * A policy keeps a pointer to its context and is destroyed before it; it is used under the
 * context's threading rule (device.h). A model's own policy (spartan_model_policy) belongs to the
 * model: do not destroy it. Reasons and names returned are static text. */
#ifndef SPARTAN_POLICY_H
#define SPARTAN_POLICY_H

#include <stddef.h>

#include "spartan/ops.h"
#include "spartan/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum spartan_policy_mode {
    SPARTAN_POLICY_DENSE = 0,
    SPARTAN_POLICY_SPARSE = 1,
    SPARTAN_POLICY_ADAPTIVE = 2
} spartan_policy_mode;

/* spartan_pass, spartan_path and the GEMM-pass descriptor are in ops.h. */

/* One question to the policy. */
typedef struct spartan_policy_query {
    size_t layer; /* index of the layer in its model */
    spartan_pass pass;
    size_t m, n, k;     /* the GEMM's shape */
    double sparsity;    /* fraction of zeros of the sparse operand, last measured; < 0 unknown */
    int sparse_allowed; /* 0 when this pass has no sparse form here */
} spartan_policy_query;

typedef struct spartan_policy spartan_policy;

/* Parses "dense", "sparse" or "adaptive" (INVALID_ARGUMENT otherwise). */
SPARTAN_API spartan_status spartan_policy_mode_parse(const char *text, spartan_policy_mode *out);
SPARTAN_API const char *spartan_policy_mode_name(spartan_policy_mode mode);
SPARTAN_API const char *spartan_pass_name(spartan_pass pass); /* "fwd", "bwd_input", ... */
SPARTAN_API const char *spartan_path_name(spartan_path path); /* "dense", "sparse" */

/* A policy for ctx's device. */
SPARTAN_API spartan_status spartan_policy_create(spartan_context *ctx, spartan_policy_mode mode,
                                                 spartan_policy **out);
SPARTAN_API void spartan_policy_destroy(spartan_policy *p);
SPARTAN_API spartan_policy_mode spartan_policy_get_mode(const spartan_policy *p);

/* The path for q; *reason (optional) receives a short static text saying why. */
SPARTAN_API spartan_path spartan_policy_choose(spartan_policy *p, const spartan_policy_query *q,
                                               const char **reason);

/* A change of path of one layer's pass (or its first choice), with what the model predicted. */
typedef struct spartan_policy_event {
    size_t step;  /* training step (SGD updates done) when it happened */
    size_t layer; /* index in the model */
    spartan_pass pass;
    spartan_path from, to;      /* from == to for the first choice */
    double sparsity;            /* the sparsity it was decided on */
    double dense_ms, sparse_ms; /* predicted times of the two paths */
    const char *reason;         /* static text */
} spartan_policy_event;

/* The recorded events, oldest first: copies up to max of them from index first into out and
 * returns how many there are in all. */
SPARTAN_API size_t spartan_policy_events(const spartan_policy *p, size_t first,
                                         spartan_policy_event *out, size_t max);

/* The adaptive policy's current prediction for a registered (layer, pass) at a sparsity:
 * dense and sparse milliseconds (INVALID_ARGUMENT when the pair is unknown). */
SPARTAN_API spartan_status spartan_policy_predict(const spartan_policy *p, size_t layer,
                                                  spartan_pass pass, double sparsity,
                                                  double *dense_ms, double *sparse_ms);

/* The dense implementation a registered (layer, pass) runs when it is dense: under the adaptive
 * policy, the faster of the own kernel and CLBlast on its shape where both were calibrated
 * (GPUs and accelerators with CLBlast built in), else SPARTAN_GEMM_BEST. */
SPARTAN_API spartan_gemm_path spartan_policy_dense_path(const spartan_policy *p, size_t layer,
                                                        spartan_pass pass);

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_POLICY_H */
