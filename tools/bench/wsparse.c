/* `spartan-bench wsparse`: the weight-sparse GEMMs (Dropback's pruned W) against the dense GEMM
 * on the fc layers of mlp and vgg-small (batch 64), at W densities Dropback gives (X half zeros,
 * a ReLU's output):
 *   fwd        Y = X . W: the best dense GEMM, the activation-sparse one (X's zeros, no
 *              compaction), the W form (W's non-zeros), and the GEMM skipping both zeros
 *   bwd_input  dX = dY . W^T: the best dense GEMM and the W^T form
 * Device times between markers, medians; each sparse one paired with the dense GEMM run for run
 * (bench_time_device_paired), so that both see the same machine. ratio: dense / that one (> 1
 * faster); ideal: 1 / W's density (the W forms), 1 / (W's density x X's) (both zeros); of ideal:
 * ratio / ideal. Every result is checked against OpenBLAS on the host. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "patterns.h"

const char bench_wsparse_csv_header[] =
    "device,m,n,k,label,w_density,x_zeros,pass,kernel,ms,dense_ms,ratio,ideal,of_ideal,ok,timing";

typedef struct ws_shape {
    size_t m, n, k;
    const char *label;
} ws_shape;

static const ws_shape shapes[] = {
    {64, 512, 784, "mlp fc1 784->512"},    {64, 512, 512, "mlp fc2 512->512"},
    {64, 10, 512, "mlp fc3 512->10"},      {64, 256, 3136, "vgg-small fc 3136->256"},
    {64, 10, 256, "vgg-small fc 256->10"},
};
static const double densities[] = {0.5, 0.2, 0.1, 0.05};
#define X_ZEROS 0.5

enum { K_DENSE, K_XSPARSE, K_WFWD, K_BOTH, K_DENSE_BI, K_WBI, K_COUNT };
static const char *k_names[K_COUNT] = {"dense", "x-sparse", "w-sparse",
                                       "both",  "dense",    "w-sparse"};

typedef struct wjob {
    spartan_context *ctx;
    int what;
    spartan_tensor *x, *w, *y, *dy, *dx;
    spartan_wsparse *ws;
    spartan_status st;
} wjob;

static int run_wjob(void *arg) {
    wjob *j = arg;
    switch (j->what) {
    case K_DENSE:
        j->st = spartan_gemm_dense(j->ctx, SPARTAN_GEMM_BEST, 0, 0, 1.0f, j->x, j->w, 0.0f, j->y);
        break;
    case K_XSPARSE:
        j->st = spartan_gemm_sparse_fwd_direct(j->ctx, j->x, j->w, j->y);
        break;
    case K_WFWD:
        j->st = spartan_gemm_wsparse_fwd(j->ctx, j->x, j->w, j->ws, j->y);
        break;
    case K_BOTH:
        j->st = spartan_gemm_wsparse_fwd_both(j->ctx, j->x, j->w, j->ws, j->y);
        break;
    case K_DENSE_BI:
        j->st = spartan_gemm_dense(j->ctx, SPARTAN_GEMM_BEST, 0, 1, 1.0f, j->dy, j->w, 0.0f, j->dx);
        break;
    default:
        j->st = spartan_gemm_wsparse_bwd_input(j->ctx, j->dy, j->w, j->ws, j->dx);
        break;
    }
    return j->st != SPARTAN_OK;
}

/* Random floats in [-1, 1), each zero with probability zeros. */
static void fill(float *a, size_t n, double zeros, uint64_t seed) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        const double u = (double)(s >> 11) / 9007199254740992.0;
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        const double v = (double)(s >> 11) / 9007199254740992.0;
        a[i] = u < zeros ? 0.0f : (float)(2.0 * v - 1.0);
    }
}

/* The output of kernel `what` (just run) against OpenBLAS. */
static int check(wjob *j, int what, const float *x, const float *w, const float *dy, size_t m,
                 size_t n, size_t k, float *got, float *want) {
    const int bi = what >= K_DENSE_BI;
    const size_t rows = m, cols = bi ? k : n, inner = bi ? n : k;
    if (bi)
        host_sgemm(0, 1, m, k, n, dy, w, want);
    else
        host_sgemm(0, 0, m, n, k, x, w, want);
    if (spartan_tensor_read(bi ? j->dx : j->y, got, rows * cols) != SPARTAN_OK) return 0;
    const double tol =
        host_tolerance(inner, host_max_abs(bi ? dy : x, m * inner), host_max_abs(w, k * n));
    return host_compare(got, want, NULL, rows * cols, tol).ok;
}

