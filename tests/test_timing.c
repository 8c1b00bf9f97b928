/* Tests of the context's timing (runtime/program/timing.c): the decision over made-up probe
 * observations (constant, barely advancing, too fast, unreadable timestamps, a resolution of 0);
 * POCL choosing profiling events; and, on POCL made to behave like a driver whose profiling
 * cannot be trusted, the host clock chosen at context creation, marks that measure, per-layer
 * times of a training step and calibration times that are not zero, and the overrides.
 *
 * The faulty driver is a test double in this file: the library is linked in statically, so its
 * calls to clGetEventProfilingInfo and clGetDeviceInfo land on the definitions below, which pass
 * to the real ones (dlsym RTLD_NEXT: the ICD loader) unless `fault` says otherwise. Only times
 * being positive are asserted, never their size. */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "policy/policy_internal.h"
#include "program/timing.h"
#include "spartan/cl_interop.h"
#include "spartan/spartan.h"

/* ---- The faulty driver ---------------------------------------------------------------------- */

typedef enum {
    FAULT_NONE,
    FAULT_CONSTANT,        /* every profiling timestamp is 3 (rusticl 22.3) */
    FAULT_ZERO_RESOLUTION, /* CL_DEVICE_PROFILING_TIMER_RESOLUTION is 0 */
    FAULT_UNAVAILABLE      /* clGetEventProfilingInfo: CL_PROFILING_INFO_NOT_AVAILABLE */
} fault_kind;

static fault_kind fault;

typedef cl_int (*profiling_fn)(cl_event, cl_profiling_info, size_t, void *, size_t *);
typedef cl_int (*device_info_fn)(cl_device_id, cl_device_info, size_t, void *, size_t *);

/* The loader's entry point of that name (memcpy: ISO C has no object-to-function cast). */
static void real_entry(const char *name, void *fn, size_t size) {
    void *sym = dlsym(RTLD_NEXT, name);
    ck_assert_msg(sym, "dlsym %s", name);
    memcpy(fn, &sym, size);
}

CL_API_ENTRY cl_int CL_API_CALL clGetEventProfilingInfo(cl_event ev, cl_profiling_info what,
                                                        size_t n, void *v, size_t *ret) {
    if (fault == FAULT_UNAVAILABLE) return CL_PROFILING_INFO_NOT_AVAILABLE;
    if (fault == FAULT_CONSTANT && v && n >= sizeof(cl_ulong)) {
        *(cl_ulong *)v = 3;
        if (ret) *ret = sizeof(cl_ulong);
        return CL_SUCCESS;
    }
    profiling_fn real;
    real_entry("clGetEventProfilingInfo", &real, sizeof real);
    return real(ev, what, n, v, ret);
}

CL_API_ENTRY cl_int CL_API_CALL clGetDeviceInfo(cl_device_id dev, cl_device_info what, size_t n,
                                                void *v, size_t *ret) {
    if (fault == FAULT_ZERO_RESOLUTION && what == CL_DEVICE_PROFILING_TIMER_RESOLUTION && v &&
        n >= sizeof(size_t)) {
        *(size_t *)v = 0;
        if (ret) *ret = sizeof(size_t);
        return CL_SUCCESS;
    }
    device_info_fn real;
    real_entry("clGetDeviceInfo", &real, sizeof real);
    return real(dev, what, n, v, ret);
}

/* ---- Fixtures ---------------------------------------------------------------------------------
 */

static char pocl[16]; /* "P:D" of the POCL device */

/* A context on POCL under the given fault; timing: the opts' request (NULL: detect); cache 0:
 * no kernel or calibration cache (every calibration measures). */
