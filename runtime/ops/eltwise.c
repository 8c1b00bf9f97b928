/* Element-wise operations (kernels_cl/eltwise.cl). */
#include "ops/ops_internal.h"

spartan_status spartan_relu(spartan_context *ctx, const spartan_tensor *x, spartan_tensor *y) {
    if (!ctx || !x || !y) return sp_invalid(ctx, "spartan_relu: NULL argument");
    spartan_status cst = sp_check_ctx(ctx, "spartan_relu", SP_TENSORS(x, y));
    if (cst != SPARTAN_OK) return cst;
    if (x->numel != y->numel)
        return sp_invalid(ctx, "spartan_relu: x has %zu elements, y %zu", x->numel, y->numel);
    cl_uint n;
    spartan_status st = sp_u32(ctx, x->numel, "elements", &n);
    if (st != SPARTAN_OK) return st;
    size_t vec = (size_t)sp_tuned_get(&ctx->tuned, "VEC");
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "WG");
    size_t g = (x->numel + vec - 1) / vec;
    sp_arg args[] = {SP_ARG(x->mem), SP_ARG(y->mem), SP_ARG(n)};
    return sp_launch(ctx, SP_K_eltwise_relu, 1, &g, &wg, args, 3);
}
