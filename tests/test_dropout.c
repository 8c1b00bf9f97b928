/* Tests of Approximate Random Dropout's row and tile dropout (runtime/nn/ard.c,
 * runtime/ops/rows.c, the tile GEMMs of runtime/ops/gemm_dense.c, the dropout and fc layers): the
 * searched distribution over the patterns (its mean exactly 1 - p, its spread against
 * Bernoulli's), the draws (reproducible from (seed, step, layer), every neuron's and every tile's
 * empirical keep rate within 5 sigma of 1 - p), the device kernels against host loops (maps,
 * gathers and scatters of awkward shapes, the mask, the tile GEMMs' three uses), and the model:
 * gradients by finite differences with the GEMMs shrunk to the kept neurons or skipping the
 * dropped tiles, the same losses and gradients as the same row pattern applied densely as a mask,
 * the tile model's loss against a host network with the same tiles of W zeroed, and the
 * refusals; sensitivity-aware channel dropout: its probabilities and sample, the gradients of a
 * convolution on its kept channels, and its loss against the whole convolution with the dropped
 * channels' weights zeroed and the kept ones' scaled. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grad_check.h"
#include "harness.h"
#include "nn/ard.h"
#include "nn/chan.h"
#include "nn/nn_internal.h"
#include "spartan/spartan.h"

#define OK(call) TH_OK(th_ctx, call)

/* ---- The plan ---------------------------------------------------------------------------------
 */

static double plan_count_mean(const sp_ard_plan *pl) {
    double m = 0.0;
    for (size_t i = 0; i < pl->count; i++) {
        sp_row_pattern r = {pl->n, pl->period[i], pl->keep[i], 0};
        m += pl->prob[i] * (double)sp_row_pattern_count(&r);
    }
    return m;
}

START_TEST(test_plan_moments) {
    const size_t ns[] = {7, 24, 128, 1024};
    const double ps[] = {0.0, 0.1, 0.3, 0.5, 0.7};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof ps / sizeof ps[0]; b++) {
            sp_ard_plan pl;
            const size_t n = ns[a];
            const double p = ps[b], q = 1.0 - p;
            ck_assert_msg(sp_ard_plan_make(n, p, &pl) == 0, "no plan for n %zu p %g", n, p);
            /* every neuron kept with probability exactly 1 - p */
            ck_assert_msg(fabs(pl.mean - q) <= 1e-9 && fabs(plan_count_mean(&pl) / n - q) <= 1e-9,
                          "n %zu p %g: mean kept fraction %.12g", n, p, pl.mean);
            double cdf = 0.0;
            for (size_t i = 0; i < pl.count; i++) {
                ck_assert(pl.prob[i] > 0.0 && pl.keep[i] >= 1 && pl.keep[i] <= pl.period[i] &&
                          pl.period[i] <= SP_ARD_PERIOD_MAX);
                cdf += pl.prob[i];
            }
            ck_assert(fabs(cdf - 1.0) < 1e-9 && pl.cdf[pl.count - 1] == 1.0);
            /* the kept count spreads like Bernoulli's where the counts are fine enough: within
             * 10 % of its standard deviation sqrt(p (1 - p) / n) (measured: 0.3-5 %) */
            const double sb = sqrt(p * q / (double)n);
            if (n >= 128)
                ck_assert_msg(fabs(pl.sd - sb) <= 0.1 * sb, "n %zu p %g: sd %g, Bernoulli's %g", n,
                              p, pl.sd, sb);
        }
    /* impossible rates are refused rather than met approximately */
    sp_ard_plan pl;
    ck_assert(sp_ard_plan_make(1, 0.5, &pl) != 0);
    ck_assert(sp_ard_plan_make(0, 0.5, &pl) != 0);
    ck_assert(sp_ard_plan_make(10, 1.0, &pl) != 0);
    ck_assert(sp_ard_plan_make(10, -0.1, &pl) != 0);
}
END_TEST

START_TEST(test_draw_reproducible) {
    sp_ard_plan pl;
    ck_assert(sp_ard_plan_make(100, 0.4, &pl) == 0);
    size_t distinct = 0;
    sp_row_pattern first = sp_ard_draw(&pl, 5, 0, 3);
    for (uint64_t step = 0; step < 200; step++) {
        sp_row_pattern a = sp_ard_draw(&pl, 5, step, 3), b = sp_ard_draw(&pl, 5, step, 3);
        ck_assert(!memcmp(&a, &b, sizeof a));
        ck_assert(a.n == 100 && a.offset < 100 && a.keep >= 1 && a.keep <= a.period);
        distinct += memcmp(&a, &first, sizeof a) != 0;
    }
    ck_assert_msg(distinct > 150, "%zu of 200 steps differ from the first", distinct);
    /* another seed or another layer draws another stream */
    size_t same_seed = 0, same_layer = 0;
    for (uint64_t step = 0; step < 200; step++) {
        sp_row_pattern a = sp_ard_draw(&pl, 5, step, 3), c = sp_ard_draw(&pl, 6, step, 3);
        sp_row_pattern d = sp_ard_draw(&pl, 5, step, 4);
        same_seed += !memcmp(&a, &c, sizeof a);
        same_layer += !memcmp(&a, &d, sizeof a);
    }
    ck_assert_msg(same_seed < 20, "%zu of 200 steps alike across seeds", same_seed);
    ck_assert_msg(same_layer < 20, "%zu of 200 steps alike across layers", same_layer);
}
END_TEST

/* Over many steps every neuron is kept at rate 1 - p (the offset is uniform), within 5 sigma of
 * the binomial count; the kept counts' mean and variance match the plan's. */
