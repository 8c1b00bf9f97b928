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
 * directory, then rename(). On failure the temporary file is removed and path is untouched.
 * Flags: SP_WRITE_DURABLE fsyncs the file before the rename and the directory after it (a failed
 * directory fsync is reported); SP_WRITE_SHARED creates the file 0666 (less the umask) rather
 * than 0600. Test hook: SPARTAN_TEST_CRASH_AFTER_BYTES=N makes the process _exit(3) once N bytes
 * are written (or just before the rename when the file is shorter), as a crash would. */
typedef struct sp_buf_part {
    const void *data;
    size_t len;
} sp_buf_part;
enum { SP_WRITE_DURABLE = 1u, SP_WRITE_SHARED = 2u };
spartan_status sp_write_file_atomic(const char *path, const sp_buf_part *parts, size_t nparts,
                                    unsigned flags, sp_err *err);

/* Resolves the kernel-cache directory: explicit (if not NULL), else $SPARTAN_CACHE_DIR, else
 * $XDG_CACHE_HOME/spartan, else $HOME/.cache/spartan. "off" in the explicit value, in
 * SPARTAN_CACHE_DIR, or SPARTAN_CACHE=off disables the cache: returns 0 and buf = "".
 * Returns 1 with the path in buf otherwise; 0 also when no location can be found (no HOME). */
int sp_cache_dir_resolve(const char *explicit_dir, char *buf, size_t len);

#endif /* SP_CORE_FSUTIL_H */
