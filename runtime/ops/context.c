/* spartan_context_create: the devices the selection admits, in order, each opened (program/:
 * OpenCL context, queue, kernels built) and its kernel families validated (selftest.c), until
 * one works. It lives in ops/ because the validation runs the operations. */
#include <stdlib.h>

#include "core/log.h"
#include "ops/selftest.h"

/* Errors that would be the same on every device: no point trying the next one. */
static int stops_here(spartan_status st) {
    return st == SPARTAN_STATUS_INVALID_ARGUMENT || st == SPARTAN_STATUS_OUT_OF_HOST_MEMORY ||
           st == SPARTAN_STATUS_KERNEL_SOURCE;
}

spartan_status spartan_context_create(const spartan_context_opts *opts, spartan_context **out) {
    sp_err *err = sp_thread_err();
    if (!out)
        return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_context_create: out must not be NULL");
    *out = NULL;
    spartan_context_opts o = opts ? *opts : spartan_context_opts_default();
    const char *selection = o.device ? o.device : getenv("SPARTAN_DEVICE");
    sp_device *devs;
    size_t n;
    spartan_status st = sp_device_enumerate(&devs, &n, err);
    if (st != SPARTAN_OK) return st;
    size_t *idx = malloc(n * sizeof *idx), ncand = 0;
    if (!idx) {
        free(devs);
        return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "device candidates");
    }
    st = sp_device_candidates(&devs[0].info, sizeof devs[0], n, selection, idx, &ncand, err);
    sp_err first = {0};
    spartan_status first_st = st;
    for (size_t c = 0; st == SPARTAN_OK && c < ncand; c++) {
        const sp_device *dev = &devs[idx[c]];
        spartan_context *ctx = NULL;
        sp_err e = {0};
        spartan_status cst = sp_context_open(&o, dev, &ctx, &e);
        if (cst == SPARTAN_OK) cst = sp_selftest_run(ctx, &e);
        if (cst == SPARTAN_OK) {
            if (c > 0)
                sp_log(SPARTAN_LOG_WARN, "using device %u:%u %s after: %s",
                       dev->info.platform_index, dev->info.device_index, dev->info.name,
                       sp_err_message(&first));
            sp_err_free(&e);
            sp_err_free(&first);
            free(idx);
            free(devs);
            *out = ctx;
            return SPARTAN_OK;
        }
        spartan_context_destroy(ctx);
        if (c + 1 < ncand && !stops_here(cst))
            sp_log(SPARTAN_LOG_WARN, "device %u:%u %s failed, trying the next one: %s",
                   dev->info.platform_index, dev->info.device_index, dev->info.name,
                   sp_err_message(&e));
        if (c == 0) {
            first_st = cst;
            sp_err_copy(&first, &e);
        } else {
            sp_err_append(&first, "\n(then tried device %u:%u %s: %s)", dev->info.platform_index,
                          dev->info.device_index, dev->info.name, sp_err_message(&e));
        }
        sp_err_free(&e);
        if (stops_here(cst)) break;
    }
    if (st == SPARTAN_OK) sp_err_set(err, first_st, "%s", sp_err_message(&first));
    sp_err_free(&first);
    free(idx);
    free(devs);
    return first_st;
}
