/* The safetensors reader and writer (see safetensors.h). Reading checks the structure only;
 * which tensors and metadata a file must hold is the caller's business. */
#include "io/safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fsutil.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
#define SP_ST_X_(name, size) {#name, size},
    SP_ST_DTYPE_MAP(SP_ST_X_)
#undef SP_ST_X_
};

const char *sp_st_dtype_name(sp_st_dtype t) {
    return t < SP_ST_DTYPE_COUNT ? dtypes[t].name : "?";
}

size_t sp_st_dtype_size(sp_st_dtype t) {
    return t < SP_ST_DTYPE_COUNT ? dtypes[t].size : 0;
}

/* ---- Little-endian helpers --------------------------------------------------------------------
 */

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

uint32_t sp_st_le32_get(const unsigned char *le) {
    return (uint32_t)le[0] | (uint32_t)le[1] << 8 | (uint32_t)le[2] << 16 | (uint32_t)le[3] << 24;
}

void sp_st_le32_put(uint32_t v, unsigned char *le) {
    for (int b = 0; b < 4; b++) le[b] = (unsigned char)(v >> (8 * b));
}

void sp_st_f32_load(const unsigned char *le, size_t count, float *out) {
    for (size_t i = 0; i < count; i++, le += 4) {
        uint32_t u = sp_st_le32_get(le);
        memcpy(&out[i], &u, 4);
    }
}

void sp_st_f32_store(const float *in, size_t count, unsigned char *le) {
    for (size_t i = 0; i < count; i++, le += 4) {
        uint32_t u;
        memcpy(&u, &in[i], 4);
        sp_st_le32_put(u, le);
    }
}

/* ---- Reading ----------------------------------------------------------------------------------
 */

/* A JSON number that is a non-negative integer a double holds exactly. */
static int json_size(const cJSON *j, size_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0.0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return 0;
    if ((uint64_t)d > SIZE_MAX) return 0;
    *out = (size_t)d;
    return 1;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const sp_st_tensor *)a)->name, ((const sp_st_tensor *)b)->name);
}

/* Sorting key for the data-section order: begin, then end (empty tensors first). */
typedef struct span {
    size_t begin, end, index;
} span;

static int by_offset(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

#define BAD(...) sp_err_set(err, SPARTAN_STATUS_BAD_FORMAT, __VA_ARGS__)

/* One tensor entry of the header into *t and its byte range. */
static spartan_status parse_entry(const char *path, const cJSON *e, sp_st_tensor *t, span *sp,
                                  sp_err *err) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return BAD("%s: tensor \"%s\" is not a JSON object", path, name);
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL, *f;
    cJSON_ArrayForEach(f, e) {
        const cJSON **slot = !strcmp(f->string, "dtype")          ? &dtype
                             : !strcmp(f->string, "shape")        ? &shape
                             : !strcmp(f->string, "data_offsets") ? &offs
                                                                  : NULL;
        if (!slot)
            return BAD("%s: tensor \"%s\" has an unknown field \"%s\"", path, name, f->string);
        if (*slot) return BAD("%s: tensor \"%s\" has \"%s\" twice", path, name, f->string);
        *slot = f;
    }
    if (!dtype || !shape || !offs)
        return BAD("%s: tensor \"%s\" lacks \"%s\"", path, name,
                   !dtype   ? "dtype"
                   : !shape ? "shape"
                            : "data_offsets");
    t->name = name;
    t->dtype = SP_ST_DTYPE_COUNT;
    for (int i = 0; i < SP_ST_DTYPE_COUNT && cJSON_IsString(dtype); i++)
        if (!strcmp(dtype->valuestring, dtypes[i].name)) t->dtype = (sp_st_dtype)i;
    if (t->dtype == SP_ST_DTYPE_COUNT)
        return BAD("%s: tensor \"%s\": unknown dtype %s", path, name,
                   cJSON_IsString(dtype) ? dtype->valuestring : "(not a string)");
    int rank = cJSON_IsArray(shape) ? cJSON_GetArraySize(shape) : -1;
    if (rank < 0 || rank > SP_ST_MAX_RANK)
        return BAD("%s: tensor \"%s\": the shape is not an array of at most %d dimensions", path,
                   name, SP_ST_MAX_RANK);
    t->rank = rank;
    size_t bytes = sp_st_dtype_size(t->dtype);
    for (int i = 0; i < rank; i++) {
        size_t d;
        if (!json_size(cJSON_GetArrayItem(shape, i), &d))
            return BAD("%s: tensor \"%s\": dimension %d is not a non-negative integer", path, name,
                       i);
        if (d && bytes > SIZE_MAX / d)
            return BAD("%s: tensor \"%s\": the shape's size overflows", path, name);
        t->shape[i] = d;
        bytes *= d;
    }
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_size(cJSON_GetArrayItem(offs, 0), &sp->begin) ||
        !json_size(cJSON_GetArrayItem(offs, 1), &sp->end) || sp->begin > sp->end)
        return BAD("%s: tensor \"%s\": data_offsets is not [begin, end] with 0 <= begin <= end",
                   path, name);
    if (sp->end - sp->begin != bytes)
        return BAD("%s: tensor \"%s\": data_offsets [%zu, %zu] hold %zu bytes, the shape and "
                   "dtype need %zu",
                   path, name, sp->begin, sp->end, sp->end - sp->begin, bytes);
    t->bytes = bytes;
    return SPARTAN_OK;
}

