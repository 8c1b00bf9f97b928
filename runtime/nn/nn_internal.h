/* The private side of nn/: the model (include/spartan/nn.h). A layer is its kind's table and
 * state (layers/layer.h); the model holds them in order, and the step (step.c) runs them. */
#ifndef SP_NN_INTERNAL_H
#define SP_NN_INTERNAL_H

#include "nn/dropback.h"
#include "nn/layers/layer.h"
#include "nn/marks.h"
#include "nn/wpath.h"
#include "spartan/nn.h"

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
    size_t sample_period, next_sample; /* the auto sampling rule (sample_every 0) */
    sp_marks marks;
    spartan_param *params;
    size_t nparams;
    sp_dropback *dropback;    /* NULL: off */
    int wpath_forced;         /* SPARTAN_WSPARSE: 1 on, 0 off, -1 the measured choice (wpath.c) */
    spartan_grad_hooks hooks; /* the gradient exchange (ready NULL: none) */
    size_t image0;            /* the first image's index in the global batch (set_shard) */
};

#endif /* SP_NN_INTERNAL_H */
