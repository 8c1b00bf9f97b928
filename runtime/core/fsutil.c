/* File-system helpers (see fsutil.h). POSIX only. */
#include "core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/number.h"

spartan_status sp_mkdirs(const char *path, sp_err *err) {
    size_t n = strlen(path);
    char *p = malloc(n + 1);
    if (!p) return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "mkdir %s", path);
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            spartan_status st = sp_err_set(err, SPARTAN_STATUS_IO_ERROR,
                                           "cannot create directory %s: %s", p, strerror(errno));
            free(p);
            return st;
        }
        p[i] = saved;
    }
    free(p);
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return sp_err_set(err, SPARTAN_STATUS_IO_ERROR, "%s is not a directory", path);
    return SPARTAN_OK;
}

/* What a file that is not a regular one is, for the message. */
static const char *kind_of(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

spartan_status sp_rfile_open(sp_rfile *f, int dirfd, const char *name, const char *path,
                             unsigned flags, size_t max, sp_err *err) {
    *f = (sp_rfile){-1, 0, 0, path};
    int oflags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | ((flags & SP_READ_NOFOLLOW) ? O_NOFOLLOW : 0);
    int fd = openat(dirfd, name, oflags);
    if (fd < 0 && errno == ELOOP && (flags & SP_READ_NOFOLLOW))
        return sp_err_set(err, SPARTAN_STATUS_IO_ERROR, "%s is a symbolic link (not followed)",
                          path);
    if (fd < 0)
        return sp_err_set(err, SPARTAN_STATUS_IO_ERROR, "cannot open %s: %s", path,
                          strerror(errno));
    struct stat sb;
    spartan_status st = SPARTAN_OK;
    if (fstat(fd, &sb) != 0)
        st = sp_err_set(err, SPARTAN_STATUS_IO_ERROR, "cannot stat %s: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = sp_err_set(err, SPARTAN_STATUS_IO_ERROR,
                        "%s is %s, not a regular file (only regular files are read)", path,
                        kind_of(sb.st_mode));
    else if ((uintmax_t)sb.st_size > max)
        st = sp_err_set(err, SPARTAN_STATUS_BAD_FORMAT,
                        "%s is %jd bytes, more than the %zu bytes it can be at most", path,
                        (intmax_t)sb.st_size, max);
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
        st =
            sp_err_set(err, SPARTAN_STATUS_IO_ERROR, "%s: fcntl failed: %s", path, strerror(errno));
    if (st != SPARTAN_OK) {
        close(fd);
        return st;
    }
    f->fd = fd;
    f->size = (size_t)sb.st_size;
    return SPARTAN_OK;
}

spartan_status sp_rfile_read(sp_rfile *f, void *buf, size_t n, sp_err *err) {
    unsigned char *p = buf;
    for (size_t got = 0; got < n;) {
        ssize_t r = read(f->fd, p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return sp_err_set(err, SPARTAN_STATUS_IO_ERROR, "error reading %s: %s", f->path,
                              strerror(errno));
        if (r == 0)
            return sp_err_set(err, SPARTAN_STATUS_IO_ERROR,
                              "%s ended after %zu of its %zu bytes: it shrank while being read",
                              f->path, f->done + got, f->size);
        got += (size_t)r;
    }
    f->done += n;
    return SPARTAN_OK;
}

spartan_status sp_rfile_end(sp_rfile *f, sp_err *err) {
    unsigned char extra;
    ssize_t r;
    while ((r = read(f->fd, &extra, 1)) < 0 && errno == EINTR) {
    }
    if (r < 0)
        return sp_err_set(err, SPARTAN_STATUS_IO_ERROR, "error reading %s: %s", f->path,
                          strerror(errno));
    if (r > 0 || f->done != f->size)
        return sp_err_set(err, SPARTAN_STATUS_IO_ERROR,
                          "%s changed while being read (it was %zu bytes when opened)", f->path,
                          f->size);
    return SPARTAN_OK;
}

void sp_rfile_close(sp_rfile *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
}

spartan_status sp_read_file_at(int dirfd, const char *name, const char *path, unsigned flags,
                               size_t max, unsigned char **data, size_t *len, sp_err *err) {
    *data = NULL;
    *len = 0;
    sp_rfile f;
    spartan_status st =
        sp_rfile_open(&f, dirfd, name, path, flags, max < SIZE_MAX ? max : SIZE_MAX - 1, err);
    if (st != SPARTAN_OK) return st;
    unsigned char *buf = malloc(f.size + 1);
    if (!buf)
        st = sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "reading %s (%zu bytes)", path,
                        f.size);
    if (st == SPARTAN_OK) st = sp_rfile_read(&f, buf, f.size, err);
    if (st == SPARTAN_OK) st = sp_rfile_end(&f, err);
    sp_rfile_close(&f);
    if (st != SPARTAN_OK) {
        free(buf);
        return st;
    }
    buf[f.size] = '\0';
    *data = buf;
    *len = f.size;
    return SPARTAN_OK;
}

spartan_status sp_read_file(const char *path, size_t max, unsigned char **data, size_t *len,
                            sp_err *err) {
    return sp_read_file_at(AT_FDCWD, path, path, 0, max, data, len, err);
}

static int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* fsync of the directory holding path, so a rename in it is durable. 0 on failure; EINVAL (a
 * file system that cannot sync directories) counts as done: nothing more can be done there. */
static int fsync_dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) {
        strcpy(dir, ".");
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0) n = 1;
        if (n >= sizeof dir) return 0;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return 0;
    int ok = fsync(fd) == 0 || errno == EINVAL;
    close(fd);
    return ok;
}

