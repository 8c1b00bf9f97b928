/* Devices and contexts: every OpenCL device through the ICD loader, its profile, selection, and
 * the context that holds a device's queue, its built kernels and its tuned parameters.
 *
 *     spartan_context *ctx;
 *     if (spartan_context_create(NULL, &ctx) != SPARTAN_OK)      // SPARTAN_DEVICE picks the device
 *         fprintf(stderr, "%s\n", spartan_last_error(NULL));
 *     printf("%s\n", spartan_context_device(ctx)->name);
 *     spartan_context_destroy(ctx);
 *
 * Lifetimes: every tensor, spartan_sparse, policy and model made from a context keeps a pointer
 * to it and its OpenCL objects, and must be destroyed before it.
 * Threads: a context and everything made from it may be used by one thread at a time (its
 * kernels hold their arguments between calls; nothing is locked). Different contexts are
 * independent and may be used by different threads at once. Safe from any thread at any time:
 * the status, version and vendor-name functions, spartan_set_log_callback,
 * spartan_device_list / _list_free / _select, spartan_context_opts_default,
 * spartan_context_create (each call makes its own context), spartan_cache_dir / _list /
 * _list_free / _clear (entries are written and replaced atomically; one removed under a running
 * creation is rebuilt), and the calls that take no context (io.h, spartan_checkpoint_meta_get).
 * A call without a context records its failure on the calling thread (spartan_last_error(NULL)).
 * The library reads its environment variables during its calls: do not change them meanwhile. */
#ifndef SPARTAN_DEVICE_H
#define SPARTAN_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "spartan/export.h"
#include "spartan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, text): vendor classes. SIMULATOR is Oclgrind: it claims every device type, so the
 * default selection skips it unless it is named. */
#define SPARTAN_VENDOR_MAP(X)                                                                      \
    X(OTHER, "other")                                                                              \
    X(AMD, "AMD")                                                                                  \
    X(NVIDIA, "NVIDIA")                                                                            \
    X(INTEL, "Intel")                                                                              \
    X(APPLE, "Apple")                                                                              \
    X(ARM, "ARM")                                                                                  \
    X(QUALCOMM, "Qualcomm")                                                                        \
    X(POCL, "POCL")                                                                                \
    X(SIMULATOR, "simulator")

typedef enum spartan_vendor {
#define SPARTAN_X_(name, text) SPARTAN_VENDOR_##name,
    SPARTAN_VENDOR_MAP(SPARTAN_X_)
#undef SPARTAN_X_
        SPARTAN_VENDOR_COUNT_
} spartan_vendor;

SPARTAN_API const char *spartan_vendor_name(spartan_vendor vendor);

/* Device type bits (a device may have several: Oclgrind reports all of them). */
enum {
    SPARTAN_DEVICE_CPU = 1u << 0,
    SPARTAN_DEVICE_GPU = 1u << 1,
    SPARTAN_DEVICE_ACCELERATOR = 1u << 2,
    SPARTAN_DEVICE_OTHER = 1u << 3
};

/* Which subgroup support the device offers, if any. */
typedef enum spartan_subgroups {
    SPARTAN_SUBGROUPS_NONE = 0,
    SPARTAN_SUBGROUPS_KHR = 1,   /* cl_khr_subgroups or OpenCL 3.0 with max sub-groups > 0 */
    SPARTAN_SUBGROUPS_INTEL = 2, /* cl_intel_subgroups only */
} spartan_subgroups;

/* The profile of one device: everything the runtime decides from. Plain data, copyable. */
typedef struct spartan_device_info {
    unsigned platform_index; /* position in the ICD loader's platform list */
    unsigned device_index;   /* position within its platform */
    char platform_name[128];
    char platform_vendor[128];
    char platform_version[128];
    char name[256];
    char vendor_string[128]; /* CL_DEVICE_VENDOR as the driver spells it */
    char device_version[128];
    char driver_version[128];
    char opencl_c_version[128];
    spartan_vendor vendor; /* classified vendor */
    unsigned type;         /* SPARTAN_DEVICE_* bits */
    unsigned opencl_c_major, opencl_c_minor;
    unsigned compute_units;
    unsigned clock_mhz;
    uint64_t global_mem_bytes;
    uint64_t local_mem_bytes;
    uint64_t max_alloc_bytes;
    int local_mem_dedicated; /* 1: on-chip local memory; 0: emulated in global memory */
    size_t max_work_group_size;
    unsigned max_work_item_dims;
    size_t max_work_item_sizes[3];
    unsigned preferred_vector_width_float;
    unsigned native_vector_width_float;
    unsigned preferred_vector_width_int;
    int fp16, fp64;
    spartan_subgroups subgroups;
    unsigned address_bits;
    int available;
    int compiler_available;
} spartan_device_info;

