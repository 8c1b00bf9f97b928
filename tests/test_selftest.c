/* Tests of the on-device validation of the kernel families (runtime/ops/selftest*.c) and of what
 * a family that fails does: its verdict cached next to the binaries and used, an optional family
 * that computes wrong (a copy of the kernels with one line changed, through kernel_dir) or does
 * not build disabled while every operation still gives right results through its fallback, and
 * training with the sparse kernels off equal to dense training; a build error names its line of
 * the kernel file; an essential family that fails refuses the device, and a kernel file missing a
 * kernel refuses the context. On POCL. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "program/bincache.h"
#include "ref/ref.h"
#include "spartan/spartan.h"

static spartan_context_opts opts(const char *cache, const char *kdir) {
    spartan_context_opts o = spartan_context_opts_default();
    o.device = "pocl"; /* the vendor class: POCL alone, never the simulator */
    o.cache_dir = cache;
    o.kernel_dir = kdir;
    return o;
}

static spartan_context *open_ctx(const char *cache, const char *kdir) {
    spartan_context_opts o = opts(cache, kdir);
    spartan_context *ctx = NULL;
    spartan_status st = spartan_context_create(&o, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s (%s)", spartan_status_name(st),
                  spartan_last_error(NULL));
    return ctx;
}

static spartan_family_status family(const spartan_context *ctx, const char *name) {
    spartan_family_status fs;
    for (unsigned i = 0; spartan_context_family(ctx, i, &fs) == SPARTAN_OK; i++)
        if (strcmp(fs.name, name) == 0) return fs;
    ck_abort_msg("no kernel family %s", name);
    return fs;
}

/* Every family enabled except those named in off (space-separated). */
static void expect_states(const spartan_context *ctx, const char *off) {
    spartan_family_status fs;
    for (unsigned i = 0; spartan_context_family(ctx, i, &fs) == SPARTAN_OK; i++) {
        char word[64];
        snprintf(word, sizeof word, " %s ", fs.name);
        char list[256];
        snprintf(list, sizeof list, " %s ", off);
        int want_off = strstr(list, word) != NULL;
        ck_assert_msg(fs.enabled == !want_off, "%s is %s (%s)", fs.name,
                      fs.enabled ? "enabled" : "disabled", fs.why);
        ck_assert_msg(want_off == (fs.why[0] != '\0'), "%s: reason '%s'", fs.name, fs.why);
    }
}

/* ---- every operation, checked against the references --------------------------------------- */

static spartan_tensor *upload(spartan_context *ctx, const float *h, size_t rows, size_t cols) {
    spartan_tensor *t;
    TH_OK(ctx, spartan_tensor_create_2d(ctx, rows, cols, &t));
    TH_OK(ctx, spartan_tensor_write(t, h, rows * cols));
    return t;
}

static void expect_close(spartan_context *ctx, spartan_tensor *t, const double *want, size_t k,
                         double scale, const char *what) {
    size_t n = spartan_tensor_numel(t), first = 0;
    float *got = th_floats(n);
    TH_OK(ctx, spartan_tensor_read(t, got, n));
    size_t bad = th_count_bad(got, want, n, th_tol(k, scale), &first);
    ck_assert_msg(bad == 0, "%s: %zu of %zu wrong (first at %zu: %g, want %g)", what, bad, n, first,
                  (double)got[first], want[first]);
    free(got);
}

/* The dense GEMM, ReLU + monitor, the compaction's counts and the five sparse GEMMs on one
 * random sparse problem: right whatever runs them. */
