/* Tests of runtime/core: statuses and their text, error records, SHA-256, the cache location
 * rules, atomic writes, bounded reads (FIFOs and devices refused unread) and strict numbers. No
 * OpenCL here. */
#include <check.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "core/number.h"
#include "core/sha256.h"
#include "harness.h"
#include "spartan/spartan.h"

static const spartan_status all_statuses[] = {
#define X(name, value, text) SPARTAN_STATUS_##name,
    SPARTAN_STATUS_MAP(X)
#undef X
};
#define NSTATUS (sizeof all_statuses / sizeof all_statuses[0])

START_TEST(status_text_is_unique_and_present) {
    for (size_t i = 0; i < NSTATUS; i++) {
        const char *t = spartan_status_string(all_statuses[i]);
        const char *n = spartan_status_name(all_statuses[i]);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_gt(strlen(t), 3);
        ck_assert_str_ne(n, "UNKNOWN");
        for (size_t j = 0; j < i; j++) {
            ck_assert_int_ne(all_statuses[i], all_statuses[j]);
            ck_assert_str_ne(t, spartan_status_string(all_statuses[j]));
        }
        /* OK is 0, every error is negative. */
        if (i == 0)
            ck_assert_int_eq(all_statuses[i], SPARTAN_OK);
        else
            ck_assert_int_lt(all_statuses[i], 0);
    }
    ck_assert_str_eq(spartan_status_string((spartan_status)12345), "unknown status");
    ck_assert_str_eq(spartan_status_name(SPARTAN_STATUS_BUILD_FAILED), "BUILD_FAILED");
}
END_TEST

START_TEST(version_matches_header) {
    ck_assert_uint_eq(spartan_version_number(), SPARTAN_VERSION_NUMBER);
    ck_assert_str_eq(spartan_version_string(), SPARTAN_VERSION_STRING);
}
END_TEST

START_TEST(error_records_grow_and_append) {
    sp_err e = {0};
    ck_assert_str_eq(sp_err_message(&e), "");
    /* Longer than the initial allocation, as a build log is. */
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(sp_err_set(&e, SPARTAN_STATUS_BUILD_FAILED, "log:%s", big),
                     SPARTAN_STATUS_BUILD_FAILED);
    ck_assert_uint_eq(strlen(sp_err_message(&e)), 4 + sizeof big - 1);
    sp_err_append(&e, " and %d more", 3);
    ck_assert(strstr(sp_err_message(&e), "xx and 3 more") != NULL);
    sp_err f = {0};
    sp_err_copy(&f, &e);
    ck_assert_str_eq(sp_err_message(&f), sp_err_message(&e));
    ck_assert_int_eq(f.status, SPARTAN_STATUS_BUILD_FAILED);
    sp_err_clear(&e);
    ck_assert_str_eq(sp_err_message(&e), "");
    sp_err_free(&e);
    sp_err_free(&f);
}
END_TEST

static void hex_of(const char *msg, size_t len, char out[65]) {
    uint8_t d[SP_SHA256_SIZE];
    sp_sha256(msg, len, d);
    sp_sha256_hex(d, out);
}