START_TEST(test_keep_rate) {
    const size_t n = 37, steps = 20000;
    const double p = 0.3, q = 1.0 - p;
    sp_ard_plan pl;
    ck_assert(sp_ard_plan_make(n, p, &pl) == 0);
    size_t *kept = calloc(n, sizeof *kept);
    ck_assert(kept);
    double s1 = 0.0, s2 = 0.0;
    for (uint64_t t = 0; t < steps; t++) {
        sp_row_pattern r = sp_ard_draw(&pl, 11, t, 2);
        size_t c = 0;
        for (size_t j = 0; j < n; j++)
            if (sp_row_pattern_index(&r, j) != SIZE_MAX) {
                ck_assert(sp_row_pattern_index(&r, j) < sp_row_pattern_count(&r));
                kept[j]++;
                c++;
            }
        ck_assert(c == sp_row_pattern_count(&r));
        s1 += (double)c;
        s2 += (double)c * c;
    }
    const double sigma = sqrt((double)steps * q * (1.0 - q));
    for (size_t j = 0; j < n; j++)
        ck_assert_msg(fabs((double)kept[j] - steps * q) <= 5.0 * sigma,
                      "neuron %zu kept %zu times of %zu (expected %g +- %g)", j, kept[j], steps,
                      steps * q, sigma);
    const double mean = s1 / steps, var = s2 / steps - mean * mean;
    const double pvar = pl.sd * pl.sd * (double)(n * n);
    ck_assert_msg(fabs(mean - n * q) <= 5.0 * sqrt(pvar / steps), "kept count mean %g", mean);
    /* the sample variance of `steps` draws: within 5 of its standard errors (<= var sqrt(2/N)
     * for a bounded count: a generous bound for its kurtosis) */
    ck_assert_msg(fabs(var - pvar) <= 5.0 * pvar * sqrt(8.0 / steps) + 1e-9,
                  "kept count variance %g, the plan's %g", var, pvar);
    free(kept);
}
END_TEST

/* Tile patterns: every tile of a 37 x 5 grid (W's rows of tiles by its columns of tiles) kept
 * within 5 sigma of 1 - p over many steps. */
START_TEST(test_tile_keep_rate) {
    const size_t n = 37, cols = 5, steps = 20000;
    const double q = 0.5;
    sp_ard_plan pl;
    ck_assert(sp_ard_plan_make(n * cols, 1.0 - q, &pl) == 0);
    size_t *kept = calloc(n * cols, sizeof *kept);
    ck_assert(kept);
    for (uint64_t t = 0; t < steps; t++) {
        const sp_row_pattern r = sp_ard_draw(&pl, 3, t, 0);
        for (size_t i = 0; i < n; i++)
            for (size_t c = 0; c < cols; c++)
                kept[i * cols + c] += (size_t)sp_tile_kept(&r, n, i, c);
    }
    const double sigma = sqrt((double)steps * q * (1.0 - q));
    for (size_t i = 0; i < n * cols; i++)
        ck_assert_msg(fabs((double)kept[i] - steps * q) <= 5.0 * sigma,
                      "tile (%zu, %zu) kept %zu times of %zu", i / cols, i % cols, kept[i], steps);
    free(kept);
}
END_TEST

/* ---- The kernels -------------------------------------------------------------------------- */

/* The tile GEMMs (sp_gemm_tiles) against host loops in double leaving the dropped tiles' terms
 * out, on W of 1, a prime, a tile less one, and several tiles and a few rows/columns, M of 0, 1 and
 * 13, patterns that keep all, one in two and two in three: each within the rounding bound of its
 * sum of magnitudes. */
