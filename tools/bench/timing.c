/* The device under test and its timer. A time is the span between a marker enqueued before
 * the whole call sequence and one enqueued after it (CL_PROFILING_COMMAND_END of each): it
 * covers every kernel, copy and host-side gap of the sequence, where the event a library call
 * returns (CLBlast's) covers only its last kernel. Where the driver gives markers no profiling
 * times, the wall clock around the calls and a clFinish replaces them. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

double bench_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

void bench_report_status(const bench_dev *d, spartan_status st, const char *what) {
    fprintf(stderr, "spartan-bench: %s: %s (%s)\n%s\n", what, spartan_status_string(st),
            spartan_status_name(st), spartan_last_error(d ? d->ctx : NULL));
}

/* 1 when both markers report an end time and the second is not before the first. */
static int markers_timed(cl_command_queue q) {
    cl_event e[2] = {NULL, NULL};
    cl_ulong end[2] = {0, 0};
    int ok = 1;
    for (int i = 0; i < 2 && ok; i++) ok = clEnqueueMarkerWithWaitList(q, 0, NULL, &e[i]) == 0;
    if (ok) ok = clWaitForEvents(1, &e[1]) == CL_SUCCESS;
    for (int i = 0; i < 2 && ok; i++)
        ok = clGetEventProfilingInfo(e[i], CL_PROFILING_COMMAND_END, sizeof end[i], &end[i],
                                     NULL) == CL_SUCCESS;
    for (int i = 0; i < 2; i++)
        if (e[i]) clReleaseEvent(e[i]);
    return ok && end[0] != 0 && end[1] >= end[0];
}

int bench_dev_open(bench_dev *d, const char *selection, int wall_clock) {
    memset(d, 0, sizeof *d);
    spartan_context_opts co = spartan_context_opts_default();
    co.device = selection;
    spartan_status st = spartan_context_create(&co, &d->ctx);
    if (st != SPARTAN_OK) {
        bench_report_status(NULL, st, "creating a context");
        return 1;
    }
    st = spartan_context_cl_handles(d->ctx, NULL, NULL, NULL, &d->queue);
    if (st != SPARTAN_OK) {
        bench_report_status(d, st, "getting the command queue");
        spartan_context_destroy(d->ctx);
        d->ctx = NULL;
        return 1;
    }
    d->info = spartan_context_device(d->ctx);
    snprintf(d->id, sizeof d->id, "%u:%u", d->info->platform_index, d->info->device_index);
    d->wall = wall_clock ? 2 : !markers_timed(d->queue);
    return 0;
}

void bench_dev_close(bench_dev *d) {
    spartan_context_destroy(d->ctx);
    memset(d, 0, sizeof *d);
}

bench_plan bench_plan_make(const bench_opts *o, int capped) {
    bench_plan p;
    p.warmup = o->warmup > 0 ? o->warmup : 2;
    if (o->runs > 0) {
        p.min_runs = p.max_runs = o->runs;
    } else if (capped) {
        p.min_runs = p.max_runs = o->clblast_runs > 0 ? o->clblast_runs : 5;
    } else {
        p.min_runs = 5;
        p.max_runs = 25;
    }
    p.min_total_ms = 200.0;
    return p;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_stat_of(double *t, int n, bench_stat *out) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    out->runs = n;
    out->min_ms = t[0];
    out->max_ms = t[n - 1];
    out->median_ms = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

int bench_time_once(const bench_dev *d, bench_fn fn, void *arg, double *ms) {
    *ms = -1.0;
    if (d->wall) {
        double t0 = bench_now_ms();
        int rc = fn(arg);
        if (clFinish(d->queue) != CL_SUCCESS) rc = 1;
        *ms = bench_now_ms() - t0;
        return rc;
    }
    cl_event e0 = NULL, e1 = NULL;
    if (clEnqueueMarkerWithWaitList(d->queue, 0, NULL, &e0) != CL_SUCCESS) return 1;
    clFlush(d->queue); /* e0 runs now: the host-side work of the calls falls inside the span */
    int rc = fn(arg);
    if (clEnqueueMarkerWithWaitList(d->queue, 0, NULL, &e1) != CL_SUCCESS) rc = 1;
    cl_ulong t0 = 0, t1 = 0;
    if (e1 && clWaitForEvents(1, &e1) != CL_SUCCESS) rc = 1;
    if (rc == 0 && (clGetEventProfilingInfo(e0, CL_PROFILING_COMMAND_END, sizeof t0, &t0, NULL) ||
                    clGetEventProfilingInfo(e1, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL)))
        rc = 1;
    if (e0) clReleaseEvent(e0);
    if (e1) clReleaseEvent(e1);
    if (rc == 0) *ms = (double)(t1 - t0) * 1e-6;
    return rc;
}

static int time_loop(const bench_dev *d, const bench_plan *p, bench_fn fn, void *arg,
                     bench_stat *out) {
    int cap = p->max_runs > p->min_runs ? p->max_runs : p->min_runs;
    double *t = calloc((size_t)cap, sizeof *t), total = 0.0, ms;
    if (!t) return 1;
    int n = 0, rc = 0;
    for (int i = 0; i < p->warmup && rc == 0; i++) {
        if (d) {
            rc = bench_time_once(d, fn, arg, &ms);
        } else {
            rc = fn(arg);
        }
    }
    while (rc == 0 && n < cap && (n < p->min_runs || total < p->min_total_ms)) {
        if (d) {
            rc = bench_time_once(d, fn, arg, &ms);
        } else {
            double t0 = bench_now_ms();
            rc = fn(arg);
            ms = bench_now_ms() - t0;
        }
        t[n++] = ms;
        total += ms;
    }
    if (rc == 0) bench_stat_of(t, n, out);
    free(t);
    return rc;
}

int bench_time_device(const bench_dev *d, const bench_plan *p, bench_fn fn, void *arg,
                      bench_stat *out) {
    memset(out, 0, sizeof *out);
    return time_loop(d, p, fn, arg, out);
}

int bench_time_host(const bench_plan *p, bench_fn fn, void *arg, bench_stat *out) {
    memset(out, 0, sizeof *out);
    return time_loop(NULL, p, fn, arg, out);
}

int bench_time_device_paired(const bench_dev *d, const bench_plan *p, bench_fn fa, void *aa,
                             bench_fn fb, void *ab, bench_stat *sa, bench_stat *sb) {
    memset(sa, 0, sizeof *sa);
    memset(sb, 0, sizeof *sb);
    int cap = p->max_runs > p->min_runs ? p->max_runs : p->min_runs;
    double *ta = calloc((size_t)cap, sizeof *ta), *tb = calloc((size_t)cap, sizeof *tb);
    double total = 0.0, ms;
    int n = 0, rc = (ta && tb) ? 0 : 1;
    for (int i = 0; i < p->warmup && rc == 0; i++) {
        rc = bench_time_once(d, fa, aa, &ms);
        if (rc == 0) rc = bench_time_once(d, fb, ab, &ms);
    }
    while (rc == 0 && n < cap && (n < p->min_runs || total < p->min_total_ms)) {
        rc = bench_time_once(d, fa, aa, &ta[n]);
        if (rc == 0) rc = bench_time_once(d, fb, ab, &tb[n]);
        if (rc == 0) {
            total += ta[n] + tb[n];
            n++;
        }
    }
    if (rc == 0) {
        bench_stat_of(ta, n, sa);
        bench_stat_of(tb, n, sb);
    }
    free(ta);
    free(tb);
    return rc;
}