int bench_wsparse(bench_dev *d, const bench_opts *o, bench_out *out, const char *date) {
    bench_print_header(d, "wsparse", date);
    printf("W (K x N) with Dropback's density of non-zeros (random), X half zeros (random), batch "
           "64. Medians in ms;\neach kernel paired run for run with its pass's dense GEMM. ratio: "
           "dense / it; ideal: 1 / W's density\n(both: 1 / (W's x X's density)); of ideal: ratio / "
           "ideal. Checked against OpenBLAS.\n\n");
    printf("%-24s %-7s %-10s %-9s %9s %9s %8s %7s %9s  %s\n", "layer", "W dense", "pass", "kernel",
           "ms", "dense ms", "ratio", "ideal", "of ideal", "check");
    bench_plan plan = bench_plan_make(o, 0);
    int rc = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const ws_shape *a = &shapes[si];
        const size_t m = a->m, n = a->n, k = a->k;
        float *x = malloc(m * k * sizeof *x), *w = malloc(k * n * sizeof *w);
        float *dy = malloc(m * n * sizeof *dy);
        const size_t most = (m * n > m * k ? m * n : m * k);
        float *got = malloc(most * sizeof *got), *want = malloc(most * sizeof *want);
        wjob j = {.ctx = d->ctx};
        spartan_status st =
            !x || !w || !dy || !got || !want ? SPARTAN_STATUS_OUT_OF_HOST_MEMORY : SPARTAN_OK;
        if (st == SPARTAN_OK) st = spartan_tensor_create_2d(d->ctx, m, k, &j.x);
        if (st == SPARTAN_OK) st = spartan_tensor_create_2d(d->ctx, k, n, &j.w);
        if (st == SPARTAN_OK) st = spartan_tensor_create_2d(d->ctx, m, n, &j.y);
        if (st == SPARTAN_OK) st = spartan_tensor_create_2d(d->ctx, m, n, &j.dy);
        if (st == SPARTAN_OK) st = spartan_tensor_create_2d(d->ctx, m, k, &j.dx);
        if (st == SPARTAN_OK) st = spartan_wsparse_create(d->ctx, k, n, &j.ws);
        if (st == SPARTAN_OK) {
            fill(x, m * k, X_ZEROS, o->seed + si);
            fill(dy, m * n, 0.0, o->seed + si + 100);
            st = spartan_tensor_write(j.x, x, m * k);
            if (st == SPARTAN_OK) st = spartan_tensor_write(j.dy, dy, m * n);
        }
        for (size_t di = 0; st == SPARTAN_OK && di < sizeof densities / sizeof densities[0]; di++) {
            fill(w, k * n, 1.0 - densities[di], o->seed + si * 10 + di + 1000);
            st = spartan_tensor_write(j.w, w, k * n);
            if (st == SPARTAN_OK) st = spartan_wsparse_build(j.ws, j.w);
            if (st != SPARTAN_OK) break;
            const double dens = (double)spartan_wsparse_nnz(j.ws) / (double)(k * n);
            for (int kn = 0; kn < K_COUNT && st == SPARTAN_OK; kn++) {
                if (kn == K_DENSE || kn == K_DENSE_BI) continue;
                const int bi = kn >= K_DENSE_BI;
                wjob jd = j;
                jd.what = bi ? K_DENSE_BI : K_DENSE;
                j.what = kn;
                bench_stat sd, sk;
                if (bench_time_device_paired(d, &plan, run_wjob, &jd, run_wjob, &j, &sd, &sk)) {
                    bench_report_status(d, j.st != SPARTAN_OK ? j.st : jd.st, k_names[kn]);
                    rc = 1;
                    continue;
                }
                const int ok = check(&j, kn, x, w, dy, m, n, k, got, want);
                if (!ok) rc = 1;
                const double ratio = sd.median_ms / sk.median_ms;
                const double ideal = kn == K_XSPARSE ? 1.0 / (1.0 - X_ZEROS)
                                     : kn == K_BOTH  ? 1.0 / (dens * (1.0 - X_ZEROS))
                                                     : 1.0 / dens;
                printf("%-24s %5.1f %%  %-10s %-9s %9.3f %9.3f %7.2fx %6.1fx %8.0f %%  %s\n",
                       a->label, 100.0 * dens, bi ? "bwd_input" : "fwd", k_names[kn], sk.median_ms,
                       sd.median_ms, ratio, ideal, 100.0 * ratio / ideal, ok ? "ok" : "WRONG");
                fflush(stdout);
                cJSON *r = bench_record(d, date);
                cJSON_AddStringToObject(r, "label", a->label);
                cJSON_AddNumberToObject(r, "m", (double)m);
                cJSON_AddNumberToObject(r, "n", (double)n);
                cJSON_AddNumberToObject(r, "k", (double)k);
                cJSON_AddNumberToObject(r, "w_density", dens);
                cJSON_AddNumberToObject(r, "x_zeros", X_ZEROS);
                cJSON_AddStringToObject(r, "pass", bi ? "bwd_input" : "fwd");
                cJSON_AddStringToObject(r, "kernel", k_names[kn]);
                cJSON_AddNumberToObject(r, "ms", sk.median_ms);
                cJSON_AddNumberToObject(r, "dense_ms", sd.median_ms);
                bench_json_number(r, "ratio", ratio);
                bench_json_number(r, "ideal", ideal);
                cJSON_AddBoolToObject(r, "ok", ok);
                bench_out_add(out, r);
                if (out->csv) {
                    bench_csv_string(out->csv, d->info->name);
                    fprintf(out->csv, ",%zu,%zu,%zu,", m, n, k);
                    bench_csv_string(out->csv, a->label);
                    bench_csv_number(out->csv, dens);
                    bench_csv_number(out->csv, X_ZEROS);
                    fprintf(out->csv, ",%s,%s", bi ? "bwd_input" : "fwd", k_names[kn]);
                    double v[] = {sk.median_ms, sd.median_ms, ratio, ideal, ratio / ideal};
                    for (size_t q = 0; q < sizeof v / sizeof v[0]; q++)
                        bench_csv_number(out->csv, v[q]);
                    fprintf(out->csv, ",%d,%s\n", ok, spartan_timing_name(d->timing));
                }
            }
        }
        if (st != SPARTAN_OK) {
            bench_report_status(d, st, a->label);
            rc = 1;
        }
        spartan_tensor *t[] = {j.x, j.w, j.y, j.dy, j.dx};
        for (size_t q = 0; q < sizeof t / sizeof t[0]; q++) spartan_tensor_destroy(t[q]);
        spartan_wsparse_destroy(j.ws);
        free(x);
        free(w);
        free(dy);
        free(got);
        free(want);
    }
    return rc;
}
