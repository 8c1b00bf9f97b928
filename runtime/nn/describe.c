/* Models from a description: one layer a line, as docs/models.md describes.
 *
 *     # comment
 *     input 28x28x1
 *     conv 32 k=3 s=1 p=1
 *     relu
 *     maxpool k=2 s=2
 *     dropout p=0.5
 *     flatten
 *     fc 10
 *
 * The text is parsed whole before a model is made: the last layer, a fully connected one, gives
 * the class count, and a malformed line is refused with its number and nothing is built. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/number.h"
#include "nn/nn_internal.h"

#define DESC_MAX_BYTES  (1u << 20) /* a description is a few lines; this is far past any */
#define DESC_MAX_TOKENS 8
#define DESC_MAX_SIZE   (1u << 24) /* any size or count in a description */

typedef enum { D_CONV, D_RELU, D_MAXPOOL, D_DROPOUT, D_FLATTEN, D_FC } desc_kind;

typedef struct desc_layer {
    desc_kind kind;
    size_t n, k, s, p; /* outputs; kernel, stride, padding */
    float rate;        /* dropout */
    int line;
} desc_layer;

typedef struct desc {
    size_t in[3]; /* h, w, c */
    desc_layer *layers;
    size_t count, cap;
    int oom;   /* the fault is the host's memory, not the text */
    char *why; /* the first fault, with its line */
    size_t why_len;
} desc;

