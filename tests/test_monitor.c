/* Tests of the sparsity monitor (runtime/ops/monitor.c, kernels_cl/monitor.cl) against
 * tests/ref: spartan_relu, spartan_relu_monitor (Y exactly, in place too) and spartan_monitor on
 * signed data, every tile count and the total exactly, for 1 x 1, empty matrices, primes,
 * non-multiples of the tile, more tiles than a work-group holds and enough tiles for the
 * compaction's scan to recurse; sparsity 0 to 1 in the random, clustered and dead-row patterns;
 * other tiles and scalar kernels (SPARTAN_TUNE); shape mismatches; counts asked of a sparse
 * object nothing has filled.
 * The compaction's output is private: it is checked end to end by test_gemm_sparse; here only
 * that it runs on what the monitor made. SPARTAN_TEST_SMALL=1 (Oclgrind): tiny shapes only. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "patterns.h"
#include "ref/ref.h"
#include "spartan/spartan.h"

static spartan_context *ctx;
static int small; /* SPARTAN_TEST_SMALL=1: tiny shapes only */

static void setup(void) {
    spartan_status st = spartan_context_create(NULL, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
}

static void teardown(void) {
    spartan_context_destroy(ctx);
    ctx = NULL;
}

/* ---- helpers -------------------------------------------------------------------------------- */

typedef enum { MON_COUNT, MON_RELU, MON_RELU_INPLACE, MON_BIAS_RELU } mon_mode;

static const char *mode_name(mon_mode m) {
    return m == MON_COUNT       ? "monitor"
           : m == MON_RELU      ? "relu_monitor"
           : m == MON_BIAS_RELU ? "bias_relu_monitor"
                                : "relu_monitor in place";
}

#define floats(n) th_floats(n)

/* First index where got and want differ (n when none): one assertion per array, not per element
 * (check records every passing assertion). */
static size_t first_diff(const float *got, const float *want, size_t n) {
    size_t i = 0;
    while (i < n && got[i] == want[i]) i++;
    return i;
}

#define matrix(rows, cols) th_matrix(ctx, rows, cols)

#define upload(host, rows, cols) th_upload(ctx, host, rows, cols)

static spartan_sparse *sparse(size_t rows, size_t cols) {
    spartan_sparse *s = NULL;
    spartan_status st = spartan_sparse_create(ctx, rows, cols, &s);
    ck_assert_msg(st == SPARTAN_OK, "sparse %zux%zu: %s", rows, cols, spartan_last_error(ctx));
    ck_assert_uint_eq(spartan_sparse_rows(s), rows);
    ck_assert_uint_eq(spartan_sparse_cols(s), cols);
    return s;
}

/* The tile is the device's tuned one, and the counts of the last monitor call on s are exactly
 * those of x (host), as is their total. */
static void check_counts(spartan_sparse *s, const float *x, size_t rows, size_t cols,
                         const char *what) {
    size_t tr = 0, tc = 0;
    spartan_sparse_tile(s, &tr, &tc);
    ck_assert_uint_eq(tr, (size_t)spartan_context_tuned(ctx, "TILE_ROWS"));
    ck_assert_uint_eq(tc, (size_t)spartan_context_tuned(ctx, "TILE_COLS"));
    size_t ntiles = ((rows + tr - 1) / tr) * ((cols + tc - 1) / tc);
    unsigned *got = malloc((ntiles ? ntiles : 1) * sizeof *got);
    unsigned *want = malloc((ntiles ? ntiles : 1) * sizeof *want);
    ck_assert(got && want);
    spartan_status st = spartan_sparse_tile_counts(s, got, ntiles);
    ck_assert_msg(st == SPARTAN_OK, "%s: tile_counts: %s", what, spartan_last_error(ctx));
    ref_tile_counts(want, x, rows, cols, tr, tc);
    size_t t = 0;
    while (t < ntiles && got[t] == want[t]) t++;
    ck_assert_msg(t == ntiles, "%s: tile %zu (of %zu, %zux%zu tiles) counts %u, want %u", what, t,
                  ntiles, tr, tc, got[t < ntiles ? t : 0], want[t < ntiles ? t : 0]);
    size_t nnz = (size_t)-1;
    st = spartan_sparse_nnz(s, &nnz);
    ck_assert_msg(st == SPARTAN_OK, "%s: nnz: %s", what, spartan_last_error(ctx));
    size_t want_nnz = ref_nonzeros(x, rows * cols);
    ck_assert_msg(nnz == want_nnz, "%s: nnz %zu, want %zu", what, nnz, want_nnz);
    free(got);
    free(want);
}

/* One monitor call on a rows x cols matrix of pattern k at zero fraction sp (signed values, so
 * the ReLU has something to do); checks Y exactly and the counts. */
static void check_monitor(size_t rows, size_t cols, pat_kind k, double sp, mon_mode mode,
                          uint64_t seed) {
    size_t n = rows * cols;
    char what[160];
    snprintf(what, sizeof what, "%s %zux%zu %s s=%.2f", mode_name(mode), rows, cols, pat_name(k),
             sp);
    float *z = floats(n), *want = floats(n), *got = floats(n);
    pat_fill(z, rows, cols, k, sp, 1, seed);
    spartan_tensor *tz = upload(z, rows, cols);
    spartan_tensor *ty = mode == MON_RELU || mode == MON_BIAS_RELU ? matrix(rows, cols) : tz;
    spartan_sparse *s = sparse(rows, cols);
    /* the bias: one value a column, signed, so it moves elements across zero both ways */
    float *bias = floats(cols ? cols : 1);
    pat_fill_dense(bias, cols, seed + 7);
    spartan_tensor *tb = mode == MON_BIAS_RELU ? upload(bias, 1, cols) : NULL;
    spartan_status st = mode == MON_COUNT       ? spartan_monitor(ctx, tz, s)
                        : mode == MON_BIAS_RELU ? spartan_bias_relu_monitor(ctx, tz, tb, ty, s)
                                                : spartan_relu_monitor(ctx, tz, ty, s);
    ck_assert_msg(st == SPARTAN_OK, "%s: %s (%s)", what, spartan_status_name(st),
                  spartan_last_error(ctx));
    if (mode == MON_COUNT) {
        memcpy(want, z, n * sizeof *z);
    } else if (mode == MON_BIAS_RELU) { /* the one float sum, as spartan_bias_add makes it */
        for (size_t i = 0; i < n; i++) {
            const float v = z[i] + bias[i % cols];
            want[i] = v < 0.0f ? 0.0f : v;
        }
    } else {
        ref_relu(want, z, n);
    }
    ck_assert_int_eq(spartan_tensor_read(ty, got, n), SPARTAN_OK);
    size_t i = first_diff(got, want, n);
    ck_assert_msg(i == n, "%s: y[%zu,%zu] = %.9g, want %.9g", what, i / cols, i % cols,
                  (double)got[i < n ? i : 0], (double)want[i < n ? i : 0]);
    check_counts(s, want, rows, cols, what);
    spartan_sparse_destroy(s);
    spartan_tensor_destroy(tb);
    free(bias);
    if (ty != tz) spartan_tensor_destroy(ty);
    spartan_tensor_destroy(tz);
    free(z);
    free(want);
    free(got);
}

static const double sparsities[] = {0.0, 0.5, 0.9, 0.99, 1.0};
#define N_SPARSITIES (sizeof sparsities / sizeof sparsities[0])
static const pat_kind patterns[] = {PAT_RANDOM, PAT_CLUSTER, PAT_DEADROWS};
#define N_PATTERNS (sizeof patterns / sizeof patterns[0])
#define SEED(i, j) (th_seed() * 1000003u + (uint64_t)(i)*64u + (uint64_t)(j))

typedef struct {
    size_t rows, cols;
} shape;

/* 1 x 1, primes, non-multiples of the tile in either direction, one exact tile, and (past the
 * tiny ones) more tiles than a work-group of the monitor holds. */
static const shape shapes[] = {{1, 1},  {1, 37},  {37, 1},   {7, 13},   {8, 32},
                               {9, 33}, {31, 40}, {65, 130}, {97, 211}, {1000, 777}};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])
