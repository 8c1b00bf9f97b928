/* What every file of a model's parameters shares (see model_file.h): the model's description,
 * the extra entries, the checksums, the sealed write and the checked open. */
#include "io/model_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "spartan/version.h"
#include "tensor/tensor_internal.h"

static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";

char *sp_mf_architecture(const spartan_model *m) {
    const size_t nl = spartan_model_layer_count(m);
    size_t cap = 64 + 256 * nl, at, h, w, c, classes;
    char *s = malloc(cap);
    if (!s) return NULL;
    spartan_model_shape(m, &h, &w, &c, &classes);
    at = (size_t)snprintf(s, cap, "input=%zux%zux%zu;classes=%zu", h, w, c, classes);
    for (size_t i = 0; i < nl && at < cap; i++) {
        spartan_layer_info li;
        if (spartan_model_layer_info(m, i, &li) != SPARTAN_OK) {
            free(s);
            return NULL;
        }
        char line[128], opts[128] = "";
        spartan_model_describe_layer(m, i, line, sizeof line);
        size_t o = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save))
            if (strchr(t, '=') && o < sizeof opts)
                o += (size_t)snprintf(opts + o, sizeof opts - o, "%c%s", o ? ',' : '(', t);
        if (o && o < sizeof opts) snprintf(opts + o, sizeof opts - o, ")");
        at += (size_t)snprintf(s + at, cap - at, ";%s:%s%s:%zux%zux%zu->%zux%zux%zu", li.name,
                               li.kind, opts, li.in_h, li.in_w, li.in_c, li.out_h, li.out_w,
                               li.out_c);
    }
    if (at >= cap) {
        free(s);
        return NULL;
    }
    return s;
}

/* ---- Metadata ---------------------------------------------------------------------------------
 */

/* Extra entry i is acceptable: a key, a value, not one of the n file's own entries before it in
 * e, not an earlier extra entry. */
static spartan_status check_extra(spartan_context *ctx, const char *fn, const sp_st_meta *e,
                                  size_t n, const spartan_checkpoint_meta *extra, size_t i) {
    const char *k = extra[i].key;
    if (!k || !*k || !extra[i].value)
        return sp_invalid(ctx, "%s: extra entry %zu has no key or value", fn, i);
    for (size_t j = 0; j < n; j++)
        if (!strcmp(k, e[j].key)) return sp_invalid(ctx, "%s: \"%s\" is a reserved key", fn, k);
    for (size_t j = 0; j < i; j++)
        if (!strcmp(k, extra[j].key)) return sp_invalid(ctx, "%s: extra key \"%s\" twice", fn, k);
    return SPARTAN_OK;
}

spartan_status sp_mf_meta_make(const spartan_model *m, const char *fn, const char *format,
                               const sp_st_meta *own, size_t n_own,
                               const spartan_checkpoint_meta *extra, size_t n_extra,
                               sp_mf_meta *out) {
    spartan_context *ctx = spartan_model_context(m);
    memset(out, 0, sizeof *out);
    if (n_extra && !extra) return sp_invalid(ctx, "%s: NULL extra metadata", fn);
    const size_t dlen = spartan_model_describe(m, NULL, 0);
    out->architecture = sp_mf_architecture(m);
    out->description = malloc(dlen + 1);
    out->e = malloc((6 + n_own + n_extra) * sizeof *out->e);
    if (!out->architecture || !out->description || !out->e) {
        sp_mf_meta_free(out);
        return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "%s: metadata", fn);
    }
    spartan_model_describe(m, out->description, dlen + 1);
    snprintf(out->writer, sizeof out->writer, "spartan %s", spartan_version_string());
    memcpy(out->sum, zeros, sizeof zeros);
    memcpy(out->header_sum, zeros, sizeof zeros);
    sp_st_meta *e = out->e;
    size_t n = 0;
    e[n++] = (sp_st_meta){"format", format};
    e[n++] = (sp_st_meta){"architecture", out->architecture};
    e[n++] = (sp_st_meta){"description", out->description};
    for (size_t i = 0; i < n_own; i++) e[n++] = own[i];
    e[n++] = (sp_st_meta){"writer", out->writer};
    e[n++] = (sp_st_meta){"sha256", out->sum};
    e[n++] = (sp_st_meta){"header_sha256", out->header_sum};
    const size_t n_file = n;
    for (size_t i = 0; i < n_extra; i++) {
        spartan_status st = check_extra(ctx, fn, e, n_file, extra, i);
        if (st != SPARTAN_OK) {
            sp_mf_meta_free(out);
            return st;
        }
        e[n++] = (sp_st_meta){extra[i].key, extra[i].value};
    }
    out->n = n;
    return SPARTAN_OK;
}

