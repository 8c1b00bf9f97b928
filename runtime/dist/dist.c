/* Data parallelism over MPI (include/spartan/dist.h): the gradient exchange as the model's
 * gradient hooks, the collectives an application needs around it, and the stop messages that
 * keep a failing rank from leaving the others waiting. Uses the library through its public
 * headers only (and the OpenCL queue, spartan/cl_interop.h, to read the gradients back without
 * blocking). Every wait on the other ranks is a poll (wait_requests, hook_finish): MPI's
 * non-blocking calls, tested with short sleeps between, the stop channel and the timeout checked
 * each time round. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spartan/cl_interop.h"
#include "spartan/dist.h"
#include "spartan/spartan.h"

#define TAG_STOP     0x5350 /* a rank stops: its message */
#define TAG_STOP_ACK 0x5351 /* the message arrived */
#define STOP_LEN     512
#define POLL_NS      20000L /* between two polls of a wait that made no progress */
/* The same while the device still runs the backward pass: each poll takes the host's time, which
 * on a CPU device is the device's (measured on POCL, vgg-small with the all-reduces overlapped:
 * 0.90x the throughput of none at 20 us between polls, 0.96x at 100, 0.97x at 200) */
#define POLL_BUSY_NS 200000L
#define TRIAL_WARMUP 4 /* steps before the overlap trial (first calls, calibration) */
#define TRIAL_STEPS  8 /* steps of each mode in the trial, alternated */

typedef enum { B_IDLE, B_READING, B_REDUCING, B_DONE } bucket_state;

/* Parameters first..last (inclusive), finished by the backward pass from the last, read into
 * one host buffer and all-reduced as one. */
typedef struct bucket {
    size_t first, last, n; /* n floats */
    float *host;
    size_t left; /* parameters of this step still to be read */
    bucket_state state;
    cl_event read_done; /* the read of its last parameter (the queue is in order) */
    MPI_Request req;
    double t0, t1, sum_s;
} bucket;

typedef struct param_slot {
    spartan_tensor *grad;
    size_t n, bucket, offset; /* floats; its bucket and place in it */
} param_slot;

struct spartan_dist {
    MPI_Comm comm;
    int rank, size, local_rank, local_size;
    spartan_dist_opts o;
    char err[1024];
    /* the stop channel: an open receive from any rank */
    MPI_Request stop_req;
    char stop_msg[STOP_LEN];
    int peer_stopped, stopping;
    /* the attached model */
    spartan_model *m;
    cl_command_queue queue;
    param_slot *p;
    size_t np;
    bucket *b;
    size_t nb;
    int in_step, broken;
    size_t steps;
    spartan_dist_stats stats;
    /* overlap: this step's mode; with opts.overlap -1, both measured over the trial steps (each
     * step's period, from one exchange's end to the next) and the faster kept */
    int overlap_now, decided;
    double t_last, trial[2][TRIAL_STEPS], trial_ms[2];
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void nap_ns(long ns) {
    struct timespec t = {0, ns};
    while (nanosleep(&t, &t) == -1 && errno == EINTR) {
    }
}

static void nap(void) {
    nap_ns(POLL_NS);
}

static spartan_status fail(spartan_dist *d, spartan_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, sizeof d->err, fmt, ap);
    va_end(ap);
    return st;
}

/* An MPI call's failure: what was called and MPI's words for the code. */
static spartan_status mpi_fail(spartan_dist *d, const char *what, int rc) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", rc);
    return fail(d, SPARTAN_STATUS_COMMUNICATION, "rank %d: %s failed: %s", d->rank, what, text);
}

static size_t env_size(const char *name, size_t dflt) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    return errno || *end || v[0] == '-' ? dflt : (size_t)x;
}

spartan_dist_opts spartan_dist_opts_default(void) {
    spartan_dist_opts o = {.bucket_bytes = 1u << 20, .overlap = -1, .timeout_s = 600.0};
    o.bucket_bytes = env_size("SPARTAN_DIST_BUCKET_KB", o.bucket_bytes >> 10) << 10;
    o.timeout_s = (double)env_size("SPARTAN_DIST_TIMEOUT", (size_t)o.timeout_s);
    const char *ov = getenv("SPARTAN_DIST_OVERLAP");
    if (ov && (!strcmp(ov, "0") || !strcmp(ov, "1"))) o.overlap = ov[0] - '0';
    return o;
}

/* ---- The stop channel ------------------------------------------------------------------------ */

/* Whether another rank's stop message has arrived (then it is acknowledged and the error set). */
static int peer_stopped(spartan_dist *d) {
    if (d->peer_stopped) return 1;
    if (d->size < 2 || d->stop_req == MPI_REQUEST_NULL) return 0;
    int done = 0;
    MPI_Status s;
    if (MPI_Test(&d->stop_req, &done, &s) != MPI_SUCCESS || !done) return 0;
    d->stop_msg[STOP_LEN - 1] = '\0';
    char ack = 1;
    MPI_Request r;
    if (MPI_Isend(&ack, 1, MPI_CHAR, s.MPI_SOURCE, TAG_STOP_ACK, d->comm, &r) == MPI_SUCCESS)
        MPI_Request_free(&r);
    d->peer_stopped = 1;
    fail(d, SPARTAN_STATUS_COMMUNICATION, "rank %d stopped: %s", s.MPI_SOURCE, d->stop_msg);
    return 1;
}