/* Every device of every platform the ICD loader finds, in loader order (platform, then device).
 * *out is allocated by the library and freed with spartan_device_list_free(); *count is its
 * length. Returns SPARTAN_STATUS_NO_PLATFORM when the loader finds no platform, and NO_DEVICE
 * when the platforms have no device; spartan_last_error(NULL) says what to install or set. */
SPARTAN_API spartan_status spartan_device_list(spartan_device_info **out, size_t *count);
SPARTAN_API void spartan_device_list_free(spartan_device_info *list);

/* Picks a device from a list by a selection string:
 *   NULL or ""           the default: the first GPU, else the first device (simulators last)
 *   "P:D"                platform index P, device index D (as spartan-info lists them)
 *   "cpu", "gpu", "accelerator"   the first device of that type (simulators last)
 *   anything else        the first device whose vendor class (spartan_vendor_name: "pocl",
 *                        "nvidia", "amd", "intel", "simulator", ...) is it, or whose name, vendor
 *                        or platform name contains it, ignoring case (e.g. "oclgrind",
 *                        "rusticl", "pthread", "H100")
 * On success *index is the position in the list. NO_DEVICE with a message listing the devices
 * when nothing matches; INVALID_ARGUMENT for a malformed "P:D". spartan_context_create takes the
 * same strings and, except for "P:D", tries the next matching device when one fails. */
SPARTAN_API spartan_status spartan_device_select(const spartan_device_info *list, size_t count,
                                                 const char *selection, size_t *index);

/* ---- Context ----------------------------------------------------------------------------- */

typedef struct spartan_context spartan_context;

typedef struct spartan_context_opts {
    /* Device selection string (see spartan_device_select); NULL: $SPARTAN_DEVICE, else default. */
    const char *device;
    /* Kernel binary cache directory; NULL: $SPARTAN_CACHE_DIR, else $XDG_CACHE_HOME/spartan,
     * else ~/.cache/spartan. The string "off" disables the cache, as does SPARTAN_CACHE=off. */
    const char *cache_dir;
    /* Read kernel sources from this directory instead of the embedded copies; NULL:
     * $SPARTAN_KERNEL_DIR, else embedded. For kernel development. */
    const char *kernel_dir;
    /* How device work is timed (see spartan_context_timing): "events" or "host"; NULL:
     * $SPARTAN_TIMING, else detected at creation. Any other value is ignored (detected). */
    const char *timing;
    /* Which tuning databases (spartan-tune's entries, docs/tuning.md) give the tuned parameters:
     * "on" (the shipped entry for the device, then the user's in the cache directory), "shipped"
     * (the shipped entry only), "off" (neither: the built-in table); NULL: $SPARTAN_TUNING, else
     * "on". Anything else fails the creation (INVALID_ARGUMENT). */
    const char *tuning;
    /* Tuned parameters over the databases, "NAME=V,..." as SPARTAN_TUNE takes them (which still
     * overrides these): spartan-tune's candidates. A value outside its range is refused. NULL:
     * none. */
    const char *tune;
} spartan_context_opts;

SPARTAN_API spartan_context_opts spartan_context_opts_default(void);

/* Creates a context on the selected device: OpenCL context, one in-order queue with profiling,
 * the tuned parameters for the device, and every kernel family built for it (from the binary
 * cache when a valid entry exists). opts may be NULL. On failure *out is NULL and
 * spartan_last_error(NULL) holds the detail (for BUILD_FAILED: the complete build log). */
SPARTAN_API spartan_status spartan_context_create(const spartan_context_opts *opts,
                                                  spartan_context **out);

/* Releases the context (its queue, kernels and scratch buffers). Everything made from it must be
 * destroyed first. NULL is a no-op. */
SPARTAN_API void spartan_context_destroy(spartan_context *ctx);

/* The profile of the context's device; owned by the context, valid until it is destroyed. */
SPARTAN_API const spartan_device_info *spartan_context_device(const spartan_context *ctx);

/* What building the kernels at creation did. */
typedef struct spartan_build_stats {
    unsigned families;       /* kernel families (programs) built */
    unsigned cache_hits;     /* loaded from a valid cache entry */
    unsigned cache_misses;   /* no entry: built from source */
    unsigned cache_rejected; /* an entry existed but was truncated, corrupt or stale: rebuilt */
    unsigned cache_writes;   /* entries written */
    double build_ms;         /* wall time of building / loading all families */
    double validate_ms;      /* wall time of validating them (or reading the cached verdicts) */
    int validated;           /* 1: a family's self-test ran; 0: every verdict came from the cache */
    int cache_enabled;
    char cache_dir[1024];    /* resolved directory ("" when the cache is off) */
    char build_options[512]; /* -D options derived from the tuned parameters (a family is built
                              * with those of them its source reads) */
    char tuning[1024]; /* where the tuned parameters came from, one line per source: "the built-in
                        * table", "shipped tuning entry <name>", "tuning database <path>", and
                        * each entry ignored, with the reason */
} spartan_build_stats;

