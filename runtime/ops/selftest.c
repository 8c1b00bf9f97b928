/* Validation of the kernel families on a context's device: the order they are checked in, what a
 * failure does, and the verdicts' cache (selftest.h). The checks themselves: selftest_checks.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timer.h"
#include "ops/selftest.h"

/* Part of the verdicts' keys: a change to the checks revalidates every device. */
#define SELFTEST_VERSION "selftest 12"

/* The SHA-256 of the host code that launches and checks the kernels (cmake/host_key.cmake): a
 * library built from other host code validates again, even where the kernels are the same (a
 * launcher's arguments changed with its kernel's, the verdict cached between the two builds
 * said the family failed). */
extern const char sp_host_key[];

/* The key of family f's verdict: its binary key (device, driver, its build options and source
 * are in it), the keys of the families its check runs besides its own (element-wise fills and
 * transposes, and the layer kernels; the compaction for the sparse GEMMs; the sparse
 * convolution (conv.cl) for the backward-by-input, whose stride-1 path runs it; the expected
 * results are the host's), the version of the checks and the host code's key. Each family has its
 * own: a tuned parameter or an edited kernel file revalidates only the families built anew. */
static void verdict_key(const spartan_context *ctx, sp_family f, uint8_t key[SP_SHA256_SIZE]) {
    sp_sha256_ctx h;
    sp_sha256_init(&h);
    sp_sha256_update(&h, SELFTEST_VERSION, sizeof SELFTEST_VERSION);
    sp_sha256_update(&h, sp_host_key, strlen(sp_host_key) + 1);
    const char *name = sp_family_name(f);
    sp_sha256_update(&h, name, strlen(name) + 1);
    const sp_family uses[] = {f, SP_FAMILY_eltwise, SP_FAMILY_nn,
                              f == SP_FAMILY_gemm_sparse ? SP_FAMILY_compact
                              : f == SP_FAMILY_conv_dx   ? SP_FAMILY_conv
                                                         : f};
    for (size_t i = 0; i < sizeof uses / sizeof uses[0]; i++)
        sp_sha256_update(&h, ctx->programs[uses[i]].key, SP_SHA256_SIZE);
    sp_sha256_final(&h, key);
}

/* Family f's cached verdict, one line "<name> <0|1> <why>\n", applied when its binary came from
 * the cache too and the line parses and names f: returns 1 then; anything else is ignored (and
 * the family validated again). */
static int load_verdict(spartan_context *ctx, sp_family f) {
    sp_program *prog = &ctx->programs[f];
    if (!ctx->cache.enabled || !prog->from_cache) return 0;
    uint8_t key[SP_SHA256_SIZE];
    verdict_key(ctx, f, key);
    unsigned char *data = NULL;
    size_t len = 0;
    char why[256];
    if (sp_bincache_load(&ctx->cache, key, &data, &len, why, sizeof why) != SP_CACHE_HIT) return 0;
    const char *p = (const char *)data, *end = p + len, *nl = memchr(p, '\n', len);
    const char *name = sp_family_name(f);
    const size_t nlen = strlen(name);
    int ok = -1;
    if (nl && nl + 1 == end && (size_t)(nl - p) >= nlen + 2 && memcmp(p, name, nlen) == 0 &&
        p[nlen] == ' ' && (p[nlen + 1] == '0' || p[nlen + 1] == '1'))
        ok = p[nlen + 1] == '1';
    if (ok >= 0) {
        const char *w = p + nlen + 2 + (p + nlen + 2 < nl && p[nlen + 2] == ' ');
        prog->verdict_cached = 1;
        if (ok)
            prog->state = SP_FAMILY_ENABLED;
        else
            sp_family_disable(ctx, f, "%.*s", (int)(nl - w), w);
    }
    free(data);
    return ok >= 0;
}