void spartan_dist_abort(spartan_dist *d, const char *why) {
    if (!d || d->size < 2 || d->stopping || d->peer_stopped) return;
    d->stopping = 1;
    char msg[STOP_LEN];
    snprintf(msg, sizeof msg, "%s", why && *why ? why : "(no reason given)");
    const int n = d->size - 1;
    MPI_Request *req = malloc(2 * (size_t)n * sizeof *req);
    char *acks = calloc((size_t)n, 1);
    if (!req || !acks) {
        free(req);
        free(acks);
        return;
    }
    int k = 0;
    for (int r = 0; r < d->size; r++) {
        if (r == d->rank) continue;
        if (MPI_Isend(msg, STOP_LEN, MPI_CHAR, r, TAG_STOP, d->comm, &req[k]) != MPI_SUCCESS)
            req[k] = MPI_REQUEST_NULL;
        if (MPI_Irecv(&acks[k], 1, MPI_CHAR, r, TAG_STOP_ACK, d->comm, &req[n + k]) != MPI_SUCCESS)
            req[n + k] = MPI_REQUEST_NULL;
        k++;
    }
    /* a few seconds for the others to come round to a poll (a step's length, normally) */
    const double until = now_s() + 10.0;
    int done = 0;
    while (!done && now_s() < until) {
        if (MPI_Testall(2 * n, req, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS) break;
        if (!done) nap();
    }
    /* what is still open stays so: the process ends next (MPI_Abort) */
    free(req);
    free(acks);
}

int spartan_dist_peer_stopped(const spartan_dist *d) {
    return d && d->peer_stopped;
}

/* Waits for n requests, polling the stop channel, up to the timeout; what: for the message. */
static spartan_status wait_requests(spartan_dist *d, int n, MPI_Request *req, const char *what) {
    const double t0 = now_s();
    for (;;) {
        int done = 0;
        int rc = MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(d, what, rc);
        if (done) return SPARTAN_OK;
        if (peer_stopped(d)) return SPARTAN_STATUS_COMMUNICATION;
        if (d->o.timeout_s > 0 && now_s() - t0 > d->o.timeout_s)
            return fail(d, SPARTAN_STATUS_COMMUNICATION,
                        "rank %d waited %.0f s for %s: another rank is stuck or gone "
                        "(SPARTAN_DIST_TIMEOUT)",
                        d->rank, now_s() - t0, what);
        nap();
    }
}

/* The calls that start anything refuse once a rank has stopped or a step broke off. */
static spartan_status usable(spartan_dist *d) {
    if (d->peer_stopped || d->stopping) return SPARTAN_STATUS_COMMUNICATION;
    if (d->broken)
        return fail(d, SPARTAN_STATUS_COMMUNICATION,
                    "rank %d: a step failed during its gradient exchange: the ranks are out of "
                    "step",
                    d->rank);
    return SPARTAN_OK;
}

/* ---- Creation -------------------------------------------------------------------------------- */

spartan_status spartan_dist_create(MPI_Comm comm, const spartan_dist_opts *opts,
                                   spartan_dist **out) {
    if (!out) return SPARTAN_STATUS_INVALID_ARGUMENT;
    *out = NULL;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) return SPARTAN_STATUS_INVALID_ARGUMENT; /* MPI_Init first */
    spartan_dist *d = calloc(1, sizeof *d);
    if (!d) return SPARTAN_STATUS_OUT_OF_HOST_MEMORY;
    d->o = opts ? *opts : spartan_dist_opts_default();
    d->stop_req = MPI_REQUEST_NULL;
    d->comm = MPI_COMM_NULL; /* not 0 in every MPI */
    MPI_Comm local = MPI_COMM_NULL;
    int rc = MPI_Comm_dup(comm, &d->comm);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(d->comm, &d->rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(d->comm, &d->size);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &local);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(local, &d->local_rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(local, &d->local_size);
    if (local != MPI_COMM_NULL) MPI_Comm_free(&local);
    if (rc == MPI_SUCCESS && d->size > 1)
        rc = MPI_Irecv(d->stop_msg, STOP_LEN, MPI_CHAR, MPI_ANY_SOURCE, TAG_STOP, d->comm,
                       &d->stop_req);
    if (rc != MPI_SUCCESS) {
        if (d->comm != MPI_COMM_NULL) MPI_Comm_free(&d->comm);
        free(d);
        return SPARTAN_STATUS_COMMUNICATION;
    }
    *out = d;
    return SPARTAN_OK;
}

static void release_buckets(spartan_dist *d) {
    for (size_t i = 0; i < d->nb; i++) {
        if (d->b[i].read_done) clReleaseEvent(d->b[i].read_done);
        free(d->b[i].host);
    }
    free(d->b);
    free(d->p);
    d->b = NULL;
    d->p = NULL;
    d->nb = d->np = 0;
}

void spartan_dist_destroy(spartan_dist *d) {
    if (!d) return;
    if (d->m) {
        spartan_model_set_grad_hooks(d->m, NULL);
        spartan_model_set_shard(d->m, 0);
        /* the reads and writes of the host buffers must be over before they go */
        spartan_context_finish(spartan_model_context(d->m));
    }
    release_buckets(d);
    int finalized = 0; /* then no MPI call is allowed */
    MPI_Finalized(&finalized);
    if (!finalized && d->stop_req != MPI_REQUEST_NULL && !d->peer_stopped) {
        MPI_Cancel(&d->stop_req);
        MPI_Wait(&d->stop_req, MPI_STATUS_IGNORE);
    }
    if (!finalized) MPI_Comm_free(&d->comm);
    free(d);
}

const char *spartan_dist_last_error(const spartan_dist *d) {
    return d ? d->err : "NULL spartan_dist";
}

int spartan_dist_rank(const spartan_dist *d) {
    return d ? d->rank : 0;
}

int spartan_dist_size(const spartan_dist *d) {
    return d ? d->size : 1;
}

int spartan_dist_local_rank(const spartan_dist *d) {
    return d ? d->local_rank : 0;
}

int spartan_dist_local_size(const spartan_dist *d) {
    return d ? d->local_size : 1;
}

/* ---- The device of a rank -------------------------------------------------------------------- */

static int is_pd(const char *s) {
    unsigned p, dv;
    char tail;
    return s && sscanf(s, "%u:%u%c", &p, &dv, &tail) == 2;
}

spartan_status spartan_dist_device(spartan_dist *d, const char *selection, char *buf, size_t size,
                                   int *shared) {
    if (!d || !buf || !size) return SPARTAN_STATUS_INVALID_ARGUMENT;
    if (shared) *shared = 0;
    if (is_pd(selection)) {
        if ((size_t)snprintf(buf, size, "%s", selection) >= size)
            return fail(d, SPARTAN_STATUS_INVALID_ARGUMENT, "device selection too long");
        return SPARTAN_OK;
    }
    spartan_device_info *list = NULL;
    size_t count = 0;
    spartan_status st = spartan_device_list(&list, &count);
    if (st != SPARTAN_OK) return fail(d, st, "rank %d: %s", d->rank, spartan_last_error(NULL));
    size_t *match = malloc((count ? count : 1) * sizeof *match), nm = 0;
    if (!match) {
        spartan_device_list_free(list);
        return SPARTAN_STATUS_OUT_OF_HOST_MEMORY;
    }
    /* the default: the GPUs if any, else what "cpu" and the other kinds find (no simulators) */
    const int dflt = !selection || !*selection;
    const char *kinds[] = {"gpu", "cpu", "accelerator"};
    for (size_t k = 0; k < (dflt ? 3u : 1u) && !(dflt && nm && k > 0); k++) {
        const char *sel = dflt ? kinds[k] : selection;
        for (size_t off = 0, i;
             off < count && spartan_device_select(list + off, count - off, sel, &i) == SPARTAN_OK;
             off += i + 1) {
            if (dflt && list[off + i].vendor == SPARTAN_VENDOR_SIMULATOR) continue;
            match[nm++] = off + i;
        }
    }
    if (nm == 0) {
        free(match);
        spartan_device_list_free(list);
        return fail(d, SPARTAN_STATUS_NO_DEVICE, "rank %d: no OpenCL device matches \"%s\"",
                    d->rank, dflt ? "(the default)" : selection);
    }
    const spartan_device_info *dev = &list[match[(size_t)d->local_rank % nm]];
    snprintf(buf, size, "%u:%u", dev->platform_index, dev->device_index);
    if (shared) *shared = nm < (size_t)d->local_size;
    free(match);
    spartan_device_list_free(list);
    return SPARTAN_OK;
}

/* ---- Collectives for the application --------------------------------------------------------- */

/* Broadcasts n bytes from root (polled), in pieces that an int counts. */
static spartan_status bcast(spartan_dist *d, void *p, size_t n, int root, const char *what) {
    for (size_t done = 0; done < n;) {
        const size_t chunk = n - done < (size_t)1 << 30 ? n - done : (size_t)1 << 30;
        MPI_Request r;
        int rc = MPI_Ibcast((char *)p + done, (int)chunk, MPI_BYTE, root, d->comm, &r);
        if (rc != MPI_SUCCESS) return mpi_fail(d, "MPI_Ibcast", rc);
        spartan_status st = wait_requests(d, 1, &r, what);
        if (st != SPARTAN_OK) return st;
        done += chunk;
    }
    return SPARTAN_OK;
}

/* The first line where a and b differ, as "line N: 'A' against 'B'" into out. */
static void first_difference(const char *a, const char *b, char *out, size_t size) {
    size_t line = 1;
    const char *la = a, *lb = b;
    for (; *a && *a == *b; a++, b++)
        if (*a == '\n') {
            line++;
            la = a + 1;
            lb = b + 1;
        }
    const int na = (int)strcspn(la, "\n"), nb = (int)strcspn(lb, "\n");
    snprintf(out, size, "line %zu: \"%.*s\" against \"%.*s\"", line, na > 200 ? 200 : na, la,
             nb > 200 ? 200 : nb, lb);
}

spartan_status spartan_dist_check_same(spartan_dist *d, const char *what, const char *text) {
    if (!d || !what || !text) return SPARTAN_STATUS_INVALID_ARGUMENT;
    spartan_status st = usable(d);
    if (st != SPARTAN_OK || d->size < 2) return st;
    char w[160];
    snprintf(w, sizeof w, "the other ranks to compare %s", what);
    /* rank 0's text everywhere */
    uint64_t len0 = strlen(text) + 1;
    if ((st = bcast(d, &len0, sizeof len0, 0, w)) != SPARTAN_OK) return st;
    char *t0 = d->rank == 0 ? (char *)text : malloc(len0);
    if (!t0) return SPARTAN_STATUS_OUT_OF_HOST_MEMORY;
    st = bcast(d, t0, len0, 0, w);
    /* every rank's verdict everywhere */
    int *diff = malloc((size_t)d->size * sizeof *diff);
    if (st == SPARTAN_OK && !diff) st = SPARTAN_STATUS_OUT_OF_HOST_MEMORY;
    if (st == SPARTAN_OK) {
        if (t0 != text) t0[len0 - 1] = '\0';
        int mine = strcmp(t0, text) != 0;
        MPI_Request r;
        int rc = MPI_Iallgather(&mine, 1, MPI_INT, diff, 1, MPI_INT, d->comm, &r);
        st = rc != MPI_SUCCESS ? mpi_fail(d, "MPI_Iallgather", rc) : wait_requests(d, 1, &r, w);
    }
    int first = -1;
    for (int r = 1; st == SPARTAN_OK && r < d->size && first < 0; r++)
        if (diff[r]) first = r;
    if (st == SPARTAN_OK && first > 0) {
        /* that rank's text everywhere, for the message */
        uint64_t lenf = strlen(text) + 1;
        char *tf = NULL;
        st = bcast(d, &lenf, sizeof lenf, first, w);
        if (st == SPARTAN_OK && !(tf = d->rank == first ? (char *)text : malloc(lenf)))
            st = SPARTAN_STATUS_OUT_OF_HOST_MEMORY;
        if (st == SPARTAN_OK) st = bcast(d, tf, lenf, first, w);
        if (st == SPARTAN_OK) {
            if (tf != text) tf[lenf - 1] = '\0';
            char where[600];
            first_difference(t0, tf, where, sizeof where);
            st = fail(d, SPARTAN_STATUS_INVALID_ARGUMENT,
                      "the ranks disagree on %s: rank 0 and rank %d differ at %s (every rank "
                      "must run the same configuration)",
                      what, first, where);
        }
        if (tf != text) free(tf);
    }
    free(diff);
    if (t0 != text) free(t0);
    return st;
}

spartan_status spartan_dist_sum(spartan_dist *d, double *values, size_t n) {
    if (!d || (!values && n)) return SPARTAN_STATUS_INVALID_ARGUMENT;
    spartan_status st = usable(d);
    if (st != SPARTAN_OK || d->size < 2 || !n) return st;
    MPI_Request r;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, values, (int)n, MPI_DOUBLE, MPI_SUM, d->comm, &r);
    if (rc != MPI_SUCCESS) return mpi_fail(d, "MPI_Iallreduce", rc);
    return wait_requests(d, 1, &r, "the other ranks' sums");
}

