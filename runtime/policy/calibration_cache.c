/* The policy's calibration cache: <cache dir>/policy/<key>.txt, one line per (pass form, shape,
 * window for a convolution),
 * keyed by the device, its driver, the build options, the timing mode and which kernel families
 * run (calibration_cache.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "core/sha256.h"
#include "policy/calibration_cache.h"

#define CACHE_MAGIC "spartan-policy-calibration 3"

static void locate(sp_cal_cache *c, const spartan_context *ctx) {
    c->path[0] = '\0';
    if (!ctx->cache.enabled) return;
    const spartan_device_info *d = &ctx->dev.info;
    sp_sha256_ctx h;
    sp_sha256_init(&h);
    const char *parts[] = {d->platform_name, d->platform_version, d->name, d->driver_version,
                           ctx->options};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        sp_sha256_update(&h, parts[i], strlen(parts[i]) + 1);
    /* what the times were taken with: the timing mode, and which kernel families run (a
     * disabled one runs its fallback, at another speed) */
    spartan_timing timing = SPARTAN_TIMING_EVENTS;
    spartan_context_timing(ctx, &timing, NULL);
    unsigned char state[SP_FAMILY_COUNT + 1];
    state[0] = (unsigned char)timing;
    for (int f = 0; f < SP_FAMILY_COUNT; f++)
        state[f + 1] = (unsigned char)sp_family_usable(ctx, (sp_family)f);
    sp_sha256_update(&h, state, sizeof state);
    uint8_t digest[SP_SHA256_SIZE];
    char hex[2 * SP_SHA256_SIZE + 1];
    sp_sha256_final(&h, digest);
    sp_sha256_hex(digest, hex);
    hex[16] = '\0';
    snprintf(c->path, sizeof c->path, "%s/policy/%s.txt", ctx->cache.dir, hex);
}

uint64_t sp_cal_geom(const spartan_window *w) {
    if (!w) return 0;
    const size_t v[] = {w->in_h, w->in_w, w->in_c, w->k_h, w->k_w, w->stride, w->pad};
    uint64_t h = 0x636f6e76u; /* "conv" */
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) h = sp_mix64(h ^ (uint64_t)v[i]);
    return h ? h : 1;
}

int sp_cal_cache_add(sp_cal_cache *c, int pass, size_t m, size_t n, size_t k, uint64_t geom,
                     const sp_policy_cal *cal) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        sp_cal_entry *e = realloc(c->entries, cap * sizeof *e);
        if (!e) return 0;
        c->entries = e;
        c->cap = cap;
    }
    c->entries[c->n++] = (sp_cal_entry){pass, m, n, k, geom, *cal};
    return 1;
}

#define CACHE_FILE_MAX ((size_t)16 << 20) /* the largest calibration file read (~100 B a line) */

/* Reads the file; a missing, foreign or damaged file (or line) only means recalibrating. */
static void load(sp_cal_cache *c) {
    struct stat sb;
    if (!c->path[0] || lstat(c->path, &sb) != 0) return; /* none yet */
    unsigned char *data = NULL;
    size_t len = 0;
    sp_err err = {0};
    if (sp_read_file(c->path, CACHE_FILE_MAX, &data, &len, &err) != SPARTAN_OK) {
        sp_log(SPARTAN_LOG_WARN, "policy: ignoring the calibration file: %s", sp_err_message(&err));
        sp_err_free(&err);
        return;
    }
    char *save = NULL, *line = strtok_r((char *)data, "\n", &save);
    if (!line || strcmp(line, CACHE_MAGIC) != 0) {
        sp_log(SPARTAN_LOG_WARN, "policy: ignoring %s (not a calibration file)", c->path);
        free(data);
        return;
    }
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        int pass;
        unsigned long long m, n, k, geom;
        sp_policy_cal cal;
        int impl;
        if (sscanf(line, "%d %llu %llu %llu %llx %lf %lf %lf %d %lf %lf %d %d %lf %lf", &pass, &m,
                   &n, &k, &geom, &cal.dense_ms, &cal.sparse_low_ms, &cal.sparse_high_ms, &impl,
                   &cal.own_ms, &cal.clblast_ms, &cal.engine[0], &cal.engine[1], &cal.im2col_ms,
                   &cal.implicit_ms) == 15 &&
            pass >= 0 && pass < 3 * SPARTAN_PASS_COUNT && cal.dense_ms > 0 &&
            (cal.engine[0] == SP_CONV_GEMM || cal.engine[0] == SP_CONV_IMPLICIT) &&
            (cal.engine[1] == SP_CONV_GEMM || cal.engine[1] == SP_CONV_IMPLICIT) &&
            cal.sparse_low_ms > 0 && cal.sparse_high_ms > 0 &&
            isfinite(cal.dense_ms + cal.sparse_low_ms + cal.sparse_high_ms) &&
            (impl == SPARTAN_GEMM_OWN ||
             (impl == SPARTAN_GEMM_CLBLAST && spartan_have_clblast()))) {
            cal.dense_impl = (spartan_gemm_path)impl;
            sp_cal_cache_add(c, pass, (size_t)m, (size_t)n, (size_t)k, (uint64_t)geom, &cal);
        }
    }
    free(data);
}

const sp_cal_entry *sp_cal_cache_find(const sp_cal_cache *c, int pass, size_t m, size_t n, size_t k,
                                      uint64_t geom) {
    for (size_t i = 0; i < c->n; i++) {
        const sp_cal_entry *e = &c->entries[i];
        if (e->pass == pass && e->m == m && e->n == n && e->k == k && e->geom == geom) return e;
    }
    return NULL;
}

/* Rewrites the whole file atomically; failing to write it is not an error (the next run
 * calibrates again), only a warning in the log. */
void sp_cal_cache_store(const sp_cal_cache *c) {
    if (!c->path[0]) return;
    size_t cap = 64 + c->n * 320, len = 0;
    char *text = malloc(cap);
    if (!text) return;
    len += (size_t)snprintf(text, cap, "%s\n", CACHE_MAGIC);
    for (size_t i = 0; i < c->n && len < cap; i++) {
        const sp_cal_entry *e = &c->entries[i];
        len += (size_t)snprintf(
            text + len, cap - len,
            "%d %zu %zu %zu %llx %.6f %.6f %.6f %d %.6f %.6f %d %d %.6f %.6f\n", e->pass, e->m,
            e->n, e->k, (unsigned long long)e->geom, e->cal.dense_ms, e->cal.sparse_low_ms,
            e->cal.sparse_high_ms, (int)e->cal.dense_impl, e->cal.own_ms, e->cal.clblast_ms,
            e->cal.engine[0], e->cal.engine[1], e->cal.im2col_ms, e->cal.implicit_ms);
    }
    char dir[sizeof c->path];
    snprintf(dir, sizeof dir, "%s", c->path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    sp_err err = {0};
    sp_buf_part part = {text, len < cap ? len : cap - 1};
    if (sp_mkdirs(dir, &err) != SPARTAN_OK ||
        sp_write_file_atomic(c->path, &part, 1, 0, &err) != SPARTAN_OK)
        sp_log(SPARTAN_LOG_WARN, "policy: calibration not cached: %s", sp_err_message(&err));
    sp_err_free(&err);
    free(text);
}

void sp_cal_cache_open(sp_cal_cache *c, const spartan_context *ctx) {
    memset(c, 0, sizeof *c);
    locate(c, ctx);
    load(c);
}

void sp_cal_cache_free(sp_cal_cache *c) {
    free(c->entries);
    memset(c, 0, sizeof *c);
}
