/* Shared by the files of ops/: kernel launches, per-context scratch buffers, and the private
 * layout of spartan_sparse (docs/sparse-format.md). */
#ifndef SP_OPS_INTERNAL_H
#define SP_OPS_INTERNAL_H

#include "spartan/ops.h"
#include "tensor/tensor_internal.h"

typedef struct sp_arg {
    size_t size;
    const void *ptr;
} sp_arg;
#define SP_ARG(x) ((sp_arg){sizeof(x), &(x)})

/* Sets the arguments of kernel `name` and enqueues it over global (rounded up to local; local
 * NULL lets the driver choose). A zero global size enqueues nothing. */
spartan_status sp_launch(spartan_context *ctx, const char *name, cl_uint dims, const size_t *global,
                         const size_t *local, const sp_arg *args, cl_uint nargs);

/* A 1-D launch of n work-items in groups of the tuned WG (drivers left to choose pick poor
 * sizes: POCL runs groups of 1 to 6 work-items, each a separate task). */
spartan_status sp_launch_1d(spartan_context *ctx, const char *name, size_t n, const sp_arg *args,
                            cl_uint nargs);

/* A scratch buffer of at least bytes, owned by the context, reused across calls (slot: which
 * one). Valid until the next call with the same slot. */
enum { SP_SCRATCH_TRANSPOSE = 0, SP_SCRATCH_SPLITK, SP_SCRATCH_COUNT };
spartan_status sp_scratch(spartan_context *ctx, int slot, size_t bytes, cl_mem *out);

/* A one-element buffer holding 0u (the offset of a scan's only chunk). */
spartan_status sp_zero_uint(spartan_context *ctx, cl_mem *out);

/* The compaction's table: for each 8-bit mask, the lanes of its set bits in order (256 ushort8),
 * created on first use. */
spartan_status sp_compact_lut(spartan_context *ctx, cl_mem *out);

/* Spare position slots after each tile's (SP_TILE_CAP in common.clh). */
#define SP_COMPACT_SPARE 8

/* Parameters as uint kernel arguments; INVALID_ARGUMENT if a size does not fit. */
spartan_status sp_u32(spartan_context *ctx, size_t v, const char *what, cl_uint *out);

/* The scans of compact.c sum chunks of this many values per work-item, then scan the chunk
 * sums the same way, one recursion level per factor of SP_SCAN_CHUNK. */
#define SP_SCAN_CHUNK  64
#define SP_SCAN_LEVELS 8

struct spartan_sparse {
    spartan_context *ctx;
    size_t rows, cols;
    size_t tile_rows, tile_cols;
    size_t tiles_r, tiles_c, ntiles;
    size_t partial_count; /* work-groups of the monitor */
    cl_mem counts;        /* ntiles: non-zeros per tile (monitor, or compaction) */
    cl_mem partials;      /* partial_count: per-work-group sums (monitor, or compaction) */
    cl_mem tpos_row;      /* ntiles + 1: exclusive scan of non-empty flags, row-major tiles */
    cl_mem tpos_col;      /* ntiles + 1: the same in column-major tile order */
    cl_mem list_row;      /* non-empty tiles, row-major order (tile indices) */
    cl_mem list_col;      /* non-empty tiles, column-major order */
    cl_mem rowoff;        /* ntiles x (tile_rows + 1) ushort: row starts inside each tile */
    cl_mem coloff;        /* ntiles x (tile_cols + 1) ushort: column starts inside each tile */
    cl_mem idx_r;         /* ROWS form: uint column of each non-zero inside its tile */
    cl_mem idx_c;         /* COLS form: uint row inside its tile */
    const spartan_tensor *source;     /* the compacted matrix: the GEMMs read the values there */
    cl_mem scan_sums[SP_SCAN_LEVELS]; /* chunk sums per recursion level */
    cl_mem scan_offs[SP_SCAN_LEVELS]; /* their exclusive scans */
    unsigned forms;                   /* forms built by the last compaction */
    int filled;                       /* counts written by a monitor or compaction */
};

#endif /* SP_OPS_INTERNAL_H */
