/* On-disk kernel binary cache (see bincache.h for the design). File layout, little-endian:
 *   0  magic "SPRTNBIN"          8 bytes
 *   8  format version            u32
 *   12 header length (96)        u32
 *   16 label length              u32
 *   20 reserved (0)              u32
 *   24 binary length             u64
 *   32 key                       32 bytes
 *   64 SHA-256 of bytes 0-63, label and binary   32 bytes
 *   96 label, then binary */
#include "program/bincache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/log.h"
#include "spartan/version.h"

#define HEADER_LEN 96
static const char MAGIC[8] = {'S', 'P', 'R', 'T', 'N', 'B', 'I', 'N'};

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

void sp_bincache_open(sp_bincache *c, const char *explicit_dir) {
    c->enabled = sp_cache_dir_resolve(explicit_dir, c->dir, sizeof c->dir);
    if (!c->enabled) return;
    sp_err err = {0};
    if (sp_mkdirs(c->dir, &err) != SPARTAN_OK) {
        sp_log(SPARTAN_LOG_WARN, "kernel cache disabled: %s", sp_err_message(&err));
        c->enabled = 0;
    }
    sp_err_free(&err);
}

static void hash_str(sp_sha256_ctx *s, const char *str) {
    sp_sha256_update(s, str, strlen(str) + 1); /* with the NUL: fields cannot run together */
}

void sp_bincache_key(const spartan_device_info *dev, const char *options, const char *source,
                     size_t source_len, uint8_t key[SP_SHA256_SIZE]) {
    char fmt[32];
    snprintf(fmt, sizeof fmt, "format %d", SP_BINCACHE_FORMAT);
    sp_sha256_ctx s;
    sp_sha256_init(&s);
    hash_str(&s, fmt);
    hash_str(&s, SPARTAN_VERSION_STRING);
    hash_str(&s, dev->platform_name);
    hash_str(&s, dev->platform_version);
    hash_str(&s, dev->name);
    hash_str(&s, dev->vendor_string);
    hash_str(&s, dev->device_version);
    hash_str(&s, dev->driver_version);
    hash_str(&s, options);
    sp_sha256_update(&s, source, source_len);
    sp_sha256_final(&s, key);
}

static int entry_path(const sp_bincache *c, const uint8_t key[SP_SHA256_SIZE], char *buf,
                      size_t len, int with_file) {
    char hex[2 * SP_SHA256_SIZE + 1];
    sp_sha256_hex(key, hex);
    int n = with_file ? snprintf(buf, len, "%s/%.2s/%s.bin", c->dir, hex, hex)
                      : snprintf(buf, len, "%s/%.2s", c->dir, hex);
    return n > 0 && (size_t)n < len;
}

const char *sp_bincache_parse(const unsigned char *data, size_t len, uint8_t key[SP_SHA256_SIZE],
                              char *label, size_t label_len, const unsigned char **payload,
                              size_t *payload_len) {
    if (len < HEADER_LEN) return "truncated header";
    if (memcmp(data, MAGIC, sizeof MAGIC) != 0) return "bad magic";
    if (get_u32(data + 8) != SP_BINCACHE_FORMAT) return "stale format version";
    if (get_u32(data + 12) != HEADER_LEN) return "bad header length";
    uint64_t lab = get_u32(data + 16), bin = get_u64(data + 24);
    if (bin > len || lab > len || HEADER_LEN + lab + bin != len)
        return len < HEADER_LEN + lab + bin ? "truncated" : "trailing bytes";
    uint8_t sum[SP_SHA256_SIZE];
    sp_sha256_ctx s;
    sp_sha256_init(&s);
    sp_sha256_update(&s, data, 64);
    sp_sha256_update(&s, data + HEADER_LEN, (size_t)(lab + bin));
    sp_sha256_final(&s, sum);
    if (memcmp(sum, data + 64, SP_SHA256_SIZE) != 0) return "checksum mismatch";
    if (key) memcpy(key, data + 32, SP_SHA256_SIZE);
    if (label && label_len) {
        size_t n = lab < label_len - 1 ? (size_t)lab : label_len - 1;
        memcpy(label, data + HEADER_LEN, n);
        label[n] = '\0';
    }
    if (payload) *payload = data + HEADER_LEN + lab;
    if (payload_len) *payload_len = (size_t)bin;
    return NULL;
}

