/* spartan-bench internals, shared by its files (one program, not a library):
 *   timing.c   the device under test, its timer (spartan_mark: profiling events or host clock)
 *   host.c     OpenBLAS on the host: the reference line and the reference results; comparisons
 *   output.c   option lists, the report header, the JSON and CSV files
 *   gemm.c     `spartan-bench gemm`: dense, sparse and OpenBLAS GEMMs of the three passes
 *   monitor.c  `spartan-bench monitor`: ReLU, ReLU with the fused monitor, and the naive count
 *   conv.c     `spartan-bench conv`: the convolution engine's paths per layer, pass and sparsity
 *   train.c    `spartan-bench train`: the presets trained under each policy (and dropout kind)
 *              side by side, and the per-step trace of sparsity and paths
 *   pytorch.c  the PyTorch CPU line of `spartan-bench train` (tools/pytorch_train.py)
 *   portability.c  `spartan-bench portability`: the benchmarks above in a short form on every
 *              device, and portability_report.c its report (markdown, plots) side by side
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

/* A convolution of `spartan-bench conv`: the window (batch, image, kernel, stride, pad) and the
 * output channels. */
typedef struct bench_conv_shape {
    spartan_window w;
    size_t out_c;
    char label[48]; /* "vgg-small conv2", or the shape as given */
} bench_conv_shape;

typedef struct bench_opts {
    const char *device;    /* --device; NULL: $SPARTAN_DEVICE, else every device found */
    const char *json_path; /* --json FILE */
    const char *csv_path;  /* --csv FILE */
    int runs;              /* --runs N; 0: 5, and more (up to 25, 0.2 s) for short calls */
    int warmup;            /* --warmup N (at least 2) */
    int clblast_runs;      /* CLBlast's timed runs when --runs is not given (default 5) */
    int quick, layers, no_clblast, no_openblas;
    int wall_clock;    /* --wall-clock: time by the host clock even where profiling events work */
    unsigned passes;   /* bit (1 << bench_pass) */
    unsigned patterns; /* bit (1 << pat_kind) */
    size_t nshapes;
    bench_shape shapes[BENCH_MAX_SHAPES];
    size_t nsparsities;
    double sparsities[BENCH_MAX_SPARSITIES]; /* fractions of zeros, 0..1 */
    size_t nconvs;                           /* conv: the layers (--shape, --set) */
    bench_conv_shape convs[BENCH_MAX_SHAPES];
    uint64_t seed;
} bench_opts;

/* `spartan-bench train` (spartan-bench.c parses it; docs/benchmarks.md). */
#define BENCH_MAX_MODELS 8

#define BENCH_MAX_CHANNELS 4

typedef struct bench_train_opts {
    const char *device;                   /* --device; NULL: $SPARTAN_DEVICE, else the default */
    const char *json_path, *csv_path;     /* --json FILE, --csv FILE: one record per run */
    const char *trace_path;               /* --trace FILE.csv: per step, GEMM layer and pass */
    const char *data;                     /* --data DIR (NULL: Fashion-MNIST's default) */
    const char *models[BENCH_MAX_MODELS]; /* --model LIST (default every preset) */
    size_t nmodels;
    unsigned policies;      /* --policy LIST: bit (1 << spartan_policy_mode); default all three */
    unsigned dropout_kinds; /* --dropout-kind LIST: bit (1 << spartan_dropout_kind); bernoulli */
    float dropout;          /* --dropout P: every dropout layer's rate; < 0: each layer's own */
    float channels[BENCH_MAX_CHANNELS];  /* --channel-dropout LIST: each run under each (0: none) */
    size_t nchannels;                    /* 0: the option not given (runs without it) */
    float dropbacks[BENCH_MAX_CHANNELS]; /* --dropback-density LIST: each run under each (0: off) */
    size_t ndropbacks;                   /* 0: the option not given (runs without Dropback) */
    size_t dropback_interval;            /* --dropback-interval N (0: the library's default) */
    float dropback_decay;                /* --dropback-decay X (0: the library's default) */
    size_t dropback_ramp;                /* --dropback-ramp N (0: none) */
    int epochs;                          /* --epochs N (1) */
    size_t limit;                        /* --limit N: train on the first N images (0: all) */
    size_t test_limit;          /* --test-limit N: evaluate on the first N test images (0: all) */
    size_t batch;               /* --batch N (the library's default, 64) */
    uint64_t seed;              /* --seed N (the library's default, 1) */
    unsigned sample_every;      /* --sample-every N (0: the library's default) */
    int sequential;             /* --sequential: one run's whole epoch after the other's */
    int no_pytorch;             /* --no-pytorch */
    int pytorch_threads;        /* --pytorch-threads N (2) */
    const char *pytorch_script; /* --pytorch-script FILE (default: the source tree's) */
    const char *python;         /* --python PATH (/usr/bin/python3) */
    char model_buf[256];        /* storage of the --model names */
} bench_train_opts;

