/* Kernel launches and the scratch buffers the operations share. */
#include <stdlib.h>

#include "ops/ops_internal.h"

typedef struct ops_state {
    cl_mem scratch[SP_SCRATCH_COUNT];
    size_t scratch_bytes[SP_SCRATCH_COUNT];
    cl_mem zero;
    cl_mem lut;
} ops_state;

static void state_free(void *p) {
    ops_state *s = p;
    if (!s) return;
    for (int i = 0; i < SP_SCRATCH_COUNT; i++)
        if (s->scratch[i]) clReleaseMemObject(s->scratch[i]);
    if (s->zero) clReleaseMemObject(s->zero);
    if (s->lut) clReleaseMemObject(s->lut);
    free(s);
}

static ops_state *state(spartan_context *ctx) {
    if (!ctx->ext) {
        ctx->ext = calloc(1, sizeof(ops_state));
        if (ctx->ext) ctx->ext_free = state_free;
    }
    return ctx->ext;
}

spartan_status sp_scratch(spartan_context *ctx, int slot, size_t bytes, cl_mem *out) {
    ops_state *s = state(ctx);
    if (!s) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "scratch state");
    if (s->scratch_bytes[slot] < bytes) {
        /* the new buffer first, then the old one released: Oclgrind's uninitialised-memory
         * check otherwise confuses the two (its false reports on reused addresses) */
        cl_mem m;
        spartan_status st = sp_buffer_create(ctx, bytes, "scratch buffer", &m);
        if (st != SPARTAN_OK) return st;
        if (s->scratch[slot]) clReleaseMemObject(s->scratch[slot]);
        s->scratch[slot] = m;
        s->scratch_bytes[slot] = bytes;
    }
    *out = s->scratch[slot];
    return SPARTAN_OK;
}

spartan_status sp_zero_uint(spartan_context *ctx, cl_mem *out) {
    ops_state *s = state(ctx);
    if (!s) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "scratch state");
    if (!s->zero) {
        cl_uint zero = 0;
        cl_int rc;
        s->zero = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof zero,
                                 &zero, &rc);
        if (rc != CL_SUCCESS) {
            s->zero = NULL;
            return sp_ctx_cl_fail(ctx, rc, "clCreateBuffer", "zero");
        }
    }
    *out = s->zero;
    return SPARTAN_OK;
}

spartan_status sp_compact_lut(spartan_context *ctx, cl_mem *out) {
    ops_state *s = state(ctx);
    if (!s) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "scratch state");
    if (!s->lut) {
        cl_uint table[256][8];
        for (unsigned m = 0; m < 256; m++) {
            unsigned n = 0;
            for (unsigned l = 0; l < 8; l++)
                if (m & (1u << l)) table[m][n++] = (cl_uint)l;
            while (n < 8) table[m][n++] = 0;
        }
        cl_int rc;
        s->lut = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof table,
                                table, &rc);
        if (rc != CL_SUCCESS) {
            s->lut = NULL;
            return sp_ctx_cl_fail(ctx, rc, "clCreateBuffer", "compaction table");
        }
    }
    *out = s->lut;
    return SPARTAN_OK;
}

spartan_status sp_u32(spartan_context *ctx, size_t v, const char *what, cl_uint *out) {
    if (v > 0xffffffffu)
        return sp_invalid(ctx, "%s = %zu is above the kernels' 32-bit index range", what, v);
    *out = (cl_uint)v;
    return SPARTAN_OK;
}

spartan_status sp_launch(spartan_context *ctx, const char *name, cl_uint dims, const size_t *global,
                         const size_t *local, const sp_arg *args, cl_uint nargs) {
    size_t g[3];
    for (cl_uint d = 0; d < dims; d++) {
        if (global[d] == 0) return SPARTAN_OK;
        g[d] = local ? (global[d] + local[d] - 1) / local[d] * local[d] : global[d];
    }
    cl_kernel k = sp_context_kernel(ctx, name);
    if (!k) return ctx->err.status;
    for (cl_uint i = 0; i < nargs; i++) {
        cl_int rc = clSetKernelArg(k, i, args[i].size, args[i].ptr);
        if (rc != CL_SUCCESS) return sp_ctx_cl_fail(ctx, rc, "clSetKernelArg", name);
    }
    cl_int rc = clEnqueueNDRangeKernel(ctx->queue, k, dims, NULL, g, local, 0, NULL, NULL);
    if (rc != CL_SUCCESS) return sp_ctx_cl_fail(ctx, rc, "clEnqueueNDRangeKernel", name);
    return SPARTAN_OK;
}

spartan_status sp_launch_1d(spartan_context *ctx, const char *name, size_t n, const sp_arg *args,
                            cl_uint nargs) {
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "WG");
    return sp_launch(ctx, name, 1, &n, &wg, args, nargs);
}
