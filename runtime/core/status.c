/* Status text, generated from the one status list in spartan/status.h. */
#include "spartan/status.h"

const char *spartan_status_string(spartan_status status) {
    switch (status) {
#define X(name, value, text)                                                                       \
    case SPARTAN_STATUS_##name:                                                                    \
        return text;
        SPARTAN_STATUS_MAP(X)
#undef X
    }
    return "unknown status";
}

const char *spartan_status_name(spartan_status status) {
    switch (status) {
#define X(name, value, text)                                                                       \
    case SPARTAN_STATUS_##name:                                                                    \
        return #name;
        SPARTAN_STATUS_MAP(X)
#undef X
    }
    return "UNKNOWN";
}
