/* Checkpoints (include/spartan/checkpoint.h): a prepared model's parameters, momentum buffers and
 * step count as a safetensors file. This file decides what a checkpoint holds and checks it
 * against the model; the file format itself is safetensors.c's.
 *
 * Two checksums make any damage visible: "sha256" is the SHA-256 of the data section, and
 * "header_sha256" the SHA-256 of the file's first header_end bytes (the 8-byte length, the JSON
 * and its padding) as they are with this entry's 64 hex digits written as zeros. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "io/safetensors.h"
#include "spartan/nn.h"
#include "tensor/tensor_internal.h"
#include "spartan/checkpoint.h"
#include "spartan/version.h"

#define FORMAT "spartan-checkpoint-1"

static const char layout[] =
    "Row-major float32 in each layer's native layout. A convolution's weight is [kh, kw, cin, "
    "cout] (PyTorch's Conv2d.weight is [cout, cin, kh, kw]: permute (3, 2, 0, 1)); a fully "
    "connected layer's weight is [in, out] (Linear.weight is [out, in]: transpose); when a fully "
    "connected layer takes an h x w x c map (images are NHWC, flattened in (h, w, c) order), "
    "PyTorch flattens in (c, h, w) order: reshape the weight to [h, w, c, out] and permute (3, 2, "
    "0, 1), then reshape to [out, c * h * w]. Biases are [out]. The *.momentum tensors are the "
    "SGD momentum buffers, of the same shapes. 'architecture' lists each layer's input and output "
    "h x w x c; 'description' is the model as a Spartan model description (one layer a line); "
    "'step' is the number of SGD updates done.";

/* Metadata keys the checkpoint itself writes (an extra entry may not reuse one). */
static const char *const reserved[] = {
    "format",   "architecture",  "layout",      "step",         "batch",        "lr",
    "momentum", "weight_decay",  "seed",        "policy",       "sample_every", "writer",
    "sha256",   "header_sha256", "description", "dropout_kind", "dropout",      "channel_dropout",
    NULL};

/* ---- What a checkpoint holds ------------------------------------------------------------------
 */

/* One stored tensor: a layer's weight, bias, or one of their momentum buffers. */
typedef struct entry {
    char name[48];
    spartan_tensor *t;
    int rank;
    size_t shape[4], numel;
} entry;

/* Every parameter and its momentum buffer, in the model's parameter order (spartan_model_param:
 * each layer's weight, then its bias); *n receives the count. */
static entry *model_entries(const spartan_model *m, size_t *n) {
    const size_t np = spartan_model_param_count(m);
    entry *e = calloc(np ? 2 * np : 1, sizeof *e);
    if (!e) return NULL;
    *n = 0;
    for (size_t i = 0; i < np; i++) {
        spartan_param p;
        if (spartan_model_param(m, i, &p) != SPARTAN_OK) continue;
        entry v = {.t = p.value, .rank = (int)p.rank, .numel = 1};
        memcpy(v.shape, p.shape, sizeof v.shape);
        for (size_t d = 0; d < p.rank; d++) v.numel *= p.shape[d];
        entry mo = v;
        mo.t = p.momentum;
        snprintf(v.name, sizeof v.name, "%s", p.name);
        snprintf(mo.name, sizeof mo.name, "%s.momentum", p.name);
        e[(*n)++] = v;
        e[(*n)++] = mo;
    }
    return e;
}

/* The canonical description of the layers, compared on load: "input=HxWxC;classes=N" then per
 * layer ";name:kind(options):HxWxC->HxWxC", the options those of the layer's description line
 * ("conv 32 k=3 s=1 p=1" gives "(k=3,s=1,p=1)"). malloc'd; NULL when out of memory. */
static char *architecture(const spartan_model *m) {
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
    static const char zeros[64] =
        "0000000000000000000000000000000000000000000000000000000000000000";
    sp_sha256_ctx c;
    uint8_t d[SP_SHA256_SIZE];
    sp_sha256_init(&c);
    sp_sha256_update(&c, h, at);
    sp_sha256_update(&c, zeros, 64);
    sp_sha256_update(&c, h + at + 64, len - at - 64);
    sp_sha256_final(&c, d);
    sp_sha256_hex(d, hex);
}

#define BAD(...) sp_err_set(err, SPARTAN_STATUS_BAD_FORMAT, __VA_ARGS__)

/* The largest file spartan_checkpoint_meta_get reads, having no model to size it by: 16 GiB,
 * far above the checkpoint of any model this library trains. */
#define ANY_CHECKPOINT_MAX (SIZE_MAX > (UINT64_C(1) << 34) ? (size_t)(UINT64_C(1) << 34) : SIZE_MAX)