/* ---- Parameters ------------------------------------------------------------------------------ */

/* The parameters as text: a name and shape per line (what attach compares). */
static char *describe_params(spartan_model *m) {
    const size_t np = spartan_model_param_count(m);
    size_t cap = 64 * (np + 1), len = 0;
    char *t = malloc(cap);
    if (!t) return NULL;
    t[0] = '\0';
    for (size_t i = 0; i < np; i++) {
        spartan_param p;
        if (spartan_model_param(m, i, &p) != SPARTAN_OK) continue;
        char line[256];
        int n = snprintf(line, sizeof line, "%s", p.name);
        for (size_t k = 0; k < p.rank && n < (int)sizeof line; k++)
            n += snprintf(line + n, sizeof line - (size_t)n, "%s%zu", k ? "x" : " ", p.shape[k]);
        if (len + (size_t)n + 2 > cap) {
            char *g = realloc(t, cap = 2 * cap + (size_t)n + 2);
            if (!g) {
                free(t);
                return NULL;
            }
            t = g;
        }
        len += (size_t)snprintf(t + len, cap - len, "%s\n", line);
    }
    return t;
}

/* FNV-1a over bytes, continuing from h. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

/* Parameter values and momenta, in order, through one host buffer: each read, then hashed into
 * *hash (hash != NULL), or broadcast from rank 0 and written on the others (hash NULL). */
