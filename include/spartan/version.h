/* Spartan version: the one place the version number is written (CMake reads it from here). */
#ifndef SPARTAN_VERSION_H
#define SPARTAN_VERSION_H

#include "spartan/export.h"

#define SPARTAN_VERSION_MAJOR 0
#define SPARTAN_VERSION_MINOR 1
#define SPARTAN_VERSION_PATCH 0

#define SPARTAN_VERSION_NUMBER                                                                     \
    (SPARTAN_VERSION_MAJOR * 10000 + SPARTAN_VERSION_MINOR * 100 + SPARTAN_VERSION_PATCH)

#define SPARTAN_STRINGIFY_(x) #x
#define SPARTAN_STRINGIFY(x)  SPARTAN_STRINGIFY_(x)
#define SPARTAN_VERSION_STRING                                                                     \
    SPARTAN_STRINGIFY(SPARTAN_VERSION_MAJOR)                                                       \
    "." SPARTAN_STRINGIFY(SPARTAN_VERSION_MINOR) "." SPARTAN_STRINGIFY(SPARTAN_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library actually loaded, to detect a header/library mismatch at run time:
 * compare with SPARTAN_VERSION_NUMBER. */
SPARTAN_API unsigned spartan_version_number(void);
SPARTAN_API const char *spartan_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_VERSION_H */