static void check_ops(spartan_context *ctx) {
    const size_t m = 67, k = 131, n = 29;
    th_rng r;
    th_rng_init(&r, th_seed());
    float *x = th_floats(m * k), *w = th_floats(k * n), *dz = th_floats(m * n);
    for (size_t i = 0; i < m * k; i++)
        x[i] = th_rng_uniform(&r, 0.0f, 1.0f) < 0.6f ? 0.0f : th_rng_uniform(&r, -1.0f, 1.0f);
    for (size_t i = 0; i < k * n; i++) w[i] = th_rng_uniform(&r, -1.0f, 1.0f);
    for (size_t i = 0; i < m * n; i++)
        dz[i] = th_rng_uniform(&r, 0.0f, 1.0f) < 0.5f ? 0.0f : th_rng_uniform(&r, -1.0f, 1.0f);
    spartan_tensor *tx = upload(ctx, x, m, k), *tw = upload(ctx, w, k, n);
    spartan_tensor *tdz = upload(ctx, dz, m, n), *ty, *tdw, *tdx, *trelu;
    TH_OK(ctx, spartan_tensor_create_2d(ctx, m, n, &ty));
    TH_OK(ctx, spartan_tensor_create_2d(ctx, k, n, &tdw));
    TH_OK(ctx, spartan_tensor_create_2d(ctx, m, k, &tdx));
    TH_OK(ctx, spartan_tensor_create_2d(ctx, m, k, &trelu));
    double *want = th_doubles(m * k > k * n ? m * k : k * n);

    ref_gemm(want, 0, 0, m, n, k, 1.0, x, w, 0.0, NULL);
    TH_OK(ctx, spartan_gemm_dense(ctx, SPARTAN_GEMM_OWN, 0, 0, 1.0f, tx, tw, 0.0f, ty));
    expect_close(ctx, ty, want, k, 1.0, "dense GEMM");

    /* the monitor's counts on relu(x - 0.5 w...) : x itself has the zeros */
    spartan_sparse *sx, *sdz, *sr;
    TH_OK(ctx, spartan_sparse_create(ctx, m, k, &sx));
    TH_OK(ctx, spartan_sparse_create(ctx, m, n, &sdz));
    TH_OK(ctx, spartan_sparse_create(ctx, m, k, &sr));
    TH_OK(ctx, spartan_relu_monitor(ctx, tx, trelu, sr));
    size_t tr, tc, nnz = 0;
    spartan_sparse_tile(sr, &tr, &tc);
    size_t ntiles = ((m + tr - 1) / tr) * ((k + tc - 1) / tc);
    unsigned *counts = calloc(ntiles, sizeof *counts), *wantc = calloc(ntiles, sizeof *wantc);
    float *relu = th_floats(m * k);
    ref_relu(relu, x, m * k);
    ref_tile_counts(wantc, relu, m, k, tr, tc);
    TH_OK(ctx, spartan_sparse_tile_counts(sr, counts, ntiles));
    TH_OK(ctx, spartan_sparse_nnz(sr, &nnz));
    ck_assert_uint_eq(nnz, ref_nonzeros(relu, m * k));
    for (size_t t = 0; t < ntiles; t++) ck_assert_uint_eq(counts[t], wantc[t]);

    /* bias + ReLU + monitor (its fallback, when the monitor is off: copy, bias_add, count) */
    float *bias = th_floats(k), *biased = th_floats(m * k), *got = th_floats(m * k);
    for (size_t j = 0; j < k; j++) bias[j] = th_rng_uniform(&r, -0.5f, 0.5f);
    for (size_t i = 0; i < m * k; i++) {
        const float v = x[i] + bias[i % k];
        biased[i] = v < 0.0f ? 0.0f : v;
    }
    spartan_tensor *tb = upload(ctx, bias, 1, k);
    TH_OK(ctx, spartan_bias_relu_monitor(ctx, tx, tb, trelu, sr));
    TH_OK(ctx, spartan_tensor_read(trelu, got, m * k));
    for (size_t i = 0; i < m * k; i++)
        ck_assert_msg(got[i] == biased[i], "bias + ReLU [%zu]: %.9g, want %.9g", i, (double)got[i],
                      (double)biased[i]);
    TH_OK(ctx, spartan_sparse_nnz(sr, &nnz));
    ck_assert_uint_eq(nnz, ref_nonzeros(biased, m * k));
    spartan_tensor_destroy(tb);
    free(bias);
    free(biased);
    free(got);

    TH_OK(ctx, spartan_compact(ctx, tx, sx, SPARTAN_COMPACT_ROWS | SPARTAN_COMPACT_COLS));
    TH_OK(ctx, spartan_sparse_nnz(sx, &nnz));
    ck_assert_uint_eq(nnz, ref_nonzeros(x, m * k));
    TH_OK(ctx, spartan_compact(ctx, tdz, sdz, SPARTAN_COMPACT_COLS));

    TH_OK(ctx, spartan_gemm_sparse_fwd(ctx, sx, tw, ty));
    expect_close(ctx, ty, want, k, 1.0, "sparse forward");
    TH_OK(ctx, spartan_gemm_sparse_fwd_direct(ctx, tx, tw, ty));
    expect_close(ctx, ty, want, k, 1.0, "sparse forward (direct)");
    ref_gemm_masked(want, x, dz, w, m, k, n);
    TH_OK(ctx, spartan_gemm_sparse_bwd_input(ctx, sx, tdz, tw, tdx));
    expect_close(ctx, tdx, want, n, 1.0, "sparse backward-by-input");
    ref_gemm(want, 1, 0, k, n, m, 1.0, x, dz, 0.0, NULL);
    TH_OK(ctx, spartan_gemm_sparse_bwd_weight(ctx, sx, tdz, tdw));
    expect_close(ctx, tdw, want, m, 1.0, "sparse backward-by-weight");
    TH_OK(ctx, spartan_gemm_sparse_bwd_weight_dz(ctx, tx, sdz, tdw));
    expect_close(ctx, tdw, want, m, 1.0, "sparse backward-by-weight on dZ");

    spartan_sparse_destroy(sx);
    spartan_sparse_destroy(sdz);
    spartan_sparse_destroy(sr);
    spartan_tensor *all[] = {tx, tw, tdz, ty, tdw, tdx, trelu};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) spartan_tensor_destroy(all[i]);
    free(x);
    free(w);
    free(dz);
    free(want);
    free(counts);
    free(wantc);
    free(relu);
}

