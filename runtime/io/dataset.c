/* Data sets of MNIST format: an images file and a labels file read with the IDX reader (idx.c),
 * checked against each other, then served in a seeded order as float batches. Owns the order and
 * the conversion to floats; reading and validating single files is idx.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "spartan/io.h"

#define CLASSES 10

struct spartan_dataset {
    spartan_idx images; /* count x rows x cols */
    spartan_idx labels; /* count */
    size_t count;       /* items in use (spartan_dataset_limit may lower it) */
    size_t *order;      /* count indices into images and labels */
};

static void order_reset(spartan_dataset *d) {
    for (size_t i = 0; i < d->count; i++) d->order[i] = i;
}

/* "<dir>/<split>-<kind>-idx<rank>-ubyte.gz" when it exists, else the name without ".gz" when
 * that exists; the .gz name when neither does, so the open error names the usual file. */
static spartan_status find_file(const char *dir, const char *prefix, const char *kind, int rank,
                                char **path, int *neither) {
    size_t len = strlen(dir) + strlen(prefix) + strlen(kind) + 32;
    char *p = malloc(len);
    *path = p;
    if (!p)
        return sp_err_set(sp_thread_err(), SPARTAN_STATUS_OUT_OF_HOST_MEMORY,
                          "spartan_dataset_load: out of memory");
    snprintf(p, len, "%s/%s-%s-idx%d-ubyte", dir, prefix, kind, rank);
    size_t plain = strlen(p);
    strcat(p, ".gz");
    struct stat sb;
    *neither = 0;
    if (stat(p, &sb) != 0 && errno == ENOENT) {
        p[plain] = '\0';
        *neither = stat(p, &sb) != 0 && errno == ENOENT;
        if (*neither) strcat(p, ".gz");
    }
    return SPARTAN_OK;
}

/* Reads one file of the set and checks what a single file can show (its rank, the label range);
 * the messages name the file. */
static spartan_status read_part(const char *dir, const char *prefix, const char *kind, int rank,
                                int default_dir, spartan_idx *out) {
    char *path;
    int neither = 0;
    spartan_status st = find_file(dir, prefix, kind, rank, &path, &neither);
    if (st == SPARTAN_OK) st = spartan_idx_read(path, out);
    if (st == SPARTAN_STATUS_IO_ERROR && neither)
        sp_err_append(sp_thread_err(), " (nor without .gz)");
    if (st == SPARTAN_STATUS_IO_ERROR && default_dir)
        sp_err_append(sp_thread_err(),
                      " (install Fashion-MNIST: Debian's dataset-fashion-mnist package, as "
                      "tools/lib/deps.sh does, or pass the directory of an MNIST-format set)");
    if (st == SPARTAN_OK && out->rank != rank)
        st = sp_err_set(sp_thread_err(), SPARTAN_STATUS_BAD_FORMAT, "%s: rank %d, expected %d (%s)",
                        path, out->rank, rank, rank == 3 ? "count x rows x cols" : "count");
    for (size_t i = 0; st == SPARTAN_OK && rank == 1 && i < out->count; i++)
        if (out->data[i] >= CLASSES)
            st = sp_err_set(sp_thread_err(), SPARTAN_STATUS_BAD_FORMAT,
                            "%s: label %u at index %zu outside 0..%d", path, (unsigned)out->data[i],
                            i, CLASSES - 1);
    if (st != SPARTAN_OK) spartan_idx_free(out);
    free(path);
    return st;
}

