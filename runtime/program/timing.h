/* Which clock times device work on a context (include/spartan/device.h, "Timing"): the probe
 * run at context creation, the decision over what it observed (a pure function, so tests can
 * give it made-up observations), and the context's record of the outcome. The marks every
 * timer in the library and its tools uses are in timing.c too. */
#ifndef SP_PROGRAM_TIMING_H
#define SP_PROGRAM_TIMING_H

#include <CL/cl.h>
#include <stddef.h>
#include <stdint.h>

#include "spartan/device.h"

/* The context's timing and the sentence spartan_context_timing gives for it. */
typedef struct sp_timing {
    spartan_timing mode;
    char why[240];
} sp_timing;

/* What one probe saw: the timer resolution, then two markers, the second enqueued after the
 * first had finished (clFinish) and the host had slept SP_TIMING_PROBE_SLEEP_NS. */
typedef struct sp_timing_probe {
    cl_int resolution_rc;   /* the query of CL_DEVICE_PROFILING_TIMER_RESOLUTION */
    cl_ulong resolution_ns; /* its answer (0 when the query failed) */
    cl_int rc;              /* the markers: CL_SUCCESS, or the first failure */
    const char *call;       /* the call that failed (NULL when none did) */
    cl_ulong end[2];        /* CL_PROFILING_COMMAND_END of the two markers */
    /* Host clock: from the first clFinish's return to the second marker's enqueue, a lower
     * bound of the true distance between the two ends (the first had ended, the second had
     * not begun), and from the first enqueue to the second clFinish's return, an upper bound. */
    uint64_t gap_ns, span_ns;
} sp_timing_probe;

#define SP_TIMING_PROBE_SLEEP_NS 2000000u

/* Runs the probe on queue q of device dev (it must have profiling enabled). Never fails: a
 * failure is recorded in *out. About SP_TIMING_PROBE_SLEEP_NS plus two round trips. */
void sp_timing_probe_run(cl_device_id dev, cl_command_queue q, sp_timing_probe *out);

/* Events only when every call succeeded, the resolution is non-zero, and the second END follows
 * the first by at least half the host's gap and at most twice its span plus two resolution
 * steps. why (len bytes) gets the sentence either way, every reason for the host clock in it. */
spartan_timing sp_timing_decide(const sp_timing_probe *p, char *why, size_t len);

/* Sets ctx->timing: request ("events", "host"), else $SPARTAN_TIMING, else the probe's
 * decision on ctx's queue. Called once the queue exists; never fails. */
void sp_timing_detect(spartan_context *ctx, const char *request);

#endif /* SP_PROGRAM_TIMING_H */
