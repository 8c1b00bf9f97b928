/* `spartan-bench conv`: the convolution engine against its dense alternatives, per layer shape
 * and pass, at each pattern and sparsity of the operand the sparse path skips:
 *
 *   pass        sparse operand    paths timed
 *   fwd         X (the input)     im2col + GEMM (own, CLBlast), implicit dense, implicit sparse
 *   bwd_input   dY                GEMM dY.W^T + col2im (own, CLBlast), implicit dense, sparse
 *   bwd_weight  dY                GEMM im2col(X)^T.dY (own, CLBlast), implicit dense, sparse
 *
 * The im2col line of bwd_weight does not include the im2col: in training it reuses the patch
 * matrix the forward pass made (the alternative most favourable to it). The sparse path is timed
 * in alternation with the best dense device path of the same shape and pass (bench_time_device_
 * paired), and its speedup uses that paired median; ideal = 1 / (1 - measured zeros). Every
 * device result is checked against the host (im2col and OpenBLAS in float, tolerance from K and
 * float epsilon): a wrong result is reported as WRONG, never as a time. What this file does not
 * do: choose shapes (spartan-bench.c) or time (timing.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "patterns.h"

enum { CP_IM2COL = 0, CP_CLBLAST, CP_IMPLICIT, CP_SPARSE, CP_COUNT };
static const char *const cpath_names[CP_COUNT] = {"im2col", "im2col_clblast", "implicit", "sparse"};

const char bench_conv_csv_header[] =
    "device,pass,shape,label,pattern,sparsity,measured_sparsity,path,median_ms,min_ms,max_ms,"
    "best_dense_path,best_dense_ms,speedup,ideal,fraction_of_ideal,max_abs_diff,tolerance,ok,"
    "timing";

/* One layer's host and device operands. X is batch x in_h x in_w x in_c, W patch x out_c, Y and
 * dY pixels x out_c; cols the patch matrix (pixels x patch). */
typedef struct conv_ops {
    spartan_window w;
    size_t out_c, oh, ow, pixels, patch, image;
    float *x, *wt, *dy, *cols, *tmp, *out, *ref;
    spartan_tensor *tx, *tw, *tdy, *ty, *tdx, *tdw, *tcols;
} conv_ops;

typedef struct conv_job {
    const bench_dev *d;
    conv_ops *op;
    bench_pass pass;
    int path;
    spartan_status st;
} conv_job;

static void ops_free(conv_ops *o) {
    float *h[] = {o->x, o->wt, o->dy, o->cols, o->tmp, o->out, o->ref};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    spartan_tensor *t[] = {o->tx, o->tw, o->tdy, o->ty, o->tdx, o->tdw, o->tcols};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) spartan_tensor_destroy(t[i]);
    memset(o, 0, sizeof *o);
}