spartan_status spartan_dataset_load(const char *dir, const char *split, spartan_dataset **out) {
    if (out) *out = NULL;
    if (!split || !out)
        return sp_err_set(sp_thread_err(), SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_dataset_load: split and out must not be NULL");
    const char *prefix = strcmp(split, "train") == 0  ? "train"
                         : strcmp(split, "test") == 0 ? "t10k"
                                                      : NULL;
    if (!prefix)
        return sp_err_set(sp_thread_err(), SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_dataset_load: split \"%s\" (expected \"train\" or \"test\")",
                          split);
    int default_dir = dir == NULL;
    if (!dir) dir = SPARTAN_FASHION_MNIST_DIR;

    spartan_dataset *d = calloc(1, sizeof *d);
    if (!d)
        return sp_err_set(sp_thread_err(), SPARTAN_STATUS_OUT_OF_HOST_MEMORY,
                          "spartan_dataset_load: out of memory");
    spartan_status st = read_part(dir, prefix, "images", 3, default_dir, &d->images);
    if (st == SPARTAN_OK) st = read_part(dir, prefix, "labels", 1, default_dir, &d->labels);
    if (st == SPARTAN_OK && d->images.dims[0] != d->labels.dims[0])
        st = sp_err_set(sp_thread_err(), SPARTAN_STATUS_BAD_FORMAT,
                        "%s/%s-*: %zu images but %zu labels", dir, prefix, d->images.dims[0],
                        d->labels.dims[0]);
    if (st == SPARTAN_OK) {
        d->count = d->labels.count;
        d->order = malloc(d->count * sizeof *d->order);
        if (!d->order)
            st = sp_err_set(sp_thread_err(), SPARTAN_STATUS_OUT_OF_HOST_MEMORY,
                            "spartan_dataset_load: cannot allocate the order of %zu items",
                            d->count);
    }
    if (st != SPARTAN_OK) {
        spartan_dataset_destroy(d);
        return st;
    }
    order_reset(d);
    *out = d;
    return SPARTAN_OK;
}

void spartan_dataset_destroy(spartan_dataset *d) {
    if (!d) return;
    spartan_idx_free(&d->images);
    spartan_idx_free(&d->labels);
    free(d->order);
    free(d);
}

size_t spartan_dataset_count(const spartan_dataset *d) {
    return d ? d->count : 0;
}

size_t spartan_dataset_rows(const spartan_dataset *d) {
    return d ? d->images.dims[1] : 0;
}

size_t spartan_dataset_cols(const spartan_dataset *d) {
    return d ? d->images.dims[2] : 0;
}

size_t spartan_dataset_classes(const spartan_dataset *d) {
    (void)d;
    return CLASSES;
}

void spartan_dataset_limit(spartan_dataset *d, size_t n) {
    if (!d) return;
    if (n < d->count) d->count = n;
    order_reset(d);
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* Counter-based: the k-th draw is a pure function of (key, k), so the permutation depends on
 * nothing but seed and epoch, and uses only 64-bit integer arithmetic (the same on any machine). */
typedef struct draws {
    uint64_t key, k;
} draws;

/* Uniform in 0 .. bound-1 (bound >= 1), by rejection: no modulo bias. */
static uint64_t draw_below(draws *g, uint64_t bound) {
    uint64_t reject_below = (0 - bound) % bound; /* 2^64 mod bound */
    for (;;) {
        uint64_t r = splitmix64(g->key + 0x9e3779b97f4a7c15u * ++g->k);
        if (r >= reject_below) return r % bound;
    }
}

void spartan_dataset_shuffle(spartan_dataset *d, uint64_t seed, uint64_t epoch) {
    if (!d) return;
    order_reset(d);
    draws g = {splitmix64(seed ^ splitmix64(epoch)), 0};
    for (size_t i = d->count; i > 1; i--) {
        size_t j = (size_t)draw_below(&g, i);
        size_t t = d->order[i - 1];
        d->order[i - 1] = d->order[j];
        d->order[j] = t;
    }
}

spartan_status spartan_dataset_batch(const spartan_dataset *d, size_t first, size_t count,
                                     float *images, float *labels) {
    if (!d || !images || !labels)
        return sp_err_set(sp_thread_err(), SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_dataset_batch: d, images and labels must not be NULL");
    if (first > d->count || count > d->count - first)
        return sp_err_set(sp_thread_err(), SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_dataset_batch: first %zu and count %zu reach past the %zu items",
                          first, count, d->count);
    size_t pixels = d->images.dims[1] * d->images.dims[2];
    for (size_t b = 0; b < count; b++) {
        size_t item = d->order[first + b];
        const uint8_t *src = d->images.data + item * pixels;
        float *dst = images + b * pixels;
        for (size_t p = 0; p < pixels; p++) dst[p] = (float)src[p] / 255.0f;
        labels[b] = (float)d->labels.data[item];
    }
    return SPARTAN_OK;
}
