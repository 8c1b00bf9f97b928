/* spartan-info: every OpenCL device with its profile, which one SPARTAN_DEVICE selects, the state
 * of the kernel binary cache, and the load time of a context cold and warm.
 *
 *   spartan-info                 devices, the selected one, and a context built on it
 *   spartan-info --json          the same for machines
 *   spartan-info --cache         the cache directory and its entries (--cache-clear empties it)
 *   spartan-info --load-time     context creation cold and warm, medians of --runs N */
#define _XOPEN_SOURCE 700 /* nftw */
#include <cJSON.h>
#include <errno.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/number.h"
#include "spartan/spartan.h"

extern char **environ;

typedef struct {
    const char *device;
    int json, cache, cache_clear, load_time, no_context, runs;
} options;

static void usage(FILE *f) {
    fprintf(f, "usage: spartan-info [--device SEL] [--json] [--no-context]\n"
               "       spartan-info --cache [--cache-clear]\n"
               "       spartan-info --load-time [--runs N] [--device SEL] [--json]\n"
               "SEL: P:D, cpu, gpu, accelerator, or a name substring (default: $SPARTAN_DEVICE)\n");
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void fail(spartan_status st, const char *what) {
    fprintf(stderr, "spartan-info: %s: %s (%s)\n%s\n", what, spartan_status_string(st),
            spartan_status_name(st), spartan_last_error(NULL));
}

static const char *type_string(unsigned t, char *buf, size_t len) {
    buf[0] = '\0';
    if (t & SPARTAN_DEVICE_GPU) strncat(buf, "GPU ", len - strlen(buf) - 1);
    if (t & SPARTAN_DEVICE_CPU) strncat(buf, "CPU ", len - strlen(buf) - 1);
    if (t & SPARTAN_DEVICE_ACCELERATOR) strncat(buf, "accelerator ", len - strlen(buf) - 1);
    if (t & SPARTAN_DEVICE_OTHER) strncat(buf, "other ", len - strlen(buf) - 1);
    size_t n = strlen(buf);
    if (n) buf[n - 1] = '\0';
    return buf;
}

static const char *subgroups_string(spartan_subgroups s) {
    return s == SPARTAN_SUBGROUPS_KHR ? "khr" : s == SPARTAN_SUBGROUPS_INTEL ? "intel" : "none";
}

static void print_device(const spartan_device_info *d, int selected) {
    char types[64];
    printf("%s[%u:%u] %s\n", selected ? "* " : "  ", d->platform_index, d->device_index, d->name);
    printf("      platform      %s (%s)\n", d->platform_name, d->platform_version);
    printf("      vendor        %s (driver says \"%s\")\n", spartan_vendor_name(d->vendor),
           d->vendor_string);
    printf("      type          %s\n", type_string(d->type, types, sizeof types));
    printf("      version       %s; %s; driver %s\n", d->device_version, d->opencl_c_version,
           d->driver_version);
    printf("      compute       %u units at %u MHz\n", d->compute_units, d->clock_mhz);
    printf("      memory        global %.2f GiB, max alloc %.2f GiB, local %.0f KiB (%s)\n",
           (double)d->global_mem_bytes / 1073741824.0, (double)d->max_alloc_bytes / 1073741824.0,
           (double)d->local_mem_bytes / 1024.0, d->local_mem_dedicated ? "dedicated" : "global");
    printf("      work-group    max %zu, item sizes %zux%zux%zu (%u dims)\n",
           d->max_work_group_size, d->max_work_item_sizes[0], d->max_work_item_sizes[1],
           d->max_work_item_sizes[2], d->max_work_item_dims);
    printf("      float vectors preferred %u, native %u; int preferred %u\n",
           d->preferred_vector_width_float, d->native_vector_width_float,
           d->preferred_vector_width_int);
    printf("      features      fp16 %s, fp64 %s, subgroups %s, %u-bit addresses%s%s\n",
           d->fp16 ? "yes" : "no", d->fp64 ? "yes" : "no", subgroups_string(d->subgroups),
           d->address_bits, d->available ? "" : ", UNAVAILABLE",
           d->compiler_available ? "" : ", NO COMPILER");
}

static cJSON *device_json(const spartan_device_info *d, int selected) {
    char types[64];
    cJSON *o = cJSON_CreateObject();
    char id[32];
    snprintf(id, sizeof id, "%u:%u", d->platform_index, d->device_index);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddBoolToObject(o, "selected", selected);
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "platform", d->platform_name);
    cJSON_AddStringToObject(o, "platform_version", d->platform_version);
    cJSON_AddStringToObject(o, "vendor", spartan_vendor_name(d->vendor));
    cJSON_AddStringToObject(o, "vendor_string", d->vendor_string);
    cJSON_AddStringToObject(o, "type", type_string(d->type, types, sizeof types));
    cJSON_AddStringToObject(o, "device_version", d->device_version);
    cJSON_AddStringToObject(o, "opencl_c_version", d->opencl_c_version);
    cJSON_AddStringToObject(o, "driver_version", d->driver_version);
    cJSON_AddNumberToObject(o, "compute_units", d->compute_units);
    cJSON_AddNumberToObject(o, "clock_mhz", d->clock_mhz);
    cJSON_AddNumberToObject(o, "global_mem_bytes", (double)d->global_mem_bytes);
    cJSON_AddNumberToObject(o, "max_alloc_bytes", (double)d->max_alloc_bytes);
    cJSON_AddNumberToObject(o, "local_mem_bytes", (double)d->local_mem_bytes);
    cJSON_AddBoolToObject(o, "local_mem_dedicated", d->local_mem_dedicated);
    cJSON_AddNumberToObject(o, "max_work_group_size", (double)d->max_work_group_size);
    cJSON *sizes = cJSON_AddArrayToObject(o, "max_work_item_sizes");
    for (int i = 0; i < 3; i++)
        cJSON_AddItemToArray(sizes, cJSON_CreateNumber((double)d->max_work_item_sizes[i]));
    cJSON_AddNumberToObject(o, "preferred_vector_width_float", d->preferred_vector_width_float);
    cJSON_AddNumberToObject(o, "native_vector_width_float", d->native_vector_width_float);
    cJSON_AddBoolToObject(o, "fp16", d->fp16);
    cJSON_AddBoolToObject(o, "fp64", d->fp64);
    cJSON_AddStringToObject(o, "subgroups", subgroups_string(d->subgroups));
    cJSON_AddBoolToObject(o, "available", d->available);
    cJSON_AddBoolToObject(o, "compiler_available", d->compiler_available);
    return o;
}