/* ---- verdicts ----------------------------------------------------------------------------- */

/* The path and key of the cache entry in dir holding gemm_sparse's verdict. */
static void find_verdicts(const spartan_context_opts *o, char *path, size_t len,
                          uint8_t key[SP_SHA256_SIZE]) {
    spartan_cache_entry *list;
    size_t n;
    TH_OK(NULL, spartan_cache_list(o, &list, &n));
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        if (strstr(list[i].label, "validation verdict | gemm_sparse | ") != list[i].label) continue;
        ck_assert_msg(list[i].valid, "the verdict's entry is not valid: %s", list[i].problem);
        snprintf(path, len, "%s", list[i].path);
        found = 1;
    }
    spartan_cache_list_free(list);
    ck_assert_msg(found, "no verdict of gemm_sparse in the cache");
    unsigned char *data;
    size_t dlen;
    sp_err err = {0};
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    dlen = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc(dlen);
    ck_assert_uint_eq(fread(data, 1, dlen, f), dlen);
    fclose(f);
    ck_assert_ptr_null(sp_bincache_parse(data, dlen, key, NULL, 0, NULL, NULL));
    free(data);
    sp_err_free(&err);
}

START_TEST(verdicts_are_cached_and_used) {
    char *cache = th_tempdir("verdicts");
    spartan_context_opts o = opts(cache, NULL);
    spartan_build_stats bs;
    spartan_context *ctx = open_ctx(cache, NULL);
    TH_OK(ctx, spartan_context_build_stats(ctx, &bs));
    ck_assert_int_eq(bs.validated, 1);
    expect_states(ctx, "");
    ck_assert_int_eq(family(ctx, "gemm_sparse").verdict_cached, 0);
    spartan_context_destroy(ctx);

    /* a warm start runs no check */
    ctx = open_ctx(cache, NULL);
    TH_OK(ctx, spartan_context_build_stats(ctx, &bs));
    ck_assert_int_eq(bs.validated, 0);
    expect_states(ctx, "");
    ck_assert_int_eq(family(ctx, "gemm_sparse").verdict_cached, 1);
    spartan_context_destroy(ctx);

    /* the cached verdict is what the context goes by: one saying gemm_sparse failed turns it off */
    char path[1200];
    uint8_t key[SP_SHA256_SIZE];
    find_verdicts(&o, path, sizeof path, key);
    sp_bincache bc = {1, ""};
    snprintf(bc.dir, sizeof bc.dir, "%s", cache);
    const char forged[] = "gemm_sparse 0 failed its validation: forged for the test\n";
    sp_err err = {0};
    TH_OK(NULL, sp_bincache_store(&bc, key, "validation verdict | forged",
                                  (const unsigned char *)forged, strlen(forged), &err));
    ctx = open_ctx(cache, NULL);
    expect_states(ctx, "gemm_sparse");
    ck_assert(strstr(family(ctx, "gemm_sparse").why, "forged for the test") != NULL);
    check_ops(ctx); /* the sparse operations compute densely, and right */
    spartan_context_destroy(ctx);

    /* a verdict that does not parse, or names another family, is ignored: the check runs again
     * and rewrites it */
    const char *bad[] = {
        "eltwise 1 \n",  "garbage", "gemm_sparse 2 \n", "", "gemm_sparse 1 \nnn 1 \n",
        "gemm_sparse 1 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        TH_OK(NULL, sp_bincache_store(&bc, key, "validation verdict | bad",
                                      (const unsigned char *)bad[i], strlen(bad[i]), &err));
        ctx = open_ctx(cache, NULL);
        TH_OK(ctx, spartan_context_build_stats(ctx, &bs));
        ck_assert_msg(bs.validated == 1, "verdicts '%s' were taken", bad[i]);
        expect_states(ctx, "");
        spartan_context_destroy(ctx);
    }
    sp_err_free(&err);
    th_rm_rf(cache);
    free(cache);
}
END_TEST

