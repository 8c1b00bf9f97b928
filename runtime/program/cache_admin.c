/* Listing and clearing the kernel binary cache (spartan-info --cache, tests, users).
 *
 * Both see only the names the cache itself makes (bincache.c): entries <dir>/<xx>/<64 hex>.bin,
 * xx the name's first two digits, whatever their payload, and the temporary files of their atomic
 * writes, <64 hex>.bin.tmp.<pid>.<n>. Anything else in the directory (the policy's calibration
 * files, a user's notes) is never listed or removed. No symbolic link is followed: a linked
 * subdirectory is skipped, and a linked entry is listed without being read; clearing removes it
 * (the link alone: unlinkat removes a name, never what it points to). */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "program/bincache.h"
#include "spartan/device.h"

#define HEX_LEN (2 * SP_SHA256_SIZE)

enum { NOT_OURS = 0, ENTRY, TEMPORARY };

/* n lower-case hexadecimal digits, as sp_sha256_hex writes them. */
static int is_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

/* At least one decimal digit at *p, then `end`; advances *p past them. */
static int digits_then(const char **p, char end) {
    size_t n = strspn(*p, "0123456789");
    if (n == 0 || (*p)[n] != end) return 0;
    *p += n + (end != '\0');
    return 1;
}

/* What a file named name in the subdirectory sub is to the cache. */
static int name_kind(const char *sub, const char *name) {
    if (strlen(name) < HEX_LEN + 4 || !is_hex(name, HEX_LEN) || memcmp(name, sub, 2) != 0 ||
        memcmp(name + HEX_LEN, ".bin", 4) != 0)
        return NOT_OURS;
    const char *rest = name + HEX_LEN + 4;
    if (*rest == '\0') return ENTRY;
    if (strncmp(rest, ".tmp.", 5) != 0) return NOT_OURS;
    rest += 5;
    return digits_then(&rest, '.') && digits_then(&rest, '\0') ? TEMPORARY : NOT_OURS;
}

/* fn(dirfd, path, name, kind, lstat of the file, user) for every file of ours. */
typedef int (*visit_fn)(int dirfd, const char *path, const char *name, int kind,
                        const struct stat *sb, void *user);

static spartan_status walk(const char *dir, visit_fn fn, void *user) {
    /* The cache directory itself may be a link (a user's choice); nothing below it is followed. */
    int topfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *top = topfd >= 0 ? fdopendir(topfd) : NULL;
    if (!top) {
        if (topfd >= 0) close(topfd);
        return SPARTAN_OK; /* no directory yet: nothing cached */
    }
    spartan_status st = SPARTAN_OK;
    struct dirent *e;
    while (st == SPARTAN_OK && (e = readdir(top)) != NULL) {
        if (strlen(e->d_name) != 2 || !is_hex(e->d_name, 2)) continue;
        int subfd = openat(dirfd(top), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *d = subfd >= 0 ? fdopendir(subfd) : NULL;
        if (!d) { /* a symbolic link, or not a directory: not ours */
            if (subfd >= 0) close(subfd);
            continue;
        }
        struct dirent *f;
        while (st == SPARTAN_OK && (f = readdir(d)) != NULL) {
            int kind = name_kind(e->d_name, f->d_name);
            struct stat sb;
            char path[1200];
            if (!kind || fstatat(dirfd(d), f->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) continue;
            if (snprintf(path, sizeof path, "%s/%s/%s", dir, e->d_name, f->d_name) >=
                (int)sizeof path)
                continue;
            if (fn(dirfd(d), path, f->d_name, kind, &sb, user) != 0)
                st = sp_err_set(sp_thread_err(), SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "cache list");
        }
        closedir(d);
    }
    closedir(top);
    return st;
}

typedef struct {
    spartan_cache_entry *list;
    size_t n, cap;
} list_state;

/* Reads and verifies one entry; a link or another kind of file is listed, never read. */
static void describe(int dirfd, const char *name, int kind, const struct stat *sb,
                     spartan_cache_entry *e) {
    const char *problem = NULL;
    if (S_ISLNK(sb->st_mode))
        problem = "symbolic link (not followed)";
    else if (!S_ISREG(sb->st_mode))
        problem = "not a regular file";
    else if (kind == TEMPORARY)
        problem = "temporary file of an unfinished write";
    if (problem) {
        snprintf(e->problem, sizeof e->problem, "%s", problem);
        return;
    }
    unsigned char *data;
    size_t len;
    sp_err err = {0};
    if (sp_read_file_at(dirfd, name, e->path, SP_READ_NOFOLLOW, SP_BINCACHE_MAX_ENTRY, &data, &len,
                        &err) != SPARTAN_OK) {
        snprintf(e->problem, sizeof e->problem, "unreadable");
    } else {
        const char *bad = sp_bincache_parse(data, len, NULL, e->label, sizeof e->label, NULL, NULL);
        e->valid = bad == NULL;
        snprintf(e->problem, sizeof e->problem, "%s", bad ? bad : "");
        free(data);
    }
    sp_err_free(&err);
}

static int add_entry(int dirfd, const char *path, const char *name, int kind, const struct stat *sb,
                     void *user) {
    list_state *s = user;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        spartan_cache_entry *l = realloc(s->list, cap * sizeof *l);
        if (!l) return -1;
        s->list = l;
        s->cap = cap;
    }
    spartan_cache_entry *e = &s->list[s->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->path, sizeof e->path, "%s", path);
    e->bytes = (uint64_t)sb->st_size;
    e->mtime = (int64_t)sb->st_mtime;
    describe(dirfd, name, kind, sb, e);
    return 0;
}

spartan_status spartan_cache_list(const spartan_context_opts *opts, spartan_cache_entry **out,
                                  size_t *count) {
    if (!out || !count)
        return sp_err_set(sp_thread_err(), SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_cache_list: out and count must not be NULL");
    *out = NULL;
    *count = 0;
    char dir[1024];
    if (!sp_cache_dir_resolve(opts ? opts->cache_dir : NULL, dir, sizeof dir))
        return sp_err_set(sp_thread_err(), SPARTAN_STATUS_UNSUPPORTED, "the kernel cache is off");
    list_state s = {0};
    spartan_status st = walk(dir, add_entry, &s);
    if (st != SPARTAN_OK) {
        free(s.list);
        return st;
    }
    *out = s.list;
    *count = s.n;
    return SPARTAN_OK;
}

void spartan_cache_list_free(spartan_cache_entry *list) {
    free(list);
}

static int remove_entry(int dirfd, const char *path, const char *name, int kind,
                        const struct stat *sb, void *user) {
    size_t *removed = user;
    (void)path;
    (void)kind;
    if (!S_ISDIR(sb->st_mode) && unlinkat(dirfd, name, 0) == 0) (*removed)++;
    return 0;
}

spartan_status spartan_cache_clear(const spartan_context_opts *opts, size_t *removed) {
    size_t n = 0;
    if (removed) *removed = 0;
    char dir[1024];
    if (!sp_cache_dir_resolve(opts ? opts->cache_dir : NULL, dir, sizeof dir))
        return sp_err_set(sp_thread_err(), SPARTAN_STATUS_UNSUPPORTED, "the kernel cache is off");
    spartan_status st = walk(dir, remove_entry, &n);
    if (removed) *removed = n;
    return st;
}
