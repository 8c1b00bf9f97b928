/* `spartan-bench portability`: the GEMM, convolution and training benchmarks in a short form on
 * every device found (simulators included) or on those --device names, and one report that sets
 * them side by side (portability_report.c writes it from the records made here).
 *
 * The benchmarks run through their own entry points (bench_gemm, bench_conv, bench_train) into a
 * list of this device's records, so every time is taken and every result checked as in
 * `spartan-bench gemm`, `conv` and `train`; this file only chooses the short form per device and
 * adds to each record what the report needs (which benchmark, the layer, its batch and FLOPs).
 *
 * The short form: the random pattern at 0, 30, 50, 70, 90 % zeros, the three passes, three GEMM
 * layers and two convolutions at their training batch, unless a probe (one dense GEMM of the fc
 * layer) says the device is too slow for that: then each layer's batch is halved until its
 * dense call should take at most PROBE_TARGET_MS. A device below SLOW_GFLOPS trains at batch 16
 * on fewer images. A simulator (Oclgrind) checks correctness only: tiny shapes of awkward sizes,
 * one timed run, no training, and its timings are taken out of the records.
 *
 * What this file does not do: time or check (gemm.c, conv.c, train.c) or write the report. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "patterns.h"

#define PROBE_TARGET_MS 100.0 /* a dense call of the short form takes at most about this long */
#define SLOW_GFLOPS     5.0   /* below: training at batch 16 on fewer images */
#define MAX_DEVICES     16

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A GEMM layer at its training batch: M = batch x rows_per_image. */
typedef struct gemm_layer {
    const char *layer;
    size_t batch, rows_per_image, n, k;
} gemm_layer;

static const gemm_layer gemm_layers[] = {
    {"fc 784->512", 128, 1, 512, 784},
    {"conv 28x28 32->32", 64, 784, 32, 288},
    {"conv 14x14 64->64", 64, 196, 64, 576},
};
static const gemm_layer gemm_quick[] = {{"fc 784->512", 128, 1, 512, 784}};
static const gemm_layer gemm_tiny[] = {
    {"tiny", 1, 33, 20, 40}, {"tiny", 1, 70, 9, 27}, {"tiny", 1, 129, 65, 100}};

typedef struct conv_layer {
    const char *layer;
    spartan_window w; /* batch, in_h, in_w, in_c, k_h, k_w, stride, pad */
    size_t out_c;
} conv_layer;

static const conv_layer conv_layers[] = {
    {"vgg-small conv2", {64, 28, 28, 32, 3, 3, 1, 1}, 32},
    {"vgg-small conv4", {64, 14, 14, 64, 3, 3, 1, 1}, 64},
};
static const conv_layer conv_quick[] = {{"vgg-small conv4", {8, 14, 14, 64, 3, 3, 1, 1}, 64}};
static const conv_layer conv_tiny[] = {{"tiny conv", {2, 6, 7, 3, 3, 3, 1, 1}, 5},
                                       {"tiny conv s2", {1, 9, 8, 4, 3, 3, 2, 1}, 6}};

/* Presets trained, with their --limit on a normal and on a slow device. */
typedef struct train_preset {
    const char *model;
    size_t limit, slow_limit;
} train_preset;

static const train_preset train_presets[] = {{"mlp", 10240, 256}, {"vgg-small", 2560, 32}};

static const double sparsities[] = {0, .3, .5, .7, .9};
static const double sparsities_short[] = {0, .5, .7, .9}; /* --quick and simulators */

/* What the records of one shape get: the layer without its batch, the batch, FLOPs per call. */
typedef struct shape_note {
    char label[48];
    char layer[40];
    size_t batch;
    double flops;
} shape_note;

/* One device's run: its short form and what happened. */
typedef struct port_run {
    const bench_port_opts *o;
    bench_dev d;
    int sim, slow;
    double probe_gflops; /* NAN: not probed (simulator) or the probe failed */
    bench_opts gemm, conv;
    shape_note notes[2 * BENCH_MAX_SHAPES];
    size_t nnotes;
    cJSON *failed; /* names of the benchmarks that failed */
} port_run;

/* The largest power-of-two fraction of batch whose dense call should take at most the target
 * at the probe's rate (full_flops: at the full batch). */