/* ---- a family that computes wrong ------------------------------------------------------------ */

typedef struct broken {
    const char *file, *from, *to; /* the edit that makes the family wrong */
    const char *off;              /* the families then disabled */
} broken;

static const broken wrong[] = {
    {"gemm_sparse.cl", "xr[k] = r;", "xr[k] = r + 1.0f;", "gemm_sparse"},
    {"gemm_dense.cl", "floatv v = row_kept[r] ? (floatv)(g.alpha) * acc[r][c] : (floatv)(0.0f);",
     "floatv v = (floatv)(g.alpha) * acc[r][c] + (floatv)(0.5f);", "gemm_dense"},
    {"monitor.cl", "counts[t] = cnt;", "counts[t] = cnt + (t == 3);", "monitor"},
    {"compact.cl", "counts[t] = p;", "counts[t] = p + (t == 1);", "compact gemm_sparse"},
    {"reference.cl", "    counts[t] = cnt;", "    counts[t] = cnt + 1;", "reference"},
    {"conv.cl", "floatv o = (floatv)(alpha)*acc;",
     "floatv o = (floatv)(alpha)*acc + (floatv)(0.5f);", "conv"},
    {"conv_dx.cl", "floatv o = (floatv)(alpha)*acc[v];",
     "floatv o = (floatv)(alpha)*acc[v] + (floatv)(0.5f);", "conv_dx"},
    {"conv_dw.cl", "floatv t = (floatv)(alpha)*acc;",
     "floatv t = (floatv)(alpha)*acc + (floatv)(0.5f);", "conv_dw"},
};

START_TEST(wrong_family_is_disabled_and_falls_back) {
    const broken *b = &wrong[_i];
    char *cache = th_shared_cache("wrong");
    char *kdir = th_copy_kernels();
    th_edit_kernel(kdir, b->file, b->from, b->to);
    spartan_context *ctx = open_ctx(cache, kdir);
    expect_states(ctx, b->off);
    char first[32]; /* the broken family: the first one named */
    sscanf(b->off, "%31s", first);
    spartan_family_status fs = family(ctx, first);
    ck_assert_msg(strstr(fs.why, "failed its validation") != NULL, "%s", fs.why);
    ck_assert_int_gt(strlen(fs.fallback), 10);
    check_ops(ctx);
    spartan_context_destroy(ctx);
    /* the same verdict from the cache */
    ctx = open_ctx(cache, kdir);
    expect_states(ctx, b->off);
    spartan_context_destroy(ctx);
    th_rm_rf(kdir);
    free(kdir);
    th_shared_cache_done(cache);
}
END_TEST

