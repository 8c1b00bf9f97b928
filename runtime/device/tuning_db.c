/* The tuning databases: what spartan-tune measured, per device, as parameters over the table of
 * tuned.c. Two kinds of entry, one JSON object each:
 *
 *   shipped (tuning/NAME.json in the source tree, embedded in the library, reviewed like code):
 *     {"format": "spartan-tuning 1", "match": {"vendor": "pocl", "type": "cpu",
 *      "vector_width": 16}, "params": {"GEMM_RB": 8, ...}, "tuned": {...}}
 *   the user's (<cache dir>/tuning/<key>.json, written by spartan-tune, atomically):
 *     {"format": "spartan-tuning 1", "library": "0.1.0", "platform": ..., "platform_version": ...,
 *      "device": ..., "driver": ..., "params": {...}, "tuned": {...}}
 *
 * "tuned" is provenance (date, budget, measured times), never read. The key of the user's file
 * hashes the identity fields, which the loader compares too: a file copied from another machine,
 * driver or library version is foreign and ignored. Nothing here fails a context: an entry that
 * cannot be used is skipped, and the note says why. */
#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "core/sha256.h"
#include "device/device_internal.h"
#include "spartan/version.h"

#define TUNING_FORMAT   "spartan-tuning 1"
/* An entry is a few hundred bytes; a larger file is not one. */
#define TUNING_MAX_FILE ((size_t)64 << 10)

/* The shipped entries (cmake/embed_tuning.cmake). */
extern const char *const sp_tuning_shipped[];
extern const char *const sp_tuning_shipped_names[];
extern const size_t sp_tuning_shipped_count;

spartan_status sp_tuning_mode_parse(const char *text, sp_tuning_mode *mode, sp_err *err) {
    const char *t = text ? text : getenv("SPARTAN_TUNING");
    *mode = SP_TUNING_ON;
    if (!t || !*t || strcmp(t, "on") == 0) return SPARTAN_OK;
    if (strcmp(t, "shipped") == 0) {
        *mode = SP_TUNING_SHIPPED;
        return SPARTAN_OK;
    }
    if (strcmp(t, "off") == 0) {
        *mode = SP_TUNING_OFF;
        return SPARTAN_OK;
    }
    return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                      "%s='%s': the tuning databases are \"on\", \"shipped\" or \"off\"",
                      text ? "spartan_context_opts.tuning" : "SPARTAN_TUNING", t);
}

/* <cache dir>/tuning/<16 hex of the identity's SHA-256>.json */
static int user_path(const spartan_device_info *d, const char *cache_dir, char *buf, size_t len) {
    sp_sha256_ctx h;
    sp_sha256_init(&h);
    const char *parts[] = {TUNING_FORMAT,    SPARTAN_VERSION_STRING,
                           d->platform_name, d->platform_version,
                           d->name,          d->driver_version};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        sp_sha256_update(&h, parts[i], strlen(parts[i]) + 1);
    uint8_t digest[SP_SHA256_SIZE];
    char hex[2 * SP_SHA256_SIZE + 1];
    sp_sha256_final(&h, digest);
    sp_sha256_hex(digest, hex);
    hex[16] = '\0';
    int n = snprintf(buf, len, "%s/tuning/%s.json", cache_dir, hex);
    return n > 0 && (size_t)n < len;
}

static const char *type_name(unsigned type) {
    return (type & SPARTAN_DEVICE_GPU)           ? "gpu"
           : (type & SPARTAN_DEVICE_CPU)         ? "cpu"
           : (type & SPARTAN_DEVICE_ACCELERATOR) ? "accelerator"
                                                 : "other";
}

/* The entry's "params" as "NAME=V,..." into out; NULL when fine, else what is wrong. */
static const char *params_of(const cJSON *root, char *out, size_t len) {
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "params");
    if (!cJSON_IsObject(params) || !params->child) return "no \"params\" object, or an empty one";
    size_t used = 0;
    out[0] = '\0';
    for (const cJSON *p = params->child; p; p = p->next) {
        double v = p->valuedouble;
        if (!cJSON_IsNumber(p) || v < 1 || v > (double)(1 << 30) || v != (double)(long)v)
            return "a parameter's value is not an integer from 1 to 2^30";
        if (!p->string || !*p->string || strpbrk(p->string, ",= ")) return "a malformed name";
        int n = snprintf(out + used, len - used, "%s%s=%ld", used ? "," : "", p->string, (long)v);
        if (n < 0 || (size_t)n >= len - used) return "too many parameters";
        used += (size_t)n;
    }
    return NULL;
}

