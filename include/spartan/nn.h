/* Layers, sequential models and training on the device.
 *
 *     spartan_model *m;
 *     spartan_model_create_preset(ctx, "vgg-small", &m);   // or create + spartan_model_add_*
 *     spartan_train_config cfg = spartan_train_config_default();
 *     cfg.policy = SPARTAN_POLICY_SPARSE;
 *     spartan_model_prepare(m, &cfg);                      // parameters from cfg.seed, buffers
 *     spartan_step_result r;
 *     spartan_model_train_step(m, images, labels, cfg.batch, &r); // forward, loss, backward, SGD
 *     spartan_model_evaluate(m, images, labels, n, &r);           // forward only, n <= batch
 *     spartan_model_destroy(m);                            // before its context
 *
 * Images are NHWC floats (batch x height x width x channels), labels are class indices stored
 * as floats. Every GEMM of a fully connected or convolution layer (convolutions are im2col +
 * GEMM) asks the model's policy (policy.h) for its path in each pass. After prepare, a step
 * allocates nothing: every activation and gradient buffer is made once for the batch size.
 *
 * Lifetimes: a model keeps a pointer to its context and must be destroyed before it. What it
 * hands out stays the model's: the parameter tensors (spartan_model_param) and the policy
 * (spartan_model_policy) until the next spartan_model_prepare or spartan_model_destroy; a
 * layer's name (spartan_layer_info) until a layer is added or the model is destroyed (kind and
 * reason are static text). images and labels are not kept: a call that returns OK has read
 * them (after a failure, spartan_context_finish before reusing them).
 * Threads: a model is used under its context's rule (device.h): one thread at a time for the
 * context and everything made from it. */
#ifndef SPARTAN_NN_H
#define SPARTAN_NN_H

#include <stddef.h>
#include <stdint.h>

#include "spartan/policy.h"
#include "spartan/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spartan_model spartan_model;

/* An empty model for inputs of in_h x in_w x in_c and `classes` outputs (the last layer must
 * produce exactly that many features per image). */
SPARTAN_API spartan_status spartan_model_create(spartan_context *ctx, size_t in_h, size_t in_w,
                                                size_t in_c, size_t classes, spartan_model **out);
/* Presets for 28 x 28 x 1 inputs and 10 classes: "mlp" (784-512-512-10), "lenet5"
 * (conv6 5x5 pad 2, pool, conv16 5x5, pool, fc120, fc84, fc10), "vgg-small" (conv32, conv32,
 * pool, conv64, conv64, pool, fc256, fc10; 3x3 convolutions with padding 1, 2x2 pools) and
 * "mlp-dropout" (784-1024-1024-10, dropout p = 0.5 after each hidden ReLU) and "lstm" (the
 * image's 28 rows as time steps into an LSTM of 128, then fc 10). ReLU after every convolution
 * and hidden fully connected layer. */
SPARTAN_API spartan_status spartan_model_create_preset(spartan_context *ctx, const char *name,
                                                       spartan_model **out);
/* A model from a description (docs/models.md): one layer a line, "input HxWxC" first, the last
 * line "fc N" with N the class count; '#' starts a comment. Kinds: conv N k= [s=1] [p=0], relu,
 * maxpool k= [s=k], avgpool k= [s=k] [p=0], globalavgpool, dropout [p=0.5], flatten, lstm N,
 * fc N (spartan_layer_kind_name gives the words). The whole text is checked before a model is
 * made; a malformed line gives INVALID_ARGUMENT with its line number (and the file's name) in
 * spartan_last_error(ctx), and *out stays NULL. Files are read bounded (at most 1 MiB, regular
 * files only). */
SPARTAN_API spartan_status spartan_model_create_from_text(spartan_context *ctx, const char *text,
                                                          spartan_model **out);
SPARTAN_API spartan_status spartan_model_create_from_file(spartan_context *ctx, const char *path,
                                                          spartan_model **out);
