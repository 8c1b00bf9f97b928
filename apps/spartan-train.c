/* spartan-train: trains a preset model on an MNIST-format data set (Fashion-MNIST by default) on
 * any OpenCL device, with every GEMM on the dense or the sparse path, and reports per epoch and
 * per layer. Run with --help for the options. */
#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/number.h"
#include "spartan/io.h"
#include "spartan/nn.h"
#include "spartan/spartan.h"
#include "train_dist.h"

typedef struct options {
    const char *model, *device, *data, *metrics, *schedule, *save, *resume, *export_path;
    int epochs;
    size_t limit, test_limit, save_every;
    spartan_train_config cfg;
    int quiet, explain;
    int lr_set; /* --lr given: kept as it is whatever the dropout kind */
} options;

/* The distributed run's side (train_dist.h); NULL for a process alone. */
static train_dist *dist;

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: spartan-train [options]\n"
        "  --model NAME|FILE   mlp, lenet5, vgg-small, mlp-dropout, lstm (default mlp), or a\n"
        "                      model description file (docs/models.md)\n"
        "  --epochs N          epochs (default 1)\n"
        "  --batch N           images per step (default 64); under mpirun, per rank: a step\n"
        "                      takes ranks x N images (docs/distributed.md)\n"
        "  --lr X              learning rate (default 0.05; with --dropout-kind row or tile,\n"
        "                      0.05 (1 - p)^2 for the model's largest dropout layer's rate p:\n"
        "                      a step trains one sub-network for the whole batch,\n"
        "                      docs/training.md)\n"
        "  --schedule S        const or cosine learning-rate decay over the run (default cosine)\n"
        "  --momentum X        SGD momentum (default 0.9)\n"
        "  --weight-decay X    L2 weight decay (default 5e-4)\n"
        "  --seed N            parameters, shuffling and dropout (default 1)\n"
        "  --policy P          dense or sparse (the path of every pass), or adaptive (per\n"
        "                      layer and pass, by the device's cost model; the default)\n"
        "  --sample-every N    monitor sample period in steps (default 0: automatic, every\n"
        "                      step while the sparsity moves, up to every 32nd)\n"
        "  --dropout-kind K    every dropout layer's kind: bernoulli (each element by its own\n"
        "                      coin, the default), row (Approximate Random Dropout: whole\n"
        "                      neurons in a regular pattern per step; next to fc layers the\n"
        "                      dropped ones are not computed, an LSTM's too) or tile (whole\n"
        "                      tiles of the next fc layer's weights, skipped by its GEMMs)\n"
        "  --dropout P         every dropout layer's rate, and every LSTM's hidden units' "
        "dropout,\n"
        "                      in [0, 1) (default: each layer's own)\n"
        "  --channel-dropout P sensitivity-aware dropout of the convolutions' input channels\n"
        "                      (ReLU outputs), in [0, 1): the less active ones likelier, their\n"
        "                      passes skipped (default 0: none; lr x (1 - P)^2 unless --lr)\n"
        "  --dropback-density D  Dropback: after every update only the fraction D of the fc\n"
        "                      and conv parameters farthest from their decayed initial values\n"
        "                      keep theirs, the rest are reset to them (default 0: off)\n"
        "  --dropback-keep K   the same with a budget of K elements\n"
        "  --dropback-decay X  the initial values' decay per update (default 0.9)\n"
        "  --dropback-ramp N   the budget shrinks from all the parameters to its size over the\n"
        "                      first N updates (cubic schedule; default 0: from the first)\n"
        "  --dropback-interval N  updates from one selection of the tracked set to the next\n"
        "                      (default 1: every update); in between the set is kept\n"
        "  --device SEL        OpenCL device (as spartan-info lists; default $SPARTAN_DEVICE)\n"
        "  --data DIR          MNIST-format directory (default %s)\n"
        "  --limit N           train on the first N images only\n"
        "  --test-limit N      evaluate on the first N test images only\n"
        "  --metrics FILE      one record per epoch, CSV or JSON by the file's extension\n"
        "  --save FILE         checkpoint (safetensors) at the end of each epoch and of the run\n"
        "  --save-every N      with --save: a checkpoint every N steps instead of every epoch\n"
        "  --export FILE       at the end of the run, the parameters' non-zero elements alone\n"
        "                      (a pruned safetensors file: tools/load_pruned.py; with Dropback\n"
        "                      about 1 / density times smaller than the dense weights)\n"
        "  --resume FILE       continue the run a --save checkpoint comes from (same --batch,\n"
        "                      --limit, --seed): the losses equal an uninterrupted run's; without\n"
        "                      --model, the model is rebuilt from the checkpoint's description\n"
        "  --quiet             no progress lines\n",
        SPARTAN_FASHION_MNIST_DIR);
}

/* A decimal count from 0 to max: digits only, no overflow (core/number.h). */
static int parse_size(const char *s, uint64_t max, size_t *out) {
    uint64_t v;
    if (!sp_parse_u64(s, max < SIZE_MAX ? max : SIZE_MAX, &v)) return 0;
    *out = (size_t)v;
    return 1;
}