static int str_is(const cJSON *root, const char *key, const char *want) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsString(v) && strcmp(v->valuestring, want) == 0;
}

/* Whether a shipped entry's "match" admits the device; NULL when it does, else why not (a
 * malformed match is reported as such). */
static const char *shipped_match(const cJSON *root, const spartan_device_info *d, int *malformed) {
    *malformed = 0;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "match");
    if (!cJSON_IsObject(m) || !m->child) {
        *malformed = 1;
        return "no \"match\" object";
    }
    for (const cJSON *c = m->child; c; c = c->next) {
        if (strcmp(c->string, "vendor") == 0 && cJSON_IsString(c)) {
            if (strcmp(c->valuestring, spartan_vendor_name(d->vendor)) != 0) return "vendor";
        } else if (strcmp(c->string, "type") == 0 && cJSON_IsString(c)) {
            if (strcmp(c->valuestring, type_name(d->type)) != 0) return "type";
        } else if (strcmp(c->string, "vector_width") == 0 && cJSON_IsNumber(c)) {
            if (c->valuedouble != (double)d->preferred_vector_width_float) return "vector width";
        } else if (strcmp(c->string, "name_contains") == 0 && cJSON_IsString(c)) {
            if (!strstr(d->name, c->valuestring)) return "name";
        } else {
            *malformed = 1;
            return "an unknown or mistyped \"match\" field";
        }
    }
    return NULL;
}

/* Appends a line to the note. */
static void note_add(char *note, size_t len, const char *fmt, ...) SP_PRINTF(3, 4);
static void note_add(char *note, size_t len, const char *fmt, ...) {
    size_t used = strlen(note);
    if (used + 1 >= len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note + used, len - used, fmt, ap);
    va_end(ap);
}

/* Checks a parsed entry's parameters on the device alone (table + entry): NULL when the lookup
 * takes them, else the lookup's message in why. */
static const char *usable_on(const spartan_device_info *d, const char *name, const char *params,
                             char *why, size_t why_len) {
    sp_tuned t;
    sp_err e = {0};
    sp_tuned_source s = {name, params};
    const char *r = NULL;
    if (sp_tuned_lookup(d, &s, 1, &t, &e) != SPARTAN_OK) {
        snprintf(why, why_len, "%s", sp_err_message(&e));
        r = why;
    }
    sp_err_free(&e);
    return r;
}

/* Says in the note whether the entry `what name` is used (bad NULL: returns 1) or ignored and why
 * (a warning in the log too: returns 0). */
static int verdict(const char *what, const char *name, const char *bad, char *note,
                   size_t note_len) {
    if (!bad) {
        note_add(note, note_len, "%s %s\n", what, name);
        return 1;
    }
    sp_log(SPARTAN_LOG_WARN, "%s %s ignored: %s", what, name, bad);
    note_add(note, note_len, "%s %s ignored: %s\n", what, name, bad);
    return 0;
}

/* The shipped entry for the device, if one matches and is usable: its params into out. */
static int load_shipped(const spartan_device_info *d, char *out, size_t len, char *note,
                        size_t note_len) {
    for (size_t i = 0; i < sp_tuning_shipped_count; i++) {
        const char *name = sp_tuning_shipped_names[i];
        cJSON *root = cJSON_Parse(sp_tuning_shipped[i]);
        char why[600];
        const char *bad = NULL;
        int malformed = 0;
        if (!cJSON_IsObject(root) || !str_is(root, "format", TUNING_FORMAT))
            bad = "not a " TUNING_FORMAT " entry";
        else if (shipped_match(root, d, &malformed) && !malformed) {
            cJSON_Delete(root);
            continue; /* another device's */
        } else if (malformed)
            bad = "its \"match\" is malformed";
        else if ((bad = params_of(root, out, len)) == NULL)
            bad = usable_on(d, name, out, why, sizeof why);
        cJSON_Delete(root);
        if (verdict("shipped tuning entry", name, bad, note, note_len)) return 1;
    }
    return 0;
}