/* The model as a description that spartan_model_create_from_text rebuilds (the same layers and
 * parameter shapes), like snprintf: at most size bytes with the NUL are written, and the length
 * of the whole text is returned (a larger buffer is needed when it is >= size). */
SPARTAN_API size_t spartan_model_describe(const spartan_model *m, char *buf, size_t size);
/* The preset names, NULL-terminated. */
SPARTAN_API const char *const *spartan_model_presets(void);
SPARTAN_API void spartan_model_destroy(spartan_model *m);

/* Appending layers, before prepare only: after it, INVALID_ARGUMENT and the model is unchanged.
 * A fully connected layer flattens its input by itself. */
/* The layer kinds. Each appends to the model's end, taking the previous layer's output shape
 * (or the model's input) as its input. */
typedef enum spartan_layer_kind {
    SPARTAN_LAYER_FC = 0,            /* fully connected: outputs features */
    SPARTAN_LAYER_CONV = 1,          /* convolution: outputs channels, kernel, stride, pad */
    SPARTAN_LAYER_RELU = 2,          /* ReLU, with the fused sparsity monitor */
    SPARTAN_LAYER_MAXPOOL = 3,       /* max-pooling: kernel, stride (no padding) */
    SPARTAN_LAYER_DROPOUT = 4,       /* dropout: rate (training steps only) */
    SPARTAN_LAYER_FLATTEN = 5,       /* h x w x c -> 1 x 1 x hwc (no copy) */
    SPARTAN_LAYER_AVGPOOL = 6,       /* average pooling: kernel, stride, pad (counted) */
    SPARTAN_LAYER_GLOBALAVGPOOL = 7, /* each channel's mean over the image: -> 1 x 1 x c */
    /* LSTM over the input's rows as time steps (h steps of w x c features): -> 1 x 1 x hidden,
     * the last step's hidden state */
    SPARTAN_LAYER_LSTM = 8,
    SPARTAN_LAYER_KIND_COUNT = 9
} spartan_layer_kind;

/* A layer to add; the fields a kind does not take are ignored. */
typedef struct spartan_layer_spec {
    spartan_layer_kind kind;
    size_t outputs;             /* fc: features; conv: channels */
    size_t kernel, stride, pad; /* conv, maxpool, avgpool: square window, same along both axes */
    /* dropout: the probability of zeroing, in [0, 1); lstm: its hidden units' dropout (0: none) */
    float rate;
} spartan_layer_spec;

/* Appends one layer; INVALID_ARGUMENT (naming what does not fit) when the spec does not fit the
 * shape it receives, or after spartan_model_prepare. The spartan_model_add_* calls below are
 * this with the kind's fields. */
SPARTAN_API spartan_status spartan_model_add(spartan_model *m, const spartan_layer_spec *spec);
/* "fc", "conv", "relu", "maxpool", "dropout", "flatten", "avgpool", "globalavgpool", "lstm" (the
 * words of model descriptions); NULL for a value outside the enum. */
SPARTAN_API const char *spartan_layer_kind_name(spartan_layer_kind kind);

SPARTAN_API spartan_status spartan_model_add_fc(spartan_model *m, size_t out_features);
SPARTAN_API spartan_status spartan_model_add_conv(spartan_model *m, size_t out_channels,
                                                  size_t kernel, size_t stride, size_t pad);
SPARTAN_API spartan_status spartan_model_add_relu(spartan_model *m);
SPARTAN_API spartan_status spartan_model_add_maxpool(spartan_model *m, size_t kernel,
                                                     size_t stride);
SPARTAN_API spartan_status spartan_model_add_dropout(spartan_model *m, float p);
SPARTAN_API spartan_status spartan_model_add_flatten(spartan_model *m);
SPARTAN_API spartan_status spartan_model_add_avgpool(spartan_model *m, size_t kernel, size_t stride,
                                                     size_t pad);
