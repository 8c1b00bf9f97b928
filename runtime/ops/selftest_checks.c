/* The known-answer checks of each kernel family (selftest.h). Each runs the family's operations
 * through the same entry points the library uses, on seeded data, and compares every result with
 * a host reference. The data are small integers, so every sum and product is exact in float in
 * any order and the results must match exactly: one term missed, one index wrong, shows (a
 * bound of (k + 2) * FLT_EPSILON * the terms' magnitudes would hide a lost half of a long
 * reduction of signed terms). The shapes stress what drivers differ in: a tall column of more than
 * 65,536 rows, a reduction of as many terms, a row wider than any tile, and sizes that are
 * multiples of no vector width or tile (simulators, which run every work-item in software, get
 * a shorter column). The layer operations' check is in selftest_nn.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/selftest_run.h"

/* ---- dense GEMM -------------------------------------------------------------------------------
 */

/* want = alpha op(A) op(B) + beta C0 (op(A) m x k, op(B) k x n). */
static void ref_gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                     const float *b, float beta, const float *c0, double *want) {
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            double s = 0.0;
            for (size_t q = 0; q < k; q++)
                s +=
                    (double)(ta ? a[q * m + i] : a[i * k + q]) * (tb ? b[j * k + q] : b[q * n + j]);
            want[i * n + j] = alpha * s + beta * (c0 ? c0[i * n + j] : 0.0);
        }
    }
}

static int gemm_case(sp_check *r, int path, int ta, int tb, size_t m, size_t n, size_t k,
                     float alpha, float beta) {
    sp_check_host h = {0};
    float *a = sp_check_alloc(r, &h, m * k, sizeof(float)),
          *b = sp_check_alloc(r, &h, k * n, sizeof(float));
    float *c = sp_check_alloc(r, &h, m * n, sizeof(float)),
          *got = sp_check_alloc(r, &h, m * n, sizeof(float));
    double *want = sp_check_alloc(r, &h, m * n, sizeof(double));
    int rc = r->failed;
    if (!rc) {
        sp_check_fill_int(r, a, m * k, 0.2, 3, 0);
        sp_check_fill_int(r, b, k * n, 0.0, 3, 0);
        sp_check_fill_int(r, c, m * n, 0.0, 3, 0);
        ref_gemm(ta, tb, m, n, k, alpha, a, b, beta, c, want);
        spartan_tensor *ta_ = sp_check_upload(r, a, ta ? k : m, ta ? m : k);
        spartan_tensor *tb_ = sp_check_upload(r, b, tb ? n : k, tb ? k : n);
        spartan_tensor *tc = sp_check_upload(r, c, m, n);
        if (!r->failed) {
            spartan_status st =
                path < 0 ? sp_reference_gemm(r->ctx, ta, tb, m, n, k, alpha, ta_, tb_, beta, tc)
                         : spartan_gemm_dense(r->ctx, (spartan_gemm_path)path, ta, tb, alpha, ta_,
                                              tb_, beta, tc);
            char what[96];
            snprintf(what, sizeof what, "GEMM%s%s %zux%zux%zu", ta ? " A^T" : "", tb ? " B^T" : "",
                     m, n, k);
            if (!sp_check_call(r, st, what) && !sp_check_download(r, tc, got))
                sp_check_compare(r, what, got, want, NULL, m * n);
        }
        rc = r->failed;
    }
    sp_check_release(r);
    sp_check_host_free(&h);
    return rc;
}

/* A tall C (many work-items), a long reduction (its slices), a wide row with B^T, alpha and
 * beta, and both transposes on a length no vector divides. */
static int check_gemm(sp_check *r, int path) {
    return gemm_case(r, path, 0, 0, r->tall, 5, 3, 1.0f, 0.0f) ||
           gemm_case(r, path, 1, 0, 3, 5, r->tall, 1.0f, 0.0f) ||
           gemm_case(r, path, 0, 1, 7, 1031, 19, 0.5f, 0.25f) ||
           gemm_case(r, path, 1, 1, 5, 3, 1029, -1.0f, 1.0f);
}

