/* Tests of spartan_gemm_dense (runtime/ops/gemm_dense.c, kernels_cl/gemm_dense.cl, CLBlast)
 * against ref_gemm, on the device SPARTAN_DEVICE selects: every path, the four (trans_a,
 * trans_b) combinations, alpha and beta (beta = 0 over a C full of NaNs, beta = 1 accumulating),
 * awkward shapes (1, primes, non-multiples of the vector and block sizes), zero sizes, layer
 * shapes, long K (split into chunks), scalar kernels with odd register blocks (SPARTAN_TUNE), the
 * matrix view of higher ranks, and shape mismatches. With SPARTAN_TEST_SMALL=1 (the Oclgrind run)
 * only tiny shapes on the runtime's own kernel. */
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

typedef struct {
    size_t m, n, k;
} shape;

typedef struct {
    float alpha, beta;
    int nan_c; /* C starts as NaNs (only with beta == 0) */
} scalars;

static const scalars plain = {1.0f, 0.0f, 1}, accumulate = {1.0f, 1.0f, 0},
                     general = {-0.75f, 0.5f, 0};

static const char *path_name(spartan_gemm_path p) {
    return p == SPARTAN_GEMM_OWN ? "own" : p == SPARTAN_GEMM_CLBLAST ? "clblast" : "best";
}

#define matrix(rows, cols) th_matrix(ctx, rows, cols)

#define upload(host, rows, cols) th_upload(ctx, host, rows, cols)

/* malloc that never returns NULL for 0 elements (the tensor calls take a pointer even then). */
#define floats(n) th_floats(n)

#define doubles(n) th_doubles(n)

/* One GEMM on the device against ref_gemm. A and B are uniform in [-1, 1], C too (unless NaN).
 * Tolerance: a reduction of length k with terms bounded by |alpha| max|a| max|b|, plus the beta
 * term. */
static void check_gemm(spartan_gemm_path path, int ta, int tb, shape s, scalars sc, uint64_t seed) {
    size_t m = s.m, n = s.n, k = s.k;
    float *a = floats(m * k), *b = floats(k * n), *c = floats(m * n);
    double *want = doubles(m * n);
    pat_fill_dense(a, m * k, seed);
    pat_fill_dense(b, k * n, seed + 1);
    pat_fill_dense(c, m * n, seed + 2);
    spartan_tensor *ta_t = ta ? upload(a, k, m) : upload(a, m, k);
    spartan_tensor *tb_t = tb ? upload(b, n, k) : upload(b, k, n);
    spartan_tensor *tc_t = upload(c, m, n);
    if (sc.nan_c) ck_assert_int_eq(spartan_tensor_fill(tc_t, NAN), SPARTAN_OK);

    spartan_status st = spartan_gemm_dense(ctx, path, ta, tb, sc.alpha, ta_t, tb_t, sc.beta, tc_t);
    ck_assert_msg(st == SPARTAN_OK, "%s gemm %zux%zux%zu ta=%d tb=%d: %s (%s)", path_name(path), m,
                  n, k, ta, tb, spartan_status_name(st), spartan_last_error(ctx));
    float *got = floats(m * n);
    ck_assert_int_eq(spartan_tensor_read(tc_t, got, m * n), SPARTAN_OK);

    ref_gemm(want, ta, tb, m, n, k, sc.alpha, a, b, sc.beta, c);
    double scale = fabs((double)sc.alpha) * ref_max_abs(a, m * k) * ref_max_abs(b, k * n) +
                   fabs((double)sc.beta) * ref_max_abs(c, m * n);
    double tol = th_tol(k, scale);
    size_t first = 0, bad = th_count_bad(got, want, m * n, tol, &first);
    ck_assert_msg(bad == 0,
                  "%s gemm M=%zu N=%zu K=%zu ta=%d tb=%d alpha=%g beta=%g%s: %zu bad, "
                  "C[%zu,%zu]=%.9g want %.9g (tol %.3g)",
                  path_name(path), m, n, k, ta, tb, (double)sc.alpha, (double)sc.beta,
                  sc.nan_c ? " (C was NaN)" : "", bad, first / (n ? n : 1), first % (n ? n : 1),
                  (double)got[first], want[first], tol);

    spartan_tensor_destroy(ta_t);
    spartan_tensor_destroy(tb_t);
    spartan_tensor_destroy(tc_t);
    free(a);
    free(b);
    free(c);
    free(got);
    free(want);
}