/* Training losses of a small MLP over a few steps. */
static void losses(spartan_context *ctx, spartan_policy_mode policy, double *out, int steps) {
    spartan_model *m;
    TH_OK(ctx, spartan_model_create(ctx, 4, 4, 1, 3, &m));
    TH_OK(ctx, spartan_model_add_fc(m, 24));
    TH_OK(ctx, spartan_model_add_relu(m));
    TH_OK(ctx, spartan_model_add_fc(m, 16));
    TH_OK(ctx, spartan_model_add_relu(m));
    TH_OK(ctx, spartan_model_add_fc(m, 3));
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = 8;
    cfg.policy = policy;
    TH_OK(ctx, spartan_model_prepare(m, &cfg));
    th_rng r;
    th_rng_init(&r, 42);
    float img[8 * 16], lab[8];
    for (int s = 0; s < steps; s++) {
        for (size_t i = 0; i < 8 * 16; i++)
            img[i] = th_rng_uniform(&r, 0.0f, 1.0f) < 0.4f ? 0.0f : th_rng_uniform(&r, 0.0f, 1.0f);
        for (size_t i = 0; i < 8; i++) lab[i] = (float)(i % 3);
        spartan_step_result res;
        TH_OK(ctx, spartan_model_train_step(m, img, lab, 8, &res));
        out[s] = res.loss;
    }
    spartan_model_destroy(m);
}

START_TEST(training_with_sparse_kernels_off_matches_dense) {
    char *cache = th_tempdir("train");
    char *kdir = th_copy_kernels();
    th_edit_kernel(kdir, wrong[0].file, wrong[0].from, wrong[0].to);
    spartan_context *broken_ctx = open_ctx(cache, kdir), *ok = open_ctx(cache, NULL);
    expect_states(broken_ctx, "gemm_sparse");
    double sparse[6], dense[6];
    losses(broken_ctx, SPARTAN_POLICY_SPARSE, sparse, 6);
    losses(ok, SPARTAN_POLICY_DENSE, dense, 6);
    for (int s = 0; s < 6; s++)
        ck_assert_msg(sparse[s] == dense[s], "step %d: %.9g (sparse kernels off), %.9g (dense)", s,
                      sparse[s], dense[s]);
    /* the adaptive policy has nothing sparse to choose there either */
    losses(broken_ctx, SPARTAN_POLICY_ADAPTIVE, sparse, 6);
    for (int s = 0; s < 6; s++) ck_assert(sparse[s] == dense[s]);
    spartan_context_destroy(broken_ctx);
    spartan_context_destroy(ok);
    th_rm_rf(kdir);
    th_rm_rf(cache);
    free(kdir);
    free(cache);
}
END_TEST

/* ---- what refuses -----------------------------------------------------------------------------
 */

/* Edits that make one operation of the nn family wrong, and the name its check reports. */
static const struct {
    const char *from, *to, *op;
} wrong_nn[] = {
    {"select((floatv)(0.0f), g,", "select((floatv)(1.0f), g,", "ReLU backward"},
    {"acc / (floatv)((float)(k_h * k_w)), y", "acc / (floatv)((float)(k_h * k_w + 1)), y",
     "avg-pool:"},
    {"acc / (floatv)((float)(k_h * k_w)), dx", "acc / (floatv)((float)(k_h * k_w + 1)), dx",
     "avg-pool backward"},
};

START_TEST(essential_family_that_fails_refuses_the_device) {
    char *kdir = th_copy_kernels();
    th_edit_kernel(kdir, "nn.cl", wrong_nn[_i].from, wrong_nn[_i].to);
    spartan_context_opts o = opts("off", kdir);
    spartan_context *ctx = (spartan_context *)&ctx;
    spartan_status st = spartan_context_create(&o, &ctx);
    ck_assert_int_eq(st, SPARTAN_STATUS_VALIDATION_FAILED);
    ck_assert_ptr_null(ctx);
    const char *msg = spartan_last_error(NULL);
    ck_assert_msg(strstr(msg, "kernel family nn") != NULL && strstr(msg, wrong_nn[_i].op) != NULL,
                  "%s", msg);
    th_rm_rf(kdir);
    free(kdir);
}
END_TEST