/* The largest checkpoint of a model whose tensors hold `floats` values: the length, the
 * largest header safetensors allows, the data. */
static size_t checkpoint_max(size_t floats) {
    const size_t fixed = 8 + SP_ST_MAX_HEADER;
    return floats > (SIZE_MAX - fixed) / 4 ? SIZE_MAX : fixed + 4 * floats;
}

/* Reads path (a regular file of at most max bytes) and checks everything that needs no model:
 * the safetensors structure, both checksums, the format. */
static spartan_status open_checkpoint(const char *path, size_t max, sp_st_file *f, sp_err *err) {
    spartan_status st = sp_st_read(path, max, f, err);
    if (st != SPARTAN_OK) return st;
    const char *want = sp_st_meta_get(f, "header_sha256");
    char got[65];
    size_t at = header_sum_at(f->buf, f->header_end);
    if (!want || at == SIZE_MAX)
        st = BAD("%s: not a Spartan checkpoint, or its header is corrupt (no header_sha256 in the "
                 "metadata)",
                 path);
    else if (header_digest(f->buf, f->header_end, at, got), strcmp(want, got) != 0)
        st = BAD("%s: the header's checksum does not match (stored %s, computed %s): the header is "
                 "corrupt",
                 path, want, got);
    const char *format = sp_st_meta_get(f, "format"), *sum = sp_st_meta_get(f, "sha256");
    if (st == SPARTAN_OK && (!format || strcmp(format, FORMAT) != 0))
        st = BAD("%s: format \"%s\", expected \"" FORMAT "\"", path, format ? format : "(none)");
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

/* ---- Saving -----------------------------------------------------------------------------------
 */

static spartan_status check_extra(spartan_context *ctx, const spartan_checkpoint_meta *extra,
                                  size_t n) {
    if (n && !extra) return sp_invalid(ctx, "spartan_checkpoint_save: NULL extra metadata");
    for (size_t i = 0; i < n; i++) {
        const char *k = extra[i].key;
        if (!k || !*k || !extra[i].value)
            return sp_invalid(ctx, "spartan_checkpoint_save: extra entry %zu has no key or value",
                              i);
        for (const char *const *r = reserved; *r; r++)
            if (!strcmp(k, *r))
                return sp_invalid(ctx, "spartan_checkpoint_save: \"%s\" is a reserved key", k);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(k, extra[j].key))
                return sp_invalid(ctx, "spartan_checkpoint_save: extra key \"%s\" twice", k);
    }
    return SPARTAN_OK;
}

