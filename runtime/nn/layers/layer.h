/* A layer kind is one file, runtime/nn/layers/<kind>.c, that fills a table of functions
 * (sp_layer_ops: shape, prepare, forward, backward, release), and one entry of SP_LAYER_KINDS
 * below; the public enum spartan_layer_kind names it (include/spartan/nn.h). The model (model.c)
 * and the step (step.c) call a layer only through its table, and hand each call its per-step
 * state (sp_step) explicitly: a layer reads nothing of the model, and the layer files call
 * nothing of step.c (the timing marks are marks.c's). docs/architecture.md, "How to add a layer
 * kind", follows average pooling through it. */
#ifndef SP_NN_LAYER_H
#define SP_NN_LAYER_H

#include <assert.h>

#include "nn/ard.h"
#include "nn/marks.h"
#include "policy/policy_internal.h"
#include "spartan/nn.h"
#include "spartan/ops.h"
#include "tensor/tensor_internal.h"

/* X(ENUM, name): every kind, in the order of spartan_layer_kind; name is the kind's file, its
 * table (sp_layer_<name>) and its word in model descriptions. */
#define SP_LAYER_KINDS(X)                                                                          \
    X(FC, fc)                                                                                      \
    X(CONV, conv)                                                                                  \
    X(RELU, relu)                                                                                  \
    X(MAXPOOL, maxpool)                                                                            \
    X(DROPOUT, dropout)                                                                            \
    X(FLATTEN, flatten)                                                                            \
    X(AVGPOOL, avgpool)                                                                            \
    X(GLOBALAVGPOOL, globalavgpool)                                                                \
    X(LSTM, lstm)

/* Monitored fractions of zeros of one tensor: the first sample since prepare, the latest, and the
 * sum and count since the last statistics reset (first and last < 0: never sampled). */
typedef struct sp_zeros {
    double first, last, sum;
    size_t n;
} sp_zeros;

/* A monitor count waiting for the end of the step: the monitor (or compaction) filled `s`, its
 * partial sums are being read without blocking into `host`; once the step's one blocking read
 * has returned, the fraction of zeros goes to `into`. */
typedef struct sp_sample {
    spartan_sparse *s;
    unsigned *host; /* sp_sparse_partial_count(s) entries, the layer's */
    sp_zeros *into;
    int pending;
} sp_sample;

/* What the step hands every layer call: nothing else of the model is visible to a layer. */
typedef struct sp_step {
    spartan_context *ctx;
    spartan_policy *policy;
    size_t count;    /* images in this call (backward: the prepared batch) */
    int train;       /* training-mode layers (dropout on), monitors fed */
    int sampling;    /* the monitors' counts are read at this step's end */
    int recording;   /* statistics and timing marks on (a training step) */
    size_t step;     /* SGD updates done (dropout's counter) */
    int update;      /* the step's SGD update follows its backward pass */
    uint64_t seed;   /* the model's seed (dropout masks) */
    size_t image0;   /* the first image's index in the global batch (spartan_model_set_shard) */
    sp_marks *marks; /* the step's timing marks (used when recording) */
} sp_step;