/* The crash test hook (SPARTAN_TEST_CRASH_AFTER_BYTES=N): the process _exit()s once N bytes of
 * the temporary file are written, or, when the file is shorter, just before the rename, as if it
 * had been killed there. Read only here; *on is 0 when unset. A value that is not a byte count
 * is refused (INVALID_ARGUMENT) rather than read as some other number. */
static spartan_status crash_after(int *on, unsigned long long *at, sp_err *err) {
    const char *hook = getenv("SPARTAN_TEST_CRASH_AFTER_BYTES");
    uint64_t n = 0;
    *on = hook && *hook;
    *at = 0;
    if (*on && !sp_parse_u64(hook, UINT64_MAX, &n))
        return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                          "SPARTAN_TEST_CRASH_AFTER_BYTES=\"%s\" is not a byte count (decimal "
                          "digits, at most %llu)",
                          hook, (unsigned long long)UINT64_MAX);
    *at = n;
    return SPARTAN_OK;
}

/* write_all with the crash hook: *written counts the bytes so far. */
static int write_part(int fd, const void *data, size_t len, int crash, unsigned long long crash_at,
                      unsigned long long *written) {
    if (crash && *written + len > crash_at) {
        (void)write_all(fd, data, (size_t)(crash_at - *written));
        _exit(3);
    }
    *written += len;
    return write_all(fd, data, len);
}

spartan_status sp_write_file_atomic(const char *path, const sp_buf_part *parts, size_t nparts,
                                    unsigned flags, sp_err *err) {
    static atomic_uint counter;
    int crash;
    unsigned long long crash_at;
    spartan_status hook = crash_after(&crash, &crash_at, err);
    if (hook != SPARTAN_OK) return hook;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 64);
    if (!tmp) return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "writing %s", path);
    snprintf(tmp, plen + 64, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1u));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, (flags & SP_WRITE_SHARED) ? 0666 : 0600);
    if (fd < 0) {
        spartan_status st =
            sp_err_set(err, SPARTAN_STATUS_IO_ERROR, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    unsigned long long written = 0;
    const char *what = NULL;
    for (size_t i = 0; i < nparts && !what; i++)
        if (write_part(fd, parts[i].data, parts[i].len, crash, crash_at, &written) != 0)
            what = "write";
    if (!what && crash) _exit(3); /* the whole file written, not yet renamed */
    if (!what && (flags & SP_WRITE_DURABLE) && fsync(fd) != 0) what = "fsync";
    if (close(fd) != 0 && !what) what = "close";
    if (!what && rename(tmp, path) != 0) what = "rename";
    if (what) {
        spartan_status st = sp_err_set(err, SPARTAN_STATUS_IO_ERROR, "%s of %s failed: %s", what,
                                       path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    if ((flags & SP_WRITE_DURABLE) && !fsync_dir_of(path))
        return sp_err_set(err, SPARTAN_STATUS_IO_ERROR,
                          "%s: written, but the fsync of its directory failed (%s): the new file "
                          "may not survive a power loss",
                          path, strerror(errno));
    return SPARTAN_OK;
}

static int is_off(const char *s) {
    return s && (strcasecmp(s, "off") == 0 || strcmp(s, "0") == 0 || strcasecmp(s, "no") == 0 ||
                 strcasecmp(s, "false") == 0);
}

int sp_cache_dir_resolve(const char *explicit_dir, char *buf, size_t len) {
    buf[0] = '\0';
    if (is_off(getenv("SPARTAN_CACHE"))) return 0;
    const char *dir = explicit_dir;
    if (!dir || !*dir) dir = getenv("SPARTAN_CACHE_DIR");
    if (is_off(dir)) return 0;
    int n;
    if (dir && *dir) {
        n = snprintf(buf, len, "%s", dir);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME");
        const char *home = getenv("HOME");
        if (xdg && xdg[0] == '/')
            n = snprintf(buf, len, "%s/spartan", xdg);
        else if (home && *home)
            n = snprintf(buf, len, "%s/.cache/spartan", home);
        else
            return 0;
    }
    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
        return 0;
    }
    return 1;
}
