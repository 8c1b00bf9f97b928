/* Tests of the sparse GEMMs (runtime/ops/gemm_sparse.c, kernels_cl/gemm_sparse.cl) and, end to
 * end through them, of the compaction (runtime/ops/compact.c, kernels_cl/compact.cl), against
 * tests/ref: the forward Y = X . W, the backward by input dX = (dZ . W^T) (*) (X != 0), and the
 * backward by weight dW = X^T . dZ with X sparse or with dZ sparse. The flow is the one of ops.h:
 * upload, spartan_sparse_create, (relu_)monitor, spartan_compact of both forms, GEMM, read back.
 * Shapes: 1, 0, primes, non-multiples of the tile, seeded random ones; sparsity 0 to 1 in every
 * pattern of tools/common/patterns.h. Also: the sparse and dense paths agree, a descriptor
 * re-compacted with another pattern gives right results, other tiles and vector widths
 * (SPARTAN_TUNE), and mismatched shapes are INVALID_ARGUMENT. SPARTAN_TEST_SMALL=1 (Oclgrind): tiny
 * shapes only. */
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

/* X is m x k, W k x n, dZ m x n (the layer Y = X . W); dX m x k, dW k x n. */
typedef struct {
    size_t m, k, n;
} shape;

typedef enum { OP_FWD, OP_BWD_INPUT, OP_BWD_WEIGHT, OP_BWD_WEIGHT_DZ, OP_FWD_DIRECT } op_kind;

static const char *op_name(op_kind o) {
    static const char *names[] = {"gemm_sparse_fwd", "gemm_sparse_bwd_input",
                                  "gemm_sparse_bwd_weight", "gemm_sparse_bwd_weight_dz",
                                  "gemm_sparse_fwd_direct"};
    return names[o];
}

#define floats(n) th_floats(n)

#define doubles(n) th_doubles(n)

#define matrix(rows, cols) th_matrix(ctx, rows, cols)

#define upload(host, rows, cols) th_upload(ctx, host, rows, cols)

#define output(rows, cols) th_nan_matrix(ctx, rows, cols)

static void download(const spartan_tensor *t, float *host, size_t n) {
    spartan_status st = spartan_tensor_read(t, host, n);
    ck_assert_msg(st == SPARTAN_OK, "read: %s (%s)", spartan_status_name(st),
                  spartan_last_error(ctx));
}

/* A sparse operand the way a layer makes one: the host values are written to z; relu = 0: z is
 * monitored and is the operand; relu = 1: z is a pre-activation, the operand is x = relu(z) from
 * relu_monitor (and the host values become relu(z) too). Then compacted in both forms. The
 * operand's tensor stays alive and unchanged while s is used (the GEMMs read values from it). */
typedef struct {
    spartan_tensor *z, *x;
    spartan_sparse *s;
} sparse_operand;

static void monitor_and_compact(sparse_operand *op, float *host, size_t rows, size_t cols, int relu,
                                const char *what) {
    spartan_status st;
    ck_assert_int_eq(spartan_tensor_write(op->z, host, rows * cols), SPARTAN_OK);
    if (relu) {
        st = spartan_relu_monitor(ctx, op->z, op->x, op->s);
        ref_relu(host, host, rows * cols);
    } else {
        st = spartan_monitor(ctx, op->z, op->s);
    }
    ck_assert_msg(st == SPARTAN_OK, "%s: monitor: %s (%s)", what, spartan_status_name(st),
                  spartan_last_error(ctx));
    st = spartan_compact(ctx, relu ? op->x : op->z, op->s,
                         SPARTAN_COMPACT_ROWS | SPARTAN_COMPACT_COLS);
    ck_assert_msg(st == SPARTAN_OK, "%s: compact: %s (%s)", what, spartan_status_name(st),
                  spartan_last_error(ctx));
}

static sparse_operand sparse_make(size_t rows, size_t cols) {
    sparse_operand op;
    op.z = matrix(rows, cols);
    op.x = matrix(rows, cols);
    spartan_status st = spartan_sparse_create(ctx, rows, cols, &op.s);
    ck_assert_msg(st == SPARTAN_OK, "sparse %zux%zu: %s", rows, cols, spartan_last_error(ctx));
    return op;
}

static void sparse_free(sparse_operand *op) {
    spartan_sparse_destroy(op->s);
    spartan_tensor_destroy(op->z);
    spartan_tensor_destroy(op->x);
}

/* Runs one sparse GEMM (the sparse operand already compacted; x and dz are the dense host
 * operands, one of them the sparse one's values) and checks it against the reference: within
 * th_tol of the pass's reduction length, and for the backward by input exactly zero off the
 * mask. */
