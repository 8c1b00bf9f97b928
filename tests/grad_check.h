/* The finite-difference gradient check (test_nn.c's header comment gives its tolerances). */
#ifndef SPARTAN_TEST_GRAD_CHECK_H
#define SPARTAN_TEST_GRAD_CHECK_H

#include <stddef.h>

#include "spartan/spartan.h"

/* Prepares m with cfg, draws a batch of cfg->batch random ReLU-like images of px values (labels
 * below classes), takes the training-mode gradients of the current step and checks every
 * parameter tensor's at up to `per` entries against central differences of the training loss;
 * k_chain: the sum of the layers' reduction lengths (the rounding bound). Fails the test. */
void th_gradient_check(spartan_context *ctx, spartan_model *m, const spartan_train_config *cfg,
                       size_t k_chain, size_t per, size_t px, size_t classes);

/* a and b compute one function two ways (b applying as masks the dropout patterns a computes
 * around): prepares a with cfg and b with cfg_b (NULL: cfg; the paths may differ, say a's sparse
 * and b's dense), gives b a's parameters, and checks over five steps of random
 * batches of px values (labels below classes) the same training losses and gradients, then the
 * same losses over four SGD steps and in evaluation, within the rounding bound of k_chain. */
void th_same_function(spartan_context *ctx, spartan_model *a, spartan_model *b,
                      const spartan_train_config *cfg, const spartan_train_config *cfg_b,
                      size_t k_chain, size_t px, size_t classes);

#endif /* SPARTAN_TEST_GRAD_CHECK_H */
