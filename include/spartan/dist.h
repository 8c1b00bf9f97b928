/* Data-parallel training over MPI: one process (rank) per device, each training a replica of the
 * model on its own share of every batch, the gradients averaged across the ranks between the
 * backward pass and the update (docs/distributed.md). Built with SPARTAN_WITH_MPI (Open MPI or
 * any MPI-3 library) into its own library, spartan_dist (libspartan itself stays MPI-free):
 *
 *     MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
 *     spartan_dist *d;
 *     spartan_dist_create(MPI_COMM_WORLD, NULL, &d);
 *     char dev[32];
 *     spartan_dist_device(d, getenv("SPARTAN_DEVICE"), dev, sizeof dev); // this rank's device
 *     ... context on dev, model, spartan_model_prepare with the batch of one rank ...
 *     spartan_dist_check_same(d, "the model", description);             // every rank alike
 *     spartan_dist_attach(d, model);       // rank 0's parameters everywhere, gradient hooks set
 *     for each step: spartan_model_train_step(model, my images, ...)     // averaged gradients
 *     spartan_dist_destroy(d);             // before the model; then MPI_Finalize
 *
 * A step of R ranks with batch B each is the step of one device with batch R.B (the images of
 * rank r are the batch's r-th share) up to the summation order: the gradients (each the mean
 * over its rank's B images) are summed across the ranks and divided by R. They go in buckets
 * (spartan_dist_opts.bucket_bytes) in the order the backward pass finishes them, each bucket's
 * MPI_Iallreduce started as soon as its gradients are read back while the device computes the
 * earlier layers (spartan_model_set_grad_hooks), the sums written back before the update.
 *
 * Failure, not hangs: every wait on the other ranks polls, so that a rank that stops says so to
 * the others (spartan_dist_abort) and their waits end with its message; a wait longer than
 * spartan_dist_opts.timeout_s ends with an error naming what was awaited. A rank that dies
 * outright is the MPI launcher's to notice (mpirun ends the job). Errors: a status, and the
 * message in spartan_dist_last_error. Nothing is printed.
 * Threads: the calls, and the model's steps once attached, on one thread (MPI_THREAD_FUNNELED:
 * the thread that initialised MPI). */
#ifndef SPARTAN_DIST_H
#define SPARTAN_DIST_H

#include <mpi.h>
#include <stddef.h>

#include "spartan/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spartan_dist spartan_dist;

typedef struct spartan_dist_opts {
    /* Gradient bytes per all-reduce (default 1 MiB; $SPARTAN_DIST_BUCKET_KB): parameters join a
     * bucket, in the order the backward pass finishes them, until it holds this many; 0: one
     * bucket per parameter. */
    size_t bucket_bytes;
    /* 1: each bucket's all-reduce starts as soon as its gradients are read back, while the
     * backward pass goes on (the host polls MPI meanwhile); 0: all of them once the device has
     * finished the backward pass (the host waits on the device); -1 (default): measured, each
     * mode on alternate steps after the first few (8 each), the faster kept (on a CPU device the
     * host's polling takes cores from the backward pass: there it can lose). $SPARTAN_DIST_OVERLAP
     * 0 or 1 sets it. */
    int overlap;
    /* The longest wait for the other ranks, seconds (default 600; $SPARTAN_DIST_TIMEOUT; 0: no
     * limit): past it the wait ends with an error saying what it waited for. */
    double timeout_s;
} spartan_dist_opts;

SPARTAN_API spartan_dist_opts spartan_dist_opts_default(void);

/* A handle on comm's ranks (comm is duplicated: the library's messages never meet the
 * application's). Collective over comm. opts: NULL for the defaults. */
SPARTAN_API spartan_status spartan_dist_create(MPI_Comm comm, const spartan_dist_opts *opts,
                                               spartan_dist **out);
/* Detaches the model (its hooks removed) and frees the handle; not collective. */
SPARTAN_API void spartan_dist_destroy(spartan_dist *d);
/* The message of the last failed call ("" when none). */
SPARTAN_API const char *spartan_dist_last_error(const spartan_dist *d);

SPARTAN_API int spartan_dist_rank(const spartan_dist *d);
SPARTAN_API int spartan_dist_size(const spartan_dist *d);
/* This rank's place among the ranks on its node (shared memory), and their count. */
SPARTAN_API int spartan_dist_local_rank(const spartan_dist *d);
SPARTAN_API int spartan_dist_local_size(const spartan_dist *d);

