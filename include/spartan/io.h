/* Data files: the IDX format of MNIST and Fashion-MNIST (gzip-compressed or not), and a data set
 * of images and labels with normalisation and seeded shuffling.
 *
 *     spartan_dataset *train;
 *     if (spartan_dataset_load(NULL, "train", &train) != SPARTAN_OK)   // Fashion-MNIST by default
 *         fprintf(stderr, "%s\n", spartan_last_error(NULL));
 *     spartan_dataset_shuffle(train, seed, epoch);
 *     spartan_dataset_batch(train, first, count, images, labels);      // floats in [0, 1]
 *     spartan_dataset_destroy(train);
 *
 * Every reader validates what it reads (magic, type, rank, dimensions, the size the header
 * promises against the bytes present, label range) and fails with BAD_FORMAT and a message that
 * names the file and what is wrong; a missing or unreadable file is IO_ERROR.
 *
 * Nothing here uses a context. The readers may be called from any thread (a failure is recorded
 * on the calling thread). A data set may be read by several threads at once
 * (spartan_dataset_batch and the getters); shuffle, limit and destroy need it to themselves. */
#ifndef SPARTAN_IO_H
#define SPARTAN_IO_H

#include <stddef.h>
#include <stdint.h>

#include "spartan/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest rank an IDX file may declare here, and the largest payload (bytes) accepted:
 * a header promising more is refused as corrupt before anything is allocated. */
#define SPARTAN_IDX_MAX_RANK  4
#define SPARTAN_IDX_MAX_BYTES ((size_t)1 << 31)

/* An IDX file of unsigned bytes (type 0x08, the only type MNIST-format data sets use). */
typedef struct spartan_idx {
    int rank;                          /* 1 .. SPARTAN_IDX_MAX_RANK */
    size_t dims[SPARTAN_IDX_MAX_RANK]; /* dims[0] = number of items */
    size_t count;                      /* product of the dimensions */
    uint8_t *data;                     /* count bytes, row-major */
} spartan_idx;

/* Reads path (gzip or plain: detected from the content, not the name). On failure *out is left
 * empty (data NULL). Only a regular file is read: a FIFO, a device or a directory (or a link to
 * one) is IO_ERROR before a byte is read, and a gzip stream is inflated no further than the header
 * promises (plus one 4 KB look past it for trailing bytes). Errors: IO_ERROR (cannot open or read,
 * not a regular file), BAD_FORMAT with a distinct message
 * for a bad magic (first two bytes not zero), an unsupported type byte, a rank of 0 or above
 * SPARTAN_IDX_MAX_RANK, a zero dimension, a size above SPARTAN_IDX_MAX_BYTES, a truncated
 * payload (fewer bytes than the header promises, or a gzip stream cut short), trailing bytes
 * after it, or a corrupt gzip stream (damaged data, a wrong CRC). zlib ignores bytes after the end
 * of a gzip stream that do not start another one; trailing bytes inside the stream are refused.
 * Errors are recorded on the calling thread: spartan_last_error(NULL) gives the message. */
SPARTAN_API spartan_status spartan_idx_read(const char *path, spartan_idx *out);
/* Frees the data (NULL or an empty idx is a no-op) and empties *idx. */
SPARTAN_API void spartan_idx_free(spartan_idx *idx);

/* ---- Data sets ------------------------------------------------------------------------------- */

/* The default directory of Fashion-MNIST (Debian's dataset-fashion-mnist package). */
#define SPARTAN_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef struct spartan_dataset spartan_dataset;

/* Loads the split "train" (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]) or "test"
 * (t10k-...) of an MNIST-format directory (NULL: SPARTAN_FASHION_MNIST_DIR). Checks that images
 * are rank 3 (count x rows x cols), labels rank 1, that both counts agree, and that every label is
 * below 10 (BAD_FORMAT naming the first bad index and value otherwise). */
SPARTAN_API spartan_status spartan_dataset_load(const char *dir, const char *split,
                                                spartan_dataset **out);
/* NULL is a no-op. */
SPARTAN_API void spartan_dataset_destroy(spartan_dataset *d);

SPARTAN_API size_t spartan_dataset_count(const spartan_dataset *d);
SPARTAN_API size_t spartan_dataset_rows(const spartan_dataset *d);
SPARTAN_API size_t spartan_dataset_cols(const spartan_dataset *d);
SPARTAN_API size_t spartan_dataset_classes(const spartan_dataset *d); /* 10 */

/* Keeps only the first n items (n >= count keeps all). The order is reset to 0 .. n-1. */
SPARTAN_API void spartan_dataset_limit(spartan_dataset *d, size_t n);

/* Sets the order of the items to a permutation that depends only on (seed, epoch) (Fisher-Yates
 * driven by a counter-based generator): the same seed gives the same order on any machine. */
SPARTAN_API void spartan_dataset_shuffle(spartan_dataset *d, uint64_t seed, uint64_t epoch);

/* Copies items first .. first+count-1 of the current order: images as floats scaled to [0, 1]
 * (pixel / 255; zeros stay zeros, which keeps the first layer's input sparse), rows*cols floats
 * per image, and labels as floats (the class index). INVALID_ARGUMENT when the range is outside
 * the set or a pointer is NULL. */
SPARTAN_API spartan_status spartan_dataset_batch(const spartan_dataset *d, size_t first,
                                                 size_t count, float *images, float *labels);

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_IO_H */
