/* The policy's calibration cache (calibration_cache.c): the calibrations measured on this
 * device, read when a policy is made and rewritten (atomically) when one is added. A missing,
 * foreign or damaged file, or line, only means calibrating again. */
#ifndef SP_POLICY_CALIBRATION_CACHE_H
#define SP_POLICY_CALIBRATION_CACHE_H

#include "policy/policy_internal.h"

typedef struct sp_cal_entry {
    int pass; /* the pass and its form (sp_policy_register's key) */
    size_t m, n, k;
    uint64_t geom; /* a convolution's window (sp_cal_geom), 0 for a GEMM layer */
    sp_policy_cal cal;
} sp_cal_entry;

typedef struct sp_cal_cache {
    char path[1200]; /* "" when the cache is off */
    sp_cal_entry *entries;
    size_t n, cap;
} sp_cal_cache;

/* Locates ctx's file (none when the kernel cache is off) and reads what it holds. */
void sp_cal_cache_open(sp_cal_cache *c, const spartan_context *ctx);
void sp_cal_cache_free(sp_cal_cache *c);

/* A key of a convolution's window (never 0), or 0 for NULL. */
uint64_t sp_cal_geom(const spartan_window *w);

const sp_cal_entry *sp_cal_cache_find(const sp_cal_cache *c, int pass, size_t m, size_t n, size_t k,
                                      uint64_t geom);
/* 0 when out of memory (the calibration is then only not cached). */
int sp_cal_cache_add(sp_cal_cache *c, int pass, size_t m, size_t n, size_t k, uint64_t geom,
                     const sp_policy_cal *cal);
/* Rewrites the file; failing to is only a warning in the log. */
void sp_cal_cache_store(const sp_cal_cache *c);

#endif /* SP_POLICY_CALIBRATION_CACHE_H */
