/* `spartan-bench gemm`: for each shape and pass, the dense GEMMs (CLBlast, the runtime's own
 * kernel, OpenBLAS on the host) once, then the sparse path at each pattern and sparsity, with
 * everything the sparse path needs and the dense one does not inside its time. Every device
 * run goes through the pass's descriptor (spartan_gemm_pass_run, ops.h), the calls training
 * makes: the random and cluster patterns are the form on X, the prepool pattern (a ReLU-masked
 * gradient) the form on dY, in both backward passes:
 *
 *   fwd         Y  = X . W            dense: gemm_dense(nn)   on X: gemm_sparse_fwd_direct
 *   bwd_input   dX = dY . W^T         dense: gemm_dense(nt)   on X: compact(X, ROWS) +
 *                                       sparse_bwd_input (only under X != 0)
 *                                     on dY: transpose(W) + gemm_sparse_fwd_direct(dY, W^T)
 *   bwd_weight  dW = X^T . dY         dense: gemm_dense(tn)   on X: compact(X, COLS) +
 *                                       sparse_bwd_weight; on dY: compact(dY, COLS) +
 *                                       sparse_bwd_weight_dz
 *
 * The compaction counts the non-zeros itself (it reads the matrix once); the monitor, which in
 * training rides on the ReLU, is measured by `spartan-bench monitor`.
 *
 * Every result (dense and sparse) is checked against OpenBLAS on the same data, so a wrong
 * kernel cannot report a fast time. What this file does not do: choose shapes (spartan-bench.c)
 * or time (timing.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "patterns.h"

enum { PATH_CLBLAST = 0, PATH_OWN, PATH_OPENBLAS, PATH_SPARSE, PATH_COUNT };
static const char *path_names[PATH_COUNT] = {"clblast", "dense", "openblas", "sparse"};

const char bench_gemm_csv_header[] =
    "device,pass,m,n,k,shape,label,pattern,sparsity,measured_sparsity,clblast_ms,dense_ms,"
    "openblas_ms,sparse_ms,sparse_min_ms,sparse_max_ms,best_dense_path,best_dense_ms,speedup,"
    "ideal,fraction_of_ideal,speedup_vs_openblas,max_abs_diff,tolerance,ok,timing";

/* Host and device operands of one shape, shared by its passes. The host arrays hold what the
 * device tensors hold. */
typedef struct operands {
    size_t m, n, k;
    float *x, *w, *dy; /* X m x k, W k x n, dY m x n */
    float *out, *ref;  /* a result read back, and its reference (the largest output) */
    spartan_tensor *tx, *tw, *tdy, *ty, *tdx, *tdw, *twt;
    spartan_sparse *sx, *sdy;
} operands;

/* One repetition of one path of one pass (a bench_fn argument). */
typedef struct job {
    const bench_dev *d;
    operands *op;
    bench_pass pass;
    int path;
    int on_dy; /* sparse: the sparse operand is dY (bwd_weight, prepool) */
    spartan_status st;
    const char *step; /* which call failed */
} job;

/* Where a pass's result goes and how long its reduction is. */
typedef struct geometry {
    size_t rows, cols, kred;
    spartan_tensor *out;
    const float *a, *b; /* the operands, for the tolerance */
    size_t na, nb;
} geometry;

static geometry geometry_of(const operands *op, bench_pass p) {
    size_t m = op->m, n = op->n, k = op->k;
    switch (p) {
    case PASS_FWD:
        return (geometry){m, n, k, op->ty, op->x, op->w, m * k, k * n};
    case PASS_BWD_INPUT:
        return (geometry){m, k, n, op->tdx, op->dy, op->w, m * n, k * n};
    default:
        return (geometry){k, n, m, op->tdw, op->x, op->dy, m * k, m * n};
    }
}

/* The pass on the host with OpenBLAS into c. */
static void host_pass(const operands *op, bench_pass p, float *c) {
    size_t m = op->m, n = op->n, k = op->k;
    if (p == PASS_FWD) host_sgemm(0, 0, m, n, k, op->x, op->w, c);
    if (p == PASS_BWD_INPUT) host_sgemm(0, 1, m, k, n, op->dy, op->w, c);
    if (p == PASS_BWD_WEIGHT) host_sgemm(1, 0, k, n, m, op->x, op->dy, c);
}

