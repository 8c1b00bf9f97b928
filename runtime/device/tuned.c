/* Tuned parameters per device, CLBlast-style: a table walked from the general to the specific
 * (global defaults, vendor, device name), then the tuning databases' entries for the device (the
 * shipped one, then the user's: tuning_db.c), then the caller's parameters (spartan-tune's
 * candidates), then the SPARTAN_TUNE environment variable; the profile fills what none of them
 * gave. Every value becomes a -DSP_<NAME> build option, so it is part of the binary cache key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/number.h"
#include "device/device_internal.h"

/* X(NAME, global default, meaning). A default of 0 means "derived from the profile". */
#define SP_TUNED_PARAMS(X)                                                                         \
    X(VEC, 0, "float vector width of element-wise and inner GEMM loops (1, 2, 4, 8, 16)")          \
    X(WG, 256, "work-group size of 1-D element-wise kernels")                                      \
    X(TILE_ROWS, 8, "rows of a sparsity tile (monitor counts and compaction)")                     \
    X(TILE_COLS, 0, "columns of a sparsity tile (default: 16 vectors of VEC on CPUs, else 4)")     \
    X(GEMM_RB, 0, "rows of C per work-item in the GEMM kernels (default from VEC)")                \
    X(GEMM_NB, 0, "VEC-wide column vectors of C per work-item in the GEMM kernels")                \
    X(GEMM_WG, 16, "work-items per group along the rows of C in the GEMM kernels")                 \
    X(SPARSE_NB, 0, "VEC-wide column vectors per work-item in the sparse GEMMs")                   \
    X(COLS_STEP, 8,                                                                                \
      "tile-rows the sparse backward-by-weight walks between two barriers (a step of them stays "  \
      "in the first-level cache)")                                                                 \
    X(DIRECT_SEG, 128,                                                                             \
      "columns of X's row the direct sparse forward scans per segment (their positions are kept "  \
      "in private memory)")                                                                        \
    X(LOOP_MAX, 16384,                                                                             \
      "loop iterations the launches plan for one work-item at most, all its loops counted as if "  \
      "nothing were unrolled (llvmpipe ends a work-item's loops at 65,535 without an error)")      \
    X(STRIP_COLS, 0,                                                                               \
      "output columns per work-item of the sparse stride-1 convolution (conv_strip_sparse)")

enum {
#define X(name, def, doc) P_##name,
    SP_TUNED_PARAMS(X)
#undef X
        P_COUNT
};

static const char *param_names[P_COUNT] = {
#define X(name, def, doc) #name,
    SP_TUNED_PARAMS(X)
#undef X
};

static const long param_defaults[P_COUNT] = {
#define X(name, def, doc) def,
    SP_TUNED_PARAMS(X)
#undef X
};

_Static_assert(P_COUNT <= SP_TUNED_MAX, "too many tuned parameters for sp_tuned");

/* A table entry: applies to a vendor (and, if name is not NULL, to devices whose name contains
 * it). Values of 0 leave the parameter as it was. Ordered general to specific. */
typedef struct {
    spartan_vendor vendor;
    const char *name;
    long values[P_COUNT];
} entry;

static const entry table[] = {
    /*          VEC  WG  TILE_ROWS TILE_COLS GEMM_RB GEMM_NB GEMM_WG SPARSE_NB COLS_STEP
     *          DIRECT_SEG LOOP_MAX */
    /* GPUs: from the vendors' published limits (float4 loads; 4 x 1 vectors = 16 accumulators,
     * well inside 255 registers a thread on NVIDIA, 256 VGPRs on AMD; work-groups of 64-256,
     * at most 1024; 32-64 KiB of local memory), never measured: no GPU has run these yet.
     * spartan-tune on the GPU replaces them (docs/tuning.md). */
    {SPARTAN_VENDOR_NVIDIA, NULL, {4, 256, 0, 0, 4, 1, 64, 1}},
    {SPARTAN_VENDOR_AMD, NULL, {4, 256, 0, 0, 4, 1, 64, 1}},
    {SPARTAN_VENDOR_INTEL, NULL, {4, 128, 0, 0, 4, 1, 32, 1}},
    /* CPUs: wide tiles, so a row's non-zeros come in long runs per tile (the inner loop's
     * exit mispredicts once per run: with 32-column tiles that cost half the speed on N = 32
     * layers), and 16 rows, so the column form's runs are long too. POCL bounds no loop, and
     * slices of 16,384 steps cut vgg-small's backward-by-weight into 26 partial dW per call,
     * summed after; 2^18 left the register kernels' slices to the work-item count, and 2^22
     * does the same for conv_dw_cvec_tile, whose pixel counts up to 32 x 9 window FMAs
     * (docs/benchmarks.md). */
    {SPARTAN_VENDOR_POCL, NULL, {0, 256, 16, 0, 0, 0, 16, 0, 0, 0, 4194304}},
    /* Oclgrind simulates every work-item: small groups keep its runs short. */
    {SPARTAN_VENDOR_SIMULATOR, NULL, {4, 64, 0, 0, 2, 1, 4, 2}},
};