START_TEST(test_tile_gemm) {
    const size_t T = sp_gemm_tile_size(th_ctx);
    const size_t ks[] = {1, 7, T - 1, 3 * T + 5}, ns[] = {1, T + 3, 2 * T}, ms[] = {0, 1, 13};
    th_rng r;
    th_rng_init(&r, th_seed());
    for (size_t ki = 0; ki < 4; ki++)
        for (size_t ni = 0; ni < 3; ni++)
            for (size_t mi = 0; mi < 3; mi++)
                for (int pi = 0; pi < 3; pi++)
                    for (int use = 0; use < 3; use++) {
                        const size_t K = ks[ki], N = ns[ni], M = ms[mi], rows = (K + T - 1) / T;
                        const size_t period = pi == 0 ? 1 : pi == 1 ? 2 : 3;
                        const size_t count = rows * ((N + T - 1) / T);
                        const sp_row_pattern p = {count, period, pi == 2 ? 2 : 1,
                                                  (size_t)(5 * pi) % count};
                        /* the operands: a (M x K | M x N), b (W: K x N | dY: M x N), c */
                        const size_t ac = use == SP_TILES_INPUT ? N : K;
                        const size_t br = use == SP_TILES_WEIGHT ? M : K;
                        const size_t cr = use == SP_TILES_WEIGHT ? K : M;
                        const size_t cc = use == SP_TILES_INPUT ? K : N;
                        float *a = th_floats(M * ac + 1), *b = th_floats(br * N + 1);
                        float *got = th_floats(cr * cc + 1);
                        double *want = calloc(cr * cc + 1, sizeof *want),
                               *mag = calloc(cr * cc + 1, sizeof *mag);
                        for (size_t i = 0; i < M * ac; i++) a[i] = th_rng_uniform(&r, -1.0f, 1.0f);
                        for (size_t i = 0; i < br * N; i++) b[i] = th_rng_uniform(&r, -1.0f, 1.0f);
                        for (size_t i = 0; i < cr; i++)
                            for (size_t j = 0; j < cc; j++) {
                                /* the inner length, and term q's two factors */
                                const size_t len = use == SP_TILES_WEIGHT  ? M
                                                   : use == SP_TILES_INPUT ? N
                                                                           : K;
                                for (size_t q = 0; q < len; q++) {
                                    double x, y;
                                    if (use == SP_TILES_FORWARD) {
                                        if (!sp_tile_kept(&p, rows, q / T, j / T)) continue;
                                        x = a[i * ac + q], y = b[q * N + j];
                                    } else if (use == SP_TILES_INPUT) {
                                        if (!sp_tile_kept(&p, rows, j / T, q / T)) continue;
                                        x = a[i * ac + q], y = b[j * N + q];
                                    } else {
                                        if (!sp_tile_kept(&p, rows, i / T, j / T)) continue;
                                        x = a[q * ac + i], y = b[q * N + j];
                                    }
                                    want[i * cc + j] += 1.5 * x * y;
                                    mag[i * cc + j] += fabs(1.5 * x * y);
                                }
                            }
                        spartan_tensor *ta = th_upload(th_ctx, a, M, ac);
                        spartan_tensor *tb = th_upload(th_ctx, b, br, N);
                        spartan_tensor *tc = th_nan_matrix(th_ctx, cr, cc);
                        OK(sp_gemm_tiles(th_ctx, (sp_tile_use)use, &p, 1.5f, ta, tb, tc));
                        OK(spartan_tensor_read(tc, got, cr * cc));
                        const size_t len = use == SP_TILES_WEIGHT  ? M
                                           : use == SP_TILES_INPUT ? N
                                                                   : K;
                        for (size_t i = 0; i < cr * cc; i++)
                            ck_assert_msg(fabs(got[i] - want[i]) <= th_tol(len, mag[i]),
                                          "use %d, M %zu K %zu N %zu, pattern %d: [%zu] %g, want "
                                          "%g",
                                          use, M, K, N, pi, i, (double)got[i], want[i]);
                        spartan_tensor_destroy(ta);
                        spartan_tensor_destroy(tb);
                        spartan_tensor_destroy(tc);
                        free(a);
                        free(b);
                        free(got);
                        free(want);
                        free(mag);
                    }
    /* a pattern that is not over W's rows of tiles: refused */
    spartan_tensor *w = th_nan_matrix(th_ctx, 2 * T, 3), *x = th_nan_matrix(th_ctx, 2, 2 * T),
                   *y = th_nan_matrix(th_ctx, 2, 3);
    const sp_row_pattern bad = {3, 1, 1, 0}; /* W has 2 x 1 tiles */
    ck_assert_int_eq(sp_gemm_tiles(th_ctx, SP_TILES_FORWARD, &bad, 1.0f, x, w, y),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    spartan_tensor_destroy(w);
    spartan_tensor_destroy(x);
    spartan_tensor_destroy(y);
}
END_TEST

static const sp_row_pattern patterns[] = {{1, 1, 1, 0},    {5, 2, 1, 3},    {33, 7, 3, 32},
                                          {33, 32, 31, 5}, {100, 3, 2, 99}, {13, 4, 4, 6},
                                          {64, 16, 5, 0},  {17, 1, 1, 16},  {100, 32, 1, 50}};

/* Gathers of a row vector 0..n-1 give the map; scatters of 1..count give the inverse. */
START_TEST(test_maps) {
    for (size_t t = 0; t < sizeof patterns / sizeof patterns[0]; t++) {
        const sp_row_pattern *p = &patterns[t];
        const size_t n = p->n, count = sp_row_pattern_count(p);
        sp_row_maps maps;
        OK(sp_row_maps_create(th_ctx, n, &maps));
        OK(sp_row_maps_set(th_ctx, &maps, p));
        ck_assert_uint_eq(maps.count, count);
        float *v = th_floats(n), *got = th_floats(n);
        for (size_t j = 0; j < n; j++) v[j] = (float)j;
        spartan_tensor *tv = th_upload(th_ctx, v, 1, n), *tc = th_nan_matrix(th_ctx, 1, n);
        OK(sp_row_gather(th_ctx, tv, 1, n, NULL, &maps, 1.0f, tc));
        OK(spartan_tensor_read(tc, got, n));
        for (size_t j = 0; j < n; j++) {
            const size_t jc = sp_row_pattern_index(p, j);
            if (jc != SIZE_MAX)
                ck_assert_msg(got[jc] == (float)j, "pattern %zu: map[%zu] = %g, want %zu", t, jc,
                              (double)got[jc], j);
        }
        for (size_t j = 0; j < count; j++) v[j] = (float)(j + 1);
        OK(spartan_tensor_write(tv, v, n));
        OK(sp_row_scatter(th_ctx, tv, 1, n, NULL, &maps, 1.0f, tc));
        OK(spartan_tensor_read(tc, got, n));
        for (size_t j = 0; j < n; j++) {
            const size_t jc = sp_row_pattern_index(p, j);
            ck_assert_msg(got[j] == (jc == SIZE_MAX ? 0.0f : (float)(jc + 1)),
                          "pattern %zu: inv[%zu] -> %g", t, j, (double)got[j]);
        }
        spartan_tensor_destroy(tv);
        spartan_tensor_destroy(tc);
        sp_row_maps_release(&maps);
        free(v);
        free(got);
    }
}
END_TEST

/* rows x cols matrices gathered and scattered by rows, columns or both, against host loops:
 * each value is one float product, so the results are exact. */
START_TEST(test_gather_scatter) {
    const size_t np = sizeof patterns / sizeof patterns[0];
    const size_t jstep = th_small() ? 3 : 2; /* Oclgrind and rusticl: fewer pairs */
    th_rng r;
    th_rng_init(&r, th_seed());
    for (size_t ti = 0; ti < np; ti++)
        for (size_t tj = 0; tj < np; tj += jstep)
            for (int which = 1; which < 4; which++) {
                const sp_row_pattern *pr = &patterns[ti], *pc = &patterns[tj];
                const size_t rows = pr->n, cols = pc->n;
                const int by_r = which & 1, by_c = which & 2;
                sp_row_maps mr, mc;
                OK(sp_row_maps_create(th_ctx, rows, &mr));
                OK(sp_row_maps_create(th_ctx, cols, &mc));
                OK(sp_row_maps_set(th_ctx, &mr, pr));
                OK(sp_row_maps_set(th_ctx, &mc, pc));
                const size_t cc = by_c ? mc.count : cols;
                float *w = th_floats(rows * cols), *got = th_floats(rows * cols);
                for (size_t i = 0; i < rows * cols; i++) w[i] = th_rng_uniform(&r, -2.0f, 2.0f);
                const float scale = 1.0f / 0.7f;
                spartan_tensor *tw = th_upload(th_ctx, w, rows, cols);
                spartan_tensor *tc = th_nan_matrix(th_ctx, rows, cols);
                spartan_tensor *tb = th_nan_matrix(th_ctx, rows, cols);
                OK(sp_row_gather(th_ctx, tw, rows, cols, by_r ? &mr : NULL, by_c ? &mc : NULL,
                                 scale, tc));
                OK(spartan_tensor_read(tc, got, rows * cols));
                for (size_t i = 0; i < rows; i++)
                    for (size_t j = 0; j < cols; j++) {
                        const size_t ic = by_r ? sp_row_pattern_index(pr, i) : i;
                        const size_t jc = by_c ? sp_row_pattern_index(pc, j) : j;
                        if (ic == SIZE_MAX || jc == SIZE_MAX) continue;
                        ck_assert_msg(got[ic * cc + jc] == scale * w[i * cols + j],
                                      "gather %zu x %zu (%d): [%zu, %zu]", rows, cols, which, i, j);
                    }
                /* back: the kept values scaled again, zeros elsewhere */
                OK(sp_row_scatter(th_ctx, tc, rows, cols, by_r ? &mr : NULL, by_c ? &mc : NULL,
                                  2.0f, tb));
                OK(spartan_tensor_read(tb, got, rows * cols));
                for (size_t i = 0; i < rows; i++)
                    for (size_t j = 0; j < cols; j++) {
                        const int kept = (!by_r || sp_row_pattern_index(pr, i) != SIZE_MAX) &&
                                         (!by_c || sp_row_pattern_index(pc, j) != SIZE_MAX);
                        const float want = kept ? 2.0f * (scale * w[i * cols + j]) : 0.0f;
                        ck_assert_msg(got[i * cols + j] == want,
                                      "scatter %zu x %zu (%d): [%zu, %zu]", rows, cols, which, i,
                                      j);
                    }
                spartan_tensor_destroy(tw);
                spartan_tensor_destroy(tc);
                spartan_tensor_destroy(tb);
                sp_row_maps_release(&mr);
                sp_row_maps_release(&mc);
                free(w);
                free(got);
            }
}
END_TEST

START_TEST(test_mask) {
    const sp_row_pattern p = {33, 7, 3, 5};
    const size_t batch = 5, n = p.n;
    sp_row_maps maps;
    OK(sp_row_maps_create(th_ctx, n, &maps));
    OK(sp_row_maps_set(th_ctx, &maps, &p));
    float *x = th_floats(batch * n), *got = th_floats(batch * n);
    for (size_t i = 0; i < batch * n; i++) x[i] = (float)i * 0.25f - 3.0f;
    x[7] = NAN; /* a dropped NaN gives 0, a kept one stays NaN */
    spartan_tensor *tx = th_upload(th_ctx, x, batch, n), *ty = th_nan_matrix(th_ctx, batch, n);
    OK(sp_row_mask(th_ctx, tx, ty, n, &maps, 2.0f));
    OK(spartan_tensor_read(ty, got, batch * n));
    for (size_t i = 0; i < batch * n; i++) {
        const int kept = sp_row_pattern_index(&p, i % n) != SIZE_MAX;
        if (kept && isnan(x[i]))
            ck_assert(isnan(got[i]));
        else
            ck_assert_msg(got[i] == (kept ? 2.0f * x[i] : 0.0f), "[%zu] %g", i, (double)got[i]);
    }
    /* in place */
    OK(sp_row_mask(th_ctx, tx, tx, n, &maps, 1.0f));
    spartan_tensor_destroy(tx);
    spartan_tensor_destroy(ty);
    sp_row_maps_release(&maps);
    free(x);
    free(got);
}
END_TEST

/* ---- The model ------------------------------------------------------------------------------ */

/* 4x4x1 -> fc h1 -> relu -> dropout 0.5 -> fc h2 -> relu -> dropout 0.3 -> fc 3; mask: a flatten
 * after each dropout (the same function, the GEMMs whole and the pattern a mask). */
static spartan_model *row_mlp_of(int mask, size_t h1, size_t h2) {
    spartan_model *m;
    OK(spartan_model_create(th_ctx, 4, 4, 1, 3, &m));
    OK(spartan_model_add_fc(m, h1));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_dropout(m, 0.5f));
    if (mask) OK(spartan_model_add_flatten(m));
    OK(spartan_model_add_fc(m, h2));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_dropout(m, 0.3f));
    if (mask) OK(spartan_model_add_flatten(m));
    OK(spartan_model_add_fc(m, 3));
    return m;
}
static spartan_model *row_mlp(int mask) {
    return row_mlp_of(mask, 24, 16);
}
#define ROW_MLP_K (16 + 24 + 16)

