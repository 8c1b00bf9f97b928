/* The report of `spartan-bench portability` from its records (portability.c makes them):
 * DIR/portability.md, a summary across the devices and a section per device, and the plots that
 * set the timed devices side by side (PNGs in DIR, drawn by tools/plot_portability.gp from the
 * port-*.dat files written here). Everything in it comes from the records, which go unchanged to
 * the JSON: the report says nothing the JSON does not hold.
 * What this file does not do: run anything on a device. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#ifndef SPARTAN_SOURCE_DIR
#define SPARTAN_SOURCE_DIR "."
#endif

#define MAX_DEV    16
#define MAX_ROWS   48
#define MAX_POINTS 16

static const char *const passes[] = {"fwd", "bwd_input", "bwd_weight"};
static const char *const policies[] = {"dense", "sparse", "adaptive"};

/* ---- the records ----------------------------------------------------------------------------- */

static const char *jstr(const cJSON *r, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double jnum(const cJSON *r, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int is(const cJSON *r, const char *key, const char *value) {
    return !strcmp(jstr(r, key), value);
}

/* One device as the report sees it. */
typedef struct dev_view {
    const cJSON *profile;
    const char *id, *label;
    int sim, timed; /* timed: not a simulator, and its context was created */
} dev_view;

/* One (benchmark, layer shape, pass) of a device: its best dense path and its sparse points. */
typedef struct row {
    const char *bench, *label, *layer, *pass;
    char shape[48];
    const char *best_path;
    double best_ms, gflops;
    size_t n, results, wrong;
    double s[MAX_POINTS], speedup[MAX_POINTS], frac[MAX_POINTS];
} row;

typedef struct rows {
    row r[MAX_ROWS];
    size_t n, checked, wrong;
} rows;

static row *find_row(rows *t, const cJSON *rec) {
    const char *bench = jstr(rec, "bench"), *label = jstr(rec, "label"), *pass = jstr(rec, "pass");
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->r[i].bench, bench) && !strcmp(t->r[i].label, label) &&
            !strcmp(t->r[i].pass, pass))
            return &t->r[i];
    if (t->n == MAX_ROWS) return NULL;
    row *w = &t->r[t->n++];
    memset(w, 0, sizeof *w);
    w->bench = bench;
    w->label = label;
    w->layer = jstr(rec, "layer");
    w->pass = pass;
    w->best_path = "";
    w->best_ms = w->gflops = NAN;
    if (!strcmp(bench, "gemm"))
        snprintf(w->shape, sizeof w->shape, "%.0fx%.0fx%.0f", jnum(rec, "m"), jnum(rec, "n"),
                 jnum(rec, "k"));
    else
        snprintf(w->shape, sizeof w->shape, "%s", jstr(rec, "shape"));
    return w;
}

/* The GEMM and convolution rows of device id, and its checked and wrong results. */
static void collect(const cJSON *records, const char *id, rows *t) {
    memset(t, 0, sizeof *t);
    const cJSON *rec;
    cJSON_ArrayForEach(rec, records) {
        if (!is(rec, "device_id", id) || !(is(rec, "bench", "gemm") || is(rec, "bench", "conv")))
            continue;
        row *w = find_row(t, rec);
        const cJSON *ok = cJSON_GetObjectItemCaseSensitive(rec, "ok");
        if (!w || !cJSON_IsBool(ok)) continue;
        const int right = cJSON_IsTrue(ok);
        t->checked++;
        w->results++;
        if (!right) t->wrong++, w->wrong++;
        if (is(rec, "path", "sparse")) {
            if (w->n == MAX_POINTS) continue;
            w->s[w->n] = jnum(rec, "sparsity");
            w->speedup[w->n] = right ? jnum(rec, "speedup") : NAN;
            w->frac[w->n++] = right ? jnum(rec, "fraction_of_ideal") : NAN;
        } else if (right && !(jnum(rec, "median_ms") >= w->best_ms)) {
            w->best_ms = jnum(rec, "median_ms");
            w->gflops = jnum(rec, "gflops");
            w->best_path = jstr(rec, "path");
        }
    }
}

/* The lowest sparsity at which the sparse path beats the best dense one, interpolated linearly
 * in the speedup between the two sparsities measured on either side of 1x; NAN when it does not
 * up to the highest measured; -1 when it already does at the lowest. */
