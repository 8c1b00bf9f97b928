/* The policy (include/spartan/policy.h): fixed modes for now; the adaptive cost model will live
 * here too, so that the layers ask one place. */
#include <stdlib.h>
#include <string.h>

#include "spartan/policy.h"
#include "tensor/tensor_internal.h"

struct spartan_policy {
    spartan_context *ctx;
    spartan_policy_mode mode;
};

static const char *const mode_names[] = {"dense", "sparse", "adaptive"};

spartan_status spartan_policy_mode_parse(const char *text, spartan_policy_mode *out) {
    for (int i = 0; text && out && i < 3; i++) {
        if (strcmp(text, mode_names[i]) == 0) {
            *out = (spartan_policy_mode)i;
            return SPARTAN_OK;
        }
    }
    return sp_invalid(NULL, "policy \"%s\" is not one of dense, sparse, adaptive",
                      text ? text : "(null)");
}

const char *spartan_policy_mode_name(spartan_policy_mode mode) {
    return (unsigned)mode < 3 ? mode_names[mode] : "?";
}

const char *spartan_pass_name(spartan_pass pass) {
    static const char *const names[] = {"fwd", "bwd_input", "bwd_weight"};
    return (unsigned)pass < SPARTAN_PASS_COUNT ? names[pass] : "?";
}

const char *spartan_path_name(spartan_path path) {
    return path == SPARTAN_PATH_SPARSE ? "sparse" : "dense";
}

spartan_status spartan_policy_create(spartan_context *ctx, spartan_policy_mode mode,
                                     spartan_policy **out) {
    if (out) *out = NULL;
    if (!ctx || !out) return sp_invalid(ctx, "spartan_policy_create: NULL argument");
    if (mode == SPARTAN_POLICY_ADAPTIVE)
        return sp_err_set(&ctx->err, SPARTAN_STATUS_UNSUPPORTED,
                          "the adaptive policy is not built yet: use dense or sparse");
    if (mode != SPARTAN_POLICY_DENSE && mode != SPARTAN_POLICY_SPARSE)
        return sp_invalid(ctx, "spartan_policy_create: unknown mode %d", (int)mode);
    spartan_policy *p = calloc(1, sizeof *p);
    if (!p) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "policy");
    p->ctx = ctx;
    p->mode = mode;
    *out = p;
    return SPARTAN_OK;
}

void spartan_policy_destroy(spartan_policy *p) {
    free(p);
}

spartan_policy_mode spartan_policy_get_mode(const spartan_policy *p) {
    return p ? p->mode : SPARTAN_POLICY_DENSE;
}

spartan_path spartan_policy_choose(spartan_policy *p, const spartan_policy_query *q,
                                   const char **reason) {
    const char *why = "policy dense";
    spartan_path path = SPARTAN_PATH_DENSE;
    if (p && q && p->mode == SPARTAN_POLICY_SPARSE) {
        if (q->sparse_allowed) {
            path = SPARTAN_PATH_SPARSE;
            why = "policy sparse";
        } else {
            why = "no sparse form for this pass";
        }
    }
    if (reason) *reason = why;
    return path;
}