#define STEP(call, name)                                                                           \
    do {                                                                                           \
        if ((j->st = (call)) != SPARTAN_OK) {                                                      \
            j->step = name;                                                                        \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* The pass through its descriptor: the calls training makes for this pass and form. */
static int run_job(void *arg) {
    job *j = arg;
    operands *o = j->op;
    if (j->path == PATH_OPENBLAS) {
        host_pass(o, j->pass, o->out);
        return 0;
    }
    spartan_sparse_form form = j->on_dy ? SPARTAN_FORM_ON_DY : SPARTAN_FORM_ON_X;
    spartan_gemm_pass d;
    STEP(spartan_gemm_pass_init((spartan_pass)j->pass, form, o->m, o->k, o->n, &d),
         "spartan_gemm_pass_init");
    spartan_gemm_operands ops = {o->tx,  o->tw, o->tdy, o->ty, o->tdx, o->tdw,
                                 o->twt, o->sx, o->sdy, 0,     0};
    spartan_gemm_path dense = j->path == PATH_CLBLAST ? SPARTAN_GEMM_CLBLAST : SPARTAN_GEMM_OWN;
    spartan_path path = j->path == PATH_SPARSE ? SPARTAN_PATH_SPARSE : SPARTAN_PATH_DENSE;
    STEP(spartan_gemm_pass_run(j->d->ctx, &d, path, dense, &ops), "spartan_gemm_pass_run");
    return 0;
}

static void operands_free(operands *o) {
    free(o->x);
    free(o->w);
    free(o->dy);
    free(o->out);
    free(o->ref);
    spartan_tensor *t[] = {o->tx, o->tw, o->tdy, o->ty, o->tdx, o->tdw, o->twt};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) spartan_tensor_destroy(t[i]);
    spartan_sparse_destroy(o->sx);
    spartan_sparse_destroy(o->sdy);
    memset(o, 0, sizeof *o);
}

static int operands_make(const bench_dev *d, const bench_shape *sh, operands *o) {
    memset(o, 0, sizeof *o);
    size_t m = sh->m, n = sh->n, k = sh->k;
    size_t big = m * n > m * k ? m * n : m * k;
    big = big > k * n ? big : k * n;
    o->m = m;
    o->n = n;
    o->k = k;
    o->x = malloc(m * k * sizeof(float));
    o->w = malloc(k * n * sizeof(float));
    o->dy = malloc(m * n * sizeof(float));
    o->out = malloc(big * sizeof(float));
    o->ref = malloc(big * sizeof(float));
    if (!o->x || !o->w || !o->dy || !o->out || !o->ref) {
        fprintf(stderr, "spartan-bench: out of host memory for %zux%zux%zu\n", m, n, k);
        operands_free(o);
        return 1;
    }
    spartan_context *ctx = d->ctx;
    spartan_status st;
    if ((st = spartan_tensor_create_2d(ctx, m, k, &o->tx)) ||
        (st = spartan_tensor_create_2d(ctx, k, n, &o->tw)) ||
        (st = spartan_tensor_create_2d(ctx, m, n, &o->tdy)) ||
        (st = spartan_tensor_create_2d(ctx, m, n, &o->ty)) ||
        (st = spartan_tensor_create_2d(ctx, m, k, &o->tdx)) ||
        (st = spartan_tensor_create_2d(ctx, k, n, &o->tdw)) ||
        (st = spartan_tensor_create_2d(ctx, n, k, &o->twt)) ||
        (st = spartan_sparse_create(ctx, m, k, &o->sx)) ||
        (st = spartan_sparse_create(ctx, m, n, &o->sdy))) {
        bench_report_status(d, st, "allocating the operands");
        operands_free(o);
        return 1;
    }
    return 0;
}

static int upload(const bench_dev *d, spartan_tensor *t, const float *host, size_t n) {
    spartan_status st = spartan_tensor_write(t, host, n);
    if (st != SPARTAN_OK) bench_report_status(d, st, "uploading an operand");
    return st != SPARTAN_OK;
}

/* Reads the pass's result back and checks it against op->ref (mask: X for bwd_input sparse). */
static int check_result(const bench_dev *d, operands *op, bench_pass p, double tol,
                        const float *mask, bench_check *c) {
    geometry g = geometry_of(op, p);
    spartan_status st = spartan_tensor_read(g.out, op->out, g.rows * g.cols);
    if (st != SPARTAN_OK) {
        bench_report_status(d, st, "reading a result back");
        return 1;
    }
    *c = host_compare(op->out, op->ref, mask, g.rows * g.cols, tol);
    return 0;
}

static void check_text(const bench_check *c, char *buf, size_t len) {
    if (c->ok) {
        snprintf(buf, len, "ok");
    } else if (c->bad) {
        snprintf(buf, len, "WRONG: %zu bad, max diff %.3g > tol %.3g", c->bad, c->max_diff, c->tol);
    } else {
        snprintf(buf, len, "WRONG: %zu non-zeros off the mask", c->off_mask);
    }
}

static const char *ms_text(double v, char *buf, size_t len) {
    if (isfinite(v)) {
        snprintf(buf, len, "%.3f", v);
    } else {
        snprintf(buf, len, "-");
    }
    return buf;
}

static void add_timing(cJSON *r, const bench_stat *s) {
    bench_json_number(r, "median_ms", s->median_ms);
    bench_json_number(r, "min_ms", s->min_ms);
    bench_json_number(r, "max_ms", s->max_ms);
    cJSON_AddNumberToObject(r, "runs", s->runs);
}

static cJSON *gemm_record(const bench_dev *d, const char *date, const bench_shape *sh, bench_pass p,
                          const char *pattern, double sparsity, double measured, int path) {
    cJSON *r = bench_record(d, date);
    cJSON_AddStringToObject(r, "pass", bench_pass_name(p));
    cJSON_AddNumberToObject(r, "m", (double)sh->m);
    cJSON_AddNumberToObject(r, "n", (double)sh->n);
    cJSON_AddNumberToObject(r, "k", (double)sh->k);
    cJSON_AddStringToObject(r, "label", sh->label);
    cJSON_AddStringToObject(r, "pattern", pattern);
    cJSON_AddNumberToObject(r, "sparsity", sparsity);
    cJSON_AddNumberToObject(r, "measured_sparsity", measured);
    cJSON_AddStringToObject(r, "path", path_names[path]);
    return r;
}

/* The dense side of one (shape, pass): times, checks, and which device path is best. */
typedef struct dense_result {
    bench_stat stat[PATH_OPENBLAS + 1];
    double ms[PATH_OPENBLAS + 1]; /* medians; NAN where not measured or wrong */
    int best;                     /* PATH_CLBLAST or PATH_OWN; -1 when neither is usable */
} dense_result;

/* Everything one benchmark run keeps across shapes. */
typedef struct gemm_run {
    const bench_dev *d;
    const bench_opts *o;
    bench_out *out;
    const char *date;
    int have_clblast;
    size_t rows, wrong, failed;
} gemm_run;

static void measure_dense(gemm_run *g, const bench_shape *sh, operands *op, bench_pass p,
                          dense_result *r) {
    geometry geo = geometry_of(op, p);
    double tol = host_tolerance(geo.kred, host_max_abs(geo.a, geo.na), host_max_abs(geo.b, geo.nb));
    host_pass(op, p, op->ref);
    r->best = -1;
    char text[160], line[512] = "";
    for (int path = PATH_CLBLAST; path <= PATH_OPENBLAS; path++) {
        r->ms[path] = NAN;
        if (path == PATH_CLBLAST && !g->have_clblast) continue;
        if (path == PATH_OPENBLAS && g->o->no_openblas) continue;
        job j = {g->d, op, p, path, 0, SPARTAN_OK, NULL};
        bench_plan plan = bench_plan_make(g->o, path == PATH_CLBLAST);
        int rc = path == PATH_OPENBLAS
                     ? bench_time_host(&plan, run_job, &j, &r->stat[path])
                     : bench_time_device(g->d, &plan, run_job, &j, &r->stat[path]);
        if (rc) {
            snprintf(text, sizeof text, "%s %s %zux%zux%zu: %s", path_names[path],
                     bench_pass_name(p), sh->m, sh->n, sh->k, j.step ? j.step : "OpenCL");
            bench_report_status(g->d, j.st, text);
            g->failed++;
            continue;
        }
        bench_check c = {0.0, tol, 0, 0, 1};
        if (path != PATH_OPENBLAS && check_result(g->d, op, p, tol, NULL, &c)) {
            g->failed++;
            continue;
        }
        cJSON *rec = gemm_record(g->d, g->date, sh, p, "none", 0.0, 0.0, path);
        add_timing(rec, &r->stat[path]);
        if (path != PATH_OPENBLAS) {
            bench_json_number(rec, "max_abs_diff", c.max_diff);
            cJSON_AddNumberToObject(rec, "tolerance", c.tol);
            cJSON_AddBoolToObject(rec, "ok", c.ok);
        }
        bench_out_add(g->out, rec);
        check_text(&c, text, sizeof text);
        size_t used = strlen(line);
        snprintf(line + used, sizeof line - used, "%s%s %.3f ms [%.3f..%.3f, %d runs]%s%s",
                 used ? ", " : "", path_names[path], r->stat[path].median_ms, r->stat[path].min_ms,
                 r->stat[path].max_ms, r->stat[path].runs, c.ok ? "" : " ", c.ok ? "" : text);
        if (!c.ok) {
            fprintf(stderr, "spartan-bench: %s GEMM WRONG: %s %zux%zux%zu: %s\n", path_names[path],
                    bench_pass_name(p), sh->m, sh->n, sh->k, text);
            g->wrong++;
            continue;
        }
        r->ms[path] = r->stat[path].median_ms;
        if (path != PATH_OPENBLAS && (r->best < 0 || r->ms[path] < r->ms[r->best])) r->best = path;
    }
    printf("\n%s %zux%zux%zu (%s): %s\n", bench_pass_name(p), sh->m, sh->n, sh->k, sh->label, line);
    fflush(stdout);
}

static void table_header(void) {
    printf("%-10s %-17s %-7s %5s %6s %9s %9s %9s %9s %-19s %7s %6s %6s  %s\n", "pass",
           "shape (MxNxK)", "pattern", "spars", "zeros", "clblast", "dense", "openblas", "sparse",
           "[min..max] ms", "speedup", "ideal", "ofideal", "check");
}

/* One sparse configuration: fill, reference, time, check, report. Returns the speedup over
 * the best dense path (NAN when failed or wrong). */
static double measure_sparse(gemm_run *g, const bench_shape *sh, operands *op, bench_pass p,
                             pat_kind pk, double s, uint64_t seed, const dense_result *dr) {
    int on_dy = pk == PAT_PREPOOL;
    float *host = on_dy ? op->dy : op->x;
    size_t rows = op->m, cols = on_dy ? op->n : op->k;
    pat_fill(host, rows, cols, pk, s, on_dy, seed);
    if (upload(g->d, on_dy ? op->tdy : op->tx, host, rows * cols)) {
        g->failed++;
        return NAN;
    }
    size_t total = rows * cols, zeros = pat_zeros(host, total);
    double measured = (double)zeros / (double)total;
    geometry geo = geometry_of(op, p);
    double tol = host_tolerance(geo.kred, host_max_abs(geo.a, geo.na), host_max_abs(geo.b, geo.nb));
    host_pass(op, p, op->ref);
    const int masked = p == PASS_BWD_INPUT && !on_dy; /* on dY: exact, no mask */
    if (masked)
        for (size_t i = 0; i < op->m * op->k; i++)
            if (op->x[i] == 0.0f) op->ref[i] = 0.0f;

    /* The sparse path is timed in alternation with the best dense device path (same data
     * layout, dense timing does not depend on the values), and the speedup uses that paired
     * dense median: both then see the same state of a noisy machine. The output the check
     * reads is the sparse one (it runs last). */
    job j = {g->d, op, p, PATH_SPARSE, on_dy, SPARTAN_OK, NULL};
    job jd = {g->d, op, p, dr->best, 0, SPARTAN_OK, NULL};
    bench_plan plan = bench_plan_make(g->o, dr->best == PATH_CLBLAST);
    bench_stat st, dst;
    memset(&dst, 0, sizeof dst);
    char text[160];
    int trc = dr->best >= 0
                  ? bench_time_device_paired(g->d, &plan, run_job, &jd, run_job, &j, &dst, &st)
                  : bench_time_device(g->d, &plan, run_job, &j, &st);
    if (trc) {
        snprintf(text, sizeof text, "sparse %s %zux%zux%zu %s %.0f%%: %s", bench_pass_name(p),
                 sh->m, sh->n, sh->k, pat_name(pk), s * 100.0, j.step ? j.step : "OpenCL");
        bench_report_status(g->d, j.st, text);
        g->failed++;
        return NAN;
    }
    bench_check c;
    if (check_result(g->d, op, p, tol, masked ? op->x : NULL, &c)) {
        g->failed++;
        return NAN;
    }
    check_text(&c, text, sizeof text);
    /* the count against the host's (the paths without a compaction count nothing: the monitor,
     * untimed) */
    size_t nnz = 0, want = total - zeros;
    spartan_status ns = SPARTAN_OK;
    if (p == PASS_FWD) ns = spartan_monitor(g->d->ctx, op->tx, op->sx);
    if (p == PASS_BWD_INPUT && on_dy) ns = spartan_monitor(g->d->ctx, op->tdy, op->sdy);
    if (ns == SPARTAN_OK) ns = spartan_sparse_nnz(on_dy ? op->sdy : op->sx, &nnz);
    if (ns != SPARTAN_OK || nnz != want) {
        size_t used = strlen(text);
        snprintf(text + used, sizeof text - used, "; MONITOR WRONG: nnz %zu, want %zu", nnz, want);
        c.ok = 0;
    }
    if (!c.ok) g->wrong++;

    double best = dr->best >= 0 ? dst.median_ms : NAN;
    double ms[PATH_OPENBLAS + 1];
    for (int path = PATH_CLBLAST; path <= PATH_OPENBLAS; path++) ms[path] = dr->ms[path];
    if (dr->best >= 0) ms[dr->best] = best; /* the paired median */
    double speedup = c.ok ? best / st.median_ms : NAN;
    double ideal = measured < 1.0 ? 1.0 / (1.0 - measured) : INFINITY;
    double frac = speedup / ideal;
    double vs_blas = c.ok ? dr->ms[PATH_OPENBLAS] / st.median_ms : NAN;

    char shape[40], b1[16], b2[16], b3[16], mm[40], sp[16];
    snprintf(shape, sizeof shape, "%zux%zux%zu", sh->m, sh->n, sh->k);
    snprintf(mm, sizeof mm, "[%.3f..%.3f]", st.min_ms, st.max_ms);
    if (isfinite(speedup)) {
        snprintf(sp, sizeof sp, "%.2fx", speedup);
    } else {
        snprintf(sp, sizeof sp, "-");
    }
    printf("%-10s %-17s %-7s %4.0f%% %5.1f%% %9s %9s %9s %9.3f %-19s %7s %6.1f %6.0f%%  %s\n",
           bench_pass_name(p), shape, pat_name(pk), s * 100.0, measured * 100.0,
           ms_text(ms[PATH_CLBLAST], b1, sizeof b1), ms_text(ms[PATH_OWN], b2, sizeof b2),
           ms_text(ms[PATH_OPENBLAS], b3, sizeof b3), st.median_ms, mm, sp, ideal, frac * 100.0,
           text);
    fflush(stdout);
    g->rows++;

    cJSON *rec = gemm_record(g->d, g->date, sh, p, pat_name(pk), s, measured, PATH_SPARSE);
    add_timing(rec, &st);
    cJSON_AddStringToObject(rec, "sparse_operand", on_dy ? "dy" : "x");
    cJSON_AddStringToObject(rec, "best_dense_path", dr->best >= 0 ? path_names[dr->best] : "");
    bench_json_number(rec, "best_dense_ms", best);
    bench_json_number(rec, "speedup", speedup);
    bench_json_number(rec, "ideal", ideal);
    bench_json_number(rec, "fraction_of_ideal", frac);
    bench_json_number(rec, "speedup_vs_openblas", vs_blas);
    bench_json_number(rec, "max_abs_diff", c.max_diff);
    cJSON_AddNumberToObject(rec, "tolerance", c.tol);
    cJSON_AddNumberToObject(rec, "monitor_nnz", (double)nnz);
    cJSON_AddNumberToObject(rec, "nnz", (double)want);
    cJSON_AddBoolToObject(rec, "ok", c.ok);
    bench_out_add(g->out, rec);

    FILE *f = g->out->csv;
    if (!f) return speedup;
    bench_csv_string(f, g->d->info->name);
    fprintf(f, ",%s,%zu,%zu,%zu,%s,", bench_pass_name(p), sh->m, sh->n, sh->k, shape);
    bench_csv_string(f, sh->label);
    fprintf(f, ",%s,%g,%.6f", pat_name(pk), s, measured);
    for (int path = PATH_CLBLAST; path <= PATH_OPENBLAS; path++) bench_csv_number(f, ms[path]);
    bench_csv_number(f, st.median_ms);
    bench_csv_number(f, st.min_ms);
    bench_csv_number(f, st.max_ms);
    fprintf(f, ",%s", dr->best >= 0 ? path_names[dr->best] : "");
    bench_csv_number(f, best);
    bench_csv_number(f, speedup);
    bench_csv_number(f, ideal);
    bench_csv_number(f, frac);
    bench_csv_number(f, vs_blas);
    bench_csv_number(f, c.max_diff);
    bench_csv_number(f, c.tol);
    fprintf(f, ",%d,%s\n", c.ok, spartan_timing_name(g->d->timing));
    fflush(f);
    return speedup;
}

/* The lowest sparsity from which the sparse path is at least as fast as the best dense one at
 * every higher sparsity measured (NAN: none), and the best speedup and where. */
static void break_even(const double *s, const double *x, size_t n, double *even, double *top,
                       double *top_s) {
    *even = *top = NAN;
    *top_s = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isnan(x[i]) && !(x[i] <= *top)) {
            *top = x[i];
            *top_s = s[i];
        }
        int holds = x[i] >= 1.0;
        for (size_t j = 0; j < n && holds; j++)
            if (s[j] > s[i] && !(x[j] >= 1.0)) holds = 0;
        if (holds && !(*even <= s[i])) *even = s[i];
    }
}

