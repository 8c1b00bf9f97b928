/* The one generator of sparsity patterns (see patterns.h). */
#include "patterns.h"

#include <math.h>
#include <string.h>

static uint64_t next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s) {
    return (double)(next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static float value(uint64_t *s, int is_signed) {
    float mag = 0.1f + 0.9f * (float)unit(s);
    if (is_signed && (next(s) & 1)) return -mag;
    return mag;
}

static const char *names[PAT_COUNT] = {"random", "cluster", "prepool", "deadrows"};

const char *pat_name(pat_kind k) {
    return (unsigned)k < PAT_COUNT ? names[k] : "?";
}

int pat_parse(const char *name) {
    for (int i = 0; i < PAT_COUNT; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

void pat_fill_dense(float *x, size_t n, uint64_t seed) {
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) x[i] = (float)(2.0 * unit(&s) - 1.0);
}

size_t pat_zeros(const float *x, size_t n) {
    size_t z = 0;
    for (size_t i = 0; i < n; i++) z += x[i] == 0.0f;
    return z;
}

static void fill_random(float *x, size_t n, double s, int sg, uint64_t *st) {
    for (size_t i = 0; i < n; i++) x[i] = unit(st) < s ? 0.0f : value(st, sg);
}

/* Dead columns take a third of s, 8x8 zero blocks the rest (chosen independently, so blocks
 * may overlap dead columns: the block probability is raised to compensate). */
static void fill_cluster(float *x, size_t rows, size_t cols, double s, int sg, uint64_t *st) {
    for (size_t i = 0; i < rows * cols; i++) x[i] = value(st, sg);
    double dead = s / 3.0;
    double rest = s >= 1.0 ? 1.0 : (s - dead) / (1.0 - dead);
    for (size_t c = 0; c < cols; c++) {
        if (unit(st) >= dead) continue;
        for (size_t r = 0; r < rows; r++) x[r * cols + c] = 0.0f;
    }
    for (size_t br = 0; br < rows; br += 8) {
        for (size_t bc = 0; bc < cols; bc += 8) {
            if (unit(st) >= rest) continue;
            for (size_t r = br; r < br + 8 && r < rows; r++)
                for (size_t c = bc; c < bc + 8 && c < cols; c++) x[r * cols + c] = 0.0f;
        }
    }
}

/* Windows of 4 consecutive rows per column (the 2x2 pool window in im2col/NHWC row order is
 * 4 rows apart in pairs; 4 consecutive rows have the same statistics for a GEMM). */
static void fill_prepool(float *x, size_t rows, size_t cols, double s, int sg, uint64_t *st) {
    double keep = 1.0 - s; /* non-zeros per element */
    for (size_t c = 0; c < cols; c++) {
        for (size_t r0 = 0; r0 < rows; r0 += 4) {
            size_t w = rows - r0 < 4 ? rows - r0 : 4;
            /* expected non-zeros in this window: 4 * keep; at most one below s = 0.75 */
            double want = keep * (double)w;
            size_t k = (size_t)want;
            if (unit(st) < want - (double)k) k++;
            if (k > w) k = w;
            size_t first = (size_t)(next(st) % w);
            for (size_t j = 0; j < w; j++) {
                size_t pos = (first + j) % w;
                x[(r0 + pos) * cols + c] = j < k ? value(st, sg) : 0.0f;
            }
        }
    }
}

static void fill_deadrows(float *x, size_t rows, size_t cols, double s, int sg, uint64_t *st) {
    for (size_t i = 0; i < rows * cols; i++) x[i] = value(st, sg);
    /* rows dead with probability a, columns with b, a = b: 1 - (1-a)^2 = s */
    double a = s >= 1.0 ? 1.0 : 1.0 - sqrt(1.0 - s);
    for (size_t r = 0; r < rows; r++)
        if (unit(st) < a) memset(x + r * cols, 0, cols * sizeof *x);
    for (size_t c = 0; c < cols; c++)
        if (unit(st) < a)
            for (size_t r = 0; r < rows; r++) x[r * cols + c] = 0.0f;
}

void pat_fill(float *x, size_t rows, size_t cols, pat_kind k, double s, int is_signed,
              uint64_t seed) {
    uint64_t st = seed ^ 0x5eed5eed5eedull;
    if (s < 0) s = 0;
    if (s > 1) s = 1;
    switch (k) {
    case PAT_CLUSTER:
        fill_cluster(x, rows, cols, s, is_signed, &st);
        break;
    case PAT_PREPOOL:
        fill_prepool(x, rows, cols, s, is_signed, &st);
        break;
    case PAT_DEADROWS:
        fill_deadrows(x, rows, cols, s, is_signed, &st);
        break;
    case PAT_RANDOM:
    default:
        fill_random(x, rows * cols, s, is_signed, &st);
        break;
    }
}
