/* spartan-tune: searches the kernels' build parameters for one device, CLBlast-style, and writes
 * the winner to the user's tuning database (docs/tuning.md).
 *
 * The search is coordinate descent over groups of parameters, each group timed on the operations
 * its parameters change (the GEMM passes, convolutions and the monitor at the shapes the presets
 * train and spartan-bench measures), from the built-in table's values (opts.tuning = "off") and
 * within a time budget. Every candidate is a context built with it (opts.tune): the families its
 * parameters change are built anew and validated by their known-answer self-tests before
 * anything is timed; a candidate a family fails is rejected, with the reason, and so is one whose
 * results on the timed shapes differ from the table's by more than the rounding bound. Timing is
 * the median of several runs after a warm-up (the library's marks); a candidate whose running sum
 * already exceeds the best by 15 % is pruned. The winner, then the table, are timed again in
 * alternation, and the entry written only when the winner is faster. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "spartan/spartan.h"

/* ---- the parameters and their groups ------------------------------------------------------- */

enum { G_DENSE = 1, G_SPARSE = 2, G_TILE = 4, G_CONV = 8, G_MISC = 16 };

#define MAX_VALUES 8
typedef struct param {
    const char *name;
    unsigned group;
    long values[MAX_VALUES]; /* the candidates, 0-terminated */
} param;

/* The candidates per parameter: the powers of two (and a few between) around the table's
 * values, within the ranges tuned.c accepts; the device's limits refuse the rest. VEC comes last:
 * every family reads it, so each of its candidates rebuilds them all (minutes on POCL). LOOP_MAX
 * is a bound (how far one work-item may loop before a reduction is sliced), not a speed: it is
 * not searched. */
static param params[] = {
    {"GEMM_RB", G_DENSE, {2, 4, 6, 8, 12, 16}},
    {"GEMM_NB", G_DENSE, {1, 2, 3, 4}},
    {"GEMM_WG", G_DENSE, {4, 8, 16, 32, 64}},
    {"SPARSE_NB", G_SPARSE, {1, 2, 4, 8, 16}},
    {"COLS_STEP", G_SPARSE, {2, 4, 8, 16, 32}},
    {"DIRECT_SEG", G_SPARSE, {32, 64, 128, 256, 512}},
    {"TILE_ROWS", G_TILE, {4, 8, 16, 32}},
    {"TILE_COLS", G_TILE, {64, 128, 256, 512}},
    {"STRIP_COLS", G_CONV, {2, 4, 6, 8, 12}},
    {"WG", G_MISC, {64, 128, 256, 512}},
    {"VEC", G_MISC, {4, 8, 16}},
};
#define NPARAMS (sizeof params / sizeof params[0])

/* ---- the operations timed -------------------------------------------------------------------- */

typedef enum { OP_GEMM, OP_CONV_FWD, OP_CONV_BWD_INPUT, OP_CONV_BWD_WEIGHT, OP_MONITOR } op_kind;

typedef struct op {
    op_kind kind;
    const char *cls; /* shape class: "fc", "conv-gemm", "conv" */
    unsigned groups; /* the groups whose parameters change it */
    spartan_pass pass;
    spartan_path path;
    size_t rows, k, n; /* GEMM: the layer; conv: out_c in n */
    spartan_window w;
    double sparsity; /* of X (and of dY for the convolution's backward-by-input) */
    char label[64];
} op;

#define MAX_OPS 96
static op ops[MAX_OPS];
static size_t nops;

static void add_gemm(const char *cls, size_t rows, size_t k, size_t n, double s) {
    for (int p = 0; p < SPARTAN_PASS_COUNT; p++)
        for (int path = 0; path < 2; path++) {
            if (path == SPARTAN_PATH_DENSE && s > 0) continue; /* dense once per shape */
            if (path == SPARTAN_PATH_SPARSE && s == 0) continue;
            op *o = &ops[nops++];
            memset(o, 0, sizeof *o);
            o->kind = OP_GEMM;
            o->cls = cls;
            o->pass = (spartan_pass)p;
            o->path = (spartan_path)path;
            o->rows = rows;
            o->k = k;
            o->n = n;
            o->sparsity = s;
            /* the sparse passes compact X (tiles) and, on CPUs, run the dense GEMM's work-group
             * size */
            o->groups = path ? G_SPARSE | G_TILE | G_DENSE | G_MISC : G_DENSE | G_MISC;
            snprintf(o->label, sizeof o->label, "%s %zux%zux%zu %s %s %.0f%%", cls, rows, n, k,
                     p == 0   ? "fwd"
                     : p == 1 ? "bwd_input"
                              : "bwd_weight",
                     path ? "sparse" : "dense", 100 * s);
        }
}

static void add_conv(size_t batch, size_t hw, size_t in_c, size_t out_c, double s) {
    const op_kind kinds[] = {OP_CONV_FWD, OP_CONV_BWD_INPUT, OP_CONV_BWD_WEIGHT};
    for (int i = 0; i < 3; i++)
        for (int path = 0; path < 2; path++) {
            op *o = &ops[nops++];
            memset(o, 0, sizeof *o);
            o->kind = kinds[i];
            o->cls = "conv";
            o->path = (spartan_path)path;
            o->n = out_c;
            o->w = (spartan_window){batch, hw, hw, in_c, 3, 3, 1, 1};
            o->sparsity = s;
            o->groups = G_DENSE | G_MISC | (path ? G_CONV : 0);
            snprintf(o->label, sizeof o->label, "conv %zux%zu %zu->%zu b%zu %s %s %.0f%%", hw, hw,
                     in_c, out_c, batch,
                     i == 0   ? "fwd"
                     : i == 1 ? "bwd_input"
                              : "bwd_weight",
                     path ? "sparse" : "dense", 100 * s);
        }
}