static int fail(desc *d, int line, const char *fmt, ...) SP_PRINTF(3, 4);
static int fail(desc *d, int line, const char *fmt, ...) {
    char msg[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(d->why, d->why_len, "line %d: %s", line, msg);
    return 1;
}

static int size_of(const char *text, size_t *out) {
    uint64_t v;
    if (!sp_parse_u64(text, DESC_MAX_SIZE, &v) || v == 0) return 0;
    *out = (size_t)v;
    return 1;
}

/* "key=value" options of a layer: each key at most once, each in the kind's list. */
static int options(desc *d, int line, char **tok, int ntok, const char *keys, desc_layer *L) {
    int seen[4] = {0};
    for (int i = 0; i < ntok; i++) {
        char *eq = strchr(tok[i], '=');
        if (!eq || eq == tok[i] || eq[1] == '\0')
            return fail(d, line, "\"%s\" is not key=value", tok[i]);
        *eq = '\0';
        const char *key = tok[i], *val = eq + 1;
        const char *at = strlen(key) == 1 ? strchr(keys, key[0]) : NULL;
        if (!at) return fail(d, line, "unknown option \"%s\" (this layer takes: %s)", key, keys);
        int slot = (int)(at - keys);
        if (seen[slot]++) return fail(d, line, "option \"%s\" given twice", key);
        if (key[0] == 'p' && L->kind == D_DROPOUT) {
            char *end;
            errno = 0;
            double r = strtod(val, &end);
            if (errno || *end || end == val || !(r >= 0.0 && r < 1.0))
                return fail(d, line, "dropout p=%s: want a number in [0, 1)", val);
            L->rate = (float)r;
            continue;
        }
        uint64_t v;
        int zero_ok = key[0] == 'p';
        if (!sp_parse_u64(val, DESC_MAX_SIZE, &v) || (!zero_ok && v == 0))
            return fail(d, line, "%s=%s: want a whole number, at least 1 (at least 0 for p)", key,
                        val);
        if (key[0] == 'k') L->k = (size_t)v;
        if (key[0] == 's') L->s = (size_t)v;
        if (key[0] == 'p') L->p = (size_t)v;
    }
    return 0;
}

static int parse_layer(desc *d, int line, char **tok, int ntok, desc_layer *L) {
    const char *name = tok[0];
    memset(L, 0, sizeof *L);
    if (strcmp(name, "conv") == 0 || strcmp(name, "fc") == 0) {
        L->kind = name[0] == 'c' ? D_CONV : D_FC;
        if (ntok < 2 || !size_of(tok[1], &L->n))
            return fail(d, line, "%s: the first value is the output count, a whole number >= 1",
                        name);
        if (L->kind == D_FC) {
            if (ntok > 2) return fail(d, line, "fc takes one value, the output count");
            return 0;
        }
        L->s = 1;
        if (options(d, line, tok + 2, ntok - 2, "ksp", L)) return 1;
        if (!L->k) return fail(d, line, "conv needs its kernel size: k=N");
        return 0;
    }
    if (strcmp(name, "maxpool") == 0) {
        L->kind = D_MAXPOOL;
        if (options(d, line, tok + 1, ntok - 1, "ks", L)) return 1;
        if (!L->k) return fail(d, line, "maxpool needs its window: k=N");
        if (!L->s) L->s = L->k;
        return 0;
    }
    if (strcmp(name, "dropout") == 0) {
        L->kind = D_DROPOUT;
        L->rate = 0.5f;
        return options(d, line, tok + 1, ntok - 1, "p", L);
    }
    if (strcmp(name, "relu") == 0 || strcmp(name, "flatten") == 0) {
        L->kind = name[0] == 'r' ? D_RELU : D_FLATTEN;
        if (ntok > 1) return fail(d, line, "%s takes no options", name);
        return 0;
    }
    return fail(d, line,
                "unknown layer \"%s\" (known: input, conv, relu, maxpool, dropout, flatten, fc)",
                name);
}

/* "input HxWxC": exactly two 'x', around three numbers >= 1. */
static int parse_input(desc *d, int line, char **tok, int ntok) {
    if (ntok != 2) return fail(d, line, "input takes one value, HxWxC (e.g. 28x28x1)");
    const char *text = tok[1];
    char *x1 = strchr(text, 'x'), *x2 = x1 ? strchr(x1 + 1, 'x') : NULL;
    if (!x2 || strchr(x2 + 1, 'x'))
        return fail(d, line, "input %s: want HxWxC (e.g. 28x28x1)", text);
    char part[3][32];
    const char *from[3] = {text, x1 + 1, x2 + 1}, *to[3] = {x1, x2, text + strlen(text)};
    for (int i = 0; i < 3; i++) {
        size_t n = (size_t)(to[i] - from[i]);
        if (n >= sizeof part[i]) n = sizeof part[i] - 1; /* too long to be a size anyway */
        memcpy(part[i], from[i], n);
        part[i][n] = '\0';
        if (!size_of(part[i], &d->in[i]))
            return fail(d, line, "input %s: \"%s\" is not a whole number >= 1", text, part[i]);
    }
    return 0;
}

static int parse(desc *d, char *text) {
    int line = 0, have_input = 0;
    char *save = NULL;
    /* strtok_r would merge empty lines and miscount them: walk the lines by hand */
    for (char *cur = text; cur;) {
        char *nl = strchr(cur, '\n');
        if (nl) *nl = '\0';
        line++;
        char *hash = strchr(cur, '#');
        if (hash) *hash = '\0';
        char *tok[DESC_MAX_TOKENS];
        int ntok = 0;
        for (char *t = strtok_r(cur, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
            if (ntok == DESC_MAX_TOKENS) return fail(d, line, "too many values");
            tok[ntok++] = t;
        }
        cur = nl ? nl + 1 : NULL;
        if (ntok == 0) continue;
        if (strcmp(tok[0], "input") == 0) {
            if (have_input) return fail(d, line, "a second input line");
            if (d->count) return fail(d, line, "input must come before the first layer");
            if (parse_input(d, line, tok, ntok)) return 1;
            have_input = 1;
            continue;
        }
        if (!have_input)
            return fail(d, line, "the first line must be input HxWxC, not \"%s\"", tok[0]);
        if (d->count == d->cap) {
            size_t cap = d->cap ? 2 * d->cap : 16;
            desc_layer *grown = realloc(d->layers, cap * sizeof *grown);
            if (!grown) {
                d->oom = 1;
                return fail(d, line, "out of host memory");
            }
            d->layers = grown;
            d->cap = cap;
        }
        if (parse_layer(d, line, tok, ntok, &d->layers[d->count])) return 1;
        d->layers[d->count].line = line;
        d->count++;
    }
    if (!have_input) return fail(d, line, "no input line (input HxWxC)");
    if (!d->count || d->layers[d->count - 1].kind != D_FC)
        return fail(d, line, "the last layer must be fc N (N: the class count)");
    return 0;
}

static spartan_status build(spartan_context *ctx, const desc *d, spartan_model **out) {
    spartan_model *m = NULL;
    spartan_status st =
        spartan_model_create(ctx, d->in[0], d->in[1], d->in[2], d->layers[d->count - 1].n, &m);
    size_t i_failed = 0; /* 1 + the layer that was refused */
    for (size_t i = 0; st == SPARTAN_OK && i < d->count; i++) {
        const desc_layer *L = &d->layers[i];
        i_failed = i + 1;
        switch (L->kind) {
        case D_CONV:
            st = spartan_model_add_conv(m, L->n, L->k, L->s, L->p);
            break;
        case D_RELU:
            st = spartan_model_add_relu(m);
            break;
        case D_MAXPOOL:
            st = spartan_model_add_maxpool(m, L->k, L->s);
            break;
        case D_DROPOUT:
            st = spartan_model_add_dropout(m, L->rate);
            break;
        case D_FLATTEN:
            st = spartan_model_add_flatten(m);
            break;
        case D_FC:
            st = spartan_model_add_fc(m, L->n);
            break;
        }
    }
    if (st != SPARTAN_OK) {
        spartan_model_destroy(m);
        if (st == SPARTAN_STATUS_INVALID_ARGUMENT && i_failed > 0) {
            char msg[512]; /* the layer's own refusal (a shape that does not fit), with its line */
            snprintf(msg, sizeof msg, "%s", spartan_last_error(ctx));
            sp_invalid(ctx, "model description: line %d: %s", d->layers[i_failed - 1].line, msg);
        }
        return st;
    }
    *out = m;
    return SPARTAN_OK;
}

spartan_status spartan_model_create_from_text(spartan_context *ctx, const char *text,
                                              spartan_model **out) {
    if (out) *out = NULL;
    if (!ctx || !text || !out)
        return sp_invalid(ctx, "spartan_model_create_from_text: NULL argument");
    size_t len = strlen(text);
    if (len > DESC_MAX_BYTES)
        return sp_invalid(ctx, "spartan_model_create_from_text: %zu bytes, more than %u", len,
                          DESC_MAX_BYTES);
    char *copy = malloc(len + 1), why[256] = "";
    if (!copy) return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "description");
    memcpy(copy, text, len + 1);
    desc d = {.why = why, .why_len = sizeof why};
    spartan_status st = !parse(&d, copy) ? build(ctx, &d, out)
                        : d.oom          ? sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY,
                                                      "model description: %s", why)
                                         : sp_invalid(ctx, "model description: %s", why);
    free(d.layers);
    free(copy);
    return st;
}