/* The user's entry for the device, if there is one and it is usable: its params into out. */
static int load_user(const spartan_device_info *d, const char *cache_dir, char *out, size_t len,
                     char *note, size_t note_len) {
    char path[1200];
    if (!user_path(d, cache_dir, path, sizeof path)) return 0;
    if (access(path, F_OK) != 0) return 0; /* none: the common case, nothing to say */
    unsigned char *data = NULL;
    size_t n = 0;
    sp_err e = {0};
    char why[600];
    const char *bad = NULL;
    cJSON *root = NULL;
    if (sp_read_file(path, TUNING_MAX_FILE, &data, &n, &e) != SPARTAN_OK) {
        snprintf(why, sizeof why, "%s", sp_err_message(&e));
        bad = why;
    } else if (!(root = cJSON_ParseWithLength((const char *)data, n)) || !cJSON_IsObject(root) ||
               !str_is(root, "format", TUNING_FORMAT)) {
        bad = "corrupt: not a " TUNING_FORMAT " entry (JSON)";
    } else if (!str_is(root, "library", SPARTAN_VERSION_STRING) ||
               !str_is(root, "platform", d->platform_name) ||
               !str_is(root, "platform_version", d->platform_version) ||
               !str_is(root, "device", d->name) || !str_is(root, "driver", d->driver_version)) {
        bad = "foreign: tuned for another device, driver or library version (run spartan-tune "
              "again)";
    } else if ((bad = params_of(root, out, len)) == NULL) {
        bad = usable_on(d, path, out, why, sizeof why);
    }
    cJSON_Delete(root);
    free(data);
    sp_err_free(&e);
    return verdict("tuning database", path, bad, note, note_len);
}

spartan_status sp_tuning_lookup(const spartan_device_info *info, sp_tuning_mode mode,
                                const char *cache_dir, const char *extra, sp_tuned *out, char *note,
                                size_t note_len, sp_err *err) {
    char shipped[512], user[512];
    sp_tuned_source src[4];
    size_t n = 0;
    note[0] = '\0';
    if (mode != SP_TUNING_OFF && load_shipped(info, shipped, sizeof shipped, note, note_len))
        src[n++] = (sp_tuned_source){"the shipped tuning entry", shipped};
    if (mode == SP_TUNING_ON && cache_dir &&
        load_user(info, cache_dir, user, sizeof user, note, note_len))
        src[n++] = (sp_tuned_source){"the tuning database", user};
    if (extra && *extra) {
        src[n++] = (sp_tuned_source){"spartan_context_opts.tune", extra};
        note_add(note, note_len, "parameters given by the caller: %s\n", extra);
    }
    const char *env = getenv("SPARTAN_TUNE");
    if (env && *env) {
        src[n++] = (sp_tuned_source){"SPARTAN_TUNE", env};
        note_add(note, note_len, "SPARTAN_TUNE: %s\n", env);
    }
    if (n == 0) note_add(note, note_len, "the built-in table\n");
    size_t used = strlen(note);
    if (used && note[used - 1] == '\n') note[used - 1] = '\0';
    spartan_status st = sp_tuned_lookup(info, src, n, out, err);
    /* each entry alone was usable: with the caller's values or SPARTAN_TUNE over it (a wider
     * tile, say) the sum may not be; the user's values win, the entries are left out */
    size_t db = n - (extra && *extra) - (env && *env);
    if (st == SPARTAN_STATUS_INVALID_ARGUMENT && db > 0 && db < n) {
        sp_err e = {0};
        if (sp_tuned_lookup(info, src + db, n - db, out, &e) == SPARTAN_OK) {
            note_add(note, note_len,
                     "\nthe tuning entries ignored: with the parameters given they "
                     "make %s",
                     sp_err_message(err));
            sp_log(SPARTAN_LOG_WARN,
                   "the tuning entries ignored: with the parameters given "
                   "they make %s",
                   sp_err_message(err));
            st = SPARTAN_OK;
            sp_err_clear(err);
        }
        sp_err_free(&e);
    }
    return st;
}

/* ---- public: the user's database ------------------------------------------------------------- */