/* Shapes (M, N, K): 1, primes, non-multiples of the vector width, of the register block and of
 * the work-group, and exact multiples for the fast path. The first ones are tiny (Oclgrind). */
static const shape awkward[] = {{1, 1, 1},    {1, 7, 13},   {7, 1, 31},   {13, 31, 1},  {7, 13, 31},
                                {9, 17, 33},  {33, 40, 17}, {16, 32, 8},  {31, 97, 13}, {97, 7, 31},
                                {15, 33, 65}, {64, 96, 24}, {67, 129, 5}, {130, 67, 70}};
#define N_AWKWARD  (sizeof awkward / sizeof awkward[0])
#define N_TINY     7 /* awkward[0 .. N_TINY): at most 40 x 40 x 40 */
#define SEED(i, j) (th_seed() * 1000003u + (uint64_t)(i)*64u + (uint64_t)(j))

/* Every awkward shape, every transposition, three (alpha, beta) settings. */
static void check_awkward(spartan_gemm_path path, size_t nshapes) {
    const scalars sc[] = {plain, accumulate, general};
    for (size_t i = 0; i < nshapes; i++)
        for (int t = 0; t < 4; t++)
            for (size_t j = 0; j < sizeof sc / sizeof sc[0]; j++)
                check_gemm(path, t & 1, t >> 1, awkward[i], sc[j], SEED(i, t * 4 + (int)j));
}

/* K = 0: C = beta * C (beta = 0 over NaNs: zeros); M or N = 0: nothing to do, OK. */
static void check_zero_sizes(spartan_gemm_path path) {
    for (int t = 0; t < 4; t++) {
        check_gemm(path, t & 1, t >> 1, (shape){5, 7, 0}, plain, SEED(100, t));
        check_gemm(path, t & 1, t >> 1, (shape){13, 3, 0}, general, SEED(101, t));
        check_gemm(path, t & 1, t >> 1, (shape){0, 7, 5}, general, SEED(102, t));
        check_gemm(path, t & 1, t >> 1, (shape){7, 0, 5}, plain, SEED(103, t));
        check_gemm(path, t & 1, t >> 1, (shape){0, 0, 0}, general, SEED(104, t));
    }
}

/* ---- tests ---------------------------------------------------------------------------------- */

START_TEST(own_awkward_shapes) {
    check_awkward(SPARTAN_GEMM_OWN, small ? N_TINY : N_AWKWARD);
}
END_TEST

START_TEST(own_zero_sizes) {
    check_zero_sizes(SPARTAN_GEMM_OWN);
}
END_TEST

/* The GEMMs of a fully connected layer's three passes: Y = X . W (NN), dW = X^T . dY (TN),
 * dX = dY . W^T (NT), plus TT, for an MNIST layer (batch 64, 784 -> 512) and a classifier
 * (batch 100, 512 -> 10). */
START_TEST(own_layer_shapes) {
    const size_t batch = 64, in = 784, out = 512;
    check_gemm(SPARTAN_GEMM_OWN, 0, 0, (shape){batch, out, in}, plain, SEED(200, 0));
    check_gemm(SPARTAN_GEMM_OWN, 1, 0, (shape){in, out, batch}, accumulate, SEED(200, 1));
    check_gemm(SPARTAN_GEMM_OWN, 0, 1, (shape){batch, in, out}, plain, SEED(200, 2));
    check_gemm(SPARTAN_GEMM_OWN, 1, 1, (shape){100, 10, 512}, general, SEED(200, 3));
    check_gemm(SPARTAN_GEMM_OWN, 0, 0, (shape){100, 10, 512}, plain, SEED(200, 4));
}
END_TEST

/* K long and C small (the backward-by-weight shape: K is batch x pixels) splits K into chunks
 * whose partial products are summed by a second kernel. */