/* The defaults of `spartan-bench train` (every preset and policy, one epoch, Bernoulli dropout at
 * each layer's own rate, the library's batch and seed); clears o first. */
void bench_train_opts_init(bench_train_opts *o);

/* `spartan-bench portability` (spartan-bench.c parses it; portability.c runs it, and
 * portability_report.c writes its report). */
typedef struct bench_port_opts {
    const char *devices;     /* --device LIST: selections separated by commas; NULL: every device */
    const char *out_dir;     /* --out DIR: portability.md, the plots and their data */
    const char *json_path;   /* --json FILE (NULL: DIR/portability.json) */
    const char *data;        /* --data DIR (NULL: Fashion-MNIST's default) */
    const char *plot_script; /* --plot-script FILE (NULL: the source tree's plot_portability.gp) */
    const char *command;     /* the command line, for the report */
    const char *from;        /* --from FILE: the report again from an earlier run's JSON */
    int quick, no_clblast, no_plots, wall_clock;
    int runs, warmup; /* --runs N, --warmup N (0: the benchmarks' defaults) */
    int has_seed;     /* --seed N given (else each benchmark's default) */
    uint64_t seed;
} bench_port_opts;

/* One (model, policy, dropout kind) line of `spartan-bench train`: train.c fills the Spartan
 * ones, pytorch.c the PyTorch one (train.c its names, lr and dropout). */
enum { BENCH_RUN_OK = 0, BENCH_RUN_UNAVAILABLE, BENCH_RUN_FAILED };
typedef struct bench_train_result {
    const char *model, *policy;
    const char *dropout_kind; /* spartan_dropout_kind_name; PyTorch: "bernoulli" (nn.Dropout's) */
    char name[24];            /* the policy, or "dense/row" where dropout kinds are compared */
    double lr;                /* the base learning rate (NAN: PyTorch, the script's own) */
    double dropout;           /* --dropout (NAN: each layer's own rate) */
    double channel_dropout;   /* the run's channel dropout (0: none; NAN: PyTorch) */
    double vs_channels;       /* with channel dropout: the run without's epoch time / its own */
    double dropback;          /* the run's Dropback density (0: off; NAN: PyTorch) */
    double vs_dropback;       /* with Dropback: the run without's epoch time / its own */
    int state;                /* BENCH_RUN_* */
    char note[200];           /* why unavailable or failed */
    size_t images;            /* trained per epoch */
    double epoch_s, epoch_min, epoch_max; /* seconds per epoch: median, min, max */
    double images_per_s, speedup, train_loss, train_acc, test_loss, test_acc;
    double vs_bernoulli; /* not Bernoulli: its policy's Bernoulli epoch time / its own (or NAN) */
    double prepare_s;    /* Spartan: model creation and prepare (the adaptive calibration) */
    double device_mib;   /* Spartan: the model's device buffers at the end (NAN: PyTorch) */
} bench_train_result;

/* Sets the epoch figures of x from the epochs' seconds t[0..n-1] (sorts t) and x->images. */
void bench_train_epochs(double *t, int n, bench_train_result *x);

/* The PyTorch script to run (--pytorch-script, else the source tree's), or NULL with why when
 * it is missing or `--python -c "import torch"` fails. */
