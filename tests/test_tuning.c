/* Tests of the tuning databases (runtime/device/tuning_db.c) on the POCL device: the user's entry
 * written by spartan_tuning_write is what the next context uses, under the caller's parameters
 * and SPARTAN_TUNE; the modes ("off", "shipped") leave it out; an entry that is corrupt,
 * truncated, foreign (another device or library version) or whose parameters the device refuses
 * is ignored with the reason, never used, and never fails the context. Each context here gets a
 * cache directory of its own, so no test reads another's database. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "spartan/spartan.h"

static spartan_context *make(const char *cache, const char *tuning, const char *tune,
                             spartan_build_stats *bs) {
    spartan_context_opts o = spartan_context_opts_default();
    o.cache_dir = cache;
    o.tuning = tuning;
    o.tune = tune;
    spartan_context *ctx = NULL;
    spartan_status st = spartan_context_create(&o, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context (tuning %s, tune %s): %s", tuning ? tuning : "-",
                  tune ? tune : "-", spartan_last_error(NULL));
    if (bs) ck_assert_int_eq(spartan_context_build_stats(ctx, bs), SPARTAN_OK);
    return ctx;
}

/* A value of SPARSE_NB other than v, within its range (the entry changes one family only). */
static long other(long v) {
    return v == 2 ? 4 : 2;
}

static char *write_entry(const char *cache, const spartan_device_info *info, const char *params) {
    spartan_context_opts o = spartan_context_opts_default();
    o.cache_dir = cache;
    char path[1200];
    spartan_status st =
        spartan_tuning_write(&o, info, params, "{\"by\": \"test_tuning\"}", path, sizeof path);
    ck_assert_msg(st == SPARTAN_OK, "spartan_tuning_write: %s", spartan_last_error(NULL));
    return strdup(path);
}

