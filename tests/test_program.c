/* Tests of runtime/program: load-time build, the binary cache (hits, and truncated, corrupt,
 * stale or refused entries that must be rebuilt, not loaded), build failures with their log,
 * SPARTAN_KERNEL_DIR, and concurrent context creation by several processes. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "harness.h"
#include "program/bincache.h"
#include "program/sources.h"
#include "spartan/spartan.h"

/* ---- helpers -------------------------------------------------------------------------------- */

typedef struct {
    char *dir;
    spartan_context_opts opts;
} fixture;

static fixture setup(void) {
    fixture f;
    f.dir = th_tempdir("cache");
    f.opts = spartan_context_opts_default();
    f.opts.cache_dir = f.dir;
    f.opts.device = "cpu"; /* POCL: the cache tests do not need the simulator */
    return f;
}

static void teardown(fixture *f) {
    th_rm_rf(f->dir);
    free(f->dir);
}

static spartan_build_stats create_stats(const spartan_context_opts *o) {
    spartan_context *ctx;
    spartan_status st = spartan_context_create(o, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
    spartan_build_stats bs;
    ck_assert_int_eq(spartan_context_build_stats(ctx, &bs), SPARTAN_OK);
    spartan_context_destroy(ctx);
    return bs;
}

static unsigned families(void) {
    return (unsigned)sp_cl_family_count;
}

/* The entries a context leaves: every family's binary and its validation verdict. */
static unsigned entry_count(void) {
    return 2 * families();
}

/* The first entry holding a kernel binary (not the verdicts); the list must be valid. */
static const spartan_cache_entry *first_binary(const spartan_cache_entry *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strstr(list[i].label, ".cl | ") != NULL) return &list[i];
    ck_abort_msg("no kernel binary in the cache");
    return NULL;
}

/* Asserts that the list holds one verdict per family. */
static void verdicts(const spartan_cache_entry *list, size_t n) {
    size_t found = 0;
    for (size_t i = 0; i < n; i++)
        found += strstr(list[i].label, "validation verdict | ") == list[i].label;
    ck_assert_uint_eq(found, families());
}

/* The cache's entries; asserts how many there are and how many are valid. */
static spartan_cache_entry *entries(const spartan_context_opts *o, size_t want, size_t want_valid) {
    spartan_cache_entry *list;
    size_t n;
    ck_assert_int_eq(spartan_cache_list(o, &list, &n), SPARTAN_OK);
    size_t valid = 0;
    for (size_t i = 0; i < n; i++) valid += list[i].valid != 0;
    ck_assert_uint_eq(n, want);
    ck_assert_uint_eq(valid, want_valid);
    return list;
}

/* Asserts that the entry at path is listed as invalid, with a reason. */
static void expect_invalid(const spartan_context_opts *o, const char *path) {
    spartan_cache_entry *list = entries(o, entry_count(), entry_count() - 1);
    int found = 0;
    for (size_t i = 0; i < entry_count(); i++) {
        if (strcmp(list[i].path, path) != 0) continue;
        found = 1;
        ck_assert_int_eq(list[i].valid, 0);
        ck_assert_int_gt(strlen(list[i].problem), 0);
    }
    ck_assert(found);
    spartan_cache_list_free(list);
}

static void truncate_to(const char *path, long len) {
    ck_assert_int_eq(truncate(path, len), 0);
}