static int ops_make(const bench_dev *d, const bench_conv_shape *s, conv_ops *o) {
    memset(o, 0, sizeof *o);
    o->w = s->w;
    o->out_c = s->out_c;
    o->oh = spartan_window_out_h(&s->w);
    o->ow = spartan_window_out_w(&s->w);
    o->pixels = s->w.batch * o->oh * o->ow;
    o->patch = s->w.k_h * s->w.k_w * s->w.in_c;
    o->image = s->w.batch * s->w.in_h * s->w.in_w * s->w.in_c;
    size_t big = o->pixels * o->patch;
    if (o->image > big) big = o->image;
    if (o->pixels * o->out_c > big) big = o->pixels * o->out_c;
    o->x = malloc(o->image * sizeof(float));
    o->wt = malloc(o->patch * o->out_c * sizeof(float));
    o->dy = malloc(o->pixels * o->out_c * sizeof(float));
    o->cols = malloc(o->pixels * o->patch * sizeof(float));
    o->tmp = malloc(o->pixels * o->patch * sizeof(float));
    o->out = malloc(big * sizeof(float));
    o->ref = malloc(big * sizeof(float));
    if (!o->x || !o->wt || !o->dy || !o->cols || !o->tmp || !o->out || !o->ref) {
        fprintf(stderr, "spartan-bench: out of host memory for %s\n", s->label);
        ops_free(o);
        return 1;
    }
    spartan_context *ctx = d->ctx;
    spartan_status st;
    if ((st = spartan_tensor_create_2d(ctx, o->image / (s->w.in_c ? s->w.in_c : 1), s->w.in_c,
                                       &o->tx)) ||
        (st = spartan_tensor_create_2d(ctx, o->patch, o->out_c, &o->tw)) ||
        (st = spartan_tensor_create_2d(ctx, o->pixels, o->out_c, &o->tdy)) ||
        (st = spartan_tensor_create_2d(ctx, o->pixels, o->out_c, &o->ty)) ||
        (st = spartan_tensor_create_2d(ctx, o->image / (s->w.in_c ? s->w.in_c : 1), s->w.in_c,
                                       &o->tdx)) ||
        (st = spartan_tensor_create_2d(ctx, o->patch, o->out_c, &o->tdw)) ||
        (st = spartan_tensor_create_2d(ctx, o->pixels, o->patch, &o->tcols))) {
        bench_report_status(d, st, "allocating the operands");
        ops_free(o);
        return 1;
    }
    return 0;
}

/* im2col on the host (the reference's patch matrix: cols from x), or with adjoint its adjoint
 * col2im (x, zeroed first, gathers the sums of cols). */
static void host_patches(const conv_ops *o, float *x, float *cols, int adjoint) {
    const spartan_window *w = &o->w;
    if (adjoint) memset(x, 0, o->image * sizeof *x);
    for (size_t p = 0; p < o->pixels; p++) {
        size_t b = p / (o->oh * o->ow), oy = p / o->ow % o->oh, ox = p % o->ow;
        for (size_t ky = 0; ky < w->k_h; ky++)
            for (size_t kx = 0; kx < w->k_w; kx++) {
                long iy = (long)(oy * w->stride + ky) - (long)w->pad;
                long ix = (long)(ox * w->stride + kx) - (long)w->pad;
                int in = iy >= 0 && ix >= 0 && iy < (long)w->in_h && ix < (long)w->in_w;
                float *col = cols + p * o->patch + (ky * w->k_w + kx) * w->in_c;
                float *img = x + ((b * w->in_h + (size_t)iy) * w->in_w + (size_t)ix) * w->in_c;
                for (size_t c = 0; c < w->in_c; c++) {
                    if (adjoint && in) img[c] += col[c];
                    if (!adjoint) col[c] = in ? img[c] : 0.0f;
                }
            }
    }
}

/* The pass on the host into o->ref; *count its size, *kred its reduction length. */
static void host_pass(conv_ops *o, bench_pass p, size_t *count, size_t *kred) {
    if (p == PASS_FWD) {
        host_patches(o, o->x, o->cols, 0);
        host_sgemm(0, 0, o->pixels, o->out_c, o->patch, o->cols, o->wt, o->ref);
        *count = o->pixels * o->out_c;
        *kred = o->patch;
    } else if (p == PASS_BWD_INPUT) {
        host_sgemm(0, 1, o->pixels, o->patch, o->out_c, o->dy, o->wt, o->tmp);
        host_patches(o, o->ref, o->tmp, 1);
        *count = o->image;
        *kred = o->out_c * o->w.k_h * o->w.k_w;
    } else {
        host_patches(o, o->x, o->cols, 0);
        host_sgemm(1, 0, o->patch, o->out_c, o->pixels, o->cols, o->dy, o->ref);
        *count = o->patch * o->out_c;
        *kred = o->pixels;
    }
}

static spartan_tensor *pass_output(const conv_ops *o, bench_pass p) {
    return p == PASS_FWD ? o->ty : p == PASS_BWD_INPUT ? o->tdx : o->tdw;
}