static int parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int parse_args(int argc, char **argv, options *o) {
    o->model = NULL; /* mlp, or with --resume the checkpoint's own model */
    o->schedule = "cosine";
    o->epochs = 1;
    o->cfg = spartan_train_config_default();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--quiet")) {
            o->quiet = 1;
            continue;
        }
        if (!strcmp(a, "--explain")) {
            o->explain = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "spartan-train: %s needs a value (see --help)\n", a);
            return 0;
        }
        const char *v = argv[++i];
        size_t n = 0;
        int ok = 1;
        if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--device"))
            o->device = v;
        else if (!strcmp(a, "--data"))
            o->data = v;
        else if (!strcmp(a, "--metrics"))
            o->metrics = v;
        else if (!strcmp(a, "--save"))
            o->save = v;
        else if (!strcmp(a, "--export"))
            o->export_path = v;
        else if (!strcmp(a, "--resume"))
            o->resume = v;
        else if (!strcmp(a, "--save-every"))
            ok = parse_size(v, SIZE_MAX, &o->save_every) && o->save_every > 0;
        else if (!strcmp(a, "--schedule")) {
            o->schedule = v;
            ok = !strcmp(v, "const") || !strcmp(v, "cosine");
        } else if (!strcmp(a, "--epochs")) {
            ok = parse_size(v, 99999, &n) && n > 0;
            o->epochs = (int)n;
        } else if (!strcmp(a, "--batch")) {
            ok = parse_size(v, UINT32_MAX, &o->cfg.batch) && o->cfg.batch > 0;
        } else if (!strcmp(a, "--limit")) {
            ok = parse_size(v, UINT32_MAX, &o->limit) && o->limit > 0;
        } else if (!strcmp(a, "--test-limit")) {
            ok = parse_size(v, UINT32_MAX, &o->test_limit) && o->test_limit > 0;
        } else if (!strcmp(a, "--seed")) {
            ok = sp_parse_u64(v, UINT64_MAX, &o->cfg.seed);
        } else if (!strcmp(a, "--sample-every")) {
            ok = parse_size(v, 999999, &n);
            o->cfg.sample_every = (unsigned)n;
        } else if (!strcmp(a, "--lr")) {
            ok = parse_float(v, &o->cfg.lr) && o->cfg.lr > 0;
            o->lr_set = 1;
        } else if (!strcmp(a, "--momentum")) {
            ok = parse_float(v, &o->cfg.momentum) && o->cfg.momentum >= 0;
        } else if (!strcmp(a, "--weight-decay")) {
            ok = parse_float(v, &o->cfg.weight_decay) && o->cfg.weight_decay >= 0;
        } else if (!strcmp(a, "--policy")) {
            ok = spartan_policy_mode_parse(v, &o->cfg.policy) == SPARTAN_OK;
        } else if (!strcmp(a, "--dropout-kind")) {
            ok = 0;
            for (int k = 0; k < SPARTAN_DROPOUT_KIND_COUNT; k++)
                if (!strcmp(v, spartan_dropout_kind_name((spartan_dropout_kind)k))) {
                    o->cfg.dropout_kind = (spartan_dropout_kind)k;
                    ok = 1;
                }
        } else if (!strcmp(a, "--dropout")) {
            ok = parse_float(v, &o->cfg.dropout) && o->cfg.dropout >= 0 && o->cfg.dropout < 1;
        } else if (!strcmp(a, "--channel-dropout")) {
            ok = parse_float(v, &o->cfg.channel_dropout) && o->cfg.channel_dropout >= 0 &&
                 o->cfg.channel_dropout < 1;
        } else if (!strcmp(a, "--dropback-density")) {
            ok = parse_float(v, &o->cfg.dropback_density) && o->cfg.dropback_density > 0 &&
                 o->cfg.dropback_density <= 1;
        } else if (!strcmp(a, "--dropback-keep")) {
            ok = parse_size(v, UINT32_MAX, &o->cfg.dropback_keep) && o->cfg.dropback_keep > 0;
        } else if (!strcmp(a, "--dropback-ramp")) {
            ok = parse_size(v, UINT32_MAX, &o->cfg.dropback_ramp);
        } else if (!strcmp(a, "--dropback-interval")) {
            ok = parse_size(v, UINT32_MAX, &o->cfg.dropback_interval) &&
                 o->cfg.dropback_interval > 0;
        } else if (!strcmp(a, "--dropback-decay")) {
            ok = parse_float(v, &o->cfg.dropback_decay) && o->cfg.dropback_decay > 0 &&
                 o->cfg.dropback_decay <= 1;
        } else {
            fprintf(stderr, "spartan-train: unknown option %s (see --help)\n", a);
            return 0;
        }
        if (!ok) {
            fprintf(stderr, "spartan-train: bad value \"%s\" for %s\n", v, a);
            return 0;
        }
    }
    if (!o->model && !o->resume) o->model = "mlp";
    return 1;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- The loader: the next batch is gathered and converted on a second thread while the
 * current one trains. */
typedef struct loader {
    const spartan_dataset *d;
    size_t first, count;
    float *images, *labels;
    spartan_status st;
} loader;

static void *load_batch(void *arg) {
    loader *l = arg;
    l->st = spartan_dataset_batch(l->d, l->first, l->count, l->images, l->labels);
    return NULL;
}

typedef struct epoch_record {
    int epoch;
    double train_loss, train_acc, test_loss, test_acc, seconds, images_per_s, lr;
} epoch_record;

/* The test set's loss and accuracy; in a distributed run each rank evaluates its share (the
 * r-th of R consecutive parts) and the sums are added up. 0 when a call failed (ranks: after the
 * sums, so that every rank learns of it). */
static int evaluate(spartan_model *m, const spartan_dataset *test, size_t batch, float *img,
                    float *lab, double *loss, double *acc) {
    const size_t n = spartan_dataset_count(test), R = (size_t)train_dist_size(dist),
                 r = (size_t)train_dist_rank(dist);
    double sums[3] = {0.0, 0.0, 0.0}; /* loss sum, right predictions, failures */
    for (size_t first = n * r / R, end = n * (r + 1) / R; first < end; first += batch) {
        size_t count = end - first < batch ? end - first : batch;
        spartan_step_result res;
        if (spartan_dataset_batch(test, first, count, img, lab) != SPARTAN_OK ||
            spartan_model_evaluate(m, img, lab, count, &res) != SPARTAN_OK) {
            sums[2] = 1.0;
            break;
        }
        sums[0] += res.loss * (double)count;
        sums[1] += (double)res.correct;
    }
    if (!train_dist_sum(dist, sums, 3) || sums[2] > 0) return 0;
    *loss = n ? sums[0] / (double)n : 0.0;
    *acc = n ? sums[1] / (double)n : 0.0;
    return 1;
}

/* Dropback after an epoch: the tracked elements against the budget, the threshold, the decay,
 * and each parameterised layer's density. */
/* The Dropback line of an epoch: the tracked set, its threshold and decay, each layer's density,
 * and the set's churn over the updates since the last line (*joined0 and *updates0: the totals
 * then, updated). */
static void print_dropback(spartan_model *m, uint64_t *joined0, size_t *updates0) {
    spartan_dropback_info d;
    const size_t n = spartan_model_layer_count(m);
    size_t *per = calloc(n ? n : 1, sizeof *per);
    if (!per || spartan_model_dropback_info(m, &d, per) != SPARTAN_OK) {
        free(per);
        return;
    }
    printf("  dropback: %zu of %zu parameters tracked (budget %zu, %.2f %%), threshold %.3g, "
           "decay %.3g;",
           d.tracked, d.total, d.keep, 100.0 * (double)d.tracked / (double)d.total,
           (double)d.threshold, (double)d.decay);
    for (size_t i = 0; i < n; i++) {
        spartan_layer_info li;
        if (spartan_model_layer_info(m, i, &li) != SPARTAN_OK || !li.params) continue;
        printf(" %s %.1f %%", li.name, 100.0 * (double)per[i] / (double)li.params);
    }
    const size_t updates = d.updates - *updates0;
    const uint64_t joined = d.joined_total - *joined0;
    if (updates)
        printf("\n  dropback churn: %" PRIu64 " elements joined the tracked set over %zu updates%s "
               "(%.1f per update, %.3f %% of the budget), %zu at the last; the threshold was near "
               "the last one in %zu of %zu selections so far",
               joined, updates, *updates0 ? "" : " (the first update's budget included)",
               (double)joined / (double)updates,
               100.0 * (double)joined / (double)updates / (double)d.keep, d.joined,
               d.selections - d.full_counts, d.selections);
    printf("\n");
    *joined0 = d.joined_total;
    *updates0 = d.updates;
    free(per);
}