SPARTAN_API spartan_status spartan_model_add_globalavgpool(spartan_model *m);
/* An LSTM of `hidden` units (PyTorch's nn.LSTM, one layer, batch_first, its gates in the order i,
 * f, g, o) reading the input's rows as its time steps; parameters "<name>.weight_ih" (features x
 * 4 hidden: the transpose of PyTorch's weight_ih_l0), "<name>.weight_hh" (hidden x 4 hidden) and
 * "<name>.bias" (4 hidden: PyTorch's bias_ih_l0 + bias_hh_l0), initialised like PyTorch's
 * (uniform in +-1/sqrt(hidden)). Without dropout; spartan_model_add with a spec's rate (the
 * description's "lstm N p=P") or spartan_train_config.dropout drops its hidden units in training
 * steps, each for the whole sequence (from the recurrence and the output: variational dropout),
 * of the configuration's dropout kind. */
SPARTAN_API spartan_status spartan_model_add_lstm(spartan_model *m, size_t hidden);

/* How the dropout layers drop (spartan_train_config.dropout_kind). */
typedef enum spartan_dropout_kind {
    /* Each element by its own coin (Bernoulli): a mask multiply, no work saved. */
    SPARTAN_DROPOUT_BERNOULLI = 0,
    /* Approximate Random Dropout's row patterns (Song et al.): whole neurons (the features of an
     * image, the same for every image of the step), a regular pattern drawn per step from a
     * distribution searched at prepare so that each neuron is kept with probability 1 - p and
     * the kept count spreads like Bernoulli's (docs/training.md, "Structured dropout"). Between
     * fc -> relu and fc layers the dropped neurons are not computed: both GEMMs shrink to the
     * kept ones; elsewhere the pattern is applied as a mask. Those fc layers' update steps from
     * the kept gradients in place: after spartan_model_train_step their parameters' grad tensors
     * are not written (spartan_model_gradients writes them whole, zeros at the dropped neurons).
     * It trains one sub-network per batch: it wants a smaller learning rate than Bernoulli
     * dropout, about (1 - p)^2 times as large (spartan-train's default for it). An LSTM's
     * hidden units (spartan_model_add_lstm) with an fc layer next: the LSTM runs on its kept
     * units alone, every GEMM and gate kernel smaller, and the fc on its kept inputs; it trains
     * at Bernoulli dropout's learning rate (measured: the smaller one only slowed it). */
    SPARTAN_DROPOUT_ROW = 1,
    /* Approximate Random Dropout's tile patterns, the DropConnect counterpart: a dropout layer
     * before an fc layer drops whole tiles of that layer's weight matrix (tiles of the own GEMM
     * kernel's register block, 32 x 32 on AVX-512 POCL) instead of the layer's inputs, a regular
     * pattern of tile rows per tile column drawn per step from the searched distribution (each
     * tile kept with probability 1 - p), the kept weights scaled by 1 / (1 - p); the fc's three
     * GEMMs skip the dropped tiles. Elsewhere (no fc next, or the own GEMM kernels off on the
     * device) the layer drops like BERNOULLI. */
    SPARTAN_DROPOUT_TILE = 2,
    SPARTAN_DROPOUT_KIND_COUNT = 3
} spartan_dropout_kind;

/* "bernoulli", "row", "tile"; NULL for a value outside the enum. */
SPARTAN_API const char *spartan_dropout_kind_name(spartan_dropout_kind kind);