static double crossover(const row *w) {
    for (size_t i = 0; i < w->n; i++) {
        if (!(w->speedup[i] > 1.0)) continue;
        if (i == 0) return -1.0;
        const double x0 = w->speedup[i - 1], x1 = w->speedup[i];
        if (!isfinite(x0)) return w->s[i];
        return w->s[i - 1] + (1.0 - x0) * (w->s[i] - w->s[i - 1]) / (x1 - x0);
    }
    return NAN;
}

static double at(const row *w, const double *v, double s) {
    for (size_t i = 0; i < w->n; i++)
        if (fabs(w->s[i] - s) < 1e-9) return v[i];
    return NAN;
}

/* The training record of (model, policy) on device id, or NULL. */
static const cJSON *train_rec(const cJSON *records, const char *id, const char *model,
                              const char *policy) {
    const cJSON *rec;
    cJSON_ArrayForEach(rec, records) {
        if (is(rec, "device_id", id) && is(rec, "bench", "train") && is(rec, "model", model) &&
            is(rec, "policy", policy))
            return rec;
    }
    return NULL;
}

/* The models trained on any device, in order. */
static size_t models_of(const cJSON *records, const char **out, size_t max) {
    size_t n = 0;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, records) {
        if (!is(rec, "bench", "train")) continue;
        size_t i = 0;
        while (i < n && strcmp(out[i], jstr(rec, "model"))) i++;
        if (i == n && n < max) out[n++] = jstr(rec, "model");
    }
    return n;
}

static size_t devices_of(const cJSON *records, dev_view *out, size_t max) {
    size_t n = 0;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, records) {
        if (!is(rec, "bench", "profile") || n == max) continue;
        dev_view *v = &out[n++];
        v->profile = rec;
        v->id = jstr(rec, "device_id");
        v->label = jstr(rec, "label");
        v->sim = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "simulator"));
        v->timed = !v->sim && cJSON_GetObjectItemCaseSensitive(rec, "tuned") != NULL;
    }
    return n;
}

/* ---- markdown -------------------------------------------------------------------------------- */

/* v with prec decimals and unit ("1.23x", "45 %"), or "-" when it is not finite. */
static const char *num(double v, int prec, const char *unit, char *buf, size_t len) {
    if (isfinite(v))
        snprintf(buf, len, "%.*f%s", prec, v, unit);
    else
        snprintf(buf, len, "-");
    return buf;
}

static const char *bytes(double b, char *buf, size_t len) {
    if (b >= 1073741824.0)
        snprintf(buf, len, "%.2f GiB", b / 1073741824.0);
    else if (b >= 1048576.0)
        snprintf(buf, len, "%.0f MiB", b / 1048576.0);
    else
        snprintf(buf, len, "%.0f KiB", b / 1024.0);
    return buf;
}

static void crossover_text(const row *w, char *buf, size_t len) {
    const double c = crossover(w);
    if (c < 0)
        snprintf(buf, len, "at %.0f %% already", 100.0 * w->s[0]);
    else if (isfinite(c))
        snprintf(buf, len, "%.0f %%", 100.0 * c);
    else
        snprintf(buf, len, "none up to %.0f %%", w->n ? 100.0 * w->s[w->n - 1] : 0.0);
}