/* Tile dropout's GEMMs (sp_gemm_tiles), each use against the host product with the dropped
 * tiles' terms left out: W of 3 tiles and 5 rows by 2 tiles and 3 columns (neither a multiple of
 * the tile), its 4 x 3 tiles kept 2 in 3 from offset 2. */
static int tiles_case(sp_check *r, sp_tile_use use, size_t m) {
    const size_t tile = sp_gemm_tile_size(r->ctx), wk = 3 * tile + 5, wn = 2 * tile + 3;
    const sp_row_pattern p = {4 * 3, 3, 2, 2};
    /* the product's shapes: a (ar x ac), b (br x bc), c (m x n) */
    const size_t ar = m, ac = use == SP_TILES_INPUT ? wn : wk;
    const int weight = use == SP_TILES_WEIGHT || use == SP_TILES_WEIGHT_KEPT;
    const size_t br = weight ? m : wk, bc = wn;
    const size_t cr = weight ? wk : m, cc = use == SP_TILES_INPUT ? wk : wn;
    sp_check_host h = {0};
    float *a = sp_check_alloc(r, &h, ar * ac, sizeof(float)),
          *b = sp_check_alloc(r, &h, br * bc, sizeof(float));
    float *got = sp_check_alloc(r, &h, cr * cc, sizeof(float));
    double *want = sp_check_alloc(r, &h, cr * cc, sizeof(double));
    float *w = sp_check_alloc(r, &h, cr * cc, sizeof(float));
    if (!r->failed) {
        sp_check_fill_int(r, a, ar * ac, 0.2, 3, 0);
        sp_check_fill_int(r, b, br * bc, 0.0, 3, 0);
        const float alpha = 2.0f;
        for (size_t i = 0; i < cr; i++)
            for (size_t j = 0; j < cc; j++) {
                double sum = 0.0;
                if (weight) { /* c = (a^T b) o T: c is W */
                    if (sp_tile_kept(&p, 4, i / tile, j / tile))
                        for (size_t q = 0; q < m; q++) sum += (double)a[q * ac + i] * b[q * bc + j];
                } else if (use == SP_TILES_FORWARD) { /* c = a (W o T), b = W */
                    for (size_t q = 0; q < wk; q++)
                        if (sp_tile_kept(&p, 4, q / tile, j / tile))
                            sum += (double)a[i * ac + q] * b[q * bc + j];
                } else { /* c = a (W o T)^T, b = W */
                    for (size_t q = 0; q < wn; q++)
                        if (sp_tile_kept(&p, 4, j / tile, q / tile))
                            sum += (double)a[i * ac + q] * b[j * bc + q];
                }
                want[i * cc + j] = alpha * sum;
            }
        spartan_tensor *ta = sp_check_upload(r, a, ar, ac), *tb = sp_check_upload(r, b, br, bc);
        spartan_tensor *tc = sp_check_upload(r, NULL, cr, cc);
        static const char *const names[] = {"tile GEMM forward", "tile GEMM input gradient",
                                            "tile GEMM weight gradient",
                                            "tile GEMM weight gradient (kept tiles)"};
        const int kept_only = use == SP_TILES_WEIGHT_KEPT;
        if (!r->failed &&
            !sp_check_call(r, sp_gemm_tiles(r->ctx, use, &p, alpha, ta, tb, tc), names[use]) &&
            !sp_check_download(r, tc, got)) {
            for (size_t i = 0; kept_only && i < cr * cc; i++) /* the dropped: unwritten, any */
                if (!sp_tile_kept(&p, 4, i / cc / tile, i % cc / tile)) want[i] = got[i];
            sp_check_compare(r, names[use], got, want, NULL, cr * cc);
        }
        /* the SGD step from it: the dropped tiles' gradient 0 whatever they hold, v from 0 */
        spartan_tensor *tw = kept_only ? sp_check_upload(r, NULL, cr, cc) : NULL;
        spartan_tensor *tv = kept_only ? sp_check_upload(r, NULL, cr, cc) : NULL;
        const float lr = 0.5f, mom = 0.5f, wd = 0.25f;
        if (kept_only && !r->failed) {
            sp_check_fill_int(r, w, cr * cc, 0.0, 3, 0);
            for (size_t i = 0; i < cr * cc; i++) {
                const int keep = sp_tile_kept(&p, 4, i / cc / tile, i % cc / tile);
                want[i] = w[i] - lr * ((keep ? want[i] : 0.0) + wd * w[i]);
            }
            if (!sp_check_call(r, spartan_tensor_write(tw, w, cr * cc), "write") &&
                !sp_check_call(r, spartan_tensor_fill(tv, 0.0f), "fill") &&
                !sp_check_call(r, sp_gemm_tiles_sgd(r->ctx, &p, tw, tc, tv, lr, mom, wd),
                               "tile SGD") &&
                !sp_check_download(r, tw, got))
                sp_check_compare(r, "tile SGD", got, want, NULL, cr * cc);
        }
    }
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

static int check_tiles(sp_check *r) {
    return tiles_case(r, SP_TILES_FORWARD, 7) || tiles_case(r, SP_TILES_INPUT, 5) ||
           tiles_case(r, SP_TILES_WEIGHT, 9) || tiles_case(r, SP_TILES_WEIGHT_KEPT, 9);
}

/* ---- element-wise ---------------------------------------------------------------------------
 */

static int check_eltwise(sp_check *r) {
    const size_t n = r->tall * 3 + 5, rows = r->tall, cols = 3;
    sp_check_host h = {0};
    float *x = sp_check_alloc(r, &h, n, sizeof(float)),
          *got = sp_check_alloc(r, &h, n, sizeof(float));
    double *want = sp_check_alloc(r, &h, n, sizeof(double));
    float *p = sp_check_alloc(r, &h, 3 * 1031, sizeof(float));
    if (r->failed) goto done;
    sp_check_fill_int(r, x, n, 0.3, 3, 0);
    spartan_tensor *tx = sp_check_upload(r, x, 1, n), *ty = sp_check_upload(r, NULL, 1, n);
    if (r->failed || sp_check_call(r, spartan_relu(r->ctx, tx, ty), "ReLU") ||
        sp_check_download(r, ty, got))
        goto done;
    for (size_t i = 0; i < n; i++) want[i] = x[i] < 0.0f ? 0.0 : x[i];
    if (sp_check_compare(r, "ReLU", got, want, NULL, n)) goto done;
    sp_check_release(r);

    /* a tall matrix transposed into a wide one */
    spartan_tensor *ta = sp_check_upload(r, x, rows, cols),
                   *tt = sp_check_upload(r, NULL, cols, rows);
    if (r->failed || sp_check_call(r, spartan_transpose(r->ctx, ta, tt), "transpose") ||
        sp_check_download(r, tt, got))
        goto done;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) want[j * rows + i] = x[i * cols + j];
    if (sp_check_compare(r, "transpose", got, want, NULL, rows * cols)) goto done;
    sp_check_release(r);

    /* the second step of the split reductions, then the mask and the scale */
    const cl_uint m = 1031, parts = 3;
    const float alpha = 0.5f, beta = 0.25f;
    sp_check_fill_int(r, p, parts * m, 0.0, 3, 0);
    spartan_tensor *tp = sp_check_upload(r, p, parts, m), *tc = sp_check_upload(r, x, 1, m);
    if (r->failed) goto done;
    sp_arg a[] = {SP_ARG(m),     SP_ARG(parts), SP_ARG(tp->mem),
                  SP_ARG(alpha), SP_ARG(beta),  SP_ARG(tc->mem)};
    if (sp_check_call(r, sp_launch_1d(r->ctx, SP_K_eltwise_sum_parts, m, a, 6), "sum of slices") ||
        sp_check_download(r, tc, got))
        goto done;
    for (size_t i = 0; i < m; i++) {
        double s = 0.0;
        for (size_t q = 0; q < parts; q++) s += p[q * m + i];
        want[i] = alpha * s + beta * (double)x[i];
    }
    if (sp_check_compare(r, "sum of slices", got, want, NULL, m)) goto done;
    spartan_tensor *tm = sp_check_upload(r, x + m, 1, m);
    if (r->failed) goto done;
    const float scale = -0.5f;
    sp_arg b[] = {SP_ARG(tc->mem), SP_ARG(tm->mem), SP_ARG(m)};
    sp_arg s[] = {SP_ARG(m), SP_ARG(scale), SP_ARG(tc->mem)};
    float *before = p; /* the sums, reused as host space */
    memcpy(before, got, m * sizeof(float));
    if (sp_check_call(r, sp_launch_1d(r->ctx, SP_K_eltwise_mask_zeros, m, b, 3), "mask") ||
        sp_check_call(r, sp_launch_1d(r->ctx, SP_K_eltwise_scale, m, s, 3), "scale") ||
        sp_check_download(r, tc, got))
        goto done;
    for (size_t i = 0; i < m; i++) want[i] = x[m + i] == 0.0f ? 0.0 : scale * before[i];
    sp_check_compare(r, "mask and scale", got, want, NULL, m);
done:
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

/* ---- the sparsity monitor -------------------------------------------------------------------
 */

/* The non-zero count of every tile of x (rows x cols) and their total. */
static size_t ref_counts(const spartan_sparse *s, const float *x, unsigned *counts) {
    size_t tr, tc, total = 0;
    spartan_sparse_tile(s, &tr, &tc);
    size_t rows = spartan_sparse_rows(s), cols = spartan_sparse_cols(s);
    size_t tiles_c = (cols + tc - 1) / tc, ntiles = ((rows + tr - 1) / tr) * tiles_c;
    memset(counts, 0, ntiles * sizeof *counts);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            if (x[i * cols + j] != 0.0f) {
                counts[(i / tr) * tiles_c + j / tc]++;
                total++;
            }
    return total;
}

/* s's tile counts and non-zero total against x's. */
static int compare_counts(sp_check *r, const char *what, spartan_sparse *s, const float *x,
                          sp_check_host *h) {
    size_t ntiles = s->ntiles, nnz = 0;
    unsigned *want = sp_check_alloc(r, h, ntiles, sizeof *want),
             *got = sp_check_alloc(r, h, ntiles, sizeof *got);
    if (r->failed) return 1;
    size_t total = ref_counts(s, x, want);
    if (sp_check_call(r, spartan_sparse_tile_counts(s, got, ntiles), what) ||
        sp_check_call(r, spartan_sparse_nnz(s, &nnz), what))
        return 1;
    for (size_t t = 0; t < ntiles; t++)
        if (got[t] != want[t])
            return sp_check_fail(r, "%s: tile %zu counts %u non-zeros, it has %u", what, t, got[t],
                                 want[t]);
    if (nnz != total)
        return sp_check_fail(r, "%s: %zu non-zeros counted, there are %zu", what, nnz, total);
    return 0;
}

static int check_monitor(sp_check *r) {
    /* z serves both cases: the tall one reads rows * cols of it, the wide one 3 * wide */
    const size_t rows = r->tall, cols = 3, wide = 10007, n = rows * cols;
    const size_t nz = n > 3 * wide ? n : 3 * wide;
    sp_check_host h = {0};
    float *z = sp_check_alloc(r, &h, nz, sizeof(float)),
          *got = sp_check_alloc(r, &h, n, sizeof(float));
    double *want = sp_check_alloc(r, &h, n, sizeof(double));
    if (r->failed) goto done;
    sp_check_fill(r, z, nz, 0.1, -1.0f, 1.0f);
    spartan_tensor *tz = sp_check_upload(r, z, rows, cols),
                   *ty = sp_check_upload(r, NULL, rows, cols);
    spartan_sparse *s = r->failed ? NULL : sp_check_sparse(r, rows, cols);
    if (r->failed || sp_check_call(r, spartan_relu_monitor(r->ctx, tz, ty, s), "ReLU + monitor") ||
        sp_check_download(r, ty, got))
        goto done;
    for (size_t i = 0; i < n; i++) want[i] = z[i] < 0.0f ? 0.0 : z[i];
    if (sp_check_compare(r, "ReLU + monitor", got, want, NULL, n) ||
        compare_counts(r, "ReLU + monitor", s, got, &h))
        goto done;
    /* with a bias added in the same pass: the same single float sum as the host's */
    const float bias[3] = {-0.5f, 0.0f, 0.75f};
    spartan_tensor *tb = sp_check_upload(r, bias, 1, cols);
    if (r->failed ||
        sp_check_call(r, spartan_bias_relu_monitor(r->ctx, tz, tb, ty, s),
                      "bias + ReLU + monitor") ||
        sp_check_download(r, ty, got))
        goto done;
    for (size_t i = 0; i < n; i++) {
        const float v = z[i] + bias[i % cols];
        want[i] = v < 0.0f ? 0.0 : v;
    }
    if (sp_check_compare(r, "bias + ReLU + monitor", got, want, NULL, n) ||
        compare_counts(r, "bias + ReLU + monitor", s, got, &h))
        goto done;
    sp_check_release(r);
    /* a wide row, counted alone */
    tz = sp_check_upload(r, z, 3, wide);
    s = r->failed ? NULL : sp_check_sparse(r, 3, wide);
    if (r->failed || sp_check_call(r, spartan_monitor(r->ctx, tz, s), "monitor")) goto done;
    compare_counts(r, "monitor", s, z, &h);
done:
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

/* ---- the compaction -------------------------------------------------------------------------
 */

static int read_uints(sp_check *r, cl_mem m, unsigned *host, size_t n, const char *what) {
    cl_int rc =
        clEnqueueReadBuffer(r->ctx->queue, m, CL_TRUE, 0, n * sizeof(cl_uint), host, 0, NULL, NULL);
    if (rc == CL_SUCCESS) return 0;
    return sp_check_fail(r, "reading %s: %s", what, sp_cl_error_name(rc));
}

/* The scans and tile lists of both forms, against the ones the tile counts imply. */
static int compare_lists(sp_check *r, const char *what, spartan_sparse *s, const float *x,
                         sp_check_host *h) {
    size_t nt = s->ntiles, tr = s->tiles_r, tc = s->tiles_c;
    unsigned *counts = sp_check_alloc(r, h, nt, sizeof *counts),
             *got = sp_check_alloc(r, h, nt + 1, sizeof *got);
    unsigned *pos = sp_check_alloc(r, h, nt + 1, sizeof *pos);
    if (r->failed) return 1;
    ref_counts(s, x, counts);
    for (int form = 0; form < 2; form++) {
        /* the exclusive scan of the non-empty flags in the form's tile order */
        pos[0] = 0;
        for (size_t q = 0; q < nt; q++) {
            size_t t = form == 0 ? q : (q % tr) * tc + q / tr;
            pos[q + 1] = pos[q] + (counts[t] != 0);
        }
        if (read_uints(r, form == 0 ? s->tpos_row : s->tpos_col, got, nt + 1, what)) return 1;
        for (size_t q = 0; q <= nt; q++)
            if (got[q] != pos[q])
                return sp_check_fail(r, "%s: %s scan entry %zu is %u, want %u", what,
                                     form == 0 ? "row" : "column", q, got[q], pos[q]);
        if (pos[nt] && read_uints(r, form == 0 ? s->list_row : s->list_col, got, pos[nt], what))
            return 1;
        for (size_t q = 0; q < nt; q++) {
            size_t t = form == 0 ? q : (q % tr) * tc + q / tr;
            if (counts[t] && got[pos[q]] != t)
                return sp_check_fail(r, "%s: %s list entry %u is tile %u, want %zu", what,
                                     form == 0 ? "row" : "column", pos[q], got[pos[q]], t);
        }
    }
    return 0;
}

static int compact_case(sp_check *r, size_t rows, size_t cols, double zeros) {
    sp_check_host h = {0};
    float *x = sp_check_alloc(r, &h, rows * cols, sizeof(float));
    if (!r->failed) {
        sp_check_fill(r, x, rows * cols, zeros, -1.0f, 1.0f);
        for (size_t j = 0; j < cols; j++) x[(rows / 2) * cols + j] = 0.0f; /* a dead row */
        spartan_tensor *tx = sp_check_upload(r, x, rows, cols);
        spartan_sparse *s = r->failed ? NULL : sp_check_sparse(r, rows, cols);
        char what[64];
        snprintf(what, sizeof what, "compaction of %zux%zu", rows, cols);
        if (!r->failed &&
            !sp_check_call(
                r, spartan_compact(r->ctx, tx, s, SPARTAN_COMPACT_ROWS | SPARTAN_COMPACT_COLS),
                what) &&
            !compare_counts(r, what, s, x, &h))
            compare_lists(r, what, s, x, &h);
    }
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

static int check_compact(sp_check *r) {
    return compact_case(r, r->tall, 3, 0.5) || compact_case(r, 5, 1031, 0.7);
}

/* ---- the sparse GEMMs -----------------------------------------------------------------------
 */

enum { SP_FWD, SP_DIRECT, SP_BWD_INPUT, SP_BWD_WEIGHT, SP_BWD_WEIGHT_DZ };

/* One sparse GEMM on X (m x k) and the dense operands, against the dense reference. */
static int sparse_case(sp_check *r, int op, size_t m, size_t k, size_t n, double zeros) {
    static const char *const names[] = {"forward", "forward (direct)", "backward-by-input",
                                        "backward-by-weight", "backward-by-weight on dZ"};
    sp_check_host h = {0};
    /* fwd: Y = X W (W k x n); bwd_input: dX = (dZ W^T) (*) (X != 0) (dZ m x n, W k x n);
     * bwd_weight: dW = X^T dZ (dZ m x n), X sparse or (_dz) dZ sparse */
    size_t out = op == SP_BWD_INPUT ? m * k : op >= SP_BWD_WEIGHT ? k * n : m * n;
    float *x = sp_check_alloc(r, &h, m * k, sizeof(float)),
          *d = sp_check_alloc(r, &h, (op >= SP_BWD_INPUT ? m : k) * n, sizeof(float));
    float *w = sp_check_alloc(r, &h, k * n, sizeof(float)),
          *got = sp_check_alloc(r, &h, out, sizeof(float));
    double *want = sp_check_alloc(r, &h, out, sizeof(double));
    if (r->failed) goto done;
    sp_check_fill_int(r, x, m * k, op == SP_BWD_WEIGHT_DZ ? 0.0 : zeros, 3, 0);
    sp_check_fill_int(r, d, (op >= SP_BWD_INPUT ? m : k) * n, op == SP_BWD_WEIGHT_DZ ? zeros : 0.0,
                      3, 0);
    sp_check_fill_int(r, w, k * n, 0.0, 3, 0);
    spartan_tensor *tx = sp_check_upload(r, x, m, k),
                   *td = sp_check_upload(r, d, op >= SP_BWD_INPUT ? m : k, n);
    spartan_tensor *tw = op == SP_BWD_INPUT ? sp_check_upload(r, w, k, n) : NULL;
    spartan_tensor *to = sp_check_upload(r, NULL,
                                         op == SP_BWD_INPUT    ? m
                                         : op >= SP_BWD_WEIGHT ? k
                                                               : m,
                                         op == SP_BWD_INPUT ? k : n);
    spartan_sparse *s = r->failed                ? NULL
                        : op == SP_BWD_WEIGHT_DZ ? sp_check_sparse(r, m, n)
                                                 : sp_check_sparse(r, m, k);
    if (r->failed) goto done;
    spartan_context *ctx = r->ctx;
    spartan_status st = SPARTAN_OK;
    switch (op) {
    case SP_FWD:
        st = spartan_compact(ctx, tx, s, SPARTAN_COMPACT_ROWS);
        if (st == SPARTAN_OK) st = spartan_gemm_sparse_fwd(ctx, s, td, to);
        ref_gemm(0, 0, m, n, k, 1.0f, x, d, 0.0f, NULL, want);
        break;
    case SP_DIRECT:
        st = spartan_gemm_sparse_fwd_direct(ctx, tx, td, to);
        ref_gemm(0, 0, m, n, k, 1.0f, x, d, 0.0f, NULL, want);
        break;
    case SP_BWD_INPUT:
        st = spartan_compact(ctx, tx, s, SPARTAN_COMPACT_ROWS);
        if (st == SPARTAN_OK) st = spartan_gemm_sparse_bwd_input(ctx, s, td, tw, to);
        ref_gemm(0, 1, m, k, n, 1.0f, d, w, 0.0f, NULL, want);
        for (size_t i = 0; i < m * k; i++)
            if (x[i] == 0.0f) want[i] = 0.0;
        break;
    case SP_BWD_WEIGHT:
        st = spartan_compact(ctx, tx, s, SPARTAN_COMPACT_COLS);
        if (st == SPARTAN_OK) st = spartan_gemm_sparse_bwd_weight(ctx, s, td, to);
        ref_gemm(1, 0, k, n, m, 1.0f, x, d, 0.0f, NULL, want);
        break;
    default:
        st = spartan_compact(ctx, td, s, SPARTAN_COMPACT_COLS);
        if (st == SPARTAN_OK) st = spartan_gemm_sparse_bwd_weight_dz(ctx, tx, s, to);
        ref_gemm(1, 0, k, n, m, 1.0f, x, d, 0.0f, NULL, want);
        break;
    }
    char what[96];
    snprintf(what, sizeof what, "sparse %s %zux%zux%zu", names[op], m, k, n);
    if (!sp_check_call(r, st, what) && !sp_check_download(r, to, got))
        sp_check_compare(r, what, got, want, NULL, out);
done:
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

/* The weight-sparse GEMMs (gemm_wsparse.c) on small integers (exact in any order): op 0 the W
 * form Y = X W, 1 the W^T form dX = dY W^T, 2 both zeros skipped; W with wzeros of zeros, X with
 * half. */
static int wsparse_case(sp_check *r, int op, size_t m, size_t k, size_t n, double wzeros) {
    static const char *const names[] = {"forward", "backward-by-input", "forward (both zeros)"};
    sp_check_host h = {0};
    const size_t in_cols = op == 1 ? n : k, out_cols = op == 1 ? k : n;
    float *a = sp_check_alloc(r, &h, m * in_cols, sizeof(float)),
          *w = sp_check_alloc(r, &h, k * n, sizeof(float)),
          *got = sp_check_alloc(r, &h, m * out_cols, sizeof(float));
    double *want = sp_check_alloc(r, &h, m * out_cols, sizeof(double));
    spartan_wsparse *ws = NULL;
    if (r->failed) goto done;
    sp_check_fill_int(r, a, m * in_cols, 0.5, 3, 0);
    sp_check_fill_int(r, w, k * n, wzeros, 3, 0);
    spartan_tensor *ta = sp_check_upload(r, a, m, in_cols), *tw = sp_check_upload(r, w, k, n);
    spartan_tensor *to = sp_check_upload(r, NULL, m, out_cols);
    if (r->failed) goto done;
    spartan_context *ctx = r->ctx;
    spartan_status st = spartan_wsparse_create(ctx, k, n, &ws);
    if (st == SPARTAN_OK) st = spartan_wsparse_build(ws, tw);
    if (st == SPARTAN_OK)
        st = op == 0   ? spartan_gemm_wsparse_fwd(ctx, ta, tw, ws, to)
             : op == 1 ? spartan_gemm_wsparse_bwd_input(ctx, ta, tw, ws, to)
                       : spartan_gemm_wsparse_fwd_both(ctx, ta, tw, ws, to);
    if (op == 1)
        ref_gemm(0, 1, m, k, n, 1.0f, a, w, 0.0f, NULL, want);
    else
        ref_gemm(0, 0, m, n, k, 1.0f, a, w, 0.0f, NULL, want);
    char what[96];
    snprintf(what, sizeof what, "weight-sparse %s %zux%zux%zu", names[op], m, k, n);
    if (!sp_check_call(r, st, what) && !sp_check_download(r, to, got))
        sp_check_compare(r, what, got, want, NULL, m * out_cols);
done:
    spartan_wsparse_destroy(ws);
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

/* The column walks over a tall X or dZ, the row walks over a row longer than 65,536, the
 * masked dot products over long rows of dZ, walks over wide blocks of columns, and a block of
 * columns wider than any tile. */
static int check_gemm_sparse(sp_check *r) {
    return sparse_case(r, SP_BWD_WEIGHT, r->tall, 3, 5, 0.1) ||
           sparse_case(r, SP_BWD_WEIGHT_DZ, r->tall, 3, 5, 0.1) ||
           sparse_case(r, SP_FWD, 3, r->tall, 5, 0.1) ||
           sparse_case(r, SP_DIRECT, 3, r->tall, 5, 0.1) ||
           sparse_case(r, SP_BWD_INPUT, 7, 1031, 523, 0.5) ||
           /* wide blocks of columns (a vector FMA per block and non-zero: loops a compiler may
            * not unroll) over columns and rows of r->wide */
           sparse_case(r, SP_BWD_WEIGHT, r->wide, 19, 37, 0.1) ||
           sparse_case(r, SP_BWD_WEIGHT_DZ, r->wide, 19, 37, 0.1) ||
           sparse_case(r, SP_FWD, 19, r->wide, 37, 0.1) ||
           sparse_case(r, SP_DIRECT, 19, r->wide, 37, 0.1) ||
           sparse_case(r, SP_FWD, 5, 37, 1031, 0.5) ||
           /* the weight-sparse GEMMs: lists of every length up to a whole column, rows that are
            * not a whole vector, blocks of the union that are not whole */
           wsparse_case(r, 0, 19, 523, 37, 0.9) || wsparse_case(r, 1, 19, 523, 37, 0.9) ||
           wsparse_case(r, 2, 19, 523, 37, 0.9) || wsparse_case(r, 0, 3, 67, 131, 0.0) ||
           wsparse_case(r, 1, 3, 67, 131, 0.0) || wsparse_case(r, 2, 3, 67, 131, 0.0);
}

/* ---- entry points ---------------------------------------------------------------------------
 */

/* The reference family: its GEMM, and its count against the host's. */
static int check_reference(sp_check *r) {
    if (check_gemm(r, -1)) return 1;
    const size_t rows = r->tall, cols = 3;
    sp_check_host h = {0};
    float *z = sp_check_alloc(r, &h, rows * cols, sizeof(float));
    if (!r->failed) {
        sp_check_fill(r, z, rows * cols, 0.3, 0.0f, 1.0f);
        spartan_tensor *tz = sp_check_upload(r, z, rows, cols);
        spartan_sparse *s = r->failed ? NULL : sp_check_sparse(r, rows, cols);
        if (!r->failed && !sp_check_call(r, sp_reference_count(r->ctx, tz, tz, 0, s), "count"))
            compare_counts(r, "reference count", s, z, &h);
    }
    sp_check_release(r);
    sp_check_host_free(&h);
    return r->failed;
}

int sp_selftest_gemm(spartan_context *ctx, int path, char *why, size_t why_len) {
    sp_check r;
    sp_check_init(&r, ctx, why, why_len, 0x5e1f7e57u);
    return check_gemm(&r, path);
}

int sp_selftest_family(spartan_context *ctx, sp_family f, char *why, size_t why_len) {
    sp_check r;
    sp_check_init(&r, ctx, why, why_len, 0x5e1f7e57u + (uint64_t)f);
    switch (f) {
    case SP_FAMILY_eltwise:
        return check_eltwise(&r);
    case SP_FAMILY_gemm_dense:
        return check_gemm(&r, SPARTAN_GEMM_OWN) || check_tiles(&r);
    case SP_FAMILY_reference:
        return check_reference(&r);
    case SP_FAMILY_monitor:
        return check_monitor(&r);
    case SP_FAMILY_compact:
        return check_compact(&r);
    case SP_FAMILY_gemm_sparse:
        return check_gemm_sparse(&r);
    case SP_FAMILY_nn:
        return sp_check_nn(&r);
    case SP_FAMILY_conv:
        return sp_check_conv(&r);
    case SP_FAMILY_conv_dx:
        return sp_check_conv_dx(&r);
    case SP_FAMILY_conv_dw:
        return sp_check_conv_dw(&r);
    default:
        return sp_check_fail(&r, "no check for family %d", (int)f);
    }
}
