/* Device tensors: float32, row-major, rank 1 to 4, owned by one context.
 *
 *     size_t dims[2] = {64, 784};
 *     spartan_tensor *x;
 *     spartan_tensor_create(ctx, 2, dims, &x);
 *     spartan_tensor_write(x, host, 64 * 784);
 *     ...
 *     spartan_tensor_destroy(x);
 *
 * The operations (ops.h) see a tensor as a matrix: rows = product of all dimensions but the
 * last, cols = the last dimension. A tensor with a zero dimension is valid and holds nothing.
 *
 * A tensor belongs to the context it was made on: it is destroyed before that context, and is
 * given only to calls on that context, under its threading rule (device.h). The host buffers of
 * spartan_tensor_write and _read are not kept: the copies are blocking. */
#ifndef SPARTAN_TENSOR_H
#define SPARTAN_TENSOR_H

#include <stddef.h>

#include "spartan/device.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPARTAN_TENSOR_MAX_RANK 4

typedef struct spartan_tensor spartan_tensor;

/* A tensor of rank 1..4 with the given dimensions (contents undefined). Returns
 * OUT_OF_DEVICE_MEMORY when the device cannot hold it (including sizes above the device's
 * maximum allocation). */
SPARTAN_API spartan_status spartan_tensor_create(spartan_context *ctx, int rank, const size_t *dims,
                                                 spartan_tensor **out);

/* Shorthand for a rank-2 tensor of rows x cols. */
SPARTAN_API spartan_status spartan_tensor_create_2d(spartan_context *ctx, size_t rows, size_t cols,
                                                    spartan_tensor **out);

/* NULL is a no-op. */
SPARTAN_API void spartan_tensor_destroy(spartan_tensor *t);

SPARTAN_API int spartan_tensor_rank(const spartan_tensor *t);
SPARTAN_API size_t spartan_tensor_dim(const spartan_tensor *t, int i);
SPARTAN_API size_t spartan_tensor_numel(const spartan_tensor *t);
/* The matrix view used by the operations. */
SPARTAN_API size_t spartan_tensor_rows(const spartan_tensor *t);
SPARTAN_API size_t spartan_tensor_cols(const spartan_tensor *t);

/* Gives t new dimensions with the same number of elements (a view change, no copy). */
SPARTAN_API spartan_status spartan_tensor_reshape(spartan_tensor *t, int rank, const size_t *dims);

/* Blocking copies of exactly count elements (count must equal numel). */
SPARTAN_API spartan_status spartan_tensor_write(spartan_tensor *t, const float *host, size_t count);
SPARTAN_API spartan_status spartan_tensor_read(const spartan_tensor *t, float *host, size_t count);

/* Sets every element to value (on the device). */
SPARTAN_API spartan_status spartan_tensor_fill(spartan_tensor *t, float value);

/* Waits until every operation enqueued on ctx has finished; reports a device-side failure. */
SPARTAN_API spartan_status spartan_context_finish(spartan_context *ctx);

/* Blocking host-device synchronisations the library has made on ctx so far: blocking reads and
 * writes (spartan_tensor_read, spartan_sparse_nnz, ...), spartan_context_finish, and timing
 * marks on the host clock (each waits for the queue). A training step makes one
 * (spartan_step_result.syncs); the difference over a span of calls counts theirs. */
SPARTAN_API size_t spartan_context_syncs(const spartan_context *ctx);

/* Kernel launches the library has enqueued on ctx so far (a CLBlast GEMM counts as one): the
 * difference over a span of calls counts theirs (spartan_step_result.launches). */
SPARTAN_API size_t spartan_context_launches(const spartan_context *ctx);

/* Device memory the library's buffers on ctx hold now (tensors, sparse operands, scratch and
 * patch matrices), and the most they held at once since the context was made or the last
 * spartan_context_reset_peak, in bytes (NULL pointers skipped). The driver's own allocations
 * (program binaries, CLBlast's buffers) are not counted. */
SPARTAN_API void spartan_context_memory(const spartan_context *ctx, size_t *bytes, size_t *peak);
SPARTAN_API void spartan_context_reset_peak(spartan_context *ctx);

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_TENSOR_H */