SPARTAN_API spartan_status spartan_context_build_stats(const spartan_context *ctx,
                                                       spartan_build_stats *out);

/* What became of one kernel family (kernels_cl/<name>.cl) on the context's device. Each family
 * is built at context creation and, the first time for a device and its build options, validated
 * by a known-answer self-test (a tall column of 65,536+ rows, a long reduction, a wide row,
 * sizes no tile divides, against a host reference); the verdict is cached with the binaries.
 * A family that does not build or validate is disabled, and its operations take the fallback
 * named here (correct, slower). An essential family cannot be replaced: when one fails, the
 * context is not created on that device. The strings are owned by the context. */
typedef struct spartan_family_status {
    const char *name;     /* "gemm_sparse" */
    int essential;        /* 1: the context needs it */
    int enabled;          /* 1: built and validated on this device */
    int verdict_cached;   /* 1: the verdict was read from the cache, not run now */
    const char *why;      /* why it is disabled ("" when enabled) */
    const char *fallback; /* what its operations use while it is disabled */
    const char *options;  /* its build options: the context's, less the -D its source never reads */
} spartan_family_status;

/* The i-th kernel family: INVALID_ARGUMENT once i is past the last. */
SPARTAN_API spartan_status spartan_context_family(const spartan_context *ctx, unsigned i,
                                                  spartan_family_status *out);

/* The value of a tuned parameter for this context's device (e.g. "VEC", "TILE_ROWS"); -1 when
 * the name is unknown. */
SPARTAN_API long spartan_context_tuned(const spartan_context *ctx, const char *name);

/* The i-th tuned parameter, for listing them all: INVALID_ARGUMENT once i is past the last.
 * *name is static text. */
SPARTAN_API spartan_status spartan_context_tuned_at(const spartan_context *ctx, unsigned i,
                                                    const char **name, long *value);

/* Detail of the last error. With a context: the last failure of a call on that context. With
 * NULL: the last failure on this thread of a call that has no context yet (device listing,
 * context creation). The string is owned by the library and valid until the next call that
 * fails on the same context or thread. "" when there was none. Never NULL. */
SPARTAN_API const char *spartan_last_error(const spartan_context *ctx);

/* ---- Timing -------------------------------------------------------------------------------
 * How the runtime times device work on a context: the per-layer report of a training step, the
 * policy's calibration and online correction, and spartan-bench all read the clock through the
 * marks below. With OpenCL profiling events a mark is a marker in the queue and its time is its
 * CL_PROFILING_COMMAND_END. Some drivers give markers timestamps that do not advance (or a
 * profiling timer resolution of 0); there a mark waits for the queue (clFinish) and reads the
 * host's monotonic clock instead. Context creation decides which, by enqueueing two markers a
 * couple of milliseconds apart on the host: events only when the resolution is non-zero, every
 * timestamp can be read, and the second END follows the first by at least half the host's gap
 * and at most twice the host's whole span (docs/architecture.md). SPARTAN_TIMING=events|host (or
 * spartan_context_opts.timing) overrides the detection.
 *
 *     spartan_mark a, b;
 *     double ms;
 *     spartan_mark_record(ctx, &a);
 *     ... enqueue work ...
 *     spartan_mark_record(ctx, &b);
 *     spartan_mark_elapsed(ctx, &a, &b, &ms);     // waits for b
 *     spartan_mark_release(&a);
 *     spartan_mark_release(&b);
 */
typedef enum spartan_timing {
    SPARTAN_TIMING_EVENTS = 0, /* OpenCL profiling events (CL_PROFILING_COMMAND_END of markers) */
    SPARTAN_TIMING_HOST = 1    /* the host's monotonic clock, read after clFinish */
} spartan_timing;

/* "events", "host" ("unknown" for a value not in the enum). Never NULL. */
SPARTAN_API const char *spartan_timing_name(spartan_timing timing);

/* The timing the context uses, and (why, may be NULL) a sentence saying why, e.g. "host clock:
 * the driver's profiling timestamps do not advance (...)"; the string is owned by the context. */
SPARTAN_API spartan_status spartan_context_timing(const spartan_context *ctx,
                                                  spartan_timing *timing, const char **why);

/* A point in the context's queue. Plain data owned by the caller (no allocation); its fields
 * belong to the library. Zero-initialised or released, it holds nothing. */
