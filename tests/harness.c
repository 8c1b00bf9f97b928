/* Shared test helpers (see harness.h). */
#define _XOPEN_SOURCE 700
#include "harness.h"

#include <check.h>
#include <dirent.h>
#include <float.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "program/sources.h"
#include "core/number.h"
#include "spartan/spartan.h"

char *th_tempdir(const char *tag) {
    const char *tmp = getenv("TMPDIR");
    char buf[1024];
    snprintf(buf, sizeof buf, "%s/spartan-test-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
    ck_assert_msg(mkdtemp(buf) != NULL, "mkdtemp %s failed", buf);
    char *s = strdup(buf);
    ck_assert_ptr_nonnull(s);
    return s;
}

char *th_shared_cache(const char *tag) {
    const char *c = getenv("SPARTAN_CACHE_DIR");
    if (!c || !*c || strcmp(c, "off") == 0) return th_tempdir(tag);
    char *s = strdup(c);
    ck_assert_ptr_nonnull(s);
    return s;
}

void th_shared_cache_done(char *dir) {
    const char *c = getenv("SPARTAN_CACHE_DIR");
    if (dir && !(c && strcmp(c, dir) == 0)) th_rm_rf(dir);
    free(dir);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void th_rm_rf(const char *path) {
    if (path) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void th_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

void th_write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

void th_make_stream(const char *path, int kind) {
    unlink(path);
    int rc = kind == TH_FIFO ? mkfifo(path, 0600) : symlink("/dev/zero", path);
    ck_assert_msg(rc == 0, "cannot make %s at %s", kind == TH_FIFO ? "a FIFO" : "a link", path);
}

char *th_join(const char *dir, const char *name) {
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    ck_assert_ptr_nonnull(p);
    snprintf(p, len, "%s/%s", dir, name);
    return p;
}

size_t th_count_entries(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

int th_in_child(int (*fn)(void *), void *arg) {
    return th_in_child_within(0, fn, arg);
}

int th_in_child_within(unsigned seconds, int (*fn)(void *), void *arg) {
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* check's own SIGALRM handler, inherited, would kill the whole test's process group */
        signal(SIGALRM, SIG_DFL);
        alarm(seconds);
        _exit(fn(arg));
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        fprintf(stderr, "child still running after %u s: killed (a hang)\n", seconds);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

uint64_t th_seed(void) {
    const char *s = getenv("SPARTAN_TEST_SEED");
    uint64_t seed = 42;
    ck_assert_msg(!s || !*s || sp_parse_u64(s, UINT64_MAX, &seed),
                  "SPARTAN_TEST_SEED=\"%s\" is not a decimal number", s);
    return seed;
}

void th_rng_init(th_rng *r, uint64_t seed) {
    r->s = seed;
}

uint64_t th_rng_next(th_rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

float th_rng_uniform(th_rng *r, float lo, float hi) {
    double u = (double)(th_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(lo + (hi - lo) * u);
}

double th_tol(size_t k, double scale) {
    return (double)(k + 2) * FLT_EPSILON * scale;
}

size_t th_count_bad(const float *got, const double *want, size_t n, double tol, size_t *first) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= tol)) {
            if (bad == 0 && first) *first = i;
            bad++;
        }
    }
    return bad;
}

int th_have_oclgrind(void) {
    const char *s = getenv("SPARTAN_TEST_HAVE_OCLGRIND");
    return s && strcmp(s, "1") == 0;
}

spartan_context *th_ctx;

void th_ctx_setup(void) {
    spartan_status st = spartan_context_create(NULL, &th_ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
}

void th_ctx_teardown(void) {
    spartan_context_destroy(th_ctx);
    th_ctx = NULL;
}

void th_context_with_tune(spartan_context **ctx, const char *params) {
    const char *untuned = getenv("SPARTAN_TEST_UNTUNED");
    if (untuned && strcmp(untuned, "1") == 0) {
        fprintf(stderr, "SPARTAN_TEST_UNTUNED=1: %s not built, the untuned context checked\n",
                params);
        return;
    }
    spartan_context_destroy(*ctx);
    *ctx = NULL;
    const char *old = getenv("SPARTAN_TUNE");
    char *saved = old ? strdup(old) : NULL, tune[512];
    snprintf(tune, sizeof tune, "%s%s%s", old ? old : "", old && *old ? "," : "", params);
    ck_assert_int_eq(setenv("SPARTAN_TUNE", tune, 1), 0);
    spartan_status st = spartan_context_create(NULL, ctx);
    if (saved)
        setenv("SPARTAN_TUNE", saved, 1);
    else
        unsetenv("SPARTAN_TUNE");
    free(saved);
    ck_assert_msg(st == SPARTAN_OK, "context with %s: %s", tune, spartan_last_error(NULL));
}

float *th_floats(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

double *th_doubles(size_t n) {
    double *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

spartan_tensor *th_matrix(spartan_context *ctx, size_t rows, size_t cols) {
    spartan_tensor *t = NULL;
    spartan_status st = spartan_tensor_create_2d(ctx, rows, cols, &t);
    ck_assert_msg(st == SPARTAN_OK, "tensor %zux%zu: %s", rows, cols, spartan_last_error(ctx));
    return t;
}

spartan_tensor *th_upload(spartan_context *ctx, const float *host, size_t rows, size_t cols) {
    spartan_tensor *t = th_matrix(ctx, rows, cols);
    ck_assert_int_eq(spartan_tensor_write(t, host, rows * cols), SPARTAN_OK);
    return t;
}

spartan_tensor *th_nan_matrix(spartan_context *ctx, size_t rows, size_t cols) {
    spartan_tensor *t = th_matrix(ctx, rows, cols);
    ck_assert_int_eq(spartan_tensor_fill(t, NAN), SPARTAN_OK);
    return t;
}

int th_small(void) {
    const char *env = getenv("SPARTAN_TEST_SMALL");
    return env && strcmp(env, "1") == 0;
}

int th_tall(void) {
    const char *env = getenv("SPARTAN_TEST_TALL");
    return !th_small() || (env && strcmp(env, "1") == 0);
}

int th_run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

char *th_copy_kernels(void) {
    const char *srcdir = getenv("SPARTAN_TEST_KERNEL_SRC");
    ck_assert_msg(srcdir != NULL, "SPARTAN_TEST_KERNEL_SRC is not set (run through ctest)");
    char *dir = th_tempdir("kernels");
    const sp_embedded_source *all[64];
    size_t n = 0;
    all[n++] = &sp_cl_common_source;
    for (size_t i = 0; i < sp_cl_family_count && n < 64; i++) all[n++] = &sp_cl_families[i];
    for (size_t i = 0; i < n; i++) {
        char from[1200], to[1200];
        snprintf(from, sizeof from, "%s/%s", srcdir, all[i]->file);
        snprintf(to, sizeof to, "%s/%s", dir, all[i]->file);
        FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
        ck_assert_msg(in && out, "copy %s", from);
        char buf[4096];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, got, out);
        fclose(in);
        fclose(out);
    }
    return dir;
}

void th_edit_kernel(const char *dir, const char *file, const char *from, const char *to) {
    char *path = th_join(dir, file);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_int_eq(fread(text, 1, (size_t)len, f), (size_t)len);
    text[len] = '\0';
    fclose(f);
    char *at = strstr(text, from);
    ck_assert_msg(at != NULL, "%s has no '%s'", file, from);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(text, 1, (size_t)(at - text), f);
    fputs(to, f);
    fputs(at + strlen(from), f);
    fclose(f);
    free(text);
    free(path);
}
