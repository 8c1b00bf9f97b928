/* The devices under test (which to run on, and the one opened) and its timer. A time is the span
 * between a mark recorded before the whole call sequence and one recorded after it (spartan_mark:
 * with profiling events, the CL_PROFILING_COMMAND_END of two markers; where the context found
 * them untrustworthy, or with --wall-clock, the host clock after a clFinish). It covers every
 * kernel, copy and host-side gap of the sequence, where the event a library call returns
 * (CLBlast's) covers only its last kernel. */
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

int bench_dev_open(bench_dev *d, const char *selection, int host_clock) {
    memset(d, 0, sizeof *d);
    spartan_context_opts co = spartan_context_opts_default();
    co.device = selection;
    co.timing = host_clock ? "host" : NULL;
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
    spartan_context_timing(d->ctx, &d->timing, &d->timing_why);
    d->forced = host_clock;
    return 0;
}

int bench_devices(const char *selection, int simulators, bench_pick *out, int max) {
    int n = 0;
    if (selection && *selection) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", selection);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && n < max;
             t = strtok_r(NULL, ",", &save)) {
            memset(&out[n], 0, sizeof out[n]);
            snprintf(out[n++].sel, sizeof out[0].sel, "%s", t);
        }
        return n;
    }
    spartan_device_info *list;
    size_t count;
    spartan_status st = spartan_device_list(&list, &count);
    if (st != SPARTAN_OK) {
        bench_report_status(NULL, st, "listing OpenCL devices");
        return -1;
    }
    for (size_t i = 0; i < count && n < max; i++) {
        const spartan_device_info *d = &list[i];
        const int sim = d->vendor == SPARTAN_VENDOR_SIMULATOR;
        if ((sim && !simulators) || !d->available || !d->compiler_available) {
            fprintf(stderr,
                    "spartan-bench: skipping %u:%u %s (%s; name it with --device to run "
                    "there)\n",
                    d->platform_index, d->device_index, d->name,
                    sim && !simulators ? "a simulator" : "unavailable");
            continue;
        }
        out[n].known = 1;
        out[n].info = *d;
        snprintf(out[n++].sel, sizeof out[0].sel, "%u:%u", d->platform_index, d->device_index);
    }
    spartan_device_list_free(list);
    return n;
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
    spartan_mark m0, m1 = {0};
    if (spartan_mark_record(d->ctx, &m0) != SPARTAN_OK) return 1;
    clFlush(d->queue); /* events: m0 runs now, so the host-side work of the calls is inside */
    int rc = fn(arg);
    if (spartan_mark_record(d->ctx, &m1) != SPARTAN_OK) rc = 1;
    double t = 0.0;
    if (rc == 0 && spartan_mark_elapsed(d->ctx, &m0, &m1, &t) != SPARTAN_OK) rc = 1;
    spartan_mark_release(&m0);
    spartan_mark_release(&m1);
    if (rc == 0) *ms = t;
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
