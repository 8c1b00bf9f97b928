/* `spartan-bench monitor`: what knowing an activation's sparsity costs. On the activations of
 * the small VGG at batch 64 (GEMM layout: rows = batch x H x W, cols = channels):
 *   (a) relu          spartan_relu alone
 *   (b) relu+monitor  spartan_relu_monitor (the fused monitor); (b') and spartan_sparse_nnz,
 *                     which brings the count to the host (a few KB)
 *   (c) naive         spartan_relu, read the whole activation back, count zeros on the host
 * All are device times between markers; (b') and (c) include their blocking reads and (c) its
 * host count, since the second marker is enqueued after them. The four are timed in rounds, one
 * of each per round, and the overheads are medians of the per-round differences: on a noisy
 * machine the drift between rounds is larger than the monitor's cost. The overhead is also put
 * against ReLU + the own dense GEMM of the layer the activation feeds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "patterns.h"

const char bench_monitor_csv_header[] =
    "device,rows,cols,label,relu_ms,relu_monitor_ms,relu_monitor_nnz_ms,naive_ms,overhead_pct,"
    "overhead_nnz_pct,naive_over_monitor,naive_extra_over_monitor_extra,next_gemm,next_gemm_ms,"
    "overhead_vs_relu_gemm_pct,nnz_ok,timing";

typedef struct act_shape {
    size_t rows, cols;
    const char *label;
    size_t gm, gn, gk; /* the GEMM of the layer this activation feeds (im2col for a conv) */
    const char *next;
} act_shape;

static const act_shape shapes[] = {
    {50176, 32, "conv1 out 28x28x32 b64", 50176, 32, 288, "conv 28x28 32->32"},
    {12544, 64, "conv3 out 14x14x64 b64", 12544, 64, 576, "conv 14x14 64->64"},
    {64, 256, "fc out 256 b64", 64, 10, 256, "fc 256->10"},
};

enum { M_RELU = 0, M_MONITOR, M_MONITOR_NNZ, M_NAIVE, M_GEMM, M_COUNT };
static const char *m_names[M_COUNT] = {"relu", "relu_monitor", "relu_monitor_nnz", "naive",
                                       "next_gemm"};

typedef struct mjob {
    const bench_dev *d;
    int what;
    spartan_tensor *z, *y, *ga, *gb, *gc;
    spartan_sparse *s;
    float *host;
    size_t n, count; /* elements; the last count of non-zeros */
    spartan_status st;
} mjob;

static int run_mjob(void *arg) {
    mjob *j = arg;
    spartan_context *ctx = j->d->ctx;
    switch (j->what) {
    case M_RELU:
        j->st = spartan_relu(ctx, j->z, j->y);
        break;
    case M_MONITOR:
        j->st = spartan_relu_monitor(ctx, j->z, j->y, j->s);
        break;
    case M_MONITOR_NNZ:
        j->st = spartan_relu_monitor(ctx, j->z, j->y, j->s);
        if (j->st == SPARTAN_OK) j->st = spartan_sparse_nnz(j->s, &j->count);
        break;
    case M_NAIVE: {
        j->st = spartan_relu(ctx, j->z, j->y);
        if (j->st != SPARTAN_OK) break;
        cl_int rc = clEnqueueReadBuffer(j->d->queue, spartan_tensor_cl_mem(j->y), CL_TRUE, 0,
                                        j->n * sizeof(float), j->host, 0, NULL, NULL);
        if (rc != CL_SUCCESS) {
            fprintf(stderr, "spartan-bench: clEnqueueReadBuffer failed (%d)\n", (int)rc);
            return 1;
        }
        j->count = j->n - pat_zeros(j->host, j->n);
        break;
    }
    default:
        j->st = spartan_gemm_dense(ctx, SPARTAN_GEMM_OWN, 0, 0, 1.0f, j->ga, j->gb, 0.0f, j->gc);
        break;
    }
    return j->st != SPARTAN_OK;
}

static void free_job(mjob *j) {
    spartan_tensor *t[] = {j->z, j->y, j->ga, j->gb, j->gc};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) spartan_tensor_destroy(t[i]);
    spartan_sparse_destroy(j->s);
    free(j->host);
}

