/* Checkpoints: a prepared model's parameters, the optimizer's momentum buffers and the step
 * count, in the safetensors format (https://huggingface.co/docs/safetensors), so that PyTorch,
 * NumPy or any safetensors reader can load the weights; and the pruned export of the parameters
 * alone (below).
 *
 *     spartan_checkpoint_meta extra[] = {{"epoch", "3"}};
 *     spartan_checkpoint_save(model, "run.safetensors", extra, 1);
 *     ...
 *     spartan_checkpoint_load(model, "run.safetensors");   // same architecture, prepared
 *
 * Contents: for each fully connected or convolution layer the F32 tensors "<layer>.weight",
 * "<layer>.bias" and their momentum buffers "<layer>.weight.momentum", "<layer>.bias.momentum",
 * in the model's native layouts: a convolution's weight is [kh, kw, cin, cout], a fully
 * connected layer's [in, out] (with `in` in (h, w, c) order when its input is a map), a bias
 * [out]. Metadata (strings): "format" ("spartan-checkpoint-1"), "architecture" (every layer with
 * its input and output shape), "step" (SGD updates done: it drives the dropout masks, so a
 * resumed run continues exactly), the training configuration ("batch", "lr", "momentum",
 * "weight_decay", "seed", "policy", "sample_every", "dropout_kind", "dropout", "channel_dropout",
 * "dropback_density", "dropback_keep", "dropback_decay", "dropback_interval", "dropback_ramp";
 * files from before dropout kinds have neither of the first two: Bernoulli; from before channel
 * dropout, not the third: 0), "layout" (the layouts and how to convert
 * them to PyTorch's), "writer", "sha256" (of the data section), "header_sha256" (of the bytes
 * before the data, with its own 64 hex digits read as zeros), and the caller's extra entries.
 *
 * A file is written atomically: to a temporary file in the same directory, flushed and fsynced,
 * then renamed over the target (and the directory fsynced), so a crash mid-save leaves the
 * previous checkpoint intact (and a stray "<path>.tmp.*" file). Loading checks everything before
 * it changes the model (the safetensors structure, both checksums, the format, the
 * architecture, every tensor's name, dtype and shape): a truncated or corrupt file is refused
 * with BAD_FORMAT, a missing one with IO_ERROR (as is anything but a regular file: a FIFO or a
 * device is refused before a byte is read), one larger than any checkpoint of the model could be
 * with BAD_FORMAT before it is read, one of another architecture with
 * INVALID_ARGUMENT, each with a message naming the file and what is wrong, and the model is left
 * as it was. Errors are recorded on the model's context (spartan_last_error(ctx)).
 *
 * Save and load are calls on the model's context, under its threading rule (device.h);
 * spartan_checkpoint_meta_get takes no context and may be called from any thread. Nothing passed
 * in is kept. */
#ifndef SPARTAN_CHECKPOINT_H
#define SPARTAN_CHECKPOINT_H

#include <stddef.h>

#include "spartan/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An extra metadata entry (string key and value) stored with the checkpoint. */
typedef struct spartan_checkpoint_meta {
    const char *key, *value;
} spartan_checkpoint_meta;

/* Saves the model (prepared) to path. Extra keys must be non-empty, distinct, and not one of the
 * checkpoint's own keys (INVALID_ARGUMENT). */
SPARTAN_API spartan_status spartan_checkpoint_save(const spartan_model *m, const char *path,
                                                   const spartan_checkpoint_meta *extra,
                                                   size_t n_extra);
/* Loads path into a prepared model of the same architecture: values, momenta and the step.
 * The training configuration stays the one the model was prepared with (the stored one is for
 * information; an exact continuation needs the same seed). */
SPARTAN_API spartan_status spartan_checkpoint_load(spartan_model *m, const char *path);
/* Reads one metadata value of a checkpoint (validated as by load, without a model) into buf;
 * BAD_FORMAT when the file is corrupt, INVALID_ARGUMENT when the key is absent or buf too
 * small. Errors are recorded on the calling thread (spartan_last_error(NULL)). */
SPARTAN_API spartan_status spartan_checkpoint_meta_get(const char *path, const char *key, char *buf,
                                                       size_t size);

/* ---- Pruned export ------------------------------------------------------------------------------
 * The model's parameters alone, each stored as its non-zero elements: the file a model trained
 * with Dropback (nn.h, spartan_train_config.dropback_density) is shipped as, about 1 / density
 * times smaller than its dense weights. Lossless whatever the density: every element not stored
 * is exactly +0.0, so a model that is not sparse gives a larger file, never a different model.
 *
 *     spartan_export_info info;
 *     spartan_model_export_pruned(model, "mlp.pruned.safetensors", NULL, 0, &info);
 *
 * The file is safetensors, with for every parameter P of the model, in spartan_model_param order
 * (each fc or convolution layer's "<layer>.weight", then its "<layer>.bias"; an LSTM's
 * "<layer>.weight_ih", "<layer>.weight_hh", "<layer>.bias"), two rank-1 tensors of nnz(P)
 * elements each:
 *   "P.indices"  I32: the flat positions (row-major, in P's native layout, as checkpoints store
 *                it: a convolution's weight [kh, kw, cin, cout], a fully connected layer's
 *                [in, out], a bias [out]) of the elements whose bits are not all zero (a -0.0 is
 *                stored, so the rebuilt bits equal the model's), strictly ascending;
 *   "P.values"   F32: those elements, in the same order.
 * A parameter with no such element has two tensors of shape [0]. Rebuilding P: a zero float32
 * array of its dense shape, flattened, dense[indices] = values, reshaped. Metadata (strings):
 * "format" ("spartan-pruned-1"), "architecture" and "description" (as in a checkpoint), "step"
 * (the SGD updates done), "P.shape" for every parameter (its dense shape as a JSON array, e.g.
 * "[784,512]"), "layout" (this encoding and the native layouts, with their conversion to
 * PyTorch's), "writer", "sha256" and "header_sha256" (the checkpoint's two checksums), and the
 * caller's extra entries (keys non-empty, distinct, none of the file's own: INVALID_ARGUMENT).
 * tools/load_pruned.py reads it with numpy and loads it into PyTorch, or compares it bit for bit
 * with a checkpoint.
 *
 * Written as a checkpoint is: atomically (a failure leaves path as it was and no temporary file;
 * a crash mid-write, a stray "<path>.tmp.*"), on a prepared model (INVALID_ARGUMENT otherwise, or
 * for a parameter of 2^31 elements or more), IO_ERROR when path cannot be written, each with a
 * message on the model's context. A call on the model's context, under its threading rule
 * (device.h); nothing passed in is kept. */
typedef struct spartan_export_info {
    size_t elements;    /* elements of all the parameters */
    size_t nonzero;     /* of them stored (bits not all zero) */
    size_t file_bytes;  /* the file's size */
    size_t dense_bytes; /* the size of a safetensors file of the same parameters, each one dense
                           F32 tensor "P" of its shape, with the same metadata */
} spartan_export_info;

/* Writes m (prepared)'s parameters to path as above; info (may be NULL) receives the counts and
 * sizes when it returns OK. */
SPARTAN_API spartan_status spartan_model_export_pruned(const spartan_model *m, const char *path,
                                                       const spartan_checkpoint_meta *extra,
                                                       size_t n_extra, spartan_export_info *info);

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_CHECKPOINT_H */