static void flip_bit(const char *path, long offset) {
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, offset, SEEK_SET), 0);
    int c = fgetc(f);
    ck_assert_int_ne(c, EOF);
    ck_assert_int_eq(fseek(f, offset, SEEK_SET), 0);
    fputc(c ^ 0x10, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* After damaging one entry: the next context rejects exactly that one, rebuilds and rewrites
 * it, and the one after that hits everything. */
static void expect_one_rebuilt(const fixture *f) {
    spartan_build_stats bs = create_stats(&f->opts);
    ck_assert_uint_eq(bs.cache_rejected, 1);
    ck_assert_uint_eq(bs.cache_hits, families() - 1);
    ck_assert_uint_eq(bs.cache_writes, 1);
    ck_assert_int_eq(bs.validated, 1); /* a rebuilt binary is validated again */
    spartan_cache_list_free(entries(&f->opts, entry_count(), entry_count()));
    bs = create_stats(&f->opts);
    ck_assert_uint_eq(bs.cache_hits, families());
    ck_assert_uint_eq(bs.cache_rejected, 0);
}

/* ---- tests ---------------------------------------------------------------------------------- */

START_TEST(cache_hit_on_second_context) {
    fixture f = setup();
    spartan_build_stats bs = create_stats(&f.opts);
    ck_assert_uint_eq(bs.families, families());
    ck_assert_uint_eq(bs.cache_misses, families());
    ck_assert_uint_eq(bs.cache_hits, 0);
    ck_assert_uint_eq(bs.cache_writes, families());
    ck_assert_int_eq(bs.cache_enabled, 1);
    ck_assert_int_eq(bs.validated, 1);
    ck_assert_str_eq(bs.cache_dir, f.dir);
    spartan_cache_entry *list = entries(&f.opts, entry_count(), entry_count());
    const spartan_cache_entry *bin = first_binary(list, entry_count());
    ck_assert(strstr(bin->path, f.dir) == bin->path);
    verdicts(list, entry_count());
    spartan_cache_list_free(list);

    bs = create_stats(&f.opts);
    ck_assert_uint_eq(bs.cache_hits, families());
    ck_assert_uint_eq(bs.cache_misses, 0);
    ck_assert_uint_eq(bs.cache_writes, 0);
    ck_assert_uint_eq(bs.cache_rejected, 0);
    ck_assert_int_eq(bs.validated, 0); /* the verdicts came from the cache */

    size_t removed = 0;
    ck_assert_int_eq(spartan_cache_clear(&f.opts, &removed), SPARTAN_OK);
    ck_assert_uint_eq(removed, entry_count());
    spartan_cache_list_free(entries(&f.opts, 0, 0));
    teardown(&f);
}
END_TEST

START_TEST(truncated_entries_are_rebuilt) {
    fixture f = setup();
    create_stats(&f.opts);
    /* Inside the header, just past it, and one byte short of the end. */
    const long cuts[] = {0, 10, 97, -1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        spartan_cache_entry *list = entries(&f.opts, entry_count(), entry_count());
        const spartan_cache_entry *e = first_binary(list, entry_count());
        long len = cuts[i] >= 0 ? cuts[i] : (long)e->bytes - 1;
        truncate_to(e->path, len);
        expect_invalid(&f.opts, e->path);
        spartan_cache_list_free(list);
        expect_one_rebuilt(&f);
    }
    teardown(&f);
}
END_TEST

START_TEST(bit_flipped_entries_are_rebuilt) {
    fixture f = setup();
    create_stats(&f.opts);
    /* Magic, format version, binary length, the stored key, the checksum, the binary itself. */
    const long offsets[] = {0, 8, 24, 40, 70, -1};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        spartan_cache_entry *list = entries(&f.opts, entry_count(), entry_count());
        const spartan_cache_entry *e = first_binary(list, entry_count());
        long at = offsets[i] >= 0 ? offsets[i] : (long)e->bytes / 2;
        flip_bit(e->path, at);
        expect_invalid(&f.opts, e->path);
        spartan_cache_list_free(list);
        expect_one_rebuilt(&f);
    }
    teardown(&f);
}
END_TEST