spartan_status spartan_tuning_path(const spartan_context_opts *opts, const spartan_device_info *dev,
                                   char *buf, size_t len) {
    sp_err *err = sp_thread_err();
    if (!dev || !buf || !len)
        return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_tuning_path: dev and buf must not be NULL");
    char dir[1024];
    buf[0] = '\0';
    if (!sp_cache_dir_resolve(opts ? opts->cache_dir : NULL, dir, sizeof dir))
        return sp_err_set(err, SPARTAN_STATUS_UNSUPPORTED,
                          "the cache directory is off: the tuning database lives in it");
    if (!user_path(dev, dir, buf, len))
        return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT, "path too long");
    return SPARTAN_OK;
}

/* The entry's JSON object: identity (user) or match (shipped), params, provenance. */
static cJSON *entry_json(const spartan_device_info *d, const char *params, const char *provenance,
                         int shipped, sp_err *err) {
    cJSON *root = cJSON_CreateObject(), *p = cJSON_CreateObject();
    cJSON *prov = provenance && *provenance ? cJSON_Parse(provenance) : cJSON_CreateObject();
    if (!root || !p || !prov || !cJSON_IsObject(prov)) {
        cJSON_Delete(root);
        cJSON_Delete(p);
        cJSON_Delete(prov);
        sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                   "the provenance is not a JSON object (or out of memory)");
        return NULL;
    }
    cJSON_AddStringToObject(root, "format", TUNING_FORMAT);
    if (shipped) {
        cJSON *m = cJSON_AddObjectToObject(root, "match");
        cJSON_AddStringToObject(m, "vendor", spartan_vendor_name(d->vendor));
        cJSON_AddStringToObject(m, "type", type_name(d->type));
        cJSON_AddNumberToObject(m, "vector_width", d->preferred_vector_width_float);
    } else {
        cJSON_AddStringToObject(root, "library", SPARTAN_VERSION_STRING);
        cJSON_AddStringToObject(root, "platform", d->platform_name);
        cJSON_AddStringToObject(root, "platform_version", d->platform_version);
        cJSON_AddStringToObject(root, "device", d->name);
        cJSON_AddStringToObject(root, "driver", d->driver_version);
    }
    char buf[512];
    snprintf(buf, sizeof buf, "%s", params ? params : "");
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) continue; /* the lookup below refuses it */
        *eq = '\0';
        cJSON_AddNumberToObject(p, tok, (double)strtol(eq + 1, NULL, 10));
    }
    cJSON_AddItemToObject(root, "params", p);
    cJSON_AddItemToObject(root, "tuned", prov);
    return root;
}

spartan_status spartan_tuning_format(const spartan_device_info *dev, const char *params,
                                     const char *provenance, int shipped, char *buf, size_t len) {
    sp_err *err = sp_thread_err();
    if (!dev || !params || !buf || !len)
        return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_tuning_format: dev, params and buf must not be NULL");
    buf[0] = '\0';
    char why[600];
    if (usable_on(dev, "the entry", params, why, sizeof why))
        return sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT, "%s", why);
    cJSON *root = entry_json(dev, params, provenance, shipped, err);
    if (!root) return err->status;
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "tuning entry");
    spartan_status st = SPARTAN_OK;
    if (strlen(text) + 2 > len)
        st = sp_err_set(err, SPARTAN_STATUS_INVALID_ARGUMENT, "tuning entry: buffer too small");
    else
        snprintf(buf, len, "%s\n", text);
    cJSON_free(text);
    return st;
}

spartan_status spartan_tuning_write(const spartan_context_opts *opts,
                                    const spartan_device_info *dev, const char *params,
                                    const char *provenance, char *path, size_t path_len) {
    sp_err *err = sp_thread_err();
    char file[1200], text[8192];
    spartan_status st = spartan_tuning_path(opts, dev, file, sizeof file);
    if (st == SPARTAN_OK) st = spartan_tuning_format(dev, params, provenance, 0, text, sizeof text);
    if (st != SPARTAN_OK) return st;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s", file);
    *strrchr(dir, '/') = '\0';
    if ((st = sp_mkdirs(dir, err)) != SPARTAN_OK) return st;
    sp_buf_part part = {text, strlen(text)};
    if ((st = sp_write_file_atomic(file, &part, 1, SP_WRITE_DURABLE, err)) != SPARTAN_OK) return st;
    if (path && path_len) snprintf(path, path_len, "%s", file);
    return SPARTAN_OK;
}