static void run_and_check(op_kind o, shape sh, const sparse_operand *sp, const float *x,
                          const float *w, const float *dz, const char *what) {
    size_t m = sh.m, k = sh.k, n = sh.n;
    size_t out_r = o == OP_FWD || o == OP_FWD_DIRECT ? m : o == OP_BWD_INPUT ? m : k;
    size_t out_c = o == OP_FWD || o == OP_FWD_DIRECT ? n : o == OP_BWD_INPUT ? k : n;
    size_t nout = out_r * out_c;
    spartan_tensor *out = output(out_r, out_c);
    spartan_tensor *tw = NULL, *tdz = NULL, *tx = NULL;
    spartan_status st = SPARTAN_OK;
    double *want = doubles(nout), tol = 0.0;
    switch (o) {
    case OP_FWD:
        tw = upload(w, k, n);
        st = spartan_gemm_sparse_fwd(ctx, sp->s, tw, out);
        ref_gemm(want, 0, 0, m, n, k, 1.0, x, w, 0.0, NULL);
        tol = th_tol(k, ref_max_abs(x, m * k) * ref_max_abs(w, k * n));
        break;
    case OP_FWD_DIRECT: /* the dense X, zeros skipped on the fly (no compaction used) */
        tw = upload(w, k, n);
        tx = upload(x, m, k);
        st = spartan_gemm_sparse_fwd_direct(ctx, tx, tw, out);
        ref_gemm(want, 0, 0, m, n, k, 1.0, x, w, 0.0, NULL);
        tol = th_tol(k, ref_max_abs(x, m * k) * ref_max_abs(w, k * n));
        break;
    case OP_BWD_INPUT:
        tw = upload(w, k, n);
        tdz = upload(dz, m, n);
        st = spartan_gemm_sparse_bwd_input(ctx, sp->s, tdz, tw, out);
        ref_gemm_masked(want, x, dz, w, m, k, n);
        tol = th_tol(n, ref_max_abs(dz, m * n) * ref_max_abs(w, k * n));
        break;
    case OP_BWD_WEIGHT:
        tdz = upload(dz, m, n);
        st = spartan_gemm_sparse_bwd_weight(ctx, sp->s, tdz, out);
        ref_gemm(want, 1, 0, k, n, m, 1.0, x, dz, 0.0, NULL);
        tol = th_tol(m, ref_max_abs(x, m * k) * ref_max_abs(dz, m * n));
        break;
    case OP_BWD_WEIGHT_DZ:
        tx = upload(x, m, k);
        st = spartan_gemm_sparse_bwd_weight_dz(ctx, tx, sp->s, out);
        ref_gemm(want, 1, 0, k, n, m, 1.0, x, dz, 0.0, NULL);
        tol = th_tol(m, ref_max_abs(x, m * k) * ref_max_abs(dz, m * n));
        break;
    }
    ck_assert_msg(st == SPARTAN_OK, "%s %s: %s (%s)", op_name(o), what, spartan_status_name(st),
                  spartan_last_error(ctx));
    float *got = floats(nout);
    download(out, got, nout);
    size_t first = 0, bad = th_count_bad(got, want, nout, tol, &first);
    ck_assert_msg(bad == 0, "%s %s: %zu of %zu bad, out[%zu,%zu] = %.9g, want %.9g (tol %.3g)",
                  op_name(o), what, bad, nout, first / out_c, first % out_c, (double)got[first],
                  want[first], tol);
    if (o == OP_BWD_INPUT) {
        size_t i = 0;
        while (i < nout && (x[i] != 0.0f || got[i] == 0.0f)) i++;
        ck_assert_msg(i == nout, "%s %s: dx[%zu,%zu] = %.9g off the mask, want exactly 0",
                      op_name(o), what, i / k, i % k, (double)got[i < nout ? i : 0]);
    }
    spartan_tensor_destroy(out);
    spartan_tensor_destroy(tw);
    spartan_tensor_destroy(tdz);
    spartan_tensor_destroy(tx);
    free(got);
    free(want);
}

/* One case: the sparse operand (X, or dZ for OP_BWD_WEIGHT_DZ) in pattern k at zero fraction
 * sp, the others dense in [-1, 1]. */
static void check_op(op_kind o, shape sh, pat_kind k, double sp, int relu, uint64_t seed) {
    size_t m = sh.m, kk = sh.k, n = sh.n;
    char what[200];
    snprintf(what, sizeof what, "M=%zu K=%zu N=%zu %s s=%.2f%s seed=%llu", m, kk, n, pat_name(k),
             sp, relu ? " (relu_monitor)" : "", (unsigned long long)seed);
    float *x = floats(m * kk), *w = floats(kk * n), *dz = floats(m * n);
    pat_fill_dense(w, kk * n, seed + 1);
    sparse_operand op;
    if (o == OP_BWD_WEIGHT_DZ) {
        pat_fill_dense(x, m * kk, seed + 2);
        pat_fill(dz, m, n, k, sp, 1, seed);
        op = sparse_make(m, n);
        monitor_and_compact(&op, dz, m, n, relu, what);
    } else {
        pat_fill_dense(dz, m * n, seed + 2);
        pat_fill(x, m, kk, k, sp, 1, seed);
        op = sparse_make(m, kk);
        monitor_and_compact(&op, x, m, kk, relu, what);
    }
    run_and_check(o, sh, &op, x, w, dz, what);
    sparse_free(&op);
    free(x);
    free(w);
    free(dz);
}

