/* A monitor's non-zero count read without blocking (ops_internal.h): the training step reads
 * every count it sampled after its one blocking read. */
#include "ops/ops_internal.h"

size_t sp_sparse_partial_count(const spartan_sparse *s) {
    return s ? s->partial_count : 0;
}

spartan_status sp_sparse_nnz_enqueue(spartan_sparse *s, unsigned *host) {
    if (!s || !host) return sp_invalid(s ? s->ctx : NULL, "sp_sparse_nnz_enqueue: NULL argument");
    if (!s->filled)
        return sp_invalid(s->ctx, "sp_sparse_nnz_enqueue: the spartan_sparse has not been filled");
    if (s->ntiles == 0) return SPARTAN_OK;
    cl_int rc = clEnqueueReadBuffer(s->ctx->queue, s->partials, CL_FALSE, 0,
                                    s->partial_count * sizeof(cl_uint), host, 0, NULL, NULL);
    return rc == CL_SUCCESS ? SPARTAN_OK
                            : sp_ctx_cl_fail(s->ctx, rc, "clEnqueueReadBuffer", "partial sums");
}

size_t sp_sparse_nnz_sum(const spartan_sparse *s, const unsigned *host) {
    size_t nnz = 0;
    for (size_t i = 0; s && s->ntiles && i < s->partial_count; i++) nnz += host[i];
    return nnz;
}
