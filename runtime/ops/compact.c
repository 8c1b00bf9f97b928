/* The compaction engine (kernels_cl/compact.cl): scans of the monitor's tile counts and a
 * scatter into the compacted form of docs/sparse-format.md. */
#include "ops/ops_internal.h"

/* out[0..n] = exclusive scan of value(in, i) (mode: 0 counts, 1 row-major flags, 2 column-major
 * flags); level picks the scratch buffers of this recursion depth. */
static spartan_status scan(spartan_sparse *s, cl_mem in, size_t n, cl_uint mode, cl_mem out,
                           int level) {
    spartan_context *ctx = s->ctx;
    cl_uint un = (cl_uint)n, chunk = SP_SCAN_CHUNK, tr = (cl_uint)s->tiles_r,
            tc = (cl_uint)s->tiles_c;
    size_t chunks = (n + SP_SCAN_CHUNK - 1) / SP_SCAN_CHUNK;
    cl_mem offsets;
    spartan_status st;
    if (chunks <= 1) {
        st = sp_zero_uint(ctx, &offsets);
    } else {
        cl_mem sums = s->scan_sums[level];
        offsets = s->scan_offs[level];
        sp_arg a[] = {SP_ARG(in), SP_ARG(un),    SP_ARG(mode), SP_ARG(tr),
                      SP_ARG(tc), SP_ARG(chunk), SP_ARG(sums)};
        st = sp_launch_1d(ctx, SP_K_compact_scan_sums, chunks, a, 7);
        if (st == SPARTAN_OK) st = scan(s, sums, chunks, 0, offsets, level + 1);
    }
    if (st != SPARTAN_OK) return st;
    sp_arg a[] = {SP_ARG(in), SP_ARG(un),    SP_ARG(mode),    SP_ARG(tr),
                  SP_ARG(tc), SP_ARG(chunk), SP_ARG(offsets), SP_ARG(out)};
    return sp_launch_1d(ctx, SP_K_compact_scan_apply, chunks, a, 8);
}

static spartan_status ensure(spartan_context *ctx, cl_mem *m, size_t bytes, const char *what) {
    if (*m) return SPARTAN_OK;
    return sp_buffer_create(ctx, bytes, what, m);
}

spartan_status spartan_compact(spartan_context *ctx, const spartan_tensor *x, spartan_sparse *s,
                               unsigned forms) {
    if (!ctx || !x || !s) return sp_invalid(ctx, "spartan_compact: NULL argument");
    if (x->ctx != ctx || s->ctx != ctx)
        return sp_invalid(ctx, "spartan_compact: objects of another context");
    if (spartan_tensor_rows(x) != s->rows || spartan_tensor_cols(x) != s->cols)
        return sp_invalid(ctx, "spartan_compact: tensor %zux%zu, sparse %zux%zu",
                          spartan_tensor_rows(x), spartan_tensor_cols(x), s->rows, s->cols);
    if (forms == 0 || (forms & ~(unsigned)(SPARTAN_COMPACT_ROWS | SPARTAN_COMPACT_COLS)))
        return sp_invalid(ctx, "spartan_compact: forms must be ROWS and/or COLS");
    s->forms = 0;
    s->source = x;
    if (s->ntiles == 0) {
        s->forms = forms;
        s->filled = 1;
        return SPARTAN_OK;
    }
    if (!sp_family_usable(ctx, SP_FAMILY_compact)) {
        /* the sparse GEMMs will compute densely from x: only the counts are needed */
        spartan_status st = spartan_monitor(ctx, x, s);
        if (st == SPARTAN_OK) s->forms = forms;
        return st;
    }
    /* for every shape s may take (sp_sparse_reshape): the positions are made once */
    size_t cap = s->cap_tiles * (s->tile_rows * s->tile_cols + SP_COMPACT_SPARE);
    if (cap > 0xffffffffu)
        return sp_invalid(ctx, "spartan_compact: %zux%zu is above the kernels' 32-bit range",
                          s->rows, s->cols);
    spartan_status st = SPARTAN_OK;
    if (forms & SPARTAN_COMPACT_ROWS)
        st = ensure(ctx, &s->idx_r, cap * sizeof(cl_uint), "row-form positions");
    if (!st && (forms & SPARTAN_COMPACT_COLS))
        st = ensure(ctx, &s->idx_c, cap * sizeof(cl_uint), "column-form positions");
    cl_mem lut;
    if (!st) st = sp_compact_lut(ctx, &lut);
    if (st != SPARTAN_OK) return st;
    cl_uint rows = (cl_uint)s->rows, cols = (cl_uint)s->cols, tr = (cl_uint)s->tiles_r,
            tc = (cl_uint)s->tiles_c, f = forms, nt = (cl_uint)s->ntiles;
    /* a form not built gets valid (unused) buffers in its argument slots */
    cl_mem idx_r = s->idx_r ? s->idx_r : s->counts, idx_c = s->idx_c ? s->idx_c : s->counts;
    sp_arg a[] = {SP_ARG(x->mem),    SP_ARG(rows),      SP_ARG(cols),      SP_ARG(tr),
                  SP_ARG(tc),        SP_ARG(f),         SP_ARG(s->counts), SP_ARG(s->partials),
                  SP_ARG(s->rowoff), SP_ARG(s->coloff), SP_ARG(idx_r),     SP_ARG(idx_c),
                  SP_ARG(lut)};
    s->filled = 0; /* the scatter rewrites the counts */
    st = sp_launch_1d(ctx, SP_K_compact_scatter, s->ntiles, a, 13);
    if (!st && (forms & SPARTAN_COMPACT_ROWS))
        st = scan(s, s->counts, s->ntiles, 1, s->tpos_row, 0);
    if (!st && (forms & SPARTAN_COMPACT_COLS))
        st = scan(s, s->counts, s->ntiles, 2, s->tpos_col, 0);
    if (st != SPARTAN_OK) return st;
    sp_arg b[] = {SP_ARG(nt),          SP_ARG(tr),          SP_ARG(tc),
                  SP_ARG(f),           SP_ARG(s->counts),   SP_ARG(s->tpos_row),
                  SP_ARG(s->tpos_col), SP_ARG(s->list_row), SP_ARG(s->list_col)};
    st = sp_launch_1d(ctx, SP_K_compact_lists, s->ntiles, b, 9);
    if (st == SPARTAN_OK) s->forms = forms;
    s->filled = st == SPARTAN_OK;
    return st;
}
