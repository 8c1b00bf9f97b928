/* `spartan-bench train`: for each preset, the policies (dense, sparse, adaptive) trained side by
 * side in one process, each under every dropout kind asked (bernoulli, row, tile), then the PyTorch
 * CPU line (pytorch.c) when torch imports.
 *
 * The Spartan models of one preset (one per policy and dropout kind: a run) step in turn on the
 * same batch (same seed, same order from spartan_dataset_shuffle(seed, epoch), the order of the
 * runs rotating from step to step): on a shared, noisy machine the drift between two runs made
 * one after the other is larger than many of the differences measured here, and this way every
 * run sees the same machine. An epoch's time is the wall time of its training steps
 * (spartan_model_train_step: upload, forward, backward, update, the loss read back); loading
 * batches, tracing and evaluation are outside it. Row dropout runs start from a smaller learning
 * rate than Bernoulli ones (prepare_runs says why). With --trace, after every step, each GEMM
 * layer's path per pass and its latest monitored sparsity go to a CSV that tools/plot_train.gp
 * draws.
 *
 * What this file does not do: parse the command line (spartan-bench.c), run PyTorch (pytorch.c)
 * or write the JSON and CSV files (output.c). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "spartan/io.h"
#include "spartan/nn.h"

const char bench_train_csv_header[] =
    "device,model,policy,epochs,limit,batch,images,steps,epoch_seconds,epoch_seconds_min,"
    "epoch_seconds_max,images_per_s,speedup_vs_dense,train_loss,train_acc,test_loss,test_acc,"
    "dropout_kind";

static const char trace_header[] =
    "model,policy,epoch,step,layer_index,layer,pass,path,zeros_last,grad_zeros_last,reason";

#define NPOLICIES 3
#define NRUNS     (NPOLICIES * SPARTAN_DROPOUT_KIND_COUNT * BENCH_MAX_CHANNELS * BENCH_MAX_CHANNELS)
#define PI        3.14159265358979323846

/* One policy's model under one dropout kind, and what it measured. */
typedef struct run {
    spartan_policy_mode mode;
    spartan_dropout_kind kind;
    char name[24]; /* the policy, or "dense/row" where dropout kinds are compared */
    float lr;      /* the base learning rate, cosine-decayed over the run */
    spartan_model *m;
    int state;
    double *epoch_s; /* per epoch: the sum of its steps' wall times */
    double lsum;     /* this epoch: loss sum, correct answers, images */
    size_t correct, seen;
    double test_lsum;
    size_t test_correct;
} run;

static double now_s(void) {
    return bench_now_ms() * 1e-3;
}

void bench_train_epochs(double *t, int n, bench_train_result *x) {
    bench_stat st;
    bench_stat_of(t, n, &st);
    x->epoch_s = st.median_ms;
    x->epoch_min = st.min_ms;
    x->epoch_max = st.max_ms;
    x->images_per_s = (double)x->images / x->epoch_s;
}

static const char *state_text(int state) {
    return state == BENCH_RUN_UNAVAILABLE ? "unavailable" : "FAILED";
}

/* A float setting as the double its 7 digits say, for the records: 0.05, not the float's
 * 0.05000000074505806. */
static double setting(float v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)v);
    return strtod(buf, NULL);
}

/* The runs carry the dropout kind in their names unless Bernoulli alone is asked: then the names
 * and the output are those from before the kinds. */
static int kinds_named(const bench_train_opts *o) {
    return o->dropout_kinds != 1u << SPARTAN_DROPOUT_BERNOULLI;
}

/* The width of a name column: at least min, else the longest of the runs' names. */
static int name_width(const bench_train_result *res, size_t n, int min) {
    int w = min;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(res[i].name) > w) w = (int)strlen(res[i].name);
    return w;
}

/* ---- the Spartan runs ------------------------------------------------------------------------ */

/* One trace line per GEMM layer and pass the step ran. */
static void trace_step(FILE *f, const char *model, run *r, int epoch, size_t step) {
    const char *policy = r->name;
    size_t g = 0;
    for (size_t i = 0; i < spartan_model_layer_count(r->m); i++) {
        spartan_layer_info li;
        if (spartan_model_layer_info(r->m, i, &li) != SPARTAN_OK || !li.gemm) continue;
        for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
            if (!li.calls[p]) continue; /* no bwd_input in the first layer */
            fprintf(f, "%s,%s,%d,%zu,%zu,%s,%s,%s,%.4f,%.4f,", model, policy, epoch, step, g,
                    li.name, spartan_pass_name((spartan_pass)p), spartan_path_name(li.path[p]),
                    li.zeros_last, li.grad_zeros_last);
            bench_csv_string(f, li.reason[p] ? li.reason[p] : "");
            fputc('\n', f);
        }
        g++;
    }
}

/* Device ms per step of each pass of a GEMM layer (NAN when the pass did not run), and a
 * letter for its path over the epoch: D dense, S sparse, m mixed, - not run. */