static uint64_t mix(uint64_t a, uint64_t b) {
    return (a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2))) * 0xff51afd7ed558ccdull;
}

static void run_shape(gemm_run *g, const bench_shape *sh, size_t index) {
    operands op;
    if (operands_make(g->d, sh, &op)) {
        g->failed++;
        return;
    }
    uint64_t seed = mix(g->o->seed, index);
    pat_fill_dense(op.w, op.k * op.n, mix(seed, 1));
    if (upload(g->d, op.tw, op.w, op.k * op.n)) goto fail;
    for (int p = 0; p < PASS_COUNT; p++) {
        if (!(g->o->passes & (1u << p))) continue;
        /* the dense data: X as a dense ReLU output, dY dense */
        pat_fill(op.x, op.m, op.k, PAT_RANDOM, 0.0, 0, mix(seed, 2));
        pat_fill_dense(op.dy, op.m * op.n, mix(seed, 3));
        if (upload(g->d, op.tx, op.x, op.m * op.k) || upload(g->d, op.tdy, op.dy, op.m * op.n))
            goto fail;
        dense_result dr;
        char summary[512] = "";
        measure_dense(g, sh, &op, (bench_pass)p, &dr);
        table_header();
        for (int pk = 0; pk < PAT_DEADROWS; pk++) {
            if (!(g->o->patterns & (1u << pk))) continue;
            if (pk == PAT_PREPOOL && p == PASS_FWD) continue; /* a gradient pattern */
            if (pk == PAT_PREPOOL) { /* X dense again: the sparse operand is dY */
                pat_fill(op.x, op.m, op.k, PAT_RANDOM, 0.0, 0, mix(seed, 2));
                if (upload(g->d, op.tx, op.x, op.m * op.k)) goto fail;
            }
            double x[BENCH_MAX_SPARSITIES];
            for (size_t i = 0; i < g->o->nsparsities; i++)
                x[i] = measure_sparse(g, sh, &op, (bench_pass)p, (pat_kind)pk, g->o->sparsities[i],
                                      mix(seed, 100 + 16 * (uint64_t)pk + i), &dr);
            double even, top, top_s;
            break_even(g->o->sparsities, x, g->o->nsparsities, &even, &top, &top_s);
            size_t used = strlen(summary);
            snprintf(summary + used, sizeof summary - used, "%s%s ", used ? "; " : "",
                     pat_name((pat_kind)pk));
            used = strlen(summary);
            if (isnan(even)) {
                snprintf(summary + used, sizeof summary - used, "never");
            } else {
                snprintf(summary + used, sizeof summary - used, "%.0f%%", even * 100.0);
            }
            used = strlen(summary);
            if (!isnan(top))
                snprintf(summary + used, sizeof summary - used, " (best %.2fx at %.0f%%)", top,
                         top_s * 100.0);
        }
        if (summary[0])
            printf("break-even %s %zux%zux%zu (sparse >= best dense from there up): %s\n",
                   bench_pass_name((bench_pass)p), sh->m, sh->n, sh->k, summary);
    }
    operands_free(&op);
    return;
fail:
    g->failed++;
    operands_free(&op);
}