typedef struct spartan_mark {
    void *event_; /* events timing: the marker (a cl_event) */
    uint64_t ns_; /* the time in ns on the context's clock, once known */
    int known_;   /* ns_ is set */
} spartan_mark;

/* Records a mark after everything enqueued so far: with events timing it enqueues a marker
 * (non-blocking); with host timing it waits for the queue and reads the host clock. Release
 * the mark with spartan_mark_release. On failure the mark holds nothing. */
SPARTAN_API spartan_status spartan_mark_record(spartan_context *ctx, spartan_mark *mark);

/* *ms: the milliseconds between two marks of ctx (from recorded before to), >= 0. Waits for the
 * marks' markers with events timing. The marks stay valid (and remember their times). */
SPARTAN_API spartan_status spartan_mark_elapsed(spartan_context *ctx, spartan_mark *from,
                                                spartan_mark *to, double *ms);

/* Releases what a mark holds and zeroes it; NULL or an empty mark is a no-op. */
SPARTAN_API void spartan_mark_release(spartan_mark *mark);

/* ---- Tuning database (spartan-tune, docs/tuning.md) --------------------------------------------
 * The user's entry for a device is one JSON file in <cache dir>/tuning/, named by a hash of the
 * device's identity (platform and its version, device name, driver version, library version),
 * which the file repeats and a context compares before using it: a corrupt or foreign file is
 * ignored with a warning (SPARTAN_LOG) and said in spartan_build_stats.tuning, never used. */

/* The path of the user's tuning entry for dev under the cache directory opts resolve to (NULL:
 * defaults); UNSUPPORTED when the cache is off. The file need not exist. */
SPARTAN_API spartan_status spartan_tuning_path(const spartan_context_opts *opts,
                                               const spartan_device_info *dev, char *buf,
                                               size_t len);

/* An entry's JSON text into buf: params "NAME=V,..." (checked on dev as a context would:
 * INVALID_ARGUMENT with the reason when refused), provenance a JSON object (NULL: {}) kept as its
 * "tuned" member. shipped = 1: the shipped form (tuning/ in the source tree), which matches
 * devices of dev's vendor, type and vector width; 0: the user's, for dev alone. */
SPARTAN_API spartan_status spartan_tuning_format(const spartan_device_info *dev, const char *params,
                                                 const char *provenance, int shipped, char *buf,
                                                 size_t len);

/* Writes the user's entry for dev (spartan_tuning_format's, shipped = 0) atomically; the next
 * context made on dev with the same cache directory uses it. path (may be NULL) gets the file. */
SPARTAN_API spartan_status spartan_tuning_write(const spartan_context_opts *opts,
                                                const spartan_device_info *dev, const char *params,
                                                const char *provenance, char *path,
                                                size_t path_len);

/* ---- Cache directory ------------------------------------------------------------------------ */

/* Resolves the cache directory the way a context would with these opts (NULL: defaults) into
 * buf. Returns SPARTAN_STATUS_UNSUPPORTED with buf = "" when the cache is disabled. */
SPARTAN_API spartan_status spartan_cache_dir(const spartan_context_opts *opts, char *buf,
                                             size_t len);

/* One entry of the kernel binary cache, as spartan-info --cache lists them. */
typedef struct spartan_cache_entry {
    char path[1200];
    char label[512];  /* "eltwise.cl | <device> | <build options>" */
    uint64_t bytes;   /* file size */
    int64_t mtime;    /* seconds since the epoch */
    int valid;        /* header, length and checksum verified */
    char problem[64]; /* why not valid */
} spartan_cache_entry;

/* Lists the entries of the cache directory the opts resolve to (NULL: defaults), verifying
 * each. Only the cache's own names are listed: <dir>/<xx>/<64 hex>.bin, xx the name's first two
 * digits, and the temporary files <64 hex>.bin.tmp.<pid>.<n> of unfinished writes (invalid). No
 * symbolic link below the directory is followed: a linked subdirectory is skipped, a linked
 * entry is listed as invalid without being read. *out is freed with spartan_cache_list_free().
 * An absent directory is an empty list; UNSUPPORTED when the cache is off. */
SPARTAN_API spartan_status spartan_cache_list(const spartan_context_opts *opts,
                                              spartan_cache_entry **out, size_t *count);
SPARTAN_API void spartan_cache_list_free(spartan_cache_entry *list);

/* Deletes every cache entry and leftover temporary file, as spartan_cache_list names them, and
 * nothing else (other files, the policy's calibration, anything behind a link: a link named as
 * an entry is removed, never its target); *removed (may be NULL) counts them. */
SPARTAN_API spartan_status spartan_cache_clear(const spartan_context_opts *opts, size_t *removed);

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_DEVICE_H */
