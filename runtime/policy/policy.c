/* The policy (include/spartan/policy.h, docs/policy.md): fixed modes, and the adaptive one with
 * its per-device cost model, calibration (its cache: calibration_cache.c), online correction,
 * exploration and hysteresis. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rng.h"
#include "policy/calibration_cache.h"
#include "policy/policy_internal.h"

/* One (layer, pass). */
typedef struct slot {
    int used, allowed, calibrated, chosen;
    int pending;  /* consecutive decisions that wanted to switch */
    size_t since; /* step of the last change (first choice or switch) */
    size_t m, n, k;
    sp_policy_cal cal;
    double corr[2];      /* online correction factor of each path's calibrated time */
    int measured[2];     /* the path has been measured in training (after its warm-up run) */
    int runs[2];         /* runs observed in training, the warm-up included */
    spartan_path cur;    /* the path held (hysteresis) */
    size_t last_seen[2]; /* step each path was last measured */
    int engine[2];       /* a convolution's engine of each path (sp_conv_engine) */
} slot;

struct spartan_policy {
    spartan_context *ctx;
    spartan_policy_mode mode;
    slot *slots; /* layer * SPARTAN_PASS_COUNT + pass */
    size_t nslots;
    spartan_policy_event *events;
    size_t nevents, event_cap;
    size_t step, benchmarks;
    sp_cal_cache cache;
};

static const char *const mode_names[] = {"dense", "sparse", "adaptive"};

spartan_status spartan_policy_mode_parse(const char *text, spartan_policy_mode *out) {
    for (int i = 0; text && out && i < 3; i++) {
        if (strcmp(text, mode_names[i]) == 0) {
            *out = (spartan_policy_mode)i;
            return SPARTAN_OK;
        }
    }
    return sp_invalid(NULL, "policy \"%s\" is not one of dense, sparse, adaptive",
                      text ? text : "(null)");
}

const char *spartan_policy_mode_name(spartan_policy_mode mode) {
    return (unsigned)mode < 3 ? mode_names[mode] : "?";
}

const char *spartan_pass_name(spartan_pass pass) {
    static const char *const names[] = {"fwd", "bwd_input", "bwd_weight"};
    return (unsigned)pass < SPARTAN_PASS_COUNT ? names[pass] : "?";
}

const char *spartan_path_name(spartan_path path) {
    return path == SPARTAN_PATH_SPARSE ? "sparse" : "dense";
}

/* ---- Microbenchmarks ---------------------------------------------------------------------------
 * Each pass's dense and sparse run through its descriptor (spartan_gemm_pass_run, the calls
 * training makes) on operands of the layer's shape. The sparse time includes the compaction its
 * pass needs (as in training: X's compaction is built anew in every run). Timed between two
 * marks (spartan_mark: profiling events or the host clock, as the context decided), median of
 * SP_POLICY_CAL_RUNS after one warm-up. */

typedef struct bench {
    spartan_context *ctx;
    spartan_gemm_pass d;
    spartan_gemm_path impl; /* the dense implementation timed */
    spartan_gemm_operands o;
    /* a convolution's pass: its engine and operands (conv_pass.c; NULL co: a GEMM layer's) */
    sp_conv_operands *co;
    sp_conv_engine engine;
} bench;