static const double sparsities[] = {0.0, 0.5, 0.9, 0.99, 1.0};
#define N_SPARSITIES (sizeof sparsities / sizeof sparsities[0])
#define SEED(i, j)   (th_seed() * 1000003u + (uint64_t)(i)*64u + (uint64_t)(j))

/* (M, K, N): 1, 0 in each place, primes, non-multiples of the tile (8 x 32 on POCL, 8 x 16 on
 * Oclgrind) and of the GEMM blocks, exact multiples. The first N_TINY are at most 40 x 40 x 40. */
static const shape fixed[] = {
    {1, 1, 1},    {0, 7, 5},    {7, 0, 5},     {7, 5, 0},     {1, 31, 13},   {13, 1, 31},
    {31, 13, 1},  {7, 13, 31},  {8, 32, 16},   {9, 33, 17},   {40, 40, 40},  {17, 37, 3},
    {97, 31, 13}, {17, 97, 40}, {64, 100, 33}, {130, 67, 70}, {33, 129, 65}, {257, 63, 9}};
#define N_FIXED (sizeof fixed / sizeof fixed[0])
#define N_TINY  12

/* Every pattern at every sparsity, each with a few shapes: on POCL 3 fixed ones (rotating, so
 * every fixed shape meets several patterns) and 1 seeded random one up to 150 per side; on
 * Oclgrind one tiny fixed one. monitor and relu_monitor alternate. */
static void check_all(op_kind o) {
    th_rng rng;
    th_rng_init(&rng, th_seed() + 17u * (uint64_t)o);
    size_t combo = 0;
    for (int k = 0; k < PAT_COUNT; k++) {
        for (size_t j = 0; j < N_SPARSITIES; j++, combo++) {
            size_t per = small ? 1 : 3, nfixed = small ? N_TINY : N_FIXED;
            for (size_t f = 0; f < per; f++) {
                shape sh = fixed[(combo * per + f) % nfixed];
                check_op(o, sh, (pat_kind)k, sparsities[j], (int)((combo + f) % 2), SEED(combo, f));
            }
            if (small) continue;
            shape r; /* one draw per statement: the order of initialisers is unspecified */
            r.m = 1 + th_rng_next(&rng) % 150;
            r.k = 1 + th_rng_next(&rng) % 150;
            r.n = 1 + th_rng_next(&rng) % 150;
            check_op(o, r, (pat_kind)k, sparsities[j], (int)(combo % 2), SEED(combo, 9));
        }
    }
}

/* ---- tests ---------------------------------------------------------------------------------- */

START_TEST(fwd_matches_reference) {
    check_all(OP_FWD);
}
END_TEST

START_TEST(fwd_direct_matches_reference) {
    check_all(OP_FWD_DIRECT);
}
END_TEST

START_TEST(bwd_input_matches_reference) {
    check_all(OP_BWD_INPUT);
}
END_TEST

START_TEST(bwd_weight_matches_reference) {
    check_all(OP_BWD_WEIGHT);
}
END_TEST

START_TEST(bwd_weight_dz_matches_reference) {
    check_all(OP_BWD_WEIGHT_DZ);
}
END_TEST

/* 3000 x 3000 in tiles of 8 x 32 is 35k tiles: the compaction's scans recurse. */
START_TEST(many_tiles) {
    const shape sh = {3000, 3000, 3};
    check_op(OP_FWD, sh, PAT_RANDOM, 0.9, 1, SEED(500, 0));
    check_op(OP_BWD_WEIGHT, sh, PAT_CLUSTER, 0.5, 0, SEED(500, 1));
    const shape sd = {3000, 2, 3000};
    check_op(OP_BWD_WEIGHT_DZ, sd, PAT_PREPOOL, 0.9, 0, SEED(500, 2));
}
END_TEST

/* The same inputs through spartan_gemm_dense (own kernel) and the sparse GEMM: each is within
 * th_tol of the exact result, so they are within twice that of each other. */
