/* Tests of the pruned export (runtime/io/export.c, spartan_model_export_pruned; the shared
 * model-file helpers under it, io/model_file.c, are also checkpoint.c's): a model trained with
 * Dropback until its untracked weights are exact zeros, and a model without it (an LSTM's
 * parameters too, a -0.0, an all-zero bias), each exported and read back with the library's own
 * safetensors reader and checksum check: every parameter's indices strictly ascending and in
 * range, its values the model's bit for bit, every other element of the model exactly +0.0, the
 * shapes and other metadata, the counts and sizes the info reports; a truncated or damaged
 * export refused; the refusals of bad calls (NULL arguments, an unprepared model, reserved or
 * repeated extra keys, an unwritable path), each leaving nothing behind. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "io/model_file.h"
#include "io/safetensors.h"
#include "spartan/spartan.h"

#define OK(call) TH_OK(th_ctx, call)
#define FORMAT   "spartan-pruned-1"

/* Every test's context and an empty temporary directory, removed after it. */
static char *dir;

static void setup(void) {
    th_ctx_setup();
    dir = th_tempdir("export");
}

static void teardown(void) {
    th_rm_rf(dir);
    free(dir);
    dir = NULL;
    th_ctx_teardown();
}

/* "dir/name" in out. */
static const char *in_dir(char out[512], const char *name) {
    snprintf(out, 512, "%s/%s", dir, name);
    return out;
}

/* ---- Models ---------------------------------------------------------------------------------- */

/* A conv + fc model on 6x6x1 images (a conv weight of rank 4, fc weights, biases). */
static const char small_net[] =
    "input 6x6x1\nconv 4 k=3 p=1\nrelu\nmaxpool k=2\nfc 20\nrelu\nfc 3\n";
/* An LSTM (its parameters are named and shaped otherwise) and an fc layer. */
static const char lstm_net[] = "input 4x4x1\nlstm 8\nfc 3\n";

/* The model `text` describes, prepared for batches of 8 (with Dropback when density > 0). */
static spartan_model *prepared(const char *text, float density, float decay) {
    spartan_model *m;
    OK(spartan_model_create_from_text(th_ctx, text, &m));
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = 8;
    cfg.seed = 11;
    cfg.dropback_density = density;
    cfg.dropback_decay = decay;
    OK(spartan_model_prepare(m, &cfg));
    return m;
}

static void train(spartan_model *m, size_t steps) {
    float img[8 * 36], lab[8];
    th_rng r;
    th_rng_init(&r, th_seed());
    for (size_t s = 0; s < steps; s++) {
        for (size_t i = 0; i < 8 * 36; i++) img[i] = th_rng_uniform(&r, 0.0f, 1.0f);
        for (size_t i = 0; i < 8; i++) lab[i] = (float)(th_rng_next(&r) % 3);
        OK(spartan_model_train_step(m, img, lab, 8, NULL));
    }
}

/* ---- Reading an export back ------------------------------------------------------------------ */