START_TEST(sha256_known_vectors) {
    /* FIPS 180-4 examples. */
    char hex[65];
    hex_of("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(m, strlen(m), hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* One million 'a', fed in uneven pieces to exercise block boundaries. */
    sp_sha256_ctx s;
    sp_sha256_init(&s);
    char chunk[777];
    memset(chunk, 'a', sizeof chunk);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        sp_sha256_update(&s, chunk, n);
        left -= n;
    }
    uint8_t d[SP_SHA256_SIZE];
    sp_sha256_final(&s, d);
    sp_sha256_hex(d, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

static int cache_dir_rules(void *arg) {
    (void)arg;
    char buf[1024];
    unsetenv("SPARTAN_CACHE");
    unsetenv("SPARTAN_CACHE_DIR");
    setenv("HOME", "/home/u", 1);
    unsetenv("XDG_CACHE_HOME");
    TH_CHILD_CHECK(sp_cache_dir_resolve(NULL, buf, sizeof buf) == 1, "default");
    TH_CHILD_CHECK(strcmp(buf, "/home/u/.cache/spartan") == 0, "got %s", buf);
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    TH_CHILD_CHECK(sp_cache_dir_resolve(NULL, buf, sizeof buf) == 1, "xdg");
    TH_CHILD_CHECK(strcmp(buf, "/xdg/spartan") == 0, "got %s", buf);
    setenv("XDG_CACHE_HOME", "relative", 1); /* the XDG spec says: ignore relative paths */
    TH_CHILD_CHECK(sp_cache_dir_resolve(NULL, buf, sizeof buf) == 1, "xdg relative");
    TH_CHILD_CHECK(strcmp(buf, "/home/u/.cache/spartan") == 0, "got %s", buf);
    setenv("SPARTAN_CACHE_DIR", "/explicit/env", 1);
    TH_CHILD_CHECK(sp_cache_dir_resolve(NULL, buf, sizeof buf) == 1, "env");
    TH_CHILD_CHECK(strcmp(buf, "/explicit/env") == 0, "got %s", buf);
    TH_CHILD_CHECK(sp_cache_dir_resolve("/from/api", buf, sizeof buf) == 1, "api");
    TH_CHILD_CHECK(strcmp(buf, "/from/api") == 0, "API beats env: got %s", buf);
    TH_CHILD_CHECK(sp_cache_dir_resolve("off", buf, sizeof buf) == 0 && !buf[0], "api off");
    setenv("SPARTAN_CACHE_DIR", "off", 1);
    TH_CHILD_CHECK(sp_cache_dir_resolve(NULL, buf, sizeof buf) == 0, "env dir off");
    unsetenv("SPARTAN_CACHE_DIR");
    setenv("SPARTAN_CACHE", "off", 1);
    TH_CHILD_CHECK(sp_cache_dir_resolve("/from/api", buf, sizeof buf) == 0, "SPARTAN_CACHE=off");
    unsetenv("SPARTAN_CACHE");
    unsetenv("HOME");
    unsetenv("XDG_CACHE_HOME");
    TH_CHILD_CHECK(sp_cache_dir_resolve(NULL, buf, sizeof buf) == 0, "no HOME: no cache");
    /* The public wrapper agrees. */
    setenv("SPARTAN_CACHE_DIR", "/p", 1);
    TH_CHILD_CHECK(spartan_cache_dir(NULL, buf, sizeof buf) == SPARTAN_OK, "public");
    TH_CHILD_CHECK(strcmp(buf, "/p") == 0, "got %s", buf);
    return 0;
}

START_TEST(cache_dir_precedence) {
    ck_assert_int_eq(th_in_child(cache_dir_rules, NULL), 0);
}
END_TEST

START_TEST(atomic_write_replaces_whole_file) {
    char *dir = th_tempdir("core");
    char sub[1200], path[1300];
    snprintf(sub, sizeof sub, "%s/a/b/c", dir);
    sp_err err = {0};
    ck_assert_int_eq(sp_mkdirs(sub, &err), SPARTAN_OK);
    ck_assert_int_eq(sp_mkdirs(sub, &err), SPARTAN_OK); /* exists: fine */
    snprintf(path, sizeof path, "%s/file", sub);
    sp_buf_part parts[2] = {{"hello ", 6}, {"world", 5}};
    ck_assert_int_eq(sp_write_file_atomic(path, parts, 2, 1, &err), SPARTAN_OK);
    unsigned char *data;
    size_t len;
    ck_assert_int_eq(sp_read_file(path, 64, &data, &len, &err), SPARTAN_OK);
    ck_assert_uint_eq(len, 11);
    ck_assert_str_eq((char *)data, "hello world");
    free(data);
    /* A write into a directory that does not exist fails cleanly, leaving nothing behind. */
    char bad[1300];
    snprintf(bad, sizeof bad, "%s/missing/file", dir);
    ck_assert_int_eq(sp_write_file_atomic(bad, parts, 2, 0, &err), SPARTAN_STATUS_IO_ERROR);
    ck_assert(strstr(sp_err_message(&err), "missing") != NULL);
    ck_assert_int_eq(sp_read_file(bad, 64, &data, &len, &err), SPARTAN_STATUS_IO_ERROR);
    /* mkdirs over a regular file is an error, not a crash. */
    ck_assert_int_eq(sp_mkdirs(path, &err), SPARTAN_STATUS_IO_ERROR);
    sp_err_free(&err);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- Bounded reads and numbers -------------------------------------------------------------- */

/* In a child with an alarm (a FIFO used to block the open): each path refused before a byte of
 * it is read, or read whole when it is a regular file within the limit. */
static int bounded_reads(void *arg) {
    char *const *p = arg; /* dir, FIFO, link to /dev/zero, 100-byte file, link to it */
    const struct {
        const char *path;
        size_t max;
        unsigned flags;
        spartan_status want;
        const char *phrase;
    } cases[] = {
        {p[1], 64, 0, SPARTAN_STATUS_IO_ERROR, "is a FIFO, not a regular file"},
        {p[2], 64, 0, SPARTAN_STATUS_IO_ERROR, "is a character device, not a regular file"},
        {"/dev/zero", 64, 0, SPARTAN_STATUS_IO_ERROR, "is a character device"},
        {p[0], 64, 0, SPARTAN_STATUS_IO_ERROR, "is a directory, not a regular file"},
        {p[3], 99, 0, SPARTAN_STATUS_BAD_FORMAT, "is 100 bytes, more than the 99 bytes"},
        {p[4], 100, SP_READ_NOFOLLOW, SPARTAN_STATUS_IO_ERROR, "is a symbolic link (not followed)"},
        {p[4], 100, 0, SPARTAN_OK, NULL},
        {p[3], 100, SP_READ_NOFOLLOW, SPARTAN_OK, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char *data = (unsigned char *)p;
        size_t len = 1;
        sp_err err = {0};
        spartan_status st = sp_read_file_at(AT_FDCWD, cases[i].path, cases[i].path, cases[i].flags,
                                            cases[i].max, &data, &len, &err);
        const char *msg = sp_err_message(&err);
        TH_CHILD_CHECK(st == cases[i].want, "case %zu (%s): %s: %s", i, cases[i].path,
                       spartan_status_name(st), msg);
        if (st == SPARTAN_OK) {
            TH_CHILD_CHECK(len == 100 && data[99] == 'x' && data[100] == '\0', "case %zu", i);
            free(data);
        } else {
            TH_CHILD_CHECK(data == NULL && len == 0, "case %zu: output left", i);
            TH_CHILD_CHECK(strstr(msg, cases[i].path) && strstr(msg, cases[i].phrase),
                           "case %zu: \"%s\" lacks \"%s\"", i, msg, cases[i].phrase);
        }
        sp_err_free(&err);
    }
    return 0;
}

START_TEST(reads_are_bounded_and_regular_files_only) {
    char *dir = th_tempdir("core");
    char *p[5] = {dir, th_join(dir, "fifo"), th_join(dir, "zero"), th_join(dir, "file"),
                  th_join(dir, "link")};
    th_make_stream(p[1], TH_FIFO);
    th_make_stream(p[2], TH_ZERO_LINK);
    char text[101];
    memset(text, 'x', 100);
    text[100] = '\0';
    th_write_text(p[3], text);
    ck_assert_int_eq(symlink(p[3], p[4]), 0);
    ck_assert_int_eq(th_in_child_within(3, bounded_reads, p), 0);
    for (int i = 1; i < 5; i++) free(p[i]);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(numbers_are_parsed_strictly) {
    const struct {
        const char *text;
        uint64_t max;
        int ok;
        uint64_t value;
    } cases[] = {
        {"0", 10, 1, 0},
        {"10", 10, 1, 10},
        {"007", 10, 1, 7},
        {"5", 5, 1, 5},
        {"4294967295", UINT32_MAX, 1, UINT32_MAX},
        {"18446744073709551615", UINT64_MAX, 1, UINT64_MAX},
        {"11", 10, 0, 0},
        {"7", 5, 0, 0},
        {"4294967552", UINT32_MAX, 0, 0}, /* 2^32 + 256: would wrap to 256 */
        {"18446744073709551616", UINT64_MAX, 0, 0},
        {"99999999999999999999999", UINT64_MAX, 0, 0},
        {"", 10, 0, 0},
        {"-1", 10, 0, 0},
        {"+1", 10, 0, 0},
        {" 1", 10, 0, 0},
        {"1 ", 10, 0, 0},
        {"1x", 10, 0, 0},
        {"0x10", 100, 0, 0},
        {NULL, 10, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 12345;
        int ok = sp_parse_u64(cases[i].text, cases[i].max, &v);
        ck_assert_msg(ok == cases[i].ok, "\"%s\" (max %llu): %d",
                      cases[i].text ? cases[i].text : "NULL", (unsigned long long)cases[i].max, ok);
        ck_assert_msg(v == (ok ? cases[i].value : 12345), "\"%s\": %llu", cases[i].text,
                      (unsigned long long)v);
    }
}
END_TEST

/* A crash-hook value that is not a byte count fails the write (INVALID_ARGUMENT, naming the
 * variable) and leaves the file alone; it used to be read as another number (an overflow: the
 * largest, "12abc": off). */
static int crash_hook_values(void *arg) {
    const char *path = arg;
    const char *bad[] = {"18446744073709551616", "12abc", "-5", " 7"};
    sp_buf_part part = {"new", 3};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("SPARTAN_TEST_CRASH_AFTER_BYTES", bad[i], 1);
        sp_err err = {0};
        spartan_status st = sp_write_file_atomic(path, &part, 1, 0, &err);
        TH_CHILD_CHECK(st == SPARTAN_STATUS_INVALID_ARGUMENT &&
                           strstr(sp_err_message(&err), "SPARTAN_TEST_CRASH_AFTER_BYTES") &&
                           strstr(sp_err_message(&err), bad[i]),
                       "\"%s\": %s: %s", bad[i], spartan_status_name(st), sp_err_message(&err));
        sp_err_free(&err);
    }
    return 0;
}

START_TEST(crash_hook_value_is_checked) {
    char *dir = th_tempdir("core");
    char *path = th_join(dir, "file");
    th_write_text(path, "old");
    ck_assert_int_eq(th_in_child(crash_hook_values, path), 0);
    unsigned char *data;
    size_t len;
    sp_err err = {0};
    ck_assert_int_eq(sp_read_file(path, 64, &data, &len, &err), SPARTAN_OK);
    ck_assert_str_eq((char *)data, "old");
    free(data);
    ck_assert_uint_eq(th_count_entries(dir, "file.tmp."), 0);
    free(path);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

static Suite *core_suite(void) {
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, status_text_is_unique_and_present);
    tcase_add_test(tc, version_matches_header);
    tcase_add_test(tc, error_records_grow_and_append);
    tcase_add_test(tc, sha256_known_vectors);
    tcase_add_test(tc, cache_dir_precedence);
    tcase_add_test(tc, atomic_write_replaces_whole_file);
    tcase_add_test(tc, reads_are_bounded_and_regular_files_only);
    tcase_add_test(tc, numbers_are_parsed_strictly);
    tcase_add_test(tc, crash_hook_value_is_checked);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(core_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
