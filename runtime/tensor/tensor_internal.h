/* Tensors as the layers above see them, and the one place that turns OpenCL failures on a
 * context's queue into statuses. */
#ifndef SP_TENSOR_INTERNAL_H
#define SP_TENSOR_INTERNAL_H

#include "program/context_internal.h"
#include "spartan/tensor.h"

struct spartan_tensor {
    spartan_context *ctx;
    int rank;
    size_t dims[SPARTAN_TENSOR_MAX_RANK];
    size_t numel;
    cl_mem mem; /* NULL when numel == 0 */
};

/* A device buffer of bytes (> 0) in ctx; OUT_OF_DEVICE_MEMORY with a message naming what. */
spartan_status sp_buffer_create(spartan_context *ctx, size_t bytes, const char *what, cl_mem *out);
/* Releases a buffer sp_buffer_create made (NULL: nothing), taking its bytes off the count of
 * spartan_context_memory. */
void sp_buffer_release(spartan_context *ctx, cl_mem m);

/* Records a failed OpenCL call (rc != CL_SUCCESS) on ctx: OUT_OF_DEVICE_MEMORY for the
 * allocation failures, OPENCL_ERROR otherwise, with the call's name. Returns the status. */
spartan_status sp_ctx_cl_fail(spartan_context *ctx, cl_int rc, const char *call, const char *what);

/* Fails with INVALID_ARGUMENT on ctx (or the thread when ctx is NULL). */
spartan_status sp_invalid(spartan_context *ctx, const char *fmt, ...) SP_PRINTF(2, 3);

/* A view of the first elements of base with other dimensions (numel <= base's), sharing its
 * buffer: for a smaller last batch, or a 4-D activation seen as a matrix. The view is a plain
 * struct owned by the caller; it is never destroyed and is valid while base lives. */
spartan_status sp_tensor_view(spartan_tensor *view, const spartan_tensor *base, int rank,
                              const size_t *dims);

/* Enqueues a non-blocking copy of count floats (= numel) from host into t; host must stay
 * unchanged until the queue has passed it (the next blocking call). */
spartan_status sp_tensor_write_async(spartan_tensor *t, const float *host, size_t count);
/* The reverse: a non-blocking copy of t into host, complete once the queue has passed it. */
spartan_status sp_tensor_read_async(const spartan_tensor *t, float *host, size_t count);

#endif /* SP_TENSOR_INTERNAL_H */