static spartan_status bench_call(bench *b, spartan_path path) {
    if (b->co) { /* X is new at every step: im2col (GEMM engine) and compaction again */
        b->co->cols_fresh = 0;
        b->co->g.x_forms = 0;
        return sp_conv_pass_run(b->ctx, b->d.pass, b->engine, path, b->impl, b->co);
    }
    b->o.x_forms = 0; /* X is new at every step: compact it again */
    return spartan_gemm_pass_run(b->ctx, &b->d, path, b->impl, &b->o);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static spartan_status bench_time(spartan_policy *p, bench *b, spartan_path path, double *ms) {
    spartan_context *ctx = b->ctx;
    double t[SP_POLICY_CAL_RUNS];
    spartan_status st = bench_call(b, path); /* warm-up */
    for (int r = 0; r < SP_POLICY_CAL_RUNS && st == SPARTAN_OK; r++) {
        spartan_mark m0, m1 = {0};
        st = spartan_mark_record(ctx, &m0);
        if (st == SPARTAN_OK) st = bench_call(b, path);
        if (st == SPARTAN_OK) st = spartan_mark_record(ctx, &m1);
        t[r] = 0.0;
        if (st == SPARTAN_OK) st = spartan_mark_elapsed(ctx, &m0, &m1, &t[r]);
        spartan_mark_release(&m0);
        spartan_mark_release(&m1);
        if (t[r] < 1e-6) t[r] = 1e-6;
    }
    p->benchmarks++;
    if (st != SPARTAN_OK) return st;
    qsort(t, SP_POLICY_CAL_RUNS, sizeof t[0], cmp_double);
    *ms = t[SP_POLICY_CAL_RUNS / 2];
    return SPARTAN_OK;
}

/* Random values in [-1, 1), each zero with probability zeros. */
static void fill_random(float *h, size_t count, double zeros, sp_rng *r) {
    for (size_t i = 0; i < count; i++) {
        double u = sp_rng_uniform(r);
        h[i] = u <= zeros ? 0.0f : (float)(2.0 * sp_rng_uniform(r) - 1.0);
    }
}

static spartan_status upload_random(spartan_tensor *t, double zeros, sp_rng *r) {
    size_t count = spartan_tensor_numel(t);
    float *h = malloc((count ? count : 1) * sizeof *h);
    if (!h) return sp_err_set(&t->ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "calibration data");
    fill_random(h, count, zeros, r);
    spartan_status st = spartan_tensor_write(t, h, count);
    free(h);
    return st;
}

/* The dense path of b's pass: the own kernel, and CLBlast where it is worth trying; the faster
 * is the path (cal: own_ms, clblast_ms (< 0: not tried), dense_impl, dense_ms). */
static spartan_status time_dense(spartan_policy *p, bench *b, sp_policy_cal *cal) {
    cal->clblast_ms = -1.0;
    b->impl = SPARTAN_GEMM_OWN;
    spartan_status st = bench_time(p, b, SPARTAN_PATH_DENSE, &cal->own_ms);
    if (st == SPARTAN_OK && sp_policy_tries_clblast(p)) {
        b->impl = SPARTAN_GEMM_CLBLAST;
        st = bench_time(p, b, SPARTAN_PATH_DENSE, &cal->clblast_ms);
    }
    cal->dense_impl = cal->clblast_ms > 0 && cal->clblast_ms < cal->own_ms ? SPARTAN_GEMM_CLBLAST
                                                                           : SPARTAN_GEMM_OWN;
    cal->dense_ms = cal->dense_impl == SPARTAN_GEMM_CLBLAST ? cal->clblast_ms : cal->own_ms;
    b->impl = cal->dense_impl;
    return st;
}

/* The sparse path of b's pass with its sparse operand at the two calibration sparsities. */
static spartan_status time_sparse(spartan_policy *p, bench *b, spartan_tensor *sparse_in, sp_rng *r,
                                  double *low_ms, double *high_ms) {
    spartan_status st = upload_random(sparse_in, SP_POLICY_CAL_LOW, r);
    if (st == SPARTAN_OK) st = bench_time(p, b, SPARTAN_PATH_SPARSE, low_ms);
    if (st == SPARTAN_OK) st = upload_random(sparse_in, SP_POLICY_CAL_HIGH, r);
    if (st == SPARTAN_OK) st = bench_time(p, b, SPARTAN_PATH_SPARSE, high_ms);
    return st;
}

static spartan_status calibrate(spartan_policy *p, spartan_pass pass, int form, size_t rows,
                                size_t kk, size_t nn, sp_policy_cal *cal) {
    spartan_context *ctx = p->ctx;
    bench b = {.ctx = ctx, .impl = SPARTAN_GEMM_OWN};
    sp_rng r = {0x5eed0000u + (uint64_t)pass};
    spartan_status st = spartan_gemm_pass_init(pass, (spartan_sparse_form)form, rows, kk, nn, &b.d);
    if (st == SPARTAN_OK) st = spartan_gemm_operands_create(ctx, &b.d, &b.o);
    /* the operand whose zeros the sparse path skips */
    spartan_tensor *x = (spartan_tensor *)b.o.x, *dy = (spartan_tensor *)b.o.dy;
    spartan_tensor *sparse_in = form == SP_SPARSE_ON_DY ? dy : x;
    if (st == SPARTAN_OK) st = upload_random((spartan_tensor *)b.o.w, 0.0, &r);
    if (st == SPARTAN_OK && dy) st = upload_random(dy, 0.0, &r);
    if (st == SPARTAN_OK) st = upload_random(x, 0.0, &r);
    if (st == SPARTAN_OK) st = time_dense(p, &b, cal);
    cal->engine[0] = cal->engine[1] = SP_CONV_GEMM;
    cal->im2col_ms = cal->implicit_ms = -1.0;
    cal->sparse_low_ms = cal->sparse_high_ms = 1e30; /* never taken: no sparse form */
    if (st == SPARTAN_OK && form != SP_SPARSE_NONE)
        st = time_sparse(p, &b, sparse_in, &r, &cal->sparse_low_ms, &cal->sparse_high_ms);
    spartan_gemm_operands_destroy(&b.o);
    return st;
}

/* A convolution's pass: the dense path on each engine (im2col + GEMM: the own kernel, and
 * CLBlast where it is tried; implicit) and the sparse path on each engine that can run it, at
 * both sparsities; each path keeps its faster engine (sparse: the lower sum of its two points).
 * The sparse operand is the image X (forward; the patch matrix inherits its zeros) or dY. */
static spartan_status calibrate_conv(spartan_policy *p, spartan_pass pass, int form,
                                     const spartan_window *win, size_t out_c, sp_policy_cal *cal) {
    spartan_context *ctx = p->ctx;
    const size_t oh = spartan_window_out_h(win), ow = spartan_window_out_w(win);
    const size_t pixels = win->batch * oh * ow, patch = win->k_h * win->k_w * win->in_c;
    const size_t in_pixels = win->batch * win->in_h * win->in_w;
    sp_conv_operands co = {.win = *win};
    bench b = {.ctx = ctx, .impl = SPARTAN_GEMM_OWN, .co = &co};
    sp_rng r = {0x5eed0100u + (uint64_t)pass};
    spartan_tensor *x = NULL, *dx = NULL;
    spartan_status st =
        spartan_gemm_pass_init(pass, (spartan_sparse_form)form, pixels, patch, out_c, &b.d);
    if (st == SPARTAN_OK) st = spartan_gemm_operands_create(ctx, &b.d, &b.o);
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, in_pixels, win->in_c, &x);
    if (st == SPARTAN_OK) st = spartan_tensor_create_2d(ctx, in_pixels, win->in_c, &dx);
    co.d = &b.d;
    co.x = x;
    co.dx = dx;
    co.g = b.o;
    spartan_tensor *dy = (spartan_tensor *)b.o.dy;
    spartan_tensor *sparse_in = form == SP_SPARSE_ON_DY ? dy : x;
    if (st == SPARTAN_OK) st = upload_random((spartan_tensor *)b.o.w, 0.0, &r);
    if (st == SPARTAN_OK && dy) st = upload_random(dy, 0.0, &r);
    if (st == SPARTAN_OK) st = upload_random(x, 0.0, &r);
    cal->implicit_ms = -1.0;
    cal->engine[0] = cal->engine[1] = SP_CONV_GEMM;
    b.engine = SP_CONV_GEMM;
    if (st == SPARTAN_OK) st = time_dense(p, &b, cal);
    cal->im2col_ms = cal->dense_ms;
    if (st == SPARTAN_OK && sp_conv_engine_usable(ctx, pass, SPARTAN_PATH_DENSE,
                                                  (spartan_sparse_form)form, SP_CONV_IMPLICIT)) {
        b.engine = SP_CONV_IMPLICIT;
        st = bench_time(p, &b, SPARTAN_PATH_DENSE, &cal->implicit_ms);
        if (st == SPARTAN_OK && cal->implicit_ms < cal->dense_ms) {
            cal->dense_ms = cal->implicit_ms;
            cal->engine[SPARTAN_PATH_DENSE] = SP_CONV_IMPLICIT;
        }
    }
    cal->sparse_low_ms = cal->sparse_high_ms = 1e30; /* never taken: no sparse form */
    for (int e = SP_CONV_GEMM; form != SP_SPARSE_NONE && e <= SP_CONV_IMPLICIT && st == SPARTAN_OK;
         e++) {
        if (!sp_conv_engine_usable(ctx, pass, SPARTAN_PATH_SPARSE, (spartan_sparse_form)form,
                                   (sp_conv_engine)e))
            continue;
        double lo = 0.0, hi = 0.0;
        b.engine = (sp_conv_engine)e;
        st = time_sparse(p, &b, sparse_in, &r, &lo, &hi);
        if (st == SPARTAN_OK && lo + hi < cal->sparse_low_ms + cal->sparse_high_ms) {
            cal->sparse_low_ms = lo;
            cal->sparse_high_ms = hi;
            cal->engine[SPARTAN_PATH_SPARSE] = e;
        }
    }
    spartan_gemm_operands_destroy(&b.o);
    spartan_tensor_destroy(x);
    spartan_tensor_destroy(dx);
    return st;
}