#define N_TINY   8 /* shapes[0 .. N_TINY) are Oclgrind-sized; 65 x 130 is > 64 tiles there */

/* Every shape in the three modes; every pattern and sparsity on each shape. */
static void check_all(mon_mode mode) {
    size_t nshapes = small ? N_TINY : N_SHAPES;
    for (size_t i = 0; i < nshapes; i++)
        for (size_t p = 0; p < N_PATTERNS; p++)
            for (size_t j = 0; j < N_SPARSITIES; j++) {
                /* On the simulator, and for the large shape: every pattern once per shape, at
                 * a rotating sparsity. */
                int few = small || shapes[i].rows * shapes[i].cols > 100000;
                if (few && j != (i + p + (size_t)mode) % N_SPARSITIES) continue;
                check_monitor(shapes[i].rows, shapes[i].cols, patterns[p], sparsities[j], mode,
                              SEED(i, p * 8 + j));
            }
}

/* ---- tests ---------------------------------------------------------------------------------- */

START_TEST(relu_matches_reference) {
    const shape sh[] = {{1, 1}, {7, 13}, {33, 65}, {100, 257}};
    for (size_t i = 0; i < (small ? 3u : 4u); i++) {
        size_t n = sh[i].rows * sh[i].cols;
        float *z = floats(n), *want = floats(n), *got = floats(n);
        pat_fill(z, sh[i].rows, sh[i].cols, PAT_RANDOM, 0.3, 1, SEED(50, i));
        ref_relu(want, z, n);
        spartan_tensor *tz = upload(z, sh[i].rows, sh[i].cols),
                       *ty = matrix(sh[i].rows, sh[i].cols);
        ck_assert_int_eq(spartan_relu(ctx, tz, ty), SPARTAN_OK);
        ck_assert_int_eq(spartan_tensor_read(ty, got, n), SPARTAN_OK);
        size_t e = first_diff(got, want, n);
        ck_assert_msg(e == n, "relu %zux%zu: y[%zu]", sh[i].rows, sh[i].cols, e);
        ck_assert_int_eq(spartan_relu(ctx, tz, tz), SPARTAN_OK); /* in place */
        ck_assert_int_eq(spartan_tensor_read(tz, got, n), SPARTAN_OK);
        e = first_diff(got, want, n);
        ck_assert_msg(e == n, "relu in place %zux%zu: y[%zu]", sh[i].rows, sh[i].cols, e);
        spartan_tensor_destroy(tz);
        spartan_tensor_destroy(ty);
        free(z);
        free(want);
        free(got);
    }
}
END_TEST

