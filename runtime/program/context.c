/* spartan_context: device selection, OpenCL context and queue, tuned parameters, and the
 * load-time build of every kernel family. It lives in program/ because it is the first layer
 * where all of that is available. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "program/context_internal.h"
#include "spartan/cl_interop.h"

spartan_context_opts spartan_context_opts_default(void) {
    spartan_context_opts o;
    memset(&o, 0, sizeof o);
    return o;
}

static spartan_status open_device(spartan_context *ctx, const sp_device *dev, sp_err *err) {
    ctx->dev = *dev;
    const spartan_device_info *d = &ctx->dev.info;
    sp_log(SPARTAN_LOG_INFO, "device %u:%u %s (%s, %s)", d->platform_index, d->device_index,
           d->name, d->platform_name, d->driver_version);
    if (!d->available)
        return sp_err_set(err, SPARTAN_STATUS_CONTEXT_FAILED,
                          "device %u:%u %s reports itself unavailable (in use, or its driver is "
                          "not loaded); pick another with SPARTAN_DEVICE",
                          d->platform_index, d->device_index, d->name);
    if (!d->compiler_available)
        return sp_err_set(err, SPARTAN_STATUS_UNSUPPORTED,
                          "device %s has no OpenCL C compiler: Spartan builds its kernels at load "
                          "time and needs one",
                          d->name);
    if (d->opencl_c_major == 1 && d->opencl_c_minor < 2)
        return sp_err_set(err, SPARTAN_STATUS_UNSUPPORTED,
                          "device %s supports %s; Spartan's kernels need OpenCL C 1.2", d->name,
                          d->opencl_c_version);
    cl_int rc;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->dev.platform,
                                     0};
    ctx->cl_ctx = clCreateContext(props, 1, &ctx->dev.device, NULL, NULL, &rc);
    if (rc != CL_SUCCESS) {
        ctx->cl_ctx = NULL;
        return sp_err_set(err, SPARTAN_STATUS_CONTEXT_FAILED,
                          "clCreateContext on %s (%s) failed: %s (%d). The driver is installed but "
                          "the device cannot be used: check that its kernel module is loaded and "
                          "the device nodes are accessible, or pick another device with "
                          "SPARTAN_DEVICE",
                          d->name, d->platform_name, sp_cl_error_name(rc), (int)rc);
    }
    ctx->queue = clCreateCommandQueue(ctx->cl_ctx, ctx->dev.device, CL_QUEUE_PROFILING_ENABLE, &rc);
    if (rc != CL_SUCCESS) {
        ctx->queue = NULL;
        return sp_err_set(err, SPARTAN_STATUS_CONTEXT_FAILED,
                          "clCreateCommandQueue on %s failed: %s (%d)", d->name,
                          sp_cl_error_name(rc), (int)rc);
    }
    return SPARTAN_OK;
}

static spartan_status make_options(spartan_context *ctx, sp_err *err) {
    char tuned[400];
    if (sp_tuned_options(&ctx->tuned, tuned, sizeof tuned) != SPARTAN_OK)
        return sp_err_set(err, SPARTAN_STATUS_INTERNAL, "tuned build options too long");
    snprintf(ctx->options, sizeof ctx->options, "-cl-std=CL1.2 %s", tuned);
    snprintf(ctx->stats.build_options, sizeof ctx->stats.build_options, "%s", ctx->options);
    return SPARTAN_OK;
}

spartan_status sp_context_open(const spartan_context_opts *opts, const sp_device *dev,
                               spartan_context **out, sp_err *err) {
    *out = NULL;
    spartan_context_opts o = opts ? *opts : spartan_context_opts_default();
    const char *kdir = o.kernel_dir ? o.kernel_dir : getenv("SPARTAN_KERNEL_DIR");
    spartan_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "context");
    spartan_status st = SPARTAN_OK;
    if (kdir && *kdir) {
        ctx->kernel_dir = strdup(kdir);
        if (!ctx->kernel_dir) st = sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "context");
    }
    if (st == SPARTAN_OK) st = open_device(ctx, dev, err);
    if (st == SPARTAN_OK) sp_timing_detect(ctx, o.timing);
    sp_tuning_mode mode = SP_TUNING_ON;
    if (st == SPARTAN_OK) st = sp_tuning_mode_parse(o.tuning, &mode, err);
    if (st == SPARTAN_OK) {
        sp_bincache_open(&ctx->cache, o.cache_dir);
        ctx->stats.cache_enabled = ctx->cache.enabled;
        snprintf(ctx->stats.cache_dir, sizeof ctx->stats.cache_dir, "%s",
                 ctx->cache.enabled ? ctx->cache.dir : "");
        /* the user's tuning database lives in the cache directory */
        st =
            sp_tuning_lookup(&ctx->dev.info, mode, ctx->cache.enabled ? ctx->cache.dir : NULL,
                             o.tune, &ctx->tuned, ctx->stats.tuning, sizeof ctx->stats.tuning, err);
    }
    if (st == SPARTAN_OK) st = make_options(ctx, err);
    if (st == SPARTAN_OK) st = sp_programs_build(ctx, err);
    if (st != SPARTAN_OK) {
        spartan_context_destroy(ctx);
        return st;
    }
    *out = ctx;
    return SPARTAN_OK;
}