/* The per-layer report: for GEMM layers the path and device time per step of each pass; for
 * the others their forward and backward time; the monitored fractions of zeros. Its first line
 * says where the device times come from (the context's timing). */
/* Blocking host-device synchronisations of the training steps (spartan_step_result.syncs). */
typedef struct sync_count {
    size_t steps, total, most, launches;
} sync_count;

static void print_syncs(const sync_count *c) {
    if (!c->steps) return;
    printf("host-device syncs per training step: %.2f on average, %zu at most (%zu steps); "
           "kernel launches per step: %.1f\n",
           (double)c->total / (double)c->steps, c->most, c->steps,
           (double)c->launches / (double)c->steps);
}

/* The device memory of the library's buffers: now, and the most at once so far. */
static void print_memory(const spartan_context *ctx) {
    size_t now, peak;
    spartan_context_memory(ctx, &now, &peak);
    printf("device memory (the library's buffers): %.1f MiB held now, %.1f MiB at most\n",
           (double)now / 1048576.0, (double)peak / 1048576.0);
}

/* The sparsity at work, per GEMM layer and pass: the fraction of multiply-adds the sparse runs
 * skipped (the zeros of the operand the pass's sparse form skips, over the sparse share of its
 * calls), the ideal speedup 1 / (1 - s) of skipping them, and the speedup achieved against the
 * dense path at that sparsity as the policy's model has it (calibrated on this device, corrected
 * online by the measured times), also as a fraction of the ideal. */
/* Dropback's weight-sparse path per fc layer and pass: both measured times, the ideal (1 / W's
 * density) and the share of it achieved. */
static void print_weight_sparse(spartan_model *m) {
    int header = 0;
    for (size_t i = 0; i < spartan_model_layer_count(m); i++) {
        spartan_layer_info li;
        if (spartan_model_layer_info(m, i, &li) != SPARTAN_OK || !li.wsparse_builds) continue;
        if (!header++)
            printf(
                "\nweight-sparse path (Dropback; W's non-zeros only, once d is 0; times: running "
                "averages of the measured passes)\n%-14s %-10s %-8s %-7s %-10s %-10s %-8s "
                "%-8s %-9s %s\n",
                "layer", "pass", "W dense", "builds", "w-sparse", "policy's", "ratio", "ideal",
                "of ideal", "calls");
        for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
            if (!li.wsparse_ms[p] && !li.other_ms[p]) continue;
            const double ideal = li.wsparse_density > 0 ? 1.0 / li.wsparse_density : 0.0;
            char ws[16] = "-", other[16] = "-", ratio[16] = "-", of[16] = "-";
            if (li.wsparse_ms[p]) snprintf(ws, sizeof ws, "%.3f ms", li.wsparse_ms[p]);
            if (li.other_ms[p]) snprintf(other, sizeof other, "%.3f ms", li.other_ms[p]);
            if (li.wsparse_ms[p] && li.other_ms[p]) {
                const double r = li.other_ms[p] / li.wsparse_ms[p];
                snprintf(ratio, sizeof ratio, "%.2fx", r);
                if (ideal > 0) snprintf(of, sizeof of, "%.0f %%", 100.0 * r / ideal);
            }
            char dens[16], id[16] = "-";
            snprintf(dens, sizeof dens, "%.1f %%", 100.0 * li.wsparse_density);
            if (ideal > 0) snprintf(id, sizeof id, "%.1fx", ideal);
            printf("%-14s %-10s %-8s %-7zu %-10s %-10s %-8s %-8s %-9s %zu of %zu\n", li.name,
                   p == SPARTAN_PASS_FWD ? "fwd" : "bwd_input", dens, li.wsparse_builds, ws, other,
                   ratio, id, of, li.wsparse_calls[p], li.calls[p]);
        }
    }
}

static void print_sparsity_at_work(spartan_model *m) {
    spartan_policy *p = spartan_model_policy(m);
    printf("\nsparsity at work (GEMM passes; achieved: dense / sparse time from the policy's "
           "model, corrected by measurements; - when no dense time is known: --policy "
           "adaptive)\n");
    printf("%-14s %-10s %-5s %-9s %-9s %-8s %-9s %s\n", "layer", "pass", "form", "zeros", "skipped",
           "ideal", "achieved", "of ideal");
    for (size_t i = 0; i < spartan_model_layer_count(m); i++) {
        spartan_layer_info li;
        if (spartan_model_layer_info(m, i, &li) != SPARTAN_OK || !li.gemm) continue;
        for (int pass = 0; pass < SPARTAN_PASS_COUNT; pass++) {
            if (!li.calls[pass] || li.form[pass] == SPARTAN_FORM_NONE) continue;
            double s = li.form[pass] == SPARTAN_FORM_ON_DY ? li.grad_zeros : li.zeros;
            if (s < 0) continue;
            const double share = (double)li.sparse_calls[pass] / (double)li.calls[pass];
            const double ideal = s < 1.0 ? 1.0 / (1.0 - s) : 0.0;
            double d, sp;
            char achieved[16] = "-", frac[16] = "-";
            if (spartan_policy_predict(p, i, (spartan_pass)pass, s, &d, &sp) == SPARTAN_OK &&
                sp > 0 && d > 0 && ideal > 0) {
                snprintf(achieved, sizeof achieved, "%.2fx", d / sp);
                snprintf(frac, sizeof frac, "%.0f %%", 100.0 * d / sp / ideal);
            }
            printf("%-14s %-10s %-5s %-9.2f %-9.2f %-8.2f %-9s %s\n", li.name,
                   spartan_pass_name((spartan_pass)pass), spartan_sparse_form_name(li.form[pass]),
                   s, s * share, ideal, achieved, frac);
        }
    }
}