static spartan_train_config row_config(void) {
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = 4;
    cfg.policy = SPARTAN_POLICY_DENSE;
    cfg.seed = 7;
    cfg.sample_every = 1;
    cfg.dropout_kind = SPARTAN_DROPOUT_ROW;
    return cfg;
}

START_TEST(test_gradients_compact) {
    for (int mask = 0; mask < 2; mask++) {
        spartan_model *m = row_mlp(mask);
        spartan_train_config cfg = row_config();
        th_gradient_check(th_ctx, m, &cfg, ROW_MLP_K, th_small() ? 6 : 16, 16, 3);
        /* the compact model's fc layers ran on the kept neurons, the mask model's whole */
        spartan_layer_info info;
        OK(spartan_model_layer_info(m, 0, &info));
        ck_assert_str_eq(info.engine[SPARTAN_PASS_FWD], mask ? "gemm" : "rows");
        /* the largest rate the learning rate follows, its own or the configuration's */
        ck_assert(spartan_model_dropout_max(m, -1.0f) == 0.5f);
        ck_assert(spartan_model_dropout_max(m, 0.2f) == 0.2f);
        spartan_model_destroy(m);
    }
}
END_TEST

/* The shrunk GEMMs against the same patterns applied as masks to the whole ones (the mask model
 * gets the compact one's parameters): the same losses over steps, and the same gradients. */