void spartan_context_destroy(spartan_context *ctx) {
    if (!ctx) return;
    if (ctx->queue) clFinish(ctx->queue);
    if (ctx->ext_free) ctx->ext_free(ctx->ext);
    sp_programs_release(ctx);
    if (ctx->queue) clReleaseCommandQueue(ctx->queue);
    if (ctx->cl_ctx) clReleaseContext(ctx->cl_ctx);
    free(ctx->kernel_dir);
    sp_err_free(&ctx->err);
    free(ctx);
}

const spartan_device_info *spartan_context_device(const spartan_context *ctx) {
    return ctx ? &ctx->dev.info : NULL;
}

spartan_status spartan_context_build_stats(const spartan_context *ctx, spartan_build_stats *out) {
    if (!ctx || !out)
        return sp_err_set(sp_thread_err(), SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_context_build_stats: ctx and out must not be NULL");
    *out = ctx->stats;
    return SPARTAN_OK;
}

/* What the operations of a disabled family use instead (program/kernels.h). */
static const char *fallback_of(sp_family f) {
    switch (f) {
    case SP_FAMILY_gemm_dense:
        return "CLBlast when built in, else the reference GEMM (reference.cl)";
    case SP_FAMILY_monitor:
        return "the reference count (reference.cl): ReLU and counts in two passes";
    case SP_FAMILY_compact:
    case SP_FAMILY_gemm_sparse:
        return "the dense GEMMs: the sparse operations compute densely, the policy runs dense";
    case SP_FAMILY_conv:
        return "im2col into a scratch buffer, then the dense GEMM";
    case SP_FAMILY_conv_dx:
        return "dy . W^T by the dense GEMM into a scratch buffer, then col2im";
    case SP_FAMILY_conv_dw:
        return "im2col into a scratch buffer, then the dense GEMM of its transpose and dY";
    case SP_FAMILY_reference:
        return "none needed: it is itself a fallback";
    default:
        return "none: the context is not created";
    }
}

spartan_status spartan_context_family(const spartan_context *ctx, unsigned i,
                                      spartan_family_status *out) {
    if (!ctx || !out || i >= SP_FAMILY_COUNT) return SPARTAN_STATUS_INVALID_ARGUMENT;
    const sp_program *p = &ctx->programs[i];
    out->name = sp_family_name((sp_family)i);
    out->essential = sp_family_essential((sp_family)i);
    out->enabled = p->state == SP_FAMILY_ENABLED;
    out->verdict_cached = p->verdict_cached;
    out->why = p->why;
    out->fallback = fallback_of((sp_family)i);
    out->options = p->options;
    return SPARTAN_OK;
}

long spartan_context_tuned(const spartan_context *ctx, const char *name) {
    if (!ctx || !name) return -1;
    return sp_tuned_get(&ctx->tuned, name);
}

spartan_status spartan_context_tuned_at(const spartan_context *ctx, unsigned i, const char **name,
                                        long *value) {
    if (!ctx || !name || !value || i >= ctx->tuned.count) return SPARTAN_STATUS_INVALID_ARGUMENT;
    *name = ctx->tuned.names[i];
    *value = ctx->tuned.values[i];
    return SPARTAN_OK;
}

const char *spartan_last_error(const spartan_context *ctx) {
    return sp_err_message(ctx ? &ctx->err : sp_thread_err());
}

spartan_status spartan_context_cl_handles(const spartan_context *ctx, cl_platform_id *platform,
                                          cl_device_id *device, cl_context *context,
                                          cl_command_queue *queue) {
    if (!ctx)
        return sp_err_set(sp_thread_err(), SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_context_cl_handles: ctx must not be NULL");
    if (platform) *platform = ctx->dev.platform;
    if (device) *device = ctx->dev.device;
    if (context) *context = ctx->cl_ctx;
    if (queue) *queue = ctx->queue;
    return SPARTAN_OK;
}

spartan_status spartan_cache_dir(const spartan_context_opts *opts, char *buf, size_t len) {
    if (!buf || len == 0)
        return sp_err_set(sp_thread_err(), SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_cache_dir: buf must not be NULL");
    if (!sp_cache_dir_resolve(opts ? opts->cache_dir : NULL, buf, len)) {
        buf[0] = '\0';
        return SPARTAN_STATUS_UNSUPPORTED;
    }
    return SPARTAN_OK;
}
