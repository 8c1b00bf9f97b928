/* Kernel launches and the scratch buffers the operations share. */
#include <stdlib.h>

#include "ops/ops_internal.h"

typedef struct ops_state {
    cl_mem scratch[SP_SCRATCH_COUNT];
    size_t scratch_bytes[SP_SCRATCH_COUNT];
    cl_mem zero;
    cl_mem lut;
    sp_clblast_check clblast;
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

sp_clblast_check *sp_clblast_check_of(spartan_context *ctx) {
    ops_state *s = state(ctx);
    return s ? &s->clblast : NULL;
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
        sp_buffer_release(ctx, s->scratch[slot]);
        s->scratch[slot] = m;
        s->scratch_bytes[slot] = bytes;
    }
    *out = s->scratch[slot];
    return SPARTAN_OK;
}

/* The split reductions' scratch: at most this much, and at most a quarter of the device's
 * largest allocation; the slices summed at once are at most SPLIT_GROUP (eltwise_sum_parts
 * walks them in one loop). */
#define SPLIT_SCRATCH_MAX ((size_t)64 << 20)
#define SPLIT_GROUP       64

spartan_status sp_split_reduce(spartan_context *ctx, size_t parts, size_t n, cl_mem out,
                               float alpha, float beta, sp_part_fn fn, void *arg) {
    if (parts <= 1 || n == 0) return fn(ctx, arg, 0, 1, out, alpha, beta);
    size_t cap = SPLIT_SCRATCH_MAX;
    uint64_t quarter = ctx->dev.info.max_alloc_bytes / 4;
    if (quarter && quarter < cap) cap = (size_t)quarter;
    size_t group = cap / (n * sizeof(float));
    if (group > SPLIT_GROUP) group = SPLIT_GROUP;
    if (group > parts) group = parts;
    spartan_status st = SPARTAN_OK;
    if (group < 2) { /* no room for two slices: each slice adds to out in turn */
        for (size_t p = 0; p < parts && st == SPARTAN_OK; p++)
            st = fn(ctx, arg, p, 1, out, alpha, p ? 1.0f : beta);
        return st;
    }
    cl_mem scratch;
    st = sp_scratch(ctx, SP_SCRATCH_SPLIT, group * n * sizeof(float), &scratch);
    cl_uint un;
    if (st == SPARTAN_OK) st = sp_u32(ctx, n, "reduction size", &un);
    for (size_t p0 = 0; p0 < parts && st == SPARTAN_OK; p0 += group) {
        cl_uint np = (cl_uint)(parts - p0 < group ? parts - p0 : group);
        float b = p0 ? 1.0f : beta;
        st = fn(ctx, arg, p0, np, scratch, 1.0f, 0.0f);
        sp_arg a[] = {SP_ARG(un),    SP_ARG(np), SP_ARG(scratch),
                      SP_ARG(alpha), SP_ARG(b),  SP_ARG(out)};
        if (st == SPARTAN_OK) st = sp_launch_1d(ctx, SP_K_eltwise_sum_parts, n, a, 6);
    }
    return st;
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

spartan_status sp_check_ctx(spartan_context *ctx, const char *fn, const spartan_tensor *const *t,
                            size_t n) {
    for (size_t i = 0; i < n; i++)
        if (t[i] && t[i]->ctx != ctx)
            return sp_invalid(ctx, "%s: tensor argument %zu belongs to another context", fn, i + 1);
    return SPARTAN_OK;
}

spartan_status sp_check_apart(spartan_context *ctx, const char *fn, const char *out_name,
                              const spartan_tensor *out, const char *in_name,
                              const spartan_tensor *in) {
    if (!out || !in || !out->mem || out->mem != in->mem) return SPARTAN_OK;
    return sp_invalid(ctx,
                      "%s: %s shares its buffer with %s, which the operation reads while it "
                      "writes %s: pass a tensor of its own",
                      fn, out_name, in_name, out_name);
}

spartan_status sp_u32(spartan_context *ctx, size_t v, const char *what, cl_uint *out) {
    if (v > 0xffffffffu)
        return sp_invalid(ctx, "%s = %zu is above the kernels' 32-bit index range", what, v);
    *out = (cl_uint)v;
    return SPARTAN_OK;
}

spartan_status sp_launch(spartan_context *ctx, sp_kernel_id id, cl_uint dims, const size_t *global,
                         const size_t *local, const sp_arg *args, cl_uint nargs) {
    size_t g[3];
    for (cl_uint d = 0; d < dims; d++) {
        if (global[d] == 0) return SPARTAN_OK;
        g[d] = local ? (global[d] + local[d] - 1) / local[d] * local[d] : global[d];
    }
    const char *name = sp_kernel_name(id);
    cl_kernel k = ctx->kernels[id];
    if (!k || !sp_family_usable(ctx, sp_kernel_family(id)))
        return sp_err_set(&ctx->err, SPARTAN_STATUS_INTERNAL,
                          "kernel %s launched although its family %s is off on %s", name,
                          sp_family_name(sp_kernel_family(id)), ctx->dev.info.name);
    for (cl_uint i = 0; i < nargs; i++) {
        cl_int rc = clSetKernelArg(k, i, args[i].size, args[i].ptr);
        if (rc != CL_SUCCESS) return sp_ctx_cl_fail(ctx, rc, "clSetKernelArg", name);
    }
    cl_int rc = clEnqueueNDRangeKernel(ctx->queue, k, dims, NULL, g, local, 0, NULL, NULL);
    if (rc != CL_SUCCESS) return sp_ctx_cl_fail(ctx, rc, "clEnqueueNDRangeKernel", name);
    ctx->launches++;
    return SPARTAN_OK;
}

spartan_status sp_launch_1d(spartan_context *ctx, sp_kernel_id k, size_t n, const sp_arg *args,
                            cl_uint nargs) {
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "WG");
    return sp_launch(ctx, k, 1, &n, &wg, args, nargs);
}