/* One repetition of a path of a pass: the calls training makes for it. */
static int run_conv(void *arg) {
    conv_job *j = arg;
    conv_ops *o = j->op;
    spartan_context *ctx = j->d->ctx;
    const spartan_window *w = &o->w;
    spartan_gemm_path g = j->path == CP_CLBLAST ? SPARTAN_GEMM_CLBLAST : SPARTAN_GEMM_OWN;
    spartan_path sp = j->path == CP_SPARSE ? SPARTAN_PATH_SPARSE : SPARTAN_PATH_DENSE;
    spartan_status st = SPARTAN_OK;
    if (j->path == CP_IM2COL || j->path == CP_CLBLAST) {
        if (j->pass == PASS_FWD) {
            st = spartan_im2col(ctx, w, o->tx, o->tcols);
            if (st == SPARTAN_OK)
                st = spartan_gemm_dense(ctx, g, 0, 0, 1.0f, o->tcols, o->tw, 0.0f, o->ty);
        } else if (j->pass == PASS_BWD_INPUT) {
            st = spartan_gemm_dense(ctx, g, 0, 1, 1.0f, o->tdy, o->tw, 0.0f, o->tcols);
            if (st == SPARTAN_OK) st = spartan_col2im(ctx, w, o->tcols, o->tdx);
        } else {
            /* the patch matrix made once, outside the timing (the forward pass's) */
            st = spartan_gemm_dense(ctx, g, 1, 0, 1.0f, o->tcols, o->tdy, 0.0f, o->tdw);
        }
    } else if (j->pass == PASS_FWD) {
        st = spartan_conv2d_forward(ctx, sp, w, o->tx, o->tw, o->ty);
    } else if (j->pass == PASS_BWD_INPUT) {
        st = spartan_conv2d_backward_input(ctx, sp, w, o->tdy, o->tw, o->tdx);
    } else {
        st = spartan_conv2d_backward_weight(ctx, sp, w, o->tx, o->tdy, o->tdw);
    }
    j->st = st;
    return st != SPARTAN_OK;
}

/* Everything one run keeps across shapes. */
typedef struct conv_run {
    const bench_dev *d;
    const bench_opts *o;
    bench_out *out;
    const char *date;
    int have_clblast;
    size_t wrong, failed;
} conv_run;

static void shape_text(const bench_conv_shape *s, char *buf, size_t len) {
    snprintf(buf, len, "%zux%zux%zux%zu,%zux%zu,%zu,s%zu,p%zu", s->w.batch, s->w.in_h, s->w.in_w,
             s->w.in_c, s->w.k_h, s->w.k_w, s->out_c, s->w.stride, s->w.pad);
}

static int upload(const bench_dev *d, spartan_tensor *t, const float *h, size_t n) {
    spartan_status st = spartan_tensor_write(t, h, n);
    if (st != SPARTAN_OK) bench_report_status(d, st, "uploading an operand");
    return st != SPARTAN_OK;
}

/* Reads the pass's output and compares it with o->ref. */
static int check(conv_run *r, conv_ops *o, bench_pass p, size_t count, double tol, bench_check *c) {
    spartan_status st = spartan_tensor_read(pass_output(o, p), o->out, count);
    if (st != SPARTAN_OK) {
        bench_report_status(r->d, st, "reading a result back");
        return 1;
    }
    *c = host_compare(o->out, o->ref, NULL, count, tol);
    return 0;
}