START_TEST(relu_monitor_matches_reference) {
    check_all(MON_RELU);
}
END_TEST

START_TEST(relu_monitor_in_place) {
    check_all(MON_RELU_INPLACE);
}
END_TEST

START_TEST(bias_relu_monitor_matches_reference) {
    check_all(MON_BIAS_RELU);
    /* a bias of the wrong length, or sharing the output's buffer, is refused */
    spartan_tensor *z = matrix(4, 5), *y = matrix(4, 5), *b4 = matrix(1, 4), *b5 = matrix(1, 5);
    spartan_sparse *s = sparse(4, 5);
    ck_assert_int_eq(spartan_bias_relu_monitor(ctx, z, b4, y, s), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_bias_relu_monitor(ctx, z, NULL, y, s),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_bias_relu_monitor(ctx, z, b5, y, s), SPARTAN_OK);
    spartan_sparse_destroy(s);
    spartan_tensor_destroy(z);
    spartan_tensor_destroy(y);
    spartan_tensor_destroy(b4);
    spartan_tensor_destroy(b5);
}
END_TEST

START_TEST(monitor_counts_signed_nonzeros) {
    check_all(MON_COUNT);
}
END_TEST

/* Empty matrices: the sparse descriptor, the monitor and its results all work with no tiles. */
START_TEST(empty_matrices) {
    const shape sh[] = {{0, 5}, {5, 0}, {0, 0}, {0, 100}};
    for (size_t i = 0; i < sizeof sh / sizeof sh[0]; i++) {
        float dummy = 0.0f;
        spartan_tensor *z = upload(&dummy, sh[i].rows, sh[i].cols);
        spartan_tensor *y = matrix(sh[i].rows, sh[i].cols);
        spartan_sparse *s = sparse(sh[i].rows, sh[i].cols);
        ck_assert_int_eq(spartan_relu_monitor(ctx, z, y, s), SPARTAN_OK);
        check_counts(s, &dummy, sh[i].rows, sh[i].cols, "relu_monitor empty");
        ck_assert_int_eq(spartan_monitor(ctx, z, s), SPARTAN_OK);
        check_counts(s, &dummy, sh[i].rows, sh[i].cols, "monitor empty");
        ck_assert_int_eq(spartan_compact(ctx, z, s, SPARTAN_COMPACT_ROWS | SPARTAN_COMPACT_COLS),
                         SPARTAN_OK);
        ck_assert_int_eq(spartan_context_finish(ctx), SPARTAN_OK);
        spartan_sparse_destroy(s);
        spartan_tensor_destroy(y);
        spartan_tensor_destroy(z);
    }
}
END_TEST