/* The whole file at path (malloc'd) and its size. */
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    ck_assert_int_ge(len, 0);
    rewind(f);
    unsigned char *b = malloc(len ? (size_t)len : 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static size_t file_size(const char *path) {
    size_t n;
    free(slurp(path, &n));
    return n;
}

static void open_export(const char *path, sp_st_file *f) {
    sp_err err = {0};
    spartan_status st = sp_mf_open(path, SIZE_MAX, FORMAT, "pruned export", f, &err);
    ck_assert_msg(st == SPARTAN_OK, "%s", sp_err_message(&err));
    sp_err_free(&err);
}

/* Checks the export at path against m, everything the header comment promises, and returns the
 * stored count. */
static size_t check_export(spartan_model *m, const char *path, const spartan_export_info *info) {
    sp_st_file f;
    open_export(path, &f);
    const size_t np = spartan_model_param_count(m);
    ck_assert_uint_eq(f.ntensors, 2 * np);
    size_t elements = 0, stored = 0;
    for (size_t i = 0; i < np; i++) {
        spartan_param p;
        OK(spartan_model_param(m, i, &p));
        const size_t n = spartan_tensor_numel(p.value);
        float *v = th_floats(n);
        OK(spartan_tensor_read(p.value, v, n));
        char name[96], shape[96] = "[";
        for (size_t d = 0, at = 1; d < p.rank; d++)
            at +=
                (size_t)snprintf(shape + at, sizeof shape - at, "%s%zu", d ? "," : "", p.shape[d]);
        strcat(shape, "]");
        snprintf(name, sizeof name, "%s.shape", p.name);
        ck_assert_ptr_nonnull(sp_st_meta_get(&f, name));
        ck_assert_str_eq(sp_st_meta_get(&f, name), shape);
        snprintf(name, sizeof name, "%s.indices", p.name);
        const sp_st_tensor *pos = sp_st_find(&f, name);
        snprintf(name, sizeof name, "%s.values", p.name);
        const sp_st_tensor *val = sp_st_find(&f, name);
        ck_assert_msg(pos && val, "%s: no pair of tensors", p.name);
        ck_assert(pos->dtype == SP_ST_I32 && pos->rank == 1);
        ck_assert(val->dtype == SP_ST_F32 && val->rank == 1);
        const size_t nnz = pos->shape[0];
        ck_assert_uint_eq(val->shape[0], nnz);
        unsigned char *seen = calloc(n ? n : 1, 1);
        ck_assert_ptr_nonnull(seen);
        for (size_t k = 0; k < nnz; k++) {
            const uint32_t at = sp_st_le32_get(pos->data + 4 * k);
            ck_assert_msg(at < n, "%s: index %u of %zu elements", p.name, (unsigned)at, n);
            ck_assert_msg(k == 0 || at > sp_st_le32_get(pos->data + 4 * (k - 1)),
                          "%s: index %zu not above the one before", p.name, k);
            uint32_t want;
            memcpy(&want, &v[at], 4);
            ck_assert_msg(sp_st_le32_get(val->data + 4 * k) == want,
                          "%s[%u]: stored bits %08x, the model's %08x", p.name, (unsigned)at,
                          (unsigned)sp_st_le32_get(val->data + 4 * k), (unsigned)want);
            ck_assert_msg(want != 0, "%s[%u]: a +0.0 stored", p.name, (unsigned)at);
            seen[at] = 1;
        }
        for (size_t j = 0; j < n; j++) {
            uint32_t u;
            memcpy(&u, &v[j], 4);
            ck_assert_msg(seen[j] || u == 0, "%s[%zu] = %.9g is not stored", p.name, j,
                          (double)v[j]);
        }
        elements += n;
        stored += nnz;
        free(seen);
        free(v);
    }
    ck_assert_str_eq(sp_st_meta_get(&f, "format"), FORMAT);
    char *arch = sp_mf_architecture(m), step[24];
    ck_assert_str_eq(sp_st_meta_get(&f, "architecture"), arch);
    free(arch);
    snprintf(step, sizeof step, "%zu", spartan_model_steps(m));
    ck_assert_str_eq(sp_st_meta_get(&f, "step"), step);
    ck_assert_ptr_nonnull(strstr(sp_st_meta_get(&f, "layout"), "'P.indices' (I32)"));
    ck_assert_ptr_nonnull(strstr(sp_st_meta_get(&f, "layout"), "[kh, kw, cin, cout]"));
    ck_assert_ptr_nonnull(sp_st_meta_get(&f, "description"));
    ck_assert_int_eq(strncmp(sp_st_meta_get(&f, "writer"), "spartan ", 8), 0);
    ck_assert_uint_eq(f.header_end % 8, 0);

    /* The info: the counts, the file's size, and the dense file's (the same metadata, each
     * parameter one F32 tensor), computed here again from the file's own entries. */
    ck_assert_uint_eq(info->elements, elements);
    ck_assert_uint_eq(info->nonzero, stored);
    ck_assert_uint_eq(info->file_bytes, file_size(path));
    ck_assert_uint_eq(info->file_bytes, f.len);
    sp_st_tensor *dense = calloc(np, sizeof *dense);
    ck_assert_ptr_nonnull(dense);
    for (size_t i = 0; i < np; i++) {
        spartan_param p;
        OK(spartan_model_param(m, i, &p));
        dense[i] = (sp_st_tensor){p.name, SP_ST_F32, (int)p.rank,
                                  {0},    NULL,      4 * spartan_tensor_numel(p.value)};
        memcpy(dense[i].shape, p.shape, p.rank * sizeof p.shape[0]);
    }
    unsigned char *h;
    size_t hl;
    sp_err err = {0};
    ck_assert_int_eq(sp_st_encode_header(dense, np, f.meta, f.nmeta, &h, &hl, &err), SPARTAN_OK);
    ck_assert_uint_eq(info->dense_bytes, hl + 4 * elements);
    free(h);
    free(dense);
    sp_st_free(&f);
    return stored;
}

/* ---- Tests ----------------------------------------------------------------------------------- */

START_TEST(test_dropback_export) {
    char path[512];
    in_dir(path, "small.pruned.safetensors");
    spartan_model *m = prepared(small_net, 0.2f, 0.05f); /* 0.05^t is 0 before t = 40 */
    train(m, 40);
    spartan_dropback_info d;
    OK(spartan_model_dropback_info(m, &d, NULL));
    ck_assert_msg(d.decay == 0.0f, "d is %g after 40 updates", (double)d.decay);

    const spartan_checkpoint_meta extra[] = {{"run", "test \"export\""}};
    spartan_export_info info;
    memset(&info, 0xab, sizeof info);
    OK(spartan_model_export_pruned(m, path, extra, 1, &info));
    ck_assert_uint_eq(th_count_entries(dir, ""), 3); /* ".", "..", the file: no temporary */
    const size_t stored = check_export(m, path, &info);
    /* the untracked elements are exact zeros: at most the tracked ones are stored */
    ck_assert_uint_eq(info.elements, d.total);
    ck_assert_msg(stored > 0 && stored <= d.tracked, "%zu stored, %zu tracked", stored, d.tracked);
    ck_assert_uint_lt(info.file_bytes, info.dense_bytes);
    sp_st_file f;
    open_export(path, &f);
    ck_assert_str_eq(sp_st_meta_get(&f, "run"), "test \"export\"");
    ck_assert_str_eq(sp_st_meta_get(&f, "fc1.weight.shape"), "[36,20]");
    ck_assert_str_eq(sp_st_meta_get(&f, "conv1.weight.shape"), "[3,3,1,4]");
    ck_assert_str_eq(sp_st_meta_get(&f, "fc2.bias.shape"), "[3]");
    sp_st_free(&f);

    /* Exporting again replaces the file; info may be NULL. */
    train(m, 2);
    OK(spartan_model_export_pruned(m, path, NULL, 0, NULL));
    OK(spartan_model_export_pruned(m, path, NULL, 0, &info));
    check_export(m, path, &info);
    ck_assert_uint_eq(th_count_entries(dir, ""), 3);
    spartan_model_destroy(m);
}
END_TEST

/* Without Dropback nothing is zero but the biases: the export is larger than the dense file, and
 * still exact. An LSTM's parameters, a -0.0 (stored: its bits are not zero) and an all-zero
 * bias (two empty tensors). */
START_TEST(test_dense_export) {
    char path[512];
    in_dir(path, "lstm.pruned.safetensors");
    spartan_model *m = prepared(lstm_net, 0.0f, 0.9f);
    const size_t np = spartan_model_param_count(m);
    spartan_param bias;
    OK(spartan_model_param(m, np - 1, &bias));
    ck_assert_uint_eq(spartan_tensor_numel(bias.value), 3);
    const float zeros[3] = {0.0f, 0.0f, 0.0f}, signed_zero[3] = {0.0f, -0.0f, 2.5f};
    OK(spartan_tensor_write(bias.value, zeros, 3));

    spartan_export_info info;
    OK(spartan_model_export_pruned(m, path, NULL, 0, &info));
    check_export(m, path, &info);
    sp_st_file f;
    open_export(path, &f);
    ck_assert_ptr_nonnull(sp_st_find(&f, "lstm1.weight_ih.indices"));
    ck_assert_uint_eq(sp_st_find(&f, "fc1.bias.indices")->shape[0], 0);
    ck_assert_uint_eq(sp_st_find(&f, "fc1.bias.values")->shape[0], 0);
    sp_st_free(&f);
    ck_assert_uint_gt(info.file_bytes, info.dense_bytes);

    OK(spartan_tensor_write(bias.value, signed_zero, 3));
    OK(spartan_model_export_pruned(m, path, NULL, 0, &info));
    check_export(m, path, &info);
    open_export(path, &f);
    const sp_st_tensor *pos = sp_st_find(&f, "fc1.bias.indices");
    const sp_st_tensor *val = sp_st_find(&f, "fc1.bias.values");
    ck_assert_uint_eq(pos->shape[0], 2);
    ck_assert_uint_eq(sp_st_le32_get(pos->data), 1);
    ck_assert_uint_eq(sp_st_le32_get(val->data), 0x80000000u);
    sp_st_free(&f);
    spartan_model_destroy(m);
}
END_TEST

/* A truncated or damaged export is refused by the checked open (structure, checksums), and a
 * checkpoint load refuses an export by its format. */
START_TEST(test_damaged_export) {
    char good[512], bad[512];
    in_dir(good, "good.safetensors");
    in_dir(bad, "bad.safetensors");
    spartan_model *m = prepared(small_net, 0.2f, 0.9f);
    train(m, 3);
    OK(spartan_model_export_pruned(m, good, NULL, 0, NULL));
    size_t n;
    unsigned char *b = slurp(good, &n);
    sp_st_file f;
    open_export(good, &f);
    const size_t hend = f.header_end;
    sp_st_free(&f);

    sp_err err = {0};
    for (size_t len = 0; len < n; len++) {
        th_write_bytes(bad, b, len);
        ck_assert_msg(sp_mf_open(bad, SIZE_MAX, FORMAT, "pruned export", &f, &err) ==
                          SPARTAN_STATUS_BAD_FORMAT,
                      "cut at %zu of %zu: %s", len, n, sp_err_message(&err));
    }
    for (size_t i = 0; i < n; i++) {
        b[i] ^= (unsigned char)(1u << (i % 8));
        th_write_bytes(bad, b, n);
        b[i] ^= (unsigned char)(1u << (i % 8));
        ck_assert_msg(sp_mf_open(bad, SIZE_MAX, FORMAT, "pruned export", &f, &err) ==
                          SPARTAN_STATUS_BAD_FORMAT,
                      "bit flipped in byte %zu of %zu", i, n);
        if (i >= hend) ck_assert_ptr_nonnull(strstr(sp_err_message(&err), "the data's checksum"));
    }
    sp_err_free(&err);
    ck_assert_int_eq(spartan_checkpoint_load(m, good), SPARTAN_STATUS_BAD_FORMAT);
    ck_assert_ptr_nonnull(
        strstr(spartan_last_error(th_ctx), "format \"" FORMAT "\", expected \"spartan-checkpoint"));
    free(b);
    spartan_model_destroy(m);
}
END_TEST

START_TEST(test_refusals) {
    char path[512], nowhere[512], sub[512];
    in_dir(path, "x.safetensors");
    spartan_export_info info = {0};
    spartan_model *m;
    OK(spartan_model_create_from_text(th_ctx, small_net, &m)); /* not prepared */
    ck_assert_int_eq(spartan_model_export_pruned(m, path, NULL, 0, &info),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(th_ctx), "prepare"));
    spartan_model_destroy(m);
    m = prepared(small_net, 0.0f, 0.9f);
    ck_assert_int_eq(spartan_model_export_pruned(NULL, path, NULL, 0, &info),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_model_export_pruned(m, NULL, NULL, 0, &info),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(th_ctx), "NULL argument"));
    ck_assert_int_eq(spartan_model_export_pruned(m, path, NULL, 1, &info),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    const spartan_checkpoint_meta own[] = {{"fc1.weight.shape", "[1]"}},
                                  format[] = {{"format", "x"}}, twice[] = {{"a", "1"}, {"a", "2"}},
                                  empty[] = {{"", "1"}}, novalue[] = {{"a", NULL}};
    ck_assert_int_eq(spartan_model_export_pruned(m, path, own, 1, &info),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(th_ctx), "\"fc1.weight.shape\" is a reserved"));
    ck_assert_int_eq(spartan_model_export_pruned(m, path, format, 1, &info),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_model_export_pruned(m, path, twice, 2, &info),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_model_export_pruned(m, path, empty, 1, &info),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_model_export_pruned(m, path, novalue, 1, &info),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_uint_eq(th_count_entries(dir, ""), 2); /* nothing written */

    /* Unwritable: a directory that does not exist, a directory in the target's place. */
    in_dir(nowhere, "no/such/dir.safetensors");
    ck_assert_int_eq(spartan_model_export_pruned(m, nowhere, NULL, 0, &info),
                     SPARTAN_STATUS_IO_ERROR);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(th_ctx), nowhere));
    in_dir(sub, "sub");
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_int_eq(spartan_model_export_pruned(m, sub, NULL, 0, &info), SPARTAN_STATUS_IO_ERROR);
    ck_assert_ptr_nonnull(strstr(spartan_last_error(th_ctx), sub));
    ck_assert_uint_eq(th_count_entries(dir, ""), 3); /* ".", "..", sub: no temporary left */
    ck_assert_uint_eq(th_count_entries(sub, ""), 2);

    /* A refused call leaves an earlier export as it was. */
    OK(spartan_model_export_pruned(m, path, NULL, 0, &info));
    size_t n0, n1;
    unsigned char *before = slurp(path, &n0);
    train(m, 1);
    ck_assert_int_eq(spartan_model_export_pruned(m, path, format, 1, &info),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    unsigned char *after = slurp(path, &n1);
    ck_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    ck_assert_uint_eq(th_count_entries(dir, ""), 4);
    spartan_model_destroy(m);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("export");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_dropback_export);
    tcase_add_test(tc, test_dense_export);
    tcase_add_test(tc, test_damaged_export);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(suite());
}