static void print_layer_table(spartan_context *ctx, spartan_model *m, const sync_count *syncs) {
    spartan_timing timing = SPARTAN_TIMING_EVENTS;
    const char *why = "";
    spartan_context_timing(ctx, &timing, &why);
    printf("\nper-layer report (device ms per step; zeros: monitored fraction of the layer's input "
           "X (GEMM layers) or output, and of the gradient dY reaching a GEMM layer: first "
           "sample -> mean over the last epoch)\n");
    if (timing == SPARTAN_TIMING_EVENTS)
        printf("device times: from OpenCL profiling events (markers between the passes)\n");
    else
        printf("device times: from the host clock, read after a clFinish between the passes (%s)\n",
               why);
    print_syncs(syncs);
    print_memory(ctx);
    printf("%-14s %-17s %-22s %-22s %-22s %-13s %-13s\n", "layer", "gemm m x n x k", "fwd",
           "bwd_input", "bwd_weight", "zeros", "zeros dY");
    for (size_t i = 0; i < spartan_model_layer_count(m); i++) {
        spartan_layer_info li;
        if (spartan_model_layer_info(m, i, &li) != SPARTAN_OK || li.type == SPARTAN_LAYER_FLATTEN)
            continue;
        char shape[32] = "-", cell[SPARTAN_PASS_COUNT][32], z[24] = "-", gz[24] = "-";
        if (li.gemm) snprintf(shape, sizeof shape, "%zux%zux%zu", li.m, li.n, li.k);
        for (int p = 0; p < SPARTAN_PASS_COUNT; p++) {
            size_t calls = li.calls[p];
            if (!calls) {
                snprintf(cell[p], sizeof cell[p], "-");
                continue;
            }
            /* the policy's paths; +w: some calls ran the weight-sparse GEMM (all: wsparse) */
            const size_t ws = li.wsparse_calls[p], rest = calls - ws;
            const char *path = !li.gemm                     ? ""
                               : !rest                      ? "wsparse "
                               : li.sparse_calls[p] == rest ? (ws ? "sparse+w " : "sparse ")
                               : li.sparse_calls[p] == 0    ? (ws ? "dense+w " : "dense ")
                                                            : (ws ? "mixed+w " : "mixed ");
            /* a convolution's engine: implicit kernels or the patch matrix (im2col) */
            const char *engine =
                li.engine[p] && strcmp(li.engine[p], "gemm") && strcmp(li.engine[p], "wsparse")
                    ? li.engine[p]
                    : "";
            snprintf(cell[p], sizeof cell[p], "%s%s%s%.3f", path, engine, *engine ? " " : "",
                     1e3 * li.seconds[p] / (double)calls);
        }
        if (li.zeros_first >= 0)
            snprintf(z, sizeof z, "%.2f -> %.2f", li.zeros_first,
                     li.zeros >= 0 ? li.zeros : li.zeros_first);
        if (li.grad_zeros_first >= 0)
            snprintf(gz, sizeof gz, "%.2f -> %.2f", li.grad_zeros_first,
                     li.grad_zeros >= 0 ? li.grad_zeros : li.grad_zeros_first);
        printf("%-14s %-17s %-22s %-22s %-22s %-13s %-13s\n", li.name, shape, cell[0], cell[1],
               cell[2], z, gz);
    }
}

/* --explain: the policy's decisions since event `first`, one line each. */
static size_t print_events(spartan_model *m, size_t first) {
    spartan_policy *p = spartan_model_policy(m);
    size_t n = spartan_policy_events(p, first, NULL, 0);
    for (size_t i = first; i < n; i++) {
        spartan_policy_event e;
        spartan_layer_info li;
        if (!spartan_policy_events(p, i, &e, 1) ||
            spartan_model_layer_info(m, e.layer, &li) != SPARTAN_OK)
            continue;
        char change[32];
        if (e.from == e.to)
            snprintf(change, sizeof change, "%s", spartan_path_name(e.to));
        else
            snprintf(change, sizeof change, "%s -> %s", spartan_path_name(e.from),
                     spartan_path_name(e.to));
        printf("  policy: step %zu %s %s: %s at %.2f zeros (predicted dense %.3f ms, sparse "
               "%.3f ms): %s\n",
               e.step, li.name, spartan_pass_name(e.pass), change, e.sparsity, e.dense_ms,
               e.sparse_ms, e.reason);
    }
    return n;
}

/* --explain at the end: each GEMM pass's prediction at the last sampled sparsity. */
static void print_predictions(spartan_model *m, const sync_count *syncs) {
    spartan_policy *p = spartan_model_policy(m);
    printf("\n");
    print_syncs(syncs);
    printf("policy predictions at the last monitored sparsity (ms; the path held and why):\n");
    for (size_t i = 0; i < spartan_model_layer_count(m); i++) {
        spartan_layer_info li;
        if (spartan_model_layer_info(m, i, &li) != SPARTAN_OK || !li.gemm) continue;
        for (int pass = 0; pass < SPARTAN_PASS_COUNT; pass++) {
            double d, sp;
            if (!li.calls[pass]) continue;
            if (spartan_policy_predict(p, i, (spartan_pass)pass, li.zeros_last, &d, &sp) !=
                SPARTAN_OK) {
                printf("  %-6s %-10s %s (%s)\n", li.name, spartan_pass_name((spartan_pass)pass),
                       spartan_path_name(li.path[pass]), li.reason[pass]);
                continue;
            }
            spartan_gemm_path impl = spartan_policy_dense_path(p, i, (spartan_pass)pass);
            printf("  %-6s %-10s zeros %.2f: dense (%s) %8.3f  sparse %8.3f -> %s (%s)\n", li.name,
                   spartan_pass_name((spartan_pass)pass), li.zeros_last,
                   impl == SPARTAN_GEMM_CLBLAST ? "clblast"
                   : impl == SPARTAN_GEMM_OWN   ? "own"
                                                : "best",
                   d, sp, spartan_path_name(li.path[pass]), li.reason[pass]);
        }
    }
}