/* 3000 x 3000 is 35k tiles of 8 x 32 (the POCL tile): past one work-group of the monitor's
 * reduction many times over, and enough for the compaction's multi-pass scan to recurse. */
START_TEST(large_matrix) {
    const size_t rows = 3000, cols = 3000;
    check_monitor(rows, cols, PAT_RANDOM, 0.5, MON_RELU_INPLACE, SEED(60, 0));
    check_monitor(rows, cols, PAT_CLUSTER, 0.9, MON_COUNT, SEED(60, 1));
    /* and the compaction of it runs */
    float *x = floats(rows * cols);
    pat_fill(x, rows, cols, PAT_DEADROWS, 0.99, 0, SEED(60, 2));
    spartan_tensor *tx = upload(x, rows, cols);
    spartan_sparse *s = sparse(rows, cols);
    ck_assert_int_eq(spartan_monitor(ctx, tx, s), SPARTAN_OK);
    ck_assert_int_eq(spartan_compact(ctx, tx, s, SPARTAN_COMPACT_ROWS | SPARTAN_COMPACT_COLS),
                     SPARTAN_OK);
    ck_assert_int_eq(spartan_context_finish(ctx), SPARTAN_OK);
    check_counts(s, x, rows, cols, "monitor 3000x3000 deadrows 0.99 after compact");
    spartan_sparse_destroy(s);
    spartan_tensor_destroy(tx);
    free(x);
}
END_TEST

/* One descriptor reused: each monitor call replaces the counts of the one before (denser,
 * sparser, ReLU, plain). */