static void profile_md(FILE *f, const dev_view *v) {
    const cJSON *p = v->profile;
    char a[64], b[64];
    fprintf(f, "\n## %s: %s\n\n| profile | |\n|---|---|\n", v->label, jstr(p, "device"));
    fprintf(f, "| platform | %s (%s) |\n", jstr(p, "platform"), jstr(p, "platform_version"));
    fprintf(f, "| device version, driver | %s; driver %s |\n", jstr(p, "device_version"),
            jstr(p, "driver_version"));
    fprintf(f, "| vendor, type | %s (the driver says \"%s\"), %s |\n", jstr(p, "vendor"),
            jstr(p, "vendor_string"), jstr(p, "type"));
    fprintf(f, "| compute units, clock | %.0f at %.0f MHz |\n", jnum(p, "compute_units"),
            jnum(p, "clock_mhz"));
    fprintf(f, "| float vector width | preferred %.0f, native %.0f |\n",
            jnum(p, "preferred_vector_width_float"), jnum(p, "native_vector_width_float"));
    fprintf(f, "| local memory | %s, %s |\n", bytes(jnum(p, "local_mem_bytes"), a, sizeof a),
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "local_mem_dedicated"))
                ? "dedicated"
                : "emulated in global memory");
    fprintf(f, "| global memory | %s (largest allocation %s) |\n",
            bytes(jnum(p, "global_mem_bytes"), a, sizeof a),
            bytes(jnum(p, "max_alloc_bytes"), b, sizeof b));
    fprintf(f, "| nominal peak | %s GFLOP/s: %s |\n",
            num(jnum(p, "peak_gflops"), 1, "", a, sizeof a), jstr(p, "peak_how"));
    const cJSON *tuned = cJSON_GetObjectItemCaseSensitive(p, "tuned");
    if (!tuned) {
        fprintf(f, "\n**FAILED**: no context could be created on this device (see the log).\n");
        return;
    }
    fprintf(f, "| timing | %s: %s |\n", jstr(p, "timing"), jstr(p, "timing_why"));
    fprintf(f, "| tuned parameters |");
    const cJSON *t;
    cJSON_ArrayForEach(t, tuned) fprintf(f, " %s=%.0f", t->string, t->valuedouble);
    char from[1024];
    snprintf(from, sizeof from, "%s", jstr(p, "tuning_source"));
    for (char *c = from; *c; c++)
        if (*c == '\n' || *c == '|') *c = *c == '|' ? '/' : ';';
    if (*from) fprintf(f, " (from %s)", from);
    fprintf(f, " |\n| dense GEMM | the library's best: %s; CLBlast %s |\n",
            is(p, "dense_best", "own") ? "the own kernel" : "CLBlast",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "clblast")) ? "measured here"
                                                                         : "not measured");
    if (!v->sim)
        fprintf(f, "| short form | probe %s GFLOP/s (own dense GEMM 128x512x784)%s |\n",
                num(jnum(p, "probe_gflops"), 2, "", a, sizeof a),
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "slow"))
                    ? ": slow, so shapes at smaller batches and training at batch 16"
                    : "");
    char l0[32], l1[32];
    fprintf(
        f,
        "| run | %.0f s; host load (1-minute average, %d cores) %s at the start, %s at the end |\n",
        jnum(p, "seconds"), (int)jnum(p, "host_cores"), num(jnum(p, "load_start"), 2, "", l0, 32),
        num(jnum(p, "load_end"), 2, "", l1, 32));
}

/* The device paths' names in the report: gemm.c's "dense" is the own kernel. */
static const char *path_text(const char *path) {
    return !*path                     ? "FAILED"
           : !strcmp(path, "dense")   ? "own"
           : !strcmp(path, "clblast") ? "CLBlast"
                                      : path;
}

/* intro (a heading and text), then the head of a table of the columns ("a | b | c"). */
static void table_head(FILE *f, const char *intro, const char *columns) {
    fprintf(f, "%s| %s |\n|", intro, columns);
    for (const char *c = columns; c; c = strchr(c + 1, '|')) fprintf(f, "---|");
    fprintf(f, "\n");
}

static void dense_md(FILE *f, const rows *t, double peak) {
    table_head(f, "\n### Dense: the best device path\n\n",
               "benchmark | layer | shape | pass | best path | ms | GFLOP/s | of peak");
    int above = 0;
    for (size_t i = 0; i < t->n; i++) {
        const row *w = &t->r[i];
        char a[32], b[32], c[32];
        fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", w->bench, w->label, w->shape,
                w->pass, path_text(w->best_path), num(w->best_ms, 3, "", a, 32),
                num(w->gflops, 2, "", b, 32), num(100.0 * w->gflops / peak, 0, " %", c, 32));
        above |= w->gflops > peak;
    }
    if (above)
        fprintf(f, "\nAbove 100 %% of the nominal peak: the device does more than the profile "
                   "says (two FMA units a core, or a clock above the nominal one).\n");
}