static double pass_ms(const spartan_layer_info *li, int p, char *letter) {
    size_t c = li->calls[p], s = li->sparse_calls[p];
    *letter = !c ? '-' : s == c ? 'S' : s == 0 ? 'D' : 'm';
    return c ? 1e3 * li->seconds[p] / (double)c : NAN;
}

static double layer_ms(const run *r, size_t i, double *per_pass, char *paths) {
    spartan_layer_info li;
    double sum = 0.0;
    if (spartan_model_layer_info(r->m, i, &li) != SPARTAN_OK) return NAN;
    for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
        per_pass[p] = pass_ms(&li, p, &paths[p]);
        if (isfinite(per_pass[p])) sum += per_pass[p];
    }
    paths[SPARTAN_PASS_COUNT] = '\0';
    return sum;
}

/* Per GEMM layer of the last epoch, for the runs of one dropout kind: each policy's device ms
 * per step (its three passes) and paths; the faster of dense and sparse; the per-pass best (the
 * faster path of each pass); and adaptive against the faster of dense and sparse. */
static void print_layers(const bench_dev *d, run *runs, size_t nruns, spartan_dropout_kind kind,
                         int named) {
    run *ok[NPOLICIES] = {NULL, NULL, NULL}, *any = NULL;
    for (size_t i = 0; i < nruns; i++)
        if (runs[i].state == BENCH_RUN_OK && runs[i].kind == kind)
            any = ok[runs[i].mode] = &runs[i];
    if (!any) return;
    printf("\n  per GEMM layer, last epoch%s%s: device ms per step (fwd + bwd_input + bwd_weight, "
           "%s) and path per pass (D dense, S sparse, m mixed)\n",
           named ? ", dropout " : "", named ? spartan_dropout_kind_name(kind) : "",
           d->timing == SPARTAN_TIMING_EVENTS ? "profiling events" : "host clock");
    printf("  %-8s %-16s", "layer", "gemm m x n x k");
    for (int p = 0; p < NPOLICIES; p++)
        if (ok[p]) printf(" %-16s", spartan_policy_mode_name((spartan_policy_mode)p));
    int both = ok[0] && ok[1];
    if (both) printf(" %-8s %-9s", "best", "per-pass");
    if (both && ok[2]) printf(" %s", "adaptive/best");
    printf("\n");
    for (size_t i = 0; i < spartan_model_layer_count(any->m); i++) {
        spartan_layer_info li;
        if (spartan_model_layer_info(any->m, i, &li) != SPARTAN_OK || !li.gemm) continue;
        char shape[40];
        snprintf(shape, sizeof shape, "%zux%zux%zu", li.m, li.n, li.k);
        printf("  %-8s %-16s", li.name, shape);
        double ms[NPOLICIES] = {NAN, NAN, NAN}, pp[NPOLICIES][SPARTAN_PASS_COUNT];
        for (int p = 0; p < NPOLICIES; p++) {
            if (!ok[p]) continue;
            char paths[SPARTAN_PASS_COUNT + 1], cell[40];
            ms[p] = layer_ms(ok[p], i, pp[p], paths);
            snprintf(cell, sizeof cell, "%.3f %s", ms[p], paths);
            printf(" %-16s", cell);
        }
        if (both) {
            double oracle = 0.0;
            for (int p = 0; p < SPARTAN_PASS_COUNT; p++)
                if (isfinite(pp[0][p])) oracle += fmin(pp[0][p], pp[1][p]);
            printf(" %-8.3f %-9.3f", fmin(ms[0], ms[1]), oracle);
            if (ok[2]) printf(" %.2f", ms[2] / fmin(ms[0], ms[1]));
        }
        printf("\n");
    }
}

/* The per-layer figures of r's last epoch as a JSON list. */
static cJSON *layers_json(const run *r) {
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < spartan_model_layer_count(r->m); i++) {
        spartan_layer_info li;
        if (spartan_model_layer_info(r->m, i, &li) != SPARTAN_OK || !li.gemm) continue;
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "layer", li.name);
        cJSON_AddStringToObject(l, "kind", li.kind);
        cJSON_AddNumberToObject(l, "m", (double)li.m);
        cJSON_AddNumberToObject(l, "n", (double)li.n);
        cJSON_AddNumberToObject(l, "k", (double)li.k);
        for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
            char key[40], letter;
            const char *pass = spartan_pass_name((spartan_pass)p);
            snprintf(key, sizeof key, "%s_ms", pass);
            bench_json_number(l, key, pass_ms(&li, p, &letter));
            snprintf(key, sizeof key, "%s_sparse_fraction", pass);
            bench_json_number(l, key,
                              li.calls[p] ? (double)li.sparse_calls[p] / (double)li.calls[p] : NAN);
        }
        bench_json_number(l, "zeros", li.zeros >= 0 ? li.zeros : NAN);
        bench_json_number(l, "grad_zeros", li.grad_zeros >= 0 ? li.grad_zeros : NAN);
        cJSON_AddItemToArray(list, l);
    }
    return list;
}

