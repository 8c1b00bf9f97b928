/* Small file-system helpers: whole-file read, atomic write, directory creation, cache location. */
#ifndef SP_CORE_FSUTIL_H
#define SP_CORE_FSUTIL_H

#include <stddef.h>

#include "core/error.h"

/* mkdir -p with mode 0700 for the directories it creates. */
spartan_status sp_mkdirs(const char *path, sp_err *err);

/* Reads a whole file into a malloc'd buffer (NUL-terminated for convenience; *len excludes it). */
spartan_status sp_read_file(const char *path, unsigned char **data, size_t *len, sp_err *err);

/* Writes the concatenation of parts to path atomically: a unique temporary file in the same
 * directory, then rename(). With durable, the file is fsync'ed before the rename and the
 * directory after it. On failure the temporary file is removed and path is untouched. */
typedef struct sp_buf_part {
    const void *data;
    size_t len;
} sp_buf_part;
spartan_status sp_write_file_atomic(const char *path, const sp_buf_part *parts, size_t nparts,
                                    int durable, sp_err *err);

/* Resolves the kernel-cache directory: explicit (if not NULL), else $SPARTAN_CACHE_DIR, else
 * $XDG_CACHE_HOME/spartan, else $HOME/.cache/spartan. "off" in the explicit value, in
 * SPARTAN_CACHE_DIR, or SPARTAN_CACHE=off disables the cache: returns 0 and buf = "".
 * Returns 1 with the path in buf otherwise; 0 also when no location can be found (no HOME). */
int sp_cache_dir_resolve(const char *explicit_dir, char *buf, size_t len);

#endif /* SP_CORE_FSUTIL_H */
