/* Strict parsing of unsigned decimal numbers from environment variables and command lines. No
 * other dependency, so the tools (which see only the public API otherwise) compile the same file
 * (CMake's spartan_number library) instead of keeping copies. */
#ifndef SP_CORE_NUMBER_H
#define SP_CORE_NUMBER_H

#include <stdint.h>

/* Parses s as a decimal number in [0, max]: digits only (no sign, space, prefix or trailing
 * character), at least one, no overflow. Returns 1 with the value in *out, else 0 and *out
 * untouched. */
int sp_parse_u64(const char *s, uint64_t max, uint64_t *out);

#endif /* SP_CORE_NUMBER_H */