START_TEST(refused_binary_is_rebuilt) {
    /* An entry that is intact as a file but holds a binary the driver refuses (as after a
     * driver update that kept the version string): the build from it fails, so it is deleted
     * and rebuilt from source. */
    fixture f = setup();
    spartan_context *ctx;
    ck_assert_int_eq(spartan_context_create(&f.opts, &ctx), SPARTAN_OK);
    spartan_family_status fs;
    ck_assert_int_eq(spartan_context_family(ctx, 0, &fs), SPARTAN_OK);
    char *src;
    size_t len;
    sp_err err = {0};
    ck_assert_int_eq(sp_source_assemble(0, NULL, &src, &len, &err), SPARTAN_OK);
    uint8_t key[SP_SHA256_SIZE];
    sp_bincache_key(spartan_context_device(ctx), fs.options, src, len, key);
    sp_bincache cache = {1, ""};
    snprintf(cache.dir, sizeof cache.dir, "%s", f.dir);
    const unsigned char garbage[] = "this is not a program binary";
    ck_assert_int_eq(sp_bincache_store(&cache, key, "garbage", garbage, sizeof garbage, &err),
                     SPARTAN_OK);
    spartan_context_destroy(ctx);
    spartan_cache_list_free(entries(&f.opts, entry_count(), entry_count()));
    expect_one_rebuilt(&f);
    free(src);
    sp_err_free(&err);
    teardown(&f);
}
END_TEST

START_TEST(cache_off_writes_nothing) {
    fixture f = setup();
    spartan_context_opts o = f.opts;
    o.cache_dir = "off";
    spartan_build_stats bs = create_stats(&o);
    ck_assert_int_eq(bs.cache_enabled, 0);
    ck_assert_uint_eq(bs.cache_writes + bs.cache_hits + bs.cache_rejected, 0);
    ck_assert_str_eq(bs.cache_dir, "");
    spartan_cache_list_free(entries(&f.opts, 0, 0));
    teardown(&f);
}
END_TEST

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    int c, lines = 0;
    while ((c = fgetc(f)) != EOF) lines += c == '\n';
    fclose(f);
    return lines;
}

START_TEST(kernel_dir_sources_share_the_cache) {
    /* Unchanged sources read from disk are the same text: the same cache entries serve them. */
    fixture f = setup();
    create_stats(&f.opts);
    char *kdir = th_copy_kernels();
    spartan_context_opts o = f.opts;
    o.kernel_dir = kdir;
    spartan_build_stats bs = create_stats(&o);
    ck_assert_uint_eq(bs.cache_hits, families());
    th_rm_rf(kdir);
    free(kdir);
    teardown(&f);
}
END_TEST

/* A family is built with only the tuned parameters its source reads, and validated again only
 * when it (or a family its check runs) was built anew: a tile parameter rebuilds the tiled
 * families and leaves the GEMM and convolution kernels alone; an edit to one kernel file rebuilds
 * and revalidates that family alone. */
static spartan_family_status family_of(spartan_context *ctx, const char *name) {
    spartan_family_status fs;
    for (unsigned i = 0; spartan_context_family(ctx, i, &fs) == SPARTAN_OK; i++)
        if (strcmp(fs.name, name) == 0) return fs;
    ck_abort_msg("no family %s", name);
    return fs;
}