void sp_mf_meta_free(sp_mf_meta *meta) {
    free(meta->e);
    free(meta->architecture);
    free(meta->description);
    memset(meta, 0, sizeof *meta);
}

/* ---- Checksums --------------------------------------------------------------------------------
 */

static const char header_key[] = "\"header_sha256\":\"";

/* Where the 64 hex digits of header_sha256 start in the header bytes (SIZE_MAX: absent). A
 * metadata value cannot contain the key with its unescaped quotes, so the match is unique. */
static size_t header_sum_at(const unsigned char *h, size_t len) {
    const size_t k = sizeof header_key - 1;
    for (size_t i = 0; i + k + 64 <= len; i++)
        if (!memcmp(h + i, header_key, k)) return i + k;
    return SIZE_MAX;
}

/* The header's digest with the 64 digits at `at` counted as zeros. */
static void header_digest(const unsigned char *h, size_t len, size_t at, char hex[65]) {
    sp_sha256_ctx c;
    uint8_t d[SP_SHA256_SIZE];
    sp_sha256_init(&c);
    sp_sha256_update(&c, h, at);
    sp_sha256_update(&c, zeros, 64);
    sp_sha256_update(&c, h + at + 64, len - at - 64);
    sp_sha256_final(&c, d);
    sp_sha256_hex(d, hex);
}

spartan_status sp_mf_write(const char *path, const sp_st_tensor *t, size_t n, sp_mf_meta *meta,
                           size_t *bytes, sp_err *err) {
    sp_sha256_ctx c;
    uint8_t d[SP_SHA256_SIZE];
    size_t data = 0;
    sp_sha256_init(&c);
    for (size_t i = 0; i < n; i++) {
        sp_sha256_update(&c, t[i].data, t[i].bytes);
        data += t[i].bytes;
    }
    sp_sha256_final(&c, d);
    sp_sha256_hex(d, meta->sum);
    memcpy(meta->header_sum, zeros, sizeof zeros);

    unsigned char *header = NULL;
    size_t hlen;
    spartan_status st = sp_st_encode_header(t, n, meta->e, meta->n, &header, &hlen, err);
    if (st != SPARTAN_OK) return st;
    const size_t at = header_sum_at(header, hlen);
    if (at == SIZE_MAX) {
        free(header);
        return sp_err_set(err, SPARTAN_STATUS_INTERNAL, "%s: header_sha256 missing from the header",
                          path);
    }
    header_digest(header, hlen, at, meta->header_sum);
    memcpy(header + at, meta->header_sum, 64);
    st = sp_st_write(path, header, hlen, t, n, err);
    free(header);
    if (st == SPARTAN_OK && bytes) *bytes = hlen + data;
    return st;
}

#define BAD(...) sp_err_set(err, SPARTAN_STATUS_BAD_FORMAT, __VA_ARGS__)

spartan_status sp_mf_open(const char *path, size_t max, const char *format, const char *what,
                          sp_st_file *f, sp_err *err) {
    spartan_status st = sp_st_read(path, max, f, err);
    if (st != SPARTAN_OK) return st;
    const char *want = sp_st_meta_get(f, "header_sha256");
    char got[65];
    size_t at = header_sum_at(f->buf, f->header_end);
    if (!want || at == SIZE_MAX)
        st = BAD("%s: not a Spartan %s, or its header is corrupt (no header_sha256 in the "
                 "metadata)",
                 path, what);
    else if (header_digest(f->buf, f->header_end, at, got), strcmp(want, got) != 0)
        st = BAD("%s: the header's checksum does not match (stored %s, computed %s): the header is "
                 "corrupt",
                 path, want, got);
    const char *fmt = sp_st_meta_get(f, "format"), *sum = sp_st_meta_get(f, "sha256");
    if (st == SPARTAN_OK && (!fmt || strcmp(fmt, format) != 0))
        st = BAD("%s: format \"%s\", expected \"%s\"", path, fmt ? fmt : "(none)", format);
    if (st == SPARTAN_OK) {
        uint8_t d[SP_SHA256_SIZE];
        sp_sha256(f->buf + f->header_end, f->len - f->header_end, d);
        sp_sha256_hex(d, got);
        if (!sum || strcmp(sum, got) != 0)
            st = BAD("%s: the data's checksum does not match (stored %s, computed %s): the "
                     "tensor data are corrupt",
                     path, sum ? sum : "(none)", got);
    }
    if (st != SPARTAN_OK) sp_st_free(f);
    return st;
}
