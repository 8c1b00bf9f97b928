/* Tests of the tuned-parameter lookup (runtime/device/tuned.c) over made-up device profiles:
 * every preferred vector width from 1 to 16 on CPUs and GPUs of every vendor class gives a set
 * the kernels accept, the values derived from the vector width follow a SPARTAN_TUNE override of
 * it, explicit overrides stay as given, and overrides the device cannot run are refused; the
 * parameters the kernels once had built in (COLS_STEP, DIRECT_SEG) keep those values on every
 * device. No OpenCL device is needed. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "device/device_internal.h"
#include "harness.h"

static spartan_device_info profile(spartan_vendor vendor, unsigned type, unsigned width,
                                   size_t max_wg, uint64_t local) {
    spartan_device_info d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "made-up device");
    d.vendor = vendor;
    d.type = type;
    d.preferred_vector_width_float = width;
    d.max_work_group_size = max_wg;
    d.max_work_item_dims = 3;
    d.max_work_item_sizes[0] = max_wg;
    d.local_mem_bytes = local;
    return d;
}

static long get(const sp_tuned *t, const char *name) {
    long v = sp_tuned_get(t, name);
    ck_assert_msg(v > 0, "%s = %ld", name, v);
    return v;
}

/* What the kernels need of a parameter set on this device (common.clh and the launches). */
static void check_runnable(const sp_tuned *t, const spartan_device_info *d, const char *what) {
    long vec = get(t, "VEC"), wg = get(t, "WG"), gwg = get(t, "GEMM_WG");
    ck_assert_msg(vec == 1 || vec == 2 || vec == 4 || vec == 8 || vec == 16, "%s: VEC %ld", what,
                  vec);
    ck_assert_msg((wg & (wg - 1)) == 0 && wg <= (long)d->max_work_group_size, "%s: WG %ld", what,
                  wg);
    ck_assert_msg(gwg <= (long)d->max_work_group_size, "%s: GEMM_WG %ld", what, gwg);
    ck_assert_msg((uint64_t)wg * (uint64_t)vec * 4u <= d->local_mem_bytes,
                  "%s: WG %ld x VEC %ld floats exceed %llu bytes of local memory", what, wg, vec,
                  (unsigned long long)d->local_mem_bytes);
    ck_assert_msg(get(t, "GEMM_RB") <= 16 && get(t, "GEMM_NB") <= 8, "%s: register block", what);
    ck_assert_msg(get(t, "SPARSE_NB") <= 16, "%s: SPARSE_NB %ld", what, get(t, "SPARSE_NB"));
    ck_assert_msg(get(t, "COLS_STEP") <= 1024, "%s: COLS_STEP %ld", what, get(t, "COLS_STEP"));
    long seg = get(t, "DIRECT_SEG");
    ck_assert_msg(seg >= 8 && seg <= 1024, "%s: DIRECT_SEG %ld", what, seg);
    ck_assert_msg(get(t, "TILE_ROWS") * get(t, "TILE_COLS") <= 8192, "%s: tile", what);
}

START_TEST(every_width_and_type_gives_a_runnable_set) {
    const spartan_vendor vendors[] = {SPARTAN_VENDOR_OTHER,  SPARTAN_VENDOR_POCL,
                                      SPARTAN_VENDOR_NVIDIA, SPARTAN_VENDOR_AMD,
                                      SPARTAN_VENDOR_INTEL,  SPARTAN_VENDOR_SIMULATOR};
    const unsigned types[] = {SPARTAN_DEVICE_CPU, SPARTAN_DEVICE_GPU};
    const unsigned widths[] = {0, 1, 2, 3, 4, 8, 16, 32};
    const size_t wgs[] = {1024, 256, 64, 1};
    const uint64_t locals[] = {65536, 32768, 4096};
    unsetenv("SPARTAN_TUNE");
    for (size_t v = 0; v < sizeof vendors / sizeof vendors[0]; v++)
        for (size_t ty = 0; ty < 2; ty++)
            for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++)
                for (size_t g = 0; g < sizeof wgs / sizeof wgs[0]; g++)
                    for (size_t l = 0; l < sizeof locals / sizeof locals[0]; l++) {
                        spartan_device_info d =
                            profile(vendors[v], types[ty], widths[w], wgs[g], locals[l]);
                        sp_tuned t;
                        sp_err err = {0};
                        char what[128];
                        snprintf(what, sizeof what, "%s %s width %u, WG %zu, local %llu",
                                 spartan_vendor_name(vendors[v]), ty ? "GPU" : "CPU", widths[w],
                                 wgs[g], (unsigned long long)locals[l]);
                        spartan_status st = sp_tuned_lookup(&d, NULL, 0, &t, &err);
                        ck_assert_msg(st == SPARTAN_OK, "%s: %s", what, sp_err_message(&err));
                        check_runnable(&t, &d, what);
                        /* the values the kernels had built in before they were tuned */
                        ck_assert_msg(get(&t, "COLS_STEP") == 8 && get(&t, "DIRECT_SEG") == 128,
                                      "%s: COLS_STEP %ld, DIRECT_SEG %ld", what,
                                      get(&t, "COLS_STEP"), get(&t, "DIRECT_SEG"));
                        sp_err_free(&err);
                    }
}
END_TEST