static void fail_run(run *r, const char *model, const char *what, const bench_dev *d,
                     spartan_status st) {
    char buf[160];
    snprintf(buf, sizeof buf, "%s, %s: %s", model, r->name, what);
    if (st != SPARTAN_OK)
        bench_report_status(d, st, buf);
    else
        fprintf(stderr, "spartan-bench: %s\n", buf);
    r->state = BENCH_RUN_FAILED;
}

/* Evaluates every running model on the test set, batch by batch. */
static void evaluate(const bench_dev *d, const char *model, run *runs, size_t nruns,
                     const spartan_dataset *test, size_t batch, float *img, float *lab) {
    size_t n = spartan_dataset_count(test);
    for (size_t first = 0; first < n; first += batch) {
        size_t count = n - first < batch ? n - first : batch;
        spartan_status st = spartan_dataset_batch(test, first, count, img, lab);
        for (size_t i = 0; i < nruns; i++) {
            run *r = &runs[i];
            if (r->state != BENCH_RUN_OK) continue;
            spartan_step_result res;
            if (st == SPARTAN_OK) st = spartan_model_evaluate(r->m, img, lab, count, &res);
            if (st != SPARTAN_OK) {
                fail_run(r, model, "evaluating", d, st);
                continue;
            }
            r->test_lsum += res.loss * (double)count;
            r->test_correct += res.correct;
        }
    }
}

/* Prepares one model per asked policy and dropout kind, policy after policy, its kinds next to
 * each other (so Bernoulli alone gives the runs and records from before the kinds); *nruns: how
 * many. Unavailable policies are noted in res, not failures. Bernoulli runs take the default
 * learning rate; row and tile runs lr x (1 - p)^2, p the model's largest dropout rate: they drop
 * whole neurons or weight tiles for the whole batch, and at Bernoulli's rate they diverge (p = 0.5:
 * 0.05 diverges, 0.0125 trains as well as Bernoulli at 0.05). */
static int prepare_runs(const bench_dev *d, const bench_train_opts *o, const char *model, run *runs,
                        size_t *nruns, bench_train_result *res) {
    const int named = kinds_named(o);
    const float lr0 = spartan_train_config_default().lr;
    double p = 0.0;
    int rc = 0;
    size_t n = 0;
    const size_t nch = o->nchannels ? o->nchannels : 1, ndb = o->ndropbacks ? o->ndropbacks : 1;
    for (int pi = 0; pi < NPOLICIES; pi++) {
        for (size_t ki = 0; ki < SPARTAN_DROPOUT_KIND_COUNT * nch * ndb; ki++) {
            const size_t di = ki % ndb, ci = ki / ndb % nch, kind = ki / (ndb * nch);
            if (!(o->policies & (1u << pi)) || !(o->dropout_kinds & (1u << kind))) continue;
            run *r = &runs[n];
            bench_train_result *x = &res[n++];
            r->mode = (spartan_policy_mode)pi;
            r->kind = (spartan_dropout_kind)kind;
            r->state = BENCH_RUN_UNAVAILABLE;
            r->lr = lr0;
            x->model = model;
            x->policy = spartan_policy_mode_name(r->mode);
            x->dropout_kind = spartan_dropout_kind_name(r->kind);
            x->dropout = o->dropout >= 0 ? setting(o->dropout) : NAN;
            x->channel_dropout = o->nchannels ? (double)o->channels[ci] : 0.0;
            x->dropback = o->ndropbacks ? (double)o->dropbacks[di] : 0.0;
            if (named)
                snprintf(r->name, sizeof r->name, "%s/%s", x->policy, x->dropout_kind);
            else
                snprintf(r->name, sizeof r->name, "%s", x->policy);
            if (o->nchannels) /* "adaptive/c0.5" */
                snprintf(r->name + strlen(r->name), sizeof r->name - strlen(r->name), "/c%g",
                         x->channel_dropout);
            if (o->ndropbacks) /* "adaptive/db0.1" */
                snprintf(r->name + strlen(r->name), sizeof r->name - strlen(r->name), "/db%g",
                         x->dropback);
            memcpy(x->name, r->name, sizeof x->name);
            spartan_train_config cfg = spartan_train_config_default();
            cfg.batch = o->batch;
            cfg.seed = o->seed;
            cfg.policy = r->mode;
            cfg.dropout_kind = r->kind;
            cfg.dropout = o->dropout;
            cfg.channel_dropout = (float)x->channel_dropout;
            cfg.dropback_density = (float)x->dropback;
            if (o->dropback_interval) cfg.dropback_interval = o->dropback_interval;
            if (o->dropback_decay > 0.0f) cfg.dropback_decay = o->dropback_decay;
            cfg.dropback_ramp = o->dropback_ramp;
            if (o->sample_every) cfg.sample_every = o->sample_every;
            double t0 = now_s();
            spartan_status st = spartan_model_create_preset(d->ctx, model, &r->m);
            if (st == SPARTAN_OK) {
                p = spartan_model_dropout_max(r->m, o->dropout);
                /* channel dropout drops channels for the whole batch too */
                const double q =
                    fmax(r->kind != SPARTAN_DROPOUT_BERNOULLI ? p : 0.0, x->channel_dropout);
                if (q > 0.0) r->lr = (float)(lr0 * (1.0 - q) * (1.0 - q));
                cfg.lr = r->lr;
                st = spartan_model_prepare(r->m, &cfg);
            }
            x->prepare_s = now_s() - t0;
            x->lr = setting(r->lr);
            r->epoch_s = calloc((size_t)o->epochs, sizeof *r->epoch_s);
            if (st == SPARTAN_OK && r->epoch_s) {
                r->state = BENCH_RUN_OK;
            } else if (st == SPARTAN_STATUS_UNSUPPORTED) {
                const char *detail = spartan_last_error(d->ctx);
                snprintf(x->note, sizeof x->note, "%s",
                         detail && *detail ? detail : spartan_status_string(st));
                printf("  %s: unavailable in this build (%s): %s\n", x->name,
                       spartan_status_name(st), x->note);
            } else {
                fail_run(r, model, "preparing the model", d, st);
                snprintf(x->note, sizeof x->note, "%s", spartan_status_string(st));
                rc = 1;
            }
        }
    }
    *nruns = n;
    printf("  prepare (parameters, buffers; adaptive: calibration unless cached):");
    for (size_t i = 0; i < n; i++)
        if (runs[i].state == BENCH_RUN_OK) printf(" %s %.2f s", res[i].name, res[i].prepare_s);
    printf("\n");
    if (named) {
        printf("  base lr (cosine decay from it; row, tile: %g x (1 - p)^2, p = %g, the largest "
               "dropout rate):",
               (double)lr0, p);
        for (size_t i = 0; i < n; i++)
            if (runs[i].state == BENCH_RUN_OK) printf(" %s %g", res[i].name, (double)runs[i].lr);
        printf("\n");
    }
    return rc;
}

