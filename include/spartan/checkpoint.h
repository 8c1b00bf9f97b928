/* Checkpoints: a prepared model's parameters, the optimizer's momentum buffers and the step
 * count, in the safetensors format (https://huggingface.co/docs/safetensors), so that PyTorch,
 * NumPy or any safetensors reader can load the weights.
 *
 *     spartan_checkpoint_meta extra[] = {{"epoch", "3"}};
 *     spartan_checkpoint_save(model, "run.safetensors", extra, 1);
 *     ...
 *     spartan_checkpoint_load(model, "run.safetensors");   // same architecture, prepared
 *
 * A file is written atomically: to a temporary file in the same directory, flushed and fsynced,
 * then renamed over the target (and the directory fsynced), so a crash mid-save leaves the
 * previous checkpoint intact. Loading checks everything before it changes the model (header
 * JSON, names, dtypes, shapes, offsets, the payload's SHA-256 stored in the metadata, the
 * architecture): a truncated or corrupt file is refused with BAD_FORMAT and a message saying
 * what is wrong, and the model is left as it was. */
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

SPARTAN_API spartan_status spartan_checkpoint_save(const spartan_model *m, const char *path,
                                                   const spartan_checkpoint_meta *extra,
                                                   size_t n_extra);
SPARTAN_API spartan_status spartan_checkpoint_load(spartan_model *m, const char *path);
/* Reads one metadata value of a checkpoint (validated as by load, without a model) into buf;
 * BAD_FORMAT when the file is corrupt, INVALID_ARGUMENT when the key is absent or buf too
 * small. */
SPARTAN_API spartan_status spartan_checkpoint_meta_get(const char *path, const char *key,
                                                       char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_CHECKPOINT_H */
