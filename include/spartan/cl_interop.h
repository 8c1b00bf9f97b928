/* The raw OpenCL handles behind a context, for applications that enqueue their own work on the
 * same device and queue. The handles stay owned by the context: retain them to keep them longer. */
#ifndef SPARTAN_CL_INTEROP_H
#define SPARTAN_CL_INTEROP_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "spartan/device.h"
#include "spartan/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Any of the out pointers may be NULL. */
SPARTAN_API spartan_status spartan_context_cl_handles(const spartan_context *ctx,
                                                      cl_platform_id *platform,
                                                      cl_device_id *device, cl_context *context,
                                                      cl_command_queue *queue);

/* The buffer behind a tensor (NULL for a tensor with no elements); owned by the tensor. */
SPARTAN_API cl_mem spartan_tensor_cl_mem(const spartan_tensor *t);

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_CL_INTEROP_H */