/* ---- The policy -------------------------------------------------------------------------------
 */

spartan_status spartan_policy_create(spartan_context *ctx, spartan_policy_mode mode,
                                     spartan_policy **out) {
    if (out) *out = NULL;
    if (!ctx || !out) return sp_invalid(ctx, "spartan_policy_create: NULL argument");
    if ((unsigned)mode > SPARTAN_POLICY_ADAPTIVE)
        return sp_invalid(ctx, "spartan_policy_create: unknown mode %d", (int)mode);
    spartan_policy *p = calloc(1, sizeof *p);
    if (!p) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "policy");
    p->ctx = ctx;
    p->mode = mode;
    if (mode == SPARTAN_POLICY_ADAPTIVE) {
        sp_cal_cache_open(&p->cache, ctx);
    }
    *out = p;
    return SPARTAN_OK;
}

void spartan_policy_destroy(spartan_policy *p) {
    if (!p) return;
    free(p->slots);
    free(p->events);
    sp_cal_cache_free(&p->cache);
    free(p);
}

spartan_policy_mode spartan_policy_get_mode(const spartan_policy *p) {
    return p ? p->mode : SPARTAN_POLICY_DENSE;
}

static slot *find(const spartan_policy *p, size_t layer, spartan_pass pass) {
    size_t i = layer * SPARTAN_PASS_COUNT + (size_t)pass;
    if ((unsigned)pass >= SPARTAN_PASS_COUNT || i >= p->nslots || !p->slots[i].used) return NULL;
    return &p->slots[i];
}