static long pow2_floor(long v, long max) {
    long p = 1;
    while (p * 2 <= v && p * 2 <= max) p *= 2;
    return p;
}

/* Where a value came from: the lookup derives only what nobody gave, and refuses out-of-range
 * values a source gave where it clamps its own (the table's). */
enum { FROM_DEFAULT = 0, FROM_TABLE, FROM_SOURCE };

/* Applies "NAME=V,..." from the source named origin (for the messages). */
static spartan_status apply_list(sp_tuned *t, int *from, const char **origin, const char *list,
                                 const char *name, sp_err *err) {
    if (!list || !*list) return SPARTAN_OK;
    char buf[512];
    if (strlen(list) >= sizeof buf)
        return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT, "%s is too long", name);
    strcpy(buf, list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        /* no product of two values overflows a long, none wraps in a cast to int; each
         * parameter's own range is checked after the lookup (bound) */
        enum { MAX = 1 << 30 };
        uint64_t v = 0;
        if (!eq || !sp_parse_u64(eq + 1, MAX, &v) || v == 0)
            return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                              "%s: '%s' is not NAME=N, N a decimal integer from 1 to %d", name, tok,
                              MAX);
        *eq = '\0';
        int found = 0;
        for (unsigned i = 0; i < t->count; i++) {
            if (strcmp(t->names[i], tok) == 0) {
                t->values[i] = (long)v;
                from[i] = FROM_SOURCE;
                origin[i] = name;
                found = 1;
            }
        }
        if (!found) {
            sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                       "%s: unknown parameter '%s' (known:", name, tok);
            for (unsigned i = 0; i < t->count; i++) sp_err_append(err, " %s", t->names[i]);
            sp_err_append(err, ")");
            return SPARTAN_STATUS_INVALID_ARGUMENT;
        }
    }
    return SPARTAN_OK;
}

/* Parameter p must lie in [lo, hi]: a value of the table is clamped, one a source gave refused. */
static spartan_status bound(sp_tuned *t, const int *from, const char **origin, unsigned p, long lo,
                            long hi, const char *why, sp_err *err) {
    long v = t->values[p];
    if (v >= lo && v <= hi) return SPARTAN_OK;
    if (from[p] == FROM_SOURCE)
        return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                          "%s: %s=%ld is outside [%ld, %ld] (%s)", origin[p], param_names[p], v, lo,
                          hi, why);
    t->values[p] = v < lo ? lo : hi;
    return SPARTAN_OK;
}

/* The values no table and no SPARTAN_TUNE gave, from the (final) vector width and the profile. */
static void derive(sp_tuned *t, const int *from, const spartan_device_info *info) {
    long *v = t->values;
    if (from[P_VEC] == FROM_DEFAULT) {
        long pref = info->preferred_vector_width_float ? info->preferred_vector_width_float : 4;
        v[P_VEC] = pow2_floor(pref, 16);
    }
    const long vec = v[P_VEC];
    /* Register blocking from the vector width: 8 rows x 2 vectors of 16 (AVX-512: 16
     * accumulators of 32 registers; against 8 x 1 it ran the vgg-small conv GEMMs 1.3-2x
     * faster on POCL, e.g. 50176x32x288 backward-by-input 12.8 -> 6.5 ms, and the FC layers
     * 1.2-2.8x), 4 rows x 2 vectors of 8 (AVX2: 8 accumulators of 16 registers), 4 x 1 below. */
    if (from[P_GEMM_RB] == FROM_DEFAULT) v[P_GEMM_RB] = vec >= 16 ? 8 : 4;
    if (from[P_GEMM_NB] == FROM_DEFAULT) v[P_GEMM_NB] = vec >= 8 ? 2 : 1;
    /* the sparse kernels walk a line's non-zeros once per column block: wide blocks (64
     * columns, at most 16 vectors) amortise that walk */
    if (from[P_SPARSE_NB] == FROM_DEFAULT) v[P_SPARSE_NB] = vec >= 64 ? 1 : 64 / vec;
    /* the sparse convolution's strip of output columns x GEMM_NB vectors: 8 x 2 = 16
     * accumulators (AVX-512's 32 registers; 12 ran no faster on POCL), 4 x 2 of AVX2's 16, 4 x 1
     * elsewhere */
    if (from[P_STRIP_COLS] == FROM_DEFAULT) v[P_STRIP_COLS] = vec >= 16 ? 8 : 4;
    if (from[P_TILE_COLS] == FROM_DEFAULT) {
        long per = (info->type & SPARTAN_DEVICE_CPU) ? 16 : 4; /* vectors per tile row */
        v[P_TILE_COLS] = per * vec < 8 ? 8 : per * vec;
    }
}