const char *bench_pytorch_script(const bench_train_opts *o, char *why, size_t len);
/* Trains model with the script under o's epochs, batch, limit, seed and threads into r (not
 * model, policy and speedup); 0 on success, else r->note says why. */
int bench_pytorch_train(const bench_train_opts *o, const char *script, const char *model,
                        bench_train_result *r);

/* ---- the device and its timer ---------------------------------------------------------------- */

typedef struct bench_dev {
    spartan_context *ctx;
    cl_command_queue queue;
    const spartan_device_info *info;
    char id[16];            /* "P:D" as spartan-info lists it */
    spartan_timing timing;  /* the context's (spartan_context_timing) */
    const char *timing_why; /* why, owned by the context */
    int forced;             /* host clock by --wall-clock */
} bench_dev;

/* Creates a context on the device the selection picks (NULL: $SPARTAN_DEVICE / default), whose
 * timing the library detects (host_clock = 1: the host clock anyway). Prints what failed and
 * returns nonzero on failure. */
int bench_dev_open(bench_dev *d, const char *selection, int host_clock);
void bench_dev_close(bench_dev *d);

/* A device to run on: a selection string, and where it came from the device list, its profile. */
typedef struct bench_pick {
    char sel[64];
    int known; /* info is the listed profile */
    spartan_device_info info;
} bench_pick;

/* The devices to run on: those selection names (selections separated by commas), else every
 * available device of the list, simulators only with simulators set (a note on stderr for each
 * one skipped). Returns the count (at most max), -1 when listing fails. */
int bench_devices(const char *selection, int simulators, bench_pick *out, int max);

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

/* Times fn on the device: a mark before, fn, a mark after; the time between them (profiling
 * events or the host clock: bench_dev.timing). Nonzero when fn failed. */
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
/* Prints the two header lines, the first starting with label, that say how device times of
 * `what` are taken (bench_dev.timing), and why. */
void bench_print_timing(const bench_dev *d, const char *label, const char *what);
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
/* bench_out_open, closed again when it fails; and the run's date (bench_date) into date. */
int bench_out_start(bench_out *o, const char *json_path, const char *csv_path,
                    const char *csv_header, char *date, size_t len);
/* Takes rec (owned from here on). */
void bench_out_add(bench_out *o, cJSON *rec);
/* Writes the JSON list; nonzero on failure. */
int bench_out_close(bench_out *o);

/* A record with the keys every record has: device, device_id, date, timing ("events", "host"). */
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
/* `spartan-bench wsparse` (wsparse.c): the weight-sparse GEMMs against the dense one. */
int bench_wsparse(bench_dev *d, const bench_opts *o, bench_out *out, const char *date);
int bench_conv(bench_dev *d, const bench_opts *o, bench_out *out, const char *date);
/* Trains every model of o under every policy and dropout kind of o; a policy the library does
 * not offer yet (UNSUPPORTED at prepare) is reported and skipped, not a failure. */
int bench_train(bench_dev *d, const bench_train_opts *o, bench_out *out, const char *date);

/* Runs every device's short form and writes the report; 0, or 3 when something failed or was
 * wrong, 1 when nothing could run. */
int bench_portability(const bench_port_opts *o);
/* The report of the records (profile, gemm, conv, train; portability.c): DIR/portability.md, and
 * the plots' data and PNGs (gnuplot, when it runs). Nonzero when a file cannot be written. */
int bench_port_report(const bench_port_opts *o, const cJSON *records, const char *date);
/* Runs argv (argv[0] looked up in PATH) with OPENBLAS_NUM_THREADS=1 in its environment; its
 * output lines are echoed after prefix, or dropped when prefix is NULL. Returns its exit status,
 * -1 when it could not start or was killed (pytorch.c). */
int bench_spawn(char *const argv[], const char *prefix);

/* The CSV header lines of the benchmarks. */
extern const char bench_gemm_csv_header[];
extern const char bench_monitor_csv_header[];
extern const char bench_wsparse_csv_header[];
extern const char bench_conv_csv_header[];
extern const char bench_train_csv_header[];

#endif /* SPARTAN_TOOLS_BENCH_H */