spartan_status spartan_model_create_from_file(spartan_context *ctx, const char *path,
                                              spartan_model **out) {
    if (out) *out = NULL;
    if (!ctx || !path || !out)
        return sp_invalid(ctx, "spartan_model_create_from_file: NULL argument");
    unsigned char *data = NULL;
    size_t len = 0;
    spartan_status st = sp_read_file(path, DESC_MAX_BYTES, &data, &len, &ctx->err);
    if (st != SPARTAN_OK) return st;
    if (memchr(data, '\0', len)) {
        free(data);
        return sp_invalid(ctx, "model description %s: a NUL byte (not a text file)", path);
    }
    st = spartan_model_create_from_text(ctx, (const char *)data, out);
    free(data);
    if (st == SPARTAN_STATUS_INVALID_ARGUMENT) {
        char msg[512]; /* the file's name before the line number */
        snprintf(msg, sizeof msg, "%s", spartan_last_error(ctx));
        sp_invalid(ctx, "%s: %s", path, msg);
    }
    return st;
}

size_t spartan_model_describe(const spartan_model *m, char *buf, size_t size) {
    char line[128];
    size_t at = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int k_ = snprintf(line, sizeof line, __VA_ARGS__);                                         \
        size_t n_ = k_ > 0 ? (size_t)k_ : 0;                                                       \
        if (at < size) memcpy(buf + at, line, at + n_ < size ? n_ : size - at);                    \
        at += n_;                                                                                  \
    } while (0)
    if (!m) {
        if (buf && size) buf[0] = '\0';
        return 0;
    }
    if (!buf) size = 0;
    PUT("input %zux%zux%zu\n", m->in_h, m->in_w, m->in_c);
    for (size_t i = 0; i < m->nlayers; i++) {
        const sp_layer *L = &m->layers[i];
        switch (L->kind) {
        case SP_CONV:
            PUT("conv %zu k=%zu s=%zu p=%zu\n", L->out_c, L->kernel, L->stride, L->pad);
            break;
        case SP_FC:
            PUT("fc %zu\n", L->out_c);
            break;
        case SP_RELU:
            PUT("relu\n");
            break;
        case SP_MAXPOOL:
            PUT("maxpool k=%zu s=%zu\n", L->kernel, L->stride);
            break;
        case SP_DROPOUT:
            PUT("dropout p=%.9g\n", (double)L->p);
            break;
        case SP_FLATTEN:
            PUT("flatten\n");
            break;
        }
    }
#undef PUT
    if (size) buf[at < size ? at : size - 1] = '\0';
    return at;
}