static size_t scaled_batch(const port_run *r, size_t batch, double full_flops) {
    if (r->sim || r->o->quick || !isfinite(r->probe_gflops)) return batch;
    size_t b = batch;
    while (b > 1 &&
           full_flops * (double)b / (double)batch / (r->probe_gflops * 1e6) > PROBE_TARGET_MS)
        b /= 2;
    return b;
}

static void note(port_run *r, const char *label, const char *layer, size_t batch, double flops) {
    if (r->nnotes == COUNT(r->notes)) return;
    shape_note *n = &r->notes[r->nnotes++];
    memset(n, 0, sizeof *n); /* label may be r's own: strncpy, not snprintf (restrict) */
    strncpy(n->label, label, sizeof n->label - 1);
    strncpy(n->layer, layer, sizeof n->layer - 1);
    n->batch = batch;
    n->flops = flops;
}

/* The GEMM and convolution options of the device's short form. */
static void plan_shapes(port_run *r) {
    const int sim = r->sim, quick = r->o->quick;
    bench_opts *g = &r->gemm, *c = &r->conv;
    const gemm_layer *gl = sim ? gemm_tiny : quick ? gemm_quick : gemm_layers;
    size_t ngl = sim ? COUNT(gemm_tiny) : quick ? COUNT(gemm_quick) : COUNT(gemm_layers);
    const conv_layer *cl = sim ? conv_tiny : quick ? conv_quick : conv_layers;
    size_t ncl = sim ? COUNT(conv_tiny) : quick ? COUNT(conv_quick) : COUNT(conv_layers);
    bench_opts *both[2] = {g, c};
    for (int k = 0; k < 2; k++) {
        bench_opts *b = both[k];
        b->seed = r->o->has_seed ? r->o->seed : 42;
        b->runs = sim ? 1 : r->o->runs;
        b->warmup = sim ? 1 : r->o->warmup;
        b->no_openblas = 1;
        b->no_clblast = sim || quick || r->o->no_clblast;
        b->passes = (1u << PASS_COUNT) - 1;
        b->patterns = 1u << PAT_RANDOM;
        const double *s = sim || quick ? sparsities_short : sparsities;
        b->nsparsities = sim || quick ? COUNT(sparsities_short) : COUNT(sparsities);
        memcpy(b->sparsities, s, b->nsparsities * sizeof *s);
    }
    for (size_t i = 0; i < ngl; i++) {
        bench_shape *s = &g->shapes[g->nshapes++];
        double full = 2.0 * (double)(gl[i].batch * gl[i].rows_per_image * gl[i].n * gl[i].k);
        size_t b = scaled_batch(r, gl[i].batch, full);
        *s = (bench_shape){b * gl[i].rows_per_image, gl[i].n, gl[i].k, ""};
        if (sim)
            snprintf(s->label, sizeof s->label, "tiny %zux%zux%zu", s->m, s->n, s->k);
        else
            snprintf(s->label, sizeof s->label, "%s b%zu", gl[i].layer, b);
        note(r, s->label, sim ? s->label : gl[i].layer, b,
             2.0 * (double)s->m * (double)s->n * (double)s->k);
    }
    for (size_t i = 0; i < ncl; i++) {
        bench_conv_shape *s = &c->convs[c->nconvs++];
        s->w = cl[i].w;
        s->out_c = cl[i].out_c;
        const size_t oh = spartan_window_out_h(&s->w), ow = spartan_window_out_w(&s->w);
        const double per_image =
            2.0 * (double)(oh * ow * s->w.k_h * s->w.k_w * s->w.in_c) * (double)s->out_c;
        s->w.batch = scaled_batch(r, s->w.batch, per_image * (double)s->w.batch);
        snprintf(s->label, sizeof s->label, "%s b%zu", cl[i].layer, s->w.batch);
        note(r, s->label, cl[i].layer, s->w.batch, per_image * (double)s->w.batch);
    }
}

typedef struct probe_job {
    spartan_context *ctx;
    spartan_tensor *a, *b, *c;
} probe_job;

static int probe_call(void *arg) {
    probe_job *j = arg;
    return spartan_gemm_dense(j->ctx, SPARTAN_GEMM_OWN, 0, 0, 1.0f, j->a, j->b, 0.0f, j->c) !=
           SPARTAN_OK;
}