START_TEST(user_entry_is_used) {
    unsetenv("SPARTAN_TUNE");
    char *dir = th_tempdir("tuning");
    spartan_build_stats bs;
    spartan_context *ctx = make(dir, "off", NULL, &bs);
    ck_assert_str_eq(bs.tuning, "the built-in table");
    spartan_device_info info = *spartan_context_device(ctx);
    const long table = spartan_context_tuned(ctx, "SPARSE_NB");
    spartan_context_destroy(ctx);

    /* what "on" gives without a database: the shipped entry's value where one matches */
    ctx = make(dir, NULL, NULL, &bs);
    const long shipped = spartan_context_tuned(ctx, "SPARSE_NB");
    ck_assert_msg(!strstr(bs.tuning, "tuning database"), "%s", bs.tuning);
    spartan_context_destroy(ctx);

    const long want = other(shipped);
    char params[64];
    snprintf(params, sizeof params, "SPARSE_NB=%ld", want);
    char *path = write_entry(dir, &info, params);
    char expect[1300];
    snprintf(expect, sizeof expect, "tuning database %s", path);

    ctx = make(dir, NULL, NULL, &bs);
    ck_assert_int_eq(spartan_context_tuned(ctx, "SPARSE_NB"), want);
    ck_assert_msg(strstr(bs.tuning, expect), "stats say: %s", bs.tuning);
    ck_assert_msg(strstr(bs.build_options, params), "%s", bs.build_options);
    spartan_context_destroy(ctx);

    /* the caller's parameters go over it, and the modes leave it out */
    ctx = make(dir, NULL, "COLS_STEP=4", &bs);
    ck_assert_int_eq(spartan_context_tuned(ctx, "SPARSE_NB"), want);
    ck_assert_int_eq(spartan_context_tuned(ctx, "COLS_STEP"), 4);
    spartan_context_destroy(ctx);
    ctx = make(dir, "shipped", NULL, &bs);
    ck_assert_int_eq(spartan_context_tuned(ctx, "SPARSE_NB"), shipped);
    ck_assert_msg(!strstr(bs.tuning, "tuning database"), "%s", bs.tuning);
    spartan_context_destroy(ctx);
    ctx = make(dir, "off", NULL, &bs);
    ck_assert_int_eq(spartan_context_tuned(ctx, "SPARSE_NB"), table);
    spartan_context_destroy(ctx);

    /* SPARTAN_TUNE overrides everything */
    setenv("SPARTAN_TUNE", "SPARSE_NB=16", 1);
    ctx = make(dir, NULL, "SPARSE_NB=8", &bs);
    ck_assert_int_eq(spartan_context_tuned(ctx, "SPARSE_NB"), 16);
    unsetenv("SPARTAN_TUNE");
    spartan_context_destroy(ctx);

    /* an entry fine alone but invalid under SPARTAN_TUNE (a 32 x 512 tile holds more than 8192
     * elements): the user's value is kept, the entries are left out, and the stats say so */
    free(path);
    path = write_entry(dir, &info, "TILE_COLS=512");
    setenv("SPARTAN_TUNE", "TILE_ROWS=32", 1);
    ctx = make(dir, "off", NULL, NULL);
    const long table_cols = spartan_context_tuned(ctx, "TILE_COLS");
    spartan_context_destroy(ctx);
    ctx = make(dir, NULL, NULL, &bs);
    ck_assert_int_eq(spartan_context_tuned(ctx, "TILE_ROWS"), 32);
    ck_assert_int_eq(spartan_context_tuned(ctx, "TILE_COLS"), table_cols);
    ck_assert_msg(strstr(bs.tuning, "the tuning entries ignored"), "%s", bs.tuning);
    unsetenv("SPARTAN_TUNE");
    spartan_context_destroy(ctx);

    /* no cache, no database */
    spartan_context_opts off = spartan_context_opts_default();
    off.cache_dir = "off";
    char buf[64];
    ck_assert_int_eq(spartan_tuning_path(&off, &info, buf, sizeof buf), SPARTAN_STATUS_UNSUPPORTED);
    ctx = make("off", NULL, NULL, &bs);
    ck_assert_int_eq(spartan_context_tuned(ctx, "SPARSE_NB"), shipped);
    spartan_context_destroy(ctx);
    free(path);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

/* Replaces the first occurrence of from in text (which must hold it). */
static void replace(char *text, size_t cap, const char *from, const char *to) {
    char *p = strstr(text, from);
    ck_assert_ptr_nonnull(p);
    size_t fl = strlen(from), tl = strlen(to), rest = strlen(p + fl);
    ck_assert_uint_lt((size_t)(p - text) + tl + rest, cap);
    memmove(p + tl, p + fl, rest + 1);
    memcpy(p, to, tl);
}

START_TEST(bad_entries_are_ignored) {
    unsetenv("SPARTAN_TUNE");
    char *dir = th_tempdir("tuning-bad");
    spartan_build_stats bs;
    spartan_context *ctx = make(dir, NULL, NULL, &bs);
    spartan_device_info info = *spartan_context_device(ctx);
    const long plain = spartan_context_tuned(ctx, "SPARSE_NB");
    spartan_context_destroy(ctx);
    char params[64];
    snprintf(params, sizeof params, "SPARSE_NB=%ld", other(plain));
    char good[8192];
    ck_assert_int_eq(spartan_tuning_format(&info, params, NULL, 0, good, sizeof good), SPARTAN_OK);
    char *path = write_entry(dir, &info, params); /* the file the context reads */

    /* each: the good entry with one edit (from -> to; from NULL: the whole text is to, or
     * the first half of the good one when to is NULL too) */
    char dev[300], other_dev[300];
    snprintf(dev, sizeof dev, "\"%s\"", info.name);
    snprintf(other_dev, sizeof other_dev, "\"another %s\"", info.name);
    const struct {
        const char *what, *from, *to, *reason;
    } cases[] = {
        {"garbage", NULL, "{ this is not JSON", "corrupt"},
        {"truncated", NULL, NULL, "corrupt"},
        {"empty", NULL, "", "corrupt"},
        {"another device", dev, other_dev, "foreign"},
        {"another library version", "\"library\":\t\"", "\"library\":\t\"9.", "foreign"},
        {"a value out of range", "\"SPARSE_NB\"", "\"GEMM_RB\":\t99,\n\t\t\"SPARSE_NB\"",
         "GEMM_RB=99 is outside"},
        {"an unknown parameter", "\"SPARSE_NB\"", "\"BOGUS\":\t1,\n\t\t\"SPARSE_NB\"",
         "unknown parameter 'BOGUS'"},
        {"not JSON inside", "\"SPARSE_NB\":\t", "\"SPARSE_NB\":\t0.5+", "corrupt"},
        {"a non-integer", "\"SPARSE_NB\":\t", "\"SPARSE_NB\":\t2.5, \"X\": ", "not an integer"},
        {"another format", "spartan-tuning 1", "spartan-tuning 0", "corrupt"},
    };
    const size_t n = sizeof cases / sizeof cases[0];
    static char bad[sizeof cases / sizeof cases[0]][8192];
    for (size_t i = 0; i < n; i++) {
        if (cases[i].from) {
            snprintf(bad[i], sizeof bad[i], "%s", good);
            replace(bad[i], sizeof bad[i], cases[i].from, cases[i].to);
        } else if (cases[i].to) {
            snprintf(bad[i], sizeof bad[i], "%s", cases[i].to);
        } else {
            snprintf(bad[i], sizeof bad[i], "%.*s", (int)(strlen(good) / 2), good);
        }
    }

    for (size_t i = 0; i < n; i++) {
        th_write_text(path, bad[i]);
        ctx = make(dir, NULL, NULL, &bs);
        ck_assert_msg(spartan_context_tuned(ctx, "SPARSE_NB") == plain,
                      "%s: SPARSE_NB %ld used (plain %ld)", cases[i].what,
                      spartan_context_tuned(ctx, "SPARSE_NB"), plain);
        ck_assert_msg(strstr(bs.tuning, "ignored") && strstr(bs.tuning, cases[i].reason),
                      "%s: the stats say \"%s\", not why (%s)", cases[i].what, bs.tuning,
                      cases[i].reason);
        spartan_context_destroy(ctx);
    }
    /* and the good one, at the same place, is used */
    th_write_text(path, good);
    ctx = make(dir, NULL, NULL, &bs);
    ck_assert_int_eq(spartan_context_tuned(ctx, "SPARSE_NB"), other(plain));
    spartan_context_destroy(ctx);
    free(path);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(writes_and_modes_are_checked) {
    unsetenv("SPARTAN_TUNE");
    char *dir = th_tempdir("tuning-args");
    spartan_context *ctx = make(dir, "off", NULL, NULL);
    spartan_device_info info = *spartan_context_device(ctx);
    spartan_context_destroy(ctx);
    char buf[8192];
    const char *refused[] = {"GEMM_RB=99", "BOGUS=1", "SPARSE_NB=0", "SPARSE_NB",
                             "TILE_ROWS=64,TILE_COLS=1024"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        ck_assert_msg(spartan_tuning_format(&info, refused[i], NULL, 0, buf, sizeof buf) ==
                          SPARTAN_STATUS_INVALID_ARGUMENT,
                      "%s accepted", refused[i]);
        spartan_context_opts o = spartan_context_opts_default();
        o.cache_dir = dir;
        ck_assert_int_eq(spartan_tuning_write(&o, &info, refused[i], NULL, NULL, 0),
                         SPARTAN_STATUS_INVALID_ARGUMENT);
    }
    ck_assert_int_eq(spartan_tuning_format(&info, "SPARSE_NB=2", "[1]", 0, buf, sizeof buf),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    /* the shipped form matches by class, not by identity */
    ck_assert_int_eq(spartan_tuning_format(&info, "SPARSE_NB=2", NULL, 1, buf, sizeof buf),
                     SPARTAN_OK);
    ck_assert_msg(strstr(buf, "\"match\"") && !strstr(buf, "\"driver\""), "%s", buf);
    ck_assert_int_eq(th_count_entries(dir, "tuning"), 0); /* nothing refused was written */

    spartan_context_opts o = spartan_context_opts_default();
    o.cache_dir = dir;
    o.tuning = "sometimes";
    ck_assert_int_eq(spartan_context_create(&o, &ctx), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(spartan_last_error(NULL), "\"on\", \"shipped\" or \"off\""), "%s",
                  spartan_last_error(NULL));
    th_rm_rf(dir);
    free(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tuning");
    TCase *tc = tcase_create("tuning");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, user_entry_is_used);
    tcase_add_test(tc, bad_entries_are_ignored);
    tcase_add_test(tc, writes_and_modes_are_checked);
    suite_add_tcase(s, tc);
    return th_run_suite(s);
}
