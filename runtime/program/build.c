/* Load-time build of every kernel family for the context's device, through the binary cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timer.h"
#include "program/context_internal.h"
#include "program/sources.h"

/* The driver's build log for the device, malloc'd ("" if it gives none). */
static char *build_log(cl_program prog, cl_device_id dev) {
    size_t n = 0;
    clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
    char *log = malloc(n + 1);
    if (!log) return NULL;
    if (n == 0 ||
        clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, n, log, NULL) != CL_SUCCESS)
        n = 0;
    log[n] = '\0';
    return log;
}

static cl_program from_binary(spartan_context *ctx, const unsigned char *bin, size_t len, char *why,
                              size_t why_len) {
    cl_int rc, bin_rc = CL_SUCCESS;
    cl_program p =
        clCreateProgramWithBinary(ctx->cl_ctx, 1, &ctx->dev.device, &len, &bin, &bin_rc, &rc);
    if (rc != CL_SUCCESS || bin_rc != CL_SUCCESS) {
        snprintf(why, why_len, "driver refused the cached binary: %s",
                 sp_cl_error_name(rc != CL_SUCCESS ? rc : bin_rc));
        if (p) clReleaseProgram(p);
        return NULL;
    }
    rc = clBuildProgram(p, 1, &ctx->dev.device, ctx->options, NULL, NULL);
    if (rc != CL_SUCCESS) {
        snprintf(why, why_len, "building the cached binary failed: %s", sp_cl_error_name(rc));
        clReleaseProgram(p);
        return NULL;
    }
    return p;
}

static spartan_status from_source(spartan_context *ctx, const char *family_file, const char *src,
                                  size_t len, cl_program *out, sp_err *err) {
    cl_int rc;
    *out = NULL;
    cl_program p = clCreateProgramWithSource(ctx->cl_ctx, 1, &src, &len, &rc);
    if (rc != CL_SUCCESS) return sp_cl_fail(err, rc, "clCreateProgramWithSource");
    rc = clBuildProgram(p, 1, &ctx->dev.device, ctx->options, NULL, NULL);
    if (rc != CL_SUCCESS) {
        char *log = build_log(p, ctx->dev.device);
        sp_err_set(err, SPARTAN_STATUS_BUILD_FAILED,
                   "kernel file %s failed to build for %s (%s) with options \"%s\": %s (%d)\n"
                   "build log:\n%s",
                   family_file, ctx->dev.info.name, ctx->dev.info.platform_name, ctx->options,
                   sp_cl_error_name(rc), (int)rc, log && *log ? log : "(the driver gave none)");
        free(log);
        clReleaseProgram(p);
        /* Allocation failures during a build are not the kernel's fault: say so. */
        if (rc != CL_BUILD_PROGRAM_FAILURE && rc != CL_INVALID_BUILD_OPTIONS)
            err->status = sp_cl_status(rc);
        return err->status;
    }
    *out = p;
    return SPARTAN_OK;
}

/* The program's binary for our single device, malloc'd. */
static spartan_status get_binary(cl_program p, unsigned char **bin, size_t *len, sp_err *err) {
    *bin = NULL;
    size_t size = 0;
    cl_int rc = clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL);
    if (rc != CL_SUCCESS) return sp_cl_fail(err, rc, "clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)");
    if (size == 0) return sp_err_set(err, SPARTAN_STATUS_UNSUPPORTED, "driver gives no binary");
    unsigned char *b = malloc(size);
    if (!b) return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "program binary");
    rc = clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof b, &b, NULL);
    if (rc != CL_SUCCESS) {
        free(b);
        return sp_cl_fail(err, rc, "clGetProgramInfo(CL_PROGRAM_BINARIES)");
    }
    *bin = b;
    *len = size;
    return SPARTAN_OK;
}

static spartan_status make_kernels(sp_program *prog, sp_err *err) {
    cl_uint n = 0;
    cl_int rc = clCreateKernelsInProgram(prog->program, 0, NULL, &n);
    if (rc != CL_SUCCESS) return sp_cl_fail(err, rc, "clCreateKernelsInProgram");
    prog->kernels = calloc(n ? n : 1, sizeof *prog->kernels);
    prog->names = calloc(n ? n : 1, sizeof *prog->names);
    if (!prog->kernels || !prog->names)
        return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "kernel table");
    rc = clCreateKernelsInProgram(prog->program, n, prog->kernels, NULL);
    if (rc != CL_SUCCESS) return sp_cl_fail(err, rc, "clCreateKernelsInProgram");
    prog->nkernels = n;
    for (cl_uint i = 0; i < n; i++) {
        size_t len = 0;
        clGetKernelInfo(prog->kernels[i], CL_KERNEL_FUNCTION_NAME, 0, NULL, &len);
        prog->names[i] = calloc(len + 1, 1);
        if (!prog->names[i])
            return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "kernel names");
        clGetKernelInfo(prog->kernels[i], CL_KERNEL_FUNCTION_NAME, len, prog->names[i], NULL);
    }
    return SPARTAN_OK;
}

