/* What every file of a model's parameters shares, whatever it holds (a checkpoint,
 * checkpoint.c; a pruned export, export.c): the metadata that describe the model
 * ("architecture", "description", "writer") and the caller's extra entries, the two checksums
 * that make any damage visible, and the sealed, atomic write and the checked open. Which tensors
 * a file holds, and its own metadata, are the caller's; the format itself is safetensors.c's.
 *
 * The checksums: "sha256" is the SHA-256 of the data section, "header_sha256" the SHA-256 of the
 * file's first header_end bytes (the 8-byte length, the JSON and its padding) as they are with
 * this entry's 64 hex digits written as zeros. */
#ifndef SP_IO_MODEL_FILE_H
#define SP_IO_MODEL_FILE_H

#include <stddef.h>

#include "io/safetensors.h"
#include "spartan/checkpoint.h"
#include "spartan/nn.h"

/* The sentences of a "layout" entry on the native layouts and their conversion to PyTorch's,
 * and on the model's description, which every kind of file shares. */
#define SP_MF_LAYOUT_NATIVE                                                                        \
    "Row-major float32 in each layer's native layout. A convolution's weight is [kh, kw, cin, "    \
    "cout] (PyTorch's Conv2d.weight is [cout, cin, kh, kw]: permute (3, 2, 0, 1)); a fully "       \
    "connected layer's weight is [in, out] (Linear.weight is [out, in]: transpose); when a fully " \
    "connected layer takes an h x w x c map (images are NHWC, flattened in (h, w, c) order), "     \
    "PyTorch flattens in (c, h, w) order: reshape the weight to [h, w, c, out] and permute (3, "   \
    "2, 0, 1), then reshape to [out, c * h * w]. Biases are [out]."
#define SP_MF_LAYOUT_MODEL                                                                         \
    "'architecture' lists each layer's input and output h x w x c; 'description' is the model "    \
    "as a Spartan model description (one layer a line)"

/* The canonical description of the layers, compared when a file is loaded into a model:
 * "input=HxWxC;classes=N" then per layer ";name:kind(options):HxWxC->HxWxC", the options those
 * of the layer's description line ("conv 32 k=3 s=1 p=1" gives "(k=3,s=1,p=1)"). malloc'd; NULL
 * when out of memory. */
char *sp_mf_architecture(const spartan_model *m);

/* A file's metadata, in the order written: "format", "architecture", "description", the kind's
 * own entries, "writer", "sha256", "header_sha256", the caller's extra entries. The two sums
 * are placeholders until sp_mf_write fills them. */
typedef struct sp_mf_meta {
    sp_st_meta *e;
    size_t n;
    char *architecture, *description;
    char writer[48], sum[65], header_sum[65];
} sp_mf_meta;

/* The metadata of a file of m in `format` with the kind's own entries own[0 .. n_own) and the
 * caller's extra[0 .. n_extra), whose keys must be non-empty, distinct and none of the file's
 * own, with values (INVALID_ARGUMENT, recorded on m's context, the message starting with fn).
 * The strings of own and extra are not copied: they must outlive *out. */
spartan_status sp_mf_meta_make(const spartan_model *m, const char *fn, const char *format,
                               const sp_st_meta *own, size_t n_own,
                               const spartan_checkpoint_meta *extra, size_t n_extra,
                               sp_mf_meta *out);
void sp_mf_meta_free(sp_mf_meta *meta); /* a zeroed one: a no-op */

/* Fills both checksums of meta for tensors t[0 .. n) and writes the file to path atomically
 * and durably (sp_st_write). *bytes (optional) receives the file's size. */
spartan_status sp_mf_write(const char *path, const sp_st_tensor *t, size_t n, sp_mf_meta *meta,
                           size_t *bytes, sp_err *err);

/* Reads path (a regular file of at most max bytes) and checks everything that needs no model:
 * the safetensors structure (sp_st_read), both checksums, and that its "format" is format.
 * BAD_FORMAT, the message naming the file and saying it is not a Spartan `what` when the header
 * checksum is missing; *f is empty on failure. */
spartan_status sp_mf_open(const char *path, size_t max, const char *format, const char *what,
                          sp_st_file *f, sp_err *err);

#endif /* SP_IO_MODEL_FILE_H */