START_TEST(a_change_rebuilds_only_the_families_it_touches) {
    fixture f = setup();
    create_stats(&f.opts);
    const char *old = getenv("SPARTAN_TUNE");
    char *saved = old ? strdup(old) : NULL;
    ck_assert_int_eq(setenv("SPARTAN_TUNE", "TILE_ROWS=3,TILE_COLS=5", 1), 0);
    spartan_context *ctx;
    TH_OK(NULL, spartan_context_create(&f.opts, &ctx));
    spartan_build_stats bs;
    TH_OK(ctx, spartan_context_build_stats(ctx, &bs));
    /* the tile is read by the monitor, the compaction, the sparse GEMMs and the reference count */
    ck_assert_uint_eq(bs.cache_misses, 4);
    ck_assert_uint_eq(bs.cache_hits, families() - 4);
    ck_assert_int_eq(bs.validated, 1);
    ck_assert_int_eq(family_of(ctx, "monitor").verdict_cached, 0);
    ck_assert_int_eq(family_of(ctx, "gemm_sparse").verdict_cached, 0);
    ck_assert_int_eq(family_of(ctx, "gemm_dense").verdict_cached, 1);
    ck_assert_int_eq(family_of(ctx, "conv").verdict_cached, 1);
    spartan_context_destroy(ctx);
    if (saved)
        setenv("SPARTAN_TUNE", saved, 1);
    else
        unsetenv("SPARTAN_TUNE");
    free(saved);

    /* an edit that changes nothing the compiler sees but the text: conv.cl alone is built anew,
     * and validated again with conv_dx, whose check runs conv.cl's sparse kernel */
    char *kdir = th_copy_kernels();
    th_edit_kernel(kdir, "conv.cl", "// Implicit-GEMM convolution", "// Implicit GEMM convolution");
    spartan_context_opts o = f.opts;
    o.kernel_dir = kdir;
    TH_OK(NULL, spartan_context_create(&o, &ctx));
    TH_OK(ctx, spartan_context_build_stats(ctx, &bs));
    ck_assert_uint_eq(bs.cache_misses, 1);
    ck_assert_uint_eq(bs.cache_hits, families() - 1);
    for (unsigned i = 0; i < families(); i++) {
        spartan_family_status fs;
        TH_OK(ctx, spartan_context_family(ctx, i, &fs));
        ck_assert_msg(fs.enabled, "%s: %s", fs.name, fs.why);
        int touched = strcmp(fs.name, "conv") == 0 || strcmp(fs.name, "conv_dx") == 0;
        ck_assert_msg(fs.verdict_cached == !touched, "%s", fs.name);
    }
    spartan_context_destroy(ctx);
    th_rm_rf(kdir);
    free(kdir);
    teardown(&f);
}
END_TEST

START_TEST(build_failure_gives_the_build_log) {
    fixture f = setup();
    char *kdir = th_copy_kernels();
    const char *file = sp_cl_families[0].file;
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", kdir, file);
    int line = count_lines(path) + 1;
    FILE *out = fopen(path, "a");
    ck_assert_ptr_nonnull(out);
    fputs("this_is_not_opencl x;\n", out);
    fclose(out);

    spartan_context_opts o = f.opts;
    o.kernel_dir = kdir;
    spartan_context *ctx = (spartan_context *)&ctx;
    spartan_status st = spartan_context_create(&o, &ctx);
    ck_assert_int_eq(st, SPARTAN_STATUS_BUILD_FAILED);
    ck_assert_ptr_null(ctx);
    const char *msg = spartan_last_error(NULL);
    char where[256];
    snprintf(where, sizeof where, "%s:%d:", file, line);
    ck_assert_msg(strstr(msg, where) != NULL, "build log does not point at %s:\n%s", where, msg);
    ck_assert_msg(strstr(msg, "this_is_not_opencl") != NULL, "log lacks the bad token:\n%s", msg);
    ck_assert(strstr(msg, "build log:") != NULL);
    ck_assert(strstr(msg, "-DSP_VEC=") != NULL); /* the options used are part of the report */
    /* The failed build wrote nothing to the cache. */
    spartan_cache_list_free(entries(&f.opts, 0, 0));

    /* A directory without the sources: a clear KERNEL_SOURCE error naming the path. */
    o.kernel_dir = "/nonexistent/kernels";
    st = spartan_context_create(&o, &ctx);
    ck_assert_int_eq(st, SPARTAN_STATUS_KERNEL_SOURCE);
    ck_assert(strstr(spartan_last_error(NULL), "/nonexistent/kernels/") != NULL);
    th_rm_rf(kdir);
    free(kdir);
    teardown(&f);
}
END_TEST