/* Builds a context on the selected device and reports what that took. */
static int context_report(const options *o, cJSON *root) {
    spartan_context_opts co = spartan_context_opts_default();
    co.device = o->device;
    spartan_context *ctx;
    double t0 = now_ms();
    spartan_status st = spartan_context_create(&co, &ctx);
    double ms = now_ms() - t0;
    if (st != SPARTAN_OK) {
        fail(st, "creating a context on the selected device");
        return 1;
    }
    spartan_build_stats bs;
    spartan_context_build_stats(ctx, &bs);
    const spartan_device_info *d = spartan_context_device(ctx);
    spartan_timing timing = SPARTAN_TIMING_EVENTS;
    const char *why = "";
    spartan_context_timing(ctx, &timing, &why);
    if (root) {
        cJSON *c = cJSON_AddObjectToObject(root, "context");
        cJSON_AddNumberToObject(c, "create_ms", ms);
        cJSON_AddNumberToObject(c, "kernel_families", bs.families);
        cJSON_AddNumberToObject(c, "cache_hits", bs.cache_hits);
        cJSON_AddNumberToObject(c, "cache_misses", bs.cache_misses);
        cJSON_AddNumberToObject(c, "cache_rejected", bs.cache_rejected);
        cJSON_AddNumberToObject(c, "cache_writes", bs.cache_writes);
        cJSON_AddStringToObject(c, "cache_dir", bs.cache_enabled ? bs.cache_dir : "");
        cJSON_AddStringToObject(c, "build_options", bs.build_options);
        cJSON_AddStringToObject(c, "tuning", bs.tuning);
        cJSON_AddStringToObject(c, "timing", spartan_timing_name(timing));
        cJSON_AddStringToObject(c, "timing_reason", why);
        cJSON *t = cJSON_AddObjectToObject(c, "tuned");
        const char *name;
        long value;
        for (unsigned i = 0; spartan_context_tuned_at(ctx, i, &name, &value) == SPARTAN_OK; i++)
            cJSON_AddNumberToObject(t, name, (double)value);
        cJSON_AddStringToObject(c, "device", d->name);
        cJSON_AddNumberToObject(c, "validate_ms", bs.validate_ms);
        cJSON_AddBoolToObject(c, "validated_now", bs.validated);
        cJSON *fams = cJSON_AddArrayToObject(c, "families");
        spartan_family_status fs;
        for (unsigned i = 0; spartan_context_family(ctx, i, &fs) == SPARTAN_OK; i++) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "name", fs.name);
            cJSON_AddStringToObject(f, "status", fs.enabled ? "enabled" : "disabled");
            cJSON_AddBoolToObject(f, "essential", fs.essential);
            cJSON_AddBoolToObject(f, "verdict_cached", fs.verdict_cached);
            cJSON_AddStringToObject(f, "why", fs.why);
            if (!fs.enabled) cJSON_AddStringToObject(f, "fallback", fs.fallback);
            cJSON_AddStringToObject(f, "options", fs.options);
            cJSON_AddItemToArray(fams, f);
        }
    } else {
        printf("\ncontext on %u:%u %s: created in %.1f ms\n", d->platform_index, d->device_index,
               d->name, ms);
        printf("  kernels       %u families (cache: %u hit, %u miss, %u rejected, %u written)\n",
               bs.families, bs.cache_hits, bs.cache_misses, bs.cache_rejected, bs.cache_writes);
        printf("  validation    %s in %.1f ms\n",
               bs.validated ? "self-tests run" : "verdicts from the cache", bs.validate_ms);
        spartan_family_status fs;
        for (unsigned i = 0; spartan_context_family(ctx, i, &fs) == SPARTAN_OK; i++) {
            if (fs.enabled)
                printf("    %-12s enabled\n", fs.name);
            else
                printf("    %-12s DISABLED: %s\n                 instead: %s\n", fs.name, fs.why,
                       fs.fallback);
        }
        printf("  cache         %s\n", bs.cache_enabled ? bs.cache_dir : "off");
        printf("  build options %s\n", bs.build_options);
        /* one line per source of the tuned parameters */
        for (const char *l = bs.tuning; *l;) {
            const char *nl = strchr(l, '\n');
            int n = nl ? (int)(nl - l) : (int)strlen(l);
            printf("  %-13s %.*s\n", l == bs.tuning ? "tuned by" : "", n, l);
            l += n + (nl != NULL);
        }
        printf("  timing        %s\n", why);
    }
    spartan_context_destroy(ctx);
    return 0;
}