/* A dense GEMM of the fc layer on the own kernel (a warm-up, then the median of three calls):
 * the rate the short form is scaled by. NAN when it fails. */
static double probe(const bench_dev *d) {
    const size_t m = 128, n = 512, k = 784;
    probe_job j = {d->ctx, NULL, NULL, NULL};
    double ms;
    spartan_status st = spartan_tensor_create_2d(j.ctx, m, k, &j.a);
    if (!st) st = spartan_tensor_create_2d(j.ctx, k, n, &j.b);
    if (!st) st = spartan_tensor_create_2d(j.ctx, m, n, &j.c);
    if (!st) st = spartan_tensor_fill(j.a, 0.5f);
    if (!st) st = spartan_tensor_fill(j.b, 0.25f);
    const bench_plan plan = {1, 3, 3, 0.0};
    bench_stat stat = {0};
    int rc = st || bench_time_device(d, &plan, probe_call, &j, &stat);
    ms = stat.median_ms;
    spartan_tensor_destroy(j.a);
    spartan_tensor_destroy(j.b);
    spartan_tensor_destroy(j.c);
    if (rc || !(ms > 0.0)) {
        bench_report_status(d, st, "the probe GEMM");
        return NAN;
    }
    return 2.0 * (double)(m * n * k) / (ms * 1e6);
}

/* The nominal peak GFLOP/s where the profile gives it (CPU devices of POCL and Intel: compute
 * units x clock x float lanes x 2), else NAN; how says how, or why it is unknown. */
static double nominal_peak(const spartan_device_info *i, char *how, size_t len) {
    const unsigned lanes = i->native_vector_width_float;
    if (!(i->type & SPARTAN_DEVICE_CPU) || i->vendor == SPARTAN_VENDOR_SIMULATOR ||
        (i->vendor != SPARTAN_VENDOR_POCL && i->vendor != SPARTAN_VENDOR_INTEL) || lanes < 2 ||
        !i->clock_mhz || !i->compute_units) {
        snprintf(how, len,
                 "unknown: the profile does not give the lanes per compute unit and a clock "
                 "they run at");
        return NAN;
    }
    snprintf(how, len,
             "%u CU x %u MHz x %u float lanes x 2 (one FMA a lane a cycle): nominal; hardware "
             "threads count as cores, a core with two FMA units does twice",
             i->compute_units, i->clock_mhz, lanes);
    return 2.0 * (double)i->compute_units * (double)i->clock_mhz * 1e-3 * (double)lanes;
}

/* "POCL 1:0", "rusticl 2:0": the report's name of a device. */
static void device_label(const spartan_device_info *i, const char *id, char *buf, size_t len) {
    char first[32];
    const char *p = i->platform_name;
    size_t n = strcspn(p, " (");
    snprintf(first, sizeof first, "%.*s", (int)(n < sizeof first ? n : sizeof first - 1), p);
    snprintf(buf, len, "%s %s", i->vendor == SPARTAN_VENDOR_POCL ? "POCL" : first, id);
}

static const char *type_text(unsigned type) {
    if (type & SPARTAN_DEVICE_GPU && type & SPARTAN_DEVICE_CPU) return "GPU, CPU, accelerator";
    if (type & SPARTAN_DEVICE_GPU) return "GPU";
    if (type & SPARTAN_DEVICE_CPU) return "CPU";
    return type & SPARTAN_DEVICE_ACCELERATOR ? "accelerator" : "other";
}

/* The profile's fields the records carry, by type and offset. */
typedef enum { F_TEXT, F_UNSIGNED, F_U64, F_SIZE, F_BOOL } field_kind;
#define FIELD(key, member, kind)                                                                   \
    { key, offsetof(spartan_device_info, member), kind }
static const struct {
    const char *key;
    size_t offset;
    field_kind kind;
} profile_fields[] = {
    FIELD("platform", platform_name, F_TEXT),
    FIELD("platform_version", platform_version, F_TEXT),
    FIELD("device_version", device_version, F_TEXT),
    FIELD("driver_version", driver_version, F_TEXT),
    FIELD("vendor_string", vendor_string, F_TEXT),
    FIELD("compute_units", compute_units, F_UNSIGNED),
    FIELD("clock_mhz", clock_mhz, F_UNSIGNED),
    FIELD("preferred_vector_width_float", preferred_vector_width_float, F_UNSIGNED),
    FIELD("native_vector_width_float", native_vector_width_float, F_UNSIGNED),
    FIELD("local_mem_bytes", local_mem_bytes, F_U64),
    FIELD("local_mem_dedicated", local_mem_dedicated, F_BOOL),
    FIELD("global_mem_bytes", global_mem_bytes, F_U64),
    FIELD("max_alloc_bytes", max_alloc_bytes, F_U64),
    FIELD("max_work_group_size", max_work_group_size, F_SIZE),
};