typedef struct spartan_train_config {
    size_t batch;               /* images per step (default 64) */
    float lr;                   /* learning rate (0.05) */
    float momentum;             /* SGD momentum (0.9) */
    float weight_decay;         /* L2 weight decay (5e-4) */
    uint64_t seed;              /* parameters and dropout masks (1) */
    spartan_policy_mode policy; /* the GEMM paths (ADAPTIVE) */
    /* Steps between the monitor's sparsity samples. 0 (the default): automatic, every step while
     * some layer's input sparsity moves by more than 0.02 between samples, the period doubling up
     * to 32 steps while all hold still; N: every N-th step (1: every step). */
    unsigned sample_every;
    spartan_dropout_kind dropout_kind; /* every dropout layer's kind (BERNOULLI) */
    /* Every dropout layer's rate, and every LSTM's hidden units' dropout, in [0, 1), instead of
     * its own; < 0 (the default, -1): each layer's own. */
    float dropout;
    /* Sensitivity-aware feature-map dropout (Approximate Random Dropout's for convolutions), in
     * [0, 1); 0 (the default): none. In training steps every convolution whose input is a ReLU's
     * output (through pools) with at least 2 channels drops floor or ceil of this fraction of its
     * input channels, the less active ones (mean activation, measured by the previous step) the
     * likelier, and runs its three passes on the kept ones alone, each kept channel scaled by
     * 1 / (1 - its drop probability) (docs/training.md, "Channel dropout"). */
    float channel_dropout;
    /* Dropback (Golub et al., SysML 2019) with Procrustes' decay of the initial values
     * (docs/training.md, "Dropback"): after every SGD update, of all the fc and convolution
     * parameters (weights and biases: one budget for the whole network) only the dropback_keep
     * elements farthest from their decayed initial value, |w - d w0|, keep their values; the others
     * are set to d w0. w0 is regenerated on the device from the seed and the element's index,
     * never stored; d = dropback_decay^t at the update after t others, so the untracked elements
     * reach exact zero. The threshold is exact (a radix select on the device), ties at it all
     * kept. Momenta stay as SGD left them (the reference code's rule). dropback_keep and
     * dropback_density 0 (the defaults): off; dropback_density in (0, 1]: the fraction kept, used
     * when dropback_keep is 0. Models with an LSTM layer are refused (its initial values are not
     * regenerable). */
    float dropback_density;
    size_t dropback_keep;
    float dropback_decay; /* in (0, 1] (0.9) */
    /* Updates from one selection of the tracked set to the next (1, the default: every update,
     * the reference algorithm). In between, the tracked set is kept and the other elements are
     * reset to d w0 (no scores, no threshold), so the weight-sparse GEMMs' description of W stays
     * valid for that many updates. The first update after prepare (and so after a resume) always
     * selects. */
    size_t dropback_interval;
    /* Updates over which the budget shrinks from every parameter to its final size K (of N), on
     * the cubic schedule of gradual pruning (Zhu and Gupta 2017): k = K + (N - K) (1 - t / ramp)^3
     * at the update after t others (rounded down), then K. 0 (the default): K from the first. */
    size_t dropback_ramp;
} spartan_train_config;

SPARTAN_API spartan_train_config spartan_train_config_default(void);

/* Checks the layer shapes, initialises the parameters (He/Kaiming for weights: variance 2 / fan-in,
 * nearly normal: the regenerable generator of docs/training.md, "Dropback"; zero
 * biases) from cfg->seed, makes the policy and allocates every buffer for cfg->batch images. A
 * second call re-initialises everything. */
SPARTAN_API spartan_status spartan_model_prepare(spartan_model *m, const spartan_train_config *cfg);
/* Changes the learning rate for the following steps. */
SPARTAN_API void spartan_model_set_lr(spartan_model *m, float lr);

typedef struct spartan_step_result {
    double loss;    /* mean cross-entropy over the images */
    size_t correct; /* images whose arg-max is the label */
    size_t count;   /* images */
    /* Blocking host-device synchronisations during the call (spartan_context_syncs): a
     * training step makes one, at its end, besides those of timing marks on the host clock
     * (spartan_context_timing). */
    size_t syncs;
    /* Kernel launches during the call (spartan_context_launches). */
    size_t launches;
} spartan_step_result;

/* One SGD step on exactly `batch` images (host memory). */
SPARTAN_API spartan_status spartan_model_train_step(spartan_model *m, const float *images,
                                                    const float *labels, size_t count,
                                                    spartan_step_result *res);
/* Forward, loss and backward without the update: the gradients are left in the parameters'
 * gradient tensors (spartan_model_param). count == batch. */