/* GEMM layers' state (fc, conv): X (m x k) . W (k x n) per full batch. */
typedef struct sp_gemm_state {
    size_t m, n, k;
    /* the sparse form of each pass (SP_SPARSE_NONE, _ON_X, _ON_DY; docs/policy.md) */
    int form[SPARTAN_PASS_COUNT];
    spartan_gemm_pass pass[SPARTAN_PASS_COUNT]; /* the passes' descriptors (ops.h) */
    spartan_tensor *w, *b, *dw, *db, *vw, *vb;
    spartan_tensor *wt;           /* W^T, for the sparse backward-by-input on dY */
    spartan_tensor *cols, *dcols; /* conv: im2col of the input and its gradient, made when a
                                     pass first runs on the GEMM engine (none on the implicit) */
    spartan_sparse *scols;        /* conv: the patch matrix's compaction (GEMM engine, sparse) */
    int conv;                     /* a convolution: X is the input image (sx counts it) */
    int cols_fresh;               /* conv: cols holds this training step's im2col */
    spartan_sparse *sx;           /* X: monitor samples and, on the sparse path, compaction */
    spartan_sparse *sdy;          /* dY: monitor samples */
    sp_sample xs, gs;             /* the samples of X (when counted here) and of dY */
    size_t wshape[4], wrank;      /* W as a parameter (conv: kernel x kernel x in_c x out_c) */
    int bias_in_relu; /* a ReLU follows: it adds b in its own pass (spartan_bias_relu_monitor) */
    char wname[32], bname[32];
    /* this step: the GEMM seconds per pass (the policy's feedback) and the sparsity each
     * decision was taken on */
    double step_gemm[SPARTAN_PASS_COUNT];
    double step_zeros[SPARTAN_PASS_COUNT];
    /* The weight-sparse path (Dropback, fc layers; nn/wpath.c): W's non-zeros (ws; NULL where
     * the layer cannot take it), whether ws describes them (no element of W joined the tracked
     * set since the build), this step's choice per pass, the measured times (EMAs, ms; 0: not
     * measured) of the weight-sparse GEMM and of the path the policy chose, the rate of the
     * updates at which W's set grew (EMA), the last build's cost (ms) and W's density then. */
    spartan_wsparse *ws;
    size_t ws_slot; /* W among the Dropback pool's parameters */
    int ws_current, ws_use[SPARTAN_PASS_COUNT];
    int ws_warm[SPARTAN_PASS_COUNT]; /* a call since the build: the first (buffers made, pages
                                        touched) is not measured */
    double ws_ms[SPARTAN_PASS_COUNT], alt_ms[SPARTAN_PASS_COUNT];
    double ws_change, ws_build_ms, ws_density;
    size_t ws_builds, ws_calls[SPARTAN_PASS_COUNT];
} sp_gemm_state;

typedef struct sp_layer sp_layer;

/* conv: sensitivity-aware dropout of its input channels (conv.c, nn/chan.h), in its state. This
 * step's choice (made for `step` when drawn): kept of the C channels, the maps of x's kept
 * columns (xm, over C) and of W's kept rows (wm, over k k C: row t C + c kept with channel c),
 * each kept row's scale (rscale); the host arrays they were written from (kept until the next
 * step's); sums, x's column sums, read without blocking into next and taken as the
 * sensitivities (sens) once the step has ended. xc, wc, dwc, dxc: x, W, dW and dx on the kept
 * channels (as large as all of them). */
typedef struct sp_chan_state {
    float rate; /* the configuration's, made a whole number of vectors of kept channels */
    size_t C, kk, kept, step;
    int drawn, pending, have_sens;
    float *next;
    double *sens, *d;
    unsigned char *dropped;
    cl_uint *xmap, *xinv, *wmap, *winv;
    float *wscale;
    sp_row_maps xm, wm;
    spartan_tensor *sums, *xc, *wc, *dwc, *dxc, *rscale;
} sp_chan_state;

typedef struct sp_layer_ops {
    const char *name; /* "conv": descriptions, layer names, spartan_layer_kind_name */
    int gemm;         /* a GEMM layer with parameters (sp_gemm_state) */
    /* Description syntax: takes a first value (fc, conv: the output count), and its key=value
     * options (k kernel, s stride, p padding, or r for dropout's rate written "p="). */
    int takes_outputs;
    const char *keys;
    /* Dropout-like: the key 'p' is the rate (a number in [0, 1)), not a padding; p_optional:
     * descriptions write it only when it is not 0 (lstm: no dropout by default). */
    int p_is_rate, p_optional;
    /* A ReLU-masked input stays masked through this kind (pooling, dropout, flatten). */
    int keeps_mask;
    /* Fills unset options of a description with the kind's defaults (NULL: none). */
    void (*defaults)(spartan_layer_spec *spec);
    /* From L->spec and the input shape L->in_*: the output shape L->out_*, or INVALID_ARGUMENT
     * naming what does not fit. */
    spartan_status (*shape)(spartan_context *ctx, sp_layer *L);
    /* The layer's buffers for batches of cfg->batch (GEMM layers: its parameters, initialised
     * from cfg->seed). */
    spartan_status (*prepare)(sp_layer *L, spartan_context *ctx, const spartan_train_config *cfg);
    /* x: the input (s->count images); *y: the output. */
    spartan_status (*forward)(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                              const spartan_tensor **y);
    /* dy: gradient of the output (full batch); *dx: of the input (NULL when not needed). */
    spartan_status (*backward)(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                               const spartan_tensor *dy, const spartan_tensor **dx);
    /* The layer's parameters in order into out (NULL: only counted), at most SP_LAYER_PARAMS;
     * returns how many (NULL function: none). Valid after prepare. */
    size_t (*params)(const sp_layer *L, spartan_param *out);
    /* The SGD update of its parameters (NULL: spartan_sgd_step on each). */
    spartan_status (*update)(sp_layer *L, const sp_step *s, const spartan_train_config *cfg);
    /* At the step's end, after its one blocking read: the samples taken this step (NULL: none). */
    void (*collect)(sp_layer *L);
    /* Frees what prepare made (NULL pointers left behind). */
    void (*release)(sp_layer *L);
} sp_layer_ops;

