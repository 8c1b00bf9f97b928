/* Device tensors: shape bookkeeping, one buffer each, blocking host transfers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spartan/cl_interop.h"
#include "tensor/tensor_internal.h"

static sp_err *err_of(spartan_context *ctx) {
    return ctx ? &ctx->err : sp_thread_err();
}

spartan_status sp_invalid(spartan_context *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    spartan_status st = sp_err_vset(err_of(ctx), SPARTAN_STATUS_INVALID_ARGUMENT, fmt, ap);
    va_end(ap);
    return st;
}

spartan_status sp_ctx_cl_fail(spartan_context *ctx, cl_int rc, const char *call, const char *what) {
    spartan_status st = (rc == CL_MEM_OBJECT_ALLOCATION_FAILURE || rc == CL_OUT_OF_RESOURCES ||
                         rc == CL_INVALID_BUFFER_SIZE)
                            ? SPARTAN_STATUS_OUT_OF_DEVICE_MEMORY
                            : SPARTAN_STATUS_OPENCL_ERROR;
    return sp_err_set(err_of(ctx), st, "%s (%s) failed on %s: %s (%d)", call, what,
                      ctx ? ctx->dev.info.name : "?", sp_cl_error_name(rc), (int)rc);
}

spartan_status sp_buffer_create(spartan_context *ctx, size_t bytes, const char *what, cl_mem *out) {
    *out = NULL;
    const spartan_device_info *d = &ctx->dev.info;
    if (d->max_alloc_bytes && bytes > d->max_alloc_bytes)
        return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_DEVICE_MEMORY,
                          "%s needs %zu bytes, more than the largest allocation %s allows (%llu)",
                          what, bytes, d->name, (unsigned long long)d->max_alloc_bytes);
    cl_int rc;
    cl_mem m = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes, NULL, &rc);
    if (rc != CL_SUCCESS) return sp_ctx_cl_fail(ctx, rc, "clCreateBuffer", what);
    ctx->mem_bytes += bytes;
    if (ctx->mem_bytes > ctx->mem_peak) ctx->mem_peak = ctx->mem_bytes;
    *out = m;
    return SPARTAN_OK;
}

void sp_buffer_release(spartan_context *ctx, cl_mem m) {
    if (!m) return;
    size_t bytes = 0;
    if (clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof bytes, &bytes, NULL) == CL_SUCCESS)
        ctx->mem_bytes -= bytes <= ctx->mem_bytes ? bytes : ctx->mem_bytes;
    clReleaseMemObject(m);
}

/* "d0 x d1 x ..." into buf, for messages. */
static const char *shape_text(int rank, const size_t *dims, char *buf, size_t len) {
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < rank && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%zu", i ? " x " : "", dims[i]);
    return buf;
}

/* numel of dims, or 0 with *ok cleared on a bad rank or an overflow. */
static size_t dims_numel(int rank, const size_t *dims, int *ok) {
    *ok = dims && rank >= 1 && rank <= SPARTAN_TENSOR_MAX_RANK;
    size_t numel = 1;
    for (int i = 0; *ok && i < rank; i++) {
        if (dims[i] && numel > SIZE_MAX / sizeof(float) / dims[i]) *ok = 0;
        numel *= dims[i];
    }
    return *ok ? numel : 0;
}

spartan_status spartan_tensor_create(spartan_context *ctx, int rank, const size_t *dims,
                                     spartan_tensor **out) {
    if (out) *out = NULL;
    if (!ctx || !out || !dims)
        return sp_invalid(ctx, "spartan_tensor_create: ctx, dims and out must not be NULL");
    if (rank < 1 || rank > SPARTAN_TENSOR_MAX_RANK)
        return sp_invalid(ctx, "spartan_tensor_create: rank %d is not 1..%d", rank,
                          SPARTAN_TENSOR_MAX_RANK);
    int ok;
    size_t numel = dims_numel(rank, dims, &ok);
    char shape[128];
    if (!ok)
        return sp_invalid(ctx,
                          "spartan_tensor_create: %s floats are more bytes than a size_t counts",
                          shape_text(rank, dims, shape, sizeof shape));
    spartan_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "spartan_tensor_create");
    t->ctx = ctx;
    t->rank = rank;
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->numel = numel;
    if (numel) {
        spartan_status st = sp_buffer_create(ctx, numel * sizeof(float), "tensor", &t->mem);
        if (st != SPARTAN_OK) {
            free(t);
            return st;
        }
    }
    *out = t;
    return SPARTAN_OK;
}

spartan_status spartan_tensor_create_2d(spartan_context *ctx, size_t rows, size_t cols,
                                        spartan_tensor **out) {
    size_t dims[2] = {rows, cols};
    return spartan_tensor_create(ctx, 2, dims, out);
}

void spartan_tensor_destroy(spartan_tensor *t) {
    if (!t) return;
    sp_buffer_release(t->ctx, t->mem);
    free(t);
}

int spartan_tensor_rank(const spartan_tensor *t) {
    return t ? t->rank : 0;
}

size_t spartan_tensor_dim(const spartan_tensor *t, int i) {
    return t && i >= 0 && i < t->rank ? t->dims[i] : 0;
}

size_t spartan_tensor_numel(const spartan_tensor *t) {
    return t ? t->numel : 0;
}

size_t spartan_tensor_cols(const spartan_tensor *t) {
    return t ? t->dims[t->rank - 1] : 0;
}