SPARTAN_API spartan_status spartan_model_gradients(spartan_model *m, const float *images,
                                                   const float *labels, size_t count,
                                                   spartan_step_result *res);
/* The training-mode loss alone (dropout masks of the current step), for gradient checks. */
SPARTAN_API spartan_status spartan_model_train_loss(spartan_model *m, const float *images,
                                                    const float *labels, size_t count,
                                                    spartan_step_result *res);
/* Inference (no dropout) on count <= batch images: loss and correct predictions. */
SPARTAN_API spartan_status spartan_model_evaluate(spartan_model *m, const float *images,
                                                  const float *labels, size_t count,
                                                  spartan_step_result *res);

/* The same steps on device tensors of the model's context instead of host arrays (an embedding
 * application's own data pipeline): images hold at least count x in_h x in_w x in_c values
 * (NHWC), labels at least count (class indices as floats), read in place, not copied; they must
 * stay unchanged until the call returns. INVALID_ARGUMENT for a tensor of another context or
 * one too small. */
SPARTAN_API spartan_status spartan_model_train_step_tensors(spartan_model *m,
                                                            const spartan_tensor *images,
                                                            const spartan_tensor *labels,
                                                            size_t count, spartan_step_result *res);
SPARTAN_API spartan_status spartan_model_evaluate_tensors(spartan_model *m,
                                                          const spartan_tensor *images,
                                                          const spartan_tensor *labels,
                                                          size_t count, spartan_step_result *res);
/* Inference (no dropout) on count <= batch images without labels: logits (count x classes,
 * row-major; NULL: not wanted) and each image's predicted class (the first largest logit; NULL:
 * not wanted). One blocking read. */
SPARTAN_API spartan_status spartan_model_predict(spartan_model *m, const float *images,
                                                 size_t count, float *logits, size_t *predictions);

/* ---- Inspection ------------------------------------------------------------------------------ */

SPARTAN_API size_t spartan_model_layer_count(const spartan_model *m);
/* The input shape per image and the class count the model was created for (any pointer may be
 * NULL). */
SPARTAN_API void spartan_model_shape(const spartan_model *m, size_t *in_h, size_t *in_w,
                                     size_t *in_c, size_t *classes);
SPARTAN_API size_t spartan_model_steps(const spartan_model *m);
/* Sets the SGD updates done, as when resuming from a saved state: the step's dropout masks and
 * the policy's schedule follow it. */
SPARTAN_API void spartan_model_set_steps(spartan_model *m, size_t steps);
/* The largest rate among m's dropout layers, with `rate` (when >= 0: spartan_train_config's
 * dropout) in place of each layer's own; 0 without a dropout layer. What a row dropout's
 * learning rate follows (spartan_dropout_kind: about (1 - p)^2 times Bernoulli's). */
SPARTAN_API float spartan_model_dropout_max(const spartan_model *m, float rate);
/* The context the model was made on. */
SPARTAN_API spartan_context *spartan_model_context(const spartan_model *m);
/* Whether spartan_model_prepare has succeeded (and no layer was added since). */
SPARTAN_API int spartan_model_is_prepared(const spartan_model *m);
/* The configuration the model was prepared with (the learning rate as last set). */
SPARTAN_API spartan_status spartan_model_config(const spartan_model *m, spartan_train_config *out);
/* Layer i as one line of a model description, without the newline ("conv 32 k=3 s=1 p=1"),
 * with snprintf's contract; 0 and "" when there is no layer i. */
SPARTAN_API size_t spartan_model_describe_layer(const spartan_model *m, size_t i, char *buf,
                                                size_t size);

