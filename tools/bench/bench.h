/* spartan-bench internals, shared by its files (one program, not a library):
 *   timing.c   the device under test, its timer (markers with profiling, else wall clock), stats
 *   host.c     OpenBLAS on the host: the reference line and the reference results; comparisons
 *   output.c   option lists, the report header, the JSON and CSV files
 *   gemm.c     `spartan-bench gemm`: dense, sparse and OpenBLAS GEMMs of the three passes
 *   monitor.c  `spartan-bench monitor`: ReLU, ReLU with the fused monitor, and the naive count
 * The numbers measured here are what the policy and the paper's tables are tuned against: every
 * time covers the whole call sequence on the device (see docs/benchmarks.md). */
#ifndef SPARTAN_TOOLS_BENCH_H
#define SPARTAN_TOOLS_BENCH_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "spartan/cl_interop.h"
#include "spartan/spartan.h"

#define BENCH_MAX_SHAPES     64
#define BENCH_MAX_SPARSITIES 32

/* ---- options --------------------------------------------------------------------------------- */

typedef enum { PASS_FWD = 0, PASS_BWD_INPUT, PASS_BWD_WEIGHT, PASS_COUNT } bench_pass;

const char *bench_pass_name(bench_pass p); /* "fwd", "bwd_input", "bwd_weight" */

/* A GEMM of the forward layer Y = X . W: X is m x k, W k x n (the other passes follow). */
typedef struct bench_shape {
    size_t m, n, k;
    char label[40]; /* where the shape comes from: "fc 784->512 b64", "conv 14x14 64->64 b64" */
} bench_shape;

typedef struct bench_opts {
    const char *device;    /* --device; NULL: $SPARTAN_DEVICE, else every device found */
    const char *json_path; /* --json FILE */
    const char *csv_path;  /* --csv FILE */
    int runs;              /* --runs N; 0: 5, and more (up to 25, 0.2 s) for short calls */
    int warmup;            /* --warmup N (at least 2) */
    int clblast_runs;      /* CLBlast's timed runs when --runs is not given (default 5) */
    int quick, layers, no_clblast, no_openblas;
    int wall_clock;    /* --wall-clock: time by the wall clock even where markers are timed */
    unsigned passes;   /* bit (1 << bench_pass) */
    unsigned patterns; /* bit (1 << pat_kind) */
    size_t nshapes;
    bench_shape shapes[BENCH_MAX_SHAPES];
    size_t nsparsities;
    double sparsities[BENCH_MAX_SPARSITIES]; /* fractions of zeros, 0..1 */
    uint64_t seed;
} bench_opts;

/* ---- the device and its timer ---------------------------------------------------------------- */

typedef struct bench_dev {
    spartan_context *ctx;
    cl_command_queue queue;
    const spartan_device_info *info;
    char id[16]; /* "P:D" as spartan-info lists it */
    int wall;    /* wall clock around call + clFinish: 1 markers carry no profiling times here,
                  * 2 --wall-clock */
} bench_dev;

/* Creates a context on the device the selection picks (NULL: $SPARTAN_DEVICE / default) and
 * checks that markers are timed (wall_clock = 1: use the wall clock anyway). Prints what failed and
 * returns nonzero on failure. */
int bench_dev_open(bench_dev *d, const char *selection, int wall_clock);
void bench_dev_close(bench_dev *d);

typedef struct bench_stat {
    double median_ms, min_ms, max_ms;
    int runs;
} bench_stat;

/* warmup untimed runs, then at least min_runs timed ones, more while their sum is below
 * min_total_ms and there are fewer than max_runs. */
typedef struct bench_plan {
    int warmup, min_runs, max_runs;
    double min_total_ms;
} bench_plan;

/* The plan from the options; capped = 1 for CLBlast (at most clblast_runs unless --runs). */
bench_plan bench_plan_make(const bench_opts *o, int capped);

/* Enqueues (or, for the host, runs) one repetition; 0 on success. */
typedef int (*bench_fn)(void *arg);

/* Times fn on the device: a marker before, fn, a marker after, wait for it; the time between
 * the two markers' ends (or wall clock, see bench_dev.wall). Nonzero when fn failed. */
int bench_time_device(const bench_dev *d, const bench_plan *p, bench_fn fn, void *arg,
                      bench_stat *out);

/* One timed repetition on the device, no warm-up; *ms < 0 when fn or OpenCL failed. */
int bench_time_once(const bench_dev *d, bench_fn fn, void *arg, double *ms);