static int make_job(const bench_dev *d, const act_shape *a, uint64_t seed, mjob *j) {
    memset(j, 0, sizeof *j);
    j->d = d;
    j->n = a->rows * a->cols;
    j->host = malloc(j->n * sizeof(float));
    if (!j->host) return 1;
    spartan_context *ctx = d->ctx;
    spartan_status st;
    if ((st = spartan_tensor_create_2d(ctx, a->rows, a->cols, &j->z)) ||
        (st = spartan_tensor_create_2d(ctx, a->rows, a->cols, &j->y)) ||
        (st = spartan_sparse_create(ctx, a->rows, a->cols, &j->s)) ||
        (st = spartan_tensor_create_2d(ctx, a->gm, a->gk, &j->ga)) ||
        (st = spartan_tensor_create_2d(ctx, a->gk, a->gn, &j->gb)) ||
        (st = spartan_tensor_create_2d(ctx, a->gm, a->gn, &j->gc)) ||
        (st = spartan_tensor_fill(j->ga, 0.5f)) || (st = spartan_tensor_fill(j->gb, 0.25f))) {
        bench_report_status(d, st, "allocating the monitor benchmark's tensors");
        return 1;
    }
    pat_fill_dense(j->host, j->n, seed); /* Z in [-1, 1]: ReLU zeroes about half */
    st = spartan_tensor_write(j->z, j->host, j->n);
    if (st != SPARTAN_OK) bench_report_status(d, st, "uploading Z");
    return st != SPARTAN_OK;
}

static double pct(double part, double whole) {
    return whole > 0.0 ? 100.0 * part / whole : NAN;
}

static void ratio_text(double r, char *buf, size_t len) {
    if (isfinite(r) && r > 0.0) {
        snprintf(buf, len, "%.1fx", r);
    } else {
        snprintf(buf, len, "n/a");
    }
}

/* (a), (b), (b'), (c) in rounds of one each (after plan->warmup rounds), until min_rounds and
 * 1 s, or max_rounds; then the next GEMM alone. diff[0..2] are the per-round (b)-(a),
 * (b')-(a), (c)-(a). counts: the non-zeros (b') and (c) found. */
static int measure(const bench_dev *d, mjob *j, const bench_plan *plan, int min_rounds,
                   int max_rounds, bench_stat *st, bench_stat *diff, size_t *counts) {
    double *t = calloc((size_t)max_rounds * (M_GEMM + 3), sizeof *t), total = 0.0;
    if (!t) return 1;
    int n = 0, rc = 0;
    for (int r = -plan->warmup; rc == 0 && r < max_rounds && (r < min_rounds || total < 1e3); r++) {
        for (int m = 0; m < M_GEMM && rc == 0; m++) {
            double ms;
            j->what = m;
            rc = bench_time_once(d, run_mjob, j, &ms);
            counts[m] = j->count;
            if (r >= 0) {
                t[m * max_rounds + r] = ms;
                total += ms;
            }
        }
        if (r >= 0 && rc == 0) {
            for (int k = 0; k < 3; k++)
                t[(M_GEMM + k) * max_rounds + r] = t[(k + 1) * max_rounds + r] - t[r];
            n = r + 1;
        }
    }
    if (rc == 0) {
        for (int m = 0; m < M_GEMM; m++) bench_stat_of(t + m * max_rounds, n, &st[m]);
        for (int k = 0; k < 3; k++) bench_stat_of(t + (M_GEMM + k) * max_rounds, n, &diff[k]);
        j->what = M_GEMM;
        rc = bench_time_device(d, plan, run_mjob, j, &st[M_GEMM]);
    }
    if (rc) {
        char what[96];
        snprintf(what, sizeof what, "%s on %zux%zu", m_names[j->what], spartan_tensor_rows(j->z),
                 spartan_tensor_cols(j->z));
        bench_report_status(d, j->st, what);
    }
    free(t);
    return rc;
}

