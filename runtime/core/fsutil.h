/* Small file-system helpers: bounded whole-file reads, atomic write, directory creation, cache
 * location. */
#ifndef SP_CORE_FSUTIL_H
#define SP_CORE_FSUTIL_H

#include <stddef.h>

#include "core/error.h"

/* mkdir -p with mode 0700 for the directories it creates. */
spartan_status sp_mkdirs(const char *path, sp_err *err);

/* ---- Bounded reads --------------------------------------------------------------------------
 * Every file the library reads goes through these. The file is opened with O_NONBLOCK (opening a
 * FIFO does not wait for a writer), fstat'ed through the descriptor, and refused unless it is a
 * regular file of at most `max` bytes; then exactly its size is read, and a file that shrank or
 * grew meanwhile is an error. So a device, FIFO or directory, or a symbolic link to one, is
 * refused before a byte of it is read: nothing is ever read "to the end" of a stream.
 * Statuses: IO_ERROR (cannot open, not a regular file, a symbolic link under SP_READ_NOFOLLOW,
 * read error, changed while read), BAD_FORMAT (larger than max); the message names path. */
enum { SP_READ_NOFOLLOW = 1u }; /* refuse a symbolic link as the last component of the name */

typedef struct sp_rfile {
    int fd;
    size_t size;      /* st_size when opened */
    size_t done;      /* bytes read so far */
    const char *path; /* for messages (not copied) */
} sp_rfile;

/* Opens name, relative to the directory descriptor dirfd (AT_FDCWD: the working directory);
 * path is how messages name it. On failure f->fd is -1 and nothing needs closing. */
spartan_status sp_rfile_open(sp_rfile *f, int dirfd, const char *name, const char *path,
                             unsigned flags, size_t max, sp_err *err);
/* Reads exactly n more bytes (n <= size - done); an early end is IO_ERROR (the file shrank). */
spartan_status sp_rfile_read(sp_rfile *f, void *buf, size_t n, sp_err *err);
/* After all size bytes are read: IO_ERROR when fewer were read or more follow (it grew). */
spartan_status sp_rfile_end(sp_rfile *f, sp_err *err);
void sp_rfile_close(sp_rfile *f); /* closes the descriptor, if any */

/* A whole file of at most max bytes into a malloc'd buffer (NUL-terminated for convenience;
 * *len excludes it), read as above; sp_read_file_at names it relative to dirfd, with flags. */
spartan_status sp_read_file(const char *path, size_t max, unsigned char **data, size_t *len,
                            sp_err *err);
spartan_status sp_read_file_at(int dirfd, const char *name, const char *path, unsigned flags,
                               size_t max, unsigned char **data, size_t *len, sp_err *err);

/* Writes the concatenation of parts to path atomically: a unique temporary file in the same
 * directory, then rename(). On failure the temporary file is removed and path is untouched.
 * Flags: SP_WRITE_DURABLE fsyncs the file before the rename and the directory after it (a failed
 * directory fsync is reported); SP_WRITE_SHARED creates the file 0666 (less the umask) rather
 * than 0600. Test hook: SPARTAN_TEST_CRASH_AFTER_BYTES=N makes the process _exit(3) once N bytes
 * are written (or just before the rename when the file is shorter), as a crash would; a value
 * that is not a decimal byte count fails the write with INVALID_ARGUMENT. */
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