static spartan_status each_param(spartan_dist *d, spartan_model *m, uint64_t *hash) {
    spartan_context *ctx = spartan_model_context(m);
    const size_t np = spartan_model_param_count(m);
    size_t most = 0;
    for (size_t i = 0; i < np; i++) {
        spartan_param p;
        if (spartan_model_param(m, i, &p) == SPARTAN_OK && spartan_tensor_numel(p.value) > most)
            most = spartan_tensor_numel(p.value);
    }
    float *host = malloc((most ? most : 1) * sizeof *host);
    if (!host) return SPARTAN_STATUS_OUT_OF_HOST_MEMORY;
    spartan_status st = SPARTAN_OK;
    for (size_t i = 0; i < np && st == SPARTAN_OK; i++) {
        spartan_param p;
        st = spartan_model_param(m, i, &p);
        spartan_tensor *t[2] = {p.value, p.momentum};
        for (int k = 0; k < 2 && st == SPARTAN_OK; k++) {
            const size_t n = spartan_tensor_numel(t[k]);
            if (!t[k] || !n) continue;
            if ((st = spartan_tensor_read(t[k], host, n)) != SPARTAN_OK) {
                st = fail(d, st, "rank %d: reading %s: %s", d->rank, p.name,
                          spartan_last_error(ctx));
                break;
            }
            if (hash) {
                *hash = fnv1a(*hash, host, n * sizeof *host);
                continue;
            }
            if ((st = bcast(d, host, n * sizeof *host, 0, "rank 0's parameters")) != SPARTAN_OK)
                break;
            if (d->rank != 0 && (st = spartan_tensor_write(t[k], host, n)) != SPARTAN_OK)
                st = fail(d, st, "rank %d: writing %s: %s", d->rank, p.name,
                          spartan_last_error(ctx));
        }
    }
    free(host);
    return st;
}