spartan_status sp_tuned_lookup(const spartan_device_info *info, const sp_tuned_source *src,
                               size_t nsrc, sp_tuned *t, sp_err *err) {
    memset(t, 0, sizeof *t);
    int from[P_COUNT] = {0};
    const char *origin[P_COUNT] = {0};
    t->count = P_COUNT;
    for (unsigned i = 0; i < P_COUNT; i++) {
        t->names[i] = param_names[i];
        t->values[i] = param_defaults[i];
    }
    for (size_t e = 0; e < sizeof table / sizeof table[0]; e++) {
        if (table[e].vendor != info->vendor) continue;
        if (table[e].name && !strstr(info->name, table[e].name)) continue;
        for (unsigned i = 0; i < P_COUNT; i++) {
            if (!table[e].values[i]) continue;
            t->values[i] = table[e].values[i];
            from[i] = FROM_TABLE;
        }
    }
    spartan_status st = SPARTAN_OK;
    for (size_t i = 0; i < nsrc && st == SPARTAN_OK; i++)
        st = apply_list(t, from, origin, src[i].params, src[i].name, err);
    if (st != SPARTAN_OK) return st;
    derive(t, from, info);

    long *v = t->values;
    if (v[P_VEC] < 1 || v[P_VEC] > 16 || (v[P_VEC] & (v[P_VEC] - 1)) != 0)
        return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                          "tuned parameter VEC=%ld is not 1, 2, 4, 8 or 16", v[P_VEC]);
    if ((v[P_WG] & (v[P_WG] - 1)) != 0)
        return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                          "tuned WG=%ld is not a power of two (the kernels' tree reductions "
                          "halve it)",
                          v[P_WG]);
    /* what the device allows: work-group sizes, and local memory for the reductions (WG uints
     * in the monitor, WG vectors of VEC floats in the bias gradient) */
    long maxwg = info->max_work_group_size ? (long)info->max_work_group_size : 1;
    if (info->max_work_item_dims >= 1 && info->max_work_item_sizes[0] &&
        (long)info->max_work_item_sizes[0] < maxwg)
        maxwg = (long)info->max_work_item_sizes[0];
    long wg_cap = pow2_floor(maxwg, maxwg);
    while (info->local_mem_bytes && wg_cap > 1 &&
           (uint64_t)wg_cap * (uint64_t)v[P_VEC] * 4u > info->local_mem_bytes)
        wg_cap /= 2;
    if ((st = bound(t, from, origin, P_WG, 1, wg_cap,
                    "the device's work-group and local memory limits", err)) ||
        (st = bound(t, from, origin, P_GEMM_WG, 1, maxwg, "the device's work-group size limit",
                    err)) ||
        (st = bound(t, from, origin, P_GEMM_RB, 1, 16, "rows of registers per work-item", err)) ||
        (st = bound(t, from, origin, P_GEMM_NB, 1, 8, "vectors of registers per work-item", err)) ||
        (st = bound(t, from, origin, P_SPARSE_NB, 1, 16, "vectors of registers per work-item",
                    err)) ||
        (st = bound(t, from, origin, P_STRIP_COLS, 1, 12, "output columns per work-item", err)) ||
        (st =
             bound(t, from, origin, P_COLS_STEP, 1, 1024, "tile-rows between two barriers", err)) ||
        (st = bound(t, from, origin, P_DIRECT_SEG, 8, 1024,
                    "positions in private memory per work-item", err)) ||
        (st = bound(t, from, origin, P_TILE_ROWS, 1, 8192, "rows of a tile", err)) ||
        (st = bound(t, from, origin, P_TILE_COLS, 1, 8192, "columns of a tile", err)) ||
        (st = bound(t, from, origin, P_LOOP_MAX, 1024, 1L << 30, "loop iterations per work-item",
                    err)))
        return st;
    if (v[P_TILE_ROWS] * v[P_TILE_COLS] > 8192)
        return sp_err_set(
            err, SPARTAN_STATUS_INVALID_ARGUMENT,
            "tuned tile %ldx%ld holds more than 8192 elements (a work-item of the monitor "
            "and the compaction walks a tile: their loops are bounded)",
            v[P_TILE_ROWS], v[P_TILE_COLS]);
    return SPARTAN_OK;
}

long sp_tuned_get(const sp_tuned *t, const char *name) {
    for (unsigned i = 0; i < t->count; i++)
        if (strcmp(t->names[i], name) == 0) return t->values[i];
    return -1;
}

spartan_status sp_tuned_options(const sp_tuned *t, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < t->count; i++) {
        int n = snprintf(buf + used, len - used, "%s-DSP_%s=%ld", i ? " " : "", t->names[i],
                         t->values[i]);
        if (n < 0 || (size_t)n >= len - used) return SPARTAN_STATUS_INVALID_ARGUMENT;
        used += (size_t)n;
    }
    return SPARTAN_OK;
}