START_TEST(concurrent_creation_leaves_a_valid_cache) {
    /* Several processes start together on an empty cache and all build and write the same
     * entries. Each must succeed, and the cache must end with exactly one valid entry per
     * family and no temporary files. */
    enum { NPROC = 3 };
    fixture f = setup();
    int go[2];
    ck_assert_int_eq(pipe(go), 0);
    pid_t pids[NPROC];
    fflush(NULL);
    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            close(go[1]);
            char c;
            if (read(go[0], &c, 1) != 0) _exit(3); /* wait until the parent closes the pipe */
            spartan_context *ctx;
            spartan_status st = spartan_context_create(&f.opts, &ctx);
            if (st != SPARTAN_OK) {
                fprintf(stderr, "child %d: %s\n", i, spartan_last_error(NULL));
                _exit(1);
            }
            spartan_context_destroy(ctx);
            _exit(0);
        }
    }
    close(go[0]);
    close(go[1]); /* all children start now */
    for (int i = 0; i < NPROC; i++) {
        int status = 0;
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed", i);
    }
    spartan_cache_list_free(entries(&f.opts, entry_count(), entry_count()));
    spartan_build_stats bs = create_stats(&f.opts);
    ck_assert_uint_eq(bs.cache_hits, families());
    ck_assert_uint_eq(bs.cache_rejected, 0);
    teardown(&f);
}
END_TEST

/* ---- unbounded inputs and foreign files ----------------------------------------------------- */

/* A kernel source that is a FIFO or a link to /dev/zero is refused at context creation with
 * KERNEL_SOURCE naming it, before a byte is read (a FIFO used to block the open, /dev/zero to be
 * read until memory ran out). Children with an alarm: a regression fails, it does not hang. */
static int refuse_source(void *arg) {
    const spartan_context_opts *o = arg;
    spartan_context *ctx;
    spartan_status st = spartan_context_create(o, &ctx);
    const char *msg = spartan_last_error(NULL);
    TH_CHILD_CHECK(st == SPARTAN_STATUS_KERNEL_SOURCE && strstr(msg, sp_cl_common_source.file) &&
                       strstr(msg, "not a regular file"),
                   "%s: %s", spartan_status_name(st), msg);
    return 0;
}

START_TEST(kernel_source_streams_are_refused) {
    fixture f = setup();
    char *kdir = th_copy_kernels();
    char *common = th_join(kdir, sp_cl_common_source.file); /* the first file read */
    spartan_context_opts o = f.opts;
    o.kernel_dir = kdir;
    for (int kind = 0; kind < TH_STREAM_KINDS; kind++) {
        th_make_stream(common, kind);
        ck_assert_int_eq(th_in_child_within(60, refuse_source, &o), 0);
    }
    free(common);
    th_rm_rf(kdir);
    free(kdir);
    teardown(&f);
}
END_TEST

typedef struct {
    const spartan_context_opts *opts;
    int kind;
} stream_job;

/* Child: fills the cache, puts a stream in place of one entry, then lists (the entry shows as
 * invalid, unread) and creates a context (that entry alone is rejected and rewritten). */
static int entry_stream(void *arg) {
    const stream_job *j = arg;
    spartan_context *ctx;
    TH_CHILD_CHECK(spartan_context_create(j->opts, &ctx) == SPARTAN_OK, "%s",
                   spartan_last_error(NULL));
    spartan_context_destroy(ctx);
    spartan_cache_entry *list;
    size_t n;
    TH_CHILD_CHECK(spartan_cache_list(j->opts, &list, &n) == SPARTAN_OK && n == entry_count(),
                   "list");
    char path[sizeof list[0].path] = "";
    for (size_t i = 0; i < n && !path[0]; i++) /* a kernel binary, not the verdicts */
        if (strstr(list[i].label, ".cl | ")) snprintf(path, sizeof path, "%s", list[i].path);
    spartan_cache_list_free(list);
    TH_CHILD_CHECK(path[0] != '\0', "no kernel binary in the cache");
    unlink(path);
    TH_CHILD_CHECK((j->kind == TH_FIFO ? mkfifo(path, 0600) : symlink("/dev/zero", path)) == 0,
                   "cannot make %s", path);
    TH_CHILD_CHECK(spartan_cache_list(j->opts, &list, &n) == SPARTAN_OK && n == entry_count(),
                   "list");
    for (size_t i = 0; i < n; i++)
        TH_CHILD_CHECK(!strcmp(list[i].path, path) ? !list[i].valid && list[i].problem[0]
                                                   : list[i].valid,
                       "%s: valid %d (%s)", list[i].path, list[i].valid, list[i].problem);
    spartan_cache_list_free(list);
    TH_CHILD_CHECK(spartan_context_create(j->opts, &ctx) == SPARTAN_OK, "%s",
                   spartan_last_error(NULL));
    spartan_build_stats bs;
    spartan_context_build_stats(ctx, &bs);
    spartan_context_destroy(ctx);
    TH_CHILD_CHECK(
        bs.cache_rejected == 1 && bs.cache_writes == 1 && bs.cache_hits == families() - 1,
        "rejected %u, written %u, hits %u", bs.cache_rejected, bs.cache_writes, bs.cache_hits);
    struct stat sb;
    TH_CHILD_CHECK(lstat(path, &sb) == 0 && S_ISREG(sb.st_mode), "%s not rewritten", path);
    return 0;
}