static void add_field(cJSON *rec, const spartan_device_info *i, size_t f) {
    const char *p = (const char *)i + profile_fields[f].offset, *key = profile_fields[f].key;
    unsigned u;
    uint64_t v;
    size_t z;
    int b;
    switch (profile_fields[f].kind) {
    case F_TEXT:
        cJSON_AddStringToObject(rec, key, p);
        break;
    case F_UNSIGNED:
        memcpy(&u, p, sizeof u);
        cJSON_AddNumberToObject(rec, key, u);
        break;
    case F_U64:
        memcpy(&v, p, sizeof v);
        cJSON_AddNumberToObject(rec, key, (double)v);
        break;
    case F_SIZE:
        memcpy(&z, p, sizeof z);
        cJSON_AddNumberToObject(rec, key, (double)z);
        break;
    case F_BOOL:
        memcpy(&b, p, sizeof b);
        cJSON_AddBoolToObject(rec, key, b);
        break;
    }
}

/* The device's profile record: what spartan-info shows, the tuned parameters the context uses,
 * the nominal peak and the short form. d->ctx may be NULL (the context was not created). */
static cJSON *profile_record(const bench_dev *d, const port_run *r, const char *date) {
    const spartan_device_info *i = d->info;
    char buf[256];
    cJSON *rec = bench_record(d, date);
    cJSON_AddStringToObject(rec, "bench", "profile");
    cJSON_AddStringToObject(rec, "command", r->o->command ? r->o->command : "");
    device_label(i, d->id, buf, sizeof buf);
    cJSON_AddStringToObject(rec, "label", buf);
    cJSON_AddStringToObject(rec, "vendor", spartan_vendor_name(i->vendor));
    cJSON_AddStringToObject(rec, "type", type_text(i->type));
    for (size_t f = 0; f < COUNT(profile_fields); f++) add_field(rec, i, f);
    cJSON_AddBoolToObject(rec, "simulator", r->sim);
    char how[200];
    bench_json_number(rec, "peak_gflops", nominal_peak(i, how, sizeof how));
    cJSON_AddStringToObject(rec, "peak_how", how);
    if (!d->ctx) return rec;
    cJSON_AddStringToObject(rec, "timing_why", d->forced ? "--wall-clock" : d->timing_why);
    spartan_build_stats bs;
    if (spartan_context_build_stats(d->ctx, &bs) == SPARTAN_OK)
        cJSON_AddStringToObject(rec, "tuning_source", bs.tuning);
    cJSON *tuned = cJSON_AddObjectToObject(rec, "tuned");
    const char *name;
    long value;
    for (unsigned k = 0; spartan_context_tuned_at(d->ctx, k, &name, &value) == SPARTAN_OK; k++)
        cJSON_AddNumberToObject(tuned, name, (double)value);
    cJSON_AddStringToObject(rec, "dense_best",
                            spartan_gemm_best(d->ctx) == SPARTAN_GEMM_OWN ? "own" : "clblast");
    bench_json_number(rec, "probe_gflops", r->probe_gflops);
    cJSON_AddBoolToObject(rec, "slow", r->slow);
    cJSON_AddBoolToObject(rec, "clblast", !r->gemm.no_clblast);
    return rec;
}

static const char *const timing_keys[] = {"median_ms",
                                          "min_ms",
                                          "max_ms",
                                          "runs",
                                          "best_dense_ms",
                                          "speedup",
                                          "fraction_of_ideal",
                                          "speedup_vs_openblas"};

/* Moves the records of one benchmark from its list to out, each with "bench" and, for GEMMs and
 * convolutions, the layer, batch and FLOPs of its shape (and GFLOP/s where timed); a simulator's
 * lose their timings. */