/* Rank 0's values and momenta to every rank. */
static spartan_status broadcast_params(spartan_dist *d, spartan_model *m) {
    return each_param(d, m, NULL);
}

spartan_status spartan_dist_sync_params(spartan_dist *d, int *drifted) {
    if (!d || !d->m) return SPARTAN_STATUS_INVALID_ARGUMENT;
    spartan_status st = usable(d);
    if (drifted) *drifted = 0;
    if (st != SPARTAN_OK || d->size < 2) return st;
    /* a hash of each rank's against rank 0's; the values move only where some rank differs */
    uint64_t h = 0xcbf29ce484222325ull, h0;
    if ((st = each_param(d, d->m, &h)) != SPARTAN_OK) return st;
    h0 = h;
    if ((st = bcast(d, &h0, sizeof h0, 0, "rank 0's parameters")) != SPARTAN_OK) return st;
    double differ = h0 != h;
    if ((st = spartan_dist_sum(d, &differ, 1)) != SPARTAN_OK) return st;
    if (differ == 0.0) return SPARTAN_OK;
    if (drifted) *drifted = 1;
    return broadcast_params(d, d->m);
}

/* ---- The gradient exchange (the model's hooks) ----------------------------------------------- */

/* Starts the all-reduce of every bucket whose gradients have arrived, in bucket order (every
 * rank must start them in the same order), and collects finished ones; *moved: anything did. */