/* The layer's rows x K x N from the pass's GEMM shape (spartan_policy_query). */
static void layer_dims(spartan_pass pass, size_t m, size_t n, size_t k, size_t *rows, size_t *kk,
                       size_t *nn) {
    if (pass == SPARTAN_PASS_FWD) {
        *rows = m, *kk = k, *nn = n;
    } else if (pass == SPARTAN_PASS_BWD_INPUT) {
        *rows = m, *kk = n, *nn = k;
    } else {
        *rows = k, *kk = m, *nn = n;
    }
}

/* SPARTAN_CONV_ENGINE=im2col or implicit: every convolution pass on that engine wherever it can
 * run the path (tests, and a user comparing the engines); unset or anything else: as chosen. */
static void forced_engines(const spartan_policy *p, spartan_pass pass, int form,
                           const spartan_window *win, slot *s) {
    const char *e = getenv("SPARTAN_CONV_ENGINE");
    if (!win || !e) return;
    const int gemm = strcmp(e, "im2col") == 0, implicit = strcmp(e, "implicit") == 0;
    for (int path = 0; path < 2 && (gemm || implicit); path++)
        s->engine[path] =
            gemm || !sp_conv_engine_usable(p->ctx, pass, (spartan_path)path,
                                           (spartan_sparse_form)form, SP_CONV_IMPLICIT)
                ? SP_CONV_GEMM
                : SP_CONV_IMPLICIT;
}