static void adopt(port_run *r, bench_out *from, bench_out *out, const char *bench) {
    cJSON *rec;
    while ((rec = cJSON_DetachItemFromArray(from->records, 0))) {
        cJSON_AddStringToObject(rec, "bench", bench);
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(rec, "label");
        for (size_t i = 0; cJSON_IsString(label) && i < r->nnotes; i++) {
            const shape_note *n = &r->notes[i];
            if (strcmp(n->label, label->valuestring)) continue;
            cJSON_AddStringToObject(rec, "layer", n->layer);
            cJSON_AddNumberToObject(rec, "batch", (double)n->batch);
            cJSON_AddNumberToObject(rec, "flops", n->flops);
            const cJSON *ms = cJSON_GetObjectItemCaseSensitive(rec, "median_ms");
            if (!r->sim && cJSON_IsNumber(ms) && ms->valuedouble > 0.0)
                cJSON_AddNumberToObject(rec, "gflops", n->flops / (ms->valuedouble * 1e6));
            break;
        }
        if (r->sim) {
            for (size_t k = 0; k < COUNT(timing_keys); k++)
                cJSON_DeleteItemFromObjectCaseSensitive(rec, timing_keys[k]);
            cJSON_AddBoolToObject(rec, "correctness_only", 1);
        }
        bench_out_add(out, rec);
    }
}

/* The host's 1-minute load average (Linux /proc/loadavg), NAN where it cannot be read: the
 * report says how busy the machine was, since the timings of a shared host depend on it. */
static double host_load(void) {
    double load = NAN;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &load) != 1) load = NAN;
    if (f) fclose(f);
    return load;
}

/* Runs one benchmark of the short form into out; its name goes to r->failed when it fails. */
static void run_bench(port_run *r, bench_out *out, const char *date, const char *bench,
                      const bench_train_opts *t) {
    bench_out mine;
    bench_out_open(&mine, NULL, NULL, NULL);
    printf("\n==== portability %s %s: %s\n", r->d.id, r->d.info->name, bench);
    fflush(stdout);
    int rc = t                        ? bench_train(&r->d, t, &mine, date)
             : !strcmp(bench, "gemm") ? bench_gemm(&r->d, &r->gemm, &mine, date)
                                      : bench_conv(&r->d, &r->conv, &mine, date);
    if (rc) cJSON_AddItemToArray(r->failed, cJSON_CreateString(bench));
    adopt(r, &mine, out, bench);
    bench_out_close(&mine);
}

/* The short form on one device (sel: a selection string). Returns nonzero when the context
 * could not be created or a benchmark failed or was wrong. */