START_TEST(optional_family_that_does_not_build_is_disabled) {
    char *kdir = th_copy_kernels();
    th_edit_kernel(kdir, "gemm_sparse.cl", "typedef struct sp_form {",
                   "this_is_not_opencl x;\ntypedef struct sp_form {");
    spartan_context *ctx = open_ctx("off", kdir);
    expect_states(ctx, "gemm_sparse");
    const char *why = family(ctx, "gemm_sparse").why;
    ck_assert_msg(strstr(why, "did not build") != NULL && strstr(why, "this_is_not_opencl"), "%s",
                  why);
    check_ops(ctx);
    spartan_context_destroy(ctx);
    th_rm_rf(kdir);
    free(kdir);
}
END_TEST

/* The line number of the first line of file (in dir) that contains text. */
static int line_of(const char *dir, const char *file, const char *text) {
    char *path = th_join(dir, file), line[512];
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "open %s", path);
    int n = 0, found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        n++;
        found = strstr(line, text) != NULL;
    }
    fclose(f);
    free(path);
    ck_assert_msg(found, "%s has no '%s'", file, text);
    return n;
}

/* An error inside a kernel's body names its own line of the file (the bodies are functions: when
 * they were multi-line macros, every error named the line that expanded the macro). */
START_TEST(build_error_names_its_line) {
    char *kdir = th_copy_kernels();
    const char *from = "const uint step = !cols ? 1 : f.src_cols;";
    int line = line_of(kdir, "gemm_sparse.cl", from);
    th_edit_kernel(kdir, "gemm_sparse.cl", from,
                   "const uint step = !cols ? 1 : f.src_cols + this_is_not_opencl;");
    spartan_context *ctx = open_ctx("off", kdir);
    expect_states(ctx, "gemm_sparse");
    const char *why = family(ctx, "gemm_sparse").why;
    char at[64];
    snprintf(at, sizeof at, "gemm_sparse.cl:%d:", line);
    ck_assert_msg(strstr(why, at) != NULL && strstr(why, "this_is_not_opencl"), "want %s in: %s",
                  at, why);
    spartan_context_destroy(ctx);
    th_rm_rf(kdir);
    free(kdir);
}
END_TEST

START_TEST(missing_kernel_fails_context_creation) {
    char *kdir = th_copy_kernels();
    th_edit_kernel(kdir, "gemm_sparse.cl", "void gemm_sparse_bwd_input(",
                   "void gemm_sparse_other(");
    spartan_context_opts o = opts("off", kdir);
    spartan_context *ctx = (spartan_context *)&ctx;
    spartan_status st = spartan_context_create(&o, &ctx);
    ck_assert_int_eq(st, SPARTAN_STATUS_KERNEL_SOURCE);
    ck_assert_ptr_null(ctx);
    const char *msg = spartan_last_error(NULL);
    ck_assert_msg(strstr(msg, "gemm_sparse.cl") && strstr(msg, "no kernel gemm_sparse_bwd_input"),
                  "%s", msg);
    th_rm_rf(kdir);
    free(kdir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("selftest");
    TCase *tc = tcase_create("selftest");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, verdicts_are_cached_and_used);
    tcase_add_loop_test(tc, wrong_family_is_disabled_and_falls_back, 0,
                        (int)(sizeof wrong / sizeof wrong[0]));
    tcase_add_test(tc, training_with_sparse_kernels_off_matches_dense);
    tcase_add_loop_test(tc, essential_family_that_fails_refuses_the_device, 0,
                        (int)(sizeof wrong_nn / sizeof wrong_nn[0]));
    tcase_add_test(tc, optional_family_that_does_not_build_is_disabled);
    tcase_add_test(tc, build_error_names_its_line);
    tcase_add_test(tc, missing_kernel_fails_context_creation);
    suite_add_tcase(s, tc);
    return th_run_suite(s);
}