static void check_agree(shape sh, pat_kind k, double sp, uint64_t seed) {
    size_t m = sh.m, kk = sh.k, n = sh.n;
    float *x = floats(m * kk), *w = floats(kk * n), *dz = floats(m * n);
    pat_fill(x, m, kk, k, sp, 1, seed);
    pat_fill_dense(w, kk * n, seed + 1);
    pat_fill_dense(dz, m * n, seed + 2);
    sparse_operand op = sparse_make(m, kk);
    monitor_and_compact(&op, x, m, kk, 0, "agree");
    spartan_tensor *tx = upload(x, m, kk), *tw = upload(w, kk, n), *tdz = upload(dz, m, n);
    spartan_tensor *ys = output(m, n), *yd = output(m, n), *dws = output(kk, n),
                   *dwd = output(kk, n);
    ck_assert_int_eq(spartan_gemm_sparse_fwd(ctx, op.s, tw, ys), SPARTAN_OK);
    ck_assert_int_eq(spartan_gemm_dense(ctx, SPARTAN_GEMM_OWN, 0, 0, 1.0f, tx, tw, 0.0f, yd),
                     SPARTAN_OK);
    ck_assert_int_eq(spartan_gemm_sparse_bwd_weight(ctx, op.s, tdz, dws), SPARTAN_OK);
    ck_assert_int_eq(spartan_gemm_dense(ctx, SPARTAN_GEMM_OWN, 1, 0, 1.0f, tx, tdz, 0.0f, dwd),
                     SPARTAN_OK);
    float *a = floats(m * n), *b = floats(m * n), *c = floats(kk * n), *d = floats(kk * n);
    double *bd = doubles(m * n), *dd = doubles(kk * n);
    download(ys, a, m * n);
    download(yd, b, m * n);
    download(dws, c, kk * n);
    download(dwd, d, kk * n);
    for (size_t i = 0; i < m * n; i++) bd[i] = b[i];
    for (size_t i = 0; i < kk * n; i++) dd[i] = d[i];
    size_t first = 0;
    double tol = 2.0 * th_tol(kk, ref_max_abs(x, m * kk) * ref_max_abs(w, kk * n));
    ck_assert_msg(th_count_bad(a, bd, m * n, tol, &first) == 0,
                  "fwd %zux%zux%zu %s s=%.2f: sparse y[%zu] = %.9g, dense %.9g", m, kk, n,
                  pat_name(k), sp, first, (double)a[first], bd[first]);
    tol = 2.0 * th_tol(m, ref_max_abs(x, m * kk) * ref_max_abs(dz, m * n));
    ck_assert_msg(th_count_bad(c, dd, kk * n, tol, &first) == 0,
                  "bwd_weight %zux%zux%zu %s s=%.2f: sparse dw[%zu] = %.9g, dense %.9g", m, kk, n,
                  pat_name(k), sp, first, (double)c[first], dd[first]);
    sparse_free(&op);
    spartan_tensor *ts[] = {tx, tw, tdz, ys, yd, dws, dwd};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) spartan_tensor_destroy(ts[i]);
    float *fs[] = {x, w, dz, a, b, c, d};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) free(fs[i]);
    free(bd);
    free(dd);
}

START_TEST(sparse_and_dense_agree) {
    check_agree((shape){13, 37, 11}, PAT_RANDOM, 0.5, SEED(600, 0));
    check_agree((shape){40, 33, 17}, PAT_CLUSTER, 0.9, SEED(600, 1));
    if (small) return;
    check_agree((shape){64, 784, 128}, PAT_RANDOM, 0.9, SEED(600, 2));
    check_agree((shape){100, 257, 31}, PAT_DEADROWS, 0.5, SEED(600, 3));
    check_agree((shape){96, 128, 64}, PAT_PREPOOL, 0.75, SEED(600, 4));
}
END_TEST

/* One descriptor, monitored and compacted again and again with other patterns: sparse, dense,
 * empty, in between (the compacted buffers must follow, growing and shrinking). */
START_TEST(recompact_reuses_descriptor) {
    const shape sh = small ? (shape){19, 37, 7} : (shape){97, 203, 29};
    const struct {
        pat_kind k;
        double sp;
    } seq[] = {{PAT_RANDOM, 0.99},  {PAT_RANDOM, 0.0},  {PAT_CLUSTER, 0.5},
               {PAT_DEADROWS, 1.0}, {PAT_PREPOOL, 0.9}, {PAT_RANDOM, 0.0}};
    size_t m = sh.m, k = sh.k, n = sh.n;
    float *x = floats(m * k), *w = floats(k * n), *dz = floats(m * n), *xd = floats(m * k);
    pat_fill_dense(w, k * n, SEED(700, 0));
    sparse_operand opx = sparse_make(m, k), opdz = sparse_make(m, n);
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        char what[160];
        snprintf(what, sizeof what, "reuse step %zu (%s s=%.2f) M=%zu K=%zu N=%zu", i,
                 pat_name(seq[i].k), seq[i].sp, m, k, n);
        /* X sparse: forward and both backward passes */
        pat_fill(x, m, k, seq[i].k, seq[i].sp, 1, SEED(700, 1 + i));
        pat_fill_dense(dz, m * n, SEED(700, 20 + i));
        monitor_and_compact(&opx, x, m, k, (int)(i % 2), what);
        run_and_check(OP_FWD, sh, &opx, x, w, dz, what);
        run_and_check(OP_BWD_INPUT, sh, &opx, x, w, dz, what);
        run_and_check(OP_BWD_WEIGHT, sh, &opx, x, w, dz, what);
        /* dZ sparse */
        pat_fill_dense(xd, m * k, SEED(700, 40 + i));
        pat_fill(dz, m, n, seq[i].k, seq[i].sp, 1, SEED(700, 60 + i));
        monitor_and_compact(&opdz, dz, m, n, 0, what);
        run_and_check(OP_BWD_WEIGHT_DZ, sh, &opdz, xd, w, dz, what);
    }
    sparse_free(&opx);
    sparse_free(&opdz);
    free(x);
    free(w);
    free(dz);
    free(xd);
}
END_TEST

