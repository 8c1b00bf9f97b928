/* Tests of runtime/device: enumeration and profiles (checked against the driver's own answers),
 * selection by every SPARTAN_DEVICE form, and clear errors for broken installations: no
 * platform, no device, a device that refuses a context (through tests/fake_icd.c). */
#include <CL/cl.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "spartan/cl_interop.h"
#include "spartan/spartan.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static spartan_device_info *devices(size_t *n) {
    spartan_device_info *list = NULL;
    spartan_status st = spartan_device_list(&list, n);
    ck_assert_msg(st == SPARTAN_OK, "spartan_device_list: %s", spartan_last_error(NULL));
    ck_assert_uint_ge(*n, 1);
    return list;
}

static long find_vendor(const spartan_device_info *list, size_t n, spartan_vendor v) {
    for (size_t i = 0; i < n; i++)
        if (list[i].vendor == v) return (long)i;
    return -1;
}

/* A vendors directory holding the named ICD libraries, for OCL_ICD_VENDORS. */
static char *vendors_dir(const char *const *libs, size_t nlibs) {
    char *dir = th_tempdir("icd");
    for (size_t i = 0; i < nlibs; i++) {
        char path[1200], line[1100];
        snprintf(path, sizeof path, "%s/%zu.icd", dir, i);
        snprintf(line, sizeof line, "%s\n", libs[i]);
        th_write_text(path, line);
    }
    return dir;
}

/* ---- enumeration and profiles ------------------------------------------------------------- */

static void check_profile_against_driver(const spartan_device_info *d) {
    cl_uint np = 0;
    ck_assert_int_eq(clGetPlatformIDs(0, NULL, &np), CL_SUCCESS);
    ck_assert_uint_lt(d->platform_index, np);
    cl_platform_id *plats = calloc(np, sizeof *plats);
    ck_assert_int_eq(clGetPlatformIDs(np, plats, NULL), CL_SUCCESS);
    cl_device_id devs[16];
    cl_uint nd = 0;
    ck_assert_int_eq(clGetDeviceIDs(plats[d->platform_index], CL_DEVICE_TYPE_ALL, 16, devs, &nd),
                     CL_SUCCESS);
    ck_assert_uint_lt(d->device_index, nd);
    cl_device_id dev = devs[d->device_index];
    char name[256];
    cl_uint cu = 0;
    cl_ulong lmem = 0, gmem = 0;
    size_t wg = 0;
    clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name, name, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    ck_assert_str_eq(d->name, name);
    ck_assert_uint_eq(d->compute_units, cu);
    ck_assert_uint_eq(d->local_mem_bytes, lmem);
    ck_assert_uint_eq(d->global_mem_bytes, gmem);
    ck_assert_uint_eq(d->max_work_group_size, wg);
    free(plats);
}

START_TEST(enumeration_and_profiles) {
    size_t n;
    spartan_device_info *list = devices(&n);
    for (size_t i = 0; i < n; i++) {
        const spartan_device_info *d = &list[i];
        ck_assert_int_gt(strlen(d->name), 0);
        ck_assert_int_gt(strlen(d->platform_name), 0);
        ck_assert_int_gt(strlen(d->driver_version), 0);
        ck_assert_uint_ge(d->compute_units, 1);
        ck_assert_uint_gt(d->global_mem_bytes, 0);
        ck_assert_uint_gt(d->max_alloc_bytes, 0);
        ck_assert_uint_le(d->max_alloc_bytes, d->global_mem_bytes);
        ck_assert_uint_gt(d->local_mem_bytes, 0);
        ck_assert_uint_ge(d->max_work_group_size, 1);
        ck_assert_uint_ge(d->max_work_item_dims, 1);
        ck_assert_uint_ge(d->max_work_item_sizes[0], 1);
        ck_assert_uint_ge(d->opencl_c_major, 1);
        ck_assert_uint_ne(d->type, 0);
        ck_assert(d->available);
        check_profile_against_driver(d);
        /* Positions are the loader's: unique per device. */
        for (size_t j = 0; j < i; j++)
            ck_assert(list[j].platform_index != d->platform_index ||
                      list[j].device_index != d->device_index);
    }
    long pocl = find_vendor(list, n, SPARTAN_VENDOR_POCL);
    ck_assert_msg(pocl >= 0, "POCL (pocl-opencl-icd) not found among %zu devices", n);
    const spartan_device_info *p = &list[pocl];
    ck_assert(p->type & SPARTAN_DEVICE_CPU);
    ck_assert_str_eq(spartan_vendor_name(p->vendor), "POCL");
    ck_assert_uint_eq(p->opencl_c_major, 1);
    ck_assert_uint_eq(p->opencl_c_minor, 2);
    ck_assert_uint_ge(p->preferred_vector_width_float, 1);
    if (th_have_oclgrind()) {
        long og = find_vendor(list, n, SPARTAN_VENDOR_SIMULATOR);
        ck_assert_msg(og >= 0, "the Oclgrind platform was configured but is not listed");
        ck_assert(strstr(list[og].platform_name, "Oclgrind") != NULL);
        /* Oclgrind claims every type; that is why selection treats it as a simulator. */
        ck_assert(list[og].type & SPARTAN_DEVICE_GPU);
        ck_assert(list[og].type & SPARTAN_DEVICE_CPU);
    }
    spartan_device_list_free(list);
    spartan_device_list_free(NULL);
}
END_TEST

