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

static cl_program from_binary(spartan_context *ctx, const char *options, const unsigned char *bin,
                              size_t len, char *why, size_t why_len) {
    cl_int rc, bin_rc = CL_SUCCESS;
    cl_program p =
        clCreateProgramWithBinary(ctx->cl_ctx, 1, &ctx->dev.device, &len, &bin, &bin_rc, &rc);
    if (rc != CL_SUCCESS || bin_rc != CL_SUCCESS) {
        snprintf(why, why_len, "driver refused the cached binary: %s",
                 sp_cl_error_name(rc != CL_SUCCESS ? rc : bin_rc));
        if (p) clReleaseProgram(p);
        return NULL;
    }
    rc = clBuildProgram(p, 1, &ctx->dev.device, options, NULL, NULL);
    if (rc != CL_SUCCESS) {
        snprintf(why, why_len, "building the cached binary failed: %s", sp_cl_error_name(rc));
        clReleaseProgram(p);
        return NULL;
    }
    return p;
}

static spartan_status from_source(spartan_context *ctx, const char *family_file,
                                  const char *options, const char *src, size_t len, cl_program *out,
                                  sp_err *err) {
    cl_int rc;
    *out = NULL;
    cl_program p = clCreateProgramWithSource(ctx->cl_ctx, 1, &src, &len, &rc);
    if (rc != CL_SUCCESS) return sp_cl_fail(err, rc, "clCreateProgramWithSource");
    rc = clBuildProgram(p, 1, &ctx->dev.device, options, NULL, NULL);
    if (rc != CL_SUCCESS) {
        char *log = build_log(p, ctx->dev.device);
        sp_err_set(err, SPARTAN_STATUS_BUILD_FAILED,
                   "kernel file %s failed to build for %s (%s) with options \"%s\": %s (%d)\n"
                   "build log:\n%s",
                   family_file, ctx->dev.info.name, ctx->dev.info.platform_name, options,
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

/* ---- build options of one family ----------------------------------------------------------- */

static int ident_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* The next whole-word occurrence of name in [p, end), or NULL. */
static const char *find_word(const char *p, const char *end, const char *name, size_t nlen) {
    for (; p + nlen <= end; p++) {
        p = memchr(p, name[0], (size_t)(end - p));
        if (!p || p + nlen > end) return NULL;
        if (memcmp(p, name, nlen) == 0 && (p + nlen == end || !ident_char(p[nlen]))) return p;
    }
    return NULL;
}

/* The word after "#<directive>" (spaces allowed around both) on the line [p, eol), or NULL. */
static const char *directive_word(const char *p, const char *eol, const char *directive,
                                  size_t *len) {
    while (p < eol && (*p == ' ' || *p == '\t')) p++;
    if (p == eol || *p != '#') return NULL;
    p++;
    while (p < eol && (*p == ' ' || *p == '\t')) p++;
    size_t dl = strlen(directive);
    if ((size_t)(eol - p) <= dl || memcmp(p, directive, dl) != 0 || ident_char(p[dl])) return NULL;
    p += dl;
    while (p < eol && (*p == ' ' || *p == '\t')) p++;
    const char *w = p;
    while (p < eol && ident_char(*p)) p++;
    *len = (size_t)(p - w);
    return *len ? w : NULL;
}

/* 1 when the source depends on the macro name: a line other than its own default
 * ("#ifndef name" or "#define name ...") mentions it, where a mention inside "#define M ..."
 * counts only if M itself is depended on (to depth levels). Conservative: a mention in a comment
 * or a continued line counts; what it misses cannot change the program, which never reads the
 * macro. */
static int source_uses(const char *src, size_t len, const char *name, int depth) {
    const size_t nlen = strlen(name);
    const char *end = src + len;
    for (const char *p = src; (p = find_word(p, end, name, nlen)) != NULL; p += nlen) {
        const char *bol = p;
        while (bol > src && bol[-1] != '\n') bol--;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        size_t wl;
        const char *w = directive_word(bol, eol, "ifndef", &wl);
        if (w && wl == nlen && memcmp(w, name, nlen) == 0) continue;
        w = directive_word(bol, eol, "define", &wl);
        if (w && wl == nlen && memcmp(w, name, nlen) == 0) continue; /* its own definition */
        if (w && (size_t)(eol - bol) > 0 && eol[-1] != '\\') {
            char macro[128];
            if (wl >= sizeof macro || depth == 0) return 1;
            memcpy(macro, w, wl);
            macro[wl] = '\0';
            if (source_uses(src, len, macro, depth - 1)) return 1;
            continue;
        }
        return 1;
    }
    return 0;
}

/* The family's build options: those of the context ("-cl-std=... -DSP_NAME=value ...") less the
 * -D parameters its source does not depend on, so that a tuned parameter rebuilds (and
 * revalidates) only the families that read it. */
static void family_options(const spartan_context *ctx, const char *src, size_t len, char *out,
                           size_t cap) {
    size_t used = 0;
    out[0] = '\0';
    for (const char *p = ctx->options; *p;) {
        while (*p == ' ') p++;
        const char *t = p;
        while (*p && *p != ' ') p++;
        const size_t tl = (size_t)(p - t);
        if (!tl) continue;
        if (tl > 2 && memcmp(t, "-D", 2) == 0) {
            char name[128];
            const char *eq = memchr(t, '=', tl);
            const size_t nl = (size_t)((eq ? eq : t + tl) - (t + 2));
            if (nl < sizeof name) {
                memcpy(name, t + 2, nl);
                name[nl] = '\0';
                if (!source_uses(src, len, name, 8)) continue;
            }
        }
        int n = snprintf(out + used, cap - used, "%s%.*s", used ? " " : "", (int)tl, t);
        if (n > 0 && (size_t)n < cap - used) used += (size_t)n;
    }
}

static spartan_status build_family(spartan_context *ctx, size_t family, sp_program *prog,
                                   sp_err *err) {
    const sp_embedded_source *fam = &sp_cl_families[family];
    char *src;
    size_t src_len;
    spartan_status st = sp_source_assemble(family, ctx->kernel_dir, &src, &src_len, err);
    if (st != SPARTAN_OK) return st;

    family_options(ctx, src, src_len, prog->options, sizeof prog->options);
    uint8_t *key = prog->key;
    sp_bincache_key(&ctx->dev.info, prog->options, src, src_len, key);
    unsigned char *bin = NULL;
    size_t bin_len = 0;
    char why[1400];
    sp_cache_result r = sp_bincache_load(&ctx->cache, key, &bin, &bin_len, why, sizeof why);
    if (r == SP_CACHE_HIT) {
        prog->program = from_binary(ctx, prog->options, bin, bin_len, why, sizeof why);
        free(bin);
        if (prog->program) {
            prog->from_cache = 1;
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
        st = from_source(ctx, fam->file, prog->options, src, src_len, &prog->program, err);
        if (st == SPARTAN_OK && ctx->cache.enabled) {
            sp_err werr = {0};
            char label[1024];
            snprintf(label, sizeof label, "%s | %s | %s", fam->file, ctx->dev.info.name,
                     prog->options);
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