sp_cache_result sp_bincache_load(const sp_bincache *c, const uint8_t key[SP_SHA256_SIZE],
                                 unsigned char **binary, size_t *len, char *why, size_t why_len) {
    *binary = NULL;
    *len = 0;
    if (why_len) why[0] = '\0';
    char path[1200];
    if (!c->enabled || !entry_path(c, key, path, sizeof path, 1)) return SP_CACHE_MISS;
    struct stat sb;
    if (lstat(path, &sb) != 0) return SP_CACHE_MISS;
    unsigned char *data;
    size_t n;
    sp_err err = {0};
    /* Our entries are regular files we wrote: anything else in their place (a FIFO, a device, a
     * symbolic link, which is not followed) is refused before it is read, and unlinked. */
    spartan_status st = sp_read_file_at(AT_FDCWD, path, path, SP_READ_NOFOLLOW,
                                        SP_BINCACHE_MAX_ENTRY, &data, &n, &err);
    if (st != SPARTAN_OK) {
        snprintf(why, why_len, "%s", sp_err_message(&err));
        sp_err_free(&err);
        unlink(path);
        return SP_CACHE_REJECTED;
    }
    uint8_t stored[SP_SHA256_SIZE];
    const unsigned char *payload;
    size_t payload_len;
    const char *bad = sp_bincache_parse(data, n, stored, NULL, 0, &payload, &payload_len);
    if (!bad && memcmp(stored, key, SP_SHA256_SIZE) != 0) bad = "key mismatch";
    if (!bad && payload_len == 0) bad = "empty binary";
    if (bad) {
        snprintf(why, why_len, "%s: %s", path, bad);
        free(data);
        unlink(path);
        return SP_CACHE_REJECTED;
    }
    memmove(data, payload, payload_len);
    *binary = data;
    *len = payload_len;
    return SP_CACHE_HIT;
}

spartan_status sp_bincache_store(const sp_bincache *c, const uint8_t key[SP_SHA256_SIZE],
                                 const char *label, const unsigned char *binary, size_t len,
                                 sp_err *err) {
    if (!c->enabled) return SPARTAN_OK;
    char dir[1200], path[1200];
    if (!entry_path(c, key, dir, sizeof dir, 0) || !entry_path(c, key, path, sizeof path, 1))
        return sp_err_set(err, SPARTAN_STATUS_IO_ERROR, "cache path too long under %s", c->dir);
    spartan_status st = sp_mkdirs(dir, err);
    if (st != SPARTAN_OK) return st;
    size_t lab = strlen(label);
    unsigned char header[HEADER_LEN] = {0};
    memcpy(header, MAGIC, sizeof MAGIC);
    put_u32(header + 8, SP_BINCACHE_FORMAT);
    put_u32(header + 12, HEADER_LEN);
    put_u32(header + 16, (uint32_t)lab);
    put_u64(header + 24, len);
    memcpy(header + 32, key, SP_SHA256_SIZE);
    sp_sha256_ctx s;
    sp_sha256_init(&s);
    sp_sha256_update(&s, header, 64);
    sp_sha256_update(&s, label, lab);
    sp_sha256_update(&s, binary, len);
    sp_sha256_final(&s, header + 64);
    sp_buf_part parts[3] = {{header, HEADER_LEN}, {label, lab}, {binary, len}};
    return sp_write_file_atomic(path, parts, 3, 0, err);
}

void sp_bincache_remove(const sp_bincache *c, const uint8_t key[SP_SHA256_SIZE]) {
    char path[1200];
    if (c->enabled && entry_path(c, key, path, sizeof path, 1)) unlink(path);
}
