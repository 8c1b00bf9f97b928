/* Kernel sources: the copies embedded at build time (kernels_gen/registry.c, generated from the
 * family list in CMakeLists.txt), or files read from a directory (SPARTAN_KERNEL_DIR). */
#ifndef SP_PROGRAM_SOURCES_H
#define SP_PROGRAM_SOURCES_H

#include <stddef.h>

#include "core/error.h"

typedef struct sp_embedded_source {
    const char *family; /* "eltwise" */
    const char *file;   /* "eltwise.cl" */
    const unsigned char *data;
    const size_t *size;
} sp_embedded_source;

extern const sp_embedded_source sp_cl_common_source;
extern const sp_embedded_source sp_cl_families[];
extern const size_t sp_cl_family_count;

/* The text compiled for one family: common.clh, then the family's file, each preceded by a
 * #line directive naming its file so build logs point at the right place. From the embedded
 * copies when kernel_dir is NULL, else from <kernel_dir>/common.clh and <kernel_dir>/<file>.
 * *text is malloc'd and NUL-terminated. */
spartan_status sp_source_assemble(size_t family, const char *kernel_dir, char **text, size_t *len,
                                  sp_err *err);

#endif /* SP_PROGRAM_SOURCES_H */