static void sparse_md(FILE *f, const rows *t) {
    table_head(f,
               "\n### Sparse against the best dense path (random zeros)\n\n"
               "Speedup: the best dense path's median over the sparse path's, timed in "
               "alternation on the same data; in brackets the fraction of the ideal 1 / (1 - "
               "zeros). Crossover: the lowest sparsity where the sparse path is faster, "
               "interpolated.\n\n",
               "benchmark | layer | pass | 50 % | 70 % | 90 % | crossover");
    for (size_t i = 0; i < t->n; i++) {
        const row *w = &t->r[i];
        char cell[3][40], cross[40];
        const double s[3] = {.5, .7, .9};
        for (int k = 0; k < 3; k++) {
            const double x = at(w, w->speedup, s[k]), fr = at(w, w->frac, s[k]);
            if (isfinite(x))
                snprintf(cell[k], sizeof cell[k], "%.2fx (%.0f %%)", x, 100.0 * fr);
            else
                snprintf(cell[k], sizeof cell[k], "-");
        }
        crossover_text(w, cross, sizeof cross);
        fprintf(f, "| %s | %s | %s | %s | %s | %s | %s |\n", w->bench, w->label, w->pass, cell[0],
                cell[1], cell[2], cross);
    }
}

static void train_md(FILE *f, const cJSON *records, const dev_view *v) {
    const char *models[8];
    size_t nm = models_of(records, models, 8);
    table_head(f,
               "\n### Training: one short epoch\n\n"
               "Images/s of the training steps (upload, forward, backward, update), the policies "
               "stepping in turn on the same batches. Adaptive prepare: creating and preparing "
               "the model, the policy's calibration included (near 0 when the per-device cache "
               "held it), outside the epoch. Short epochs weigh warm-up and the adaptive "
               "policy's first explorations heavily: these are for comparing devices, not "
               "for quoting.\n\n",
               "preset | images, batch | dense | sparse | adaptive | adaptive / dense | "
               "adaptive prepare | test acc. (adaptive)");
    for (size_t m = 0; m < nm; m++) {
        const cJSON *r[3];
        const cJSON *any = NULL;
        for (int p = 0; p < 3; p++)
            if ((r[p] = train_rec(records, v->id, models[m], policies[p]))) any = r[p];
        if (!any) continue;
        char a[3][32], d[32], e[32], g[32];
        for (int p = 0; p < 3; p++)
            num(r[p] ? jnum(r[p], "images_per_s") : NAN, 1, "", a[p], sizeof a[p]);
        fprintf(f, "| %s | %.0f, %.0f | %s | %s | %s | %s | %s | %s |\n", models[m],
                jnum(any, "images"), jnum(any, "batch"), a[0], a[1], a[2],
                num(r[2] ? jnum(r[2], "speedup_vs_dense") : NAN, 2, "x", d, sizeof d),
                num(r[2] ? jnum(r[2], "prepare_seconds") : NAN, 1, " s", e, sizeof e),
                num(r[2] ? 100.0 * jnum(r[2], "test_acc") : NAN, 1, " %", g, sizeof g));
    }
    table_head(f,
               "\n### Paths the adaptive policy chose\n\n"
               "Per GEMM layer, the share of each pass's calls (last epoch) that took the sparse "
               "path; X zeros: the mean monitored fraction of zeros of the layer's input.\n\n",
               "preset | layer | m x n x k | X zeros | fwd | bwd_input | bwd_weight");
    for (size_t m = 0; m < nm; m++) {
        const cJSON *r = train_rec(records, v->id, models[m], "adaptive"), *l;
        const cJSON *layers = r ? cJSON_GetObjectItemCaseSensitive(r, "layers") : NULL;
        cJSON_ArrayForEach(l, layers) {
            char z[32], sh[3][32];
            for (int p = 0; p < 3; p++) {
                char key[48];
                snprintf(key, sizeof key, "%s_sparse_fraction", passes[p]);
                num(100.0 * jnum(l, key), 0, " %", sh[p], sizeof sh[p]);
            }
            fprintf(f, "| %s | %s | %.0fx%.0fx%.0f | %s | %s | %s | %s |\n", models[m],
                    jstr(l, "layer"), jnum(l, "m"), jnum(l, "n"), jnum(l, "k"),
                    num(100.0 * jnum(l, "zeros"), 0, " %", z, sizeof z), sh[0], sh[1], sh[2]);
        }
    }
}