START_TEST(test_compact_equals_mask) {
    spartan_model *a = row_mlp(0), *b = row_mlp(1);
    spartan_train_config cfg = row_config();
    cfg.batch = 8;
    th_same_function(th_ctx, a, b, &cfg, NULL, ROW_MLP_K, 16, 3);
    /* the compact model shrank its GEMMs; the mask model did not */
    spartan_layer_info ia, ib;
    OK(spartan_model_layer_info(a, 3, &ia));
    OK(spartan_model_layer_info(b, 4, &ib));
    ck_assert_str_eq(ia.engine[SPARTAN_PASS_FWD], "rows");
    ck_assert_str_eq(ib.engine[SPARTAN_PASS_FWD], "gemm");
    spartan_model_destroy(a);
    spartan_model_destroy(b);
}
END_TEST

/* The shrunk GEMMs on the sparse paths (skipping the zeros of the kept X and dY) against the mask
 * model's whole dense GEMMs; widths of one tile and less (24, 16) and of several, not multiples
 * of it (83, 45). The ReLUs count their kept outputs, and the fc after each dropout takes the
 * count: every GEMM pass of the compact model has a sparsity to decide on. */
START_TEST(test_compact_sparse_paths) {
    const size_t widths[][2] = {{24, 16}, {83, 45}};
    for (size_t w = 0; w < 2; w++) {
        const size_t h1 = widths[w][0], h2 = widths[w][1];
        spartan_model *a = row_mlp_of(0, h1, h2), *b = row_mlp_of(1, h1, h2);
        spartan_train_config cfg = row_config(), dense = row_config();
        cfg.batch = dense.batch = 8;
        cfg.policy = SPARTAN_POLICY_SPARSE;
        th_same_function(th_ctx, a, b, &cfg, &dense, 16 + h1 + h2, 16, 3);
        /* a's fc layers ran their kept GEMMs sparse wherever a pass has a sparse form */
        const size_t fcs[] = {0, 3, 6};
        for (size_t i = 0; i < 3; i++) {
            spartan_layer_info info;
            OK(spartan_model_layer_info(a, fcs[i], &info));
            for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
                if (!info.calls[p]) continue;
                ck_assert_str_eq(info.engine[p], "rows");
                ck_assert_int_eq(info.path[p], info.form[p] != SPARTAN_FORM_NONE
                                                   ? SPARTAN_PATH_SPARSE
                                                   : SPARTAN_PATH_DENSE);
            }
            ck_assert_int_eq(info.path[SPARTAN_PASS_FWD], SPARTAN_PATH_SPARSE);
            /* the input's sparsity, counted (ReLU outputs: some zeros; the image: none) */
            ck_assert(info.zeros_last >= 0.0 && info.zeros_last <= 1.0);
            if (i > 0) {
                spartan_layer_info relu;
                OK(spartan_model_layer_info(a, fcs[i] - 2, &relu));
                ck_assert(relu.samples > 0);
                ck_assert(info.zeros_last == relu.zeros_last);
                ck_assert(info.zeros_last > 0.0);
            }
            /* dY counted at the kept width */
            if (i < 2) ck_assert(info.grad_zeros_last >= 0.0 && info.grad_zeros_last <= 1.0);
        }
        spartan_model_destroy(a);
        spartan_model_destroy(b);
    }
}
END_TEST

/* Tile dropout: gradients by finite differences with the fc layers after each dropout skipping
 * their weights' dropped tiles; and the training loss against a host network (fc, relu, the same
 * tiles of the next fc's W zeroed and the rest scaled, fc) computed in double. */