static void add_monitor(size_t rows, size_t cols) {
    op *o = &ops[nops++];
    memset(o, 0, sizeof *o);
    o->kind = OP_MONITOR;
    o->cls = "conv";
    o->rows = rows;
    o->n = cols;
    o->sparsity = 0.5;
    o->groups = G_TILE | G_MISC;
    snprintf(o->label, sizeof o->label, "monitor %zux%zu", rows, cols);
}

/* The shapes: the layers of mlp and vgg-small at batch 64 (what spartan-train and spartan-bench
 * train run), two of spartan-bench gemm --layers' im2col GEMMs, at 70 and 90 % zeros. --quick:
 * small ones, for the tests. */
static void make_ops(int quick) {
    nops = 0;
    if (quick) {
        add_gemm("fc", 37, 61, 45, 0);
        add_gemm("fc", 37, 61, 45, 0.7);
        add_conv(2, 9, 8, 16, 0.7);
        add_monitor(64, 300);
        return;
    }
    const size_t fc[][3] = {{64, 784, 512}, {64, 512, 512}, {64, 3136, 256}, {64, 512, 10}};
    for (size_t i = 0; i < 4; i++) {
        add_gemm("fc", fc[i][0], fc[i][1], fc[i][2], 0);
        add_gemm("fc", fc[i][0], fc[i][1], fc[i][2], 0.7);
        add_gemm("fc", fc[i][0], fc[i][1], fc[i][2], 0.9);
    }
    add_gemm("conv-gemm", 50176, 288, 32, 0);
    add_gemm("conv-gemm", 50176, 288, 32, 0.7);
    add_gemm("conv-gemm", 12544, 576, 64, 0);
    add_gemm("conv-gemm", 12544, 576, 64, 0.7);
    add_conv(64, 28, 32, 32, 0.7);
    add_conv(64, 14, 32, 64, 0.7);
    add_conv(64, 14, 64, 64, 0.7);
    add_monitor(50176, 32);
}

/* ---- host data ------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* n values: a fraction s zeros, the rest uniform in [lo, hi). */
static float *host_data(size_t n, double s, double lo, double hi) {
    float *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++)
        v[i] = uniform() < s ? 0.0f : (float)(lo + (hi - lo) * uniform());
    return v;
}

/* The operands of one op on one context, and its result's reference (the table's result). */
typedef struct op_state {
    spartan_gemm_pass pass;
    spartan_gemm_operands g;
    spartan_tensor *x, *wt, *dy, *out;
    spartan_sparse *sx;
    const spartan_tensor *result;
    size_t result_len;
    double tol; /* the rounding bound two correct results may differ by */
} op_state;

typedef struct op_host {
    float *x, *w, *dy; /* inputs */
    float *ref;        /* the table's result, NULL until the baseline ran */
    size_t nx, nw, ndy;
} op_host;
static op_host host[MAX_OPS];

static int make_host(size_t i) {
    const op *o = &ops[i];
    op_host *h = &host[i];
    size_t k = o->k, n = o->n, rows = o->rows;
    if (o->kind == OP_GEMM) {
        h->nx = rows * k;
        h->nw = k * n;
        h->ndy = rows * n;
    } else if (o->kind == OP_MONITOR) {
        h->nx = rows * n;
        h->nw = h->ndy = 0;
    } else {
        const spartan_window *w = &o->w;
        size_t oh = spartan_window_out_h(w), ow = spartan_window_out_w(w);
        h->nx = w->batch * w->in_h * w->in_w * w->in_c;
        h->nw = w->k_h * w->k_w * w->in_c * n;
        h->ndy = w->batch * oh * ow * n;
    }
    /* X: a ReLU's output (the monitor's input z: signed); W small; dY signed, with zeros for the
     * sparse backward-by-input of a convolution (a ReLU-masked gradient) */
    h->x = o->kind == OP_MONITOR ? host_data(h->nx, 0, -1, 1) : host_data(h->nx, o->sparsity, 0, 1);
    h->w = host_data(h->nw, 0, -0.05, 0.05);
    h->dy = host_data(h->ndy, o->kind == OP_CONV_BWD_INPUT ? o->sparsity : 0, -1, 1);
    return h->x && h->w && h->dy;
}

static double max_abs(const float *v, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
    return m;
}

static spartan_status tensor_2d(spartan_context *ctx, size_t r, size_t c, const float *data,
                                spartan_tensor **t) {
    spartan_status st = spartan_tensor_create_2d(ctx, r, c, t);
    if (st == SPARTAN_OK && data && r * c > 0) st = spartan_tensor_write(*t, data, r * c);
    return st;
}