static void checks_md(FILE *f, const dev_view *v, const rows *t) {
    const cJSON *failed = cJSON_GetObjectItemCaseSensitive(v->profile, "failed"), *x;
    fprintf(f, "\n**Checks**: %zu GEMM and convolution results compared with the host reference",
            t->checked);
    if (t->wrong)
        fprintf(f, ": **%zu WRONG** (their times are not valid).", t->wrong);
    else
        fprintf(f, ": all within tolerance.");
    if (cJSON_GetArraySize(failed) > 0) {
        fprintf(f, " **FAILED**:");
        cJSON_ArrayForEach(x, failed) fprintf(f, " %s", cJSON_IsString(x) ? x->valuestring : "?");
        fprintf(f, " (see the log).");
    }
    fprintf(f, "\n");
}

static void simulator_md(FILE *f, const rows *t) {
    table_head(f,
               "\n**Simulator: correctness only.** Tiny shapes of awkward sizes, each GEMM and "
               "convolution result of every path (dense and sparse at each sparsity) compared "
               "with the host reference, one run each. No timings are reported (a simulator's "
               "times say nothing about hardware) and no training is run.\n\n",
               "benchmark | layer | shape | pass | results | check");
    for (size_t i = 0; i < t->n; i++) {
        const row *w = &t->r[i];
        fprintf(f, "| %s | %s | %s | %s | %zu | %s |\n", w->bench, w->label, w->shape, w->pass,
                w->results, w->wrong ? "**WRONG**" : "ok");
    }
}

/* The summary across devices. */
static void summary_md(FILE *f, const cJSON *records, const dev_view *v, size_t nd) {
    const char *models[8];
    size_t nm = models_of(records, models, 8);
    fprintf(f, "| device | type | best dense GFLOP/s | nominal peak | sparse fwd at 90 %% "
               "(range over layers) |");
    for (size_t m = 0; m < nm; m++) fprintf(f, " %s images/s, dense / adaptive |", models[m]);
    fprintf(f, " checks |\n|---|---|---|---|---|");
    for (size_t m = 0; m < nm; m++) fprintf(f, "---|");
    fprintf(f, "---|\n");
    static rows t;
    for (size_t i = 0; i < nd; i++) {
        collect(records, v[i].id, &t);
        double best = NAN, lo = NAN, hi = NAN;
        for (size_t k = 0; k < t.n; k++) {
            const row *w = &t.r[k];
            if (isfinite(w->gflops) && !(w->gflops <= best)) best = w->gflops;
            const double x = strcmp(w->pass, "fwd") ? NAN : at(w, w->speedup, .9);
            if (!isfinite(x)) continue;
            if (!(x >= lo)) lo = x;
            if (!(x <= hi)) hi = x;
        }
        char a[32], b[32], c[64] = "-", ch[64];
        if (isfinite(lo)) snprintf(c, sizeof c, "%.2fx - %.2fx", lo, hi);
        if (v[i].sim) snprintf(c, sizeof c, "simulator: correctness only");
        fprintf(f, "| %s | %s | %s | %s | %s |", v[i].label, jstr(v[i].profile, "type"),
                num(best, 2, "", a, sizeof a), num(jnum(v[i].profile, "peak_gflops"), 1, "", b, 32),
                c);
        for (size_t m = 0; m < nm; m++) {
            const cJSON *dn = train_rec(records, v[i].id, models[m], "dense");
            const cJSON *ad = train_rec(records, v[i].id, models[m], "adaptive");
            char x[32], y[32];
            fprintf(f, " %s / %s |", num(dn ? jnum(dn, "images_per_s") : NAN, 0, "", x, 32),
                    num(ad ? jnum(ad, "images_per_s") : NAN, 0, "", y, 32));
        }
        const int failed =
            cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(v[i].profile, "failed")) > 0;
        snprintf(ch, sizeof ch, "%zu%s%s", t.checked, t.wrong ? ", WRONG" : " ok",
                 failed ? ", FAILED" : "");
        fprintf(f, " %s |\n", ch);
    }
}

/* ---- the plots ------------------------------------------------------------------------------- */

