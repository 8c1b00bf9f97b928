/* Device selection: by "P:D", by type ("cpu", "gpu", "accelerator"), or by a name substring.
 * The default is the first GPU, else the first device; simulators (Oclgrind, which reports
 * every device type) come last unless named. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* First match of type bits, preferring real devices over simulators. */
static int first_of_type(const spartan_device_info *list, size_t stride, size_t count,
                         unsigned type, size_t *index) {
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < count; i++) {
            const spartan_device_info *d = at(list, stride, i);
            int sim = d->vendor == SPARTAN_VENDOR_SIMULATOR;
            if ((d->type & type) && sim == pass) {
                *index = i;
                return 1;
            }
        }
    }
    return 0;
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

spartan_status sp_device_select(const spartan_device_info *list, size_t stride, size_t count,
                                const char *sel, size_t *index, sp_err *err) {
    if (count == 0)
        return sp_err_set(err, SPARTAN_STATUS_NO_DEVICE, "there is no OpenCL device to select");
    while (sel && isspace((unsigned char)*sel)) sel++;
    if (!sel || !*sel) {
        if (first_of_type(list, stride, count, SPARTAN_DEVICE_GPU, index)) {
            if (at(list, stride, *index)->vendor != SPARTAN_VENDOR_SIMULATOR) return SPARTAN_OK;
        }
        /* No real GPU: the first real device, else the first device. */
        for (size_t i = 0; i < count; i++) {
            if (at(list, stride, i)->vendor != SPARTAN_VENDOR_SIMULATOR) {
                *index = i;
                return SPARTAN_OK;
            }
        }
        *index = 0;
        return SPARTAN_OK;
    }

    unsigned p, d;
    char tail;
    if (isdigit((unsigned char)sel[0]) && strchr(sel, ':')) {
        if (sscanf(sel, "%u:%u%c", &p, &d, &tail) != 2) {
            return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                              "device selection '%s' is not of the form P:D (platform and device "
                              "indices, as spartan-info lists them)",
                              sel);
        }
        for (size_t i = 0; i < count; i++) {
            const spartan_device_info *di = at(list, stride, i);
            if (di->platform_index == p && di->device_index == d) {
                *index = i;
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
        if (first_of_type(list, stride, count, types[t].type, index)) return SPARTAN_OK;
        sp_err_set(err, SPARTAN_STATUS_NO_DEVICE, "no OpenCL device of type '%s'", sel);
        list_devices(err, list, stride, count);
        return SPARTAN_STATUS_NO_DEVICE;
    }

    for (size_t i = 0; i < count; i++) {
        const spartan_device_info *di = at(list, stride, i);
        if (contains_nocase(di->name, sel) || contains_nocase(di->vendor_string, sel) ||
            contains_nocase(di->platform_name, sel)) {
            *index = i;
            return SPARTAN_OK;
        }
    }
    sp_err_set(err, SPARTAN_STATUS_NO_DEVICE,
               "no OpenCL device name, vendor or platform contains '%s' (SPARTAN_DEVICE accepts "
               "P:D, cpu, gpu, accelerator, or a name substring)",
               sel);
    list_devices(err, list, stride, count);
    return SPARTAN_STATUS_NO_DEVICE;
}

spartan_status spartan_device_select(const spartan_device_info *list, size_t count,
                                     const char *selection, size_t *index) {
    sp_err *err = sp_thread_err();
    if (!index || (!list && count))
        return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_device_select: list and index must not be NULL");
    return sp_device_select(list, sizeof *list, count, selection, index, err);
}