static int write_metrics(const char *path, const options *o, const epoch_record *rec, int n) {
    const char *dot = strrchr(path, '.');
    int json = dot && !strcmp(dot, ".json");
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "spartan-train: cannot write %s: %s\n", path, strerror(errno));
        return 0;
    }
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "model", o->model);
            cJSON_AddStringToObject(r, "policy", spartan_policy_mode_name(o->cfg.policy));
            cJSON_AddStringToObject(r, "dropout_kind",
                                    spartan_dropout_kind_name(o->cfg.dropout_kind));
            cJSON_AddNumberToObject(r, "channel_dropout", o->cfg.channel_dropout);
            cJSON_AddNumberToObject(r, "epoch", rec[i].epoch);
            cJSON_AddNumberToObject(r, "train_loss", rec[i].train_loss);
            cJSON_AddNumberToObject(r, "train_acc", rec[i].train_acc);
            cJSON_AddNumberToObject(r, "test_loss", rec[i].test_loss);
            cJSON_AddNumberToObject(r, "test_acc", rec[i].test_acc);
            cJSON_AddNumberToObject(r, "seconds", rec[i].seconds);
            cJSON_AddNumberToObject(r, "images_per_s", rec[i].images_per_s);
            cJSON_AddNumberToObject(r, "lr", rec[i].lr);
            /* the ranks of a distributed run and its global batch (images_per_s: all ranks') */
            cJSON_AddNumberToObject(r, "ranks", train_dist_size(dist));
            cJSON_AddNumberToObject(r, "batch",
                                    (double)(o->cfg.batch * (size_t)train_dist_size(dist)));
            cJSON_AddItemToArray(arr, r);
        }
        char *text = cJSON_Print(arr);
        if (text) fprintf(f, "%s\n", text);
        free(text);
        cJSON_Delete(arr);
    } else {
        fprintf(f,
                "model,policy,epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s,"
                "lr\n");
        for (int i = 0; i < n; i++)
            fprintf(f, "%s,%s,%d,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f,%.6g\n", o->model,
                    spartan_policy_mode_name(o->cfg.policy), rec[i].epoch, rec[i].train_loss,
                    rec[i].train_acc, rec[i].test_loss, rec[i].test_acc, rec[i].seconds,
                    rec[i].images_per_s, rec[i].lr);
    }
    return fclose(f) == 0;
}

static int fail(const char *what, spartan_context *ctx) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s: %s", what, spartan_last_error(ctx));
    if (dist)
        fprintf(stderr, "spartan-train: rank %d of %d: %s\n", train_dist_rank(dist),
                train_dist_size(dist), msg);
    else
        fprintf(stderr, "spartan-train: %s\n", msg);
    train_dist_failed(dist, msg);
    return 1;
}

/* ---- Checkpoints: the run's position rides along as extra metadata, so that --resume continues
 * at the same epoch and step, and prints the same epoch averages, as an uninterrupted run. */
typedef struct position {
    size_t epoch, step; /* epochs completed, steps done in the next one */
    double lsum;        /* that epoch's loss sum, right predictions and images so far */
    size_t correct, seen;
} position;

static int save_checkpoint(spartan_context *ctx, spartan_model *m, const options *o, size_t steps,
                           const position *p) {
    char v[8][32];
    snprintf(v[7], sizeof v[7], "%d", train_dist_size(dist));
    snprintf(v[0], sizeof v[0], "%zu", p->epoch);
    snprintf(v[1], sizeof v[1], "%zu", p->step);
    snprintf(v[2], sizeof v[2], "%zu", steps);
    snprintf(v[3], sizeof v[3], "%d", o->epochs);
    snprintf(v[4], sizeof v[4], "%.17g", p->lsum);
    snprintf(v[5], sizeof v[5], "%zu", p->correct);
    snprintf(v[6], sizeof v[6], "%zu", p->seen);
    const spartan_checkpoint_meta extra[] = {{"epoch", v[0]},           {"step_in_epoch", v[1]},
                                             {"steps_per_epoch", v[2]}, {"epochs", v[3]},
                                             {"schedule", o->schedule}, {"epoch_loss_sum", v[4]},
                                             {"epoch_correct", v[5]},   {"epoch_seen", v[6]},
                                             {"model", o->model},       {"ranks", v[7]}};
    if (spartan_checkpoint_save(m, o->save, extra, sizeof extra / sizeof extra[0]) != SPARTAN_OK)
        return !fail("saving a checkpoint", ctx);
    return 1;
}

/* n with a comma between thousands, into buf. */
static const char *thousands(size_t n, char buf[32]) {
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%zu", n), at = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0) buf[at++] = ',';
        buf[at++] = digits[i];
    }
    buf[at] = '\0';
    return buf;
}

/* --export: the pruned export of the trained model, and one line of what it saved. */
static int export_pruned(spartan_context *ctx, spartan_model *m, const options *o, double acc) {
    char a[32];
    snprintf(a, sizeof a, "%.4f", acc);
    const spartan_checkpoint_meta extra[] = {{"model", o->model}, {"test_accuracy", a}};
    spartan_export_info x;
    if (spartan_model_export_pruned(m, o->export_path, extra, 2, &x) != SPARTAN_OK)
        return !fail("exporting the pruned model", ctx);
    char b[4][32];
    const int smaller = x.file_bytes <= x.dense_bytes;
    printf("export: %s, %s of %s parameters (%.1f %%), %s bytes against %s dense (%.1fx %s)\n",
           o->export_path, thousands(x.nonzero, b[0]), thousands(x.elements, b[1]),
           x.elements ? 100.0 * (double)x.nonzero / (double)x.elements : 0.0,
           thousands(x.file_bytes, b[2]), thousands(x.dense_bytes, b[3]),
           smaller ? (double)x.dense_bytes / (double)x.file_bytes
                   : (double)x.file_bytes / (double)x.dense_bytes,
           smaller ? "smaller" : "larger");
    return 1;
}

/* --model: a preset's name, else a description file (docs/models.md); without --model, the
 * model the --resume checkpoint describes (its 'description' entry), named after its 'model'. */
static spartan_status create_model(spartan_context *ctx, options *o, spartan_model **m) {
    static char name[1024];
    if (!o->model) {
        char *text = malloc(1 << 16);
        spartan_status st =
            text ? spartan_checkpoint_meta_get(o->resume, "description", text, 1 << 16)
                 : SPARTAN_STATUS_OUT_OF_HOST_MEMORY;
        if (st == SPARTAN_OK) st = spartan_model_create_from_text(ctx, text, m);
        free(text);
        if (spartan_checkpoint_meta_get(o->resume, "model", name, sizeof name) != SPARTAN_OK ||
            !name[0])
            snprintf(name, sizeof name, "the model of %s", o->resume);
        o->model = name;
        return st;
    }
    const char *model = o->model;
    for (const char *const *p = spartan_model_presets(); *p; p++)
        if (!strcmp(*p, model)) return spartan_model_create_preset(ctx, model, m);
    return spartan_model_create_from_file(ctx, model, m);
}

/* A metadata value of the --resume file into buf ("" when absent). */
static const char *meta(const options *o, const char *key, char *buf, size_t size) {
    if (spartan_checkpoint_meta_get(o->resume, key, buf, size) != SPARTAN_OK) buf[0] = '\0';
    return buf;
}

/* The epoch's loss sum, right predictions and images so far summed over the ranks, into all. */
static int sum_ranks(double lsum, size_t correct, size_t seen, double all[3]) {
    all[0] = lsum;
    all[1] = (double)correct;
    all[2] = (double)seen;
    return train_dist_sum(dist, all, 3);
}

