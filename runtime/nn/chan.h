/* Sensitivity-aware feature-map dropout (Approximate Random Dropout's convolution kind, Song et
 * al. 2022): which input channels of a convolution a training step drops. Each channel's
 * sensitivity is its mean activation (the convolution's input is a ReLU's output, so the mean
 * magnitude), measured on line by the previous step's forward pass; a channel's drop probability
 * grows as its sensitivity falls, the probabilities summing to p C; one systematic sample drops
 * floor(p C) or ceil(p C) of them, and each kept channel is scaled by 1 / (1 - its probability),
 * so every channel's expected contribution is the undropped one (docs/training.md, "Channel
 * dropout"). Host arithmetic only; conv.c runs the convolution on the kept channels. */
#ifndef SP_NN_CHAN_H
#define SP_NN_CHAN_H

#include <stddef.h>

/* A channel is dropped with probability at most this (or p, if larger): a kept one's scale stays
 * below 10. */
#define SP_CHAN_DROP_MAX 0.9

/* Drop probabilities d[c] for C channels of sensitivities sens (>= 0; NULL: all equal) at rate p
 * in [0, 1): d[c] = min(d_max, lambda / (sens[c] + eps)), eps a tenth of the mean sensitivity,
 * lambda such that the d[c] sum to p C. */
void sp_chan_probabilities(const double *sens, size_t C, double p, double *d);

/* The systematic sample of d (start u0 in [0, 1)): dropped[c] 1 when the running sum of d passes
 * u0 plus a whole number within channel c's share, so channel c is dropped with probability d[c]
 * and floor(sum d) or ceil(sum d) channels are. Returns the kept count. */
size_t sp_chan_sample(const double *d, size_t C, double u0, unsigned char *dropped);

#endif /* SP_NN_CHAN_H */
