/* The log hook. Default: silent, unless SPARTAN_LOG names a level (then stderr). */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static spartan_log_fn user_fn;
static void *user_data;
static spartan_log_level user_max;

static const char *level_names[] = {"error", "warn", "info", "debug"};

static int env_level(void) {
    const char *s = getenv("SPARTAN_LOG");
    if (!s || !*s) return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0) return i;
    if (strcasecmp(s, "warning") == 0) return SPARTAN_LOG_WARN;
    return -1;
}

void spartan_set_log_callback(spartan_log_fn fn, spartan_log_level max_level, void *user) {
    pthread_mutex_lock(&lock);
    user_fn = fn;
    user_data = user;
    user_max = max_level;
    pthread_mutex_unlock(&lock);
}

int sp_log_enabled(spartan_log_level level) {
    pthread_mutex_lock(&lock);
    int on = user_fn ? level <= user_max : (int)level <= env_level();
    pthread_mutex_unlock(&lock);
    return on;
}

void sp_log(spartan_log_level level, const char *fmt, ...) {
    if (!sp_log_enabled(level)) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&lock);
    if (user_fn)
        user_fn(level, buf, user_data);
    else
        fprintf(stderr, "spartan: %s: %s\n", level_names[level], buf);
    pthread_mutex_unlock(&lock);
}