/* A progress line: each running model's images/s and mean loss so far in this epoch. */
static void progress(const run *runs, size_t nruns, int e, size_t s, size_t steps) {
    printf("  epoch %d step %zu/%zu:", e + 1, s + 1, steps);
    for (size_t i = 0; i < nruns; i++)
        if (runs[i].state == BENCH_RUN_OK && runs[i].seen)
            printf("  %s %.0f img/s loss %.4f", runs[i].name,
                   (double)runs[i].seen / runs[i].epoch_s[e], runs[i].lsum / (double)runs[i].seen);
    printf("\n");
    fflush(stdout);
}

/* Trains one preset under every asked policy and dropout kind, stepping in turn; fills
 * res[0..*nruns - 1] and layers[] (prepare_runs' order). */
static int train_model(const bench_dev *d, const bench_train_opts *o, const char *model,
                       spartan_dataset *train, const spartan_dataset *test, FILE *trace,
                       bench_train_result *res, cJSON **layers, size_t *nruns) {
    const size_t batch = o->batch, px = spartan_dataset_rows(train) * spartan_dataset_cols(train);
    const size_t steps = spartan_dataset_count(train) / batch, total = steps * (size_t)o->epochs;
    run runs[NRUNS];
    memset(runs, 0, sizeof runs);
    float *img = malloc(batch * px * sizeof *img), *lab = malloc(batch * sizeof *lab);
    printf("\n%s: %zu steps of %zu images per epoch, %d epoch%s\n", model, steps, batch, o->epochs,
           o->epochs == 1 ? "" : "s");
    size_t n = 0;
    int rc = prepare_runs(d, o, model, runs, &n, res);
    *nruns = n;
    if (!img || !lab) {
        fprintf(stderr, "spartan-bench: out of host memory\n");
        rc = 1;
        for (size_t i = 0; i < n; i++)
            if (runs[i].state == BENCH_RUN_OK) runs[i].state = BENCH_RUN_FAILED;
    }
    const int w = name_width(res, n, 8);
    for (int e = 0; e < o->epochs; e++) {
        spartan_dataset_shuffle(train, o->seed, (uint64_t)e);
        for (size_t i = 0; i < n; i++) {
            runs[i].lsum = 0.0;
            runs[i].correct = runs[i].seen = 0;
            if (runs[i].state == BENCH_RUN_OK) spartan_model_reset_stats(runs[i].m);
        }
        /* interleaved: every step, each run in turn (rotating); sequential: one run's whole
         * epoch after the other's */
        const size_t rounds = o->sequential ? n : 1;
        for (size_t k = 0; k < rounds; k++) {
            if (o->sequential && runs[k].state != BENCH_RUN_OK) continue;
            for (size_t s = 0; s < steps; s++) {
                const size_t done = (size_t)e * steps + s;
                if (spartan_dataset_batch(train, s * batch, batch, img, lab) != SPARTAN_OK) {
                    fprintf(stderr, "spartan-bench: reading a batch: %s\n",
                            spartan_last_error(NULL));
                    for (size_t i = 0; i < n; i++)
                        if (runs[i].state == BENCH_RUN_OK) runs[i].state = BENCH_RUN_FAILED;
                    rc = 1;
                    break;
                }
                /* cosine decay over the run, as spartan-train and pytorch_train.py */
                const double c = cos(PI * (double)done / (double)total);
                for (size_t j = 0; j < (o->sequential ? 1 : n); j++) {
                    run *r = &runs[o->sequential ? k : (s + j) % n];
                    if (r->state != BENCH_RUN_OK) continue;
                    spartan_step_result sr;
                    spartan_model_set_lr(r->m, (float)(0.5 * r->lr * (1.0 + c)));
                    double t0 = now_s();
                    spartan_status st = spartan_model_train_step(r->m, img, lab, batch, &sr);
                    r->epoch_s[e] += now_s() - t0;
                    if (st != SPARTAN_OK || !isfinite(sr.loss)) {
                        fail_run(r, model, st ? "training step" : "the loss diverged", d, st);
                        rc = 1;
                        continue;
                    }
                    r->lsum += sr.loss * (double)sr.count;
                    r->correct += sr.correct;
                    r->seen += sr.count;
                    if (trace) trace_step(trace, model, r, e + 1, done + 1);
                }
                if (steps >= 8 && (s + 1) % (steps / 4) == 0 && s + 1 < steps)
                    progress(runs, n, e, s, steps);
            }
        }
        for (size_t i = 0; i < n; i++)
            if (runs[i].state == BENCH_RUN_OK)
                printf("  epoch %d %-*s %7.2f s  %8.1f images/s  train loss %.4f acc %.2f %%\n",
                       e + 1, w, runs[i].name, runs[i].epoch_s[e],
                       (double)runs[i].seen / runs[i].epoch_s[e],
                       runs[i].lsum / (double)runs[i].seen,
                       100.0 * (double)runs[i].correct / (double)runs[i].seen);
        fflush(stdout);
    }
    if (img && lab) evaluate(d, model, runs, n, test, batch, img, lab);
    for (int k = 0; k < SPARTAN_DROPOUT_KIND_COUNT; k++)
        print_layers(d, runs, n, (spartan_dropout_kind)k, kinds_named(o));
    const size_t ntest = spartan_dataset_count(test);
    for (size_t i = 0; i < n; i++) {
        run *r = &runs[i];
        bench_train_result *x = &res[i];
        x->state = r->state;
        if (r->state == BENCH_RUN_OK) {
            x->images = steps * batch;
            bench_train_epochs(r->epoch_s, o->epochs, x);
            x->train_loss = r->lsum / (double)r->seen;
            x->train_acc = (double)r->correct / (double)r->seen;
            x->test_loss = r->test_lsum / (double)ntest;
            x->test_acc = (double)r->test_correct / (double)ntest;
            layers[i] = layers_json(r);
        } else if (r->state == BENCH_RUN_FAILED && !x->note[0]) {
            snprintf(x->note, sizeof x->note, "see the messages above");
        }
        free(r->epoch_s);
        /* the model's device memory: what destroying it frees (its buffers, the patch matrices
         * made on first use included; the context's shared scratch not) */
        size_t held = 0, left = 0;
        spartan_context_memory(d->ctx, &held, NULL);
        spartan_model_destroy(r->m);
        spartan_context_memory(d->ctx, &left, NULL);
        x->device_mib = r->state == BENCH_RUN_OK ? (double)(held - left) / 1048576.0 : NAN;
    }
    size_t peak = 0;
    spartan_context_memory(d->ctx, NULL, &peak);
    printf("device memory: %.1f MiB at most in the context (all %s models and the shared "
           "scratch)\n",
           (double)peak / 1048576.0, kinds_named(o) ? "runs'" : "policies'");
    free(img);
    free(lab);
    return rc;
}