/* CLBlast compiles its kernels on the first call of each kind in a process: once here, with
 * a small (direct kernel) and a large (indirect kernel) call, not inside a measurement. */
static int clblast_warmup(const bench_dev *d) {
    printf("CLBlast: warming up (its first calls in a process compile its kernels: up to ~10 s "
           "each on POCL without a warm driver cache)...");
    fflush(stdout);
    double t0 = bench_now_ms();
    size_t sizes[2] = {64, 512};
    for (int i = 0; i < 2; i++) {
        spartan_tensor *a = NULL, *c = NULL;
        size_t s = sizes[i];
        spartan_status st = spartan_tensor_create_2d(d->ctx, s, s, &a);
        if (!st) st = spartan_tensor_create_2d(d->ctx, s, s, &c);
        if (!st) st = spartan_tensor_fill(a, 0.5f);
        for (int t = 0; t < 4 && !st; t++)
            st = spartan_gemm_dense(d->ctx, SPARTAN_GEMM_CLBLAST, t & 1, t >> 1, 1.0f, a, a, 0.0f,
                                    c);
        if (!st) st = spartan_context_finish(d->ctx);
        spartan_tensor_destroy(a);
        spartan_tensor_destroy(c);
        if (st) {
            printf("\n");
            bench_report_status(d, st, "CLBlast warm-up");
            return 1;
        }
    }
    printf(" %.1f s\n", (bench_now_ms() - t0) / 1e3);
    return 0;
}