static int list_devices(const options *o) {
    spartan_device_info *devs;
    size_t n, sel = 0;
    spartan_status st = spartan_device_list(&devs, &n);
    if (st != SPARTAN_OK) {
        fail(st, "listing OpenCL devices");
        return 1;
    }
    const char *selection = o->device ? o->device : getenv("SPARTAN_DEVICE");
    spartan_status sst = spartan_device_select(devs, n, selection, &sel);
    char sel_err[2048] = "";
    if (sst != SPARTAN_OK) snprintf(sel_err, sizeof sel_err, "%s", spartan_last_error(NULL));
    int rc = 0;
    if (o->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "spartan_version", spartan_version_string());
        cJSON_AddStringToObject(root, "selection", selection ? selection : "");
        cJSON *arr = cJSON_AddArrayToObject(root, "devices");
        for (size_t i = 0; i < n; i++)
            cJSON_AddItemToArray(arr, device_json(&devs[i], sst == SPARTAN_OK && i == sel));
        if (sst != SPARTAN_OK) {
            cJSON_AddStringToObject(root, "selection_error", sel_err);
            rc = 1;
        } else if (!o->no_context) {
            rc = context_report(o, root);
        }
        char *text = cJSON_Print(root);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(root);
    } else {
        printf("Spartan %s: %zu OpenCL device%s\n\n", spartan_version_string(), n,
               n == 1 ? "" : "s");
        for (size_t i = 0; i < n; i++) print_device(&devs[i], sst == SPARTAN_OK && i == sel);
        if (sst != SPARTAN_OK) {
            fprintf(stderr, "\nspartan-info: selection '%s': %s\n", selection, sel_err);
            rc = 1;
        } else {
            printf("\nselected (*): %u:%u %s, by %s\n", devs[sel].platform_index,
                   devs[sel].device_index, devs[sel].name,
                   o->device                 ? "--device"
                   : selection && *selection ? "SPARTAN_DEVICE"
                                             : "default (first GPU, else first device)");
            if (!o->no_context) rc = context_report(o, NULL);
        }
    }
    spartan_device_list_free(devs);
    return rc;
}