/* A clustered bar chart's data: one row per category, one column per timed device. */
static int write_dat(const char *path, const dev_view *v, size_t nd, const char **cats,
                     double (*val)[MAX_DEV], size_t nc) {
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f, "category");
    for (size_t i = 0; i < nd; i++)
        if (v[i].timed) fprintf(f, "\t%s", v[i].label);
    fprintf(f, "\n");
    for (size_t c = 0; c < nc; c++) {
        fprintf(f, "%s", cats[c]);
        for (size_t i = 0; i < nd; i++) {
            if (!v[i].timed) continue;
            if (isfinite(val[c][i]))
                fprintf(f, "\t%.6g", val[c][i]);
            else
                fprintf(f, "\t?");
        }
        fprintf(f, "\n");
    }
    return fclose(f) != 0;
}

typedef struct plot_data {
    const char *cats[MAX_ROWS];
    char names[MAX_ROWS][64];
    double val[MAX_ROWS][MAX_DEV];
    size_t n;
} plot_data;

static size_t category(plot_data *p, const char *name) {
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->names[i], name)) return i;
    if (p->n == MAX_ROWS) return MAX_ROWS;
    snprintf(p->names[p->n], sizeof p->names[p->n], "%s", name);
    p->cats[p->n] = p->names[p->n];
    for (size_t d = 0; d < MAX_DEV; d++) p->val[p->n][d] = NAN;
    return p->n++;
}

/* The speedup curves of one benchmark: blocks (pass, device, layer), each with a title line. */
static int write_speedups(const char *path, const cJSON *records, const dev_view *v, size_t nd,
                          const char *bench, size_t *nlayers) {
    static plot_data layers;
    static rows t;
    memset(&layers, 0, sizeof layers);
    for (size_t i = 0; i < nd; i++) {
        if (!v[i].timed) continue;
        collect(records, v[i].id, &t);
        for (size_t k = 0; k < t.n; k++)
            if (!strcmp(t.r[k].bench, bench)) category(&layers, t.r[k].layer);
    }
    *nlayers = layers.n;
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < nd; i++) {
            if (!v[i].timed) continue;
            collect(records, v[i].id, &t);
            for (size_t l = 0; l < layers.n; l++) {
                const row *w = NULL;
                for (size_t k = 0; k < t.n && !w; k++)
                    if (!strcmp(t.r[k].bench, bench) && !strcmp(t.r[k].pass, passes[p]) &&
                        !strcmp(t.r[k].layer, layers.names[l]))
                        w = &t.r[k];
                fprintf(f, "\"%s %s\"\tspeedup\n", v[i].label, w ? w->label : layers.names[l]);
                for (size_t k = 0; w && k < w->n; k++)
                    if (isfinite(w->speedup[k]))
                        fprintf(f, "%.1f\t%.4g\n", 100.0 * w->s[k], w->speedup[k]);
                if (!w || !w->n) fprintf(f, "?\t?\n");
                fprintf(f, "\n\n");
            }
        }
    return fclose(f) != 0;
}

