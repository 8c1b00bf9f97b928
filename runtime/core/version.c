/* Run-time version of the loaded library. */
#include "spartan/version.h"

unsigned spartan_version_number(void) {
    return SPARTAN_VERSION_NUMBER;
}

const char *spartan_version_string(void) {
    return SPARTAN_VERSION_STRING;
}