START_TEST(monitor_reuses_descriptor) {
    const size_t rows = small ? 19 : 203, cols = small ? 37 : 301;
    const double seq[] = {0.99, 0.0, 1.0, 0.5};
    float *z = floats(rows * cols), *x = floats(rows * cols);
    spartan_tensor *tz = matrix(rows, cols), *tx = matrix(rows, cols);
    spartan_sparse *s = sparse(rows, cols);
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        pat_fill(z, rows, cols, (pat_kind)(i % 2 ? PAT_RANDOM : PAT_CLUSTER), seq[i], 1,
                 SEED(70, i));
        ck_assert_int_eq(spartan_tensor_write(tz, z, rows * cols), SPARTAN_OK);
        if (i % 2) {
            ck_assert_int_eq(spartan_relu_monitor(ctx, tz, tx, s), SPARTAN_OK);
            ref_relu(x, z, rows * cols);
        } else {
            ck_assert_int_eq(spartan_monitor(ctx, tz, s), SPARTAN_OK);
            memcpy(x, z, rows * cols * sizeof *x);
        }
        check_counts(s, x, rows, cols, "reused descriptor");
    }
    spartan_sparse_destroy(s);
    spartan_tensor_destroy(tz);
    spartan_tensor_destroy(tx);
    free(z);
    free(x);
}
END_TEST

/* The compaction runs on what the monitor made, in each form, and a sparse GEMM on it is right
 * (the full check is test_gemm_sparse). */
START_TEST(compact_then_gemm) {
    const size_t m = 9, k = 37, n = 5;
    float *x = floats(m * k), *w = floats(k * n), *y = floats(m * n);
    double *want = malloc(m * n * sizeof *want);
    ck_assert_ptr_nonnull(want);
    pat_fill(x, m, k, PAT_RANDOM, 0.6, 1, SEED(80, 0));
    pat_fill_dense(w, k * n, SEED(80, 1));
    spartan_tensor *tx = upload(x, m, k), *tw = upload(w, k, n), *ty = matrix(m, n);
    spartan_sparse *s = sparse(m, k);
    ck_assert_int_eq(spartan_monitor(ctx, tx, s), SPARTAN_OK);
    ck_assert_int_eq(spartan_compact(ctx, tx, s, SPARTAN_COMPACT_COLS), SPARTAN_OK);
    ck_assert_int_eq(spartan_compact(ctx, tx, s, SPARTAN_COMPACT_ROWS), SPARTAN_OK);
    ck_assert_int_eq(spartan_compact(ctx, tx, s, SPARTAN_COMPACT_ROWS | SPARTAN_COMPACT_COLS),
                     SPARTAN_OK);
    ck_assert_int_eq(spartan_gemm_sparse_fwd(ctx, s, tw, ty), SPARTAN_OK);
    ck_assert_int_eq(spartan_tensor_read(ty, y, m * n), SPARTAN_OK);
    ref_gemm(want, 0, 0, m, n, k, 1.0, x, w, 0.0, NULL);
    size_t first = 0;
    double tol = th_tol(k, ref_max_abs(x, m * k) * ref_max_abs(w, k * n));
    ck_assert_msg(th_count_bad(y, want, m * n, tol, &first) == 0, "y[%zu] = %.9g, want %.9g", first,
                  (double)y[first], want[first]);
    spartan_sparse_destroy(s);
    spartan_tensor_destroy(tx);
    spartan_tensor_destroy(tw);
    spartan_tensor_destroy(ty);
    free(x);
    free(w);
    free(y);
    free(want);
}
END_TEST

/* Other tuned parameters (SPARTAN_TUNE, read when a context is made; added to any already set).
 * The fixture's context is replaced. */
static void with_tune(const char *params) {
    th_context_with_tune(&ctx, params);
}

/* A few shapes in every mode, with the tile and vector width of the context. */
static void check_some(void) {
    const shape sh[] = {{1, 1}, {7, 13}, {9, 33}, {31, 40}, {130, 260}, {301, 203}};
    size_t nshapes = small ? 4 : 6;
    for (size_t i = 0; i < nshapes; i++)
        for (int mode = MON_COUNT; mode <= MON_RELU_INPLACE; mode++)
            check_monitor(sh[i].rows, sh[i].cols, patterns[(i + (size_t)mode) % N_PATTERNS],
                          sparsities[(i + (size_t)mode) % N_SPARSITIES], (mon_mode)mode,
                          SEED(90 + i, mode));
}