/* Without a table entry every derived value follows the vector width: the rusticl / Clover
 * case (preferred width 1) once made SPARSE_NB 64. */
START_TEST(derived_values_follow_the_width) {
    unsetenv("SPARTAN_TUNE");
    const unsigned widths[] = {1, 2, 4, 8, 16};
    for (size_t ty = 0; ty < 2; ty++) {
        for (size_t w = 0; w < 5; w++) {
            unsigned type = ty ? SPARTAN_DEVICE_GPU : SPARTAN_DEVICE_CPU;
            spartan_device_info d = profile(SPARTAN_VENDOR_OTHER, type, widths[w], 1024, 65536);
            sp_tuned t;
            sp_err err = {0};
            ck_assert_msg(sp_tuned_lookup(&d, NULL, 0, &t, &err) == SPARTAN_OK, "width %u: %s",
                          widths[w], sp_err_message(&err));
            long vec = widths[w];
            ck_assert_int_eq(get(&t, "VEC"), vec);
            ck_assert_int_eq(get(&t, "SPARSE_NB"), 64 / vec > 16 ? 16 : 64 / vec);
            ck_assert_int_eq(get(&t, "GEMM_RB"), vec >= 16 ? 8 : 4);
            ck_assert_int_eq(get(&t, "GEMM_NB"), vec >= 8 ? 2 : 1);
            long per = ty ? 4 : 16;
            ck_assert_int_eq(get(&t, "TILE_COLS"), per * vec < 8 ? 8 : per * vec);
            sp_err_free(&err);
        }
    }
}
END_TEST

static int lookup_with(const char *tune, const spartan_device_info *d, sp_tuned *t, sp_err *err) {
    setenv("SPARTAN_TUNE", tune, 1);
    char note[512];
    return sp_tuning_lookup(d, SP_TUNING_OFF, NULL, NULL, t, note, sizeof note, err);
}

static int override_child(void *arg) {
    (void)arg;
    /* an AVX-512 CPU under POCL: the table derives 8 x 2 blocks of 16 from its width */
    spartan_device_info d = profile(SPARTAN_VENDOR_POCL, SPARTAN_DEVICE_CPU, 16, 4096, 65536);
    sp_tuned t;
    sp_err err = {0};
    TH_CHILD_CHECK(lookup_with("VEC=1", &d, &t, &err) == SPARTAN_OK, "%s", sp_err_message(&err));
    TH_CHILD_CHECK(sp_tuned_get(&t, "VEC") == 1 && sp_tuned_get(&t, "GEMM_RB") == 4 &&
                       sp_tuned_get(&t, "GEMM_NB") == 1 && sp_tuned_get(&t, "SPARSE_NB") == 16 &&
                       sp_tuned_get(&t, "TILE_COLS") == 16,
                   "VEC=1 kept values derived from width 16: RB %ld NB %ld SPARSE_NB %ld TC %ld",
                   sp_tuned_get(&t, "GEMM_RB"), sp_tuned_get(&t, "GEMM_NB"),
                   sp_tuned_get(&t, "SPARSE_NB"), sp_tuned_get(&t, "TILE_COLS"));
    /* an explicit value is kept, the others still derive from the override */
    TH_CHILD_CHECK(lookup_with("VEC=4,SPARSE_NB=2", &d, &t, &err) == SPARTAN_OK, "%s",
                   sp_err_message(&err));
    TH_CHILD_CHECK(sp_tuned_get(&t, "SPARSE_NB") == 2 && sp_tuned_get(&t, "GEMM_NB") == 1 &&
                       sp_tuned_get(&t, "TILE_COLS") == 64,
                   "SPARSE_NB %ld GEMM_NB %ld TILE_COLS %ld", sp_tuned_get(&t, "SPARSE_NB"),
                   sp_tuned_get(&t, "GEMM_NB"), sp_tuned_get(&t, "TILE_COLS"));
    /* the sparse kernels' step and segment, at their limits */
    TH_CHILD_CHECK(lookup_with("COLS_STEP=1,DIRECT_SEG=1024", &d, &t, &err) == SPARTAN_OK, "%s",
                   sp_err_message(&err));
    TH_CHILD_CHECK(sp_tuned_get(&t, "COLS_STEP") == 1 && sp_tuned_get(&t, "DIRECT_SEG") == 1024,
                   "COLS_STEP %ld DIRECT_SEG %ld", sp_tuned_get(&t, "COLS_STEP"),
                   sp_tuned_get(&t, "DIRECT_SEG"));
    /* what the device cannot run is refused, naming the variable and the parameter */
    spartan_device_info small = profile(SPARTAN_VENDOR_OTHER, SPARTAN_DEVICE_GPU, 4, 128, 65536);
    const char *bad[] = {"WG=256",          "GEMM_WG=512",    "SPARSE_NB=32", "GEMM_NB=9",
                         "TILE_COLS=40000", "WG=48",          "VEC=32",       "COLS_STEP=1025",
                         "DIRECT_SEG=7",    "DIRECT_SEG=2048"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spartan_status st = lookup_with(bad[i], &small, &t, &err);
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)(strchr(bad[i], '=') - bad[i]), bad[i]);
        TH_CHILD_CHECK(
            st == SPARTAN_STATUS_INVALID_ARGUMENT && strstr(sp_err_message(&err), name) != NULL,
            "SPARTAN_TUNE=%s: %s (%s)", bad[i], spartan_status_name(st), sp_err_message(&err));
    }
    /* WG x VEC floats of local memory: 16 KB at WG 256 x VEC 16 */
    spartan_device_info tight = profile(SPARTAN_VENDOR_OTHER, SPARTAN_DEVICE_GPU, 16, 1024, 8192);
    TH_CHILD_CHECK(lookup_with("VEC=16", &tight, &t, &err) == SPARTAN_OK, "%s",
                   sp_err_message(&err));
    TH_CHILD_CHECK(sp_tuned_get(&t, "WG") * 16 * 4 <= 8192, "WG %ld", sp_tuned_get(&t, "WG"));
    sp_err_free(&err);
    return 0;
}