static spartan_status op_setup(spartan_context *ctx, size_t i, op_state *s) {
    const op *o = &ops[i];
    const op_host *h = &host[i];
    memset(s, 0, sizeof *s);
    spartan_status st;
    if (o->kind == OP_GEMM) {
        st = spartan_gemm_pass_init(o->pass, SPARTAN_FORM_ON_X, o->rows, o->k, o->n, &s->pass);
        if (st == SPARTAN_OK) st = spartan_gemm_operands_create(ctx, &s->pass, &s->g);
        /* the operands this pass reads (the others are NULL) */
        if (st == SPARTAN_OK && s->g.x)
            st = spartan_tensor_write((spartan_tensor *)s->g.x, h->x, h->nx);
        if (st == SPARTAN_OK && s->g.w)
            st = spartan_tensor_write((spartan_tensor *)s->g.w, h->w, h->nw);
        if (st == SPARTAN_OK && s->g.dy)
            st = spartan_tensor_write((spartan_tensor *)s->g.dy, h->dy, h->ndy);
        s->result = o->pass == SPARTAN_PASS_FWD         ? s->g.y
                    : o->pass == SPARTAN_PASS_BWD_INPUT ? s->g.dx
                                                        : s->g.dw;
        s->result_len = o->pass == SPARTAN_PASS_FWD         ? o->rows * o->n
                        : o->pass == SPARTAN_PASS_BWD_INPUT ? o->rows * o->k
                                                            : o->k * o->n;
        size_t depth = o->pass == SPARTAN_PASS_FWD         ? o->k
                       : o->pass == SPARTAN_PASS_BWD_INPUT ? o->n
                                                           : o->rows;
        double ma =
            o->pass == SPARTAN_PASS_BWD_INPUT ? max_abs(h->dy, h->ndy) : max_abs(h->x, h->nx);
        double mb = o->pass == SPARTAN_PASS_FWD         ? max_abs(h->w, h->nw)
                    : o->pass == SPARTAN_PASS_BWD_INPUT ? max_abs(h->w, h->nw)
                                                        : max_abs(h->dy, h->ndy);
        /* |fl(sum) - sum| <= depth eps sum |a||b| <= depth^2 eps max|a| max|b|, for each of
         * the two results */
        s->tol = 2.0 * (double)depth * (double)depth * FLT_EPSILON * ma * mb + 1e-30;
        return st;
    }
    if (o->kind == OP_MONITOR) {
        st = tensor_2d(ctx, o->rows, o->n, h->x, &s->x);
        if (st == SPARTAN_OK) st = tensor_2d(ctx, o->rows, o->n, NULL, &s->out);
        if (st == SPARTAN_OK) st = spartan_sparse_create(ctx, o->rows, o->n, &s->sx);
        s->result = s->out;
        s->result_len = o->rows * o->n;
        s->tol = 0; /* max(z, 0) is exact */
        return st;
    }
    const spartan_window *w = &o->w;
    size_t pix = w->batch * spartan_window_out_h(w) * spartan_window_out_w(w);
    size_t kk = w->k_h * w->k_w * w->in_c;
    st = tensor_2d(ctx, w->batch * w->in_h * w->in_w, w->in_c, h->x, &s->x);
    if (st == SPARTAN_OK) st = tensor_2d(ctx, kk, o->n, h->w, &s->wt);
    if (st == SPARTAN_OK) st = tensor_2d(ctx, pix, o->n, h->dy, &s->dy);
    size_t depth;
    if (o->kind == OP_CONV_FWD) {
        if (st == SPARTAN_OK) st = tensor_2d(ctx, pix, o->n, NULL, &s->out);
        s->result_len = pix * o->n;
        depth = kk;
    } else if (o->kind == OP_CONV_BWD_INPUT) {
        if (st == SPARTAN_OK)
            st = tensor_2d(ctx, w->batch * w->in_h * w->in_w, w->in_c, NULL, &s->out);
        s->result_len = h->nx;
        depth = w->k_h * w->k_w * o->n;
    } else {
        if (st == SPARTAN_OK) st = tensor_2d(ctx, kk, o->n, NULL, &s->out);
        s->result_len = kk * o->n;
        depth = pix;
    }
    s->result = s->out;
    double ma = o->kind == OP_CONV_BWD_INPUT ? max_abs(h->dy, h->ndy) : max_abs(h->x, h->nx);
    double mb = o->kind == OP_CONV_BWD_WEIGHT ? max_abs(h->dy, h->ndy) : max_abs(h->w, h->nw);
    s->tol = 2.0 * (double)depth * (double)depth * FLT_EPSILON * ma * mb + 1e-30;
    return st;
}

static void op_teardown(op_state *s) {
    spartan_gemm_operands_destroy(&s->g);
    spartan_tensor_destroy(s->x);
    spartan_tensor_destroy(s->wt);
    spartan_tensor_destroy(s->dy);
    spartan_tensor_destroy(s->out);
    spartan_sparse_destroy(s->sx);
    memset(s, 0, sizeof *s);
}

static spartan_status op_run(spartan_context *ctx, size_t i, op_state *s) {
    const op *o = &ops[i];
    switch (o->kind) {
    case OP_GEMM:
        s->g.x_forms = 0; /* compact X every time, as a training step does once per layer */
        return spartan_gemm_pass_run(ctx, &s->pass, o->path, SPARTAN_GEMM_OWN, &s->g);
    case OP_MONITOR:
        return spartan_relu_monitor(ctx, s->x, s->out, s->sx);
    case OP_CONV_FWD:
        return spartan_conv2d_forward(ctx, o->path, &o->w, s->x, s->wt, s->out);
    case OP_CONV_BWD_INPUT:
        return spartan_conv2d_backward_input(ctx, o->path, &o->w, s->dy, s->wt, s->out);
    case OP_CONV_BWD_WEIGHT:
        return spartan_conv2d_backward_weight(ctx, o->path, &o->w, s->x, s->dy, s->out);
    }
    return SPARTAN_STATUS_INVALID_ARGUMENT;
}

