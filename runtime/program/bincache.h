/* On-disk cache of built kernel binaries.
 *
 * Key: SHA-256 over (cache format version, library version, platform name and version, device
 * name, vendor, version and driver version, build options, full source), NUL-separated: it
 * captures everything that can change the binary. Entry: <dir>/<key[0:2]>/<key>.bin with a
 * header (magic, format version, lengths, the key itself, SHA-256 of the rest), written to a
 * temporary name and renamed, so concurrent writers never leave a partial file. A truncated,
 * corrupt or stale entry is detected, deleted and rebuilt; the cache never fails a user call. */
#ifndef SP_PROGRAM_BINCACHE_H
#define SP_PROGRAM_BINCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/sha256.h"
#include "spartan/device.h"

#define SP_BINCACHE_FORMAT    1
/* The largest entry file read (header, label and binary): far above any kernel binary (a few MB
 * at most), so only a file that is not an entry reaches it. */
#define SP_BINCACHE_MAX_ENTRY ((size_t)256 << 20)

typedef struct sp_bincache {
    int enabled;
    char dir[1024];
} sp_bincache;

/* Resolves the directory (see sp_cache_dir_resolve) and creates it. A directory that cannot be
 * created disables the cache (with a warning in the log), it is not an error. */
void sp_bincache_open(sp_bincache *c, const char *explicit_dir);

void sp_bincache_key(const spartan_device_info *dev, const char *options, const char *source,
                     size_t source_len, uint8_t key[SP_SHA256_SIZE]);

typedef enum { SP_CACHE_MISS = 0, SP_CACHE_HIT = 1, SP_CACHE_REJECTED = 2 } sp_cache_result;

/* HIT: binary (malloc'd) and len hold the program binary. MISS: no entry. REJECTED: an entry
 * existed but was invalid; it has been deleted and why says what was wrong. */
sp_cache_result sp_bincache_load(const sp_bincache *c, const uint8_t key[SP_SHA256_SIZE],
                                 unsigned char **binary, size_t *len, char *why, size_t why_len);

/* Writes an entry; label (family and device, for listings) is stored in the header. */
spartan_status sp_bincache_store(const sp_bincache *c, const uint8_t key[SP_SHA256_SIZE],
                                 const char *label, const unsigned char *binary, size_t len,
                                 sp_err *err);

/* Deletes an entry (after the driver refused its binary). */
void sp_bincache_remove(const sp_bincache *c, const uint8_t key[SP_SHA256_SIZE]);

/* Parses and verifies a whole entry file in memory. Returns NULL when valid, else the reason.
 * On success payload and payload_len point into data, and label/key are copied out. */
const char *sp_bincache_parse(const unsigned char *data, size_t len, uint8_t key[SP_SHA256_SIZE],
                              char *label, size_t label_len, const unsigned char **payload,
                              size_t *payload_len);

#endif /* SP_PROGRAM_BINCACHE_H */
