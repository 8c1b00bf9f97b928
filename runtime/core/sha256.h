/* SHA-256 (FIPS 180-4), for cache keys and cache-entry checksums. */
#ifndef SP_CORE_SHA256_H
#define SP_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SP_SHA256_SIZE 32

typedef struct sp_sha256_ctx {
    uint32_t h[8];
    uint64_t length; /* bytes hashed so far */
    uint8_t block[64];
    size_t used; /* bytes in block */
} sp_sha256_ctx;

void sp_sha256_init(sp_sha256_ctx *s);
void sp_sha256_update(sp_sha256_ctx *s, const void *data, size_t len);
void sp_sha256_final(sp_sha256_ctx *s, uint8_t out[SP_SHA256_SIZE]);

/* One-shot digest. */
void sp_sha256(const void *data, size_t len, uint8_t out[SP_SHA256_SIZE]);

/* Lower-case hex of a digest into hex (65 bytes with the NUL). */
void sp_sha256_hex(const uint8_t digest[SP_SHA256_SIZE], char hex[2 * SP_SHA256_SIZE + 1]);

#endif /* SP_CORE_SHA256_H */
