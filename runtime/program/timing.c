/* How device work is timed on a context: the probe at context creation that decides between
 * OpenCL profiling events and the host clock (some drivers, e.g. rusticl 22.3, give every
 * marker the same timestamps), and the marks every timer of the library and its tools reads.
 * It does not own the queue (context.c does). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timer.h"
#include "program/context_internal.h"

/* The reason text into why (len bytes), cut short if it does not fit: a long driver name only
 * shortens the message (through vsnprintf, which GCC's -O3 truncation check leaves alone). */
static void put_why(char *why, size_t len, const char *fmt, ...) SP_PRINTF(3, 4);
static void put_why(char *why, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

const char *spartan_timing_name(spartan_timing timing) {
    switch (timing) {
    case SPARTAN_TIMING_EVENTS:
        return "events";
    case SPARTAN_TIMING_HOST:
        return "host";
    }
    return "unknown";
}

spartan_status spartan_context_timing(const spartan_context *ctx, spartan_timing *timing,
                                      const char **why) {
    if (!ctx || !timing)
        return sp_err_set(sp_thread_err(), SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_context_timing: ctx and timing must not be NULL");
    *timing = ctx->timing.mode;
    if (why) *why = ctx->timing.why;
    return SPARTAN_OK;
}

/* ---- Detection ------------------------------------------------------------------------------ */

/* Records the first failure only. */
static int probe_ok(sp_timing_probe *p, cl_int rc, const char *call) {
    if (rc != CL_SUCCESS && p->rc == CL_SUCCESS) {
        p->rc = rc;
        p->call = call;
    }
    return p->rc == CL_SUCCESS;
}

void sp_timing_probe_run(cl_device_id dev, cl_command_queue q, sp_timing_probe *out) {
    memset(out, 0, sizeof *out);
    size_t res = 0;
    out->resolution_rc =
        clGetDeviceInfo(dev, CL_DEVICE_PROFILING_TIMER_RESOLUTION, sizeof res, &res, NULL);
    out->resolution_ns = out->resolution_rc == CL_SUCCESS ? res : 0;
    cl_event ev[2] = {NULL, NULL};
    uint64_t t0 = sp_now_ns(), t1 = 0, t2 = 0;
    if (probe_ok(out, clEnqueueMarkerWithWaitList(q, 0, NULL, &ev[0]),
                 "clEnqueueMarkerWithWaitList") &&
        probe_ok(out, clFinish(q), "clFinish")) {
        t1 = sp_now_ns();
        sp_sleep_ns(SP_TIMING_PROBE_SLEEP_NS);
        t2 = sp_now_ns();
    }
    if (out->rc == CL_SUCCESS &&
        probe_ok(out, clEnqueueMarkerWithWaitList(q, 0, NULL, &ev[1]),
                 "clEnqueueMarkerWithWaitList") &&
        probe_ok(out, clFinish(q), "clFinish")) {
        out->span_ns = sp_now_ns() - t0;
        out->gap_ns = t2 - t1;
    }
    for (int i = 0; i < 2 && out->rc == CL_SUCCESS; i++)
        probe_ok(out,
                 clGetEventProfilingInfo(ev[i], CL_PROFILING_COMMAND_END, sizeof out->end[i],
                                         &out->end[i], NULL),
                 "clGetEventProfilingInfo(CL_PROFILING_COMMAND_END)");
    for (int i = 0; i < 2; i++)
        if (ev[i]) clReleaseEvent(ev[i]);
}

spartan_timing sp_timing_decide(const sp_timing_probe *p, char *why, size_t len) {
    char markers[160], res[96] = "";
    const double gap = (double)p->gap_ns * 1e-6, span = (double)p->span_ns * 1e-6;
    const cl_ulong d = p->end[1] > p->end[0] ? p->end[1] - p->end[0] : 0;
    const double dev = (double)d * 1e-6;
    /* The true distance lies in [gap, span]; a device clock off by 2x is broken, not drifting. */
    const char *wrong = p->rc != CL_SUCCESS                       ? "cannot be read"
                        : d == 0                                  ? "do not advance"
                        : 2 * d < p->gap_ns                       ? "advance too slowly"
                        : d > 2 * (p->span_ns + p->resolution_ns) ? "advance too fast"
                                                                  : NULL;
    if (p->rc != CL_SUCCESS)
        snprintf(markers, sizeof markers, "%s: %s (%d)", p->call ? p->call : "?",
                 sp_cl_error_name(p->rc), (int)p->rc);
    else if (d < 100000) /* below 0.1 ms, in ns: "0 ns" says more than "0.000 ms" */
        snprintf(markers, sizeof markers,
                 "two markers %.3f-%.3f ms apart on the host, %llu ns on the device", gap, span,
                 (unsigned long long)d);
    else
        snprintf(markers, sizeof markers,
                 "two markers %.3f-%.3f ms apart on the host, %.3f ms on the device", gap, span,
                 dev);
    if (p->resolution_rc != CL_SUCCESS)
        snprintf(res, sizeof res, "timer resolution cannot be read (%s)",
                 sp_cl_error_name(p->resolution_rc));
    else if (p->resolution_ns == 0)
        snprintf(res, sizeof res, "timer resolution is 0");
    if (!wrong && !res[0]) {
        put_why(why, len,
                "OpenCL profiling events: marker timestamps advance with the host clock (%s; "
                "resolution %llu ns)",
                markers, (unsigned long long)p->resolution_ns);
        return SPARTAN_TIMING_EVENTS;
    }
    if (wrong)
        put_why(why, len, "host clock: the driver's profiling timestamps %s (%s)%s%s", wrong,
                markers, res[0] ? "; its " : "", res);
    else
        put_why(why, len, "host clock: the driver's profiling %s (%s)", res, markers);
    return SPARTAN_TIMING_HOST;
}

/* "events" or "host" into *mode; 0 for anything else. */
static int parse(const char *text, spartan_timing *mode) {
    if (!text) return 0;
    if (strcmp(text, "events") == 0)
        *mode = SPARTAN_TIMING_EVENTS;
    else if (strcmp(text, "host") == 0)
        *mode = SPARTAN_TIMING_HOST;
    else
        return 0;
    return 1;
}

void sp_timing_detect(spartan_context *ctx, const char *request) {
    sp_timing *t = &ctx->timing;
    const char *source = request ? "spartan_context_opts.timing" : "SPARTAN_TIMING";
    const char *text = request ? request : getenv("SPARTAN_TIMING");
    if (text && *text && parse(text, &t->mode)) {
        snprintf(t->why, sizeof t->why, "%s: %s=%s",
                 t->mode == SPARTAN_TIMING_HOST ? "host clock" : "OpenCL profiling events", source,
                 text);
    } else {
        if (text && *text)
            sp_log(SPARTAN_LOG_WARN, "%s=%s ignored (events or host): detecting", source, text);
        sp_timing_probe p;
        double t0 = sp_now_ms();
        sp_timing_probe_run(ctx->dev.device, ctx->queue, &p);
        t->mode = sp_timing_decide(&p, t->why, sizeof t->why);
        sp_log(SPARTAN_LOG_DEBUG, "timing probe: %.1f ms", sp_now_ms() - t0);
    }
    sp_log(SPARTAN_LOG_INFO, "timing: %s", t->why);
}

/* ---- Marks ---------------------------------------------------------------------------------- */

spartan_status spartan_mark_record(spartan_context *ctx, spartan_mark *mark) {
    if (mark) memset(mark, 0, sizeof *mark);
    if (!ctx || !mark)
        return sp_err_set(ctx ? &ctx->err : sp_thread_err(), SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_mark_record: ctx and mark must not be NULL");
    cl_int rc;
    if (ctx->timing.mode == SPARTAN_TIMING_HOST) {
        ctx->syncs++;
        if ((rc = clFinish(ctx->queue)) != CL_SUCCESS)
            return sp_cl_fail(&ctx->err, rc, "clFinish (a timing mark)");
        mark->ns_ = sp_now_ns();
        mark->known_ = 1;
        return SPARTAN_OK;
    }
    cl_event ev;
    if ((rc = clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &ev)) != CL_SUCCESS)
        return sp_cl_fail(&ctx->err, rc, "clEnqueueMarkerWithWaitList (a timing mark)");
    mark->event_ = ev;
    return SPARTAN_OK;
}

/* The mark's time, read from its marker (then released) the first time. */
static spartan_status mark_ns(spartan_context *ctx, spartan_mark *m, uint64_t *ns) {
    if (!m->known_) {
        if (!m->event_)
            return sp_err_set(&ctx->err, SPARTAN_STATUS_INVALID_ARGUMENT,
                              "spartan_mark_elapsed: a mark that was not recorded");
        cl_event ev = m->event_;
        cl_ulong end = 0;
        cl_int rc = clWaitForEvents(1, &ev);
        if (rc == CL_SUCCESS)
            rc = clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL);
        if (rc != CL_SUCCESS)
            return sp_cl_fail(&ctx->err, rc,
                              "reading a timing mark (clGetEventProfilingInfo, COMMAND_END)");
        clReleaseEvent(ev);
        m->event_ = NULL;
        m->ns_ = end;
        m->known_ = 1;
    }
    *ns = m->ns_;
    return SPARTAN_OK;
}

spartan_status spartan_mark_elapsed(spartan_context *ctx, spartan_mark *from, spartan_mark *to,
                                    double *ms) {
    if (ms) *ms = 0.0;
    if (!ctx || !from || !to || !ms)
        return sp_err_set(ctx ? &ctx->err : sp_thread_err(), SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_mark_elapsed: NULL argument");
    uint64_t a, b;
    spartan_status st = mark_ns(ctx, to, &b); /* the later one first: it waits for both */
    if (st == SPARTAN_OK) st = mark_ns(ctx, from, &a);
    if (st == SPARTAN_OK && b > a) *ms = (double)(b - a) * 1e-6;
    return st;
}

void spartan_mark_release(spartan_mark *mark) {
    if (!mark) return;
    if (mark->event_) clReleaseEvent((cl_event)mark->event_);
    memset(mark, 0, sizeof *mark);
}