spartan_status spartan_checkpoint_save(const spartan_model *m, const char *path,
                                       const spartan_checkpoint_meta *extra, size_t n_extra) {
    spartan_context *ctx = spartan_model_context(m);
    if (!m || !path) return sp_invalid(ctx, "spartan_checkpoint_save: NULL argument");
    sp_err *err = &ctx->err;
    spartan_train_config cfg;
    if (spartan_model_config(m, &cfg) != SPARTAN_OK)
        return sp_invalid(ctx, "spartan_checkpoint_save: call spartan_model_prepare first");
    spartan_status st = check_extra(ctx, extra, n_extra);
    if (st != SPARTAN_OK) return st;

    size_t n = 0, total = 0, most = 1;
    entry *e = model_entries(m, &n);
    for (size_t i = 0; e && i < n; i++) {
        total += e[i].numel;
        if (e[i].numel > most) most = e[i].numel;
    }
    sp_st_tensor *t = calloc(n ? n : 1, sizeof *t);
    unsigned char *data = malloc(total ? 4 * total : 1), *header = NULL;
    float *host = malloc(most * sizeof *host);
    char *arch = architecture(m);
    size_t dlen = spartan_model_describe(m, NULL, 0);
    char *desc = malloc(dlen + 1);
    if (desc) spartan_model_describe(m, desc, dlen + 1);
    sp_st_meta *meta = malloc((20 + n_extra) * sizeof *meta);
    if (!e || !t || !data || !host || !arch || !desc || !meta) {
        st = sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "checkpoint %s", path);
        goto done;
    }
    size_t off = 0;
    for (size_t i = 0; i < n && st == SPARTAN_OK; i++) {
        st = spartan_tensor_read(e[i].t, host, e[i].numel);
        sp_st_f32_store(host, e[i].numel, data + off);
        t[i] = (sp_st_tensor){e[i].name, SP_ST_F32, e[i].rank, {0}, data + off, 4 * e[i].numel};
        memcpy(t[i].shape, e[i].shape, sizeof e[i].shape);
        off += 4 * e[i].numel;
    }
    if (st != SPARTAN_OK) goto done;

    uint8_t digest[SP_SHA256_SIZE];
    char sum[65], step[24], batch[24], lr[32], mom[32], wd[32], seed[24], every[24], writer[48];
    char rate[32], channels[32];
    sp_sha256(data, off, digest);
    sp_sha256_hex(digest, sum);
    snprintf(step, sizeof step, "%zu", spartan_model_steps(m));
    snprintf(batch, sizeof batch, "%zu", cfg.batch);
    snprintf(lr, sizeof lr, "%.9g", (double)cfg.lr);
    snprintf(mom, sizeof mom, "%.9g", (double)cfg.momentum);
    snprintf(wd, sizeof wd, "%.9g", (double)cfg.weight_decay);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)cfg.seed);
    snprintf(every, sizeof every, "%u", cfg.sample_every);
    snprintf(rate, sizeof rate, "%.9g", (double)cfg.dropout);
    snprintf(channels, sizeof channels, "%.9g", (double)cfg.channel_dropout);
    snprintf(writer, sizeof writer, "spartan %s", spartan_version_string());
    size_t nm = 0;
    meta[nm++] = (sp_st_meta){"format", FORMAT};
    meta[nm++] = (sp_st_meta){"architecture", arch};
    meta[nm++] = (sp_st_meta){"description", desc};
    meta[nm++] = (sp_st_meta){"step", step};
    meta[nm++] = (sp_st_meta){"batch", batch};
    meta[nm++] = (sp_st_meta){"lr", lr};
    meta[nm++] = (sp_st_meta){"momentum", mom};
    meta[nm++] = (sp_st_meta){"weight_decay", wd};
    meta[nm++] = (sp_st_meta){"seed", seed};
    meta[nm++] = (sp_st_meta){"policy", spartan_policy_mode_name(cfg.policy)};
    meta[nm++] = (sp_st_meta){"sample_every", every};
    meta[nm++] = (sp_st_meta){"dropout_kind", spartan_dropout_kind_name(cfg.dropout_kind)};
    meta[nm++] = (sp_st_meta){"dropout", rate};
    meta[nm++] = (sp_st_meta){"channel_dropout", channels};
    meta[nm++] = (sp_st_meta){"layout", layout};
    meta[nm++] = (sp_st_meta){"writer", writer};
    meta[nm++] = (sp_st_meta){"sha256", sum};
    meta[nm++] = (sp_st_meta){"header_sha256",
                              "0000000000000000000000000000000000000000000000000000000000000000"};
    for (size_t i = 0; i < n_extra; i++) meta[nm++] = (sp_st_meta){extra[i].key, extra[i].value};

    size_t hlen;
    st = sp_st_encode_header(t, n, meta, nm, &header, &hlen, err);
    if (st != SPARTAN_OK) goto done;
    size_t at = header_sum_at(header, hlen);
    if (at == SIZE_MAX) {
        st = sp_err_set(err, SPARTAN_STATUS_INTERNAL, "%s: header_sha256 missing from the header",
                        path);
        goto done;
    }
    char hsum[65];
    header_digest(header, hlen, at, hsum);
    memcpy(header + at, hsum, 64);
    st = sp_st_write(path, header, hlen, t, n, err);
done:
    free(header);
    free(meta);
    free(arch);
    free(desc);
    free(host);
    free(data);
    free(t);
    free(e);
    return st;
}

/* ---- Loading ----------------------------------------------------------------------------------
 */

/* The first ';'-separated field where two architectures differ, for the message. */
static void first_difference(const char *a, const char *b, char *out, size_t size) {
    size_t field = 0;
    while (1) {
        size_t la = strcspn(a, ";"), lb = strcspn(b, ";");
        if (la != lb || memcmp(a, b, la) != 0) {
            snprintf(out, size, "field %zu: the file has \"%.*s\", the model \"%.*s\"", field,
                     (int)la, a, (int)lb, b);
            return;
        }
        if (!a[la] || !b[lb]) break;
        a += la + 1;
        b += lb + 1;
        field++;
    }
    snprintf(out, size, "field %zu: one has more layers", field + 1);
}

static int parse_count(const char *s, size_t *out) {
    if (!s || !*s || strlen(s) > 20) return 0;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno || v > SIZE_MAX) return 0;
    *out = (size_t)v;
    return 1;
}

