/* The runtime's seeded generator: splitmix64 (Steele, Lea, Flood 2014), reproducible on every
 * machine, and normal deviates from it (Box-Muller). */
#ifndef SP_CORE_RNG_H
#define SP_CORE_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct sp_rng {
    uint64_t s;
} sp_rng;

/* splitmix64's output function: a bijective mix of 64 bits (also nn_mix64 in kernels_cl/nn.cl,
 * the dropout hash). */
static inline uint64_t sp_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t sp_rng_next(sp_rng *r) {
    return sp_mix64(r->s += 0x9e3779b97f4a7c15ull);
}

/* Uniform in (0, 1]: 53 random bits, never 0 (so log() is finite). */
static inline double sp_rng_uniform(sp_rng *r) {
    return ((double)(sp_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

/* A standard normal deviate (one of the Box-Muller pair; the other is dropped for simplicity). */
static inline double sp_rng_normal(sp_rng *r) {
    const double u = sp_rng_uniform(r), v = sp_rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* The initial value of element i of a parameter whose stream is key (the weights' He init, and
 * Dropback's regeneration of it on the device: nn_w0 in kernels_cl/nn.cl, the same bits): the
 * Irwin-Hall sum of six 21-bit uniforms, the three fields of splitmix64 outputs 2i + 1 and 2i + 2
 * from state key, centred and times scale. Integer arithmetic and one rounded float multiply. */
static inline float sp_rng_w0(uint64_t key, uint32_t i, float scale) {
    const uint64_t a = sp_mix64(key + (2u * (uint64_t)i + 1u) * 0x9e3779b97f4a7c15ull);
    const uint64_t b = sp_mix64(key + (2u * (uint64_t)i + 2u) * 0x9e3779b97f4a7c15ull);
    const uint64_t f = 0x1fffff;
    const uint64_t sum =
        (a & f) + ((a >> 21) & f) + ((a >> 42) & f) + (b & f) + ((b >> 21) & f) + ((b >> 42) & f);
    return (float)((int64_t)sum - 3 * (int64_t)0x1fffff) * scale;
}

/* sp_rng_w0's scale for a standard deviation std: the sum's is sqrt((2^42 - 1) / 2). */
static inline float sp_rng_w0_scale(double std) {
    return (float)(std / sqrt((4398046511104.0 - 1.0) / 2.0));
}

#endif /* SP_CORE_RNG_H */
