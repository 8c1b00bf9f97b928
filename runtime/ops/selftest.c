/* Validation of the kernel families on a context's device: the order they are checked in, what a
 * failure does, and the verdicts' cache (selftest.h). The checks themselves: selftest_checks.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timer.h"
#include "ops/selftest.h"

/* Part of the verdicts' key: a change to the checks revalidates every device. */
#define SELFTEST_VERSION "selftest 3"

/* The key of this context's verdicts: every family's binary key (device, driver, options and
 * source are in them) and the version of the checks. */
static void verdict_key(const spartan_context *ctx, uint8_t key[SP_SHA256_SIZE]) {
    sp_sha256_ctx h;
    sp_sha256_init(&h);
    sp_sha256_update(&h, SELFTEST_VERSION, sizeof SELFTEST_VERSION);
    for (int f = 0; f < SP_FAMILY_COUNT; f++)
        sp_sha256_update(&h, ctx->programs[f].key, SP_SHA256_SIZE);
    sp_sha256_final(&h, key);
}

/* The cached verdicts: one line per family, "<name> <0|1> <why>\n" in family order. Applied only
 * when every line parses and names the family it should: anything else is ignored (and the
 * families validated again). */
static int load_verdicts(spartan_context *ctx, const uint8_t key[SP_SHA256_SIZE]) {
    if (!ctx->cache.enabled) return 0;
    unsigned char *data = NULL;
    size_t len = 0;
    char why[256];
    sp_cache_result r = sp_bincache_load(&ctx->cache, key, &data, &len, why, sizeof why);
    if (r != SP_CACHE_HIT) return 0;
    int ok[SP_FAMILY_COUNT];
    char reasons[SP_FAMILY_COUNT][sizeof ctx->programs[0].why];
    const char *p = (const char *)data, *end = p + len;
    int f = 0;
    for (; f < SP_FAMILY_COUNT && p < end; f++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *name = sp_family_name((sp_family)f);
        size_t nlen = strlen(name);
        if (!nl || (size_t)(nl - p) < nlen + 2 || memcmp(p, name, nlen) != 0 || p[nlen] != ' ' ||
            (p[nlen + 1] != '0' && p[nlen + 1] != '1'))
            break;
        ok[f] = p[nlen + 1] == '1';
        const char *w = p + nlen + 2 + (p + nlen + 2 < nl && p[nlen + 2] == ' ');
        snprintf(reasons[f], sizeof reasons[f], "%.*s", (int)(nl - w), w);
        p = nl + 1;
    }
    free(data);
    if (f != SP_FAMILY_COUNT || p != end) return 0;
    for (f = 0; f < SP_FAMILY_COUNT; f++) {
        sp_program *prog = &ctx->programs[f];
        if (prog->state == SP_FAMILY_DISABLED) continue; /* did not build: stays so */
        prog->verdict_cached = 1;
        if (ok[f])
            prog->state = SP_FAMILY_ENABLED;
        else
            sp_family_disable(ctx, (sp_family)f, "%s", reasons[f]);
    }
    return 1;
}

static void store_verdicts(spartan_context *ctx, const uint8_t key[SP_SHA256_SIZE]) {
    if (!ctx->cache.enabled) return;
    size_t cap = SP_FAMILY_COUNT * (sizeof ctx->programs[0].why + 64), used = 0;
    char *text = malloc(cap);
    if (!text) return;
    for (int f = 0; f < SP_FAMILY_COUNT; f++) {
        const sp_program *p = &ctx->programs[f];
        /* a reason is one line */
        char why[sizeof p->why];
        snprintf(why, sizeof why, "%s", p->why);
        for (char *c = why; *c; c++)
            if (*c == '\n' || *c == '\r') *c = ' ';
        int n = snprintf(text + used, cap - used, "%s %d %s\n", sp_family_name((sp_family)f),
                         p->state == SP_FAMILY_ENABLED, why);
        if (n < 0 || (size_t)n >= cap - used) {
            free(text);
            return;
        }
        used += (size_t)n;
    }
    char label[1024];
    snprintf(label, sizeof label, "validation verdicts | %.256s | %.700s", ctx->dev.info.name,
             ctx->options);
    sp_err werr = {0};
    if (sp_bincache_store(&ctx->cache, key, label, (const unsigned char *)text, used, &werr) !=
        SPARTAN_OK)
        sp_log(SPARTAN_LOG_WARN, "kernel cache: could not save the validation verdicts: %s",
               sp_err_message(&werr));
    sp_err_free(&werr);
    free(text);
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
        return 0;
    }
    p->state = SP_FAMILY_ENABLED;
    return 1;
}

spartan_status sp_selftest_run(spartan_context *ctx, sp_err *err) {
    double t0 = sp_now_ms();
    uint8_t key[SP_SHA256_SIZE];
    verdict_key(ctx, key);
    /* cached verdicts hold for the binaries they were made on: any family built now (a miss,
     * or a rejected entry) is validated again with the others */
    int all_cached = ctx->stats.cache_hits == ctx->stats.families && ctx->stats.cache_misses == 0 &&
                     ctx->stats.cache_rejected == 0;
    if (!all_cached || !load_verdicts(ctx, key)) {
        /* essential first: the other checks use them (transposes, fills, sums of slices) */
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
        ctx->stats.validated = 1;
        store_verdicts(ctx, key);
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