static spartan_status progress(spartan_dist *d, int *moved) {
    for (size_t i = 0; i < d->nb; i++) {
        bucket *b = &d->b[i];
        if (b->state == B_IDLE) break; /* its reads not enqueued yet: the later ones neither */
        if (b->state != B_READING) continue;
        cl_int status = CL_QUEUED;
        cl_int rc = clGetEventInfo(b->read_done, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status,
                                   &status, NULL);
        if (rc != CL_SUCCESS || status < 0)
            return fail(d, SPARTAN_STATUS_OPENCL_ERROR,
                        "rank %d: reading the gradients of parameters %zu..%zu back failed (%d)",
                        d->rank, b->first, b->last, rc != CL_SUCCESS ? rc : status);
        if (status != CL_COMPLETE) break; /* in order */
        clReleaseEvent(b->read_done);
        b->read_done = NULL;
        b->t0 = now_s();
        int mrc =
            MPI_Iallreduce(MPI_IN_PLACE, b->host, (int)b->n, MPI_FLOAT, MPI_SUM, d->comm, &b->req);
        if (mrc != MPI_SUCCESS) return mpi_fail(d, "MPI_Iallreduce", mrc);
        b->state = B_REDUCING;
        *moved = 1;
    }
    for (size_t i = 0; i < d->nb; i++) {
        bucket *b = &d->b[i];
        if (b->state != B_REDUCING) continue;
        int done = 0;
        int rc = MPI_Test(&b->req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(d, "MPI_Test", rc);
        if (!done) continue;
        b->t1 = now_s();
        b->sum_s += b->t1 - b->t0;
        b->state = B_DONE;
        *moved = 1;
        /* the mean, written back (in queue order, before the update) */
        const float scale = 1.0f / (float)d->size;
        for (size_t k = 0; k < b->n; k++) b->host[k] *= scale;
        for (size_t j = b->first; j <= b->last; j++) {
            param_slot *p = &d->p[j];
            cl_int crc =
                clEnqueueWriteBuffer(d->queue, spartan_tensor_cl_mem(p->grad), CL_FALSE, 0,
                                     p->n * sizeof(float), b->host + p->offset, 0, NULL, NULL);
            if (crc != CL_SUCCESS)
                return fail(d,
                            crc == CL_OUT_OF_RESOURCES || crc == CL_MEM_OBJECT_ALLOCATION_FAILURE
                                ? SPARTAN_STATUS_OUT_OF_DEVICE_MEMORY
                                : SPARTAN_STATUS_OPENCL_ERROR,
                            "rank %d: writing the summed gradient of parameter %zu (%d)", d->rank,
                            j, crc);
        }
    }
    return SPARTAN_OK;
}

/* Which mode the trial gives step k of its 2 TRIAL_STEPS (alternated), or the decision. */
static int overlap_mode(const spartan_dist *d) {
    if (d->o.overlap >= 0) return d->o.overlap;
    if (d->decided) return d->overlap_now;
    if (d->steps < TRIAL_WARMUP) return 1;
    return (d->steps - TRIAL_WARMUP) % 2 == 0;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* After a step's exchange: its period into the trial; at the trial's last step, the decision,
 * from the medians summed over the ranks (the same on every rank). */
static spartan_status trial_step(spartan_dist *d) {
    const double t = now_s(), period = d->t_last > 0 ? t - d->t_last : 0.0;
    d->t_last = t;
    if (d->o.overlap >= 0 || d->decided || d->steps < TRIAL_WARMUP) return SPARTAN_OK;
    const size_t k = d->steps - TRIAL_WARMUP;
    d->trial[d->overlap_now][k / 2] = period;
    if (k + 1 < 2 * TRIAL_STEPS) return SPARTAN_OK;
    double med[2];
    for (int m = 0; m < 2; m++) {
        qsort(d->trial[m], TRIAL_STEPS, sizeof(double), cmp_double);
        med[m] = 0.5 * (d->trial[m][TRIAL_STEPS / 2 - 1] + d->trial[m][TRIAL_STEPS / 2]);
    }
    MPI_Request r;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, med, 2, MPI_DOUBLE, MPI_SUM, d->comm, &r);
    if (rc != MPI_SUCCESS) return mpi_fail(d, "MPI_Iallreduce", rc);
    spartan_status st = wait_requests(d, 1, &r, "the other ranks' step times");
    if (st != SPARTAN_OK) return st;
    d->trial_ms[0] = 1e3 * med[0] / d->size;
    d->trial_ms[1] = 1e3 * med[1] / d->size;
    d->overlap_now = med[1] <= med[0];
    d->decided = 1;
    return SPARTAN_OK;
}

static void begin_step(spartan_dist *d) {
    d->in_step = 1;
    d->overlap_now = overlap_mode(d);
    for (size_t i = 0; i < d->nb; i++) {
        d->b[i].left = d->b[i].last - d->b[i].first + 1;
        d->b[i].state = B_IDLE;
    }
}

static spartan_status hook_ready(void *user, size_t param, char *why, size_t why_size) {
    spartan_dist *d = user;
    spartan_status st = usable(d);
    if (st == SPARTAN_OK && param >= d->np)
        st = fail(d, SPARTAN_STATUS_INTERNAL, "parameter %zu of %zu", param, d->np);
    if (st == SPARTAN_OK && !d->in_step) begin_step(d);
    if (st == SPARTAN_OK) {
        param_slot *p = &d->p[param];
        bucket *b = &d->b[p->bucket];
        const int last = --b->left == 0;
        cl_int rc = clEnqueueReadBuffer(d->queue, spartan_tensor_cl_mem(p->grad), CL_FALSE, 0,
                                        p->n * sizeof(float), b->host + p->offset, 0, NULL,
                                        last ? &b->read_done : NULL);
        if (rc != CL_SUCCESS)
            st = fail(d, SPARTAN_STATUS_OPENCL_ERROR,
                      "rank %d: enqueueing the read of parameter %zu's gradient (%d)", d->rank,
                      param, rc);
        if (st == SPARTAN_OK && last) {
            b->state = B_READING;
            clFlush(d->queue); /* the device starts on it while the host goes on */
        }
        int moved = 0;
        if (st == SPARTAN_OK && d->overlap_now) st = progress(d, &moved);
    }
    if (st != SPARTAN_OK) snprintf(why, why_size, "%s", d->err);
    return st;
}

/* The union of the buckets' all-reduce intervals, and its part after t_end (the backward pass's
 * end). The buckets start in order, so their starts are sorted. */
static void account(spartan_dist *d, double t_end, double waited) {
    double total = 0.0, exposed = 0.0, lo = 0.0, hi = -1.0;
    for (size_t i = 0; i <= d->nb; i++) {
        const bucket *b = i < d->nb ? &d->b[i] : NULL;
        if (b && b->t0 <= hi) {
            if (b->t1 > hi) hi = b->t1;
            continue;
        }
        if (hi > lo) {
            total += hi - lo;
            exposed += hi > t_end ? hi - (lo > t_end ? lo : t_end) : 0.0;
        }
        if (b) {
            lo = b->t0;
            hi = b->t1;
        }
    }
    d->stats.steps++;
    d->stats.allreduce_s += total;
    d->stats.exposed_s += exposed;
    d->stats.wait_s += waited;
}

static spartan_status hook_finish(void *user, char *why, size_t why_size) {
    spartan_dist *d = user;
    const double t_in = now_s();
    spartan_status st = usable(d);
    if (st == SPARTAN_OK && !d->in_step) begin_step(d); /* no parameters: nothing to read */
    double t_end = t_in; /* the backward pass's end: when the last read was seen done */
    int seen_end = d->nb == 0;
    for (size_t k = 0; st == SPARTAN_OK && k < d->nb; k++)
        if (d->b[k].state == B_IDLE)
            st = fail(d, SPARTAN_STATUS_INTERNAL, "bucket %zu: %zu of its parameters not ready", k,
                      d->b[k].left);
    /* no overlap: nothing starts before the device has finished the backward pass */
    if (st == SPARTAN_OK && !d->overlap_now && d->nb) {
        cl_event last = d->b[d->nb - 1].read_done;
        if (last && clWaitForEvents(1, &last) != CL_SUCCESS)
            st = fail(d, SPARTAN_STATUS_OPENCL_ERROR, "rank %d: the backward pass failed", d->rank);
        seen_end = 1;
        t_end = now_s();
    }
    for (;;) {
        if (st != SPARTAN_OK) break;
        int moved = 0;
        st = progress(d, &moved);
        if (st != SPARTAN_OK) break;
        if (!seen_end && d->b[d->nb - 1].state >= B_REDUCING) {
            seen_end = 1;
            t_end = now_s();
        }
        size_t done = 0;
        for (size_t i = 0; i < d->nb; i++) done += d->b[i].state == B_DONE;
        if (done == d->nb) break;
        if (peer_stopped(d)) {
            st = SPARTAN_STATUS_COMMUNICATION;
            break;
        }
        if (d->o.timeout_s > 0 && now_s() - t_in > d->o.timeout_s) {
            st = fail(d, SPARTAN_STATUS_COMMUNICATION,
                      "rank %d waited %.0f s for the gradient all-reduce of step %zu: another "
                      "rank is stuck or gone (SPARTAN_DIST_TIMEOUT)",
                      d->rank, now_s() - t_in, d->steps);
            break;
        }
        if (!moved) nap_ns(seen_end ? POLL_NS : POLL_BUSY_NS);
    }
    if (st != SPARTAN_OK) {
        snprintf(why, why_size, "%s", d->err);
        return st;
    }
    account(d, t_end, now_s() - t_in);
    d->in_step = 0;
    st = trial_step(d);
    d->steps++;
    if (st != SPARTAN_OK) snprintf(why, why_size, "%s", d->err);
    return st;
}

/* A step failed on this rank after it began: collectives cannot be taken back, so the ranks
 * are out of step from here (usable() says so); the reads under way finish first. */
static void hook_cancel(void *user) {
    spartan_dist *d = user;
    d->broken = 1;
    d->in_step = 0;
    clFinish(d->queue);
    for (size_t i = 0; i < d->nb; i++)
        if (d->b[i].read_done) {
            clReleaseEvent(d->b[i].read_done);
            d->b[i].read_done = NULL;
        }
}

/* The buckets: parameters from the last (the backward pass's order) until one holds
 * bucket_bytes. */
static spartan_status make_buckets(spartan_dist *d, spartan_model *m) {
    const size_t np = spartan_model_param_count(m);
    d->p = calloc(np ? np : 1, sizeof *d->p);
    d->b = calloc(np ? np : 1, sizeof *d->b);
    if (!d->p || !d->b) return SPARTAN_STATUS_OUT_OF_HOST_MEMORY;
    d->np = np;
    size_t bytes = 0;
    for (size_t j = np; j-- > 0;) {
        spartan_param p;
        spartan_status st = spartan_model_param(m, j, &p);
        if (st != SPARTAN_OK) return st;
        if (d->nb == 0 || bytes >= d->o.bucket_bytes || !d->o.bucket_bytes) {
            d->b[d->nb++] = (bucket){.first = j, .last = j};
            bytes = 0;
        }
        bucket *b = &d->b[d->nb - 1];
        d->p[j] = (param_slot){p.grad, spartan_tensor_numel(p.grad), d->nb - 1, 0};
        if (b->n + d->p[j].n > INT_MAX) /* MPI counts are ints */
            return fail(d, SPARTAN_STATUS_UNSUPPORTED,
                        "rank %d: %s has %zu elements: more than one all-reduce can carry", d->rank,
                        p.name, d->p[j].n);
        b->first = j;
        b->n += d->p[j].n;
        bytes += d->p[j].n * sizeof(float);
    }
    for (size_t i = 0; i < d->nb; i++) {
        bucket *b = &d->b[i];
        size_t off = 0;
        for (size_t j = b->first; j <= b->last; j++) {
            d->p[j].offset = off;
            off += d->p[j].n;
        }
        if (!(b->host = malloc((b->n ? b->n : 1) * sizeof(float))))
            return SPARTAN_STATUS_OUT_OF_HOST_MEMORY;
        b->req = MPI_REQUEST_NULL;
    }
    return SPARTAN_OK;
}

spartan_status spartan_dist_attach(spartan_dist *d, spartan_model *m) {
    if (!d || !m) return SPARTAN_STATUS_INVALID_ARGUMENT;
    if (!spartan_model_is_prepared(m))
        return fail(d, SPARTAN_STATUS_INVALID_ARGUMENT,
                    "spartan_dist_attach: prepare the model first");
    spartan_status st = usable(d);
    if (st != SPARTAN_OK) return st;
    if (d->m) {
        spartan_model_set_grad_hooks(d->m, NULL);
        spartan_model_set_shard(d->m, 0);
        spartan_context_finish(spartan_model_context(d->m));
        release_buckets(d);
        d->m = NULL;
    }
    char *text = describe_params(m);
    if (!text) return SPARTAN_STATUS_OUT_OF_HOST_MEMORY;
    st = spartan_dist_check_same(d, "the model's parameters", text);
    free(text);
    if (st != SPARTAN_OK) return st;
    if (d->size < 2) {
        d->m = m;
        return SPARTAN_OK;
    }
    if ((st = broadcast_params(d, m)) != SPARTAN_OK) return st;
    if (spartan_context_cl_handles(spartan_model_context(m), NULL, NULL, NULL, &d->queue) !=
        SPARTAN_OK)
        return fail(d, SPARTAN_STATUS_INTERNAL, "the model's context has no queue");
    if ((st = make_buckets(d, m)) != SPARTAN_OK) {
        release_buckets(d);
        if (st == SPARTAN_STATUS_OUT_OF_HOST_MEMORY)
            fail(d, st, "rank %d: no host memory for the gradient buckets", d->rank);
        return st;
    }
    /* rank r's images are the r-th share of the step's: their dropout masks too */
    spartan_train_config cfg;
    if ((st = spartan_model_config(m, &cfg)) != SPARTAN_OK) {
        release_buckets(d);
        return fail(d, st, "rank %d: the model's configuration", d->rank);
    }
    spartan_model_set_shard(m, (size_t)d->rank * cfg.batch);
    const spartan_grad_hooks h = {hook_ready, hook_finish, hook_cancel, d};
    if ((st = spartan_model_set_grad_hooks(m, &h)) != SPARTAN_OK) {
        release_buckets(d);
        return st;
    }
    d->m = m;
    d->in_step = d->broken = d->decided = 0;
    d->steps = 0;
    d->t_last = 0.0;
    spartan_dist_reset_stats(d);
    return SPARTAN_OK;
}

/* ---- Statistics ------------------------------------------------------------------------------ */

void spartan_dist_stats_get(const spartan_dist *d, spartan_dist_stats *out) {
    if (!out) return;
    *out = d ? d->stats : (spartan_dist_stats){0};
    if (!d) return;
    out->buckets = d->nb;
    size_t floats = 0;
    for (size_t i = 0; i < d->nb; i++) floats += d->b[i].n;
    out->bytes = floats * sizeof(float);
    out->overlap = d->o.overlap >= 0 ? d->o.overlap : d->decided ? d->overlap_now : -1;
    out->trial_ms[0] = d->trial_ms[0];
    out->trial_ms[1] = d->trial_ms[1];
}

spartan_status spartan_dist_bucket_get(const spartan_dist *d, size_t i, spartan_dist_bucket *out) {
    if (!d || !out || i >= d->nb) return SPARTAN_STATUS_INVALID_ARGUMENT;
    const bucket *b = &d->b[i];
    *out = (spartan_dist_bucket){b->first, b->last, b->n * sizeof(float), b->sum_s};
    return SPARTAN_OK;
}

void spartan_dist_reset_stats(spartan_dist *d) {
    if (!d) return;
    d->stats = (spartan_dist_stats){0};
    for (size_t i = 0; i < d->nb; i++) d->b[i].sum_s = 0.0;
}