START_TEST(own_split_k) {
    check_gemm(SPARTAN_GEMM_OWN, 0, 1, (shape){3, 5, 4099}, general, SEED(250, 0));
    check_gemm(SPARTAN_GEMM_OWN, 1, 0, (shape){2, 1, 4096}, plain, SEED(250, 1));
    if (small) return;
    check_gemm(SPARTAN_GEMM_OWN, 0, 0, (shape){33, 17, 5000}, plain, SEED(250, 2));
    check_gemm(SPARTAN_GEMM_OWN, 1, 0, (shape){100, 64, 8192}, accumulate, SEED(250, 3));
    check_gemm(SPARTAN_GEMM_OWN, 1, 1, (shape){7, 31, 33000}, general, SEED(250, 4));
}
END_TEST

/* A reduction of 131,101 terms (cut into slices: no work-item loops that long), a column of
 * C as tall, a row of C wider than any block, with and without scale factors. */
START_TEST(own_tall_and_long) {
    if (!th_tall()) return;
    check_gemm(SPARTAN_GEMM_OWN, 1, 0, (shape){3, 5, 131101}, plain, SEED(260, 0));
    check_gemm(SPARTAN_GEMM_OWN, 0, 1, (shape){2, 3, 131101}, general, SEED(260, 1));
    check_gemm(SPARTAN_GEMM_OWN, 0, 0, (shape){131101, 5, 3}, accumulate, SEED(260, 2));
    check_gemm(SPARTAN_GEMM_OWN, 0, 0, (shape){7, 1031, 19}, general, SEED(260, 3));
}
END_TEST

/* Other tuned parameters (SPARTAN_TUNE, read when a context is made; added to any already set):
 * scalar kernels (VEC=1) with odd register blocks. The fixture's context is replaced. */
static void with_tune(const char *params) {
    th_context_with_tune(&ctx, params);
}

START_TEST(own_scalar_odd_blocks) {
    with_tune("VEC=1,GEMM_RB=3,GEMM_NB=2,SPARSE_NB=3");
    check_awkward(SPARTAN_GEMM_OWN, small ? N_TINY : N_AWKWARD);
    check_zero_sizes(SPARTAN_GEMM_OWN);
    check_gemm(SPARTAN_GEMM_OWN, 0, 1, (shape){3, 5, 4099}, general, SEED(260, 0));
}
END_TEST

/* BEST is the own kernel on CPUs and CLBlast elsewhere; on the Oclgrind run only when that is
 * the own kernel (CLBlast is not run on the simulator). */
START_TEST(best_matches_reference) {
    spartan_gemm_path best = spartan_gemm_best(ctx);
    ck_assert(best == SPARTAN_GEMM_OWN || best == SPARTAN_GEMM_CLBLAST);
    if (best == SPARTAN_GEMM_CLBLAST) ck_assert(spartan_have_clblast());
    if (small && best != SPARTAN_GEMM_OWN) return;
    size_t nshapes = small ? 3 : 8;
    for (size_t i = 0; i < nshapes; i++)
        for (int t = 0; t < 4; t++)
            check_gemm(SPARTAN_GEMM_BEST, t & 1, t >> 1, awkward[i], t == 3 ? general : plain,
                       SEED(300 + i, t));
    check_gemm(SPARTAN_GEMM_BEST, 0, 0, (shape){5, 7, 0}, plain, SEED(310, 0));
    check_gemm(SPARTAN_GEMM_BEST, 0, 0, (shape){0, 7, 5}, plain, SEED(311, 0));
}
END_TEST

/* All CLBlast cases in one test function: CLBlast compiles its kernels on first use in every
 * process (seconds on POCL), and check forks a process per test function. Few, small shapes. */
START_TEST(clblast_matches_reference) {
    if (!spartan_have_clblast()) {
        size_t one = 1;
        float v = 1.0f;
        spartan_tensor *t = upload(&v, one, one);
        ck_assert_int_eq(spartan_gemm_dense(ctx, SPARTAN_GEMM_CLBLAST, 0, 0, 1.0f, t, t, 0.0f, t),
                         SPARTAN_STATUS_UNSUPPORTED);
        spartan_tensor_destroy(t);
        return;
    }
    const shape shapes[] = {{1, 1, 1}, {7, 13, 31}, {33, 17, 40}, {64, 96, 24}};
    const scalars sc[] = {plain, accumulate, general};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int t = 0; t < 4; t++)
            check_gemm(SPARTAN_GEMM_CLBLAST, t & 1, t >> 1, shapes[i], sc[(i + (size_t)t) % 3],
                       SEED(400 + i, t));
    check_gemm(SPARTAN_GEMM_CLBLAST, 0, 0, (shape){5, 7, 0}, plain, SEED(410, 0));
    check_gemm(SPARTAN_GEMM_CLBLAST, 1, 1, (shape){13, 3, 0}, general, SEED(411, 0));
    check_gemm(SPARTAN_GEMM_CLBLAST, 0, 0, (shape){0, 7, 5}, general, SEED(412, 0));
    check_gemm(SPARTAN_GEMM_CLBLAST, 0, 1, (shape){7, 0, 5}, plain, SEED(413, 0));
}
END_TEST