/* A distributed run: every rank's model and options are rank 0's (what shapes the steps, so
 * that the ranks cannot fall out of step or train different things), and where a resume put
 * them. Not compared: the device, the policy (per device), the paths of the files (per node). */
static int check_ranks(spartan_model *m, const options *o, size_t steps, const position *at) {
    size_t len = spartan_model_describe(m, NULL, 0);
    char *text = malloc(len + 2048);
    if (!text) return 0;
    size_t n = spartan_model_describe(m, text, len + 1);
    const spartan_train_config *c = &o->cfg;
    snprintf(text + n, 2048,
             "batch per rank %zu\nsteps per epoch %zu\nepochs %d\nseed %llu\nlr %.9g\n"
             "schedule %s\nmomentum %.9g\nweight decay %.9g\ndropout kind %s\ndropout %.9g\n"
             "channel dropout %.9g\ndropback density %.9g keep %zu decay %.9g interval %zu ramp "
             "%zu\nsample every %u\nsave %s every %zu\nquiet %d\nresumed at epoch %zu step %zu\n",
             c->batch, steps, o->epochs, (unsigned long long)c->seed, (double)c->lr, o->schedule,
             (double)c->momentum, (double)c->weight_decay,
             spartan_dropout_kind_name(c->dropout_kind), (double)c->dropout,
             (double)c->channel_dropout, (double)c->dropback_density, c->dropback_keep,
             (double)c->dropback_decay, c->dropback_interval, c->dropback_ramp, c->sample_every,
             o->save ? "yes" : "no", o->save_every, o->quiet, at->epoch, at->step);
    const int ok = train_dist_check(dist, "the model and the training options", text);
    free(text);
    return ok;
}

/* Loads --resume into m and finds where the run stands; 0 (after a message) when this run cannot
 * continue from it. */
static int resume(spartan_context *ctx, spartan_model *m, const options *o, size_t steps,
                  position *p) {
    if (spartan_checkpoint_load(m, o->resume) != SPARTAN_OK) return !fail("resuming", ctx);
    char b[64], want[32];
    size_t spe = 0, batch = 0, seed = 0, ranks = 1;
    int ok = parse_size(meta(o, "epoch", b, sizeof b), SIZE_MAX, &p->epoch) &&
             parse_size(meta(o, "step_in_epoch", b, sizeof b), SIZE_MAX, &p->step) &&
             parse_size(meta(o, "steps_per_epoch", b, sizeof b), SIZE_MAX, &spe) &&
             parse_size(meta(o, "epoch_correct", b, sizeof b), SIZE_MAX, &p->correct) &&
             parse_size(meta(o, "epoch_seen", b, sizeof b), SIZE_MAX, &p->seen) &&
             parse_size(meta(o, "batch", b, sizeof b), SIZE_MAX, &batch) &&
             parse_size(meta(o, "seed", b, sizeof b), SIZE_MAX, &seed) &&
             *meta(o, "epoch_loss_sum", b, sizeof b);
    p->lsum = strtod(b, NULL);
    /* a distributed run's batch is its ranks' (before them: one) */
    if (*meta(o, "ranks", b, sizeof b)) ok = ok && parse_size(b, 1u << 20, &ranks) && ranks > 0;
    const char *why =
        !ok ? "it has no run position (not written by spartan-train --save)"
        : spe != steps || batch * ranks != o->cfg.batch * (size_t)train_dist_size(dist)
            ? "it comes from a run with other steps per epoch (--batch times the "
              "ranks, --limit)"
        : seed != o->cfg.seed ? "it comes from a run with another --seed"
        : p->epoch * steps + p->step != spartan_model_steps(m)
            ? "its position disagrees with its step count"
        : p->epoch >= (size_t)o->epochs ? "it is at the end of the run (--epochs)"
                                        : NULL;
    if (why) {
        fprintf(stderr, "spartan-train: cannot resume from %s: %s\n", o->resume, why);
        return 0;
    }
    char chans[32], dbd[32], dbk[24], dbe[32], dbi[24];
    snprintf(chans, sizeof chans, "%.9g", (double)o->cfg.channel_dropout);
    snprintf(dbd, sizeof dbd, "%.9g", (double)o->cfg.dropback_density);
    snprintf(dbk, sizeof dbk, "%zu", o->cfg.dropback_keep);
    snprintf(dbe, sizeof dbe, "%.9g", (double)o->cfg.dropback_decay);
    snprintf(dbi, sizeof dbi, "%zu", o->cfg.dropback_interval);
    /* Dropback: a run from before it had none (its device state, the guess of the threshold and
     * the marks of the tracked set, starts afresh: with an interval of 1 the weights continue
     * exactly, the first update's churn counts the whole set; with a longer one the first update
     * selects, where the uninterrupted run kept its set) */
    const int db_differs =
        strcmp(*meta(o, "dropback_density", b, sizeof b) ? b : "0", dbd) ||
        strcmp(*meta(o, "dropback_keep", b, sizeof b) ? b : "0", dbk) ||
        ((o->cfg.dropback_density > 0.0f || o->cfg.dropback_keep) &&
         (strcmp(meta(o, "dropback_decay", b, sizeof b), dbe) ||
          strcmp(meta(o, "dropback_interval", b, sizeof b), dbi) || o->cfg.dropback_interval > 1));
    snprintf(want, sizeof want, "%d", o->epochs);
    if (strcmp(meta(o, "epochs", b, sizeof b), want) ||
        strcmp(meta(o, "schedule", b, sizeof b), o->schedule) ||
        strcmp(meta(o, "policy", b, sizeof b), spartan_policy_mode_name(o->cfg.policy)) ||
        strcmp(*meta(o, "dropout_kind", b, sizeof b) ? b : "bernoulli", /* before kinds */
               spartan_dropout_kind_name(o->cfg.dropout_kind)) ||
        strcmp(*meta(o, "channel_dropout", b, sizeof b) ? b : "0", chans) || /* before it: 0 */
        db_differs)
        if (train_dist_rank(dist) == 0) /* one warning for all the ranks */
            fprintf(stderr,
                    "spartan-train: warning: %s comes from a run with other --epochs, "
                    "--schedule, --policy, --dropout-kind, --channel-dropout or --dropback-*: this "
                    "run will not repeat it exactly\n",
                    o->resume);
    printf("resumed from %s: step %zu (epoch %zu, step %zu of %zu)\n", o->resume,
           spartan_model_steps(m), p->epoch + 1, p->step, steps);
    return 1;
}