static spartan_context *pocl_context_cache(fault_kind f, const char *timing, int cache) {
    fault = f;
    if (!pocl[0]) {
        spartan_device_info *list;
        size_t n;
        ck_assert_int_eq(spartan_device_list(&list, &n), SPARTAN_OK);
        for (size_t i = 0; i < n && !pocl[0]; i++)
            if (list[i].vendor == SPARTAN_VENDOR_POCL)
                snprintf(pocl, sizeof pocl, "%u:%u", list[i].platform_index, list[i].device_index);
        spartan_device_list_free(list);
        ck_assert_msg(pocl[0], "no POCL device (the tests need pocl-opencl-icd)");
    }
    spartan_context_opts o = spartan_context_opts_default();
    o.device = pocl;
    o.cache_dir = cache ? NULL : "off";
    o.timing = timing;
    spartan_context *ctx;
    spartan_status st = spartan_context_create(&o, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
    return ctx;
}

static spartan_context *pocl_context(fault_kind f, const char *timing) {
    return pocl_context_cache(f, timing, 1);
}

static spartan_timing timing_of(const spartan_context *ctx, const char **why) {
    spartan_timing t;
    ck_assert_int_eq(spartan_context_timing(ctx, &t, why), SPARTAN_OK);
    return t;
}

#define ASSERT_WHY(why, part) ck_assert_msg(strstr(why, part), "why: %s", why)

/* ---- The decision over made-up observations -------------------------------------------------- */

#define MS 1000000u /* ns */

/* The probe's observations: the host's gap 2.0 ms and span 2.3 ms between two markers whose
 * ENDs are delta_ns apart, with that timer resolution and those results of the calls. */
static const struct {
    long long delta_ns;
    cl_ulong resolution_ns;
    cl_int resolution_rc, rc;
    spartan_timing want;
    const char *why; /* part of the sentence */
} decisions[] = {
    {21 * MS / 10, 1, CL_SUCCESS, CL_SUCCESS, SPARTAN_TIMING_EVENTS, "OpenCL profiling events"},
    {11 * MS / 10, 1, CL_SUCCESS, CL_SUCCESS, SPARTAN_TIMING_EVENTS, "events"}, /* > gap / 2 */
    {46 * MS / 10, 1, CL_SUCCESS, CL_SUCCESS, SPARTAN_TIMING_EVENTS, "events"}, /* < 2 span */
    {21 * MS / 10, 1000, CL_SUCCESS, CL_SUCCESS, SPARTAN_TIMING_EVENTS, "resolution 1000 ns"},
    /* rusticl 22.3: constant */
    {0, 1, CL_SUCCESS, CL_SUCCESS, SPARTAN_TIMING_HOST,
     "host clock: the driver's profiling timestamps do not advance"},
    {-1, 1, CL_SUCCESS, CL_SUCCESS, SPARTAN_TIMING_HOST, "do not advance"},    /* backwards */
    {1, 1, CL_SUCCESS, CL_SUCCESS, SPARTAN_TIMING_HOST, "advance too slowly"}, /* 1 ns */
    {9 * MS / 10, 1, CL_SUCCESS, CL_SUCCESS, SPARTAN_TIMING_HOST, "advance too slowly"},
    {2100 * MS, 1, CL_SUCCESS, CL_SUCCESS, SPARTAN_TIMING_HOST, "advance too fast"}, /* 1000x */
    {21 * MS / 10, 0, CL_SUCCESS, CL_SUCCESS, SPARTAN_TIMING_HOST,
     "host clock: the driver's profiling timer resolution is 0"},
    {0, 0, CL_SUCCESS, CL_SUCCESS, SPARTAN_TIMING_HOST, "do not advance"}, /* both reasons */
    {0, 0, CL_SUCCESS, CL_SUCCESS, SPARTAN_TIMING_HOST, "; its timer resolution is 0"},
    {21 * MS / 10, 1, CL_INVALID_VALUE, CL_SUCCESS, SPARTAN_TIMING_HOST,
     "resolution cannot be read (CL_INVALID_VALUE)"},
    {21 * MS / 10, 1, CL_SUCCESS, CL_PROFILING_INFO_NOT_AVAILABLE, SPARTAN_TIMING_HOST,
     "timestamps cannot be read (clGetEventProfilingInfo: CL_PROFILING_INFO_NOT_AVAILABLE"},
};

START_TEST(decision_over_observations) {
    for (size_t i = 0; i < sizeof decisions / sizeof decisions[0]; i++) {
        sp_timing_probe p;
        memset(&p, 0, sizeof p);
        p.end[0] = 1000000000000u;
        p.end[1] = (cl_ulong)((long long)p.end[0] + decisions[i].delta_ns);
        p.gap_ns = 2 * MS;
        p.span_ns = 23 * MS / 10;
        p.resolution_ns = decisions[i].resolution_ns;
        p.resolution_rc = decisions[i].resolution_rc;
        p.rc = decisions[i].rc;
        p.call = p.rc != CL_SUCCESS ? "clGetEventProfilingInfo" : NULL;
        char why[240];
        ck_assert_msg(sp_timing_decide(&p, why, sizeof why) == decisions[i].want, "case %zu: %s", i,
                      why);
        ASSERT_WHY(why, decisions[i].why);
    }
}
END_TEST

/* ---- Detection at context creation ------------------------------------------------------------
 */

START_TEST(pocl_chooses_events) {
    spartan_context *ctx = pocl_context(FAULT_NONE, NULL);
    const char *why;
    ck_assert_int_eq(timing_of(ctx, &why), SPARTAN_TIMING_EVENTS);
    ASSERT_WHY(why, "OpenCL profiling events");
    ck_assert_str_eq(spartan_timing_name(SPARTAN_TIMING_EVENTS), "events");
    spartan_context_destroy(ctx);
}
END_TEST

START_TEST(untrusted_profiling_chooses_host) {
    static const struct {
        fault_kind fault;
        const char *why;
    } cases[] = {{FAULT_CONSTANT, "timestamps do not advance"},
                 {FAULT_ZERO_RESOLUTION, "timer resolution is 0"},
                 {FAULT_UNAVAILABLE, "CL_PROFILING_INFO_NOT_AVAILABLE"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spartan_context *ctx = pocl_context(cases[i].fault, NULL);
        const char *why;
        ck_assert_int_eq(timing_of(ctx, &why), SPARTAN_TIMING_HOST);
        ASSERT_WHY(why, "host clock: ");
        ASSERT_WHY(why, cases[i].why);
        ck_assert_str_eq(spartan_timing_name(SPARTAN_TIMING_HOST), "host");
        spartan_context_destroy(ctx);
    }
}
END_TEST

START_TEST(overrides_win_over_detection) {
    const char *why;
    spartan_context *ctx = pocl_context(FAULT_NONE, "host");
    ck_assert_int_eq(timing_of(ctx, &why), SPARTAN_TIMING_HOST);
    ASSERT_WHY(why, "spartan_context_opts.timing=host");
    spartan_context_destroy(ctx);
    setenv("SPARTAN_TIMING", "events", 1);
    ctx = pocl_context(FAULT_CONSTANT, NULL);
    ck_assert_int_eq(timing_of(ctx, &why), SPARTAN_TIMING_EVENTS);
    ASSERT_WHY(why, "SPARTAN_TIMING=events");
    spartan_context_destroy(ctx);
    setenv("SPARTAN_TIMING", "host", 1);
    ctx = pocl_context(FAULT_NONE, NULL);
    ck_assert_int_eq(timing_of(ctx, &why), SPARTAN_TIMING_HOST);
    ASSERT_WHY(why, "SPARTAN_TIMING=host");
    spartan_context_destroy(ctx);
    ctx = pocl_context(FAULT_NONE, "events"); /* the application's request before the variable */
    ck_assert_int_eq(timing_of(ctx, &why), SPARTAN_TIMING_EVENTS);
    spartan_context_destroy(ctx);
    setenv("SPARTAN_TIMING", "sundial", 1); /* ignored: detected */
    ctx = pocl_context(FAULT_CONSTANT, NULL);
    ck_assert_int_eq(timing_of(ctx, &why), SPARTAN_TIMING_HOST);
    spartan_context_destroy(ctx);
    unsetenv("SPARTAN_TIMING");
}
END_TEST

/* ---- Marks --------------------------------------------------------------------------------------
 */

/* ms of a 96 x 64 x 128 GEMM between two marks. */
static double time_gemm(spartan_context *ctx) {
    spartan_tensor *a = th_matrix(ctx, 96, 128), *b = th_matrix(ctx, 128, 64),
                   *c = th_matrix(ctx, 96, 64);
    spartan_mark m0, m1;
    double ms = -1.0;
    TH_OK(ctx, spartan_mark_record(ctx, &m0));
    TH_OK(ctx, spartan_gemm_dense(ctx, SPARTAN_GEMM_OWN, 0, 0, 1.0f, a, b, 0.0f, c));
    TH_OK(ctx, spartan_mark_record(ctx, &m1));
    TH_OK(ctx, spartan_mark_elapsed(ctx, &m0, &m1, &ms));
    double again = -1.0; /* a mark remembers its time once its marker is read */
    TH_OK(ctx, spartan_mark_elapsed(ctx, &m0, &m1, &again));
    ck_assert(again == ms);
    spartan_mark_release(&m0);
    spartan_mark_release(&m1);
    spartan_mark_release(&m1); /* released twice: nothing */
    spartan_tensor_destroy(a);
    spartan_tensor_destroy(b);
    spartan_tensor_destroy(c);
    return ms;
}

START_TEST(marks_measure_work_in_both_timings) {
    for (fault_kind f = FAULT_NONE; f <= FAULT_CONSTANT; f++) {
        spartan_context *ctx = pocl_context(f, NULL);
        double ms = time_gemm(ctx);
        ck_assert_msg(ms > 0.0, "%s timing: %g ms", spartan_timing_name(timing_of(ctx, NULL)), ms);
        spartan_context_destroy(ctx);
    }
}
END_TEST

START_TEST(marks_refuse_bad_arguments) {
    spartan_context *ctx = pocl_context(FAULT_NONE, NULL);
    spartan_mark empty = {0}, m;
    double ms = 1.0;
    ck_assert_int_eq(spartan_mark_record(NULL, &m), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_mark_record(ctx, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    TH_OK(ctx, spartan_mark_record(ctx, &m));
    ck_assert_int_eq(spartan_mark_elapsed(ctx, &empty, &m, &ms), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(ms == 0.0);
    ck_assert_int_eq(spartan_mark_elapsed(ctx, &m, &m, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    spartan_mark_release(&m);
    spartan_mark_release(NULL);
    spartan_timing t;
    ck_assert_int_eq(spartan_context_timing(NULL, &t, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_context_timing(ctx, NULL, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    spartan_context_destroy(ctx);
}
END_TEST

/* ---- What the timing feeds: the per-layer report and the calibration --------------------------
 */

/* One training step of a 4x4x1 -> fc 16 -> relu -> fc 3 model; every pass that ran has a
 * non-zero time. */
static void assert_step_times(spartan_context *ctx) {
    const size_t batch = 8;
    spartan_model *m;
    TH_OK(ctx, spartan_model_create(ctx, 4, 4, 1, 3, &m));
    TH_OK(ctx, spartan_model_add_fc(m, 16));
    TH_OK(ctx, spartan_model_add_relu(m));
    TH_OK(ctx, spartan_model_add_fc(m, 3));
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = batch;
    cfg.policy = SPARTAN_POLICY_DENSE;
    TH_OK(ctx, spartan_model_prepare(m, &cfg));
    float img[8 * 16], lab[8];
    th_rng r;
    th_rng_init(&r, th_seed());
    for (size_t i = 0; i < batch * 16; i++) img[i] = th_rng_uniform(&r, 0.0f, 1.0f);
    for (size_t i = 0; i < batch; i++) lab[i] = (float)(i % 3);
    spartan_step_result res;
    TH_OK(ctx, spartan_model_train_step(m, img, lab, batch, &res));
    size_t timed = 0;
    for (size_t i = 0; i < spartan_model_layer_count(m); i++) {
        spartan_layer_info li;
        TH_OK(ctx, spartan_model_layer_info(m, i, &li));
        for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
            if (!li.calls[p]) continue;
            ck_assert_msg(li.seconds[p] > 0.0, "%s %s: %g s", li.name,
                          spartan_pass_name((spartan_pass)p), li.seconds[p]);
            timed++;
        }
    }
    ck_assert_uint_ge(timed, 5); /* fc1 fwd, bwd_weight; relu; fc2 fwd, bwd_input, bwd_weight */
    spartan_model_destroy(m);
}

START_TEST(host_timing_gives_layer_times) {
    spartan_context *ctx = pocl_context(FAULT_CONSTANT, NULL);
    assert_step_times(ctx);
    spartan_context_destroy(ctx);
    ctx = pocl_context(FAULT_NONE, "host"); /* SPARTAN_TIMING=host on a working driver */
    assert_step_times(ctx);
    spartan_context_destroy(ctx);
}
END_TEST

/* The calibration's microbenchmarks measure (above the 1e-6 ms floor a zero time becomes). */
START_TEST(host_timing_gives_calibration_times) {
    spartan_context *ctx = pocl_context_cache(FAULT_CONSTANT, NULL, 0);
    spartan_policy *p;
    TH_OK(ctx, spartan_policy_create(ctx, SPARTAN_POLICY_ADAPTIVE, &p));
    TH_OK(ctx, sp_policy_register(p, 0, SPARTAN_PASS_FWD, 128, 32, 64, 1, NULL));
    sp_policy_cal cal;
    TH_OK(ctx, sp_policy_calibration(p, 0, SPARTAN_PASS_FWD, &cal));
    ck_assert_msg(cal.own_ms > 1e-6 && cal.sparse_low_ms > 1e-6 && cal.sparse_high_ms > 1e-6,
                  "dense %g, sparse %g / %g ms", cal.own_ms, cal.sparse_low_ms, cal.sparse_high_ms);
    spartan_policy_destroy(p);
    spartan_context_destroy(ctx);
}
END_TEST

static void reset_fault(void) {
    fault = FAULT_NONE;
}

int main(void) {
    Suite *s = suite_create("timing");
    TCase *tc = tcase_create("timing");
    tcase_add_checked_fixture(tc, reset_fault, reset_fault);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, decision_over_observations);
    tcase_add_test(tc, pocl_chooses_events);
    tcase_add_test(tc, untrusted_profiling_chooses_host);
    tcase_add_test(tc, overrides_win_over_detection);
    tcase_add_test(tc, marks_measure_work_in_both_timings);
    tcase_add_test(tc, marks_refuse_bad_arguments);
    tcase_add_test(tc, host_timing_gives_layer_times);
    tcase_add_test(tc, host_timing_gives_calibration_times);
    suite_add_tcase(s, tc);
    return th_run_suite(s);
}