/* Other tuned parameters (SPARTAN_TUNE, read when a context is made; added to any already set):
 * odd tiles (3 x 5: not a vector multiple), one element per tile (the most tiles, the deepest
 * scan), the largest tile (128 x 256 = 32768 elements: 16-bit offsets at their limit), and
 * scalar kernels (VEC=1) with odd register blocks. The fixture's context is replaced. */
static void with_tune(const char *params) {
    th_context_with_tune(&ctx, params);
}

/* Every GEMM on a few shapes, patterns and sparsities. */
static void check_some(void) {
    const shape shapes[] = {{1, 1, 1}, {7, 13, 31}, {0, 5, 3}, {31, 40, 9}, {130, 67, 70}};
    size_t nshapes = small ? 4 : 5;
    for (int o = OP_FWD; o <= OP_BWD_WEIGHT_DZ; o++)
        for (size_t i = 0; i < nshapes; i++)
            check_op((op_kind)o, shapes[i], (pat_kind)((size_t)o % PAT_COUNT),
                     sparsities[(i + (size_t)o) % N_SPARSITIES], (int)(i % 2), SEED(800 + i, o));
}

START_TEST(tune_odd_tile) {
    with_tune("TILE_ROWS=3,TILE_COLS=5");
    check_some();
}
END_TEST

START_TEST(tune_one_element_tiles) {
    with_tune("TILE_ROWS=1,TILE_COLS=1");
    check_some();
    if (small) return;
    /* 300 x 300 is 90000 tiles: three levels of scan */
    check_op(OP_FWD, (shape){300, 300, 2}, PAT_RANDOM, 0.5, 0, SEED(810, 0));
    check_op(OP_BWD_WEIGHT_DZ, (shape){300, 2, 300}, PAT_CLUSTER, 0.9, 0, SEED(810, 1));
}
END_TEST

START_TEST(tune_largest_tile) {
    with_tune("TILE_ROWS=64,TILE_COLS=128");
    check_some();
    /* full tiles, dense: 8192 non-zeros in one tile */
    for (int o = OP_FWD; o <= OP_BWD_WEIGHT; o++)
        check_op((op_kind)o, (shape){130, 260, 7}, PAT_RANDOM, 0.0, 0, SEED(820, o));
    check_op(OP_BWD_WEIGHT_DZ, (shape){130, 7, 260}, PAT_RANDOM, 0.0, 0, SEED(820, 9));
}
END_TEST

START_TEST(tune_scalar_odd_blocks) {
    with_tune("VEC=1,GEMM_RB=3,GEMM_NB=2,SPARSE_NB=3");
    check_some();
}
END_TEST

/* The sparse kernels' own steps: a barrier after every tile-row in the backward by weight
 * (COLS_STEP=1), and direct-forward segments of 8 and of 13 columns (one mask step; one and five
 * single ones after it), on rows and columns many steps and segments long. */
START_TEST(tune_steps_and_segments) {
    const char *tunes[] = {"COLS_STEP=1,DIRECT_SEG=8", "COLS_STEP=3,DIRECT_SEG=13"};
    /* on a simulator (each new tune is a build and a validation there) the odd pair only */
    for (size_t i = small ? 1 : 0; i < 2; i++) {
        with_tune(tunes[i]);
        if (!small) check_some();
        check_op(OP_FWD_DIRECT, (shape){7, 150, 13}, PAT_RANDOM, 0.5, 0, SEED(830, i));
        check_op(OP_FWD_DIRECT, (shape){5, 67, 40}, PAT_CLUSTER, 0.9, 0, SEED(831, i));
        check_op(OP_BWD_WEIGHT, (shape){150, 9, 13}, PAT_RANDOM, 0.5, 1, SEED(832, i));
        check_op(OP_BWD_WEIGHT_DZ, (shape){150, 11, 70}, PAT_CLUSTER, 0.5, 0, SEED(833, i));
    }
}
END_TEST