START_TEST(cache_entry_streams_are_rebuilt) {
    for (int kind = 0; kind < TH_STREAM_KINDS; kind++) {
        fixture f = setup();
        stream_job j = {&f.opts, kind};
        ck_assert_int_eq(th_in_child_within(120, entry_stream, &j), 0);
        teardown(&f);
    }
}
END_TEST

/* dir/rel holding text (made with its directories). */
static char *put_file(const char *dir, const char *rel, const char *text) {
    char *path = th_join(dir, rel), *slash = strrchr(path, '/');
    *slash = '\0';
    sp_err err = {0};
    ck_assert_int_eq(sp_mkdirs(path, &err), SPARTAN_OK);
    *slash = '/';
    th_write_text(path, text);
    return path;
}

static int exists(const char *path) {
    struct stat sb;
    return lstat(path, &sb) == 0;
}

START_TEST(cache_clear_removes_only_its_own_files) {
    char *dir = th_tempdir("cache"), *out = th_tempdir("outside");
    spartan_context_opts o = spartan_context_opts_default();
    o.cache_dir = dir;
    /* Two entries, as bincache writes them (no driver needed), and a stray temporary file. */
    sp_bincache c;
    sp_bincache_open(&c, dir);
    uint8_t k1[SP_SHA256_SIZE], k2[SP_SHA256_SIZE];
    memset(k1, 0x11, sizeof k1);
    memset(k2, 0x22, sizeof k2);
    sp_err err = {0};
    ck_assert_int_eq(sp_bincache_store(&c, k1, "one", (const unsigned char *)"bin", 3, &err), 0);
    ck_assert_int_eq(sp_bincache_store(&c, k2, "two", (const unsigned char *)"bin", 3, &err), 0);
    char h1[65], h2[65], h3[65], rel[256];
    sp_sha256_hex(k1, h1);
    sp_sha256_hex(k2, h2);
    memset(h3, 'a', 64);
    h3[64] = '\0';
    snprintf(rel, sizeof rel, "11/%s.bin.tmp.123.4", h1);
    char *tmp = put_file(dir, rel, "partial");
    /* Ours by name: a link in place of an entry (the link goes, its target stays). */
    char *target = put_file(out, "target.bin", "target");
    snprintf(rel, sizeof rel, "11/11%.62s.bin", h3);
    char *ours_link = th_join(dir, rel);
    ck_assert_int_eq(symlink(target, ours_link), 0);
    /* Not ours: they all stay, and so does everything outside. */
    const char *foreign[] = {"notes.txt",   "11/foo.bin", "11/link.bin", "policy/calibration",
                             "11/1111.bin", NULL,         NULL,          NULL,
                             NULL};
    char upper[128], wrong_sub[128], suffix[128], short_hex[128];
    snprintf(upper, sizeof upper, "11/11%.62s.bin", h3);
    for (char *p = upper + 5; *p != '.'; p++) *p = 'A';
    snprintf(wrong_sub, sizeof wrong_sub, "22/%s.bin", h1);
    snprintf(suffix, sizeof suffix, "11/%s.bin.bak", h1);
    snprintf(short_hex, sizeof short_hex, "11/%.63s.bin", h1);
    foreign[5] = upper;
    foreign[6] = wrong_sub;
    foreign[7] = suffix;
    foreign[8] = short_hex;
    char *paths[9];
    for (int i = 0; i < 9; i++) {
        if (i == 2) { /* 11/link.bin: a link out, not named as ours */
            paths[i] = th_join(dir, foreign[i]);
            ck_assert_int_eq(symlink(target, paths[i]), 0);
        } else {
            paths[i] = put_file(dir, foreign[i], "keep");
        }
    }
    /* A linked subdirectory "ab" whose files outside have our names. */
    char *out_ab = th_join(out, "ab"), *link_ab = th_join(dir, "ab");
    snprintf(rel, sizeof rel, "ab/ab%.62s.bin", h3);
    char *outside = put_file(out, rel, "outside");
    ck_assert_int_eq(symlink(out_ab, link_ab), 0);

    /* The list: the two entries (valid), the temporary file and the link (invalid), nothing
     * else; the clear removes exactly those four. */
    spartan_cache_entry *list = entries(&o, 4, 2);
    for (size_t i = 0; i < 4; i++)
        ck_assert_msg(strstr(list[i].path, h1) || strstr(list[i].path, h2) ||
                          !strcmp(list[i].path, ours_link),
                      "listed %s", list[i].path);
    spartan_cache_list_free(list);
    size_t removed = 0;
    ck_assert_int_eq(spartan_cache_clear(&o, &removed), SPARTAN_OK);
    ck_assert_uint_eq(removed, 4);
    ck_assert(!exists(tmp) && !exists(ours_link));
    for (int i = 0; i < 9; i++) ck_assert_msg(exists(paths[i]), "%s was removed", paths[i]);
    ck_assert(exists(target) && exists(outside) && exists(link_ab));
    spartan_cache_list_free(entries(&o, 0, 0));

    for (int i = 0; i < 9; i++) free(paths[i]);
    free(tmp), free(target), free(ours_link), free(out_ab), free(link_ab), free(outside);
    sp_err_free(&err);
    th_rm_rf(dir);
    th_rm_rf(out);
    free(dir);
    free(out);
}
END_TEST

