/* Error detail: a status plus a message of any length (a kernel build log can be long).
 * A context owns one sp_err; calls without a context use the calling thread's (sp_thread_err). */
#ifndef SP_CORE_ERROR_H
#define SP_CORE_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#include "spartan/status.h"

typedef struct sp_err {
    spartan_status status;
    char *msg;  /* heap, NUL-terminated; NULL until the first error */
    size_t cap; /* bytes allocated for msg */
} sp_err;

#if defined(__GNUC__)
#define SP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SP_PRINTF(f, a)
#endif

/* Records status and a formatted message in e; returns status so callers can `return
 * sp_err_set(..)`. If the message cannot be allocated the status is still recorded and the message
 * is lost. */
spartan_status sp_err_set(sp_err *e, spartan_status status, const char *fmt, ...) SP_PRINTF(3, 4);
spartan_status sp_err_vset(sp_err *e, spartan_status status, const char *fmt, va_list ap)
    SP_PRINTF(3, 0);

/* Appends to the current message (for "...; build log:\n<log>"). */
void sp_err_append(sp_err *e, const char *fmt, ...) SP_PRINTF(2, 3);

/* Copies status and message of src into dst. */
void sp_err_copy(sp_err *dst, const sp_err *src);

void sp_err_clear(sp_err *e);
void sp_err_free(sp_err *e);

/* The message, "" when none. */
const char *sp_err_message(const sp_err *e);

/* This thread's error record, for calls made before a context exists. */
sp_err *sp_thread_err(void);

#endif /* SP_CORE_ERROR_H */