static int show_cache(const options *o) {
    char dir[1024];
    if (spartan_cache_dir(NULL, dir, sizeof dir) != SPARTAN_OK) {
        printf("kernel cache: off (SPARTAN_CACHE=off or SPARTAN_CACHE_DIR=off)\n");
        return 0;
    }
    if (o->cache_clear) {
        size_t removed;
        spartan_status st = spartan_cache_clear(NULL, &removed);
        if (st != SPARTAN_OK) {
            fail(st, "clearing the cache");
            return 1;
        }
        printf("kernel cache %s: removed %zu entr%s\n", dir, removed, removed == 1 ? "y" : "ies");
        return 0;
    }
    spartan_cache_entry *list;
    size_t n;
    spartan_status st = spartan_cache_list(NULL, &list, &n);
    if (st != SPARTAN_OK) {
        fail(st, "listing the cache");
        return 1;
    }
    uint64_t total = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        total += list[i].bytes;
        bad += !list[i].valid;
    }
    if (o->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "cache_dir", dir);
        cJSON *arr = cJSON_AddArrayToObject(root, "entries");
        for (size_t i = 0; i < n; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "path", list[i].path);
            cJSON_AddStringToObject(e, "label", list[i].label);
            cJSON_AddNumberToObject(e, "bytes", (double)list[i].bytes);
            cJSON_AddNumberToObject(e, "mtime", (double)list[i].mtime);
            cJSON_AddBoolToObject(e, "valid", list[i].valid);
            cJSON_AddStringToObject(e, "problem", list[i].problem);
            cJSON_AddItemToArray(arr, e);
        }
        char *text = cJSON_Print(root);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(root);
    } else {
        printf("kernel cache %s: %zu entr%s, %.1f KiB, %zu invalid\n", dir, n, n == 1 ? "y" : "ies",
               (double)total / 1024.0, bad);
        for (size_t i = 0; i < n; i++) {
            const char *base = strrchr(list[i].path, '/');
            printf("  %.16s... %8.1f KiB  %s%s%s\n", base ? base + 1 : list[i].path,
                   (double)list[i].bytes / 1024.0, list[i].valid ? list[i].label : "INVALID: ",
                   list[i].valid ? "" : list[i].problem, "");
        }
    }
    spartan_cache_list_free(list);
    return 0;
}