/* Registers (layer, pass); win: a convolution's window (NULL: a GEMM layer), out_c its
 * output channels. */
static spartan_status register_slot(spartan_policy *p, size_t layer, spartan_pass pass, size_t m,
                                    size_t n, size_t k, int sparse_allowed,
                                    const spartan_window *win, size_t out_c,
                                    const sp_policy_cal *cal) {
    /* the sparse kernels off on this device (they failed to build or validate): nothing sparse
     * to calibrate or choose */
    if (!sp_sparse_usable(p->ctx)) sparse_allowed = 0;
    size_t i = layer * SPARTAN_PASS_COUNT + (size_t)pass;
    if (i >= p->nslots) {
        slot *s = realloc(p->slots, (i + 1) * sizeof *s);
        if (!s) return sp_err_set(&p->ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "policy");
        memset(s + p->nslots, 0, (i + 1 - p->nslots) * sizeof *s);
        p->slots = s;
        p->nslots = i + 1;
    }
    slot *s = &p->slots[i];
    *s = (slot){.used = 1,
                .allowed = sparse_allowed,
                .m = m,
                .n = n,
                .k = k,
                .corr = {1.0, 1.0},
                .cur = SPARTAN_PATH_DENSE,
                .last_seen = {p->step, p->step}};
    /* the engines without a calibration: the implicit kernels wherever they run the pass */
    for (int path = 0; path < 2 && win; path++)
        s->engine[path] =
            sp_conv_engine_usable(p->ctx, pass, (spartan_path)path,
                                  (spartan_sparse_form)sparse_allowed, SP_CONV_IMPLICIT)
                ? SP_CONV_IMPLICIT
                : SP_CONV_GEMM;
    /* nothing to choose: no sparse form and one dense implementation */
    const int engines = win != NULL && s->engine[SPARTAN_PATH_DENSE] == SP_CONV_IMPLICIT;
    if (p->mode != SPARTAN_POLICY_ADAPTIVE ||
        (!sparse_allowed && !sp_policy_tries_clblast(p) && !engines)) {
        forced_engines(p, pass, sparse_allowed, win, s);
        return SPARTAN_OK;
    }
    if (cal) {
        s->cal = *cal;
    } else {
        /* the cache tells the forms apart: a backward pass on dY is stored as pass 3 + its index, a
         * pass without a sparse form (dense implementations only) as pass 6 + its index */
        const int on_dy = sparse_allowed == SP_SPARSE_ON_DY;
        const int key = (int)pass + (on_dy ? SPARTAN_PASS_COUNT : 0) +
                        (sparse_allowed ? 0 : 2 * SPARTAN_PASS_COUNT);
        const uint64_t geom = sp_cal_geom(win);
        const sp_cal_entry *e = sp_cal_cache_find(&p->cache, key, m, n, k, geom);
        if (e) {
            s->cal = e->cal;
        } else {
            size_t rows, kk, nn;
            layer_dims(pass, m, n, k, &rows, &kk, &nn);
            spartan_status st = win ? calibrate_conv(p, pass, sparse_allowed, win, out_c, &s->cal)
                                    : calibrate(p, pass, sparse_allowed, rows, kk, nn, &s->cal);
            if (st != SPARTAN_OK) return st;
            if (sp_cal_cache_add(&p->cache, key, m, n, k, geom, &s->cal))
                sp_cal_cache_store(&p->cache);
        }
    }
    if (win) {
        s->engine[SPARTAN_PATH_DENSE] = s->cal.engine[SPARTAN_PATH_DENSE];
        s->engine[SPARTAN_PATH_SPARSE] = s->cal.engine[SPARTAN_PATH_SPARSE];
    }
    s->calibrated = 1;
    forced_engines(p, pass, sparse_allowed, win, s);
    return SPARTAN_OK;
}