static spartan_status parse_metadata(const char *path, const cJSON *e, sp_st_file *f, sp_err *err) {
    if (!cJSON_IsObject(e)) return BAD("%s: __metadata__ is not a JSON object", path);
    size_t n = (size_t)cJSON_GetArraySize(e);
    f->meta = calloc(n ? n : 1, sizeof *f->meta);
    if (!f->meta) return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "%s: metadata", path);
    const cJSON *v;
    cJSON_ArrayForEach(v, e) {
        if (!cJSON_IsString(v)) return BAD("%s: metadata \"%s\" is not a string", path, v->string);
        for (size_t i = 0; i < f->nmeta; i++)
            if (!strcmp(f->meta[i].key, v->string))
                return BAD("%s: metadata \"%s\" appears twice", path, v->string);
        f->meta[f->nmeta++] = (sp_st_meta){v->string, v->valuestring};
    }
    return SPARTAN_OK;
}

/* The header: f->buf and f->len are set. */
static spartan_status parse(const char *path, sp_st_file *f, sp_err *err) {
    if (f->len < 8)
        return BAD("%s: %zu bytes, shorter than the 8-byte header length", path, f->len);
    const uint64_t n = le64(f->buf);
    if (n > SP_ST_MAX_HEADER)
        return BAD("%s: header length %llu is above the limit of %zu bytes (a corrupt length)",
                   path, (unsigned long long)n, SP_ST_MAX_HEADER);
    if (n > f->len - 8)
        return BAD("%s: truncated: the header length is %llu bytes, the file has %zu after it",
                   path, (unsigned long long)n, f->len - 8);
    const char *text = (const char *)f->buf + 8, *end = NULL;
    if (n < 2 || text[0] != '{') return BAD("%s: the header does not start with '{'", path);
    f->header_end = 8 + (size_t)n;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)n, &end, 0);
    if (!root)
        return BAD("%s: the header is not valid JSON (at byte %zu of %llu)", path,
                   end ? (size_t)(end - text) : 0, (unsigned long long)n);
    f->json = root;
    for (const char *p = end; p < text + n; p++)
        if (*p != ' ')
            return BAD("%s: byte %zu of the header, after the JSON, is not space padding", path,
                       (size_t)(p - text));
    if (!cJSON_IsObject(root)) return BAD("%s: the header is not a JSON object", path);

    size_t entries = (size_t)cJSON_GetArraySize(root);
    f->tensors = calloc(entries ? entries : 1, sizeof *f->tensors);
    span *spans = calloc(entries ? entries : 1, sizeof *spans);
    if (!f->tensors || !spans) {
        free(spans);
        return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "%s: header", path);
    }
    spartan_status st = SPARTAN_OK;
    const cJSON *e;
    int seen_meta = 0;
    cJSON_ArrayForEach(e, root) {
        if (!strcmp(e->string, "__metadata__")) {
            st = seen_meta++ ? BAD("%s: __metadata__ appears twice", path)
                             : parse_metadata(path, e, f, err);
        } else {
            spans[f->ntensors].index = f->ntensors;
            st = parse_entry(path, e, &f->tensors[f->ntensors], &spans[f->ntensors], err);
            f->ntensors++;
        }
        if (st != SPARTAN_OK) break;
    }
    const size_t data_len = f->len - f->header_end;
    /* Names unique: sort a copy by name. */
    sp_st_tensor *sorted = st == SPARTAN_OK ? malloc((f->ntensors + 1) * sizeof *sorted) : NULL;
    if (st == SPARTAN_OK && !sorted)
        st = sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "%s: header", path);
    if (st == SPARTAN_OK) {
        memcpy(sorted, f->tensors, f->ntensors * sizeof *sorted);
        qsort(sorted, f->ntensors, sizeof *sorted, by_name);
        for (size_t i = 1; i < f->ntensors && st == SPARTAN_OK; i++)
            if (!strcmp(sorted[i - 1].name, sorted[i].name))
                st = BAD("%s: tensor \"%s\" appears twice", path, sorted[i].name);
    }
    /* Byte ranges: in order they must tile [0, data_len) exactly. */
    if (st == SPARTAN_OK) {
        qsort(spans, f->ntensors, sizeof *spans, by_offset);
        size_t at = 0;
        for (size_t i = 0; i < f->ntensors && st == SPARTAN_OK; i++) {
            const span *s = &spans[i];
            const char *name = f->tensors[s->index].name;
            if (s->end > data_len)
                st = BAD("%s: truncated: tensor \"%s\" ends at byte %zu of the data, which has %zu",
                         path, name, s->end, data_len);
            else if (s->begin > at)
                st = BAD("%s: bytes %zu to %zu of the data belong to no tensor (before \"%s\")",
                         path, at, s->begin - 1, name);
            else if (s->begin < at)
                st = BAD("%s: tensor \"%s\" overlaps \"%s\" (bytes %zu to %zu of the data)", path,
                         name, f->tensors[spans[i - 1].index].name, s->begin, at - 1);
            at = s->end;
        }
        if (st == SPARTAN_OK && at != data_len)
            st = BAD("%s: %zu bytes after the last tensor's data", path, data_len - at);
    }
    /* The tensors in data-section order, pointing into the file. */
    if (st == SPARTAN_OK) {
        memcpy(sorted, f->tensors, f->ntensors * sizeof *sorted);
        for (size_t i = 0; i < f->ntensors; i++) {
            f->tensors[i] = sorted[spans[i].index];
            f->tensors[i].data = f->buf + f->header_end + spans[i].begin;
        }
    }
    free(sorted);
    free(spans);
    return st;
}

