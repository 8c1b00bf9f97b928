/* Assembles the source text of a kernel family (see sources.h). */
#include "program/sources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"

/* The largest kernel source read from SPARTAN_KERNEL_DIR (the largest file is about 20 KB). */
#define SOURCE_MAX ((size_t)4 << 20)

/* *view points at the text; *owned is the buffer to free (NULL for embedded text). */
static spartan_status load(const sp_embedded_source *src, const char *dir,
                           const unsigned char **view, size_t *len, unsigned char **owned,
                           sp_err *err) {
    *owned = NULL;
    if (!dir) {
        *view = src->data;
        *len = *src->size;
        return SPARTAN_OK;
    }
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, src->file) >= (int)sizeof path)
        return sp_err_set(err, SPARTAN_STATUS_KERNEL_SOURCE, "kernel path too long: %s", dir);
    spartan_status st = sp_read_file(path, SOURCE_MAX, owned, len, err);
    if (st != SPARTAN_OK) {
        err->status = SPARTAN_STATUS_KERNEL_SOURCE;
        sp_err_append(err, " (kernel sources are read from %s: SPARTAN_KERNEL_DIR)", dir);
        return SPARTAN_STATUS_KERNEL_SOURCE;
    }
    *view = *owned;
    return SPARTAN_OK;
}

spartan_status sp_source_assemble(size_t family, const char *kernel_dir, char **text, size_t *len,
                                  sp_err *err) {
    *text = NULL;
    *len = 0;
    if (family >= sp_cl_family_count)
        return sp_err_set(err, SPARTAN_STATUS_INTERNAL, "no kernel family %zu", family);
    const sp_embedded_source *fam = &sp_cl_families[family];
    const unsigned char *common = NULL, *body = NULL;
    unsigned char *common_owned = NULL, *body_owned = NULL;
    size_t common_len = 0, body_len = 0;
    spartan_status st =
        load(&sp_cl_common_source, kernel_dir, &common, &common_len, &common_owned, err);
    if (st == SPARTAN_OK) st = load(fam, kernel_dir, &body, &body_len, &body_owned, err);
    if (st == SPARTAN_OK) {
        char head1[128], head2[128];
        int n1 = snprintf(head1, sizeof head1, "#line 1 \"%s\"\n", sp_cl_common_source.file);
        int n2 = snprintf(head2, sizeof head2, "\n#line 1 \"%s\"\n", fam->file);
        size_t total = (size_t)n1 + common_len + (size_t)n2 + body_len;
        char *out = malloc(total + 1);
        if (!out) {
            st = sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "assembling %s", fam->file);
        } else {
            char *p = out;
            memcpy(p, head1, (size_t)n1);
            p += n1;
            memcpy(p, common, common_len);
            p += common_len;
            memcpy(p, head2, (size_t)n2);
            p += n2;
            memcpy(p, body, body_len);
            p += body_len;
            *p = '\0';
            *text = out;
            *len = total;
        }
    }
    free(common_owned);
    free(body_owned);
    return st;
}
