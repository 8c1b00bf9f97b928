/* The option lists (shapes, sparsities, passes, patterns), the report header, and the JSON and
 * CSV files. The JSON is one list of flat records; the CSV has one line per table row. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "core/number.h"
#include "patterns.h"

static const char *pass_names[PASS_COUNT] = {"fwd", "bwd_input", "bwd_weight"};

const char *bench_pass_name(bench_pass p) {
    return (unsigned)p < PASS_COUNT ? pass_names[p] : "?";
}

int bench_parse_shape(const char *text, bench_shape *out) {
    uint64_t d[3]; /* M, N, K: 1 to 2^32 - 1 each (the kernels' sizes are 32-bit) */
    const char *p = text;
    for (int i = 0; i < 3; i++) {
        char part[24];
        size_t len = strcspn(p, "x");
        if (len >= sizeof part || (p[len] == 'x') != (i < 2)) return 1;
        memcpy(part, p, len);
        part[len] = '\0';
        if (!sp_parse_u64(part, UINT32_MAX, &d[i]) || d[i] == 0) return 1;
        p += len + 1;
    }
    out->m = (size_t)d[0];
    out->n = (size_t)d[1];
    out->k = (size_t)d[2];
    snprintf(out->label, sizeof out->label, "custom");
    return 0;
}

int bench_parse_sparsities(const char *text, double *out, size_t max) {
    size_t n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || v < 0.0 || v > 100.0 || n == max) return -1;
        out[n++] = v / 100.0;
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    return (int)n;
}

/* Splits a comma list and ORs the bit of each name found by lookup (-1: unknown). */
static unsigned parse_names(const char *text, int (*lookup)(const char *)) {
    unsigned bits = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int i = lookup(tok);
        if (i < 0) return 0;
        bits |= 1u << i;
    }
    return bits;
}

static int pass_lookup(const char *name) {
    for (int i = 0; i < PASS_COUNT; i++)
        if (strcmp(name, pass_names[i]) == 0) return i;
    return -1;
}

static int pattern_lookup(const char *name) {
    int k = pat_parse(name);
    return k == PAT_DEADROWS ? -1 : k; /* deadrows is a test pattern */
}

unsigned bench_parse_passes(const char *text) {
    return parse_names(text, pass_lookup);
}

unsigned bench_parse_patterns(const char *text) {
    return parse_names(text, pattern_lookup);
}

void bench_date(char *buf, size_t len) {
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
}

void bench_print_header(const bench_dev *d, const char *what, const char *date) {
    const spartan_device_info *i = d->info;
    printf("spartan-bench %s, Spartan %s, %s\n", what, spartan_version_string(), date);
    printf("device   %s %s (%s; %u compute units, %u MHz)\n", d->id, i->name,
           spartan_vendor_name(i->vendor), i->compute_units, i->clock_mhz);
    printf("driver   %s; %s\n", i->platform_version, i->driver_version);
    bench_print_timing(d, "timing", "the whole call sequence");
    printf("host     OpenBLAS %s, %d thread%s (reference line, and the reference results)\n",
           host_blas_core(), host_blas_threads(), host_blas_threads() == 1 ? "" : "s");
    fflush(stdout);
}

void bench_print_timing(const bench_dev *d, const char *label, const char *what) {
    if (d->timing == SPARTAN_TIMING_EVENTS)
        printf("%-8s events: between markers enqueued before and after %s "
               "(CL_PROFILING_COMMAND_END)\n",
               label, what);
    else
        printf("%-8s HOST CLOCK: read after a clFinish before and after %s\n", label, what);
    printf("         %s\n", d->forced ? "host clock: --wall-clock" : d->timing_why);
}

int bench_out_open(bench_out *o, const char *json_path, const char *csv_path,
                   const char *csv_header) {
    memset(o, 0, sizeof *o);
    o->records = cJSON_CreateArray();
    o->json_path = json_path;
    if (json_path) { /* fail now rather than after an hour of measuring */
        FILE *f = fopen(json_path, "w");
        if (!f) {
            fprintf(stderr, "spartan-bench: cannot write %s: %s\n", json_path, strerror(errno));
            return 1;
        }
        fclose(f);
    }
    if (csv_path) {
        o->csv = fopen(csv_path, "w");
        if (!o->csv) {
            fprintf(stderr, "spartan-bench: cannot write %s: %s\n", csv_path, strerror(errno));
            return 1;
        }
        fprintf(o->csv, "%s\n", csv_header);
    }
    return 0;
}

int bench_out_start(bench_out *o, const char *json_path, const char *csv_path,
                    const char *csv_header, char *date, size_t len) {
    bench_date(date, len);
    if (!bench_out_open(o, json_path, csv_path, csv_header)) return 0;
    bench_out_close(o);
    return 1;
}

void bench_out_add(bench_out *o, cJSON *rec) {
    cJSON_AddItemToArray(o->records, rec);
}

int bench_out_close(bench_out *o) {
    int rc = 0;
    if (o->csv && fclose(o->csv) != 0) rc = 1;
    if (o->json_path) {
        char *text = cJSON_Print(o->records);
        FILE *f = fopen(o->json_path, "w");
        if (!f || !text || fprintf(f, "%s\n", text) < 0) rc = 1;
        if (f && fclose(f) != 0) rc = 1;
        if (rc) fprintf(stderr, "spartan-bench: writing %s failed\n", o->json_path);
        free(text);
    }
    cJSON_Delete(o->records);
    memset(o, 0, sizeof *o);
    return rc;
}

cJSON *bench_record(const bench_dev *d, const char *date) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "device", d->info->name);
    cJSON_AddStringToObject(r, "device_id", d->id);
    cJSON_AddStringToObject(r, "date", date);
    cJSON_AddStringToObject(r, "timing", spartan_timing_name(d->timing));
    return r;
}

void bench_json_number(cJSON *o, const char *key, double value) {
    if (isfinite(value)) {
        cJSON_AddNumberToObject(o, key, value);
    } else {
        cJSON_AddNullToObject(o, key);
    }
}

void bench_csv_string(FILE *f, const char *text) {
    fputc('"', f);
    for (const char *c = text; *c; c++) fputc(*c == ',' ? ';' : *c == '"' ? '\'' : *c, f);
    fputc('"', f);
}

void bench_csv_number(FILE *f, double value) {
    if (isfinite(value)) {
        fprintf(f, ",%.6g", value);
    } else {
        fputs(",", f);
    }
}
