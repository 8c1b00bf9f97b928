/* Device selection: by "P:D", by type ("cpu", "gpu", "accelerator"), or by a name substring.
 * The default is the first GPU, else the first device; simulators (Oclgrind, which reports
 * every device type) come last unless named. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/number.h"
#include "device/device_internal.h"

static const spartan_device_info *at(const spartan_device_info *list, size_t stride, size_t i) {
    return (const spartan_device_info *)((const char *)list + i * stride);
}

static int contains_nocase(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0) return 1;
    return n == 0;
}

static void list_devices(sp_err *err, const spartan_device_info *list, size_t stride,
                         size_t count) {
    sp_err_append(err, "; devices found:");
    for (size_t i = 0; i < count; i++) {
        const spartan_device_info *d = at(list, stride, i);
        sp_err_append(err, " [%u:%u] %s (%s)%s", d->platform_index, d->device_index, d->name,
                      d->platform_name, i + 1 < count ? "," : "");
    }
}

/* Appends to idx the devices that pass keep(), real devices first, then simulators (Oclgrind
 * reports every type: it is taken only when named, or when nothing else is there). */
static void add_matches(const spartan_device_info *list, size_t stride, size_t count,
                        int (*keep)(const spartan_device_info *, const void *), const void *arg,
                        size_t *idx, size_t *n) {
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < count; i++) {
            const spartan_device_info *d = at(list, stride, i);
            int sim = d->vendor == SPARTAN_VENDOR_SIMULATOR;
            if (sim != pass || !keep(d, arg)) continue;
            size_t j = 0;
            while (j < *n && idx[j] != i) j++;
            if (j == *n) idx[(*n)++] = i;
        }
    }
}

static int is_type(const spartan_device_info *d, const void *arg) {
    return (d->type & *(const unsigned *)arg) != 0;
}

static int any(const spartan_device_info *d, const void *arg) {
    (void)d;
    (void)arg;
    return 1;
}

/* A name substring of the device, its vendor string or its platform, or the vendor class
 * spelled as spartan_vendor_name gives it ("pocl", "nvidia", "simulator"). */
static int named(const spartan_device_info *d, const void *arg) {
    const char *sel = arg;
    return contains_nocase(d->name, sel) || contains_nocase(d->vendor_string, sel) ||
           contains_nocase(d->platform_name, sel) ||
           strcasecmp(spartan_vendor_name(d->vendor), sel) == 0;
}

spartan_status sp_device_candidates(const spartan_device_info *list, size_t stride, size_t count,
                                    const char *sel, size_t *idx, size_t *n, sp_err *err) {
    *n = 0;
    if (count == 0)
        return sp_err_set(err, SPARTAN_STATUS_NO_DEVICE, "there is no OpenCL device to select");
    while (sel && isspace((unsigned char)*sel)) sel++;
    if (!sel || !*sel) { /* the default: GPUs, then every other device */
        unsigned gpu = SPARTAN_DEVICE_GPU;
        add_matches(list, stride, count, is_type, &gpu, idx, n);
        /* a simulator claiming to be a GPU goes after the real devices */
        size_t real = 0;
        for (size_t j = 0; j < *n; j++)
            if (at(list, stride, idx[j])->vendor != SPARTAN_VENDOR_SIMULATOR) idx[real++] = idx[j];
        *n = real;
        add_matches(list, stride, count, any, NULL, idx, n);
        return SPARTAN_OK;
    }

    if (isdigit((unsigned char)sel[0]) && strchr(sel, ':')) {
        /* both indices strictly decimal and in range (sscanf's %u would wrap) */
        char pbuf[32];
        const char *colon = strchr(sel, ':');
        uint64_t p64 = 0, d64 = 0;
        size_t plen = (size_t)(colon - sel);
        int ok = plen < sizeof pbuf;
        if (ok) {
            memcpy(pbuf, sel, plen);
            pbuf[plen] = '\0';
            ok =
                sp_parse_u64(pbuf, 0xffffffffu, &p64) && sp_parse_u64(colon + 1, 0xffffffffu, &d64);
        }
        if (!ok)
            return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                              "device selection '%s' is not of the form P:D (platform and device "
                              "indices, as spartan-info lists them)",
                              sel);
        const unsigned p = (unsigned)p64, d = (unsigned)d64;
        for (size_t i = 0; i < count; i++) {
            const spartan_device_info *di = at(list, stride, i);
            if (di->platform_index == p && di->device_index == d) {
                idx[(*n)++] = i;
                return SPARTAN_OK;
            }
        }
        sp_err_set(err, SPARTAN_STATUS_NO_DEVICE, "no device %u:%u", p, d);
        list_devices(err, list, stride, count);
        return SPARTAN_STATUS_NO_DEVICE;
    }

    static const struct {
        const char *word;
        unsigned type;
    } types[] = {{"cpu", SPARTAN_DEVICE_CPU},
                 {"gpu", SPARTAN_DEVICE_GPU},
                 {"accelerator", SPARTAN_DEVICE_ACCELERATOR}};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        if (strcasecmp(sel, types[t].word) != 0) continue;
        add_matches(list, stride, count, is_type, &types[t].type, idx, n);
        if (*n) return SPARTAN_OK;
        sp_err_set(err, SPARTAN_STATUS_NO_DEVICE, "no OpenCL device of type '%s'", sel);
        list_devices(err, list, stride, count);
        return SPARTAN_STATUS_NO_DEVICE;
    }

    add_matches(list, stride, count, named, sel, idx, n);
    if (*n) return SPARTAN_OK;
    sp_err_set(err, SPARTAN_STATUS_NO_DEVICE,
               "no OpenCL device name, vendor, vendor class or platform matches '%s' "
               "(SPARTAN_DEVICE accepts P:D, cpu, gpu, accelerator, a vendor class such as pocl "
               "or nvidia, or a name substring)",
               sel);
    list_devices(err, list, stride, count);
    return SPARTAN_STATUS_NO_DEVICE;
}

spartan_status sp_device_select(const spartan_device_info *list, size_t stride, size_t count,
                                const char *sel, size_t *index, sp_err *err) {
    size_t stack[64], n = 0;
    size_t *idx = count <= 64 ? stack : malloc(count * sizeof *idx);
    if (!idx) return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "device selection");
    spartan_status st = sp_device_candidates(list, stride, count, sel, idx, &n, err);
    if (st == SPARTAN_OK) *index = idx[0];
    if (idx != stack) free(idx);
    return st;
}

spartan_status spartan_device_select(const spartan_device_info *list, size_t count,
                                     const char *selection, size_t *index) {
    sp_err *err = sp_thread_err();
    if (!index || (!list && count))
        return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_device_select: list and index must not be NULL");
    return sp_device_select(list, sizeof *list, count, selection, index, err);
}