/* Checks the file's tensors against the model's entries; *found[i] is the file's tensor. */
static spartan_status match_tensors(const char *path, const sp_st_file *f, const entry *e, size_t n,
                                    const sp_st_tensor **found, sp_err *err) {
    for (size_t i = 0; i < n; i++) {
        const sp_st_tensor *t = sp_st_find(f, e[i].name);
        if (!t) return BAD("%s: no tensor \"%s\"", path, e[i].name);
        int same = t->dtype == SP_ST_F32 && t->rank == e[i].rank;
        for (int d = 0; same && d < t->rank; d++) same = t->shape[d] == e[i].shape[d];
        if (!same)
            return BAD("%s: tensor \"%s\" is %s of rank %d, the model needs F32 of rank %d "
                       "(shape %zu x %zu ...)",
                       path, e[i].name, sp_st_dtype_name(t->dtype), t->rank, e[i].rank,
                       e[i].shape[0], e[i].rank > 1 ? e[i].shape[1] : 1);
        found[i] = t;
    }
    for (size_t j = 0; j < f->ntensors; j++) {
        int known = 0;
        for (size_t i = 0; i < n && !known; i++) known = found[i] == &f->tensors[j];
        if (!known) return BAD("%s: unexpected tensor \"%s\"", path, f->tensors[j].name);
    }
    return SPARTAN_OK;
}

spartan_status spartan_checkpoint_load(spartan_model *m, const char *path) {
    spartan_context *ctx = spartan_model_context(m);
    if (!m || !path) return sp_invalid(ctx, "spartan_checkpoint_load: NULL argument");
    sp_err *err = &ctx->err;
    if (!spartan_model_is_prepared(m))
        return sp_invalid(ctx, "spartan_checkpoint_load: call spartan_model_prepare first");
    size_t n = 0, step = 0, total = 0, most = 1;
    entry *e = model_entries(m, &n);
    char *arch = architecture(m);
    const sp_st_tensor **found = calloc(n ? n : 1, sizeof *found);
    float *backup = NULL, *host = NULL;
    sp_st_file f = {0};
    spartan_status st = SPARTAN_OK;
    if (!e || !arch || !found) {
        st = sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "checkpoint %s", path);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        total += e[i].numel;
        if (e[i].numel > most) most = e[i].numel;
    }
    if ((st = open_checkpoint(path, checkpoint_max(total), &f, err)) != SPARTAN_OK) goto done;
    const char *file_arch = sp_st_meta_get(&f, "architecture");
    if (!file_arch || strcmp(file_arch, arch) != 0) {
        char diff[512] = "no architecture entry";
        if (file_arch) first_difference(file_arch, arch, diff, sizeof diff);
        st = sp_invalid(ctx, "%s: the checkpoint is of another architecture (%s)", path, diff);
        goto done;
    }
    if (!parse_count(sp_st_meta_get(&f, "step"), &step)) {
        st = BAD("%s: the step \"%s\" is not a count", path,
                 sp_st_meta_get(&f, "step") ? sp_st_meta_get(&f, "step") : "(none)");
        goto done;
    }
    if ((st = match_tensors(path, &f, e, n, found, err)) != SPARTAN_OK) goto done;

    /* Everything is checked. The current values are kept, so that a device failure while
     * writing can put them back. */
    backup = malloc((total ? total : 1) * sizeof *backup);
    host = malloc(most * sizeof *host);
    if (!backup || !host) {
        st = sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "checkpoint %s", path);
        goto done;
    }
    for (size_t i = 0, off = 0; i < n && st == SPARTAN_OK; off += e[i++].numel)
        st = spartan_tensor_read(e[i].t, backup + off, e[i].numel);
    size_t written = 0;
    for (; written < n && st == SPARTAN_OK; written++) {
        sp_st_f32_load(found[written]->data, e[written].numel, host);
        st = spartan_tensor_write(e[written].t, host, e[written].numel);
    }
    if (st != SPARTAN_OK) {
        for (size_t i = 0, off = 0; i < written; off += e[i++].numel)
            spartan_tensor_write(e[i].t, backup + off, e[i].numel);
        goto done;
    }
    spartan_model_set_steps(m, step);
done:
    free(host);
    free(backup);
    free(found);
    free(arch);
    free(e);
    sp_st_free(&f);
    return st;
}

spartan_status spartan_checkpoint_meta_get(const char *path, const char *key, char *buf,
                                           size_t size) {
    sp_err *err = sp_thread_err();
    if (!path || !key || !buf || !size)
        return sp_invalid(NULL, "spartan_checkpoint_meta_get: NULL argument or empty buffer");
    sp_st_file f;
    spartan_status st = open_checkpoint(path, ANY_CHECKPOINT_MAX, &f, err);
    if (st != SPARTAN_OK) return st;
    const char *v = sp_st_meta_get(&f, key);
    if (!v)
        st = sp_invalid(NULL, "%s: no metadata entry \"%s\"", path, key);
    else if (strlen(v) >= size)
        st = sp_invalid(NULL, "%s: metadata \"%s\" needs a buffer of %zu bytes, not %zu", path, key,
                        strlen(v) + 1, size);
    else
        memcpy(buf, v, strlen(v) + 1);
    sp_st_free(&f);
    return st;
}