spartan_status sp_st_read(const char *path, size_t max, sp_st_file *out, sp_err *err) {
    memset(out, 0, sizeof *out);
    sp_rfile r;
    spartan_status st = sp_rfile_open(&r, AT_FDCWD, path, path, 0, max, err);
    if (st != SPARTAN_OK) return st;
    out->len = r.size;
    out->buf = malloc(r.size ? r.size : 1);
    if (!out->buf) st = sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "reading %s", path);
    /* The length and the header first: the data are read only once the header is valid and its
     * byte ranges cover exactly the rest of the file. */
    if (st == SPARTAN_OK) st = sp_rfile_read(&r, out->buf, r.size < 8 ? r.size : 8, err);
    if (st == SPARTAN_OK && r.size >= 8) {
        const uint64_t n = le64(out->buf);
        if (n <= SP_ST_MAX_HEADER && n <= r.size - 8)
            st = sp_rfile_read(&r, out->buf + 8, (size_t)n, err);
    }
    if (st == SPARTAN_OK) st = parse(path, out, err);
    if (st == SPARTAN_OK)
        st = sp_rfile_read(&r, out->buf + out->header_end, r.size - out->header_end, err);
    if (st == SPARTAN_OK) st = sp_rfile_end(&r, err);
    sp_rfile_close(&r);
    if (st != SPARTAN_OK) sp_st_free(out);
    return st;
}

