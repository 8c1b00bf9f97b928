/* Tests of the safetensors format layer under checkpoints (runtime/io/safetensors.c): the
 * reader's structural checks on hand-made files (a valid file's tensors in data order, its
 * metadata; the refusal, with a message naming the file and the fault, of gaps, overlaps,
 * trailing and missing bytes, sizes that disagree with shape and dtype, unknown dtypes and
 * fields, repeated names, malformed JSON, headers and length fields), and the writer's files
 * read back (every dtype's bytes, the metadata, an aligned header, no temporary file left). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/safetensors.h"
#include "spartan/spartan.h"

/* ---- The safetensors reader on hand-made files ----------------------------------------------- */

/* A file of the given JSON header (padded to 8 bytes when pad) and `data` bytes 0, 1, 2, ... */
static void write_st(const char *path, const char *json, size_t data, int pad) {
    size_t j = strlen(json), h = pad ? (j + 7) / 8 * 8 : j;
    unsigned char *b = calloc(8 + h + data + 1, 1);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, json, j);
    memset(b + 8 + j, ' ', h - j);
    for (size_t i = 0; i < data; i++) b[8 + h + i] = (unsigned char)i;
    th_write_bytes(path, b, 8 + h + data);
    free(b);
}

static void st_refused(const char *path, const char *json, size_t data, const char *phrase) {
    write_st(path, json, data, 1);
    sp_st_file f;
    sp_err err = {0};
    spartan_status st = sp_st_read(path, SIZE_MAX, &f, &err);
    ck_assert_msg(st == SPARTAN_STATUS_BAD_FORMAT, "%s: accepted, expected \"%s\"", json, phrase);
    ck_assert_msg(strstr(sp_err_message(&err), phrase) && strstr(sp_err_message(&err), path),
                  "%s: message \"%s\" lacks \"%s\"", json, sp_err_message(&err), phrase);
    ck_assert_ptr_null(f.buf);
    ck_assert_uint_eq(f.ntensors, 0);
    sp_err_free(&err);
}

#define T(name, dtype, shape, b, e)                                                                \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

