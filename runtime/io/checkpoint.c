/* Checkpoints (include/spartan/checkpoint.h): a prepared model's parameters, momentum buffers and
 * step count as a safetensors file. This file decides what a checkpoint holds and checks it
 * against the model; what every model file shares (the model's description, the two checksums,
 * the sealed write and the checked open) is model_file.c's, the file format safetensors.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/model_file.h"
#include "io/safetensors.h"
#include "spartan/nn.h"
#include "tensor/tensor_internal.h"
#include "spartan/checkpoint.h"

#define FORMAT "spartan-checkpoint-1"

static const char layout[] =
    SP_MF_LAYOUT_NATIVE " The *.momentum tensors are the SGD momentum buffers, of the same "
                        "shapes. " SP_MF_LAYOUT_MODEL "; 'step' is the number of SGD updates done.";

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

/* Reads path and checks everything that needs no model (sp_mf_open). */
static spartan_status open_checkpoint(const char *path, size_t max, sp_st_file *f, sp_err *err) {
    return sp_mf_open(path, max, FORMAT, "checkpoint", f, err);
}

/* ---- Saving -----------------------------------------------------------------------------------
 */

spartan_status spartan_checkpoint_save(const spartan_model *m, const char *path,
                                       const spartan_checkpoint_meta *extra, size_t n_extra) {
    static const char fn[] = "spartan_checkpoint_save";
    spartan_context *ctx = spartan_model_context(m);
    if (!m || !path) return sp_invalid(ctx, "%s: NULL argument", fn);
    sp_err *err = &ctx->err;
    spartan_train_config cfg;
    if (spartan_model_config(m, &cfg) != SPARTAN_OK)
        return sp_invalid(ctx, "%s: call spartan_model_prepare first", fn);

    char step[24], batch[24], lr[32], mom[32], wd[32], seed[24], every[24], rate[32], channels[32];
    char db_density[32], db_keep[24], db_decay[32], db_interval[24], db_ramp[24];
    snprintf(step, sizeof step, "%zu", spartan_model_steps(m));
    snprintf(batch, sizeof batch, "%zu", cfg.batch);
    snprintf(lr, sizeof lr, "%.9g", (double)cfg.lr);
    snprintf(mom, sizeof mom, "%.9g", (double)cfg.momentum);
    snprintf(wd, sizeof wd, "%.9g", (double)cfg.weight_decay);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)cfg.seed);
    snprintf(every, sizeof every, "%u", cfg.sample_every);
    snprintf(rate, sizeof rate, "%.9g", (double)cfg.dropout);
    snprintf(channels, sizeof channels, "%.9g", (double)cfg.channel_dropout);
    snprintf(db_density, sizeof db_density, "%.9g", (double)cfg.dropback_density);
    snprintf(db_keep, sizeof db_keep, "%zu", cfg.dropback_keep);
    snprintf(db_decay, sizeof db_decay, "%.9g", (double)cfg.dropback_decay);
    snprintf(db_interval, sizeof db_interval, "%zu", cfg.dropback_interval);
    snprintf(db_ramp, sizeof db_ramp, "%zu", cfg.dropback_ramp);
    const sp_st_meta own[] = {{"step", step},
                              {"batch", batch},
                              {"lr", lr},
                              {"momentum", mom},
                              {"weight_decay", wd},
                              {"seed", seed},
                              {"policy", spartan_policy_mode_name(cfg.policy)},
                              {"sample_every", every},
                              {"dropout_kind", spartan_dropout_kind_name(cfg.dropout_kind)},
                              {"dropout", rate},
                              {"channel_dropout", channels},
                              {"dropback_density", db_density},
                              {"dropback_keep", db_keep},
                              {"dropback_decay", db_decay},
                              {"dropback_interval", db_interval},
                              {"dropback_ramp", db_ramp},
                              {"layout", layout}};
    sp_mf_meta meta;
    spartan_status st =
        sp_mf_meta_make(m, fn, FORMAT, own, sizeof own / sizeof own[0], extra, n_extra, &meta);
    if (st != SPARTAN_OK) return st;

    size_t n = 0, total = 0, most = 1;
    entry *e = model_entries(m, &n);
    for (size_t i = 0; e && i < n; i++) {
        total += e[i].numel;
        if (e[i].numel > most) most = e[i].numel;
    }
    sp_st_tensor *t = calloc(n ? n : 1, sizeof *t);
    unsigned char *data = malloc(total ? 4 * total : 1);
    float *host = malloc(most * sizeof *host);
    if (!e || !t || !data || !host) {
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
    if (st == SPARTAN_OK) st = sp_mf_write(path, t, n, &meta, NULL, err);
done:
    sp_mf_meta_free(&meta);
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
    char *arch = sp_mf_architecture(m);
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
