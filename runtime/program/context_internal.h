/* The context as the layers below program/ see it: device, queue, tuned parameters and the
 * built kernels. One thread at a time may use a context (kernels carry their arguments). */
#ifndef SP_PROGRAM_CONTEXT_INTERNAL_H
#define SP_PROGRAM_CONTEXT_INTERNAL_H

#include "device/device_internal.h"
#include "program/bincache.h"
#include "program/timing.h"
#include "spartan/device.h"

typedef struct sp_program {
    size_t family; /* index into sp_cl_families */
    cl_program program;
    cl_uint nkernels;
    cl_kernel *kernels;
    char **names;
} sp_program;

struct spartan_context {
    sp_device dev;
    cl_context cl_ctx;
    cl_command_queue queue;
    sp_timing timing; /* how device work is timed (timing.c) */
    sp_tuned tuned;
    char options[512]; /* full build options: -cl-std and the tuned -D options */
    sp_bincache cache;
    char *kernel_dir; /* NULL: embedded sources */
    sp_program *programs;
    size_t nprograms;
    spartan_build_stats stats;
    sp_err err;
    /* State of higher layers (ops/: scratch buffers), freed by the context's destroy. */
    void *ext;
    void (*ext_free)(void *ext);
};

/* Builds (or loads from the cache) every kernel family for ctx's device (build.c). */
spartan_status sp_programs_build(spartan_context *ctx, sp_err *err);
void sp_programs_release(spartan_context *ctx);

/* The kernel of that name, owned by the context; NULL with ctx's error set if there is none. */
cl_kernel sp_context_kernel(spartan_context *ctx, const char *name);

#endif /* SP_PROGRAM_CONTEXT_INTERNAL_H */
