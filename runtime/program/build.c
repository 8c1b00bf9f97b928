/* Load-time build of every kernel family for the context's device, through the binary cache. */
#include <stdarg.h>
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

/* Every listed kernel of the family, from its program. A missing one is the kernel file's fault
 * (a SPARTAN_KERNEL_DIR that lacks it): the context is not created. */
static spartan_status find_kernels(spartan_context *ctx, sp_family f, sp_err *err) {
    for (int k = 0; k < SP_KERNEL_COUNT; k++) {
        if (sp_kernel_family((sp_kernel_id)k) != f) continue;
        cl_int rc;
        ctx->kernels[k] =
            clCreateKernel(ctx->programs[f].program, sp_kernel_name((sp_kernel_id)k), &rc);
        if (rc != CL_SUCCESS) {
            ctx->kernels[k] = NULL;
            return sp_err_set(err, SPARTAN_STATUS_KERNEL_SOURCE,
                              "kernel file %s.cl built for %s but has no kernel %s (%s)%s%s",
                              sp_family_name(f), ctx->dev.info.name,
                              sp_kernel_name((sp_kernel_id)k), sp_cl_error_name(rc),
                              ctx->kernel_dir ? ": sources read from " : "",
                              ctx->kernel_dir ? ctx->kernel_dir : "");
        }
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

    uint8_t *key = prog->key;
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
    return st;
}

spartan_status sp_programs_build(spartan_context *ctx, sp_err *err) {
    double t0 = sp_now_ms();
    if (sp_cl_family_count != SP_FAMILY_COUNT)
        return sp_err_set(err, SPARTAN_STATUS_INTERNAL,
                          "%zu embedded kernel families, %d in program/kernels.h",
                          sp_cl_family_count, (int)SP_FAMILY_COUNT);
    for (int f = 0; f < SP_FAMILY_COUNT; f++) {
        sp_program *prog = &ctx->programs[f];
        if (strcmp(sp_cl_families[f].family, sp_family_name((sp_family)f)) != 0)
            return sp_err_set(err, SPARTAN_STATUS_INTERNAL,
                              "embedded kernel family %d is %s, program/kernels.h says %s", f,
                              sp_cl_families[f].family, sp_family_name((sp_family)f));
        sp_err berr = {0};
        spartan_status st = build_family(ctx, (size_t)f, prog, &berr);
        if (st == SPARTAN_STATUS_BUILD_FAILED && !sp_family_essential((sp_family)f)) {
            /* an optional family that this driver cannot build: its operations fall back */
            sp_log(SPARTAN_LOG_WARN, "%s", sp_err_message(&berr));
            sp_family_disable(ctx, (sp_family)f, "did not build: %s", sp_err_message(&berr));
            sp_err_free(&berr);
            continue;
        }
        if (st == SPARTAN_OK) st = find_kernels(ctx, (sp_family)f, &berr);
        if (st != SPARTAN_OK) {
            sp_err_set(err, st, "%s", sp_err_message(&berr));
            sp_err_free(&berr);
            return st;
        }
        sp_err_free(&berr);
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
    for (int k = 0; k < SP_KERNEL_COUNT; k++) {
        if (ctx->kernels[k]) clReleaseKernel(ctx->kernels[k]);
        ctx->kernels[k] = NULL;
    }
    for (int f = 0; f < SP_FAMILY_COUNT; f++) {
        if (ctx->programs[f].program) clReleaseProgram(ctx->programs[f].program);
        ctx->programs[f].program = NULL;
    }
}

void sp_family_disable(spartan_context *ctx, sp_family f, const char *fmt, ...) {
    sp_program *p = &ctx->programs[f];
    p->state = SP_FAMILY_DISABLED;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
}

cl_kernel sp_context_kernel(spartan_context *ctx, const char *name) {
    for (int k = 0; k < SP_KERNEL_COUNT; k++)
        if (strcmp(sp_kernel_name((sp_kernel_id)k), name) == 0 && ctx->kernels[k])
            return ctx->kernels[k];
    sp_err_set(&ctx->err, SPARTAN_STATUS_INTERNAL, "no kernel named %s", name);
    return NULL;
}

/* ---- the lists of program/kernels.h ---------------------------------------------------------- */

static const struct {
    const char *name;
    int essential;
} families[SP_FAMILY_COUNT] = {
#define SP_X_(name, essential) {#name, essential},
    SP_FAMILY_LIST(SP_X_)
#undef SP_X_
};

static const struct {
    sp_family family;
    const char *name;
} kernel_table[SP_KERNEL_COUNT] = {
#define SP_X_(family, name) {SP_FAMILY_##family, #name},
    SP_KERNEL_LIST(SP_X_)
#undef SP_X_
};

sp_family sp_kernel_family(sp_kernel_id k) {
    return kernel_table[k].family;
}
const char *sp_kernel_name(sp_kernel_id k) {
    return kernel_table[k].name;
}
const char *sp_family_name(sp_family f) {
    return families[f].name;
}
int sp_family_essential(sp_family f) {
    return families[f].essential;
}