START_TEST(test_tiles_model) {
    /* 4x4x1 -> fc -> relu -> dropout 0.5 -> fc -> relu -> dropout 0.3 -> fc 3, the fc layers after
     * the dropouts of 3 x 2 and 2 x 1 tiles */
    const size_t T0 = sp_gemm_tile_size(th_ctx), h1 = 2 * T0 + 6, h2 = T0 + 9;
    spartan_model *m;
    OK(spartan_model_create(th_ctx, 4, 4, 1, 3, &m));
    OK(spartan_model_add_fc(m, h1));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_dropout(m, 0.5f));
    OK(spartan_model_add_fc(m, h2));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_dropout(m, 0.3f));
    OK(spartan_model_add_fc(m, 3));
    spartan_train_config cfg = row_config();
    cfg.dropout_kind = SPARTAN_DROPOUT_TILE;
    th_gradient_check(th_ctx, m, &cfg, 16 + h1 + h2, th_small() ? 6 : 16, 16, 3);
    spartan_layer_info info;
    OK(spartan_model_layer_info(m, 3, &info));
    ck_assert_str_eq(info.engine[SPARTAN_PASS_FWD], "tiles");
    ck_assert_str_eq(info.engine[SPARTAN_PASS_BWD_WEIGHT], "tiles");
    ck_assert_str_eq(info.engine[SPARTAN_PASS_BWD_INPUT], "tiles");
    spartan_model_destroy(m);
    /* one tile (W 1 x 1) cannot be dropped at rate 0.5: refused, naming why */
    OK(spartan_model_create(th_ctx, 1, 1, 1, 1, &m));
    OK(spartan_model_add_dropout(m, 0.5f));
    OK(spartan_model_add_fc(m, 1));
    ck_assert_int_eq(spartan_model_prepare(m, &cfg), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(th_ctx), "too small for tile dropout"));
    spartan_model_destroy(m);

    /* 8 -> fc 70 -> relu -> dropout 0.5 (tile) -> fc 3: W2 is 70 x 3, rows of tiles of W2 */
    OK(spartan_model_create(th_ctx, 1, 8, 1, 3, &m));
    OK(spartan_model_add_fc(m, 70));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_dropout(m, 0.5f));
    OK(spartan_model_add_fc(m, 3));
    cfg.batch = 5;
    OK(spartan_model_prepare(m, &cfg));
    const size_t T = sp_gemm_tile_size(th_ctx), H = 70, rows = (H + T - 1) / T; /* 1 column */
    float w1[8 * 70], b1[70], w2[70 * 3], b2[3], img[5 * 8], lab[5];
    th_rng r;
    th_rng_init(&r, th_seed());
    for (size_t i = 0; i < 5 * 8; i++) img[i] = th_rng_uniform(&r, 0.0f, 1.0f);
    for (size_t i = 0; i < 5; i++) lab[i] = (float)(i % 3);
    float *bufs[] = {w1, b1, w2, b2};
    for (size_t i = 0; i < 4; i++) {
        spartan_param p;
        OK(spartan_model_param(m, i, &p));
        OK(spartan_tensor_read(p.value, bufs[i], spartan_tensor_numel(p.value)));
    }
    sp_ard_plan pl;
    ck_assert(sp_ard_plan_make(rows, 0.5, &pl) == 0);
    for (size_t step = 0; step < 4; step++) {
        spartan_model_set_steps(m, step);
        spartan_step_result res;
        OK(spartan_model_train_loss(m, img, lab, 5, &res));
        /* the dropout layer's stream: rank 0 */
        const sp_row_pattern pat = sp_ard_draw(&pl, cfg.seed, step, 0);
        double loss = 0.0;
        for (size_t b = 0; b < 5; b++) {
            double h[70], z[3], zmax = -INFINITY, sum = 0.0;
            for (size_t j = 0; j < H; j++) {
                double v = b1[j];
                for (size_t i = 0; i < 8; i++) v += (double)img[b * 8 + i] * w1[i * H + j];
                h[j] = v > 0.0 ? v : 0.0;
            }
            for (size_t c = 0; c < 3; c++) {
                double v = 0.0;
                for (size_t j = 0; j < H; j++)
                    if (sp_tile_kept(&pat, rows, j / T, c / T)) v += h[j] * w2[j * 3 + c];
                z[c] = v * 2.0 + b2[c];
                zmax = fmax(zmax, z[c]);
            }
            for (size_t c = 0; c < 3; c++) sum += exp(z[c] - zmax);
            loss += (log(sum) + zmax - z[(size_t)lab[b]]) / 5.0;
        }
        ck_assert_msg(fabs(res.loss - loss) <= th_tol(8 + H, fmax(1.0, loss)) * 4.0,
                      "step %zu: loss %.9g, host %.9g", step, res.loss, loss);
    }
    /* a training step (its update steps W from the kept tiles' gradient: the backward leaves the
     * dropped ones unwritten) against the gradient taken at the same step: W - lr (dW + wd W),
     * the momentum from 0 (prepared again) */
    OK(spartan_model_prepare(m, &cfg));
    spartan_model_set_steps(m, 5);
    spartan_param p2;
    OK(spartan_model_param(m, 2, &p2));
    spartan_step_result res;
    OK(spartan_model_gradients(m, img, lab, 5, &res));
    float dw2[70 * 3], after[70 * 3];
    OK(spartan_tensor_read(p2.value, w2, H * 3));
    OK(spartan_tensor_read(p2.grad, dw2, H * 3));
    OK(spartan_model_train_step(m, img, lab, 5, &res));
    OK(spartan_tensor_read(p2.value, after, H * 3));
    for (size_t i = 0; i < H * 3; i++) {
        const double want = w2[i] - cfg.lr * (dw2[i] + cfg.weight_decay * w2[i]);
        ck_assert_msg(fabs(after[i] - want) <= 4.0 * FLT_EPSILON * fmax(1.0, fabs(want)),
                      "W2[%zu] after the step %.9g, want %.9g", i, (double)after[i], want);
    }
    spartan_model_destroy(m);
}
END_TEST

/* ---- Sensitivity-aware channel dropout (nn/chan.h, conv.c) ----------------------------------- */

/* The drop probabilities: they sum to p C, stay within the cap, fall as the sensitivity rises,
 * and are p for all when the sensitivities are equal (or unknown); the systematic sample drops
 * each channel at its rate (5 sigma over 20,000 starts) and floor or ceil of p C of them. */
