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

#endif /* SP_CORE_RNG_H */