/* ---- selection on synthetic lists: the rules, without drivers ------------------------------ */

static spartan_device_info fake(unsigned p, unsigned d, const char *name, const char *platform,
                                spartan_vendor v, unsigned type) {
    spartan_device_info info;
    memset(&info, 0, sizeof info);
    info.platform_index = p;
    info.device_index = d;
    snprintf(info.name, sizeof info.name, "%s", name);
    snprintf(info.platform_name, sizeof info.platform_name, "%s", platform);
    info.vendor = v;
    info.type = type;
    return info;
}

#define ALL_TYPES (SPARTAN_DEVICE_CPU | SPARTAN_DEVICE_GPU | SPARTAN_DEVICE_ACCELERATOR)

START_TEST(selection_rules) {
    spartan_device_info l[4] = {
        fake(0, 0, "Oclgrind Simulator", "Oclgrind", SPARTAN_VENDOR_SIMULATOR, ALL_TYPES),
        fake(1, 0, "pthread-skylake", "Portable Computing Language", SPARTAN_VENDOR_POCL,
             SPARTAN_DEVICE_CPU),
        fake(2, 0, "NVIDIA H100 80GB HBM3", "NVIDIA CUDA", SPARTAN_VENDOR_NVIDIA,
             SPARTAN_DEVICE_GPU),
        fake(2, 1, "NVIDIA H100 80GB HBM3", "NVIDIA CUDA", SPARTAN_VENDOR_NVIDIA,
             SPARTAN_DEVICE_GPU),
    };
    size_t idx = 99;
    /* Default: the first real GPU. */
    ck_assert_int_eq(spartan_device_select(l, 4, NULL, &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 2);
    ck_assert_int_eq(spartan_device_select(l, 4, "", &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 2);
    /* Types: real devices before the simulator. */
    ck_assert_int_eq(spartan_device_select(l, 4, "gpu", &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 2);
    ck_assert_int_eq(spartan_device_select(l, 4, "CPU", &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 1);
    ck_assert_int_eq(spartan_device_select(l, 4, "accelerator", &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 0);
    /* P:D. */
    ck_assert_int_eq(spartan_device_select(l, 4, "2:1", &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 3);
    ck_assert_int_eq(spartan_device_select(l, 4, "0:0", &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 0);
    /* Name, vendor or platform substring, any case. */
    ck_assert_int_eq(spartan_device_select(l, 4, "h100", &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 2);
    ck_assert_int_eq(spartan_device_select(l, 4, "oclgrind", &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 0);
    ck_assert_int_eq(spartan_device_select(l, 4, "portable computing", &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 1);
    /* No match: NO_DEVICE, and the message lists what there is. */
    ck_assert_int_eq(spartan_device_select(l, 4, "9:9", &idx), SPARTAN_STATUS_NO_DEVICE);
    ck_assert(strstr(spartan_last_error(NULL), "[2:1] NVIDIA H100") != NULL);
    ck_assert_int_eq(spartan_device_select(l, 4, "radeon", &idx), SPARTAN_STATUS_NO_DEVICE);
    ck_assert(strstr(spartan_last_error(NULL), "'radeon'") != NULL);
    ck_assert(strstr(spartan_last_error(NULL), "pthread-skylake") != NULL);
    /* Malformed P:D. */
    ck_assert_int_eq(spartan_device_select(l, 4, "1:x", &idx), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(NULL), "P:D") != NULL);
    ck_assert_int_eq(spartan_device_select(l, 4, "1:0:3", &idx), SPARTAN_STATUS_INVALID_ARGUMENT);
    /* indices that would wrap at 32 bits are refused, not taken as 2:1 */
    ck_assert_int_eq(spartan_device_select(l, 4, "4294967298:1", &idx),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_device_select(l, 4, "2:4294967297", &idx),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_device_select(l, 4, "2:+1", &idx), SPARTAN_STATUS_INVALID_ARGUMENT);
    /* vendor classes, as spartan_vendor_name spells them, any case */
    ck_assert_int_eq(spartan_device_select(l, 4, "pocl", &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 1);
    ck_assert_int_eq(spartan_device_select(l, 4, "NVIDIA", &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 2);
    ck_assert_int_eq(spartan_device_select(l, 4, "simulator", &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 0);
    /* Only a simulator and a CPU: the default is the CPU, "gpu" the simulator. */
    ck_assert_int_eq(spartan_device_select(l, 2, NULL, &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 1);
    ck_assert_int_eq(spartan_device_select(l, 2, "gpu", &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 0);
    /* Only a simulator: it is the default. */
    ck_assert_int_eq(spartan_device_select(l, 1, NULL, &idx), SPARTAN_OK);
    ck_assert_uint_eq(idx, 0);
    /* Only a CPU: asking for a GPU fails clearly. */
    ck_assert_int_eq(spartan_device_select(&l[1], 1, "gpu", &idx), SPARTAN_STATUS_NO_DEVICE);
    ck_assert(strstr(spartan_last_error(NULL), "type 'gpu'") != NULL);
    ck_assert_int_eq(spartan_device_select(l, 0, NULL, &idx), SPARTAN_STATUS_NO_DEVICE);
    ck_assert_int_eq(spartan_device_select(l, 4, NULL, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
}
END_TEST

/* ---- selection on the real devices, through SPARTAN_DEVICE and the options ----------------- */

/* Creates a context with SPARTAN_DEVICE=sel (NULL: unset) and checks it lands on want. */
static int context_on(const char *sel, const char *opt_device, const spartan_device_info *want) {
    if (sel)
        setenv("SPARTAN_DEVICE", sel, 1);
    else
        unsetenv("SPARTAN_DEVICE");
    spartan_context_opts o = spartan_context_opts_default();
    o.device = opt_device;
    spartan_context *ctx = NULL;
    spartan_status st = spartan_context_create(&o, &ctx);
    TH_CHILD_CHECK(st == SPARTAN_OK, "SPARTAN_DEVICE=%s: %s", sel ? sel : "(unset)",
                   spartan_last_error(NULL));
    const spartan_device_info *got = spartan_context_device(ctx);
    TH_CHILD_CHECK(got->platform_index == want->platform_index &&
                       got->device_index == want->device_index,
                   "SPARTAN_DEVICE=%s gave %u:%u %s, wanted %u:%u %s", sel ? sel : "(unset)",
                   got->platform_index, got->device_index, got->name, want->platform_index,
                   want->device_index, want->name);
    spartan_context_destroy(ctx);
    return 0;
}

static int select_real(void *arg) {
    (void)arg;
    spartan_device_info *list;
    size_t n;
    TH_CHILD_CHECK(spartan_device_list(&list, &n) == SPARTAN_OK, "%s", spartan_last_error(NULL));
    long pocl = find_vendor(list, n, SPARTAN_VENDOR_POCL);
    long og = find_vendor(list, n, SPARTAN_VENDOR_SIMULATOR);
    TH_CHILD_CHECK(pocl >= 0, "no POCL device");
    char pd[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(pd, sizeof pd, "%u:%u", list[i].platform_index, list[i].device_index);
        if (context_on(pd, NULL, &list[i])) return 1;
    }
    if (context_on("cpu", NULL, &list[pocl]) || context_on("PThread", NULL, &list[pocl])) return 1;
    if (th_have_oclgrind()) {
        TH_CHILD_CHECK(og >= 0, "no Oclgrind device");
        /* Without a real GPU the default skips the simulator. */
        int real_gpu = 0;
        for (size_t i = 0; i < n; i++)
            real_gpu |= (list[i].type & SPARTAN_DEVICE_GPU) && (long)i != og;
        if (!real_gpu && context_on(NULL, NULL, &list[pocl])) return 1;
        if (context_on("oclgrind", NULL, &list[og]) || context_on("accelerator", NULL, &list[og]))
            return 1;
    }
    /* The API argument beats the environment. */
    if (context_on("no-such-device", "cpu", &list[pocl])) return 1;
    /* A selection that matches nothing: NO_DEVICE, no context, and a message naming it. */
    setenv("SPARTAN_DEVICE", "no-such-device", 1);
    spartan_context *ctx = (spartan_context *)&ctx;
    spartan_status st = spartan_context_create(NULL, &ctx);
    TH_CHILD_CHECK(st == SPARTAN_STATUS_NO_DEVICE, "got %s", spartan_status_name(st));
    TH_CHILD_CHECK(ctx == NULL, "output not cleared on failure");
    TH_CHILD_CHECK(strstr(spartan_last_error(NULL), "no-such-device") != NULL, "message: %s",
                   spartan_last_error(NULL));
    spartan_device_list_free(list);
    return 0;
}

START_TEST(selection_by_environment) {
    ck_assert_int_eq(th_in_child(select_real, NULL), 0);
}
END_TEST

/* ---- broken installations -------------------------------------------------------------------- */

static int no_platform(void *arg) {
    setenv("OCL_ICD_VENDORS", (const char *)arg, 1);
    spartan_device_info *list = (spartan_device_info *)&list;
    size_t n = 7;
    spartan_status st = spartan_device_list(&list, &n);
    TH_CHILD_CHECK(st == SPARTAN_STATUS_NO_PLATFORM, "got %s", spartan_status_name(st));
    TH_CHILD_CHECK(list == NULL && n == 0, "outputs not cleared");
    const char *msg = spartan_last_error(NULL);
    TH_CHILD_CHECK(strstr(msg, "pocl-opencl-icd") != NULL,
                   "message does not say what to install: %s", msg);
    TH_CHILD_CHECK(strstr(msg, "OCL_ICD_VENDORS") != NULL, "message does not name the variable: %s",
                   msg);
    spartan_context *ctx = NULL;
    st = spartan_context_create(NULL, &ctx);
    TH_CHILD_CHECK(st == SPARTAN_STATUS_NO_PLATFORM && ctx == NULL, "context: %s",
                   spartan_status_name(st));
    return 0;
}

START_TEST(no_platform_is_a_clear_error) {
    char *dir = th_tempdir("empty-vendors");
    ck_assert_int_eq(th_in_child(no_platform, dir), 0);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

typedef struct {
    const char *vendors;
    const char *mode;
    const char *selection;
    spartan_status want;
    const char *message_part;
} fault_case;

static int fault(void *arg) {
    const fault_case *c = arg;
    setenv("OCL_ICD_VENDORS", c->vendors, 1);
    setenv("SPARTAN_FAKE_ICD_MODE", c->mode, 1);
    if (c->selection)
        setenv("SPARTAN_DEVICE", c->selection, 1);
    else
        unsetenv("SPARTAN_DEVICE");
    spartan_context *ctx = NULL;
    spartan_status st = spartan_context_create(NULL, &ctx);
    TH_CHILD_CHECK(st == c->want, "mode %s: got %s (%s), wanted %s", c->mode,
                   spartan_status_name(st), spartan_last_error(NULL), spartan_status_name(c->want));
    if (st != SPARTAN_OK) {
        TH_CHILD_CHECK(ctx == NULL, "output not cleared");
        TH_CHILD_CHECK(strstr(spartan_last_error(NULL), c->message_part) != NULL,
                       "mode %s: message lacks '%s': %s", c->mode, c->message_part,
                       spartan_last_error(NULL));
    } else {
        TH_CHILD_CHECK(strstr(spartan_context_device(ctx)->name, c->message_part) != NULL,
                       "mode %s: landed on %s", c->mode, spartan_context_device(ctx)->name);
        spartan_context_destroy(ctx);
    }
    return 0;
}

START_TEST(broken_devices_give_distinct_errors) {
    const char *fake_lib = getenv("SPARTAN_TEST_FAKE_ICD");
    ck_assert_msg(fake_lib != NULL, "SPARTAN_TEST_FAKE_ICD is not set (run through ctest)");
    const char *only_fake[] = {fake_lib};
    char *fake_dir = vendors_dir(only_fake, 1);
    fault_case cases[] = {
        {fake_dir, "context_fails", NULL, SPARTAN_STATUS_CONTEXT_FAILED, "CL_OUT_OF_RESOURCES"},
        {fake_dir, "unavailable", NULL, SPARTAN_STATUS_CONTEXT_FAILED, "unavailable"},
        {fake_dir, "no_compiler", NULL, SPARTAN_STATUS_UNSUPPORTED, "no OpenCL C compiler"},
        {fake_dir, "no_devices", NULL, SPARTAN_STATUS_NO_DEVICE, "none has a device"},
        {fake_dir, "context_fails", "cpu", SPARTAN_STATUS_NO_DEVICE, "type 'cpu'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(th_in_child(fault, &cases[i]) == 0, "case %zu (%s) failed", i, cases[i].mode);

    /* Next to POCL: the default tries the (broken) GPU first and falls through to POCL, as a
     * selection by name that matches both does; "gpu" has nowhere to fall and says why; "cpu"
     * and the vendor class "pocl" go straight to POCL. */
    const char *pocl_icd = getenv("SPARTAN_TEST_POCL_ICD");
    ck_assert_msg(pocl_icd != NULL, "SPARTAN_TEST_POCL_ICD is not set (run through ctest)");
    const char *both[] = {fake_lib, pocl_icd};
    char *both_dir = vendors_dir(both, 2);
    fault_case mixed[] = {
        {both_dir, "context_fails", NULL, SPARTAN_OK, "pthread"},
        {both_dir, "unavailable", NULL, SPARTAN_OK, "pthread"},
        {both_dir, "no_compiler", NULL, SPARTAN_OK, "pthread"},
        {both_dir, "context_fails", "gpu", SPARTAN_STATUS_CONTEXT_FAILED, "Spartan Fake GPU"},
        {both_dir, "context_fails", "cpu", SPARTAN_OK, "pthread"},
        {both_dir, "context_fails", "pocl", SPARTAN_OK, "pthread"},
        {both_dir, "context_fails", "POCL", SPARTAN_OK, "pthread"},
    };
    for (size_t i = 0; i < sizeof mixed / sizeof mixed[0]; i++)
        ck_assert_msg(th_in_child(fault, &mixed[i]) == 0, "mixed case %zu failed", i);
    th_rm_rf(fake_dir);
    th_rm_rf(both_dir);
    free(fake_dir);
    free(both_dir);
}
END_TEST

/* ---- tuned parameters and handles ----------------------------------------------------------- */

static int tuned(void *arg) {
    (void)arg;
    setenv("SPARTAN_DEVICE", "cpu", 1);
    spartan_context *ctx;
    TH_CHILD_CHECK(spartan_context_create(NULL, &ctx) == SPARTAN_OK, "%s",
                   spartan_last_error(NULL));
    const spartan_device_info *d = spartan_context_device(ctx);
    long vec = spartan_context_tuned(ctx, "VEC"), wg = spartan_context_tuned(ctx, "WG");
    /* POCL has no table value for VEC: it follows the preferred width, as a power of two. */
    long want_vec = 1;
    while (want_vec * 2 <= (long)d->preferred_vector_width_float && want_vec < 16) want_vec *= 2;
    TH_CHILD_CHECK(vec == want_vec, "VEC %ld, preferred width %u", vec,
                   d->preferred_vector_width_float);
    TH_CHILD_CHECK(wg >= 1 && (size_t)wg <= d->max_work_group_size, "WG %ld", wg);
    TH_CHILD_CHECK(spartan_context_tuned(ctx, "NO_SUCH") == -1, "unknown name");
    spartan_build_stats bs;
    spartan_context_build_stats(ctx, &bs);
    TH_CHILD_CHECK(strstr(bs.build_options, "-cl-std=CL1.2") != NULL, "%s", bs.build_options);
    const char *name;
    long value;
    unsigned count = 0;
    while (spartan_context_tuned_at(ctx, count, &name, &value) == SPARTAN_OK) {
        char opt[64];
        snprintf(opt, sizeof opt, "-DSP_%s=%ld", name, value);
        TH_CHILD_CHECK(strstr(bs.build_options, opt) != NULL, "%s not in %s", opt,
                       bs.build_options);
        count++;
    }
    TH_CHILD_CHECK(count >= 4, "only %u tuned parameters", count);
    cl_command_queue q = NULL;
    cl_context c = NULL;
    TH_CHILD_CHECK(spartan_context_cl_handles(ctx, NULL, NULL, &c, &q) == SPARTAN_OK, "handles");
    cl_command_queue_properties props = 0;
    clGetCommandQueueInfo(q, CL_QUEUE_PROPERTIES, sizeof props, &props, NULL);
    TH_CHILD_CHECK(c != NULL && (props & CL_QUEUE_PROFILING_ENABLE), "profiling queue");
    TH_CHILD_CHECK((props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) == 0, "in-order queue");
    spartan_context_destroy(ctx);
    spartan_context_destroy(NULL);

    /* Overrides for experiments, and clear refusals of bad ones. */
    /* configurations the other tests build too (tests/CMakeLists.txt: SPARTAN_TEST_TUNES; a cold
     * one costs a minute or two on POCL): the scalar kernels, and a loop bound only the sparse
     * GEMMs read */
    setenv("SPARTAN_TUNE", "VEC=1,LOOP_MAX=1024", 1);
    TH_CHILD_CHECK(spartan_context_create(NULL, &ctx) == SPARTAN_OK, "%s",
                   spartan_last_error(NULL));
    TH_CHILD_CHECK(spartan_context_tuned(ctx, "VEC") == 1 &&
                       spartan_context_tuned(ctx, "LOOP_MAX") == 1024,
                   "override ignored");
    spartan_context_destroy(ctx);
    setenv("SPARTAN_TUNE", "BOGUS=1", 1);
    spartan_status st = spartan_context_create(NULL, &ctx);
    TH_CHILD_CHECK(st == SPARTAN_STATUS_INVALID_ARGUMENT &&
                       strstr(spartan_last_error(NULL), "BOGUS") != NULL,
                   "%s", spartan_last_error(NULL));
    setenv("SPARTAN_TUNE", "VEC=3", 1);
    st = spartan_context_create(NULL, &ctx);
    TH_CHILD_CHECK(st == SPARTAN_STATUS_INVALID_ARGUMENT &&
                       strstr(spartan_last_error(NULL), "VEC=3") != NULL,
                   "%s", spartan_last_error(NULL));
    return 0;
}

START_TEST(tuned_parameters_and_handles) {
    ck_assert_int_eq(th_in_child(tuned, NULL), 0);
}
END_TEST

/* SPARTAN_TUNE values are decimal integers from 1 to 2^30, checked before use: no sign, space
 * or overflow is read as another number (WG=4294967552 is 2^32 + 256), no value big enough to
 * overflow a product of two (TILE_ROWS x TILE_COLS); and each parameter's range after that (a
 * tile of 65537 rows is refused, not clamped). */
static int tuned_numbers(void *arg) {
    (void)arg;
    const char *bad[] = {"WG=4294967552",
                         "TILE_COLS=2305843009213693952",
                         "GEMM_WG=4294967296",
                         "WG=99999999999999999999",
                         "VEC=+4",
                         "VEC= 4",
                         "TILE_ROWS=65537",
                         "VEC=0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("SPARTAN_TUNE", bad[i], 1);
        spartan_context *ctx = NULL;
        spartan_status st = spartan_context_create(NULL, &ctx);
        const char *msg = spartan_last_error(NULL);
        TH_CHILD_CHECK(st == SPARTAN_STATUS_INVALID_ARGUMENT && ctx == NULL &&
                           strstr(msg, bad[i]) &&
                           (strstr(msg, "from 1 to 1073741824") || strstr(msg, "outside")),
                       "%s: %s: %s", bad[i], spartan_status_name(st), msg);
    }
    setenv("SPARTAN_TUNE", "TILE_ROWS=3,TILE_COLS=5", 1);
    spartan_context *ctx = NULL;
    TH_CHILD_CHECK(spartan_context_create(NULL, &ctx) == SPARTAN_OK, "%s",
                   spartan_last_error(NULL));
    TH_CHILD_CHECK(spartan_context_tuned(ctx, "TILE_COLS") == 5, "TILE_COLS");
    spartan_context_destroy(ctx);
    return 0;
}

START_TEST(tuned_numbers_are_checked) {
    ck_assert_int_eq(th_in_child(tuned_numbers, NULL), 0);
}
END_TEST

static Suite *device_suite(void) {
    Suite *s = suite_create("device");
    TCase *tc = tcase_create("device");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, enumeration_and_profiles);
    tcase_add_test(tc, selection_rules);
    tcase_add_test(tc, selection_by_environment);
    tcase_add_test(tc, no_platform_is_a_clear_error);
    tcase_add_test(tc, broken_devices_give_distinct_errors);
    tcase_add_test(tc, tuned_parameters_and_handles);
    tcase_add_test(tc, tuned_numbers_are_checked);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(device_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
