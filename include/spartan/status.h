/* Status codes, their text, and the log hook.
 *
 * Every public function returns a spartan_status; SPARTAN_OK is 0 and every error is negative.
 * spartan_status_string() gives the fixed text of a code; spartan_last_error() gives the detail
 * of the last failure (which argument, which file, the OpenCL error name, a kernel build log). */
#ifndef SPARTAN_STATUS_H
#define SPARTAN_STATUS_H

#include "spartan/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, value, text): the one list of statuses. Values are ours, not OpenCL's: the raw cl_int of
 * a failed OpenCL call is named in the detail message instead. */
#define SPARTAN_STATUS_MAP(X)                                                                      \
    X(OK, 0, "success")                                                                            \
    X(INVALID_ARGUMENT, -1, "invalid argument")                                                    \
    X(OUT_OF_HOST_MEMORY, -2, "out of host memory")                                                \
    X(OUT_OF_DEVICE_MEMORY, -3, "out of device memory")                                            \
    X(NO_PLATFORM, -4, "no OpenCL platform found")                                                 \
    X(NO_DEVICE, -5, "no OpenCL device matches the selection")                                     \
    X(CONTEXT_FAILED, -6, "could not create an OpenCL context on the device")                      \
    X(BUILD_FAILED, -7, "kernel build failed")                                                     \
    X(KERNEL_SOURCE, -8, "kernel source could not be read")                                        \
    X(OPENCL_ERROR, -9, "OpenCL call failed")                                                      \
    X(IO_ERROR, -10, "file input/output error")                                                    \
    X(BAD_FORMAT, -11, "file is truncated or corrupt")                                             \
    X(UNSUPPORTED, -12, "not supported on this device")                                            \
    X(INTERNAL, -13, "internal error")                                                             \
    X(VALIDATION_FAILED, -14, "the device computed wrong results in the kernels' self-test")       \
    X(COMMUNICATION, -15, "the ranks of a distributed run could not agree or communicate")

typedef enum spartan_status {
#define SPARTAN_X_(name, value, text) SPARTAN_STATUS_##name = value,
    SPARTAN_STATUS_MAP(SPARTAN_X_)
#undef SPARTAN_X_
} spartan_status;

#define SPARTAN_OK SPARTAN_STATUS_OK

/* Fixed text of a status ("unknown status" for a value not in the list). Never NULL; static, and
 * safe from any thread, as is spartan_status_name. */
SPARTAN_API const char *spartan_status_string(spartan_status status);

/* Symbolic name of a status ("BUILD_FAILED"). Never NULL. */
SPARTAN_API const char *spartan_status_name(spartan_status status);

/* ---- Logging ---------------------------------------------------------------------------------
 * The library prints nothing by itself. Messages go to the callback set here; when none is set,
 * the environment variable SPARTAN_LOG=error|warn|info|debug sends them to stderr. */
typedef enum spartan_log_level {
    SPARTAN_LOG_ERROR = 0,
    SPARTAN_LOG_WARN = 1,
    SPARTAN_LOG_INFO = 2,
    SPARTAN_LOG_DEBUG = 3
} spartan_log_level;

typedef void (*spartan_log_fn)(spartan_log_level level, const char *message, void *user);

/* Process-wide; thread-safe. fn == NULL restores the default (SPARTAN_LOG, else silent).
 * Messages up to max_level are delivered. fn is called on the thread that logs, one message at a
 * time under the library's lock: it must not call spartan_set_log_callback. */
SPARTAN_API void spartan_set_log_callback(spartan_log_fn fn, spartan_log_level max_level,
                                          void *user);

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_STATUS_H */
