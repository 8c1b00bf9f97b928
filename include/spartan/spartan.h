/* Spartan: a vendor-neutral OpenCL runtime that makes DNN training faster by exploiting
 * sparsity. This umbrella header includes the whole public API.
 *
 *     #include <spartan/spartan.h>
 *
 *     spartan_context *ctx;
 *     spartan_status st = spartan_context_create(NULL, &ctx);   // device from SPARTAN_DEVICE
 *     if (st != SPARTAN_OK) {
 *         fprintf(stderr, "spartan: %s\n", spartan_last_error(NULL));
 *         return 1;
 *     }
 *     ...
 *     spartan_context_destroy(ctx);
 */
#ifndef SPARTAN_SPARTAN_H
#define SPARTAN_SPARTAN_H

#include "spartan/version.h"
#include "spartan/status.h"
#include "spartan/device.h"
#include "spartan/tensor.h"
#include "spartan/ops.h"
#include "spartan/policy.h"
#include "spartan/nn.h"
#include "spartan/io.h"
#include "spartan/checkpoint.h"

#endif /* SPARTAN_SPARTAN_H */