/* This rank's device as a "P:D" selection string (device.h) into buf: of the devices that
 * `selection` matches (NULL or "": the default's kind, GPUs if there are any, else every
 * device but simulators), the (local rank mod their count)-th, so that the ranks of a node
 * spread over its devices; a "P:D" selection is kept as it is (one rank's own choice).
 * *shared (may be NULL): set to 1 when fewer devices match than ranks on the node (some share
 * one). Not collective. */
SPARTAN_API spartan_status spartan_dist_device(spartan_dist *d, const char *selection, char *buf,
                                               size_t size, int *shared);

/* Checks that every rank passes the same text (a configuration: the model's description, the
 * batch, the seed, ...): INVALID_ARGUMENT on every rank when one differs, the message naming the
 * first rank that differs from rank 0 and the first differing line of both ("what" names the
 * text). Collective. */
SPARTAN_API spartan_status spartan_dist_check_same(spartan_dist *d, const char *what,
                                                   const char *text);

/* Attaches a prepared model: checks that the ranks' parameters have the same names and shapes,
 * copies rank 0's parameter values and momenta to every rank (replicas start equal whatever
 * each device's initialisation), and sets the model's gradient hooks. One rank alone: nothing
 * to exchange, no hooks. Collective. The model must stay prepared and attached until
 * spartan_dist_destroy (spartan_model_prepare again: attach again). */
SPARTAN_API spartan_status spartan_dist_attach(spartan_dist *d, spartan_model *m);

/* Checks whether every rank's parameter values and momenta equal rank 0's (a hash of each), and
 * where some rank's differ, copies rank 0's to every rank (*drifted, may be NULL: 1 then: ranks on
 * different devices round differently). Collective. */
SPARTAN_API spartan_status spartan_dist_sync_params(spartan_dist *d, int *drifted);

/* Sums n values across the ranks, in place (evaluation counts, loss sums). Collective. */
SPARTAN_API spartan_status spartan_dist_sum(spartan_dist *d, double *values, size_t n);

/* Tells every other rank that this one stops, and why: their waits on it (and any later call
 * that would wait) end with "rank R stopped: why". Returns once each has acknowledged or after
 * a few seconds. Then end the process (MPI_Abort): MPI cannot be finalised cleanly with
 * collectives left half done. */
SPARTAN_API void spartan_dist_abort(spartan_dist *d, const char *why);
/* Whether another rank's abort ended a wait of this one (then the last error says which). */
SPARTAN_API int spartan_dist_peer_stopped(const spartan_dist *d);

/* The exchange so far (since the last reset). Times are host wall time. */
typedef struct spartan_dist_stats {
    size_t steps;       /* steps exchanged */
    size_t buckets;     /* all-reduces per step */
    size_t bytes;       /* gradient bytes per step and rank (each all-reduce's input) */
    double allreduce_s; /* time with at least one all-reduce in flight, summed over the steps */
    double exposed_s;   /* of it, the time after the backward pass had ended on the device:
                           what the step waited for (the rest was hidden behind the pass) */
    double wait_s;      /* time the steps spent in the exchange's final wait (device included) */
    int overlap;        /* the mode now: 1 overlapped, 0 after the backward pass, -1 on trial */
    double trial_ms[2]; /* a measured choice: the median step without [0] and with [1] overlap,
                           ms, averaged over the ranks (0: not measured) */
} spartan_dist_stats;

/* One bucket: its parameters (spartan_model_param indices first..last, inclusive; the backward
 * pass finishes the last first), its bytes, and its all-reduce's time summed over the steps. */
typedef struct spartan_dist_bucket {
    size_t first_param, last_param;
    size_t bytes;
    double allreduce_s;
} spartan_dist_bucket;

SPARTAN_API void spartan_dist_stats_get(const spartan_dist *d, spartan_dist_stats *out);
/* Bucket i (0: the first started); INVALID_ARGUMENT past the last. */
SPARTAN_API spartan_status spartan_dist_bucket_get(const spartan_dist *d, size_t i,
                                                   spartan_dist_bucket *out);
SPARTAN_API void spartan_dist_reset_stats(spartan_dist *d);

#ifdef __cplusplus
}
#endif

#endif /* SPARTAN_DIST_H */