static int run_device(const bench_port_opts *o, const char *sel, const spartan_device_info *known,
                      bench_out *out, const char *date) {
    static port_run r; /* bench_opts is large */
    memset(&r, 0, sizeof r);
    r.o = o;
    r.failed = cJSON_CreateArray();
    r.probe_gflops = NAN;
    double t0 = bench_now_ms();
    if (bench_dev_open(&r.d, sel, o->wall_clock)) {
        /* the profile from the list (or the selection's name alone), and the failure */
        static spartan_device_info unknown;
        bench_dev d = {0};
        d.info = known;
        if (known) {
            snprintf(d.id, sizeof d.id, "%u:%u", known->platform_index, known->device_index);
        } else {
            memset(&unknown, 0, sizeof unknown);
            snprintf(unknown.name, sizeof unknown.name, "no device (--device %s)", sel);
            snprintf(unknown.platform_name, sizeof unknown.platform_name, "%s", sel);
            snprintf(d.id, sizeof d.id, "%.*s", (int)sizeof d.id - 1, sel);
            d.info = &unknown;
        }
        r.sim = d.info->vendor == SPARTAN_VENDOR_SIMULATOR;
        cJSON *rec = profile_record(&d, &r, date);
        cJSON_AddItemToArray(r.failed, cJSON_CreateString("context"));
        cJSON_AddItemToObject(rec, "failed", r.failed);
        bench_out_add(out, rec);
        return 1;
    }
    r.sim = r.d.info->vendor == SPARTAN_VENDOR_SIMULATOR;
    if (!r.sim) r.probe_gflops = probe(&r.d);
    r.slow = !r.sim && isfinite(r.probe_gflops) && r.probe_gflops < SLOW_GFLOPS;
    plan_shapes(&r);
    cJSON *profile = profile_record(&r.d, &r, date);
    bench_json_number(profile, "load_start", host_load());
    cJSON_AddNumberToObject(profile, "host_cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    bench_out_add(out, profile);
    printf("\n==== portability %s %s: %s; probe %.2f GFLOP/s\n", r.d.id, r.d.info->name,
           r.sim    ? "a simulator: correctness only (tiny shapes, no timings, no training)"
           : r.slow ? "slow: shapes scaled down, training at batch 16 on few images"
                    : "the short form",
           r.probe_gflops);
    run_bench(&r, out, date, "gemm", NULL);
    run_bench(&r, out, date, "conv", NULL);
    for (size_t i = 0; !r.sim && i < COUNT(train_presets) && (i == 0 || !o->quick); i++) {
        static bench_train_opts t;
        bench_train_opts_init(&t);
        t.models[0] = train_presets[i].model;
        t.nmodels = 1;
        t.data = o->data;
        t.seed = o->has_seed ? o->seed : t.seed;
        t.no_pytorch = 1;
        t.batch = r.slow ? 16 : t.batch;
        t.limit = o->quick || r.slow ? train_presets[i].slow_limit : train_presets[i].limit;
        t.test_limit = r.slow ? 32 : o->quick ? 128 : 1000;
        run_bench(&r, out, date, "train", &t);
    }
    cJSON_AddItemToObject(profile, "failed", r.failed);
    cJSON_AddNumberToObject(profile, "seconds", (bench_now_ms() - t0) / 1e3);
    bench_json_number(profile, "load_end", host_load());
    int rc = cJSON_GetArraySize(r.failed) > 0;
    bench_dev_close(&r.d);
    return rc;
}

/* The records of an earlier run (--from FILE), or NULL after a message. */
static cJSON *read_records(const char *path) {
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long len = -1;
    if (f && !fseek(f, 0, SEEK_END) && (len = ftell(f)) >= 0 && len < (1L << 28) &&
        !fseek(f, 0, SEEK_SET) && (text = malloc((size_t)len + 1)) &&
        fread(text, 1, (size_t)len, f) == (size_t)len)
        text[len] = '\0';
    else
        len = -1;
    if (f) fclose(f);
    cJSON *records = len >= 0 ? cJSON_Parse(text) : NULL;
    free(text);
    if (!cJSON_IsArray(records)) {
        fprintf(stderr, "spartan-bench: %s is not the JSON of a portability run\n", path);
        cJSON_Delete(records);
        return NULL;
    }
    return records;
}

int bench_portability(const bench_port_opts *o) {
    if (mkdir(o->out_dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "spartan-bench: cannot make %s: %s\n", o->out_dir, strerror(errno));
        return 1;
    }
    if (o->from) { /* the report again, from the records */
        cJSON *records = read_records(o->from);
        const cJSON *date =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(records, 0), "date");
        int rc = !records ||
                 bench_port_report(o, records, cJSON_IsString(date) ? date->valuestring : "");
        cJSON_Delete(records);
        if (!rc) printf("report %s/portability.md from %s\n", o->out_dir, o->from);
        return rc;
    }
    char json[1024];
    snprintf(json, sizeof json, "%s/portability.json", o->out_dir);
    static bench_pick sel[MAX_DEVICES];
    int n = bench_devices(o->devices, 1, sel, MAX_DEVICES);
    if (n <= 0) {
        if (n == 0) fprintf(stderr, "spartan-bench: no device to run on\n");
        return 1;
    }
    bench_out out;
    char date[64];
    if (bench_out_start(&out, o->json_path ? o->json_path : json, NULL, NULL, date, sizeof date))
        return 1;
    double t0 = bench_now_ms();
    int rc = 0;
    for (int i = 0; i < n; i++)
        rc |= run_device(o, sel[i].sel, sel[i].known ? &sel[i].info : NULL, &out, date);
    printf("\n");
    if (bench_port_report(o, out.records, date)) rc = 1;
    const char *path = out.json_path;
    if (bench_out_close(&out)) rc = 1;
    printf("\ntotal %.1f s; report %s/portability.md; JSON %s\n", (bench_now_ms() - t0) / 1e3,
           o->out_dir, path);
    return rc ? 3 : 0;
}