static cJSON *record(conv_run *r, const bench_conv_shape *s, bench_pass p, const char *pattern,
                     double sparsity, double measured, int path, const bench_stat *st,
                     const bench_check *c) {
    char shape[96];
    shape_text(s, shape, sizeof shape);
    cJSON *rec = bench_record(r->d, r->date);
    cJSON_AddStringToObject(rec, "pass", bench_pass_name(p));
    cJSON_AddStringToObject(rec, "shape", shape);
    cJSON_AddStringToObject(rec, "label", s->label);
    cJSON_AddStringToObject(rec, "pattern", pattern);
    cJSON_AddNumberToObject(rec, "sparsity", sparsity);
    cJSON_AddNumberToObject(rec, "measured_sparsity", measured);
    cJSON_AddStringToObject(rec, "path", cpath_names[path]);
    bench_json_number(rec, "median_ms", st->median_ms);
    bench_json_number(rec, "min_ms", st->min_ms);
    bench_json_number(rec, "max_ms", st->max_ms);
    cJSON_AddNumberToObject(rec, "runs", st->runs);
    bench_json_number(rec, "max_abs_diff", c->max_diff);
    bench_json_number(rec, "tolerance", c->tol);
    cJSON_AddBoolToObject(rec, "ok", c->ok);
    return rec;
}

static void csv_line(conv_run *r, const bench_conv_shape *s, bench_pass p, const char *pattern,
                     double sparsity, double measured, int path, const bench_stat *st, int best,
                     double best_ms, double speedup, double ideal, const bench_check *c) {
    FILE *f = r->out->csv;
    if (!f) return;
    char shape[96];
    shape_text(s, shape, sizeof shape);
    bench_csv_string(f, r->d->info->name);
    fprintf(f, ",%s,", bench_pass_name(p));
    bench_csv_string(f, shape);
    fputc(',', f);
    bench_csv_string(f, s->label);
    fprintf(f, ",%s", pattern);
    bench_csv_number(f, sparsity);
    bench_csv_number(f, measured);
    fprintf(f, ",%s", cpath_names[path]);
    bench_csv_number(f, st->median_ms);
    bench_csv_number(f, st->min_ms);
    bench_csv_number(f, st->max_ms);
    fprintf(f, ",%s", best >= 0 ? cpath_names[best] : "");
    bench_csv_number(f, best_ms);
    bench_csv_number(f, speedup);
    bench_csv_number(f, ideal);
    bench_csv_number(f, speedup / ideal);
    bench_csv_number(f, c->max_diff);
    bench_csv_number(f, c->tol);
    fprintf(f, ",%d,%s\n", c->ok, spartan_timing_name(r->d->timing));
}

/* Fills the pass's inputs: X (its sparse operand in fwd, else dense-ish like a ReLU output), W
 * and dY (the sparse operand of the backward passes) at pattern pk and zeros s. Returns the
 * measured zero fraction of the sparse operand, < 0 on failure. */
static double fill(conv_run *r, conv_ops *o, bench_pass p, pat_kind pk, double s, uint64_t seed) {
    /* the patterns' rows are image rows (W x C), so that cluster's blocks and dead columns are
     * patches of pixels and channels even where there are few channels */
    const size_t xrows = o->w.batch * o->w.in_h, xcols = o->w.in_w * o->w.in_c;
    const size_t yrows = o->w.batch * o->oh, ycols = o->ow * o->out_c;
    pat_fill_dense(o->wt, o->patch * o->out_c, seed + 1);
    if (p == PASS_FWD) {
        pat_fill(o->x, xrows, xcols, pk, s, 0, seed);
        pat_fill_dense(o->dy, o->pixels * o->out_c, seed + 2);
    } else {
        pat_fill(o->x, xrows, xcols, PAT_RANDOM, 0.5, 0, seed + 3);
        pat_fill(o->dy, yrows, ycols, pk, s, 1, seed);
    }
    if (upload(r->d, o->tx, o->x, o->image) || upload(r->d, o->tw, o->wt, o->patch * o->out_c) ||
        upload(r->d, o->tdy, o->dy, o->pixels * o->out_c))
        return -1.0;
    if (p == PASS_BWD_WEIGHT) { /* the forward pass's patch matrix, made once */
        spartan_status st = spartan_im2col(r->d->ctx, &o->w, o->tx, o->tcols);
        if (st != SPARTAN_OK) {
            bench_report_status(r->d, st, "im2col");
            return -1.0;
        }
    }
    const float *sp = p == PASS_FWD ? o->x : o->dy;
    size_t n = p == PASS_FWD ? o->image : o->pixels * o->out_c;
    return n ? (double)pat_zeros(sp, n) / (double)n : 0.0;
}