int bench_gemm(bench_dev *d, const bench_opts *o, bench_out *out, const char *date) {
    gemm_run g = {d, o, out, date, 0, 0, 0, 0};
    bench_print_header(d, "gemm", date);
    g.have_clblast = !o->no_clblast && spartan_have_clblast();
    printf("dense    own kernel (\"dense\"); CLBlast %s; best dense = the faster device path; "
           "spartan_gemm_best picks %s here\n",
           g.have_clblast            ? "measured"
           : !spartan_have_clblast() ? "not built in"
                                     : "skipped (--no-clblast)",
           spartan_gemm_best(d->ctx) == SPARTAN_GEMM_OWN ? "the own kernel" : "CLBlast");
    printf(
        "sparse   compact (counting included) + sparse GEMM, all inside the time; checked against "
        "OpenBLAS\n");
    if (g.have_clblast && clblast_warmup(d)) g.have_clblast = 0;
    double t0 = bench_now_ms();
    for (size_t i = 0; i < o->nshapes; i++) run_shape(&g, &o->shapes[i], i);
    printf("\n%zu sparse configurations in %.1f s on %s: %zu WRONG, %zu failed\n", g.rows,
           (bench_now_ms() - t0) / 1e3, d->info->name, g.wrong, g.failed);
    if (g.wrong)
        fprintf(stderr,
                "spartan-bench: %zu results disagree with OpenBLAS: their times are not "
                "valid (see the check column)\n",
                g.wrong);
    return g.wrong || g.failed;
}