/* Operands whose shapes do not fit the sparse one, or each other. */
START_TEST(shape_mismatch_is_invalid) {
    const size_t m = 6, k = 5, n = 4;
    float host[64];
    for (size_t i = 0; i < 64; i++) host[i] = (float)(i % 3);
    sparse_operand x = sparse_make(m, k), dzs = sparse_make(m, n);
    monitor_and_compact(&x, host, m, k, 0, "mismatch");
    monitor_and_compact(&dzs, host, m, n, 0, "mismatch");
    spartan_tensor *w = matrix(k, n), *w_bad = matrix(k + 1, n), *dz = matrix(m, n),
                   *dz_bad_r = matrix(m + 1, n), *dz_bad_c = matrix(m, n + 1), *y = matrix(m, n),
                   *y_bad = matrix(m, n + 1), *dx = matrix(m, k), *dx_bad = matrix(k, m),
                   *dw = matrix(k, n), *dw_bad = matrix(n, k), *xd = matrix(m, k),
                   *xd_bad = matrix(m + 1, k);
    const spartan_status inv = SPARTAN_STATUS_INVALID_ARGUMENT;
    ck_assert_int_eq(spartan_gemm_sparse_fwd(ctx, x.s, w_bad, y), inv);
    ck_assert_int_eq(spartan_gemm_sparse_fwd(ctx, x.s, w, y_bad), inv);
    ck_assert_int_eq(spartan_gemm_sparse_fwd(ctx, x.s, w, dx), inv);
    ck_assert_int_eq(spartan_gemm_sparse_bwd_input(ctx, x.s, dz_bad_r, w, dx), inv);
    ck_assert_int_eq(spartan_gemm_sparse_bwd_input(ctx, x.s, dz_bad_c, w, dx), inv);
    ck_assert_int_eq(spartan_gemm_sparse_bwd_input(ctx, x.s, dz, w_bad, dx), inv);
    ck_assert_int_eq(spartan_gemm_sparse_bwd_input(ctx, x.s, dz, w, dx_bad), inv);
    ck_assert_int_eq(spartan_gemm_sparse_bwd_weight(ctx, x.s, dz_bad_r, dw), inv);
    ck_assert_int_eq(spartan_gemm_sparse_bwd_weight(ctx, x.s, dz, dw_bad), inv);
    ck_assert_int_eq(spartan_gemm_sparse_bwd_weight_dz(ctx, xd_bad, dzs.s, dw), inv);
    ck_assert_int_eq(spartan_gemm_sparse_bwd_weight_dz(ctx, xd, dzs.s, dw_bad), inv);
    /* the right shapes work */
    ck_assert_int_eq(spartan_gemm_sparse_fwd(ctx, x.s, w, y), SPARTAN_OK);
    ck_assert_int_eq(spartan_gemm_sparse_bwd_input(ctx, x.s, dz, w, dx), SPARTAN_OK);
    ck_assert_int_eq(spartan_gemm_sparse_bwd_weight(ctx, x.s, dz, dw), SPARTAN_OK);
    ck_assert_int_eq(spartan_gemm_sparse_bwd_weight_dz(ctx, xd, dzs.s, dw), SPARTAN_OK);
    ck_assert_int_eq(spartan_context_finish(ctx), SPARTAN_OK);
    sparse_free(&x);
    sparse_free(&dzs);
    spartan_tensor *ts[] = {w,  w_bad,  dz, dz_bad_r, dz_bad_c, y,     y_bad,
                            dx, dx_bad, dw, dw_bad,   xd,       xd_bad};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) spartan_tensor_destroy(ts[i]);
}
END_TEST

/* Walks longer than 65,535 steps in one work-item of a naive kernel (llvmpipe ends them there
 * without an error): a column of 131,101 rows (both backward-by-weight forms), a row of as many
 * columns (the forward passes), rows of positions times long dot products (the masked
 * backward-by-input), at low sparsity so the non-zeros are many. */
START_TEST(tall_and_long_walks) {
    if (!th_tall()) return;
    const size_t tall = 131101;
    check_op(OP_BWD_WEIGHT, (shape){tall, 3, 5}, PAT_RANDOM, 0.1, 0, SEED(900, 0));
    check_op(OP_BWD_WEIGHT_DZ, (shape){tall, 3, 5}, PAT_RANDOM, 0.1, 0, SEED(900, 1));
    check_op(OP_FWD, (shape){3, tall, 5}, PAT_RANDOM, 0.1, 1, SEED(900, 2));
    check_op(OP_FWD_DIRECT, (shape){3, tall, 5}, PAT_RANDOM, 0.1, 0, SEED(900, 3));
    check_op(OP_BWD_INPUT, (shape){7, 1031, 523}, PAT_RANDOM, 0.5, 0, SEED(900, 4));
    check_op(OP_BWD_INPUT, (shape){2, tall, 3}, PAT_RANDOM, 0.1, 0, SEED(900, 5));
    /* blocks of 16 or more columns: every non-zero costs a vector FMA per block (loops llvmpipe
     * does not unroll: what lenet5's conv2 backward-by-weight ran into) */
    check_op(OP_BWD_WEIGHT, (shape){6400, 150, 16}, PAT_RANDOM, 0.0, 0, SEED(900, 6));
    check_op(OP_BWD_WEIGHT_DZ, (shape){6007, 19, 37}, PAT_RANDOM, 0.1, 0, SEED(900, 7));
    check_op(OP_FWD, (shape){19, 6007, 37}, PAT_RANDOM, 0.1, 0, SEED(900, 8));
    check_op(OP_FWD_DIRECT, (shape){19, 6007, 37}, PAT_RANDOM, 0.1, 0, SEED(900, 9));
}
END_TEST

/* ---- GEMM-pass descriptors (spartan_gemm_pass_run): every pass, form and path ---------------- */

/* One pass through its descriptor on operands from spartan_gemm_operands_create, against the
 * reference: the sparse operand (X, or dY for the form on dY) ReLU-like with about 60 % zeros. */