START_TEST(safetensors_reader_checks_structure) {
    char *dir = th_tempdir("st");
    char *path = th_join(dir, "x.safetensors");
    sp_err err = {0};
    sp_st_file f;

    /* A valid file: tensors come back in data order, pointing at their bytes. */
    write_st(path,
             "{\"__metadata__\":{\"k\":\"v\",\"e\":\"\"}," T("b", "U8", "[3]", 8, 11) "," T(
                 "a", "F32", "[2]", 0, 8) "," T("s", "I64", "[]", 11, 19) "," T("z", "F32", "[0,4]",
                                                                                19, 19) "}",
             19, 0);
    ck_assert_msg(sp_st_read(path, SIZE_MAX, &f, &err) == SPARTAN_OK, "%s", sp_err_message(&err));
    ck_assert_uint_eq(f.ntensors, 4);
    ck_assert_str_eq(f.tensors[0].name, "a");
    ck_assert_int_eq(f.tensors[0].dtype, SP_ST_F32);
    ck_assert_int_eq(f.tensors[0].rank, 1);
    ck_assert_uint_eq(f.tensors[0].shape[0], 2);
    ck_assert_uint_eq(f.tensors[0].data[0], 0);
    ck_assert_str_eq(f.tensors[1].name, "b");
    ck_assert_uint_eq(f.tensors[1].data[0], 8);
    ck_assert_uint_eq(f.tensors[1].bytes, 3);
    ck_assert_int_eq(f.tensors[2].rank, 0);
    ck_assert_uint_eq(f.tensors[2].bytes, 8);
    ck_assert_uint_eq(f.tensors[3].bytes, 0);
    ck_assert_ptr_eq(sp_st_find(&f, "s"), &f.tensors[2]);
    ck_assert_ptr_null(sp_st_find(&f, "c"));
    ck_assert_str_eq(sp_st_meta_get(&f, "k"), "v");
    ck_assert_str_eq(sp_st_meta_get(&f, "e"), "");
    ck_assert_ptr_null(sp_st_meta_get(&f, "v"));
    sp_st_free(&f);
    sp_st_free(&f); /* empty: no-op */

    struct {
        const char *json;
        size_t data;
        const char *phrase;
    } bad[] = {
        {"{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[1]", 12, 16) "}", 16,
         "bytes 8 to 11 of the data belong to no tensor"},
        {"{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[2]", 4, 12) "}", 12,
         "tensor \"b\" overlaps \"a\""},
        {"{" T("a", "F32", "[2]", 0, 8) "}", 12, "4 bytes after the last tensor"},
        {"{" T("a", "F32", "[2]", 0, 8) "}", 4, "truncated: tensor \"a\" ends at byte 8"},
        {"{" T("a", "F32", "[3]", 0, 8) "}", 8, "hold 8 bytes, the shape and dtype need 12"},
        {"{" T("a", "F8", "[2]", 0, 2) "}", 2, "unknown dtype F8"},
        {"{" T("a", "F32", "[2]", 0, 8) "," T("a", "F32", "[2]", 8, 16) "}", 16,
         "tensor \"a\" appears twice"},
        {"{\"__metadata__\":{\"k\":1}}", 0, "metadata \"k\" is not a string"},
        {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "metadata \"k\" appears twice"},
        {"{\"__metadata__\":[]}", 0, "__metadata__ is not a JSON object"},
        {" {}", 0, "does not start with '{'"},
        {"[]", 0, "does not start with '{'"},
        {"{\"a\":", 0, "not valid JSON"},
        {"{}x", 0, "is not space padding"},
        {"{" T("a", "F32", "[-2]", 0, 8) "}", 8, "dimension 0 is not a non-negative integer"},
        {"{" T("a", "F32", "[2.5]", 0, 10) "}", 10, "dimension 0 is not"},
        {"{" T("a", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, "at most 8 dimensions"},
        {"{" T("a", "F32", "[2]", 8, 0) "}", 8, "data_offsets is not [begin, end]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "lacks \"data_offsets\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8,
         "unknown field \"x\""},
        {"{\"a\":3}", 0, "tensor \"a\" is not a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        st_refused(path, bad[i].json, bad[i].data, bad[i].phrase);

    /* The length field: past the end, absurd, or no room for it. */
    unsigned char raw[16] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    th_write_bytes(path, raw, 10);
    ck_assert_int_eq(sp_st_read(path, SIZE_MAX, &f, &err), SPARTAN_STATUS_BAD_FORMAT);
    ck_assert(strstr(sp_err_message(&err), "truncated: the header length is 200 bytes"));
    raw[7] = 0x80;
    th_write_bytes(path, raw, 10);
    ck_assert_int_eq(sp_st_read(path, SIZE_MAX, &f, &err), SPARTAN_STATUS_BAD_FORMAT);
    ck_assert(strstr(sp_err_message(&err), "above the limit"));
    th_write_bytes(path, raw, 5);
    ck_assert_int_eq(sp_st_read(path, SIZE_MAX, &f, &err), SPARTAN_STATUS_BAD_FORMAT);
    ck_assert(strstr(sp_err_message(&err), "5 bytes, shorter than the 8-byte header length"));
    ck_assert_int_eq(sp_st_read(dir, SIZE_MAX, &f, &err), SPARTAN_STATUS_IO_ERROR);
    char *missing = th_join(dir, "none");
    ck_assert_int_eq(sp_st_read(missing, SIZE_MAX, &f, &err), SPARTAN_STATUS_IO_ERROR);
    ck_assert(strstr(sp_err_message(&err), missing));
    free(missing);
    sp_err_free(&err);
    free(path);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

/* The writer's files read back: every dtype's bytes, the metadata, an 8-byte aligned header, and
 * no temporary file left. */
START_TEST(safetensors_write_read_back) {
    char *dir = th_tempdir("st");
    char *path = th_join(dir, "w.safetensors");
    sp_err err = {0};
    const float fv[3] = {1.5f, -0.0f, 3e-38f};
    unsigned char f32[12], u8[5] = {1, 2, 3, 4, 5}, i64[16] = {7, 0, 0, 0, 0, 0, 0, 0x80};
    sp_st_f32_store(fv, 3, f32);
    sp_st_tensor t[3] = {{"w.x", SP_ST_F32, 2, {3, 1}, f32, 12},
                         {"b\"q", SP_ST_U8, 1, {5}, u8, 5},
                         {"n", SP_ST_I64, 1, {2}, i64, 16}};
    sp_st_meta meta[2] = {{"a", "x\ny \"z\""}, {"b", ""}};
    unsigned char *h;
    size_t hl;
    ck_assert_int_eq(sp_st_encode_header(t, 3, meta, 2, &h, &hl, &err), SPARTAN_OK);
    ck_assert_uint_eq(hl % 8, 0);
    ck_assert_int_eq(sp_st_write(path, h, hl, t, 3, &err), SPARTAN_OK);
    free(h);
    ck_assert_uint_eq(th_count_entries(dir, "w.safetensors"), 1);
    sp_st_file f;
    ck_assert_msg(sp_st_read(path, SIZE_MAX, &f, &err) == SPARTAN_OK, "%s", sp_err_message(&err));
    ck_assert_uint_eq(f.ntensors, 3);
    ck_assert_str_eq(f.tensors[1].name, "b\"q");
    ck_assert_mem_eq(f.tensors[1].data, u8, 5);
    ck_assert_mem_eq(f.tensors[2].data, i64, 16);
    float back[3];
    sp_st_f32_load(f.tensors[0].data, 3, back);
    ck_assert_mem_eq(back, fv, sizeof fv);
    ck_assert_uint_eq(f.tensors[0].shape[1], 1);
    ck_assert_str_eq(sp_st_meta_get(&f, "a"), "x\ny \"z\"");
    sp_st_free(&f);
    /* Into a directory that does not exist: IO_ERROR, nothing made. */
    char *nowhere = th_join(dir, "no/such.safetensors");
    ck_assert_int_eq(sp_st_encode_header(t, 1, NULL, 0, &h, &hl, &err), SPARTAN_OK);
    ck_assert_int_eq(sp_st_write(nowhere, h, hl, t, 1, &err), SPARTAN_STATUS_IO_ERROR);
    ck_assert(strstr(sp_err_message(&err), "cannot create"));
    free(h);
    free(nowhere);
    sp_err_free(&err);
    free(path);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

static Suite *safetensors_suite(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("safetensors");
    tcase_add_test(tc, safetensors_reader_checks_structure);
    tcase_add_test(tc, safetensors_write_read_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(safetensors_suite());
}
