/* Checkpoints: a prepared model's parameters, the optimizer's momentum buffers and the step
 * count, in the safetensors format (https://huggingface.co/docs/safetensors), so that PyTorch,
 * NumPy or any safetensors reader can load the weights.
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
 * "weight_decay", "seed", "policy", "sample_every", "dropout_kind", "dropout", "channel_dropout";
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

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_CHECKPOINT_H */