#define SP_LAYER_PARAMS 4

struct sp_layer {
    const sp_layer_ops *ops;
    spartan_layer_spec spec;
    size_t index;
    char name[24];
    size_t in_h, in_w, in_c, out_h, out_w, out_c; /* per image */
    size_t batch;                                 /* prepared batch */
    int need_dx;      /* a trainable layer comes before: compute the input gradient */
    int input_masked; /* the input comes from a ReLU (through pool, dropout, flatten) */
    /* The layer whose monitored output is this layer's input (through flattens), or NULL: an
     * fc layer takes its input's sparsity from there instead of counting it again. */
    const sp_layer *x_source;
    /* relu: the GEMM layer before it, whose bias it adds as it reads (NULL: none). */
    const sp_layer *bias_from;
    /* The layer right after a relu does the relu's work in its own passes (relu_before points
     * it at that relu): a maxpool masks dy in its backward (spartan_maxpool_relu_backward) and,
     * on the steps that sample no monitor, applies the ReLU and its bias as its forward reads
     * (spartan_relu_maxpool_forward; sp_relu_fused); a conv keeps its input gradient only
     * where its input, the relu's output, is positive (spartan_conv2d_backward_input_relu). That
     * relu has backward_by_next set: it passes dy on as its input gradient and keeps no dx
     * buffer; and forward_by_next before a maxpool: it passes its input on as its output on
     * those steps. */
    const sp_layer *relu_before;
    int backward_by_next, forward_by_next;
    /* conv -> relu -> conv: on the same steps the first convolution's store adds its bias and
     * applies the ReLU (spartan_conv2d_forward_relu; relu_in_store), and the relu, with
     * forward_by_prev, passes its input on as its output. */
    int relu_in_store, forward_by_prev;
    sp_gemm_state g; /* GEMM layers */
    void *state;     /* other kinds' own state (lstm.c) */

    /* Dropout (dropout.c): the rate and kind it runs with (the configuration's, else its own);
     * kind row: the plan of its patterns, this step's pattern's maps (drawn for rows_step when
     * rows_drawn), and compact: it sits between fc -> relu and fc, whose GEMMs run on the kept
     * neurons alone (it passes its input on: the scale is in the first fc's kept weights). */
    float rate;
    spartan_dropout_kind kind;
    size_t rank; /* among the model's dropout layers: its patterns' stream (not the index, so
                    layers that drop nothing do not change them) */
    sp_ard_plan *ard;
    sp_row_maps rows;
    size_t rows_step;
    int rows_drawn, compact;
    /* fc layers: the compact row dropout before (over the inputs) and after (over the outputs,
     * through the ReLU); this training step's kept inputs and outputs (0 while the GEMMs are
     * whole), and the kept weights and bias with their gradients (scratch as large as the plans
     * keep at most, sp_gemm_rows_prepare). */
    sp_layer *drop_in, *drop_out;
    size_t kc, nc;
    size_t kc_mean, nc_mean; /* the kept counts on average: the shape the policy models */
    /* fc layers: the tile dropout before, whose pattern drops tiles of W (sp_gemm_tiles); a
     * dropout layer of kind tile: that fc layer, and this step's pattern (drawn for rows_step
     * when rows_drawn) */
    sp_layer *drop_tiles;
    sp_row_pattern tiles;
    spartan_tensor *wc, *bc, *dwc, *dbc;

    spartan_tensor *y;   /* output (NULL for flatten: it passes its input on) */
    spartan_tensor *dx;  /* gradient of the input (when need_dx) */
    spartan_tensor *arg; /* maxpool: arg-max inside the window */
    spartan_sparse *sy;  /* relu, dropout, pools: monitor of the output */
    sp_sample ys;        /* its sample */