static void check_pass(spartan_pass pass, spartan_sparse_form form, spartan_path path, shape sh,
                       uint64_t seed) {
    const size_t m = sh.m, k = sh.k, n = sh.n;
    char what[160];
    snprintf(what, sizeof what, "%s form %s %s M=%zu K=%zu N=%zu", spartan_pass_name(pass),
             spartan_sparse_form_name(form), spartan_path_name(path), m, k, n);
    spartan_gemm_pass d;
    TH_OK(ctx, spartan_gemm_pass_init(pass, form, m, k, n, &d));
    spartan_gemm_operands o;
    TH_OK(ctx, spartan_gemm_operands_create(ctx, &d, &o));
    float *x = floats(m * k), *w = floats(k * n), *dy = floats(m * n);
    pat_fill(x, m, k, PAT_RANDOM, form == SPARTAN_FORM_ON_X ? 0.6 : 0.0, 1, seed);
    pat_fill_dense(w, k * n, seed + 1);
    if (form == SPARTAN_FORM_ON_DY)
        pat_fill(dy, m, n, PAT_RANDOM, 0.6, 1, seed + 2);
    else
        pat_fill_dense(dy, m * n, seed + 2);
    TH_OK(ctx, spartan_tensor_write((spartan_tensor *)o.x, x, m * k));
    TH_OK(ctx, spartan_tensor_write((spartan_tensor *)o.w, w, k * n));
    if (o.dy) TH_OK(ctx, spartan_tensor_write((spartan_tensor *)o.dy, dy, m * n));
    size_t rows = pass == SPARTAN_PASS_BWD_WEIGHT ? k : m;
    size_t cols = pass == SPARTAN_PASS_BWD_INPUT ? k : n;
    double *want = doubles(rows * cols), tol;
    const int masked =
        pass == SPARTAN_PASS_BWD_INPUT && path == SPARTAN_PATH_SPARSE && form == SPARTAN_FORM_ON_X;
    spartan_tensor *out = pass == SPARTAN_PASS_FWD         ? o.y
                          : pass == SPARTAN_PASS_BWD_INPUT ? o.dx
                                                           : o.dw;
    if (pass == SPARTAN_PASS_FWD) {
        ref_gemm(want, 0, 0, m, n, k, 1.0, x, w, 0.0, NULL);
        tol = th_tol(k, ref_max_abs(x, m * k) * ref_max_abs(w, k * n));
    } else if (pass == SPARTAN_PASS_BWD_INPUT) {
        if (masked)
            ref_gemm_masked(want, x, dy, w, m, k, n);
        else
            ref_gemm(want, 0, 1, m, k, n, 1.0, dy, w, 0.0, NULL);
        tol = th_tol(n, ref_max_abs(dy, m * n) * ref_max_abs(w, k * n));
    } else {
        ref_gemm(want, 1, 0, k, n, m, 1.0, x, dy, 0.0, NULL);
        tol = th_tol(m, ref_max_abs(x, m * k) * ref_max_abs(dy, m * n));
    }
    spartan_status st = spartan_gemm_pass_run(ctx, &d, path, SPARTAN_GEMM_BEST, &o);
    ck_assert_msg(st == SPARTAN_OK, "%s: %s", what, spartan_last_error(ctx));
    float *got = floats(rows * cols);
    download(out, got, rows * cols);
    size_t first = 0, bad = th_count_bad(got, want, rows * cols, tol, &first);
    ck_assert_msg(bad == 0, "%s: %zu bad, [%zu] = %.9g, want %.9g (tol %.3g)", what, bad, first,
                  (double)got[first], want[first], tol);
    spartan_gemm_operands_destroy(&o);
    ck_assert_ptr_null(o.x);
    free(x);
    free(w);
    free(dy);
    free(got);
    free(want);
}

START_TEST(passes_match_reference) {
    const shape shapes[] = {{1, 1, 1}, {7, 13, 5}, {37, 61, 19}, {0, 5, 3}, {64, 1, 33}};
    const size_t nshapes = small ? 2 : sizeof shapes / sizeof shapes[0];
    for (size_t i = 0; i < nshapes; i++)
        for (int p = 0; p < SPARTAN_PASS_COUNT; p++)
            for (int f = 0; f < SPARTAN_FORM_COUNT; f++) {
                if (p == SPARTAN_PASS_FWD && f == SPARTAN_FORM_ON_DY) continue;
                for (int path = 0; path < 2; path++) {
                    if (path == SPARTAN_PATH_SPARSE && f == SPARTAN_FORM_NONE) continue;
                    check_pass((spartan_pass)p, (spartan_sparse_form)f, (spartan_path)path,
                               shapes[i], SEED(i, 8 * p + 2 * f + path));
                }
            }
}
END_TEST

