/* Error records (see error.h). */
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(sp_err *e, size_t need) {
    if (need <= e->cap) return 1;
    size_t cap = e->cap ? e->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(e->msg, cap);
    if (!p) return 0;
    if (!e->msg) p[0] = '\0';
    e->msg = p;
    e->cap = cap;
    return 1;
}

static void vappend(sp_err *e, size_t at, const char *fmt, va_list ap) SP_PRINTF(3, 0);
static void vappend(sp_err *e, size_t at, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || !reserve(e, at + (size_t)n + 1)) return;
    vsnprintf(e->msg + at, (size_t)n + 1, fmt, ap);
}

spartan_status sp_err_vset(sp_err *e, spartan_status status, const char *fmt, va_list ap) {
    e->status = status;
    if (reserve(e, 1)) e->msg[0] = '\0';
    vappend(e, 0, fmt, ap);
    return status;
}

spartan_status sp_err_set(sp_err *e, spartan_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sp_err_vset(e, status, fmt, ap);
    va_end(ap);
    return status;
}

void sp_err_append(sp_err *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vappend(e, e->msg ? strlen(e->msg) : 0, fmt, ap);
    va_end(ap);
}

void sp_err_copy(sp_err *dst, const sp_err *src) {
    if (dst == src) return;
    sp_err_set(dst, src->status, "%s", sp_err_message(src));
}

void sp_err_clear(sp_err *e) {
    e->status = SPARTAN_OK;
    if (e->msg) e->msg[0] = '\0';
}

void sp_err_free(sp_err *e) {
    free(e->msg);
    e->msg = NULL;
    e->cap = 0;
    e->status = SPARTAN_OK;
}

const char *sp_err_message(const sp_err *e) {
    return e->msg ? e->msg : "";
}

static _Thread_local sp_err thread_err;

sp_err *sp_thread_err(void) {
    return &thread_err;
}