START_TEST(invalid_arguments) {
    ck_assert_int_eq(spartan_context_create(NULL, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(NULL), "out") != NULL);
    ck_assert_int_eq(spartan_context_build_stats(NULL, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_cache_list(NULL, NULL, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(spartan_context_device(NULL));
    ck_assert_str_eq(spartan_last_error(NULL), spartan_last_error(NULL));
}
END_TEST

static Suite *program_suite(void) {
    Suite *s = suite_create("program");
    TCase *tc = tcase_create("program");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, cache_hit_on_second_context);
    tcase_add_test(tc, truncated_entries_are_rebuilt);
    tcase_add_test(tc, bit_flipped_entries_are_rebuilt);
    tcase_add_test(tc, refused_binary_is_rebuilt);
    tcase_add_test(tc, cache_off_writes_nothing);
    tcase_add_test(tc, kernel_dir_sources_share_the_cache);
    tcase_add_test(tc, a_change_rebuilds_only_the_families_it_touches);
    tcase_add_test(tc, build_failure_gives_the_build_log);
    tcase_add_test(tc, concurrent_creation_leaves_a_valid_cache);
    tcase_add_test(tc, kernel_source_streams_are_refused);
    tcase_add_test(tc, cache_entry_streams_are_rebuilt);
    tcase_add_test(tc, cache_clear_removes_only_its_own_files);
    tcase_add_test(tc, invalid_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(program_suite());
    /* Each test in its own process: the ICD loader and the drivers keep per-process state, and
     * the concurrency test forks. */
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
