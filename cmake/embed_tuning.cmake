# cmake "-DFILES=<a.json;b.json>" -DOUT=<file.c> -P embed_tuning.cmake
# Writes the shipped tuning entries (tuning/*.json) as NUL-terminated byte arrays and the tables
# runtime/device/tuning_db.c reads: sp_tuning_shipped[], sp_tuning_shipped_names[] (the file
# names) and sp_tuning_shipped_count.
set(arrays "")
set(texts "")
set(names "")
set(count 0)
foreach(f IN LISTS FILES)
    file(READ "${f}" hex HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
    string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " bytes "${bytes}")
    get_filename_component(name "${f}" NAME)
    string(APPEND arrays "static const unsigned char entry_${count}[] = {\n    ${bytes}0x00};\n")
    string(APPEND texts "    (const char *)entry_${count},\n")
    string(APPEND names "    \"tuning/${name}\",\n")
    math(EXPR count "${count} + 1")
endforeach()
file(WRITE "${OUT}.tmp"
"/* Generated from tuning/NAME.json by cmake/embed_tuning.cmake: do not edit. */
#include <stddef.h>
extern const char *const sp_tuning_shipped[];
extern const char *const sp_tuning_shipped_names[];
extern const size_t sp_tuning_shipped_count;
${arrays}const char *const sp_tuning_shipped[] = {
${texts}    NULL};
const char *const sp_tuning_shipped_names[] = {
${names}    NULL};
const size_t sp_tuning_shipped_count = ${count};
")
file(RENAME "${OUT}.tmp" "${OUT}")