spartan_status sp_policy_register(spartan_policy *p, size_t layer, spartan_pass pass, size_t m,
                                  size_t n, size_t k, int sparse_allowed,
                                  const sp_policy_cal *cal) {
    return register_slot(p, layer, pass, m, n, k, sparse_allowed, NULL, 0, cal);
}

spartan_status sp_policy_register_conv(spartan_policy *p, size_t layer, spartan_pass pass,
                                       const spartan_window *win, size_t n, int sparse_allowed,
                                       const sp_policy_cal *cal) {
    const size_t pixels = win->batch * spartan_window_out_h(win) * spartan_window_out_w(win);
    const size_t patch = win->k_h * win->k_w * win->in_c;
    spartan_gemm_pass d;
    spartan_status st =
        spartan_gemm_pass_init(pass, (spartan_sparse_form)sparse_allowed, pixels, patch, n, &d);
    if (st != SPARTAN_OK) return st;
    return register_slot(p, layer, pass, d.m, d.gn, d.gk, sparse_allowed, win, n, cal);
}

sp_conv_engine sp_policy_engine(const spartan_policy *p, size_t layer, spartan_pass pass,
                                spartan_path path) {
    const slot *s = p ? find(p, layer, pass) : NULL;
    return s ? (sp_conv_engine)s->engine[path] : SP_CONV_GEMM;
}

int sp_policy_tries_clblast(const spartan_policy *p) {
    if (!p || !spartan_have_clblast()) return 0;
    const char *force = getenv("SPARTAN_POLICY_CLBLAST");
    if (force && strcmp(force, "1") == 0) return 1;
    const spartan_device_info *d = &p->ctx->dev.info;
    return !(d->type & SPARTAN_DEVICE_CPU) && d->vendor != SPARTAN_VENDOR_POCL &&
           d->vendor != SPARTAN_VENDOR_SIMULATOR;
}

spartan_status sp_policy_calibration(const spartan_policy *p, size_t layer, spartan_pass pass,
                                     sp_policy_cal *out) {
    const slot *s = p ? find(p, layer, pass) : NULL;
    if (!s || !s->calibrated)
        return sp_invalid(p ? p->ctx : NULL, "layer %zu %s is not calibrated", layer,
                          spartan_pass_name(pass));
    *out = s->cal;
    return SPARTAN_OK;
}

spartan_gemm_path spartan_policy_dense_path(const spartan_policy *p, size_t layer,
                                            spartan_pass pass) {
    const slot *s = p ? find(p, layer, pass) : NULL;
    return s && s->calibrated ? s->cal.dense_impl : SPARTAN_GEMM_BEST;
}

void sp_policy_set_step(spartan_policy *p, size_t step) {
    if (p) p->step = step;
}

size_t sp_policy_benchmarks_run(const spartan_policy *p) {
    return p ? p->benchmarks : 0;
}