/* Odd tiles (3 x 5: not a vector multiple, the monitor's scalar path everywhere). */
START_TEST(tune_odd_tile) {
    with_tune("TILE_ROWS=3,TILE_COLS=5");
    check_some();
}
END_TEST

/* One element per tile. */
START_TEST(tune_one_element_tiles) {
    with_tune("TILE_ROWS=1,TILE_COLS=1");
    check_some();
}
END_TEST

/* The largest tile: 64 x 128 = 8192 elements (tuned.c's bound). */
START_TEST(tune_largest_tile) {
    with_tune("TILE_ROWS=64,TILE_COLS=128");
    check_some();
}
END_TEST

/* Scalar kernels: VEC=1 (a device whose preferred float vector width is 1). */
START_TEST(tune_scalar_odd_blocks) {
    with_tune("VEC=1,GEMM_RB=3,GEMM_NB=2,SPARSE_NB=3");
    check_some();
}
END_TEST

/* Z, Y and s of different shapes, and a count that is not the number of tiles. */
START_TEST(shape_mismatch_is_invalid) {
    float host[64] = {0};
    spartan_tensor *z = upload(host, 4, 8), *y = matrix(4, 7), *x = matrix(8, 4);
    spartan_sparse *s = sparse(4, 8), *s2 = sparse(5, 8), *s3 = sparse(4, 9);
    const spartan_status inv = SPARTAN_STATUS_INVALID_ARGUMENT;
    ck_assert_int_eq(spartan_relu_monitor(ctx, z, y, s), inv);
    ck_assert_int_eq(spartan_relu_monitor(ctx, z, z, s2), inv);
    ck_assert_int_eq(spartan_relu_monitor(ctx, z, z, s3), inv);
    ck_assert_int_eq(spartan_monitor(ctx, z, s2), inv);
    ck_assert_int_eq(spartan_monitor(ctx, z, s3), inv);
    ck_assert_int_eq(spartan_monitor(ctx, z, s), SPARTAN_OK);
    size_t tr = 0, tc = 0;
    spartan_sparse_tile(s, &tr, &tc);
    size_t ntiles = ((4 + tr - 1) / tr) * ((8 + tc - 1) / tc);
    unsigned counts[64];
    ck_assert_int_eq(spartan_sparse_tile_counts(s, counts, ntiles + 1), inv);
    ck_assert_int_eq(spartan_compact(ctx, x, s, SPARTAN_COMPACT_ROWS), inv);
    spartan_sparse_destroy(s);
    spartan_sparse_destroy(s2);
    spartan_sparse_destroy(s3);
    spartan_tensor_destroy(z);
    spartan_tensor_destroy(y);
    spartan_tensor_destroy(x);
}
END_TEST

/* Y with as many elements as Z but another shape ("Z, Y and s must have the same shape"). */
START_TEST(relu_output_shape_mismatch_is_invalid) {
    float host[32] = {0};
    spartan_tensor *z = upload(host, 4, 8), *y = matrix(8, 4);
    spartan_sparse *s = sparse(4, 8);
    ck_assert_int_eq(spartan_relu_monitor(ctx, z, y, s), SPARTAN_STATUS_INVALID_ARGUMENT);
    spartan_sparse_destroy(s);
    spartan_tensor_destroy(z);
    spartan_tensor_destroy(y);
}
END_TEST

/* A spartan_sparse that no monitor or compaction has filled holds no counts: nnz and the tile
 * counts refuse it (they used to read uninitialised device memory and return OK), then work once
 * it is filled by any of the three. */