int main(int argc, char **argv) {
    options o;
    memset(&o, 0, sizeof o);
    if (!parse_args(argc, argv, &o)) return 2;
    /* under mpirun: one rank of a data-parallel run (train_dist.h) */
    if (!train_dist_start(&argc, &argv, &dist)) return 1;
    const int rank = train_dist_rank(dist), ranks = train_dist_size(dist);

    spartan_dataset *train = NULL, *test = NULL;
    spartan_context *ctx = NULL;
    spartan_model *m = NULL;
    int rc = 1;
    float *buf[2][2] = {{NULL, NULL}, {NULL, NULL}};
    epoch_record *rec = NULL;
    char devsel[32];
    spartan_context_opts copts = spartan_context_opts_default();
    if (spartan_dataset_load(o.data, "train", &train) != SPARTAN_OK) {
        rc = fail("loading the training set", NULL);
        goto done;
    }
    if (spartan_dataset_load(o.data, "test", &test) != SPARTAN_OK) {
        rc = fail("loading the test set", NULL);
        goto done;
    }
    if (o.limit) spartan_dataset_limit(train, o.limit);
    if (o.test_limit) spartan_dataset_limit(test, o.test_limit);

    /* a rank's device: its share of the devices the selection matches (train_dist_device) */
    copts.device = train_dist_device(dist, o.device ? o.device : getenv("SPARTAN_DEVICE"), devsel,
                                     sizeof devsel);
    if (dist && !copts.device) goto done;
    if (spartan_context_create(&copts, &ctx) != SPARTAN_OK) {
        rc = fail("creating the OpenCL context", NULL);
        goto done;
    }
    if (create_model(ctx, &o, &m) != SPARTAN_OK) {
        rc = fail("making the model", ctx);
        goto done;
    }
    size_t in_h, in_w, in_c, classes;
    spartan_model_shape(m, &in_h, &in_w, &in_c, &classes);
    if (in_h != spartan_dataset_rows(train) || in_w != spartan_dataset_cols(train) || in_c != 1 ||
        classes != 10) {
        fprintf(stderr,
                "spartan-train: model %s takes %zux%zux%zu images in %zu classes; the data set has "
                "%zux%zux1 images in 10 classes\n",
                o.model, in_h, in_w, in_c, classes, spartan_dataset_rows(train),
                spartan_dataset_cols(train));
        rc = 2;
        goto done;
    }
    /* row, tile and channel dropout train the same sub-network on the whole batch: a smaller
     * default step (docs/training.md, "Structured dropout") */
    if (!o.lr_set) {
        double p = o.cfg.dropout_kind != SPARTAN_DROPOUT_BERNOULLI
                       ? spartan_model_dropout_max(m, o.cfg.dropout)
                       : 0.0;
        if (o.cfg.channel_dropout > p) p = o.cfg.channel_dropout; /* its channels: the same */
        if (p > 0.0) o.cfg.lr = (float)((double)o.cfg.lr * (1.0 - p) * (1.0 - p));
    }
    if (spartan_model_prepare(m, &o.cfg) != SPARTAN_OK) {
        rc = fail("preparing the model", ctx);
        goto done;
    }
    /* a step takes the next `ranks` batches of the shuffled order, rank r the r-th of them: the
     * step of one device with a batch `ranks` times as large */
    const size_t batch = o.cfg.batch, gbatch = batch * (size_t)ranks,
                 px = spartan_dataset_rows(train) * spartan_dataset_cols(train);
    const size_t n = spartan_dataset_count(train), steps = n / gbatch;
    if (steps == 0) {
        fprintf(stderr, "spartan-train: %zu training images make no batch of %zu\n", n, gbatch);
        rc = 2;
        goto done;
    }
    for (int b = 0; b < 2; b++) {
        buf[b][0] = malloc(batch * px * sizeof(float));
        buf[b][1] = malloc(batch * sizeof(float));
        if (!buf[b][0] || !buf[b][1]) {
            fprintf(stderr, "spartan-train: out of host memory\n");
            goto done;
        }
    }
    rec = calloc((size_t)o.epochs, sizeof *rec);
    if (!rec) goto done;

    const spartan_device_info *dev = spartan_context_device(ctx);
    size_t nparams = 0;
    for (size_t i = 0; i < spartan_model_param_count(m); i++) {
        spartan_param p;
        if (spartan_model_param(m, i, &p) == SPARTAN_OK) nparams += spartan_tensor_numel(p.value);
    }
    char per_rank[96] = "";
    if (dist)
        snprintf(per_rank, sizeof per_rank, " (%d ranks x %zu; rank 0's device named)", ranks,
                 batch);
    printf("spartan-train: %s (%zu parameters) on %s, policy %s, batch %zu%s, %zu steps per epoch "
           "(%zu of %zu images; the last partial batch is dropped), %d epoch%s, lr %g (%s), "
           "momentum %g, weight decay %g, seed %llu, dropout %s, channel dropout %g\n",
           o.model, nparams, dev->name, spartan_policy_mode_name(o.cfg.policy), gbatch, per_rank,
           steps, steps * gbatch, n, o.epochs, o.epochs == 1 ? "" : "s", (double)o.cfg.lr,
           o.schedule, (double)o.cfg.momentum, (double)o.cfg.weight_decay,
           (unsigned long long)o.cfg.seed, spartan_dropout_kind_name(o.cfg.dropout_kind),
           (double)o.cfg.channel_dropout);
    /* a kernel family the device failed: what runs instead (the per-layer paths show it too) */
    spartan_family_status fs;
    for (unsigned i = 0; spartan_context_family(ctx, i, &fs) == SPARTAN_OK; i++)
        if (!fs.enabled)
            printf("spartan-train: kernel family %s is off on this device (%s); instead: %s\n",
                   fs.name, fs.why, fs.fallback);
    fflush(stdout);
    position at = {0, 0, 0.0, 0, 0};
    if (o.resume && !resume(ctx, m, &o, steps, &at)) goto done;
    /* every rank alike, rank 0's parameters everywhere, the gradients averaged from here on */
    if (dist && (!check_ranks(m, &o, steps, &at) || !train_dist_attach(dist, m))) goto done;

    /* ranks: progress lines at the same steps everywhere (they sum across the ranks) */
    const int tty = !dist && isatty(fileno(stderr)) && !o.quiet;
    const size_t total_steps = steps * (size_t)o.epochs;
    double train_seconds = 0.0;
    sync_count syncs = {0, 0, 0, 0};
    size_t done_steps = at.epoch * steps + at.step, events_seen = 0;
    uint64_t db_joined = 0; /* Dropback's churn: the totals at the last epoch's line */
    size_t db_updates = 0;
    for (int e = (int)at.epoch; e < o.epochs; e++) {
        spartan_dataset_shuffle(train, o.cfg.seed, (uint64_t)e);
        spartan_model_reset_stats(m);
        const size_t s0 = e == (int)at.epoch ? at.step : 0;
        /* the epoch's sums so far: this rank's (after a resume, rank 0 holds the run's) */
        const int mine = s0 && rank == 0;
        double t0 = now_s(), lsum = mine ? at.lsum : 0.0, all[3];
        size_t correct = mine ? at.correct : 0, seen = mine ? at.seen : 0,
               seen0 = s0 ? at.seen : 0; /* the images seen before, all ranks */
        /* this rank's share of step s: batch r of the step's `ranks` */
#define FIRST_IMAGE(s) (((s) * (size_t)ranks + (size_t)rank) * batch)
        loader ld = {train, FIRST_IMAGE(s0), batch, buf[s0 & 1][0], buf[s0 & 1][1], SPARTAN_OK};
        load_batch(&ld);
        for (size_t s = s0; s < steps; s++) {
            if (ld.st != SPARTAN_OK) {
                rc = fail("reading a batch", NULL);
                goto done;
            }
            float *img = buf[s & 1][0], *lab = buf[s & 1][1];
            pthread_t th;
            int threaded = 0;
            if (s + 1 < steps) {
                ld = (loader){
                    train,     FIRST_IMAGE(s + 1), batch, buf[(s + 1) & 1][0], buf[(s + 1) & 1][1],
                    SPARTAN_OK};
                threaded = pthread_create(&th, NULL, load_batch, &ld) == 0;
                if (!threaded) load_batch(&ld);
            }
            if (!strcmp(o.schedule, "cosine"))
                spartan_model_set_lr(
                    m, (float)(0.5 * o.cfg.lr *
                               (1.0 + cos(3.14159265358979323846 * (double)done_steps /
                                          (double)total_steps))));
            spartan_step_result r;
            spartan_status st = spartan_model_train_step(m, img, lab, batch, &r);
            if (threaded) pthread_join(th, NULL);
            if (st == SPARTAN_OK && o.explain) {
                if (tty) fprintf(stderr, "\r");
                events_seen = print_events(m, events_seen);
            }
            if (st != SPARTAN_OK) {
                rc = fail("training step", ctx);
                goto done;
            }
            if (!isfinite(r.loss)) {
                char why[160];
                snprintf(why, sizeof why,
                         "the loss diverged (%g) at epoch %d step %zu: try a smaller --lr", r.loss,
                         e + 1, s);
                fprintf(stderr, "spartan-train: %s\n", why);
                train_dist_failed(dist, why);
                goto done;
            }
            syncs.steps++;
            syncs.launches += r.launches;
            syncs.total += r.syncs;
            if (r.syncs > syncs.most) syncs.most = r.syncs;
            lsum += r.loss * (double)r.count;
            correct += r.correct;
            seen += r.count;
            done_steps++;
            /* the sums over the ranks, where a line or a checkpoint needs them (the same steps
             * on every rank: a collective) */
            const int save_now =
                o.save && (o.save_every ? done_steps % o.save_every == 0
                                        : s + 1 == steps || done_steps == total_steps);
            const int line =
                !tty && !o.quiet && steps >= 10 && (s + 1) % (steps / 4) == 0 && s + 1 != steps;
            if ((save_now || line || tty) && !sum_ranks(lsum, correct, seen, all)) goto done;
            if (save_now && rank == 0) {
                const size_t in = done_steps % steps;
                position p = {done_steps / steps, in, in ? all[0] : 0.0, in ? (size_t)all[1] : 0,
                              in ? (size_t)all[2] : 0};
                if (!save_checkpoint(ctx, m, &o, steps, &p)) goto done;
            }
            double el = now_s() - t0;
            if (tty && (s % 10 == 0 || s + 1 == steps)) {
                int w = 30, fill = (int)((double)w * (double)(s + 1) / (double)steps);
                fprintf(stderr, "\repoch %d [%.*s%*s] %zu/%zu loss %.4f acc %.3f %.0f img/s ",
                        e + 1, fill, "##############################", w - fill, "", s + 1, steps,
                        all[0] / all[2], all[1] / all[2], (all[2] - (double)seen0) / el);
            } else if (line) {
                printf("  epoch %d step %zu/%zu loss %.4f acc %.3f %.0f img/s\n", e + 1, s + 1,
                       steps, all[0] / all[2], all[1] / all[2], (all[2] - (double)seen0) / el);
                fflush(stdout);
            }
        }
        if (!sum_ranks(lsum, correct, seen, all)) goto done;
        double secs = now_s() - t0;
        train_seconds += secs;
        if (tty) fprintf(stderr, "\n");
        epoch_record *r = &rec[e];
        r->epoch = e + 1;
        r->train_loss = all[0] / all[2];
        r->train_acc = all[1] / all[2];
        r->seconds = secs;
        r->images_per_s = (all[2] - (double)seen0) / secs;
        r->lr = o.cfg.lr;
        if (!evaluate(m, test, batch, buf[0][0], buf[0][1], &r->test_loss, &r->test_acc)) {
            rc = fail("evaluating", ctx);
            goto done;
        }
        printf("epoch %d: train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  %.1f s  %.0f "
               "images/s\n",
               r->epoch, r->train_loss, 100.0 * r->train_acc, r->test_loss, 100.0 * r->test_acc,
               secs, r->images_per_s);
        if (o.cfg.dropback_keep || o.cfg.dropback_density > 0.0f)
            print_dropback(m, &db_joined, &db_updates);
        if (!train_dist_sync(dist)) goto done;
        fflush(stdout);
    }
    print_layer_table(ctx, m, &syncs);
    train_dist_report(dist, m);
    print_sparsity_at_work(m);
    print_weight_sparse(m);
    if (o.explain) print_predictions(m, &syncs);
    printf("\ntotal: %.1f s training, final test accuracy %.2f%%\n", train_seconds,
           100.0 * rec[o.epochs - 1].test_acc);
    rc = 0;
    /* the files: rank 0's (the replicas are equal) */
    if (rank == 0 && o.metrics &&
        !write_metrics(o.metrics, &o, rec + at.epoch, o.epochs - (int)at.epoch))
        rc = 1;
    if (rank == 0 && o.export_path && !export_pruned(ctx, m, &o, rec[o.epochs - 1].test_acc))
        rc = 1;
done:
    /* before the model goes: its hooks; a failing rank tells the others and ends the job */
    rc = train_dist_end(dist, rc);
    for (int b = 0; b < 2; b++) {
        free(buf[b][0]);
        free(buf[b][1]);
    }
    free(rec);
    spartan_model_destroy(m);
    spartan_context_destroy(ctx);
    spartan_dataset_destroy(train);
    spartan_dataset_destroy(test);
    return rc;
}