/* ---- output ---------------------------------------------------------------------------------- */

/* The JSON record (takes layers) and the CSV line of x. */
static void emit(const bench_dev *d, const bench_train_opts *o, const char *date,
                 const bench_train_result *x, size_t test_images, cJSON *layers, bench_out *out) {
    cJSON *rec = bench_record(d, date);
    cJSON_ReplaceItemInObject(rec, "timing", cJSON_CreateString("wall"));
    if (layers) cJSON_AddStringToObject(rec, "layer_timing", spartan_timing_name(d->timing));
    cJSON_AddStringToObject(rec, "model", x->model);
    cJSON_AddStringToObject(rec, "policy", x->policy);
    cJSON_AddStringToObject(rec, "dropout_kind", x->dropout_kind);
    bench_json_number(rec, "dropout", x->dropout);
    bench_json_number(rec, "channel_dropout", x->channel_dropout);
    bench_json_number(rec, "speedup_vs_no_channel_dropout", x->vs_channels);
    bench_json_number(rec, "dropback_density", x->dropback);
    bench_json_number(rec, "speedup_vs_no_dropback", x->vs_dropback);
    bench_json_number(rec, "lr", x->lr);
    cJSON_AddNumberToObject(rec, "epochs", o->epochs);
    bench_json_number(rec, "limit", o->limit ? (double)o->limit : NAN);
    cJSON_AddNumberToObject(rec, "batch", (double)o->batch);
    cJSON_AddNumberToObject(rec, "seed", (double)o->seed);
    cJSON_AddNumberToObject(rec, "images", (double)x->images);
    cJSON_AddNumberToObject(rec, "steps", (double)(x->images / o->batch));
    bench_json_number(rec, "epoch_seconds", x->epoch_s);
    if (layers) bench_json_number(rec, "prepare_seconds", x->prepare_s);
    bench_json_number(rec, "epoch_seconds_min", x->epoch_min);
    bench_json_number(rec, "epoch_seconds_max", x->epoch_max);
    bench_json_number(rec, "images_per_s", x->images_per_s);
    bench_json_number(rec, "speedup_vs_dense", x->speedup);
    bench_json_number(rec, "speedup_vs_bernoulli", x->vs_bernoulli);
    bench_json_number(rec, "train_loss", x->train_loss);
    bench_json_number(rec, "train_acc", x->train_acc);
    bench_json_number(rec, "test_loss", x->test_loss);
    bench_json_number(rec, "test_acc", x->test_acc);
    if (layers) bench_json_number(rec, "device_mib", x->device_mib);
    cJSON_AddNumberToObject(rec, "test_images", (double)test_images);
    if (layers) cJSON_AddItemToObject(rec, "layers", layers);
    if (!strcmp(x->policy, "pytorch")) {
        cJSON_AddNumberToObject(rec, "threads", o->pytorch_threads);
        cJSON_AddNumberToObject(rec, "openblas_num_threads", 1);
    }
    bench_out_add(out, rec);
    if (!out->csv) return;
    bench_csv_string(out->csv, d->info->name);
    fprintf(out->csv, ",%s,%s,%d,%zu,%zu,%zu,%zu", x->model, x->policy, o->epochs, o->limit,
            o->batch, x->images, x->images / o->batch);
    const double v[] = {x->epoch_s,    x->epoch_min, x->epoch_max, x->images_per_s, x->speedup,
                        x->train_loss, x->train_acc, x->test_loss, x->test_acc};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) bench_csv_number(out->csv, v[i]);
    fprintf(out->csv, ",%s\n", x->dropout_kind);
}

