# cmake -DIN=<file> -DOUT=<file.c> -DSYMBOL=<name> -P embed_cl.cmake
# Writes the bytes of IN as `const unsigned char SYMBOL[]` plus `SYMBOL_size` (bytes, without the
# terminating NUL that is appended so the array can also be used as a C string).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# Break the initialiser into lines of 16 bytes to keep the generated file readable.
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUT}.tmp"
"/* Generated from ${IN} by cmake/embed_cl.cmake: do not edit. */
#include <stddef.h>
extern const unsigned char ${SYMBOL}[];
extern const size_t ${SYMBOL}_size;
const unsigned char ${SYMBOL}[] = {
    ${bytes}0x00};
const size_t ${SYMBOL}_size = ${size};
")
file(RENAME "${OUT}.tmp" "${OUT}")