/* The matrix view: a rank-3 A (2 x 3 x K) is a 6 x K matrix, a rank-4 C (1 x 2 x 3 x N) 6 x N. */
START_TEST(higher_rank_is_matrix_view) {
    const size_t k = 11, n = 9, m = 6;
    float *a = floats(m * k), *b = floats(k * n), *got = floats(m * n);
    double *want = doubles(m * n);
    pat_fill_dense(a, m * k, SEED(500, 0));
    pat_fill_dense(b, k * n, SEED(500, 1));
    const size_t da[3] = {2, 3, k}, dc[4] = {1, 2, 3, n};
    spartan_tensor *ta = NULL, *tc = NULL, *tb = upload(b, k, n);
    ck_assert_int_eq(spartan_tensor_create(ctx, 3, da, &ta), SPARTAN_OK);
    ck_assert_int_eq(spartan_tensor_create(ctx, 4, dc, &tc), SPARTAN_OK);
    ck_assert_int_eq(spartan_tensor_write(ta, a, m * k), SPARTAN_OK);
    ck_assert_int_eq(spartan_gemm_dense(ctx, SPARTAN_GEMM_OWN, 0, 0, 1.0f, ta, tb, 0.0f, tc),
                     SPARTAN_OK);
    ck_assert_int_eq(spartan_tensor_read(tc, got, m * n), SPARTAN_OK);
    ref_gemm(want, 0, 0, m, n, k, 1.0, a, b, 0.0, NULL);
    double tol = th_tol(k, ref_max_abs(a, m * k) * ref_max_abs(b, k * n));
    size_t first = 0;
    ck_assert_msg(th_count_bad(got, want, m * n, tol, &first) == 0, "C[%zu]=%.9g want %.9g", first,
                  (double)got[first], want[first]);
    spartan_tensor_destroy(ta);
    spartan_tensor_destroy(tb);
    spartan_tensor_destroy(tc);
    free(a);
    free(b);
    free(got);
    free(want);
}
END_TEST

/* op(A) M x K, op(B) K x N, C M x N: any other combination is INVALID_ARGUMENT, on every path,
 * and leaves C as it was. */
/* spartan_transpose: exact on awkward shapes (1, primes, not multiples of the work-group of
 * 16, empty), and refused into a wrong shape or in place. */
START_TEST(transpose_is_exact) {
    const size_t shapes[][2] = {{1, 1}, {1, 17}, {13, 1}, {37, 23}, {16, 48}, {0, 5}, {3, 100}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t r = shapes[s][0], c = shapes[s][1];
        float *a = th_floats(r * c), *got = th_floats(r * c);
        th_rng rng;
        th_rng_init(&rng, th_seed() + s);
        for (size_t i = 0; i < r * c; i++) a[i] = th_rng_uniform(&rng, -1.0f, 1.0f);
        spartan_tensor *ta = upload(a, r, c), *tb = th_nan_matrix(ctx, c, r);
        ck_assert_int_eq(spartan_transpose(ctx, ta, tb), SPARTAN_OK);
        ck_assert_int_eq(spartan_tensor_read(tb, got, r * c), SPARTAN_OK);
        for (size_t i = 0; i < r; i++)
            for (size_t j = 0; j < c; j++)
                ck_assert_msg(got[j * r + i] == a[i * c + j], "%zux%zu: [%zu,%zu]", r, c, i, j);
        if (r > 1 && c > 1 && r != c) {
            spartan_tensor *wrong = th_matrix(ctx, r, c);
            ck_assert_int_eq(spartan_transpose(ctx, ta, wrong), SPARTAN_STATUS_INVALID_ARGUMENT);
            spartan_tensor_destroy(wrong);
        }
        ck_assert_int_eq(spartan_transpose(ctx, ta, ta),
                         r * c != 0 ? SPARTAN_STATUS_INVALID_ARGUMENT : SPARTAN_OK);
        spartan_tensor_destroy(ta);
        spartan_tensor_destroy(tb);
        free(a);
        free(got);
    }
}
END_TEST