/* Median, min and max of t[0..n-1] (sorts t); n >= 1. */
void bench_stat_of(double *t, int n, bench_stat *out);

/* Times fn on the host by the monotonic clock. */
/* a and b alternately, run after run (warm-up included), so that both see the same machine:
 * on a noisy host the drift between two separate series is larger than many differences
 * measured here. The number of runs follows the plan, on the sum of both times. */
int bench_time_device_paired(const bench_dev *d, const bench_plan *p, bench_fn fa, void *aa,
                             bench_fn fb, void *ab, bench_stat *sa, bench_stat *sb);
int bench_time_host(const bench_plan *p, bench_fn fn, void *arg, bench_stat *out);

double bench_now_ms(void);

/* Prints "spartan-bench: what: STATUS (NAME)\n<detail>" to stderr. */
void bench_report_status(const bench_dev *d, spartan_status st, const char *what);

/* ---- the host: OpenBLAS ---------------------------------------------------------------------- */

/* Row-major C (m x n) = op(A) . op(B); op(A) m x k, op(B) k x n, A stored k x m when ta, B
 * stored n x k when tb. */
void host_sgemm(int ta, int tb, size_t m, size_t n, size_t k, const float *a, const float *b,
                float *c);
const char *host_blas_core(void);
int host_blas_threads(void);
double host_max_abs(const float *x, size_t n);

/* got against want: the largest difference and how many exceed tol. With mask (same length,
 * may be NULL), elements where mask == 0 must be exactly 0 in got. */
typedef struct bench_check {
    double max_diff, tol;
    size_t bad, off_mask;
    int ok;
} bench_check;

bench_check host_compare(const float *got, const float *want, const float *mask, size_t n,
                         double tol);

/* The tolerance for a float GEMM of reduction length k against a float reference:
 * 2 (k + 2) eps max|a| max|b| (tests/harness.c's bound, once for each side). */
double host_tolerance(size_t k, double max_a, double max_b);

/* ---- lists and output ------------------------------------------------------------------------ */

/* "MxNxK" -> shape (label "custom"); 0 on success. */
int bench_parse_shape(const char *text, bench_shape *out);
/* "0,50,90" (percent) -> fractions; returns the count, -1 on a bad entry. */
int bench_parse_sparsities(const char *text, double *out, size_t max);
/* "fwd,bwd_input" -> bits; 0 on a bad name. */
unsigned bench_parse_passes(const char *text);
/* "random,cluster" -> bits of pat_kind; 0 on a bad name. */
unsigned bench_parse_patterns(const char *text);

/* Prints the run's header: device, driver, timing method, OpenBLAS, date. */
void bench_print_header(const bench_dev *d, const char *what, const char *date);
/* The local date and time, "2025-01-31 14:05:00 CET". */
void bench_date(char *buf, size_t len);

/* The JSON list (written at close) and the CSV file (written row by row). */
typedef struct bench_out {
    cJSON *records;
    FILE *csv;
    const char *json_path;
} bench_out;

/* Opens the CSV (with its header line) if csv_path is set; prints why and returns nonzero
 * when a file cannot be opened. */
int bench_out_open(bench_out *o, const char *json_path, const char *csv_path,
                   const char *csv_header);
/* Takes rec (owned from here on). */
void bench_out_add(bench_out *o, cJSON *rec);
/* Writes the JSON list; nonzero on failure. */
int bench_out_close(bench_out *o);

/* A record with the keys every record has: device, device_id, date. */
cJSON *bench_record(const bench_dev *d, const char *date);
/* Adds key: value, or key: null when value is not finite. */
void bench_json_number(cJSON *o, const char *key, double value);
/* Writes text quoted, with commas and double quotes replaced by ';' and '\'' (so that a plain
 * split on commas, as tools/plot_gemm.gp does with awk, sees the right columns). */
void bench_csv_string(FILE *f, const char *text);
/* Writes value to the CSV with a leading comma, or an empty field when not finite. */
void bench_csv_number(FILE *f, double value);

/* ---- the benchmarks -------------------------------------------------------------------------- */

/* Each runs on one opened device; nonzero when something failed or a result was wrong. */
int bench_gemm(bench_dev *d, const bench_opts *o, bench_out *out, const char *date);
int bench_monitor(bench_dev *d, const bench_opts *o, bench_out *out, const char *date);

/* The CSV header lines of the two benchmarks. */
extern const char bench_gemm_csv_header[];
extern const char bench_monitor_csv_header[];

#endif /* SPARTAN_TOOLS_BENCH_H */