/* The median epoch time of the run of policy, dropout kind and channel dropout among
 * r[0..n-1], NAN when there is none or it did not finish. */
static double epoch_of(const bench_train_result *r, size_t n, const char *policy, const char *kind,
                       double channels, double dropback) {
    for (size_t i = 0; i < n; i++)
        if (r[i].state == BENCH_RUN_OK && !strcmp(r[i].policy, policy) &&
            !strcmp(r[i].dropout_kind, kind) && r[i].channel_dropout == channels &&
            r[i].dropback == dropback)
            return r[i].epoch_s;
    return NAN;
}

static void print_table(const bench_train_opts *o, const bench_train_result *res, size_t n) {
    const unsigned bernoulli = 1u << SPARTAN_DROPOUT_BERNOULLI;
    const int vs_bern = (o->dropout_kinds & bernoulli) && (o->dropout_kinds & ~bernoulli);
    int mw = 10, pw = name_width(res, n, 9);
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(res[i].model) > mw) mw = (int)strlen(res[i].model);
    printf("\n%-*s %-*s %-24s %10s %9s", mw, "model", pw, "policy",
           o->epochs > 1 ? "epoch s (median [range])" : "epoch s", "images/s", "vs dense");
    if (vs_bern) printf(" %9s", "vs bern.");
    if (o->nchannels) printf(" %9s", "vs no ch.");
    if (o->ndropbacks) printf(" %9s", "vs no db.");
    printf(" %10s %9s %9s %8s\n", "train loss", "train acc", "test acc", "dev MiB");
    for (size_t i = 0; i < n; i++) {
        const bench_train_result *x = &res[i];
        if (x->state != BENCH_RUN_OK) {
            printf("%-*s %-*s %s: %s\n", mw, x->model, pw, x->name, state_text(x->state), x->note);
            continue;
        }
        char secs[48], ratio[16] = "-", bern[16] = "-";
        if (o->epochs > 1)
            snprintf(secs, sizeof secs, "%.3f [%.3f..%.3f]", x->epoch_s, x->epoch_min,
                     x->epoch_max);
        else
            snprintf(secs, sizeof secs, "%.3f", x->epoch_s);
        if (isfinite(x->speedup)) snprintf(ratio, sizeof ratio, "%.2fx", x->speedup);
        if (isfinite(x->vs_bernoulli)) snprintf(bern, sizeof bern, "%.2fx", x->vs_bernoulli);
        char mib[16] = "-";
        if (isfinite(x->device_mib)) snprintf(mib, sizeof mib, "%.1f", x->device_mib);
        printf("%-*s %-*s %-24s %10.1f %9s", mw, x->model, pw, x->name, secs, x->images_per_s,
               ratio);
        if (vs_bern) printf(" %9s", bern);
        if (o->nchannels) {
            char ch[16] = "-";
            if (isfinite(x->vs_channels)) snprintf(ch, sizeof ch, "%.2fx", x->vs_channels);
            printf(" %9s", ch);
        }
        if (o->ndropbacks) {
            char db[16] = "-";
            if (isfinite(x->vs_dropback)) snprintf(db, sizeof db, "%.2fx", x->vs_dropback);
            printf(" %9s", db);
        }
        printf(" %10.4f %8.2f%% %8.2f%% %8s\n", x->train_loss, 100.0 * x->train_acc,
               100.0 * x->test_acc, mib);
    }
    printf("(epoch s: wall time of the training steps; vs dense: dense epoch time / this one, > 1 "
           "faster%s; accuracies after the last epoch; dev MiB: the model's device buffers at the "
           "end, patch matrices included)\n",
           kinds_named(o) ? ", the dense run of the same dropout kind" : "");
    if (vs_bern)
        printf("(vs bern.: the same policy's Bernoulli-dropout epoch time / this one, > 1 faster; "
               "measured side by side on the same batches)\n");
    if (o->nchannels)
        printf("(/cP: channel dropout P; vs no ch.: the same run's epoch time without channel "
               "dropout / this one, > 1 faster, side by side)\n");
    if (o->ndropbacks)
        printf("(/dbD: Dropback at density D, the default decay; vs no db.: the same run's epoch "
               "time without Dropback / this one, > 1 faster, side by side)\n");
}

