/* Models from a description: one layer a line, as docs/models.md describes.
 *
 *     # comment
 *     input 28x28x1
 *     conv 32 k=3 s=1 p=1
 *     relu
 *     maxpool k=2 s=2
 *     avgpool k=2 s=2
 *     globalavgpool
 *     dropout p=0.5
 *     flatten
 *     fc 10
 *
 * The text is parsed whole before a model is made: the last layer, a fully connected one, gives
 * the class count, and a malformed line is refused with its number and nothing is built. The
 * words and options are the layer kinds' own (sp_layer_ops: name, takes_outputs, keys): a new
 * kind needs nothing here. */
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

typedef struct desc_layer {
    spartan_layer_spec spec;
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
static int options(desc *d, int line, char **tok, int ntok, const sp_layer_ops *ops,
                   spartan_layer_spec *L) {
    const char *keys = ops->keys;
    int seen[8] = {0};
    for (int i = 0; i < ntok; i++) {
        char *eq = strchr(tok[i], '=');
        if (!eq || eq == tok[i] || eq[1] == '\0')
            return fail(d, line, "\"%s\" is not key=value", tok[i]);
        *eq = '\0';
        const char *key = tok[i], *val = eq + 1;
        const char *at = strlen(key) == 1 ? strchr(keys, key[0]) : NULL;
        if (!at) return fail(d, line, "unknown option \"%s\" (this layer takes: %s)", key, keys);
        if (seen[at - keys]++) return fail(d, line, "option \"%s\" given twice", key);
        if (key[0] == 'p' && ops->p_is_rate) {
            char *end;
            errno = 0;
            double r = strtod(val, &end);
            if (errno || *end || end == val || !(r >= 0.0 && r < 1.0))
                return fail(d, line, "%s p=%s: want a number in [0, 1)", ops->name, val);
            L->rate = (float)r;
            continue;
        }
        uint64_t v;
        int zero_ok = key[0] == 'p';
        if (!sp_parse_u64(val, DESC_MAX_SIZE, &v) || (!zero_ok && v == 0))
            return fail(d, line, "%s=%s: want a whole number, at least 1 (at least 0 for p)", key,
                        val);
        if (key[0] == 'k') L->kernel = (size_t)v;
        if (key[0] == 's') L->stride = (size_t)v;
        if (key[0] == 'p') L->pad = (size_t)v;
    }
    return 0;
}

static int parse_layer(desc *d, int line, char **tok, int ntok, spartan_layer_spec *L) {
    const char *name = tok[0];
    const sp_layer_ops *ops = NULL;
    for (int i = 0; i < SPARTAN_LAYER_KIND_COUNT && !ops; i++)
        if (strcmp(name, sp_layer_kinds[i]->name) == 0) {
            ops = sp_layer_kinds[i];
            *L = (spartan_layer_spec){.kind = (spartan_layer_kind)i, .rate = -1.0f};
        }
    if (!ops) {
        char known[256] = "input";
        for (int i = 0; i < SPARTAN_LAYER_KIND_COUNT; i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), ", %s",
                     sp_layer_kinds[i]->name);
        return fail(d, line, "unknown layer \"%s\" (known: %s)", name, known);
    }
    int first = 1;
    if (ops->takes_outputs) {
        if (ntok < 2 || !size_of(tok[1], &L->outputs))
            return fail(d, line, "%s: the first value is the output count, a whole number >= 1",
                        name);
        first = 2;
    }
    if (!ops->keys[0] && ntok > first)
        return fail(d, line,
                    ops->takes_outputs ? "%s takes one value, the output count"
                                       : "%s takes no options",
                    name);
    if (options(d, line, tok + first, ntok - first, ops, L)) return 1;
    if (strchr(ops->keys, 'k') && !L->kernel)
        return fail(d, line, "%s needs its %s: k=N", name,
                    ops->takes_outputs ? "kernel size" : "window");
    if (ops->defaults) ops->defaults(L);
    return 0;
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
        if (parse_layer(d, line, tok, ntok, &d->layers[d->count].spec)) return 1;
        d->layers[d->count].line = line;
        d->count++;
    }
    if (!have_input) return fail(d, line, "no input line (input HxWxC)");
    if (!d->count || d->layers[d->count - 1].spec.kind != SPARTAN_LAYER_FC)
        return fail(d, line, "the last layer must be fc N (N: the class count)");
    return 0;
}

static spartan_status build(spartan_context *ctx, const desc *d, spartan_model **out) {
    spartan_model *m = NULL;
    spartan_status st = spartan_model_create(ctx, d->in[0], d->in[1], d->in[2],
                                             d->layers[d->count - 1].spec.outputs, &m);
    size_t i_failed = 0; /* 1 + the layer that was refused */
    for (size_t i = 0; st == SPARTAN_OK && i < d->count; i++) {
        i_failed = i + 1;
        st = spartan_model_add(m, &d->layers[i].spec);
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

/* Appends printf output to buf (size bytes) at *at, counting what did not fit. */
static void put(char *buf, size_t size, size_t *at, const char *fmt, ...) SP_PRINTF(4, 5);
static void put(char *buf, size_t size, size_t *at, const char *fmt, ...) {
    char piece[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(piece, sizeof piece, fmt, ap);
    va_end(ap);
    size_t n = k > 0 ? (size_t)k : 0;
    if (*at < size) memcpy(buf + *at, piece, *at + n < size ? n : size - *at);
    *at += n;
}

/* Layer L's description line at *at (no newline). */
static void put_layer(char *buf, size_t size, size_t *at, const sp_layer *L) {
    const sp_layer_ops *ops = L->ops;
    const spartan_layer_spec *p = &L->spec;
    put(buf, size, at, "%s", ops->name);
    if (ops->takes_outputs) put(buf, size, at, " %zu", p->outputs);
    for (const char *key = ops->keys; *key; key++) {
        if (*key == 'k') put(buf, size, at, " k=%zu", p->kernel);
        if (*key == 's') put(buf, size, at, " s=%zu", p->stride);
        if (*key == 'p' && ops->p_is_rate && !(ops->p_optional && p->rate == 0.0f))
            put(buf, size, at, " p=%.9g", (double)p->rate);
        if (*key == 'p' && !ops->p_is_rate) put(buf, size, at, " p=%zu", p->pad);
    }
}

static size_t finish(char *buf, size_t size, size_t at) {
    if (size) buf[at < size ? at : size - 1] = '\0';
    return at;
}

size_t spartan_model_describe_layer(const spartan_model *m, size_t i, char *buf, size_t size) {
    if (!buf) size = 0;
    size_t at = 0;
    if (m && i < m->nlayers) put_layer(buf, size, &at, &m->layers[i]);
    return finish(buf, size, at);
}

size_t spartan_model_describe(const spartan_model *m, char *buf, size_t size) {
    if (!buf) size = 0;
    size_t at = 0;
    if (m) {
        put(buf, size, &at, "input %zux%zux%zu\n", m->in_h, m->in_w, m->in_c);
        for (size_t i = 0; i < m->nlayers; i++) {
            put_layer(buf, size, &at, &m->layers[i]);
            put(buf, size, &at, "\n");
        }
    }
    return finish(buf, size, at);
}