START_TEST(shape_mismatch_is_invalid) {
    typedef struct {
        int ta, tb;
        size_t ar, ac, br, bc, cr, cc;
    } mm;
    const mm cases[] = {
        {0, 0, 4, 5, 6, 3, 4, 3}, /* K: 5 vs 6 */
        {0, 0, 4, 5, 5, 3, 5, 3}, /* C rows */
        {0, 0, 4, 5, 5, 3, 4, 4}, /* C cols */
        {1, 0, 4, 5, 5, 3, 5, 3}, /* A^T is 5 x 4: K = 4 vs B's 5 rows */
        {0, 1, 4, 5, 5, 3, 4, 5}, /* B^T is 3 x 5: K = 5 vs 3 */
        {1, 1, 5, 4, 3, 4, 4, 4}, /* A^T 4 x 5, B^T 4 x 3: K = 5 vs 4 */
        {0, 0, 0, 5, 6, 3, 0, 3}, /* M = 0 does not excuse a K mismatch */
        {0, 0, 4, 0, 0, 3, 4, 2}, /* K = 0, C cols */
    };
    const spartan_gemm_path paths[] = {SPARTAN_GEMM_OWN, SPARTAN_GEMM_BEST, SPARTAN_GEMM_CLBLAST};
    size_t npaths = spartan_have_clblast() && !small ? 3 : 2;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const mm *c = &cases[i];
        float *host = floats(64);
        for (size_t e = 0; e < 64; e++) host[e] = (float)e;
        spartan_tensor *a = upload(host, c->ar, c->ac), *b = upload(host, c->br, c->bc),
                       *cm = upload(host, c->cr, c->cc);
        for (size_t p = 0; p < npaths; p++) {
            spartan_status st =
                spartan_gemm_dense(ctx, paths[p], c->ta, c->tb, 1.0f, a, b, 0.0f, cm);
            ck_assert_msg(st == SPARTAN_STATUS_INVALID_ARGUMENT,
                          "case %zu (%s): got %s, want INVALID_ARGUMENT", i, path_name(paths[p]),
                          spartan_status_name(st));
            ck_assert_str_ne(spartan_last_error(ctx), "");
        }
        float *after = floats(64);
        ck_assert_int_eq(spartan_tensor_read(cm, after, c->cr * c->cc), SPARTAN_OK);
        size_t e = 0;
        while (e < c->cr * c->cc && after[e] == host[e]) e++;
        ck_assert_msg(e == c->cr * c->cc, "case %zu: C changed at %zu", i, e);
        spartan_tensor_destroy(a);
        spartan_tensor_destroy(b);
        spartan_tensor_destroy(cm);
        free(host);
        free(after);
    }
}
END_TEST

static Suite *gemm_dense_suite(void) {
    Suite *s = suite_create("gemm_dense");
    TCase *tc = tcase_create("own");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, own_awkward_shapes);
    tcase_add_test(tc, own_zero_sizes);
    if (!small) tcase_add_test(tc, own_layer_shapes);
    tcase_add_test(tc, own_split_k);
    tcase_add_test(tc, own_tall_and_long);
    tcase_add_test(tc, own_scalar_odd_blocks);
    tcase_add_test(tc, best_matches_reference);
    tcase_add_test(tc, higher_rank_is_matrix_view);
    tcase_add_test(tc, shape_mismatch_is_invalid);
    tcase_add_test(tc, transpose_is_exact);
    suite_add_tcase(s, tc);
    if (!small) {
        TCase *tb = tcase_create("clblast");
        tcase_set_timeout(tb, 600);
        tcase_add_checked_fixture(tb, setup, teardown);
        tcase_add_test(tb, clblast_matches_reference);
        suite_add_tcase(s, tb);
    }
    return s;
}

int main(void) {
    small = th_small();
    return th_run_suite(gemm_dense_suite());
}