/* The data files and the PNGs; *drawn: 1 when gnuplot drew them. */
static int plots(const bench_port_opts *o, const cJSON *records, const dev_view *v, size_t nd,
                 int *drawn, char *why, size_t len) {
    char path[1200];
    static plot_data dense, train;
    static rows t;
    memset(&dense, 0, sizeof dense);
    memset(&train, 0, sizeof train);
    size_t ntimed = 0;
    *drawn = 0;
    for (size_t i = 0; i < nd; i++) {
        if (!v[i].timed) continue;
        ntimed++;
        collect(records, v[i].id, &t);
        for (size_t k = 0; k < t.n; k++) {
            if (strcmp(t.r[k].pass, "fwd")) continue;
            char name[64];
            snprintf(name, sizeof name, "%s %s", !strcmp(t.r[k].bench, "gemm") ? "GEMM" : "conv",
                     t.r[k].layer);
            size_t c = category(&dense, name);
            if (c < MAX_ROWS) dense.val[c][i] = t.r[k].gflops;
        }
        const cJSON *rec;
        cJSON_ArrayForEach(rec, records) {
            if (!is(rec, "device_id", v[i].id) || !is(rec, "bench", "train")) continue;
            char name[64];
            snprintf(name, sizeof name, "%s %s", jstr(rec, "model"), jstr(rec, "policy"));
            size_t c = category(&train, name);
            if (c < MAX_ROWS) train.val[c][i] = jnum(rec, "images_per_s");
        }
    }
    if (!ntimed) {
        snprintf(why, len, "no timed device (simulators are checked, not timed)");
        return 0;
    }
    size_t ngemm = 0, nconv = 0;
    int rc = 0;
    snprintf(path, sizeof path, "%s/port-dense.dat", o->out_dir);
    rc |= write_dat(path, v, nd, dense.cats, dense.val, dense.n);
    snprintf(path, sizeof path, "%s/port-train.dat", o->out_dir);
    rc |= write_dat(path, v, nd, train.cats, train.val, train.n);
    snprintf(path, sizeof path, "%s/port-speedup-gemm.dat", o->out_dir);
    rc |= write_speedups(path, records, v, nd, "gemm", &ngemm);
    snprintf(path, sizeof path, "%s/port-speedup-conv.dat", o->out_dir);
    rc |= write_speedups(path, records, v, nd, "conv", &nconv);
    if (rc) {
        fprintf(stderr, "spartan-bench: writing the plot data in %s failed\n", o->out_dir);
        return 1;
    }
    const char *script =
        o->plot_script ? o->plot_script : SPARTAN_SOURCE_DIR "/tools/plot_portability.gp";
    if (o->no_plots) {
        snprintf(why, len, "--no-plots");
        return 0;
    }
    if (access(script, R_OK)) {
        snprintf(why, len, "no plot script %s (--plot-script FILE)", script);
        return 0;
    }
    char expr[1400];
    snprintf(expr, sizeof expr, "dir='%s'; ndev=%zu; ngemm=%zu; nconv=%zu", o->out_dir, ntimed,
             ngemm, nconv);
    char *argv[] = {(char *)"gnuplot", (char *)"-e", expr, (char *)script, NULL};
    int st = bench_spawn(argv, "  gnuplot | ");
    if (st < 0)
        snprintf(why, len, "gnuplot did not run (is it installed?)");
    else if (st)
        snprintf(why, len, "gnuplot failed (exit status %d)", st);
    *drawn = st == 0;
    return 0;
}

/* ---- the report ------------------------------------------------------------------------------ */

int bench_port_report(const bench_port_opts *o, const cJSON *records, const char *date) {
    static dev_view v[MAX_DEV];
    static rows t;
    size_t nd = devices_of(records, v, MAX_DEV);
    char why[1400] = "", path[1100];
    int drawn = 0;
    if (plots(o, records, v, nd, &drawn, why, sizeof why)) return 1;
    if (!drawn) printf("spartan-bench: plots skipped: %s\n", why);
    snprintf(path, sizeof path, "%s/portability.md", o->out_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "spartan-bench: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "# Spartan on %zu device%s: `spartan-bench portability`\n\n", nd,
            nd == 1 ? "" : "s");
    fprintf(f, "Spartan %s, %s, host OpenBLAS %s (the reference results). Command: `%s`.\n",
            spartan_version_string(), date, host_blas_core(),
            nd && *jstr(v[0].profile, "command") ? jstr(v[0].profile, "command")
            : o->command                         ? o->command
                                                 : "");
    fprintf(f, "The GEMM, convolution and training benchmarks (`spartan-bench gemm`, `conv`, "
               "`train`, docs/benchmarks.md) in a short form on each device: medians after "
               "warm-up, every result checked against the host; the records are in the JSON "
               "(each with `device`).\n\n");
    summary_md(f, records, v, nd);
    if (drawn)
        fprintf(f, "\n![dense GFLOP/s per layer and device](dense.png)\n\n"
                   "![sparse GEMM speedup against sparsity](speedup-gemm.png)\n\n"
                   "![sparse convolution speedup against sparsity](speedup-conv.png)\n\n"
                   "![training images/s per preset and policy](train.png)\n");
    else
        fprintf(f, "\n(No plots: %s.)\n", why);
    for (size_t i = 0; i < nd; i++) {
        collect(records, v[i].id, &t);
        profile_md(f, &v[i]);
        if (!cJSON_GetObjectItemCaseSensitive(v[i].profile, "tuned")) continue;
        if (v[i].sim) {
            simulator_md(f, &t);
        } else {
            dense_md(f, &t, jnum(v[i].profile, "peak_gflops"));
            sparse_md(f, &t);
            train_md(f, records, &v[i]);
        }
        checks_md(f, &v[i], &t);
    }
    if (fclose(f)) {
        fprintf(stderr, "spartan-bench: writing %s failed\n", path);
        return 1;
    }
    return 0;
}