    /* Statistics. */
    double sec[SPARTAN_PASS_COUNT];
    size_t calls[SPARTAN_PASS_COUNT], sparse_calls[SPARTAN_PASS_COUNT];
    spartan_path path[SPARTAN_PASS_COUNT];
    const char *reason[SPARTAN_PASS_COUNT];
    const char *engine[SPARTAN_PASS_COUNT]; /* GEMM layers: the engine of the last run */
    sp_zeros xz;       /* the GEMM's input X, or the output of relu, pool, dropout */
    sp_zeros gz;       /* the gradient dY reaching a GEMM layer */
    double zeros_prev; /* xz.last at the previous sampled step (the sampling rule) */
    size_t samples;    /* samples of xz since prepare */
    int sampled;       /* xz got a sample at the end of this step */
};

/* The table of each kind (layers/<name>.c), and all of them by spartan_layer_kind. */
#define SP_X_(ENUM, name) extern const sp_layer_ops sp_layer_##name;
SP_LAYER_KINDS(SP_X_)
#undef SP_X_
extern const sp_layer_ops *const sp_layer_kinds[SPARTAN_LAYER_KIND_COUNT];

/* ---- Helpers shared by the kinds (common.c) ------------------------------------------------ */

/* Whether a ReLU's forward is done by its neighbour this step (the max-pool after it, or the
 * convolution before it): always, but when the ReLU's monitor is sampled (the count reads the
 * ReLU's output). */
static inline int sp_relu_fused(const sp_step *s) {
    return !(s->train && s->sampling);
}

/* base seen as count images of h x w x c, or as a rows x cols matrix (a prefix of its buffer). */
spartan_status sp_view4(spartan_tensor *v, const spartan_tensor *base, size_t count, size_t h,
                        size_t w, size_t c);
spartan_status sp_view2(spartan_tensor *v, const spartan_tensor *base, size_t rows, size_t cols);
/* A tensor of b images of h x w x c. */
spartan_status sp_tensor4(spartan_context *ctx, size_t b, size_t h, size_t w, size_t c,
                          spartan_tensor **out);
/* Output size of a window along one axis, 0 when it does not fit. */
size_t sp_window_out(size_t in, size_t k, size_t stride, size_t pad);

/* A sample of s into z: its host buffer is made by sp_sample_init (at prepare). */
spartan_status sp_sample_init(spartan_context *ctx, sp_sample *smp, spartan_sparse *s,
                              sp_zeros *into);
void sp_sample_free(sp_sample *smp);
/* After a monitor or compaction filled smp->s: reads its counts without blocking. */
spartan_status sp_sample_take(sp_sample *smp);
/* At the step's end (the queue has passed the read): the fraction of zeros into smp->into;
 * returns 1 when there was a sample. */
int sp_sample_collect(sp_sample *smp);
void sp_zeros_record(sp_zeros *z, double v);

/* The non-GEMM kinds' shared parts: an output buffer (and a monitor of it) like the input's
 * shape, a timing mark charged to the pass, the output sample taken when sampling. */
spartan_status sp_layer_prepare_output(sp_layer *L, spartan_context *ctx, size_t batch,
                                       int monitored);
spartan_status sp_layer_done(sp_layer *L, const sp_step *s, spartan_pass pass);
spartan_status sp_layer_sample_output(sp_layer *L, const sp_step *s, const spartan_tensor *y);
void sp_layer_collect_output(sp_layer *L);
void sp_layer_release_output(sp_layer *L);
/* x and y of a window layer (the images of this call) and dy of the full batch. */
spartan_window sp_layer_window(const sp_layer *L, size_t count, size_t pad);

/* SGD with the configuration's rate, momentum and decay on each of L's parameters (what a step
 * does for a layer without its own update). */
spartan_status sp_layer_sgd(const sp_layer *L, const sp_step *s, const spartan_train_config *cfg);

/* Dropout of kind row (dropout.c): fills D's maps with this step's pattern, once per step. */
spartan_status sp_dropout_rows(sp_layer *D, const sp_step *s);
/* Dropout of kind tile (dropout.c): this step's pattern of D's tiles, drawn once per step. */
const sp_row_pattern *sp_dropout_tiles(sp_layer *D, const sp_step *s);
/* The plan of row patterns over n neurons (or rows of tiles) at L->rate and, maps, their maps
 * (L->ard, L->rows: dropout layers and the LSTM's hidden units), and their release. */
spartan_status sp_dropout_plan(sp_layer *L, spartan_context *ctx, size_t n, int maps);
void sp_dropout_plan_release(sp_layer *L);

/* ---- GEMM layers (gemm.c): fc and conv differ only in how X is made from the input ---------- */

/* Buffers, parameters and pass descriptors of a GEMM of rows x k input (L->g.form set). */
spartan_status sp_gemm_prepare(sp_layer *L, spartan_context *ctx, const spartan_train_config *cfg,
                               size_t rows, size_t k);