void sp_st_free(sp_st_file *f) {
    if (!f) return;
    cJSON_Delete(f->json);
    free(f->tensors);
    free(f->meta);
    free(f->buf);
    memset(f, 0, sizeof *f);
}

const sp_st_tensor *sp_st_find(const sp_st_file *f, const char *name) {
    for (size_t i = 0; i < f->ntensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *sp_st_meta_get(const sp_st_file *f, const char *key) {
    for (size_t i = 0; i < f->nmeta; i++)
        if (!strcmp(f->meta[i].key, key)) return f->meta[i].value;
    return NULL;
}

/* ---- Writing ----------------------------------------------------------------------------------
 */

spartan_status sp_st_encode_header(const sp_st_tensor *tensors, size_t n, const sp_st_meta *meta,
                                   size_t nmeta, unsigned char **out, size_t *len, sp_err *err) {
    *out = NULL;
    *len = 0;
    cJSON *root = cJSON_CreateObject(), *md = NULL;
    int ok = root != NULL;
    if (ok && nmeta) ok = (md = cJSON_AddObjectToObject(root, "__metadata__")) != NULL;
    for (size_t i = 0; ok && i < nmeta; i++)
        ok = cJSON_AddStringToObject(md, meta[i].key, meta[i].value) != NULL;
    size_t at = 0;
    for (size_t i = 0; ok && i < n; i++) {
        const sp_st_tensor *t = &tensors[i];
        cJSON *e = cJSON_AddObjectToObject(root, t->name), *shape, *offs;
        ok = e && cJSON_AddStringToObject(e, "dtype", sp_st_dtype_name(t->dtype)) &&
             (shape = cJSON_AddArrayToObject(e, "shape")) &&
             (offs = cJSON_AddArrayToObject(e, "data_offsets"));
        for (int d = 0; ok && d < t->rank; d++)
            ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)at)) &&
             cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(at + t->bytes)));
        at += t->bytes;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json) return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "safetensors header");
    size_t jlen = strlen(json), total = (8 + jlen + 7) / 8 * 8;
    unsigned char *h = malloc(total);
    if (!h) {
        free(json);
        return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "safetensors header");
    }
    const uint64_t hl = total - 8;
    for (int b = 0; b < 8; b++) h[b] = (unsigned char)(hl >> (8 * b));
    memcpy(h + 8, json, jlen);
    memset(h + 8 + jlen, ' ', total - 8 - jlen);
    free(json);
    *out = h;
    *len = total;
    return SPARTAN_OK;
}

spartan_status sp_st_write(const char *path, const unsigned char *header, size_t header_len,
                           const sp_st_tensor *tensors, size_t n, sp_err *err) {
    sp_buf_part *parts = malloc((n + 1) * sizeof *parts);
    if (!parts) return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "writing %s", path);
    parts[0] = (sp_buf_part){header, header_len};
    for (size_t i = 0; i < n; i++) parts[i + 1] = (sp_buf_part){tensors[i].data, tensors[i].bytes};
    spartan_status st =
        sp_write_file_atomic(path, parts, n + 1, SP_WRITE_DURABLE | SP_WRITE_SHARED, err);
    free(parts);
    return st;
}
