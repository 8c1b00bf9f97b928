/* The private side of nn/: layers and the model (include/spartan/nn.h). */
#ifndef SP_NN_INTERNAL_H
#define SP_NN_INTERNAL_H

#include "spartan/nn.h"
#include "policy/policy_internal.h"
#include "spartan/ops.h"
#include "tensor/tensor_internal.h"

typedef enum sp_kind { SP_FC, SP_CONV, SP_RELU, SP_MAXPOOL, SP_DROPOUT, SP_FLATTEN } sp_kind;

/* Monitored fractions of zeros of one tensor: the first sample since prepare, the latest, and the
 * sum and count since the last statistics reset (first and last < 0: never sampled). */
typedef struct sp_zeros {
    double first, last, sum;
    size_t n;
} sp_zeros;

typedef struct sp_layer {
    sp_kind kind;
    size_t index;
    char name[24], wname[32], bname[32];
    size_t in_h, in_w, in_c, out_h, out_w, out_c; /* per image */
    size_t kernel, stride, pad;                   /* conv, maxpool */
    float p;                                      /* dropout */
    int need_dx;      /* a trainable layer comes before: compute the input gradient */
    int input_masked; /* the input comes from a ReLU (through pool, dropout, flatten) */
    /* GEMM layers: the sparse form of each pass (SP_SPARSE_NONE, _ON_X, _ON_DY; set by
     * prepare, docs/policy.md): which operand's zeros it skips. */
    int form[SPARTAN_PASS_COUNT];

    /* GEMM layers: X (m x k) . W (k x n) per full batch. */
    size_t m, n, k;
    spartan_tensor *w, *b, *dw, *db, *vw, *vb;
    spartan_tensor *wt;           /* W^T, for the sparse backward-by-input on dY */
    spartan_tensor *cols, *dcols; /* conv: im2col of the input and its gradient */
    spartan_sparse *sx;           /* X: monitor samples and, on the sparse path, compaction */
    spartan_sparse *sdy;          /* dY: monitor samples */

    spartan_tensor *y;   /* output (NULL for flatten: it passes its input on) */
    spartan_tensor *dx;  /* gradient of the input (when need_dx) */
    spartan_tensor *arg; /* maxpool: arg-max inside the window */
    spartan_sparse *sy;  /* relu, dropout, maxpool: monitor of the output */

    /* Statistics. */
    double sec[SPARTAN_PASS_COUNT];
    double step_gemm[SPARTAN_PASS_COUNT];  /* this step's GEMM seconds, for the policy */
    double step_zeros[SPARTAN_PASS_COUNT]; /* the sparsity each pass was decided on */
    size_t calls[SPARTAN_PASS_COUNT], sparse_calls[SPARTAN_PASS_COUNT];
    spartan_path path[SPARTAN_PASS_COUNT];
    const char *reason[SPARTAN_PASS_COUNT];
    sp_zeros xz;       /* the GEMM's input X, or the output of relu, pool, dropout */
    sp_zeros gz;       /* the gradient dY reaching a GEMM layer */
    double zeros_prev; /* xz.last at the previous sampled step (the sampling rule) */
    size_t samples;    /* samples of xz since prepare */
} sp_layer;

/* A timing mark: the time from the previous mark to this one is charged to (layer, pass). */
typedef struct sp_mark {
    spartan_mark mark;
    sp_layer *layer; /* NULL: charged to nobody (the step's start, the loss) */
    int pass;
    int gemm; /* the segment is the pass's GEMM (with its compaction): fed to the policy */
} sp_mark;

struct spartan_model {
    spartan_context *ctx;
    size_t in_h, in_w, in_c, classes;
    sp_layer *layers;
    size_t nlayers, cap;
    spartan_train_config cfg;
    spartan_policy *policy;
    int prepared;
    spartan_tensor *input, *labels, *dlogits, *stats;
    spartan_tensor input_view;   /* the images of the current step (the first layer's input) */
    const spartan_tensor **acts; /* nlayers + 1: each layer's input, then the logits */
    float *stats_host;
    size_t step;                       /* SGD updates done */
    int sampling;                      /* this step samples the monitors */
    int recording;                     /* a training step: statistics and timing marks on */
    size_t sample_period, next_sample; /* the auto sampling rule (sample_every 0) */
    sp_mark *marks;
    size_t nmarks, mark_cap;
    spartan_param *params;
    size_t nparams;
};

static inline int sp_layer_is_gemm(const sp_layer *L) {
    return L->kind == SP_FC || L->kind == SP_CONV;
}

/* The GEMM shape of a pass as the policy is asked (spartan_policy_query) for `rows` rows of X:
 * fwd rows x n x k, bwd_input rows x k x n, bwd_weight k x n x rows. */
void sp_layer_pass_shape(const sp_layer *L, spartan_pass pass, size_t rows, size_t *m, size_t *n,
                         size_t *k);

/* layer.c: buffers, forward and backward of one layer over `count` images of the batch. */
spartan_status sp_layer_alloc(spartan_model *m, sp_layer *L);
void sp_layer_free(sp_layer *L);
/* x: the layer's input (count images); *y: its output. train: dropout on, monitors fed. */
spartan_status sp_layer_forward(spartan_model *m, sp_layer *L, const spartan_tensor *x,
                                size_t count, int train, const spartan_tensor **y);
/* dy: gradient of the output; *dx: gradient of the input (NULL when not needed). */
spartan_status sp_layer_backward(spartan_model *m, sp_layer *L, const spartan_tensor *x,
                                 const spartan_tensor *dy, const spartan_tensor **dx);

/* step.c: records a timing mark that closes the segment charged to (layer, pass); gemm: the
 * segment is the pass's GEMM, whose time the policy learns from. */
spartan_status sp_model_mark(spartan_model *m, sp_layer *layer, int pass, int gemm);
/* step.c: releases the marks of an unfinished step (uncharged). */
void sp_model_release_marks(spartan_model *m);

#endif /* SP_NN_INTERNAL_H */