START_TEST(test_chan_choice) {
    enum { C = 12 };
    const double sens[C] = {0.0, 0.01, 0.1, 0.2, 0.5, 1.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0};
    const double rates[] = {0.1, 0.3, 0.5, 0.7};
    double d[C];
    for (size_t ri = 0; ri < 4; ri++) {
        const double p = rates[ri];
        sp_chan_probabilities(sens, C, p, d);
        double sum = 0.0;
        for (size_t c = 0; c < C; c++) {
            sum += d[c];
            ck_assert(d[c] >= 0.0 && d[c] <= fmax(SP_CHAN_DROP_MAX, p) + 1e-12);
            if (c)
                ck_assert_msg(d[c] <= d[c - 1] + 1e-12, "p %g: d[%zu] %g > d[%zu] %g", p, c, d[c],
                              c - 1, d[c - 1]);
        }
        ck_assert_msg(fabs(sum - p * C) < 1e-9, "p %g: the probabilities sum to %.12g", p, sum);
        double flat[C];
        sp_chan_probabilities(NULL, C, p, flat);
        for (size_t c = 0; c < C; c++) ck_assert(fabs(flat[c] - p) < 1e-9);
        const size_t draws = 20000;
        size_t dropped_n[C] = {0};
        th_rng r;
        th_rng_init(&r, th_seed());
        for (size_t t = 0; t < draws; t++) {
            unsigned char drop[C];
            const size_t kept = sp_chan_sample(d, C, th_rng_uniform(&r, 0.0f, 1.0f), drop);
            const size_t gone = C - kept;
            ck_assert(gone == (size_t)floor(p * C + 1e-9) || gone == (size_t)ceil(p * C - 1e-9));
            for (size_t c = 0; c < C; c++) dropped_n[c] += drop[c];
        }
        for (size_t c = 0; c < C; c++) {
            const double sigma = sqrt(draws * d[c] * (1.0 - d[c])) + 1e-9;
            ck_assert_msg(fabs((double)dropped_n[c] - draws * d[c]) <= 5.0 * sigma + 1.0,
                          "p %g: channel %zu dropped %zu of %zu, want %g", p, c, dropped_n[c],
                          draws, draws * d[c]);
        }
    }
}
END_TEST

/* The channels of chan_net's first convolution: 4 of the device's vectors, so that the second
 * keeps 2 at p = 0.5 (conv.c applies channel dropout from there on). */
static size_t chan_count(void) {
    return 4 * (size_t)sp_tuned_get(&th_ctx->tuned, "VEC");
}

/* input 6x6x2 -> conv C -> relu -> conv 5 (channel dropout on its C input channels) -> relu ->
 * flatten -> fc 3 */
static spartan_model *chan_net(void) {
    spartan_model *m;
    char text[160];
    snprintf(text, sizeof text,
             "input 6x6x2\nconv %zu k=3 p=1\nrelu\nconv 5 k=3 p=1\nrelu\nflatten\nfc 3\n",
             chan_count());
    OK(spartan_model_create_from_text(th_ctx, text, &m));
    return m;
}
#define CHAN_K (18 + 9 * chan_count() + 180)

static spartan_train_config chan_config(void) {
    spartan_train_config cfg = row_config();
    cfg.dropout_kind = SPARTAN_DROPOUT_BERNOULLI;
    cfg.channel_dropout = 0.5f;
    return cfg;
}

/* Gradients by finite differences with the second convolution on its kept channels (the first,
 * on the 2-channel image, is not a ReLU's output: left whole); a convolution whose kept channels
 * would fill fewer than two vectors is left whole too. */
START_TEST(test_chan_gradients) {
    spartan_model *m = chan_net();
    spartan_train_config cfg = chan_config();
    th_gradient_check(th_ctx, m, &cfg, CHAN_K, th_small() ? 6 : 16, 72, 3);
    spartan_layer_info info;
    OK(spartan_model_layer_info(m, 2, &info));
    ck_assert_str_eq(info.engine[SPARTAN_PASS_FWD], "channels");
    ck_assert_str_eq(info.engine[SPARTAN_PASS_BWD_WEIGHT], "channels");
    ck_assert_str_eq(info.engine[SPARTAN_PASS_BWD_INPUT], "channels");
    OK(spartan_model_layer_info(m, 0, &info));
    ck_assert_str_ne(info.engine[SPARTAN_PASS_FWD], "channels");
    spartan_model_destroy(m);
    OK(spartan_model_create_from_text(
        th_ctx, "input 6x6x2\nconv 3 k=3 p=1\nrelu\nconv 5 k=3 p=1\nflatten\nfc 3\n", &m));
    OK(spartan_model_prepare(m, &cfg));
    ck_assert_ptr_null(m->layers[2].state);
    spartan_model_destroy(m);
}
END_TEST

/* A training step's loss against the evaluation loss of the same network whose second
 * convolution has the dropped channels' weights zeroed and the kept ones' scaled (its input
 * itself left whole), over four steps: the first chooses from equal sensitivities, the others
 * from those the step before measured. */
START_TEST(test_chan_equals_masked_weights) {
    spartan_model *a = chan_net(), *b = chan_net();
    spartan_train_config cfg = chan_config();
    OK(spartan_model_prepare(a, &cfg));
    cfg.channel_dropout = 0.0f;
    OK(spartan_model_prepare(b, &cfg));
    const size_t batch = cfg.batch, px = 72, kk = 9, C = chan_count(), out = 5;
    float img[4 * 72], lab[4], *w = th_floats(kk * C * out), *wm = th_floats(kk * C * out);
    th_rng r;
    th_rng_init(&r, th_seed());
    spartan_param pa, pb;
    OK(spartan_model_param(a, 2, &pa)); /* conv2's weight */
    OK(spartan_model_param(b, 2, &pb));
    ck_assert_uint_eq(spartan_tensor_numel(pa.value), kk * C * out);
    const sp_chan_state *S = a->layers[2].state;
    ck_assert_ptr_nonnull(S);
    for (size_t step = 0; step < 4; step++) {
        for (size_t i = 0; i < batch * px; i++) img[i] = th_rng_uniform(&r, 0.0f, 1.0f);
        for (size_t i = 0; i < batch; i++) lab[i] = (float)(i % 3);
        spartan_model_set_steps(a, step);
        spartan_step_result ra, rb;
        /* gradients: the step ends (its sums become the next step's sensitivities) */
        OK(spartan_model_gradients(a, img, lab, batch, &ra));
        ck_assert(S->drawn && S->step == step && S->kept >= 1 && S->kept < C);
        OK(spartan_tensor_read(pa.value, w, kk * C * out));
        for (size_t t = 0; t < kk; t++)
            for (size_t c = 0; c < C; c++)
                for (size_t j = 0; j < out; j++) {
                    const size_t e = (t * C + c) * out + j;
                    wm[e] = S->dropped[c] ? 0.0f : (float)(w[e] / (1.0 - S->d[c]));
                }
        OK(spartan_tensor_write(pb.value, wm, kk * C * out));
        OK(spartan_model_evaluate(b, img, lab, batch, &rb));
        ck_assert_msg(fabs(ra.loss - rb.loss) <= th_tol(CHAN_K, fmax(1.0, rb.loss)) * 4.0,
                      "step %zu: training loss %.9g, masked weights %.9g", step, ra.loss, rb.loss);
        if (step > 0) ck_assert(S->have_sens);
    }
    free(w);
    free(wm);
    spartan_model_destroy(a);
    spartan_model_destroy(b);
}
END_TEST