/* The dense paths of one (shape, pass) on data at zeros 0: times and checks; the best device
 * path into *best (-1: none usable) and its median into *best_ms. */
static void measure_dense(conv_run *r, const bench_conv_shape *s, conv_ops *o, bench_pass p,
                          int *best, double *best_ms) {
    *best = -1;
    *best_ms = NAN;
    if (fill(r, o, p, PAT_RANDOM, 0.0, r->o->seed) < 0) {
        r->failed++;
        return;
    }
    size_t count, kred;
    host_pass(o, p, &count, &kred);
    double tol = host_tolerance(kred, 1.0, 1.0);
    char line[600] = "";
    for (int path = CP_IM2COL; path <= CP_IMPLICIT; path++) {
        if (path == CP_CLBLAST && !r->have_clblast) continue;
        conv_job j = {r->d, o, p, path, SPARTAN_OK};
        bench_plan plan = bench_plan_make(r->o, path == CP_CLBLAST);
        bench_stat st;
        if (bench_time_device(r->d, &plan, run_conv, &j, &st)) {
            bench_report_status(r->d, j.st, cpath_names[path]);
            r->failed++;
            continue;
        }
        bench_check c;
        if (check(r, o, p, count, tol, &c)) {
            r->failed++;
            continue;
        }
        bench_out_add(r->out, record(r, s, p, "none", 0.0, 0.0, path, &st, &c));
        csv_line(r, s, p, "none", 0.0, 0.0, path, &st, -1, NAN, NAN, NAN, &c);
        size_t used = strlen(line);
        snprintf(line + used, sizeof line - used, "%s%s %.3f ms [%.3f..%.3f]%s", used ? ", " : "",
                 cpath_names[path], st.median_ms, st.min_ms, st.max_ms, c.ok ? "" : " WRONG");
        if (!c.ok) {
            fprintf(stderr, "spartan-bench: %s %s %s WRONG: max diff %.3g > tol %.3g\n",
                    cpath_names[path], bench_pass_name(p), s->label, c.max_diff, c.tol);
            r->wrong++;
            continue;
        }
        if (*best < 0 || st.median_ms < *best_ms) {
            *best = path;
            *best_ms = st.median_ms;
        }
    }
    printf("\n%s %s: %s\n", bench_pass_name(p), s->label, line);
    fflush(stdout);
}

/* One sparse configuration, timed in alternation with the best dense path. Returns the
 * speedup (NAN when failed or wrong). */
static double measure_sparse(conv_run *r, const bench_conv_shape *s, conv_ops *o, bench_pass p,
                             pat_kind pk, double zeros, uint64_t seed, int best) {
    double measured = fill(r, o, p, pk, zeros, seed);
    if (measured < 0) {
        r->failed++;
        return NAN;
    }
    size_t count, kred;
    host_pass(o, p, &count, &kred);
    double tol = host_tolerance(kred, 1.0, 1.0);
    conv_job js = {r->d, o, p, CP_SPARSE, SPARTAN_OK}, jd = {r->d, o, p, best, SPARTAN_OK};
    bench_plan plan = bench_plan_make(r->o, best == CP_CLBLAST);
    bench_stat ss, ds;
    if (bench_time_device_paired(r->d, &plan, run_conv, &jd, run_conv, &js, &ds, &ss)) {
        bench_report_status(r->d, js.st ? js.st : jd.st, "sparse");
        r->failed++;
        return NAN;
    }
    bench_check c;
    if (check(r, o, p, count, tol, &c)) {
        r->failed++;
        return NAN;
    }
    double speedup = ds.median_ms / ss.median_ms,
           ideal = measured < 1.0 ? 1.0 / (1.0 - measured) : INFINITY;
    cJSON *rec = record(r, s, p, pat_name(pk), zeros, measured, CP_SPARSE, &ss, &c);
    cJSON_AddStringToObject(rec, "best_dense_path", cpath_names[best]);
    bench_json_number(rec, "best_dense_ms", ds.median_ms);
    bench_json_number(rec, "speedup", speedup);
    bench_json_number(rec, "ideal", ideal);
    bench_json_number(rec, "fraction_of_ideal", speedup / ideal);
    bench_out_add(r->out, rec);
    csv_line(r, s, p, pat_name(pk), zeros, measured, CP_SPARSE, &ss, best, ds.median_ms, speedup,
             ideal, &c);
    printf("%-10s %-7s %5.0f%% %6.3f %9.3f %-15s %9.3f %7.2fx %6.2f %7.2f  %s\n",
           bench_pass_name(p), pat_name(pk), 100.0 * zeros, measured, ss.median_ms,
           cpath_names[best], ds.median_ms, speedup, ideal, speedup / ideal, c.ok ? "ok" : "WRONG");
    fflush(stdout);
    if (!c.ok) {
        fprintf(stderr, "spartan-bench: sparse %s %s WRONG: max diff %.3g > tol %.3g\n",
                bench_pass_name(p), s->label, c.max_diff, c.tol);
        r->wrong++;
        return NAN;
    }
    return speedup;
}