/* The policy's path for a pass (recorded in the layer's statistics when recording), and a mark
 * closing a segment of the pass: its GEMM (gemm 1: the time fed to the policy) or the rest. */
spartan_path sp_gemm_choose(sp_layer *L, const sp_step *s, spartan_pass pass, size_t rows);
spartan_status sp_gemm_mark(sp_layer *L, const sp_step *s, spartan_pass pass, int gemm);
/* Y = X . W + b into L->y (rows rows), X given as a matrix. */
spartan_status sp_gemm_forward_x(sp_layer *L, const sp_step *s, const spartan_tensor *a,
                                 size_t rows);
/* Over the full batch: db, dW (bwd_weight), then, when L->need_dx, dX as a matrix into da
 * (bwd_input); a: X as a matrix, dy: the output's gradient. */
spartan_status sp_gemm_backward_x(sp_layer *L, const sp_step *s, const spartan_tensor *a,
                                  const spartan_tensor *dy, spartan_tensor *da);
void sp_gemm_collect(sp_layer *L);
/* The weight and the bias (sp_layer_ops.params). */
size_t sp_gemm_params(const sp_layer *L, spartan_param *out);
/* Row dropout next to an fc layer (L->drop_in, L->drop_out): the scratch of the kept weights,
 * as large as the dropouts' plans keep at most (after every layer's prepare: the plans are the
 * dropout layers'), and a training step's GEMMs over the kept inputs and outputs alone: forward
 * into L->y (count x nc), backward (the full batch) into dW and db (zeros at the dropped neurons)
 * and, when L->need_dx, L->dx (rows x kc). Each pass asks the policy for its path, like the
 * whole GEMM's: the sparse forms skip the zeros of the kept X or dY. */
spartan_status sp_gemm_rows_prepare(sp_layer *L, spartan_context *ctx);
/* This step's work over the kept neurons against their average (L->kc_mean x L->nc_mean, the
 * shape the policy calibrates the layer's passes at): kept inputs x outputs over the average's; 1
 * outside a step over the kept neurons. The policy learns from times scaled back to the average. */
double sp_gemm_rows_work(const sp_layer *L);
spartan_status sp_gemm_forward_rows(sp_layer *L, const sp_step *s, const spartan_tensor *x);
spartan_status sp_gemm_backward_rows(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                     const spartan_tensor *dy);
/* The update of such a step: when s->update, the backward left the gradients of the kept weights
 * and bias alone (not placed back into dW and db), and this steps W, b and their momenta from
 * them in one pass each (sp_row_sgd). */
spartan_status sp_gemm_rows_update(sp_layer *L, const sp_step *s, const spartan_train_config *cfg);
/* Tile dropout before an fc layer (L->drop_tiles): a training step's GEMMs skipping the dropped
 * tiles of W, the kept ones scaled by 1 / (1 - p): forward into L->y, backward into dW (zeros in
 * the dropped tiles unless the update follows), db and, when L->need_dx, L->dx. The timings go to
 * the layer. */
spartan_status sp_gemm_forward_tiles(sp_layer *L, const sp_step *s, const spartan_tensor *x);
spartan_status sp_gemm_backward_tiles(sp_layer *L, const sp_step *s, const spartan_tensor *x,
                                      const spartan_tensor *dy);
/* The update of such a step: when s->update, the backward left dW's dropped tiles unwritten, and
 * this steps W from its kept tiles' gradient, 0 at the dropped ones (sp_gemm_tiles_sgd). */
spartan_status sp_gemm_tiles_update(sp_layer *L, const sp_step *s, const spartan_train_config *cfg);
void sp_gemm_release(sp_layer *L);
/* The stream and scale of the weights' initial values (sp_rng_w0): W[i] = sp_rng_w0(key, i,
 * scale) after prepare, regenerable on the device (Dropback). */
uint64_t sp_gemm_w0_key(const sp_layer *L, uint64_t seed);
float sp_gemm_w0_scale(const sp_layer *L);
/* The GEMM shape of a pass as the policy is asked (spartan_policy_query) for `rows` rows of X:
 * fwd rows x n x k, bwd_input rows x k x n, bwd_weight k x n x rows. */
void sp_gemm_pass_shape(const sp_layer *L, spartan_pass pass, size_t rows, size_t *m, size_t *n,
                        size_t *k);

#endif /* SP_NN_LAYER_H */