/* ---- timing one candidate -------------------------------------------------------------------- */

typedef struct cand {
    long v[NPARAMS];
} cand;

static int runs = 3;

static void cand_string(const cand *c, unsigned groups, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t p = 0; p < NPARAMS; p++) {
        if (!(params[p].group & groups)) continue;
        int n =
            snprintf(buf + used, len - used, "%s%s=%ld", used ? "," : "", params[p].name, c->v[p]);
        if (n > 0 && (size_t)n < len - used) used += (size_t)n;
    }
}

static double median(double *t, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* Times op i on ctx (median of runs after one warm-up) and checks its result against the table's
 * (keeping it when ref is still NULL). Returns the ms, or -1 with why set. */
static double time_op(spartan_context *ctx, size_t i, char *why, size_t why_len) {
    op_state s;
    spartan_status st = op_setup(ctx, i, &s);
    double t[16], ms = -1;
    int nr = runs < 16 ? runs : 16;
    if (st == SPARTAN_OK) st = op_run(ctx, i, &s); /* warm-up */
    float *got = NULL;
    if (st == SPARTAN_OK) {
        got = malloc((s.result_len ? s.result_len : 1) * sizeof *got);
        if (!got) st = SPARTAN_STATUS_OUT_OF_HOST_MEMORY;
    }
    if (st == SPARTAN_OK) st = spartan_tensor_read(s.result, got, s.result_len);
    if (st == SPARTAN_OK) {
        op_host *h = &host[i];
        if (!h->ref) {
            h->ref = got;
            got = NULL;
        } else {
            for (size_t e = 0; e < s.result_len; e++) {
                double d = fabs((double)got[e] - (double)h->ref[e]);
                if (!(d <= s.tol)) {
                    snprintf(why, why_len,
                             "%s: element %zu is %.9g, the table's %.9g (bound %.3g): a wrong "
                             "result",
                             ops[i].label, e, got[e], h->ref[e], s.tol);
                    free(got);
                    op_teardown(&s);
                    return -1;
                }
            }
        }
    }
    free(got);
    for (int r = 0; r < nr && st == SPARTAN_OK; r++) {
        spartan_mark a = {0}, b = {0};
        st = spartan_mark_record(ctx, &a);
        if (st == SPARTAN_OK) st = op_run(ctx, i, &s);
        if (st == SPARTAN_OK) st = spartan_mark_record(ctx, &b);
        if (st == SPARTAN_OK) st = spartan_mark_elapsed(ctx, &a, &b, &t[r]);
        spartan_mark_release(&a);
        spartan_mark_release(&b);
    }
    if (st == SPARTAN_OK)
        ms = median(t, nr);
    else
        snprintf(why, why_len, "%s: %s: %s%s", ops[i].label, spartan_status_name(st),
                 spartan_last_error(ctx), spartan_last_error(NULL));
    op_teardown(&s);
    return ms;
}

/* ---- contexts ------------------------------------------------------------------------------ */

static const char *device_sel, *cache_dir;
static char base_options[16][512]; /* each family's build options under the table */

/* A context with the candidate's parameters over the table (NULL: the table). On success 0; on
 * a refusal or a failed validation, 1 with why. */
static int open_ctx(const char *tune, spartan_context **ctx, char *why, size_t why_len) {
    spartan_context_opts o = spartan_context_opts_default();
    o.device = device_sel;
    o.cache_dir = cache_dir;
    o.tuning = "off";
    o.tune = tune;
    *ctx = NULL;
    spartan_status st = spartan_context_create(&o, ctx);
    if (st != SPARTAN_OK) {
        snprintf(why, why_len, "refused: %s: %s", spartan_status_name(st),
                 spartan_last_error(NULL));
        return 1;
    }
    spartan_family_status fs;
    for (unsigned f = 0; spartan_context_family(*ctx, f, &fs) == SPARTAN_OK && f < 16; f++) {
        if (!tune) {
            snprintf(base_options[f], sizeof base_options[f], "%s", fs.options);
            if (!fs.enabled)
                fprintf(stderr, "spartan-tune: note: %s is off under the table: %s\n", fs.name,
                        fs.why);
            continue;
        }
        /* a family the candidate rebuilt must have passed its validation */
        if (strcmp(fs.options, base_options[f]) != 0 && !fs.enabled) {
            snprintf(why, why_len, "%s %s", fs.name, fs.why);
            spartan_context_destroy(*ctx);
            *ctx = NULL;
            return 1;
        }
    }
    return 0;
}

typedef struct result {
    double total;         /* ms, sum over the ops measured */
    double ms[MAX_OPS];   /* per op; < 0 when not measured */
    int pruned, rejected; /* pruned: stopped once past the limit */
    char why[1024];
} result;

/* Measures the candidate on the ops of groups; stops once the sum passes limit (> 0). */
static void measure(const char *tune, unsigned groups, double limit, result *r) {
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < nops; i++) r->ms[i] = -1;
    spartan_context *ctx;
    if (open_ctx(tune, &ctx, r->why, sizeof r->why)) {
        r->rejected = 1;
        return;
    }
    for (size_t i = 0; i < nops; i++) {
        if (!(ops[i].groups & groups)) continue;
        double ms = time_op(ctx, i, r->why, sizeof r->why);
        if (ms < 0) {
            r->rejected = 1;
            break;
        }
        r->ms[i] = ms;
        r->total += ms;
        if (limit > 0 && r->total > limit) {
            r->pruned = 1;
            break;
        }
    }
    spartan_context_destroy(ctx);
}

