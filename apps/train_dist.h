/* spartan-train's side of data parallelism (docs/distributed.md): under mpirun, in a build with
 * SPARTAN_WITH_MPI, one rank per device over spartan_dist (include/spartan/dist.h); otherwise one
 * process alone, every call below a no-op for it (and a refusal when a launcher started several
 * copies of a build without MPI). Every failure is printed here, prefixed with the rank. */
#ifndef SPARTAN_TRAIN_DIST_H
#define SPARTAN_TRAIN_DIST_H

#include <stddef.h>

#include "spartan/nn.h"

typedef struct train_dist train_dist;

/* Starts MPI when a launcher started this process (its environment says so); *out stays NULL
 * for a process alone. 0 after a message when it cannot go on. Ranks other than 0 print only
 * their errors: their standard output goes to /dev/null. */
int train_dist_start(int *argc, char ***argv, train_dist **out);
int train_dist_rank(const train_dist *t);
int train_dist_size(const train_dist *t);
/* The device this rank is to use ("P:D"), from the selection (--device or $SPARTAN_DEVICE);
 * selection itself for a process alone. NULL after a message. */
const char *train_dist_device(train_dist *t, const char *selection, char *buf, size_t size);
/* Every rank's text equal to rank 0's (what names it), else a message on every rank. */
int train_dist_check(train_dist *t, const char *what, const char *text);
/* The prepared model attached: rank 0's parameters everywhere, gradients averaged each step. */
int train_dist_attach(train_dist *t, spartan_model *m);
/* Sums values across the ranks in place. */
int train_dist_sum(train_dist *t, double *values, size_t n);
/* At an epoch's end: the replicas compared and made equal to rank 0's again (a note when they
 * had drifted: devices that round differently). */
int train_dist_sync(train_dist *t);
/* The exchange's report (rank 0): all-reduce time per step, how much of it the backward pass
 * hid, per bucket. */
void train_dist_report(train_dist *t, spartan_model *m);
/* Records a failure's message, for the other ranks (sent by train_dist_end). */
void train_dist_failed(train_dist *t, const char *message);
/* Ends the process's part: rc 0, MPI finalised; otherwise the other ranks are told why (the last
 * failure recorded) and the job is aborted. Returns rc (for main's return). Frees t. */
int train_dist_end(train_dist *t, int rc);

#endif /* SPARTAN_TRAIN_DIST_H */
