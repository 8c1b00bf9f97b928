/* Dropback (Golub, Lemieux, Lis, SysML 2019) with the initial-value decay of Procrustes (Yang et
 * al. 2020): weight-sparse training on a budget of k tracked parameters for the whole network.
 * After every SGD update each element of the fc and convolution parameters gets the score
 * |w - d w0|, w0 its initial value regenerated from the seed (sp_rng_w0; 0 for biases), d =
 * decay^t at the update after t others; the k largest scores keep their values and the rest are
 * set to d w0. The threshold is the k-th largest score, found exactly on the device by a radix
 * select over the scores' bits (ops/dropback.c), so nothing is read back and nothing sorted.
 * Momenta are left as SGD made them, as in the reference code (compstruct/procrustes-ml-models,
 * utils/dropback.py: only the values are reset): an untracked element's momentum keeps
 * integrating its gradient and can carry it back over the threshold. */
#ifndef SP_NN_DROPBACK_H
#define SP_NN_DROPBACK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/ops_internal.h"
#include "spartan/nn.h"

/* One parameter of the pool: its tensor, its place among the scores, its initial values' stream
 * (scale 0: zeros), the layer it belongs to. */
typedef struct sp_dropback_param {
    spartan_tensor *w;
    size_t off, layer;
    uint64_t key;
    float scale;
} sp_dropback_param;

/* The pool: its parameters (dev.params of them, dev.total elements, keeping dev.init[1]), the
 * decay, and the last update's d and the updates since prepare (the counts on the device are
 * meaningful once there is one). */
typedef struct sp_dropback {
    sp_dropback_dev dev;
    sp_dropback_param *p;
    float decay, last_d;
    size_t updates, interval, selections, ramp;
    /* per parameter, the elements that joined the tracked set at the last update: read without
     * blocking after each update, valid once the step's blocking read is done */
    unsigned *joined;
} sp_dropback;

/* The pool of m's fc and convolution parameters and its buffers, after the layers' prepare;
 * *out NULL when m->cfg turns Dropback off. INVALID_ARGUMENT for a model with an LSTM, or a
 * budget of no element or more than there are. */
spartan_status sp_dropback_make(spartan_model *m, sp_dropback **out);
void sp_dropback_free(spartan_context *ctx, sp_dropback *db);
/* d after `step` updates: decay^step, taken as 0 once below 2^-64. Beyond it the reset values d w0
 * would soon be subnormal numbers, which x86 cores compute many times more slowly, in the GEMMs
 * that read the weights too (|w0| is at least the generator's scale, above 2^-40 for any fan-in
 * below 2^40, so d w0 stays normal while d >= 2^-64). */
static inline float sp_dropback_decay(float decay, size_t step) {
    const double d = pow((double)decay, (double)step);
    return d < 0x1p-64 ? 0.0f : (float)d;
}
/* The budget of the update after `step` others (dropback_ramp's schedule, else the final one). */
size_t sp_dropback_budget(const sp_dropback *db, size_t step);
/* After the update that follows `step` others: the threshold and the reset, or, between
 * selections (dropback_interval), the reset alone (enqueued). */
spartan_status sp_dropback_step(spartan_context *ctx, sp_dropback *db, size_t step);

#endif /* SP_NN_DROPBACK_H */