START_TEST(overrides_rederive_and_refuse) {
    ck_assert_int_eq(th_in_child(override_child, NULL), 0);
}
END_TEST

/* The shipped tuning entries (tuning/NAME.json, embedded): each matches some profile of its
 * class, and wherever one matches, the lookup takes it (nothing ignored) and gives a set the
 * kernels accept; SPARTAN_TUNE still goes over it. */
extern const size_t sp_tuning_shipped_count;
extern const char *const sp_tuning_shipped_names[];

START_TEST(shipped_entries_fit_their_devices) {
    unsetenv("SPARTAN_TUNE");
    const spartan_vendor vendors[] = {SPARTAN_VENDOR_OTHER, SPARTAN_VENDOR_POCL,
                                      SPARTAN_VENDOR_NVIDIA, SPARTAN_VENDOR_AMD,
                                      SPARTAN_VENDOR_INTEL};
    const unsigned types[] = {SPARTAN_DEVICE_CPU, SPARTAN_DEVICE_GPU};
    const unsigned widths[] = {1, 2, 4, 8, 16};
    const size_t wgs[] = {4096, 1024, 256};
    int matched[16] = {0};
    ck_assert_uint_le(sp_tuning_shipped_count, 16);
    for (size_t v = 0; v < sizeof vendors / sizeof vendors[0]; v++)
        for (size_t ty = 0; ty < 2; ty++)
            for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++)
                for (size_t g = 0; g < sizeof wgs / sizeof wgs[0]; g++) {
                    spartan_device_info d =
                        profile(vendors[v], types[ty], widths[w], wgs[g], 65536);
                    sp_tuned t;
                    sp_err err = {0};
                    char note[1024], what[128];
                    snprintf(what, sizeof what, "%s %s width %u, WG %zu",
                             spartan_vendor_name(vendors[v]), ty ? "GPU" : "CPU", widths[w],
                             wgs[g]);
                    ck_assert_msg(sp_tuning_lookup(&d, SP_TUNING_SHIPPED, NULL, NULL, &t, note,
                                                   sizeof note, &err) == SPARTAN_OK,
                                  "%s: %s", what, sp_err_message(&err));
                    ck_assert_msg(!strstr(note, "ignored"), "%s: %s", what, note);
                    check_runnable(&t, &d, what);
                    for (size_t e = 0; e < sp_tuning_shipped_count; e++)
                        if (strstr(note, sp_tuning_shipped_names[e])) matched[e] = 1;
                    sp_err_free(&err);
                }
    for (size_t e = 0; e < sp_tuning_shipped_count; e++)
        ck_assert_msg(matched[e], "%s matches no profile", sp_tuning_shipped_names[e]);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tuned");
    TCase *tc = tcase_create("tuned");
    tcase_add_test(tc, every_width_and_type_gives_a_runnable_set);
    tcase_add_test(tc, derived_values_follow_the_width);
    tcase_add_test(tc, overrides_rederive_and_refuse);
    tcase_add_test(tc, shipped_entries_fit_their_devices);
    suite_add_tcase(s, tc);
    return th_run_suite(s);
}
