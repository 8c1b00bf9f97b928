/* The context as the layers below program/ see it: device, queue, tuned parameters and the
 * built kernels. One thread at a time may use a context (kernels carry their arguments). */
#ifndef SP_PROGRAM_CONTEXT_INTERNAL_H
#define SP_PROGRAM_CONTEXT_INTERNAL_H

#include "device/device_internal.h"
#include "program/bincache.h"
#include "program/kernels.h"
#include "program/timing.h"
#include "spartan/device.h"

/* What became of a kernel family on this context's device. */
typedef enum sp_family_state {
    SP_FAMILY_UNCHECKED = 0, /* built, validation not run yet (while the context is made) */
    SP_FAMILY_ENABLED,       /* built and validated: its operations run its kernels */
    SP_FAMILY_DISABLED       /* did not build or validate: its operations take a fallback */
} sp_family_state;

typedef struct sp_program {
    cl_program program;          /* NULL when the family did not build */
    char options[512];           /* its build options: the context's, less the -D it never reads */
    uint8_t key[SP_SHA256_SIZE]; /* its binary cache key (the verdicts' key derives from it) */
    sp_family_state state;
    int from_cache;     /* the binary came from the cache (not built now) */
    int verdict_cached; /* the state came from the cache, not a run */
    char why[512];      /* why it is disabled ("" when enabled) */
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
    sp_program programs[SP_FAMILY_COUNT];
    cl_kernel kernels[SP_KERNEL_COUNT]; /* NULL for the kernels of a family that did not build */
    spartan_build_stats stats;
    sp_err err;
    /* Blocking host-device synchronisations so far (spartan_context_syncs). */
    size_t syncs;
    /* Kernel launches so far (spartan_context_launches; a CLBlast call counts as one). */
    size_t launches;
    /* Device bytes held by the library's buffers (sp_buffer_create until sp_buffer_release),
     * and the most held at once since creation or the last spartan_context_reset_peak. */
    size_t mem_bytes, mem_peak;
    /* State of higher layers (ops/: scratch buffers), freed by the context's destroy. */
    void *ext;
    void (*ext_free)(void *ext);
};

/* Makes a context on one device: OpenCL context and queue, tuned parameters, every kernel family
 * built (or loaded from the cache) and its kernels looked up. An optional family that does not
 * build is left disabled, with the reason; an essential one, or a family that lacks one of its
 * kernels, fails the creation. Nothing is validated yet (families stay UNCHECKED). */
spartan_status sp_context_open(const spartan_context_opts *opts, const sp_device *dev,
                               spartan_context **out, sp_err *err);

/* Builds (or loads from the cache) every kernel family for ctx's device (build.c). */
spartan_status sp_programs_build(spartan_context *ctx, sp_err *err);
void sp_programs_release(spartan_context *ctx);

/* The kernel of that name, owned by the context; NULL with ctx's error set if there is none
 * (tests: the runtime launches by id). */
cl_kernel sp_context_kernel(spartan_context *ctx, const char *name);

/* Whether a family's kernels may run: validated, or being validated. */
static inline int sp_family_usable(const spartan_context *ctx, sp_family f) {
    return ctx->programs[f].state != SP_FAMILY_DISABLED;
}

/* Disables a family on ctx with the reason (printf-style). */
void sp_family_disable(spartan_context *ctx, sp_family f, const char *fmt, ...) SP_PRINTF(3, 4);

#endif /* SP_PROGRAM_CONTEXT_INTERNAL_H */