/* The calibrated times (without correction) at a sparsity: dense is flat; sparse is linear in
 * the density through the two calibration points, never rising with sparsity, floored at a
 * quarter of the high point's time (the part that does not shrink: launches, the walk over
 * rows, compaction). */
static double model_ms(const slot *s, spartan_path path, double sparsity) {
    if (path == SPARTAN_PATH_DENSE) return s->cal.dense_ms;
    double z = sparsity < 0 ? 0.0 : sparsity > 1 ? 1.0 : sparsity;
    double slope =
        (s->cal.sparse_low_ms - s->cal.sparse_high_ms) / (SP_POLICY_CAL_HIGH - SP_POLICY_CAL_LOW);
    if (slope < 0) slope = 0;
    double t = s->cal.sparse_high_ms + (SP_POLICY_CAL_HIGH - z) * slope;
    return fmax(t, 0.25 * s->cal.sparse_high_ms);
}

/* The calibrated time times the path's online correction. A path never measured in training
 * borrows the other's correction: what makes training's runs slower than the calibration's
 * (cold caches, the other work of the step) touches both paths alike, and comparing one
 * corrected prediction with one uncorrected would favour the path not taken. */
static double predict(const slot *s, spartan_path path, double sparsity) {
    const spartan_path other =
        path == SPARTAN_PATH_DENSE ? SPARTAN_PATH_SPARSE : SPARTAN_PATH_DENSE;
    double c = s->measured[path] ? s->corr[path] : s->measured[other] ? s->corr[other] : 1.0;
    return model_ms(s, path, sparsity) * c;
}

static void log_event(spartan_policy *p, size_t layer, spartan_pass pass, spartan_path from,
                      spartan_path to, double sparsity, double pd, double ps, const char *reason) {
    if (p->nevents == p->event_cap) {
        size_t cap = p->event_cap ? 2 * p->event_cap : 32;
        spartan_policy_event *e = realloc(p->events, cap * sizeof *e);
        if (!e) return; /* the decision stands; only its record is lost */
        p->events = e;
        p->event_cap = cap;
    }
    p->events[p->nevents++] =
        (spartan_policy_event){p->step, layer, pass, from, to, sparsity, pd, ps, reason};
}