static spartan_status build_family(spartan_context *ctx, size_t family, sp_program *prog,
                                   sp_err *err) {
    const sp_embedded_source *fam = &sp_cl_families[family];
    char *src;
    size_t src_len;
    spartan_status st = sp_source_assemble(family, ctx->kernel_dir, &src, &src_len, err);
    if (st != SPARTAN_OK) return st;

    uint8_t key[SP_SHA256_SIZE];
    sp_bincache_key(&ctx->dev.info, ctx->options, src, src_len, key);
    unsigned char *bin = NULL;
    size_t bin_len = 0;
    char why[1400];
    sp_cache_result r = sp_bincache_load(&ctx->cache, key, &bin, &bin_len, why, sizeof why);
    if (r == SP_CACHE_HIT) {
        prog->program = from_binary(ctx, bin, bin_len, why, sizeof why);
        free(bin);
        if (prog->program) {
            ctx->stats.cache_hits++;
        } else {
            sp_bincache_remove(&ctx->cache, key);
            r = SP_CACHE_REJECTED;
        }
    }
    if (r == SP_CACHE_REJECTED) {
        ctx->stats.cache_rejected++;
        sp_log(SPARTAN_LOG_WARN, "kernel cache entry for %s rejected and rebuilt: %s", fam->file,
               why);
    } else if (r == SP_CACHE_MISS) {
        ctx->stats.cache_misses++;
    }
    if (!prog->program) {
        st = from_source(ctx, fam->file, src, src_len, &prog->program, err);
        if (st == SPARTAN_OK && ctx->cache.enabled) {
            sp_err werr = {0};
            char label[1024];
            snprintf(label, sizeof label, "%s | %s | %s", fam->file, ctx->dev.info.name,
                     ctx->options);
            if (get_binary(prog->program, &bin, &bin_len, &werr) == SPARTAN_OK &&
                sp_bincache_store(&ctx->cache, key, label, bin, bin_len, &werr) == SPARTAN_OK)
                ctx->stats.cache_writes++;
            else
                sp_log(SPARTAN_LOG_WARN, "kernel cache: could not save %s: %s", fam->file,
                       sp_err_message(&werr));
            free(bin);
            sp_err_free(&werr);
        }
    }
    free(src);
    if (st != SPARTAN_OK) return st;
    return make_kernels(prog, err);
}

spartan_status sp_programs_build(spartan_context *ctx, sp_err *err) {
    double t0 = sp_now_ms();
    ctx->programs = calloc(sp_cl_family_count ? sp_cl_family_count : 1, sizeof *ctx->programs);
    if (!ctx->programs) return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "programs");
    for (size_t f = 0; f < sp_cl_family_count; f++) {
        sp_program *prog = &ctx->programs[f];
        prog->family = f;
        ctx->nprograms = f + 1;
        spartan_status st = build_family(ctx, f, prog, err);
        if (st != SPARTAN_OK) return st;
        ctx->stats.families++;
    }
    ctx->stats.build_ms = sp_now_ms() - t0;
    sp_log(SPARTAN_LOG_INFO,
           "kernels for %s: %u families in %.1f ms (cache: %u hit, %u miss, %u "
           "rejected, %u written)",
           ctx->dev.info.name, ctx->stats.families, ctx->stats.build_ms, ctx->stats.cache_hits,
           ctx->stats.cache_misses, ctx->stats.cache_rejected, ctx->stats.cache_writes);
    return SPARTAN_OK;
}

void sp_programs_release(spartan_context *ctx) {
    for (size_t f = 0; f < ctx->nprograms; f++) {
        sp_program *p = &ctx->programs[f];
        for (cl_uint k = 0; k < p->nkernels; k++) {
            if (p->kernels && p->kernels[k]) clReleaseKernel(p->kernels[k]);
            if (p->names) free(p->names[k]);
        }
        free(p->kernels);
        free(p->names);
        if (p->program) clReleaseProgram(p->program);
    }
    free(ctx->programs);
    ctx->programs = NULL;
    ctx->nprograms = 0;
}

cl_kernel sp_context_kernel(spartan_context *ctx, const char *name) {
    for (size_t f = 0; f < ctx->nprograms; f++) {
        sp_program *p = &ctx->programs[f];
        for (cl_uint k = 0; k < p->nkernels; k++)
            if (strcmp(p->names[k], name) == 0) return p->kernels[k];
    }
    sp_err_set(&ctx->err, SPARTAN_STATUS_INTERNAL, "no kernel named %s", name);
    return NULL;
}