START_TEST(unfilled_sparse_is_refused) {
    float host[32];
    for (int i = 0; i < 32; i++) host[i] = i % 3 ? (float)i : 0.0f; /* 21 non-zeros */
    spartan_tensor *x = upload(host, 4, 8), *y = matrix(4, 8);
    const spartan_status inv = SPARTAN_STATUS_INVALID_ARGUMENT;
    for (int how = 0; how < 4; how++) {
        spartan_sparse *s = sparse(how < 3 ? 4 : 0, 8);
        size_t tr = 0, tc = 0, nnz = 7;
        spartan_sparse_tile(s, &tr, &tc);
        size_t ntiles = how < 3 ? ((4 + tr - 1) / tr) * ((8 + tc - 1) / tc) : 0;
        unsigned counts[64];
        ck_assert_int_eq(spartan_sparse_nnz(s, &nnz), inv);
        ck_assert_msg(strstr(spartan_last_error(ctx), "spartan_sparse_nnz: the spartan_sparse has "
                                                      "not been filled"),
                      "%s", spartan_last_error(ctx));
        ck_assert_uint_eq(nnz, 0);
        ck_assert_int_eq(spartan_sparse_tile_counts(s, counts, ntiles), inv);
        ck_assert(strstr(spartan_last_error(ctx), "spartan_relu_monitor, spartan_monitor or "
                                                  "spartan_compact first"));
        if (how == 3) { /* no tiles: refused all the same until a monitor ran */
            spartan_tensor *e = matrix(0, 8);
            ck_assert_int_eq(spartan_monitor(ctx, e, s), SPARTAN_OK);
            spartan_tensor_destroy(e);
        } else {
            ck_assert_int_eq(how == 0   ? spartan_monitor(ctx, x, s)
                             : how == 1 ? spartan_relu_monitor(ctx, x, y, s)
                                        : spartan_compact(ctx, x, s, SPARTAN_COMPACT_ROWS),
                             SPARTAN_OK);
        }
        ck_assert_int_eq(spartan_sparse_nnz(s, &nnz), SPARTAN_OK);
        ck_assert_uint_eq(nnz, how < 3 ? 21 : 0);
        ck_assert_int_eq(spartan_sparse_tile_counts(s, counts, ntiles), SPARTAN_OK);
        if (ntiles) { /* a NULL buffer of the right count is named as such */
            ck_assert_int_eq(spartan_sparse_tile_counts(s, NULL, ntiles), inv);
            ck_assert(strstr(spartan_last_error(ctx), "spartan_sparse_tile_counts: NULL host"));
        }
        spartan_sparse_destroy(s);
    }
    /* The messages name the function called, not the kernel it launches. */
    ck_assert_int_eq(spartan_relu_monitor(ctx, x, y, NULL), inv);
    ck_assert(strstr(spartan_last_error(ctx), "spartan_relu_monitor: NULL argument"));
    ck_assert_int_eq(spartan_monitor(ctx, x, NULL), inv);
    ck_assert(strstr(spartan_last_error(ctx), "spartan_monitor: NULL argument"));
    spartan_tensor_destroy(x);
    spartan_tensor_destroy(y);
}
END_TEST

static Suite *monitor_suite(void) {
    Suite *s = suite_create("monitor");
    TCase *tc = tcase_create("monitor");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, relu_matches_reference);
    tcase_add_test(tc, relu_monitor_matches_reference);
    tcase_add_test(tc, relu_monitor_in_place);
    tcase_add_test(tc, monitor_counts_signed_nonzeros);
    tcase_add_test(tc, bias_relu_monitor_matches_reference);
    tcase_add_test(tc, empty_matrices);
    if (!small) tcase_add_test(tc, large_matrix);
    tcase_add_test(tc, monitor_reuses_descriptor);
    tcase_add_test(tc, compact_then_gemm);
    tcase_add_test(tc, tune_odd_tile);
    tcase_add_test(tc, tune_one_element_tiles);
    if (!small) tcase_add_test(tc, tune_largest_tile);
    tcase_add_test(tc, tune_scalar_odd_blocks);
    tcase_add_test(tc, shape_mismatch_is_invalid);
    tcase_add_test(tc, relu_output_shape_mismatch_is_invalid);
    tcase_add_test(tc, unfilled_sparse_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    small = th_small();
    return th_run_suite(monitor_suite());
}