static const char *classes[] = {"fc", "conv-gemm", "conv"};

/* Whether the candidate was measured (or rejected) already; records it otherwise. */
static int tried_before(const char *text) {
    static char seen[256][256];
    static size_t nseen;
    for (size_t i = 0; i < nseen; i++)
        if (strcmp(seen[i], text) == 0) return 1;
    if (nseen < 256) snprintf(seen[nseen++], sizeof seen[0], "%.255s", text);
    return 0;
}

/* The sums of a measured candidate's times per shape class (HUGE_VAL where it measured none). */
static void class_sums(const result *r, double out[3]) {
    for (int c = 0; c < 3; c++) {
        out[c] = 0;
        int any = 0;
        for (size_t i = 0; i < nops; i++)
            if (r->ms[i] >= 0 && !strcmp(ops[i].cls, classes[c])) {
                out[c] += r->ms[i];
                any = 1;
            }
        if (!any) out[c] = HUGE_VAL;
    }
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *f) {
    fprintf(f,
            "usage: spartan-tune [--device SEL] [--minutes M] [--runs N] [--param NAME=V,V...]... "
            "[--resume]\n"
            "                    [--cache-dir DIR] [--dry-run] [--emit DIR] [--quick]\n"
            "       spartan-tune [--device SEL] [--cache-dir DIR] --emit DIR --from-database\n"
            "Searches the kernels' build parameters for one device (docs/tuning.md): each\n"
            "candidate is built, validated by the families' self-tests, checked against the\n"
            "table's results and timed; the winner goes to the tuning database in the cache\n"
            "directory, which contexts on the device read at creation.\n"
            "  --device SEL     the device (as spartan-info lists them; default $SPARTAN_DEVICE)\n"
            "  --minutes M      the budget (default 10); the search stops when it is spent\n"
            "  --runs N         timed runs per operation and candidate (default 3; median)\n"
            "  --param N=V,...  search only these parameters, over these values (repeatable)\n"
            "  --cache-dir DIR  the cache directory (binaries, verdicts, the database)\n"
            "  --dry-run        search and report, write nothing\n"
            "  --emit DIR       also write the shipped form of the entry to DIR (tuning/), as\n"
            "                   <vendor>-<cpu|gpu>-vec<width>.json\n"
            "  --from-database  no search: the shipped form of the entry an earlier run wrote\n"
            "  --resume         start from the entry an earlier run wrote, not the table (with\n"
            "                   --param: search other parameters on top of it)\n"
            "  --quick          small shapes, one pass (the tests)\n");
}

static int parse_param(const char *text) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    char *eq = strchr(buf, '=');
    if (!eq) return 1;
    *eq = '\0';
    for (size_t p = 0; p < NPARAMS; p++) {
        if (strcmp(params[p].name, buf) != 0) continue;
        memset(params[p].values, 0, sizeof params[p].values);
        int n = 0;
        for (char *save = NULL, *t = strtok_r(eq + 1, ",", &save); t && n < MAX_VALUES;
             t = strtok_r(NULL, ",", &save)) {
            char *end;
            long v = strtol(t, &end, 10);
            if (*end || v < 1) return 1;
            params[p].values[n++] = v;
        }
        params[p].group |= 0x100; /* selected */
        return n == 0;
    }
    return 1;
}

/* Writes the shipped form of an entry (params "NAME=V,...", provenance JSON) for the device's
 * class to DIR/<vendor>-<type>-vec<width>.json; nonzero on failure (said). */