spartan_path spartan_policy_choose(spartan_policy *p, const spartan_policy_query *q,
                                   const char **reason) {
    const char *why = "policy dense";
    spartan_path path = SPARTAN_PATH_DENSE;
    if (!p || !q) {
        why = "no policy";
    } else if (!q->sparse_allowed && p->mode != SPARTAN_POLICY_DENSE) {
        why = "no sparse form for this pass";
    } else if (!sp_sparse_usable(p->ctx) && p->mode != SPARTAN_POLICY_DENSE) {
        why = "the sparse kernels are off on this device (spartan-info says why)";
    } else if (p->mode == SPARTAN_POLICY_SPARSE) {
        path = SPARTAN_PATH_SPARSE;
        why = "policy sparse";
    } else if (p->mode == SPARTAN_POLICY_ADAPTIVE) {
        slot *s = find(p, q->layer, q->pass);
        if (!s || !s->calibrated) {
            why = "not calibrated";
        } else {
            const double z = q->sparsity;
            const double pd = predict(s, SPARTAN_PATH_DENSE, z);
            const double ps = predict(s, SPARTAN_PATH_SPARSE, z);
            const double pc = s->cur == SPARTAN_PATH_DENSE ? pd : ps;
            const double po = s->cur == SPARTAN_PATH_DENSE ? ps : pd;
            const int wants =
                po < pc * (1.0 - SP_POLICY_MARGIN) && pc - po >= SP_POLICY_MIN_GAIN_MS;
            if (!s->chosen) {
                s->chosen = 1;
                s->since = p->step;
                s->cur = ps < pd ? SPARTAN_PATH_SPARSE : SPARTAN_PATH_DENSE;
                why = "first choice: predicted faster";
                log_event(p, q->layer, q->pass, s->cur, s->cur, z, pd, ps, why);
            } else if (!wants) {
                s->pending = 0;
                why = po < pc ? "held: predicted gain below the margin" : "predicted faster";
            } else if (p->step < s->since + SP_POLICY_DWELL) {
                why = "held: too soon after the last change";
            } else if (++s->pending < SP_POLICY_PERSIST) {
                why = "switch pending: the other path predicted faster, not yet long enough";
            } else {
                spartan_path from = s->cur;
                s->pending = 0;
                s->since = p->step;
                s->cur = from == SPARTAN_PATH_DENSE ? SPARTAN_PATH_SPARSE : SPARTAN_PATH_DENSE;
                why = "switched: the other path is predicted faster by more than the margin";
                log_event(p, q->layer, q->pass, from, s->cur, z, pd, ps, why);
            }
            path = s->cur;
            const spartan_path other =
                path == SPARTAN_PATH_DENSE ? SPARTAN_PATH_SPARSE : SPARTAN_PATH_DENSE;
            const double pcur = path == SPARTAN_PATH_DENSE ? pd : ps;
            const double poth = path == SPARTAN_PATH_DENSE ? ps : pd;
            /* A path never measured is timed soon whatever its prediction (that is only the
             * calibration's); the passes of a layer take turns (not all in one step). */
            const size_t wait = s->measured[other] ? SP_POLICY_EXPLORE_EVERY
                                                   : SP_POLICY_EXPLORE_FIRST + (size_t)q->pass;
            if (p->step >= s->last_seen[other] + wait &&
                (!s->measured[other] || poth <= SP_POLICY_EXPLORE_RATIO * pcur)) {
                s->last_seen[other] = p->step;
                path = other;
                why = "exploring: timing the path not taken";
            }
        }
    }
    if (reason) *reason = why;
    return path;
}

void sp_policy_observe(spartan_policy *p, size_t layer, spartan_pass pass, spartan_path path,
                       double sparsity, double ms) {
    slot *s = p ? find(p, layer, pass) : NULL;
    if (!s || !s->calibrated || !(ms > 0) || !isfinite(ms)) return;
    s->last_seen[path] = p->step;
    /* A path's first run in training is its warm-up (first touch of its buffers, the driver's
     * first launch): not learned from. */
    if (++s->runs[path] == 1) return;
    double ratio = ms / model_ms(s, path, sparsity);
    ratio = fmin(fmax(ratio, 0.2), 5.0); /* one wild sample cannot swing the model */
    /* the first measurement replaces the borrowed correction; later ones are averaged in */
    s->corr[path] = s->measured[path]
                        ? (1.0 - SP_POLICY_ALPHA) * s->corr[path] + SP_POLICY_ALPHA * ratio
                        : ratio;
    s->measured[path] = 1;
}

size_t spartan_policy_events(const spartan_policy *p, size_t first, spartan_policy_event *out,
                             size_t max) {
    if (!p) return 0;
    for (size_t i = 0; out && i < max && first + i < p->nevents; i++) out[i] = p->events[first + i];
    return p->nevents;
}

spartan_status spartan_policy_predict(const spartan_policy *p, size_t layer, spartan_pass pass,
                                      double sparsity, double *dense_ms, double *sparse_ms) {
    const slot *s = p ? find(p, layer, pass) : NULL;
    if (!s || !s->calibrated || !dense_ms || !sparse_ms)
        return sp_invalid(p ? p->ctx : NULL,
                          "spartan_policy_predict: layer %zu %s is not "
                          "calibrated",
                          layer, spartan_pass_name(pass));
    *dense_ms = predict(s, SPARTAN_PATH_DENSE, sparsity);
    *sparse_ms = predict(s, SPARTAN_PATH_SPARSE, sparsity);
    return SPARTAN_OK;
}