/* ---- --load-time ------------------------------------------------------------------------------
 * Each measurement is a fresh process (this program with --load-time-child), so nothing stays
 * warm in memory; the caches are directories under a private temporary root:
 *   cold:   an empty Spartan cache and an empty POCL kernel cache (what a first run sees)
 *   warm:   both filled by an earlier run
 *   driver: the Spartan cache off, the driver's own cache warm (what our cache adds on top) */

static int child_main(void) {
    double t0 = now_ms();
    spartan_context *ctx;
    spartan_status st = spartan_context_create(NULL, &ctx);
    double ms = now_ms() - t0;
    if (st != SPARTAN_OK) {
        fail(st, "creating a context");
        return 1;
    }
    spartan_build_stats bs;
    spartan_context_build_stats(ctx, &bs);
    printf("%.3f %u %u\n", ms, bs.cache_hits, bs.cache_misses + bs.cache_rejected);
    spartan_context_destroy(ctx);
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path) {
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs the child with the given cache settings; returns its context-creation time in ms. */
static int run_child(const char *self, const char *device, const char *spartan_cache,
                     const char *pocl_cache, double *ms, unsigned *hits) {
    size_t nenv = 0;
    while (environ[nenv]) nenv++;
    char **env = calloc(nenv + 5, sizeof *env);
    char e1[1200], e2[1200], e3[600];
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++) {
        if (strncmp(environ[i], "SPARTAN_CACHE", 13) == 0 ||
            strncmp(environ[i], "POCL_CACHE_DIR=", 15) == 0 ||
            strncmp(environ[i], "POCL_KERNEL_CACHE=", 18) == 0 ||
            (device && strncmp(environ[i], "SPARTAN_DEVICE=", 15) == 0))
            continue;
        env[k++] = environ[i];
    }
    snprintf(e1, sizeof e1, "SPARTAN_CACHE_DIR=%s", spartan_cache);
    snprintf(e2, sizeof e2, "POCL_CACHE_DIR=%s", pocl_cache);
    env[k++] = e1;
    env[k++] = e2;
    if (device) {
        snprintf(e3, sizeof e3, "SPARTAN_DEVICE=%s", device);
        env[k++] = e3;
    }
    env[k] = NULL;

    int pipefd[2];
    if (pipe(pipefd) != 0) {
        free(env);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    char *argv[] = {(char *)self, "--load-time-child", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, self, &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        fprintf(stderr, "spartan-info: cannot run %s: %s\n", self, strerror(rc));
        return -1;
    }
    char out[256] = "";
    ssize_t got = read(pipefd[0], out, sizeof out - 1);
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    out[got] = '\0';
    unsigned misses;
    return sscanf(out, "%lf %u %u", ms, hits, &misses) == 3 ? 0 : -1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int load_time(const options *o) {
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "spartan-info: cannot find my own executable\n");
        return 1;
    }
    self[len] = '\0';
    const char *tmp = getenv("TMPDIR");
    char root[1024];
    snprintf(root, sizeof root, "%s/spartan-load-time-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        fprintf(stderr, "spartan-info: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    int runs = o->runs > 0 ? o->runs : 5;
    double *cold = calloc((size_t)runs, sizeof *cold), *warm = calloc((size_t)runs, sizeof *warm);
    double *drv = calloc((size_t)runs, sizeof *drv);
    char sdir[1200], pdir[1200];
    unsigned hits = 0;
    int rc = 0;
    for (int i = 0; i < runs && rc == 0; i++) {
        snprintf(sdir, sizeof sdir, "%s/cold%d-spartan", root, i);
        snprintf(pdir, sizeof pdir, "%s/cold%d-pocl", root, i);
        if (run_child(self, o->device, sdir, pdir, &cold[i], &hits) != 0 || hits != 0) rc = 1;
    }
    /* Fill the warm caches once, then measure. */
    snprintf(sdir, sizeof sdir, "%s/warm-spartan", root);
    snprintf(pdir, sizeof pdir, "%s/warm-pocl", root);
    double dummy;
    if (rc == 0 && run_child(self, o->device, sdir, pdir, &dummy, &hits) != 0) rc = 1;
    unsigned warm_hits = 0;
    for (int i = 0; i < runs && rc == 0; i++) {
        if (run_child(self, o->device, sdir, pdir, &warm[i], &warm_hits) != 0 || warm_hits == 0)
            rc = 1;
    }
    for (int i = 0; i < runs && rc == 0; i++)
        if (run_child(self, o->device, "off", pdir, &drv[i], &hits) != 0) rc = 1;
    rm_rf(root);
    if (rc != 0) {
        fprintf(stderr, "spartan-info: a load-time measurement failed (run spartan-info to see "
                        "whether a context can be created)\n");
    } else {
        double cmin = cold[0], cmax = cold[0], wmin = warm[0], wmax = warm[0];
        for (int i = 1; i < runs; i++) {
            cmin = cold[i] < cmin ? cold[i] : cmin;
            cmax = cold[i] > cmax ? cold[i] : cmax;
            wmin = warm[i] < wmin ? warm[i] : wmin;
            wmax = warm[i] > wmax ? warm[i] : wmax;
        }
        double mc = median(cold, runs), mw = median(warm, runs), md = median(drv, runs);
        if (o->json) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "device", o->device ? o->device : "");
            cJSON_AddNumberToObject(r, "runs", runs);
            cJSON_AddNumberToObject(r, "cold_median_ms", mc);
            cJSON_AddNumberToObject(r, "warm_median_ms", mw);
            cJSON_AddNumberToObject(r, "driver_cache_only_median_ms", md);
            cJSON_AddNumberToObject(r, "cold_over_warm", mc / mw);
            char *text = cJSON_Print(r);
            printf("%s\n", text);
            free(text);
            cJSON_Delete(r);
        } else {
            printf("context creation, %d fresh processes each, median [min, max]:\n", runs);
            printf("  cold  (Spartan and driver caches empty)  %9.1f ms  [%.1f, %.1f]\n", mc, cmin,
                   cmax);
            printf("  warm  (Spartan cache, %u families hit)   %9.1f ms  [%.1f, %.1f]\n", warm_hits,
                   mw, wmin, wmax);
            printf("  driver cache only (Spartan cache off)   %9.1f ms\n", md);
            printf("  cold / warm = %.1fx; driver-only / warm = %.1fx\n", mc / mw, md / mw);
        }
    }
    free(cold);
    free(warm);
    free(drv);
    return rc;
}

int main(int argc, char **argv) {
    options o = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            o.json = 1;
        } else if (strcmp(a, "--cache") == 0) {
            o.cache = 1;
        } else if (strcmp(a, "--cache-clear") == 0) {
            o.cache = o.cache_clear = 1;
        } else if (strcmp(a, "--load-time") == 0) {
            o.load_time = 1;
        } else if (strcmp(a, "--load-time-child") == 0) {
            return child_main();
        } else if (strcmp(a, "--no-context") == 0) {
            o.no_context = 1;
        } else if (strcmp(a, "--runs") == 0 && i + 1 < argc) {
            uint64_t runs;
            if (!sp_parse_u64(argv[++i], 10000, &runs) || runs < 1) {
                fprintf(stderr, "spartan-info: --runs needs a number from 1 to 10000, not '%s'\n",
                        argv[i]);
                return 2;
            }
            o.runs = (int)runs;
        } else if (strcmp(a, "--device") == 0 && i + 1 < argc) {
            o.device = argv[++i];
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "spartan-info: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o.cache) return show_cache(&o);
    if (o.load_time) return load_time(&o);
    return list_devices(&o);
}