static int emit_shipped(const char *dir, const spartan_device_info *info, const char *list,
                        const char *prov) {
    char file[1200], entry[8192], vendor[32];
    snprintf(vendor, sizeof vendor, "%s", spartan_vendor_name(info->vendor));
    for (char *c = vendor; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    snprintf(file, sizeof file, "%s/%s-%s-vec%u.json", dir, vendor,
             (info->type & SPARTAN_DEVICE_GPU) ? "gpu" : "cpu", info->preferred_vector_width_float);
    if (spartan_tuning_format(info, list, prov, 1, entry, sizeof entry) != SPARTAN_OK) {
        fprintf(stderr, "spartan-tune: %s\n", spartan_last_error(NULL));
        return 1;
    }
    FILE *f = fopen(file, "w");
    if (!f || fputs(entry, f) < 0 || fclose(f) != 0) {
        if (f) fclose(f);
        fprintf(stderr, "spartan-tune: cannot write %s\n", file);
        return 1;
    }
    printf("shipped form written to %s\n", file);
    return 0;
}

/* The user's entry for the device (what an earlier run wrote), checked as a context checks it:
 * its parameters as "NAME=V,..." into list and its provenance (malloc'd JSON text, may be NULL:
 * cJSON_free it). Nonzero, said, when there is none the device uses. */
static int read_database(const spartan_device_info *info, char *list, size_t len, char **prov) {
    char path[1200];
    spartan_context_opts o = spartan_context_opts_default();
    o.cache_dir = cache_dir;
    *prov = NULL;
    list[0] = '\0';
    if (spartan_tuning_path(&o, info, path, sizeof path) != SPARTAN_OK) {
        fprintf(stderr, "spartan-tune: %s\n", spartan_last_error(NULL));
        return 1;
    }
    FILE *f = fopen(path, "rb");
    char text[65536];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = '\0';
    cJSON *root = cJSON_Parse(text);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "params");
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(root, "tuned");
    size_t used = 0;
    for (const cJSON *c = cJSON_IsObject(p) ? p->child : NULL; c; c = c->next)
        used += (size_t)snprintf(list + used, len - used, "%s%s=%ld", used ? "," : "", c->string,
                                 (long)c->valuedouble);
    if (cJSON_IsObject(pv)) *prov = cJSON_PrintUnformatted(pv);
    cJSON_Delete(root);
    /* the library checks the identity when it reads the file: do the same through a context */
    spartan_context *ctx = NULL;
    o.device = device_sel;
    spartan_build_stats bs;
    int ok = used > 0 && spartan_context_create(&o, &ctx) == SPARTAN_OK &&
             spartan_context_build_stats(ctx, &bs) == SPARTAN_OK && strstr(bs.tuning, path) &&
             !strstr(bs.tuning, "ignored");
    spartan_context_destroy(ctx);
    if (ok) return 0;
    fprintf(stderr, "spartan-tune: %s is missing, or not an entry this device uses\n", path);
    cJSON_free(*prov);
    *prov = NULL;
    return 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    double minutes = 10;
    int dry = 0, quick = 0, selected = 0, from_db = 0, resume = 0;
    const char *emit = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--dry-run")) {
            dry = 1;
        } else if (!strcmp(a, "--quick")) {
            quick = 1;
        } else if (!strcmp(a, "--from-database")) {
            from_db = 1;
        } else if (!strcmp(a, "--resume")) {
            resume = 1;
        } else if (v && !strcmp(a, "--device")) {
            device_sel = argv[++i];
        } else if (v && !strcmp(a, "--cache-dir")) {
            cache_dir = argv[++i];
        } else if (v && !strcmp(a, "--emit")) {
            emit = argv[++i];
        } else if (v && !strcmp(a, "--minutes")) {
            minutes = strtod(argv[++i], NULL);
            if (!(minutes > 0)) {
                fprintf(stderr, "spartan-tune: --minutes takes a positive number\n");
                return 2;
            }
        } else if (v && !strcmp(a, "--runs")) {
            runs = atoi(argv[++i]);
            if (runs < 1 || runs > 15) {
                fprintf(stderr, "spartan-tune: --runs takes 1 to 15\n");
                return 2;
            }
        } else if (v && !strcmp(a, "--param")) {
            if (parse_param(argv[++i])) {
                fprintf(stderr,
                        "spartan-tune: --param %s: not NAME=V,... over a searched "
                        "parameter (GEMM_RB GEMM_NB GEMM_WG SPARSE_NB COLS_STEP "
                        "DIRECT_SEG TILE_ROWS TILE_COLS STRIP_COLS WG VEC), V >= 1\n",
                        argv[i]);
                return 2;
            }
            selected = 1;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (getenv("SPARTAN_TUNE") && *getenv("SPARTAN_TUNE")) {
        fprintf(stderr, "spartan-tune: SPARTAN_TUNE is set and would override every candidate: "
                        "unset it\n");
        return 2;
    }
    if (selected)
        for (size_t p = 0; p < NPARAMS; p++)
            if (!(params[p].group & 0x100)) params[p].values[0] = 0; /* keep the table's only */
    if (!device_sel) device_sel = getenv("SPARTAN_DEVICE");
    if (from_db && !emit) {
        fprintf(stderr, "spartan-tune: --from-database goes with --emit DIR\n");
        return 2;
    }
    /* the table: its values, the reference results and the first times */
    char why[1024];
    spartan_context *ctx;
    if (open_ctx(NULL, &ctx, why, sizeof why)) {
        fprintf(stderr, "spartan-tune: no context: %s\n", why);
        return 1;
    }
    if (from_db) {
        spartan_device_info info = *spartan_context_device(ctx);
        spartan_context_destroy(ctx);
        char list[512], *prov;
        if (read_database(&info, list, sizeof list, &prov)) return 1;
        int rc = emit_shipped(emit, &info, list, prov);
        cJSON_free(prov);
        return rc;
    }
    const double t_end = now_s() + 60 * minutes;
    make_ops(quick);
    for (size_t i = 0; i < nops; i++)
        if (!make_host(i)) {
            fprintf(stderr, "spartan-tune: out of host memory\n");
            return 1;
        }
    const spartan_device_info *dev = spartan_context_device(ctx);
    spartan_device_info info = *dev;
    cand table, best;
    for (size_t p = 0; p < NPARAMS; p++) table.v[p] = spartan_context_tuned(ctx, params[p].name);
    spartan_context_destroy(ctx);
    printf("spartan-tune on %s (%s, driver %s), budget %.1f min, %zu operations, %d runs each\n",
           info.name, info.platform_name, info.driver_version, minutes, nops, runs);
    char text[1024];
    cand_string(&table, ~0u, text, sizeof text);
    printf("table: %s\n", text);
    result base;
    measure(NULL, ~0u, 0, &base);
    if (base.rejected) {
        fprintf(stderr, "spartan-tune: the table's own run failed: %s\n", base.why);
        return 1;
    }
    printf("table: %.2f ms over all operations\n\n", base.total);
    best = table;
    if (resume) {
        char list[512], *prov;
        if (read_database(&info, list, sizeof list, &prov)) return 1;
        cJSON_free(prov);
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(t, '=');
            for (size_t p = 0; eq && p < NPARAMS; p++)
                if (strncmp(t, params[p].name, (size_t)(eq - t)) == 0 &&
                    params[p].name[eq - t] == '\0')
                    best.v[p] = strtol(eq + 1, NULL, 10);
        }
        cand_string(&best, ~0u, text, sizeof text);
        printf("resuming from the database: %s\n", text);
    }
    unsigned candidates = 0, rejected = 0, pruned = 0;
    int out_of_time = 0;

    /* coordinate descent, group by group, each parameter over its values with the others at
     * their best, the values nearest the current one first; a group again while it improved.
     * The groups in the order of their cost on POCL (a candidate rebuilds and revalidates the
     * families its parameters change: about 12 s for the sparse GEMMs' alone, 20 s for the tile,
     * 150 s for the dense blocking, which four families read): the cheap ones first, and a
     * candidate is skipped when the last one of its group says it would end past the budget. */
    const unsigned groups[] = {G_SPARSE, G_TILE, G_CONV, G_DENSE, G_MISC};
    const char *group_names[] = {"sparse GEMMs", "tiles", "sparse convolution", "dense blocking",
                                 "work-groups and vector width"};
    unsigned skipped = 0;
    for (size_t g = 0; g < sizeof groups / sizeof groups[0] && !out_of_time; g++) {
        int any = 0;
        for (size_t p = 0; p < NPARAMS; p++)
            if ((params[p].group & ~0x100u) == groups[g] && params[p].values[0]) any = 1;
        if (!any) continue;
        double t0 = now_s();
        /* the group's reference: the current best on its operations */
        result ref;
        cand_string(&best, ~0u, text, sizeof text);
        measure(text, groups[g], 0, &ref);
        if (ref.rejected) {
            fprintf(stderr, "spartan-tune: the current best failed: %s\n", ref.why);
            return 1;
        }
        double cost = now_s() - t0; /* a candidate costs at least what a cached one does */
        printf("%s: %.2f ms over its %s operations\n", group_names[g], ref.total,
               groups[g] == G_DENSE ? "dense, sparse and convolution" : "affected");
        /* per shape class, the candidate that was fastest on the group's operations of that
         * class (one setting serves them all: this says what a setting per class would gain) */
        double cls_best[3];
        char cls_text[3][256];
        class_sums(&ref, cls_best);
        for (int c = 0; c < 3; c++) cand_string(&best, groups[g], cls_text[c], sizeof cls_text[c]);
        int over = 0;
        for (int pass = 0, improved = 1; improved && pass < 2 && !over; pass++) {
            improved = 0;
            for (size_t p = 0; p < NPARAMS && !over; p++) {
                if ((params[p].group & ~0x100u) != groups[g]) continue;
                long vals[MAX_VALUES];
                int nv = 0;
                for (int vi = 0; vi < MAX_VALUES && params[p].values[vi]; vi++)
                    if (params[p].values[vi] != best.v[p]) vals[nv++] = params[p].values[vi];
                /* nearest (by ratio) first */
                for (int a = 1; a < nv; a++)
                    for (int b = a; b > 0 && fabs(log((double)vals[b] / (double)best.v[p])) <
                                                 fabs(log((double)vals[b - 1] / (double)best.v[p]));
                         b--) {
                        long x = vals[b];
                        vals[b] = vals[b - 1];
                        vals[b - 1] = x;
                    }
                for (int vi = 0; vi < nv; vi++) {
                    if (now_s() > t_end) {
                        out_of_time = over = 1;
                        break;
                    }
                    if (now_s() + cost > t_end) {
                        skipped += (unsigned)(nv - vi);
                        over = 1;
                        printf("  the rest of the group would end past the budget (%.0f s a "
                               "candidate): skipped\n",
                               cost);
                        break;
                    }
                    long v = vals[vi];
                    cand c = best;
                    c.v[p] = v;
                    cand_string(&c, ~0u, text, sizeof text);
                    if (tried_before(text)) continue; /* a second pass meets it again */
                    result r;
                    double tc = now_s();
                    measure(text, groups[g], 1.15 * ref.total, &r);
                    cost = now_s() - tc;
                    candidates++;
                    if (r.rejected) {
                        rejected++;
                        printf("  rejected %s=%ld: %s\n", params[p].name, v, r.why);
                    } else if (r.pruned) {
                        pruned++;
                        printf("  pruned   %s=%ld: past %.2f ms (best %.2f) [%.0f s]\n",
                               params[p].name, v, 1.15 * ref.total, ref.total, cost);
                    } else {
                        double cs[3];
                        class_sums(&r, cs);
                        for (int k = 0; k < 3; k++)
                            if (cs[k] < cls_best[k]) {
                                cls_best[k] = cs[k];
                                cand_string(&c, groups[g], cls_text[k], sizeof cls_text[k]);
                            }
                        /* a win is confirmed against the best measured once more (its
                         * context is cached: only the timing repeats), so that one slow
                         * measurement of the best (a first run, a busy moment) does not make
                         * the next candidate look faster than it is; 2 %: above the noise */
                        if (r.total < 0.98 * ref.total) {
                            result again;
                            cand_string(&best, ~0u, text, sizeof text);
                            measure(text, groups[g], 0, &again);
                            if (!again.rejected && again.total < ref.total) ref = again;
                        }
                        const int win = r.total < 0.98 * ref.total;
                        printf("  %s=%-5ld %8.2f ms (best %.2f) [%.0f s]%s\n", params[p].name, v,
                               r.total, ref.total, cost, win ? "  new best" : "");
                        if (win) {
                            best = c;
                            ref = r;
                            improved = 1;
                        }
                    }
                    fflush(stdout);
                }
            }
        }
        double chosen[3];
        class_sums(&ref, chosen);
        char won[256];
        cand_string(&best, groups[g], won, sizeof won);
        for (int k = 0; k < 3; k++)
            if (chosen[k] > 0 && chosen[k] < 1e300)
                printf("  class %-9s best %s (%.2f ms; the group's winner %s: %.2f ms, %.3fx)\n",
                       classes[k], cls_text[k], cls_best[k], won, chosen[k],
                       chosen[k] / cls_best[k]);
    }

    /* the winner against the table, alternately, on every operation */
    cand_string(&best, ~0u, text, sizeof text);
    printf("\n%u candidates: %u rejected, %u pruned, %u skipped%s\n", candidates, rejected, pruned,
           skipped, out_of_time ? "; the budget ran out" : "");
    if (memcmp(&best, &table, sizeof best) == 0) {
        printf("no candidate beat the table: nothing written\n");
        return 0;
    }
    /* totals and per shape class, per repetition; medians of the three */
    double tw[3], tt[3], cw[3][3], ct[3][3]; /* [class][rep] */
    for (int rep = 0; rep < 3; rep++) {
        result a, b;
        measure(NULL, ~0u, 0, &b);
        measure(text, ~0u, 0, &a);
        if (a.rejected || b.rejected) {
            fprintf(stderr, "spartan-tune: the final runs failed: %s%s\n", a.why, b.why);
            return 1;
        }
        tw[rep] = a.total;
        tt[rep] = b.total;
        double sa[3], sb[3];
        class_sums(&a, sa);
        class_sums(&b, sb);
        for (int c = 0; c < 3; c++) {
            cw[c][rep] = sa[c];
            ct[c][rep] = sb[c];
        }
    }
    double med_w = median(tw, 3), med_t = median(tt, 3);
    printf("winner: %s\n", text);
    printf("all operations: table %.2f ms, winner %.2f ms (medians of 3, alternated): %.3fx\n",
           med_t, med_w, med_t / med_w);
    for (int c = 0; c < 3; c++) {
        double a = median(cw[c], 3), b = median(ct[c], 3);
        if (a > 0 && a < 1e300)
            printf("  %-9s table %9.2f ms, winner %9.2f ms: %.3fx\n", classes[c], b, a, b / a);
    }
    if (!(med_w < 0.98 * med_t)) {
        printf("the winner is not faster than the table: nothing written\n");
        return 0;
    }
    /* the parameters that differ from the table (the rest stay the table's) */
    char diff[512] = "";
    size_t used = 0;
    for (size_t p = 0; p < NPARAMS; p++)
        if (best.v[p] != table.v[p])
            used += (size_t)snprintf(diff + used, sizeof diff - used, "%s%s=%ld", used ? "," : "",
                                     params[p].name, best.v[p]);
    char prov[1024], date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    snprintf(
        prov, sizeof prov,
        "{\"tool\": \"spartan-tune\", \"date\": \"%s\", \"device\": \"%s\", \"driver\": \"%s\", "
        "\"minutes\": %g, \"candidates\": %u, \"rejected\": %u, \"table_ms\": %.3f, "
        "\"tuned_ms\": %.3f, \"speedup\": %.3f}",
        date, info.name, info.driver_version, minutes, candidates, rejected, med_t, med_w,
        med_t / med_w);
    char entry[8192];
    if (spartan_tuning_format(&info, diff, prov, 0, entry, sizeof entry) != SPARTAN_OK) {
        fprintf(stderr, "spartan-tune: %s\n", spartan_last_error(NULL));
        return 1;
    }
    printf("\nentry:\n%s", entry);
    if (!dry) {
        spartan_context_opts o = spartan_context_opts_default();
        o.cache_dir = cache_dir;
        char path[1200];
        if (spartan_tuning_write(&o, &info, diff, prov, path, sizeof path) != SPARTAN_OK) {
            fprintf(stderr, "spartan-tune: writing the database: %s\n", spartan_last_error(NULL));
            return 1;
        }
        printf("written to %s\n", path);
    }
    if (emit && emit_shipped(emit, &info, diff, prov)) return 1;
    for (size_t i = 0; i < nops; i++) {
        free(host[i].x);
        free(host[i].w);
        free(host[i].dy);
        free(host[i].ref);
    }
    return 0;
}