START_TEST(pass_shares_one_compaction) {
    /* Both backward passes sparse on X: the first compacts X in both forms (x_forms_extra) and
     * the second reuses it; the results stay right. */
    const size_t m = 29, k = 23, n = 11;
    spartan_gemm_pass dw, dx;
    TH_OK(ctx, spartan_gemm_pass_init(SPARTAN_PASS_BWD_WEIGHT, SPARTAN_FORM_ON_X, m, k, n, &dw));
    TH_OK(ctx, spartan_gemm_pass_init(SPARTAN_PASS_BWD_INPUT, SPARTAN_FORM_ON_X, m, k, n, &dx));
    ck_assert(dw.trans_a && !dw.trans_b && dw.m == k && dw.gn == n && dw.gk == m);
    ck_assert(!dx.trans_a && dx.trans_b && dx.m == m && dx.gn == k && dx.gk == n);
    spartan_gemm_operands o;
    TH_OK(ctx, spartan_gemm_operands_create(ctx, &dw, &o));
    spartan_tensor *tdx = matrix(m, k);
    float *x = floats(m * k), *w = floats(k * n), *dy = floats(m * n);
    pat_fill(x, m, k, PAT_RANDOM, 0.7, 1, 11);
    pat_fill_dense(w, k * n, 12);
    pat_fill_dense(dy, m * n, 13);
    TH_OK(ctx, spartan_tensor_write((spartan_tensor *)o.x, x, m * k));
    TH_OK(ctx, spartan_tensor_write((spartan_tensor *)o.w, w, k * n));
    TH_OK(ctx, spartan_tensor_write((spartan_tensor *)o.dy, dy, m * n));
    o.x_forms_extra = SPARTAN_COMPACT_ROWS;
    TH_OK(ctx, spartan_gemm_pass_run(ctx, &dw, SPARTAN_PATH_SPARSE, SPARTAN_GEMM_OWN, &o));
    ck_assert_uint_eq(o.x_forms, SPARTAN_COMPACT_ROWS | SPARTAN_COMPACT_COLS);
    o.dx = tdx;
    TH_OK(ctx, spartan_gemm_pass_run(ctx, &dx, SPARTAN_PATH_SPARSE, SPARTAN_GEMM_OWN, &o));
    double *want = doubles(m * k);
    ref_gemm_masked(want, x, dy, w, m, k, n);
    float *got = floats(m * k);
    download(tdx, got, m * k);
    size_t first = 0;
    ck_assert_uint_eq(th_count_bad(got, want, m * k, th_tol(n, 1.0), &first), 0);
    o.dx = NULL;
    spartan_gemm_operands_destroy(&o);
    spartan_tensor_destroy(tdx);
    free(x);
    free(w);
    free(dy);
    free(got);
    free(want);
}
END_TEST

START_TEST(pass_refusals) {
    spartan_gemm_pass d;
    ck_assert_int_eq(spartan_gemm_pass_init(SPARTAN_PASS_FWD, SPARTAN_FORM_ON_DY, 2, 2, 2, &d),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_gemm_pass_init((spartan_pass)3, SPARTAN_FORM_NONE, 2, 2, 2, &d),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_gemm_pass_init(SPARTAN_PASS_FWD, (spartan_sparse_form)5, 2, 2, 2, &d),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    TH_OK(ctx, spartan_gemm_pass_init(SPARTAN_PASS_BWD_INPUT, SPARTAN_FORM_NONE, 4, 3, 2, &d));
    spartan_gemm_operands o;
    TH_OK(ctx, spartan_gemm_operands_create(ctx, &d, &o));
    ck_assert_int_eq(spartan_gemm_pass_run(ctx, &d, SPARTAN_PATH_SPARSE, SPARTAN_GEMM_OWN, &o),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(ctx), "bwd_input has no sparse form"));
    spartan_tensor *dx = o.dx;
    o.dx = NULL;
    ck_assert_int_eq(spartan_gemm_pass_run(ctx, &d, SPARTAN_PATH_DENSE, SPARTAN_GEMM_OWN, &o),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(spartan_last_error(ctx), "NULL operand dx"), "%s",
                  spartan_last_error(ctx));
    o.dx = dx;
    spartan_gemm_operands_destroy(&o);
    ck_assert_int_eq(spartan_gemm_pass_run(ctx, NULL, SPARTAN_PATH_DENSE, SPARTAN_GEMM_OWN, &o),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
}
END_TEST

static Suite *gemm_sparse_suite(void) {
    Suite *s = suite_create("gemm_sparse");
    TCase *tc = tcase_create("gemm_sparse");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, fwd_matches_reference);
    tcase_add_test(tc, bwd_input_matches_reference);
    tcase_add_test(tc, fwd_direct_matches_reference);
    tcase_add_test(tc, bwd_weight_matches_reference);
    tcase_add_test(tc, bwd_weight_dz_matches_reference);
    if (!small) tcase_add_test(tc, many_tiles);
    tcase_add_test(tc, sparse_and_dense_agree);
    tcase_add_test(tc, tall_and_long_walks);
    tcase_add_test(tc, recompact_reuses_descriptor);
    tcase_add_test(tc, tune_odd_tile);
    tcase_add_test(tc, tune_one_element_tiles);
    if (!small) tcase_add_test(tc, tune_largest_tile);
    tcase_add_test(tc, tune_scalar_odd_blocks);
    tcase_add_test(tc, tune_steps_and_segments);
    tcase_add_test(tc, shape_mismatch_is_invalid);
    tcase_add_test(tc, passes_match_reference);
    tcase_add_test(tc, pass_shares_one_compaction);
    tcase_add_test(tc, pass_refusals);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    small = th_small();
    return th_run_suite(gemm_sparse_suite());
}
