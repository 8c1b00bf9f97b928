/* Listing and clearing the kernel binary cache (spartan-info --cache, tests, users). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "program/bincache.h"
#include "spartan/device.h"

typedef int (*visit_fn)(const char *path, const char *name, void *user);

/* Calls fn for every regular file in the two-level layout <dir>/<xx>/<file>. */
static spartan_status walk(const char *dir, visit_fn fn, void *user) {
    DIR *top = opendir(dir);
    if (!top) return SPARTAN_OK; /* no directory yet: nothing cached */
    spartan_status st = SPARTAN_OK;
    struct dirent *e;
    while (st == SPARTAN_OK && (e = readdir(top)) != NULL) {
        if (strlen(e->d_name) != 2 || e->d_name[0] == '.') continue;
        char sub[1200];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        DIR *d = opendir(sub);
        if (!d) continue;
        struct dirent *f;
        while (st == SPARTAN_OK && (f = readdir(d)) != NULL) {
            if (f->d_name[0] == '.') continue;
            char path[1200];
            if (snprintf(path, sizeof path, "%s/%s", sub, f->d_name) >= (int)sizeof path) continue;
            if (fn(path, f->d_name, user) != 0)
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

static int add_entry(const char *path, const char *name, void *user) {
    list_state *s = user;
    (void)name;
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
    struct stat sb;
    if (stat(path, &sb) == 0) {
        e->bytes = (uint64_t)sb.st_size;
        e->mtime = (int64_t)sb.st_mtime;
    }
    unsigned char *data;
    size_t len;
    sp_err err = {0};
    if (sp_read_file(path, SP_BINCACHE_MAX_ENTRY, &data, &len, &err) != SPARTAN_OK) {
        snprintf(e->problem, sizeof e->problem, "unreadable");
    } else {
        const char *bad = sp_bincache_parse(data, len, NULL, e->label, sizeof e->label, NULL, NULL);
        e->valid = bad == NULL;
        snprintf(e->problem, sizeof e->problem, "%s", bad ? bad : "");
        free(data);
    }
    sp_err_free(&err);
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

static int remove_entry(const char *path, const char *name, void *user) {
    size_t *removed = user;
    size_t n = strlen(name);
    int ours = (n > 4 && strcmp(name + n - 4, ".bin") == 0) || strstr(name, ".bin.tmp.") != NULL;
    if (ours && unlink(path) == 0) (*removed)++;
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