void bench_train_opts_init(bench_train_opts *o) {
    spartan_train_config def = spartan_train_config_default();
    memset(o, 0, sizeof *o);
    o->epochs = 1;
    o->batch = def.batch;
    o->seed = def.seed;
    o->policies = 7;
    o->dropout_kinds = 1u << SPARTAN_DROPOUT_BERNOULLI;
    o->dropout = def.dropout;
    o->pytorch_threads = 2;
    o->python = "/usr/bin/python3";
    for (const char *const *p = spartan_model_presets(); *p && o->nmodels < BENCH_MAX_MODELS; p++)
        o->models[o->nmodels++] = *p;
}

int bench_train(bench_dev *d, const bench_train_opts *o, bench_out *out, const char *date) {
    spartan_dataset *train = NULL, *test = NULL;
    if (spartan_dataset_load(o->data, "train", &train) != SPARTAN_OK ||
        spartan_dataset_load(o->data, "test", &test) != SPARTAN_OK) {
        fprintf(stderr, "spartan-bench: loading the data set: %s\n", spartan_last_error(NULL));
        spartan_dataset_destroy(train);
        return 1;
    }
    if (o->limit) spartan_dataset_limit(train, o->limit);
    if (o->test_limit) spartan_dataset_limit(test, o->test_limit);
    int rc = 0;
    FILE *trace = NULL;
    bench_train_result *res = calloc(o->nmodels * (NRUNS + 1), sizeof *res);
    size_t nres = 0;
    if (spartan_dataset_count(train) < o->batch) {
        fprintf(stderr, "spartan-bench: %zu training images make no batch of %zu\n",
                spartan_dataset_count(train), o->batch);
        rc = 1;
        goto done;
    }
    if (o->trace_path && !(trace = fopen(o->trace_path, "w"))) {
        fprintf(stderr, "spartan-bench: cannot write %s: %s\n", o->trace_path, strerror(errno));
        rc = 1;
        goto done;
    }
    if (trace) fprintf(trace, "%s\n", trace_header);
    if (!res) goto done;

    const spartan_device_info *i = d->info;
    char why[1200] = "--no-pytorch";
    const char *script = o->no_pytorch ? NULL : bench_pytorch_script(o, why, sizeof why);
    unsigned every =
        o->sample_every ? o->sample_every : spartan_train_config_default().sample_every;
    char sampling[48] = "automatic";
    if (every) snprintf(sampling, sizeof sampling, "every %u steps", every);
    printf("spartan-bench train, Spartan %s, %s\n", spartan_version_string(), date);
    printf("device   %s %s (%s; %u compute units, %u MHz)\n", d->id, i->name,
           spartan_vendor_name(i->vendor), i->compute_units, i->clock_mhz);
    printf("driver   %s; %s\n", i->platform_version, i->driver_version);
    printf("run      batch %zu, %d epoch%s, %zu training images%s, %zu test images, seed %llu, "
           "SGD lr %g cosine, monitor sampling %s; the %s step in turn on the same batches\n",
           o->batch, o->epochs, o->epochs == 1 ? "" : "s", spartan_dataset_count(train),
           o->limit ? " (--limit)" : "", spartan_dataset_count(test), (unsigned long long)o->seed,
           (double)spartan_train_config_default().lr, sampling,
           kinds_named(o) ? "runs (policy x dropout kind)" : "policies");
    if (kinds_named(o) || o->dropout >= 0) {
        printf("dropout  kinds");
        for (int k = 0, first = 1; k < SPARTAN_DROPOUT_KIND_COUNT; k++)
            if (o->dropout_kinds & (1u << k)) {
                printf("%s %s", first ? "" : ",",
                       spartan_dropout_kind_name((spartan_dropout_kind)k));
                first = 0;
            }
        if (o->dropout >= 0)
            printf("; every dropout layer's rate %g (--dropout)", (double)o->dropout);
        else
            printf("; each dropout layer's own rate");
        if (o->dropout_kinds & ~(1u << SPARTAN_DROPOUT_BERNOULLI))
            printf("; row and tile runs at lr x (1 - p)^2, p the largest rate (whole neurons or "
                   "weight tiles dropped for the whole batch)");
        printf("\n");
    }
    printf("timing   wall clock of the training steps (upload, forward, backward, update, loss "
           "read back)\n");
    bench_print_timing(d, "layers", "each pass of each layer");
    if (script)
        printf("pytorch  %s %s, %d threads, OPENBLAS_NUM_THREADS=1\n", o->python, script,
               o->pytorch_threads);
    else
        printf("pytorch  no PyTorch line: %s\n", why);
    fflush(stdout);

    for (size_t mi = 0; mi < o->nmodels; mi++) {
        bench_train_result *r = &res[nres];
        cJSON *layers[NRUNS] = {NULL};
        size_t nspartan = 0;
        rc |= train_model(d, o, o->models[mi], train, test, trace, r, layers, &nspartan);
        size_t n = nspartan;
        if (script) {
            bench_train_result *p = &r[n++];
            p->model = o->models[mi];
            p->policy = "pytorch";
            p->dropout_kind = spartan_dropout_kind_name(SPARTAN_DROPOUT_BERNOULLI);
            snprintf(p->name, sizeof p->name, "pytorch");
            p->lr = NAN; /* the script's own (the default 0.05) */
            p->dropout = o->dropout >= 0 ? (double)o->dropout : NAN; /* passed to the script */
            p->channel_dropout = NAN;                                /* not in the script */
            p->dropback = NAN;
            p->device_mib = NAN; /* not measured */
            printf("  PyTorch CPU line:\n");
            p->state =
                bench_pytorch_train(o, script, o->models[mi], p) ? BENCH_RUN_FAILED : BENCH_RUN_OK;
            if (p->state != BENCH_RUN_OK) rc = 1;
        }
        /* against the dense run of the same dropout kind, and the Bernoulli run of the same
         * policy: measured side by side in this process */
        const char *bernoulli = spartan_dropout_kind_name(SPARTAN_DROPOUT_BERNOULLI);
        for (size_t k = 0; k < n; k++) {
            bench_train_result *x = &r[k];
            x->speedup = x->vs_bernoulli = x->vs_channels = x->vs_dropback = NAN;
            if (x->state != BENCH_RUN_OK) continue;
            const double ch = x->channel_dropout, db = x->dropback;
            x->speedup = epoch_of(r, n, spartan_policy_mode_name(SPARTAN_POLICY_DENSE),
                                  x->dropout_kind, ch, db) /
                         x->epoch_s;
            if (strcmp(x->dropout_kind, bernoulli))
                x->vs_bernoulli = epoch_of(r, n, x->policy, bernoulli, ch, db) / x->epoch_s;
            if (ch > 0.0)
                x->vs_channels = epoch_of(r, n, x->policy, x->dropout_kind, 0.0, db) / x->epoch_s;
            if (db > 0.0)
                x->vs_dropback = epoch_of(r, n, x->policy, x->dropout_kind, ch, 0.0) / x->epoch_s;
            emit(d, o, date, x, spartan_dataset_count(test), k < nspartan ? layers[k] : NULL, out);
        }
        nres += n;
        if (trace) fflush(trace);
    }
    print_table(o, res, nres);
done:
    if (trace && fclose(trace)) rc = 1;
    free(res);
    spartan_dataset_destroy(train);
    spartan_dataset_destroy(test);
    return rc;
}
