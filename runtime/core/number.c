/* Strict unsigned decimal parsing (see number.h). */
#include "core/number.h"

#include <stddef.h>

int sp_parse_u64(const char *s, uint64_t max, uint64_t *out) {
    if (!s || !*s) return 0;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        uint64_t d = (uint64_t)(*p - '0');
        if (d > max || v > (max - d) / 10) return 0; /* v * 10 + d > max, without overflowing */
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}