size_t spartan_tensor_rows(const spartan_tensor *t) {
    if (!t) return 0;
    size_t r = 1;
    for (int i = 0; i < t->rank - 1; i++) r *= t->dims[i];
    return r;
}

cl_mem spartan_tensor_cl_mem(const spartan_tensor *t) {
    return t ? t->mem : NULL;
}

/* The copy between t and host of exactly t->numel elements; blocking unless async (a write
 * whose host memory stays valid until the queue has passed it). */
static spartan_status transfer(const spartan_tensor *t, float *host, size_t count, int write,
                               int async, const char *fn) {
    if (!t) return sp_invalid(NULL, "%s: NULL tensor", fn);
    if (count != t->numel)
        return sp_invalid(t->ctx, "%s: %zu elements, the tensor holds %zu", fn, count, t->numel);
    if (count && !host) return sp_invalid(t->ctx, "%s: NULL host buffer", fn);
    if (!count) return SPARTAN_OK;
    size_t bytes = count * sizeof(float);
    const cl_bool blocking = async ? CL_FALSE : CL_TRUE;
    if (!async) t->ctx->syncs++;
    cl_int rc =
        write ? clEnqueueWriteBuffer(t->ctx->queue, t->mem, blocking, 0, bytes, host, 0, NULL, NULL)
              : clEnqueueReadBuffer(t->ctx->queue, t->mem, blocking, 0, bytes, host, 0, NULL, NULL);
    return rc == CL_SUCCESS
               ? SPARTAN_OK
               : sp_ctx_cl_fail(t->ctx, rc, write ? "clEnqueueWriteBuffer" : "clEnqueueReadBuffer",
                                fn);
}

spartan_status spartan_tensor_write(spartan_tensor *t, const float *host, size_t count) {
    /* the write only reads host */
    return transfer(t, (float *)host, count, 1, 0, "spartan_tensor_write");
}

spartan_status spartan_tensor_read(const spartan_tensor *t, float *host, size_t count) {
    return transfer(t, host, count, 0, 0, "spartan_tensor_read");
}

spartan_status spartan_tensor_fill(spartan_tensor *t, float value) {
    if (!t) return sp_invalid(NULL, "spartan_tensor_fill: NULL tensor");
    if (!t->numel) return SPARTAN_OK;
    cl_int rc = clEnqueueFillBuffer(t->ctx->queue, t->mem, &value, sizeof value, 0,
                                    t->numel * sizeof(float), 0, NULL, NULL);
    return rc == CL_SUCCESS ? SPARTAN_OK
                            : sp_ctx_cl_fail(t->ctx, rc, "clEnqueueFillBuffer", "tensor fill");
}

size_t spartan_context_syncs(const spartan_context *ctx) {
    return ctx ? ctx->syncs : 0;
}

size_t spartan_context_launches(const spartan_context *ctx) {
    return ctx ? ctx->launches : 0;
}

void spartan_context_memory(const spartan_context *ctx, size_t *bytes, size_t *peak) {
    if (bytes) *bytes = ctx ? ctx->mem_bytes : 0;
    if (peak) *peak = ctx ? ctx->mem_peak : 0;
}

void spartan_context_reset_peak(spartan_context *ctx) {
    if (ctx) ctx->mem_peak = ctx->mem_bytes;
}

spartan_status spartan_context_finish(spartan_context *ctx) {
    if (!ctx) return sp_invalid(NULL, "spartan_context_finish: NULL context");
    ctx->syncs++;
    cl_int rc = clFinish(ctx->queue);
    return rc == CL_SUCCESS ? SPARTAN_OK : sp_ctx_cl_fail(ctx, rc, "clFinish", "finish");
}

spartan_status spartan_tensor_reshape(spartan_tensor *t, int rank, const size_t *dims) {
    if (!t) return sp_invalid(NULL, "spartan_tensor_reshape: NULL tensor");
    if (!dims) return sp_invalid(t->ctx, "spartan_tensor_reshape: NULL dims");
    if (rank < 1 || rank > SPARTAN_TENSOR_MAX_RANK)
        return sp_invalid(t->ctx, "spartan_tensor_reshape: rank %d is not 1..%d", rank,
                          SPARTAN_TENSOR_MAX_RANK);
    int ok;
    size_t numel = dims_numel(rank, dims, &ok);
    char shape[128];
    if (!ok || numel != t->numel)
        return sp_invalid(t->ctx,
                          "spartan_tensor_reshape: %s does not hold the tensor's %zu elements",
                          shape_text(rank, dims, shape, sizeof shape), t->numel);
    t->rank = rank;
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    return SPARTAN_OK;
}

spartan_status sp_tensor_view(spartan_tensor *view, const spartan_tensor *base, int rank,
                              const size_t *dims) {
    int ok;
    size_t numel = dims_numel(rank, dims, &ok);
    if (!ok || numel > base->numel)
        return sp_invalid(base->ctx, "tensor view of %zu elements over %zu", numel, base->numel);
    *view = *base;
    view->rank = rank;
    memcpy(view->dims, dims, (size_t)rank * sizeof *dims);
    view->numel = numel;
    if (!numel) view->mem = NULL;
    return SPARTAN_OK;
}

spartan_status sp_tensor_write_async(spartan_tensor *t, const float *host, size_t count) {
    return transfer(t, (float *)host, count, 1, 1, "tensor write");
}

spartan_status sp_tensor_read_async(const spartan_tensor *t, float *host, size_t count) {
    return transfer(t, host, count, 0, 1, "tensor read");
}