typedef struct spartan_layer_info {
    const char *name; /* "conv1", "relu1", "fc2", ... */
    const char *kind; /* spartan_layer_kind_name(type) */
    spartan_layer_kind type;
    spartan_layer_spec spec;    /* as added */
    size_t in_h, in_w, in_c;    /* input shape per image */
    int gemm;                   /* 1 for fc and conv: the fields below describe its GEMMs */
    size_t out_h, out_w, out_c; /* output shape per image */
    size_t m, n, k;             /* forward GEMM: X (m x k) . W (k x n) */
    size_t params;              /* parameters (weights and biases) */
    /* Per pass (GEMM layers: fwd, bwd_input, bwd_weight; others: [0] fwd, [1] bwd), since the
     * last reset: device seconds (between timing marks: see spartan_context_timing), calls, how
     * many took the sparse path, and the last path and its reason. */
    double seconds[SPARTAN_PASS_COUNT];
    size_t calls[SPARTAN_PASS_COUNT];
    size_t sparse_calls[SPARTAN_PASS_COUNT];
    spartan_path path[SPARTAN_PASS_COUNT];
    const char *reason[SPARTAN_PASS_COUNT];
    /* GEMM layers: each pass's sparse form (whose zeros its sparse path skips), and the engine
     * its last run took: "implicit" (a convolution's implicit-GEMM kernels, no patch matrix),
     * "im2col" (a convolution's patch matrix and the GEMM), "gemm" (fc); NULL before a run. */
    spartan_sparse_form form[SPARTAN_PASS_COUNT];
    const char *engine[SPARTAN_PASS_COUNT];
    int has_input_grad; /* computes dX (not the first layer) */
    int input_masked;   /* its input comes from a ReLU: sparse bwd_input allowed */
    /* Monitored fractions of zeros (< 0: never sampled): of the layer's output (ReLU, dropout,
     * pool) or of the GEMM's input X; of the gradient dY arriving at a GEMM layer. first_*:
     * the first sample since prepare; *_last: the latest sample; the others: the mean of the
     * samples since the last reset. */
    double zeros_first, zeros, zeros_last;
    double grad_zeros_first, grad_zeros, grad_zeros_last;
    size_t samples;
    /* fc layers under Dropback (docs/training.md, "The weight-sparse path"): per pass, the calls
     * since the last reset that ran the weight-sparse GEMM (W's non-zeros only), its measured
     * time and the policy's path's (running averages, ms; 0: not measured); W's density at the
     * last description of its non-zeros, and the descriptions built since prepare. */
    size_t wsparse_calls[SPARTAN_PASS_COUNT];
    double wsparse_ms[SPARTAN_PASS_COUNT], other_ms[SPARTAN_PASS_COUNT];
    double wsparse_density;
    size_t wsparse_builds;
} spartan_layer_info;

SPARTAN_API spartan_status spartan_model_layer_info(const spartan_model *m, size_t i,
                                                    spartan_layer_info *out);

/* Dropback's state after the last update (spartan_train_config.dropback_*). */
typedef struct spartan_dropback_info {
    size_t total;    /* elements of the parameters it covers */
    size_t keep;     /* the budget */
    size_t tracked;  /* elements kept by the last update, 0 before one: the budget, more when
                        scores tie at the threshold, fewer when fewer moved from d w0 */
    float threshold; /* the last update's |w - d w0| threshold */
    float decay;     /* the last update's d */
    size_t updates;  /* updates so far */
    size_t joined;   /* elements that joined the tracked set at the last update (as many left it
                        when the budget is kept exactly): the set's churn */
    uint64_t joined_total; /* the same summed over all the updates (the first one's: all) */
    size_t selections;     /* updates that selected the tracked set (dropback_interval) */
    size_t full_counts;    /* selections whose threshold was not near the one before, so that
                              they counted the first digit of every score (the slow path) */
} spartan_dropback_info;

/* INVALID_ARGUMENT when the model is not prepared or Dropback is off. Reads the device
 * (blocking). layer_tracked (optional, spartan_model_layer_count entries): each layer's tracked
 * elements (0 for layers without parameters). */
SPARTAN_API spartan_status spartan_model_dropback_info(spartan_model *m, spartan_dropback_info *out,
                                                       size_t *layer_tracked);

/* Parameter i's initial values (spartan_model_param order), regenerated on the device from the
 * seed into out (as many elements): fc and convolution weights and biases (INVALID_ARGUMENT for
 * others: an LSTM's). Bit for bit the values spartan_model_prepare set. */