int bench_monitor(bench_dev *d, const bench_opts *o, bench_out *out, const char *date) {
    bench_print_header(d, "monitor", date);
    printf("(a) spartan_relu; (b) spartan_relu_monitor; (b') (b) + spartan_sparse_nnz (count on "
           "the host);\n(c) naive: spartan_relu + read the activation back + count on the host. "
           "Medians in ms.\nTimed in interleaved rounds (one of each per round); (b-a), (b'-a), "
           "(c-a) are medians of the per-round differences.\noverhead = (b-a)/a; cheaper = "
           "naive/(b-a) and, counting only what each adds to the ReLU, (c-a)/(b'-a)\n\n");
    printf("%-24s %-12s %8s %8s %8s %8s %9s %9s %9s %9s %-18s %8s %9s  %s\n", "activation",
           "rows x cols", "(a)", "(b)", "(b')", "(c)", "overhead", "ovh+nnz", "c/(b-a)", "(c-a)/",
           "next GEMM", "gemm", "ovh vs", "count");
    printf("%-24s %-12s %8s %8s %8s %8s %9s %9s %9s %9s %-18s %8s %9s\n", "", "", "", "", "", "",
           "", "", "", "(b'-a)", "(own dense)", "ms", "relu+gemm");
    bench_plan plan = bench_plan_make(o, 0);
    int min_rounds = o->runs > 0 ? o->runs : 21, max_rounds = o->runs > 0 ? o->runs : 201;
    int rc = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const act_shape *a = &shapes[i];
        mjob j;
        bench_stat st[M_COUNT], diff[3];
        size_t counts[M_COUNT] = {0};
        if (make_job(d, a, o->seed + i, &j) ||
            measure(d, &j, &plan, min_rounds, max_rounds, st, diff, counts)) {
            free_job(&j);
            rc = 1;
            continue;
        }
        double ra = st[M_RELU].median_ms, rb = st[M_MONITOR].median_ms;
        double rb2 = st[M_MONITOR_NNZ].median_ms, rn = st[M_NAIVE].median_ms;
        double rg = st[M_GEMM].median_ms;
        /* the paired medians: what (b), (b') and (c) add to (a) in the same round */
        double db = diff[0].median_ms, db2 = diff[1].median_ms, dc = diff[2].median_ms;
        double ovh = pct(db, ra), ovh2 = pct(db2, ra);
        double cheap = db > 0.0 ? rn / db : NAN;
        double cheap2 = db2 > 0.0 ? dc / db2 : NAN;
        double vs_layer = pct(db, ra + rg);
        int count_ok = counts[M_MONITOR_NNZ] == counts[M_NAIVE];
        if (!count_ok) rc = 1;
        char dims[32], c1[16], c2[16], g[40], cnt[64];
        snprintf(dims, sizeof dims, "%zux%zu", a->rows, a->cols);
        ratio_text(cheap, c1, sizeof c1);
        ratio_text(cheap2, c2, sizeof c2);
        snprintf(g, sizeof g, "%zux%zux%zu", a->gm, a->gn, a->gk);
        if (count_ok) {
            snprintf(cnt, sizeof cnt, "ok (%.1f%% zeros)",
                     100.0 - pct((double)counts[M_NAIVE], (double)j.n));
        } else {
            snprintf(cnt, sizeof cnt, "WRONG: monitor %zu, host %zu non-zeros",
                     counts[M_MONITOR_NNZ], counts[M_NAIVE]);
        }
        printf("%-24s %-12s %8.3f %8.3f %8.3f %8.3f %8.1f%% %8.1f%% %9s %9s %-18s %8.3f %8.1f%%  "
               "%s\n",
               a->label, dims, ra, rb, rb2, rn, ovh, ovh2, c1, c2, g, rg, vs_layer, cnt);
        fflush(stdout);

        cJSON *r = bench_record(d, date);
        cJSON_AddStringToObject(r, "label", a->label);
        cJSON_AddNumberToObject(r, "rows", (double)a->rows);
        cJSON_AddNumberToObject(r, "cols", (double)a->cols);
        for (int m = 0; m < M_COUNT; m++) {
            char key[48];
            snprintf(key, sizeof key, "%s_ms", m_names[m]);
            cJSON_AddNumberToObject(r, key, st[m].median_ms);
            snprintf(key, sizeof key, "%s_min_ms", m_names[m]);
            cJSON_AddNumberToObject(r, key, st[m].min_ms);
            snprintf(key, sizeof key, "%s_max_ms", m_names[m]);
            cJSON_AddNumberToObject(r, key, st[m].max_ms);
            snprintf(key, sizeof key, "%s_runs", m_names[m]);
            cJSON_AddNumberToObject(r, key, st[m].runs);
        }
        cJSON_AddNumberToObject(r, "rounds", st[M_RELU].runs);
        cJSON_AddNumberToObject(r, "monitor_extra_ms", db);
        cJSON_AddNumberToObject(r, "monitor_nnz_extra_ms", db2);
        cJSON_AddNumberToObject(r, "naive_extra_ms", dc);
        cJSON_AddStringToObject(r, "next_gemm", a->next);
        cJSON_AddStringToObject(r, "next_gemm_mnk", g);
        bench_json_number(r, "overhead_pct", ovh);
        bench_json_number(r, "overhead_nnz_pct", ovh2);
        bench_json_number(r, "naive_over_monitor", cheap);
        bench_json_number(r, "naive_extra_over_monitor_extra", cheap2);
        bench_json_number(r, "overhead_vs_relu_gemm_pct", vs_layer);
        cJSON_AddNumberToObject(r, "nnz", (double)counts[M_NAIVE]);
        cJSON_AddBoolToObject(r, "nnz_ok", count_ok);
        bench_out_add(out, r);
        if (out->csv) {
            bench_csv_string(out->csv, d->info->name);
            fprintf(out->csv, ",%zu,%zu,", a->rows, a->cols);
            bench_csv_string(out->csv, a->label);
            double v[] = {ra, rb, rb2, rn, ovh, ovh2, cheap, cheap2};
            for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) bench_csv_number(out->csv, v[k]);
            fprintf(out->csv, ",%s", g);
            bench_csv_number(out->csv, rg);
            bench_csv_number(out->csv, vs_layer);
            fprintf(out->csv, ",%d,%s\n", count_ok, spartan_timing_name(d->timing));
        }
        free_job(&j);
    }
    return rc;
}
