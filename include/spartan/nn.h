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
 * (conv6 5x5 pad 2, pool, conv16 5x5, pool, fc120, fc84, fc10) and "vgg-small" (conv32, conv32,
 * pool, conv64, conv64, pool, fc256, fc10; 3x3 convolutions with padding 1, 2x2 pools). ReLU
 * after every convolution and hidden fully connected layer. */
SPARTAN_API spartan_status spartan_model_create_preset(spartan_context *ctx, const char *name,
                                                       spartan_model **out);
/* A model from a description (docs/models.md): one layer a line, "input HxWxC" first, the last
 * line "fc N" with N the class count; '#' starts a comment. Kinds: conv N k= [s=1] [p=0], relu,
 * maxpool k= [s=k], dropout [p=0.5], flatten, fc N. The whole text is checked before a model is
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
SPARTAN_API spartan_status spartan_model_add_fc(spartan_model *m, size_t out_features);
SPARTAN_API spartan_status spartan_model_add_conv(spartan_model *m, size_t out_channels,
                                                  size_t kernel, size_t stride, size_t pad);
SPARTAN_API spartan_status spartan_model_add_relu(spartan_model *m);
SPARTAN_API spartan_status spartan_model_add_maxpool(spartan_model *m, size_t kernel,
                                                     size_t stride);
SPARTAN_API spartan_status spartan_model_add_dropout(spartan_model *m, float p);
SPARTAN_API spartan_status spartan_model_add_flatten(spartan_model *m);

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
} spartan_train_config;

SPARTAN_API spartan_train_config spartan_train_config_default(void);

/* Checks the layer shapes, initialises the parameters (He/Kaiming normal for weights, zero
 * biases) from cfg->seed, makes the policy and allocates every buffer for cfg->batch images. A
 * second call re-initialises everything. */
SPARTAN_API spartan_status spartan_model_prepare(spartan_model *m, const spartan_train_config *cfg);
/* Changes the learning rate for the following steps. */
SPARTAN_API void spartan_model_set_lr(spartan_model *m, float lr);

typedef struct spartan_step_result {
    double loss;    /* mean cross-entropy over the images */
    size_t correct; /* images whose arg-max is the label */
    size_t count;   /* images */
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

/* ---- Inspection ------------------------------------------------------------------------------ */

SPARTAN_API size_t spartan_model_layer_count(const spartan_model *m);
/* The input shape per image and the class count the model was created for (any pointer may be
 * NULL). */
SPARTAN_API void spartan_model_shape(const spartan_model *m, size_t *in_h, size_t *in_w,
                                     size_t *in_c, size_t *classes);
SPARTAN_API size_t spartan_model_steps(const spartan_model *m);

typedef struct spartan_layer_info {
    const char *name;           /* "conv1", "relu1", "fc2", ... */
    const char *kind;           /* "fc", "conv", "relu", "maxpool", "dropout", "flatten" */
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
    int has_input_grad; /* computes dX (not the first layer) */
    int input_masked;   /* its input comes from a ReLU: sparse bwd_input allowed */
    /* Monitored fractions of zeros (< 0: never sampled): of the layer's output (ReLU, dropout,
     * pool) or of the GEMM's input X; of the gradient dY arriving at a GEMM layer. first_*:
     * the first sample since prepare; *_last: the latest sample; the others: the mean of the
     * samples since the last reset. */
    double zeros_first, zeros, zeros_last;
    double grad_zeros_first, grad_zeros, grad_zeros_last;
    size_t samples;
} spartan_layer_info;

SPARTAN_API spartan_status spartan_model_layer_info(const spartan_model *m, size_t i,
                                                    spartan_layer_info *out);
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
} spartan_param;
SPARTAN_API size_t spartan_model_param_count(const spartan_model *m);
SPARTAN_API spartan_status spartan_model_param(const spartan_model *m, size_t i,
                                               spartan_param *out);

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_NN_H */