SPARTAN_API spartan_status spartan_model_param_initial(spartan_model *m, size_t i,
                                                       spartan_tensor *out);
/* The model's policy (after prepare): its decisions, spartan_policy_events. */
SPARTAN_API spartan_policy *spartan_model_policy(const spartan_model *m);

/* Clears the timings, call counts and sparsity means (not the first samples). */
SPARTAN_API void spartan_model_reset_stats(spartan_model *m);

/* Parameter tensors in layer order: each GEMM layer has "<name>.weight" (k x n) then
 * "<name>.bias" (n). Valid after prepare. value, grad and the momentum buffer are owned by the
 * model. */
typedef struct spartan_param {
    const char *name;
    spartan_tensor *value, *grad, *momentum;
    /* The parameter's logical shape (its tensors are stored as rank-2 matrices): an fc weight
     * in x out, a conv weight kernel x kernel x in_c x out_c (HWIO), a bias out. */
    size_t rank, shape[4];
} spartan_param;
SPARTAN_API size_t spartan_model_param_count(const spartan_model *m);
SPARTAN_API spartan_status spartan_model_param(const spartan_model *m, size_t i,
                                               spartan_param *out);

/* ---- Gradient exchange (data parallelism) ---------------------------------------------------- */

/* Hooks between a training step's backward pass and its update, for data parallelism: each of R
 * processes trains a replica on its own share of the batch and the gradients are averaged between
 * the backward pass and the update (spartan/dist.h implements them over MPI). With hooks set,
 * spartan_model_train_step, _train_step_tensors and spartan_model_gradients
 *   - leave every parameter's whole gradient in its grad tensor (spartan_model_param; the fused
 *     updates of row and tile dropout, which read the kept rows' gradients where the backward
 *     left them, give way to the plain SGD step, the same rule on the same values);
 *   - call ready(user, i) for parameter i as soon as its layer's backward pass has been enqueued
 *     on the context's queue (layers from the last, a layer's parameters from the last): its
 *     gradient is final once the queue reaches that point, while the earlier layers' backward
 *     passes are still to run (the hook may enqueue a read of it and return);
 *   - call finish(user) once the whole backward pass is enqueued: it returns when every grad
 *     tensor holds (or the queue will have written, in order) the gradient the update is to use;
 *   - then update every parameter (SGD) as without hooks.
 * A hook that fails writes why (a NUL-terminated message, at most why_size bytes) and returns a
 * status: the step fails with it, "gradient exchange: <why>" in spartan_last_error. cancel (may be
 * NULL) is called when a step fails after it started (in a layer, or in a hook), so that the
 * exchange can drop what it had begun. The hooks run on the calling thread, under the context's
 * threading rule. */
typedef struct spartan_grad_hooks {
    spartan_status (*ready)(void *user, size_t param, char *why, size_t why_size);
    spartan_status (*finish)(void *user, char *why, size_t why_size);
    void (*cancel)(void *user);
    void *user;
} spartan_grad_hooks;

/* Where this model's images sit in a global batch of which it trains a share (data parallelism:
 * rank r of R with batch B holds images r.B ..): first_image, 0 by default. The masks drawn per
 * image (Bernoulli dropout, an LSTM's hidden-unit dropout) are then those of these images in the
 * global batch, so that R replicas draw the masks one model with batch R.B would, not R copies of
 * the same B. Row, tile and channel dropout draw per step, for every image alike: unchanged. */
SPARTAN_API void spartan_model_set_shard(spartan_model *m, size_t first_image);

/* Sets the model's gradient hooks (copied; user must stay valid while they are set), or removes
 * them (NULL, or ready NULL). INVALID_ARGUMENT when ready is set without finish. */
SPARTAN_API spartan_status spartan_model_set_grad_hooks(spartan_model *m,
                                                        const spartan_grad_hooks *hooks);

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_NN_H */