/* p = 0 keeps every neuron: the same losses as Bernoulli dropout with p = 0 (none dropped). */
START_TEST(test_rate_zero) {
    spartan_model *a = row_mlp(0), *b = row_mlp(0);
    spartan_train_config cfg = row_config();
    cfg.dropout = 0.0f;
    OK(spartan_model_prepare(a, &cfg));
    cfg.dropout_kind = SPARTAN_DROPOUT_BERNOULLI;
    OK(spartan_model_prepare(b, &cfg));
    float img[4 * 16], lab[4];
    for (size_t i = 0; i < 4 * 16; i++) img[i] = (float)((i * 7) % 11) / 11.0f;
    for (size_t i = 0; i < 4; i++) lab[i] = (float)(i % 3);
    for (int step = 0; step < 3; step++) {
        spartan_step_result ra, rb;
        OK(spartan_model_train_step(a, img, lab, 4, &ra));
        OK(spartan_model_train_step(b, img, lab, 4, &rb));
        ck_assert_msg(fabs(ra.loss - rb.loss) <= th_tol(ROW_MLP_K, fmax(1.0, rb.loss)) * 4.0,
                      "step %d: %.9g row, %.9g bernoulli", step, ra.loss, rb.loss);
    }
    spartan_model_destroy(a);
    spartan_model_destroy(b);
}
END_TEST

START_TEST(test_refusals) {
    spartan_model *m = row_mlp(0);
    spartan_train_config cfg = row_config();
    cfg.dropout_kind = (spartan_dropout_kind)7;
    ck_assert_int_eq(spartan_model_prepare(m, &cfg), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(th_ctx), "dropout_kind"));
    cfg = row_config();
    cfg.dropout = 1.0f;
    ck_assert_int_eq(spartan_model_prepare(m, &cfg), SPARTAN_STATUS_INVALID_ARGUMENT);
    cfg.dropout = NAN;
    ck_assert_int_eq(spartan_model_prepare(m, &cfg), SPARTAN_STATUS_INVALID_ARGUMENT);
    spartan_model_destroy(m);
    ck_assert_str_eq(spartan_dropout_kind_name(SPARTAN_DROPOUT_ROW), "row");
    ck_assert_str_eq(spartan_dropout_kind_name(SPARTAN_DROPOUT_TILE), "tile");
    ck_assert_str_eq(spartan_dropout_kind_name(SPARTAN_DROPOUT_BERNOULLI), "bernoulli");
    ck_assert_ptr_null(spartan_dropout_kind_name(SPARTAN_DROPOUT_KIND_COUNT));
    /* one neuron cannot be dropped at rate 0.5 by any pattern: refused, not approximated */
    OK(spartan_model_create(th_ctx, 1, 1, 1, 2, &m));
    OK(spartan_model_add_dropout(m, 0.5f));
    OK(spartan_model_add_fc(m, 2));
    cfg = row_config();
    ck_assert_int_eq(spartan_model_prepare(m, &cfg), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(th_ctx), "row pattern"));
    spartan_model_destroy(m);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("dropout");
    TCase *plan = tcase_create("plan");
    tcase_add_test(plan, test_plan_moments);
    tcase_add_test(plan, test_draw_reproducible);
    tcase_add_test(plan, test_keep_rate);
    tcase_add_test(plan, test_tile_keep_rate);
    tcase_add_test(plan, test_chan_choice);
    tcase_set_timeout(plan, 120);
    suite_add_tcase(s, plan);
    TCase *k = tcase_create("kernels");
    tcase_add_checked_fixture(k, th_ctx_setup, th_ctx_teardown);
    tcase_add_test(k, test_maps);
    tcase_add_test(k, test_gather_scatter);
    tcase_add_test(k, test_tile_gemm);
    tcase_add_test(k, test_mask);
    tcase_set_timeout(k, 300);
    suite_add_tcase(s, k);
    TCase *m = tcase_create("model");
    tcase_add_checked_fixture(m, th_ctx_setup, th_ctx_teardown);
    tcase_add_test(m, test_gradients_compact);
    tcase_add_test(m, test_compact_equals_mask);
    tcase_add_test(m, test_compact_sparse_paths);
    tcase_add_test(m, test_tiles_model);
    tcase_add_test(m, test_chan_gradients);
    tcase_add_test(m, test_chan_equals_masked_weights);
    tcase_add_test(m, test_rate_zero);
    tcase_add_test(m, test_refusals);
    tcase_set_timeout(m, 600);
    suite_add_tcase(s, m);
    return s;
}

int main(void) {
    return th_run_suite(suite());
}