int bench_conv(bench_dev *d, const bench_opts *o, bench_out *out, const char *date) {
    bench_print_header(d, "conv", date);
    conv_run r = {d, o, out, date, spartan_have_clblast() && !o->no_clblast, 0, 0};
    printf("paths    im2col: im2col + own GEMM (bwd_input: GEMM + col2im; bwd_weight: GEMM on the\n"
           "         forward's patch matrix)%s; implicit: the implicit-GEMM kernel, dense;\n"
           "         sparse: the implicit kernel skipping the zeros of X (fwd) or dY (backward)\n",
           r.have_clblast ? "; im2col_clblast: the same with CLBlast" : "");
    for (size_t i = 0; i < o->nconvs; i++) {
        const bench_conv_shape *s = &o->convs[i];
        char shape[96];
        shape_text(s, shape, sizeof shape);
        printf("\n== %s  (%s)\n", s->label, shape);
        conv_ops op;
        if (ops_make(d, s, &op)) {
            r.failed++;
            continue;
        }
        for (int p = 0; p < PASS_COUNT; p++) {
            if (!(o->passes & (1u << p))) continue;
            int best;
            double best_ms;
            measure_dense(&r, s, &op, (bench_pass)p, &best, &best_ms);
            if (best < 0) continue;
            printf("%-10s %-7s %6s %6s %9s %-15s %9s %8s %6s %7s  %s\n", "pass", "pattern", "spars",
                   "zeros", "sparse ms", "best dense", "dense ms", "speedup", "ideal", "ofideal",
                   "check");
            for (int pk = PAT_RANDOM; pk <= PAT_CLUSTER; pk++) {
                if (!(o->patterns & (1u << pk))) continue;
                double crossover = NAN;
                for (size_t z = 0; z < o->nsparsities; z++) {
                    double sp = measure_sparse(&r, s, &op, (bench_pass)p, (pat_kind)pk,
                                               o->sparsities[z], o->seed + 7 * z + 100 * pk, best);
                    if (isnan(crossover) && sp > 1.0) crossover = o->sparsities[z];
                }
                if (isnan(crossover))
                    printf("%-10s %-7s crossover: sparse never faster at these sparsities\n",
                           bench_pass_name((bench_pass)p), pat_name((pat_kind)pk));
                else
                    printf("%-10s %-7s crossover: sparse faster from %.0f %% zeros\n",
                           bench_pass_name((bench_pass)p), pat_name((pat_kind)pk),
                           100.0 * crossover);
            }
        }
        ops_free(&op);
    }
    printf("\n%zu wrong result%s, %zu failure%s\n", r.wrong, r.wrong == 1 ? "" : "s", r.failed,
           r.failed == 1 ? "" : "s");
    return r.wrong || r.failed;
}