static void store_verdict(spartan_context *ctx, sp_family f) {
    const sp_program *p = &ctx->programs[f];
    if (!ctx->cache.enabled || !p->program) return;
    /* a reason is one line */
    char why[sizeof p->why], text[sizeof p->why + 64], label[1024];
    snprintf(why, sizeof why, "%s", p->why);
    for (char *c = why; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    int n = snprintf(text, sizeof text, "%s %d %s\n", sp_family_name(f),
                     p->state == SP_FAMILY_ENABLED, why);
    if (n < 0 || (size_t)n >= sizeof text) return;
    snprintf(label, sizeof label, "validation verdict | %s | %.256s | %.700s", sp_family_name(f),
             ctx->dev.info.name, p->options);
    uint8_t key[SP_SHA256_SIZE];
    verdict_key(ctx, f, key);
    sp_err werr = {0};
    if (sp_bincache_store(&ctx->cache, key, label, (const unsigned char *)text, (size_t)n, &werr) !=
        SPARTAN_OK)
        sp_log(SPARTAN_LOG_WARN, "kernel cache: could not save the validation verdict of %s: %s",
               sp_family_name(f), sp_err_message(&werr));
    sp_err_free(&werr);
}

/* Runs one family's check unless it is disabled already; an optional family that fails is
 * disabled. Returns 1 when the family is usable afterwards. */
static int validate(spartan_context *ctx, sp_family f, const char *needs) {
    sp_program *p = &ctx->programs[f];
    if (p->state == SP_FAMILY_DISABLED) return 0;
    if (needs) {
        sp_family_disable(ctx, f, "needs %s, which is off on this device", needs);
        return 0;
    }
    if (load_verdict(ctx, f)) return p->state == SP_FAMILY_ENABLED;
    ctx->stats.validated = 1;
    char why[sizeof p->why];
    double t0 = sp_now_ms();
    int bad = sp_selftest_family(ctx, f, why, sizeof why);
    sp_log(SPARTAN_LOG_DEBUG, "validation of %s on %s: %s in %.1f ms", sp_family_name(f),
           ctx->dev.info.name, bad ? "failed" : "passed", sp_now_ms() - t0);
    if (bad) {
        sp_family_disable(ctx, f, "failed its validation: %s", why);
        /* what a failed check leaves on the queue (or in the context's error) is not the
         * caller's concern */
        spartan_context_finish(ctx);
        sp_err_clear(&ctx->err);
        store_verdict(ctx, f);
        return 0;
    }
    p->state = SP_FAMILY_ENABLED;
    store_verdict(ctx, f);
    return 1;
}

spartan_status sp_selftest_run(spartan_context *ctx, sp_err *err) {
    double t0 = sp_now_ms();
    /* essential first: the other checks use them (transposes, fills, sums of slices); each
     * family's verdict comes from the cache when its binary and those its check runs did */
    validate(ctx, SP_FAMILY_eltwise, NULL);
    validate(ctx, SP_FAMILY_nn, NULL);
    if (sp_family_usable(ctx, SP_FAMILY_eltwise) && sp_family_usable(ctx, SP_FAMILY_nn)) {
        validate(ctx, SP_FAMILY_reference, NULL);
        validate(ctx, SP_FAMILY_gemm_dense, NULL);
        validate(ctx, SP_FAMILY_monitor, NULL);
        int compact = validate(ctx, SP_FAMILY_compact, NULL);
        validate(ctx, SP_FAMILY_gemm_sparse, compact ? NULL : "the compaction (compact.cl)");
        validate(ctx, SP_FAMILY_conv, NULL);
        validate(ctx, SP_FAMILY_conv_dx, NULL);
        validate(ctx, SP_FAMILY_conv_dw, NULL);
    }
    ctx->stats.validate_ms = sp_now_ms() - t0;
    for (int f = 0; f < SP_FAMILY_COUNT; f++) {
        const sp_program *p = &ctx->programs[f];
        if (p->state != SP_FAMILY_DISABLED) continue;
        if (sp_family_essential((sp_family)f))
            return sp_err_set(err, SPARTAN_STATUS_VALIDATION_FAILED,
                              "kernel family %s %s on %s (%s); nothing can replace it there",
                              sp_family_name((sp_family)f), p->why, ctx->dev.info.name,
                              ctx->dev.info.platform_name);
        sp_log(SPARTAN_LOG_WARN, "kernel family %s is off on %s: %s", sp_family_name((sp_family)f),
               ctx->dev.info.name, p->why);
    }
    if (!sp_family_usable(ctx, SP_FAMILY_gemm_dense) &&
        !sp_family_usable(ctx, SP_FAMILY_reference) && !spartan_have_clblast())
        return sp_err_set(err, SPARTAN_STATUS_VALIDATION_FAILED,
                          "no dense GEMM works on %s: gemm_dense %s; reference %s; and this "
                          "libspartan has no CLBlast",
                          ctx->dev.info.name, ctx->programs[SP_FAMILY_gemm_dense].why,
                          ctx->programs[SP_FAMILY_reference].why);
    if (!sp_family_usable(ctx, SP_FAMILY_monitor) && !sp_family_usable(ctx, SP_FAMILY_reference))
        return sp_err_set(err, SPARTAN_STATUS_VALIDATION_FAILED,
                          "no sparsity monitor works on %s: monitor %s; reference %s",
                          ctx->dev.info.name, ctx->programs[SP_FAMILY_monitor].why,
                          ctx->programs[SP_FAMILY_reference].why);
    return SPARTAN_OK;
}
