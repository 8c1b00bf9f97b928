/* Shared test helpers: temporary directories, running code in a child process with its own
 * environment (the ICD loader reads OCL_ICD_VENDORS once per process), seeded random data, and
 * the one tolerance rule for float results against double references. */
#ifndef SPARTAN_TEST_HARNESS_H
#define SPARTAN_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A fresh empty directory under $TMPDIR (or /tmp); the caller frees the string after
 * th_rm_rf(). Aborts the test on failure. */
char *th_tempdir(const char *tag);
void th_rm_rf(const char *path);

/* Writes text, or the n bytes at p, to path (aborts the test on failure). */
void th_write_text(const char *path, const char *text);
void th_write_bytes(const char *path, const void *p, size_t n);

/* A fresh directory holding a copy of the tree's kernel sources (for SPARTAN_KERNEL_DIR and
 * spartan_context_opts.kernel_dir); th_rm_rf() and free() it. th_edit_kernel replaces the first
 * occurrence of `from` in one of them by `to` (the test fails when it is not there). */
char *th_copy_kernels(void);
/* A kernel cache for contexts built from edited kernels: the suite's ($SPARTAN_CACHE_DIR, where
 * the families left as they are hit, and an edited family's entries have keys of their own),
 * else a new temporary directory. th_shared_cache_done removes only the latter, and frees. */
char *th_shared_cache(const char *tag);
void th_shared_cache_done(char *dir);
void th_edit_kernel(const char *dir, const char *file, const char *from, const char *to);
/* Unbounded inputs for the readers' refusal tests: at path (replacing what is there), a FIFO
 * with no writer (TH_FIFO: opening it blocks unless non-blocking) or a symbolic link to
 * /dev/zero (TH_ZERO_LINK: endless). */
enum { TH_FIFO, TH_ZERO_LINK, TH_STREAM_KINDS };
void th_make_stream(const char *path, int kind);

/* "dir/name" in a string the caller frees. */
char *th_join(const char *dir, const char *name);

/* The number of entries of dir (".", ".." included) whose names start with prefix. */
size_t th_count_entries(const char *dir, const char *prefix);

/* Runs fn(arg) in a forked child and returns its exit status (0 = passed). The child may call
 * setenv() freely: nothing leaks into the parent. fn must not use ck_assert (check's failure
 * path is not fork-safe in CK_FORK=no mode): it prints what went wrong to stderr and returns
 * non-zero (TH_CHILD_CHECK does both), and the parent asserts on the status. */
int th_in_child(int (*fn)(void *), void *arg);
/* The same with alarm(seconds) in the child (0: none): a call that hangs ends it by SIGALRM,
 * and the status is 128 + SIGALRM, so a regression fails the test instead of hanging it. */
int th_in_child_within(unsigned seconds, int (*fn)(void *), void *arg);

/* splitmix64: reproducible data from a seed (SPARTAN_TEST_SEED, a decimal number, overrides the
 * default; anything else fails the test). */
typedef struct {
    uint64_t s;
} th_rng;
#define TH_CHILD_CHECK(cond, ...)                                                                  \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: child check failed: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* Fails the test unless call returns SPARTAN_OK, with the call, the status and ctx's last error
 * (for use in check tests, which include check.h and spartan.h). */
#define TH_OK(ctx, call)                                                                           \
    do {                                                                                           \
        spartan_status st_ = (call);                                                               \
        ck_assert_msg(st_ == SPARTAN_OK, "%s: %s (%s)", #call, spartan_status_name(st_),           \
                      spartan_last_error(ctx));                                                    \
    } while (0)

uint64_t th_seed(void);
void th_rng_init(th_rng *r, uint64_t seed);
uint64_t th_rng_next(th_rng *r);
float th_rng_uniform(th_rng *r, float lo, float hi);

/* Tolerance for a float result computed from a reduction of length k whose terms are bounded
 * by scale: |got - want| <= (k + 2) * FLT_EPSILON * scale. Derived, never tuned. */
double th_tol(size_t k, double scale);

/* Number of elements where |got[i] - want[i]| > tol; the first bad index goes to *first. */
size_t th_count_bad(const float *got, const double *want, size_t n, double tol, size_t *first);

/* Whether the Oclgrind ICD was found when the tests were configured (tests that need a second
 * platform require it then, instead of skipping). */
int th_have_oclgrind(void);

/* A context for a suite's checked fixture: tcase_add_checked_fixture(tc, th_ctx_setup,
 * th_ctx_teardown) gives every test th_ctx on the default device. */
extern struct spartan_context *th_ctx;
void th_ctx_setup(void);
void th_ctx_teardown(void);

/* Replaces *ctx (destroyed) by a context created with params added to SPARTAN_TUNE (e.g.
 * "VEC=1,GEMM_RB=3"); the environment is restored afterwards. Fails the test on error. With
 * SPARTAN_TEST_UNTUNED=1 (the rusticl run: a cold build of one configuration there takes minutes)
 * *ctx is kept as it is, untuned, and the test says so on stderr: its checks run again on the
 * untuned kernels (the tuned ones are checked on POCL and Oclgrind). */
struct spartan_context;
struct spartan_tensor;
void th_context_with_tune(struct spartan_context **ctx, const char *params);

/* 1 when SPARTAN_TEST_SMALL=1 (the Oclgrind and rusticl runs: tiny shapes only). */
int th_small(void);

/* 1 unless small without SPARTAN_TEST_TALL=1: the cases with a column of more than 65,536 rows
 * or a reduction as long (few FLOPs, many iterations per work-item: what llvmpipe cut short),
 * which the rusticl runs keep and the Oclgrind runs, which simulate every work-item, skip. */
int th_tall(void);

/* Runs a suite with check's default CK_FORK (a process per test function; CK_FORK=no: one,
 * for a debugger); EXIT_SUCCESS when every test passed. Frees the suite. */
struct Suite;
int th_run_suite(struct Suite *s);

/* Host arrays of n (at least 1) elements; fail the test when out of memory. */
float *th_floats(size_t n);
double *th_doubles(size_t n);

/* A rows x cols tensor (th_upload: with host's contents; th_nan_matrix: full of NaNs, so an
 * element an operation leaves unwritten shows). Fail the test on error. */
struct spartan_tensor *th_matrix(struct spartan_context *ctx, size_t rows, size_t cols);
struct spartan_tensor *th_upload(struct spartan_context *ctx, const float *host, size_t rows,
                                 size_t cols);
struct spartan_tensor *th_nan_matrix(struct spartan_context *ctx, size_t rows, size_t cols);

#endif /* SPARTAN_TEST_HARNESS_H */
