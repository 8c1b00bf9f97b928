/* Internal logging: goes to the user's callback, else to stderr when SPARTAN_LOG asks, else
 * nowhere. */
#ifndef SP_CORE_LOG_H
#define SP_CORE_LOG_H

#include "core/error.h"
#include "spartan/status.h"

void sp_log(spartan_log_level level, const char *fmt, ...) SP_PRINTF(2, 3);

/* Whether a message at this level would be delivered (to skip building expensive messages). */
int sp_log_enabled(spartan_log_level level);

#endif /* SP_CORE_LOG_H */
