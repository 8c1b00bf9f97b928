/* spartan-train's side of data parallelism (train_dist.h). */
#include "train_dist.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether a launcher started this process as one of several (Open MPI, MPICH and Slurm's PMI
 * say so in the environment). */
static int launched_size(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return getenv("PMIX_RANK") ? 2 : 0; /* a PMIx launch without the size: more than one */
}

#ifndef SPARTAN_WITH_MPI

struct train_dist {
    int unused;
};

int train_dist_start(int *argc, char ***argv, train_dist **out) {
    (void)argc;
    (void)argv;
    *out = NULL;
    const int n = launched_size();
    if (n > 1) {
        fprintf(stderr,
                "spartan-train: started as one of %d processes by an MPI launcher, but built "
                "without MPI: each would train alone and write the same files. Build with "
                "-DSPARTAN_WITH_MPI=ON (docs/distributed.md)\n",
                n);
        return 0;
    }
    return 1;
}

int train_dist_rank(const train_dist *t) {
    (void)t;
    return 0;
}

int train_dist_size(const train_dist *t) {
    (void)t;
    return 1;
}

const char *train_dist_device(train_dist *t, const char *selection, char *buf, size_t size) {
    (void)t;
    (void)buf;
    (void)size;
    return selection;
}

int train_dist_check(train_dist *t, const char *what, const char *text) {
    (void)t;
    (void)what;
    (void)text;
    return 1;
}

int train_dist_attach(train_dist *t, spartan_model *m) {
    (void)t;
    (void)m;
    return 1;
}

int train_dist_sum(train_dist *t, double *values, size_t n) {
    (void)t;
    (void)values;
    (void)n;
    return 1;
}

int train_dist_sync(train_dist *t) {
    (void)t;
    return 1;
}

void train_dist_report(train_dist *t, spartan_model *m) {
    (void)t;
    (void)m;
}

void train_dist_failed(train_dist *t, const char *message) {
    (void)t;
    (void)message;
}

int train_dist_end(train_dist *t, int rc) {
    (void)t;
    return rc;
}

#else /* SPARTAN_WITH_MPI */

#include <mpi.h>

#include "spartan/dist.h"

struct train_dist {
    spartan_dist *d;
    int rank, size;
    char failure[512]; /* the first failure, for the others */
    int agreed;        /* the failure is known to every rank alike (a configuration check) */
};

/* SIGTERM and SIGINT: the launcher ends the job (a rank died, or the user pressed Ctrl-C). The
 * rank says so before it goes: mpirun's own message names the rank that ended first. */
static char stop_line[160];

static void on_signal(int sig) {
    if (stop_line[0]) {
        ssize_t n = write(STDERR_FILENO, stop_line, strlen(stop_line));
        (void)n;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_signals(int rank, int size) {
    snprintf(stop_line, sizeof stop_line,
             "spartan-train: rank %d of %d: stopped by a signal from the MPI launcher (another "
             "rank ended abnormally, or the job was interrupted: see mpirun's message)\n",
             rank, size);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

static int dist_fail(train_dist *t, const char *what) {
    char msg[sizeof t->failure];
    snprintf(msg, sizeof msg, "%s: %s", what, spartan_dist_last_error(t->d));
    fprintf(stderr, "spartan-train: rank %d of %d: %s\n", t->rank, t->size, msg);
    /* a message that came from another rank needs no echo back to it */
    if (!spartan_dist_peer_stopped(t->d)) train_dist_failed(t, msg);
    return 0;
}

int train_dist_start(int *argc, char ***argv, train_dist **out) {
    *out = NULL;
    if (launched_size() < 1) return 1; /* alone: no MPI at all */
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "spartan-train: MPI_Init_thread failed\n");
        return 0;
    }
    train_dist *t = calloc(1, sizeof *t);
    if (!t || spartan_dist_create(MPI_COMM_WORLD, NULL, &t->d) != SPARTAN_OK) {
        fprintf(stderr, "spartan-train: could not set up the distributed run\n");
        free(t);
        MPI_Abort(MPI_COMM_WORLD, 1);
        return 0;
    }
    t->rank = spartan_dist_rank(t->d);
    t->size = spartan_dist_size(t->d);
    install_signals(t->rank, t->size);
    /* the figures come from rank 0 only; the others' standard output goes nowhere */
    if (t->rank != 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "spartan-train: rank %d: cannot silence stdout\n", t->rank);
        train_dist_failed(t, "cannot silence its standard output");
        train_dist_end(t, 1);
        return 0;
    }
    *out = t;
    return 1;
}

int train_dist_rank(const train_dist *t) {
    return t ? t->rank : 0;
}

int train_dist_size(const train_dist *t) {
    return t ? t->size : 1;
}

const char *train_dist_device(train_dist *t, const char *selection, char *buf, size_t size) {
    if (!t) return selection;
    int shared = 0;
    if (spartan_dist_device(t->d, selection, buf, size, &shared) != SPARTAN_OK) {
        dist_fail(t, "choosing the device");
        return NULL;
    }
    if (shared && t->rank == 0)
        printf("spartan-train: %d ranks on this node, fewer devices match: some ranks share a "
               "device\n",
               spartan_dist_local_size(t->d));
    return buf;
}

int train_dist_check(train_dist *t, const char *what, const char *text) {
    if (!t) return 1;
    spartan_status st = spartan_dist_check_same(t->d, what, text);
    if (st == SPARTAN_OK) return 1;
    t->agreed = st == SPARTAN_STATUS_INVALID_ARGUMENT; /* every rank found the same difference */
    return dist_fail(t, "checking the configuration");
}

int train_dist_attach(train_dist *t, spartan_model *m) {
    if (!t || spartan_dist_attach(t->d, m) == SPARTAN_OK) return 1;
    return dist_fail(t, "attaching the model");
}

int train_dist_sum(train_dist *t, double *values, size_t n) {
    if (!t || spartan_dist_sum(t->d, values, n) == SPARTAN_OK) return 1;
    return dist_fail(t, "summing across the ranks");
}

int train_dist_sync(train_dist *t) {
    int drifted = 0;
    if (!t) return 1;
    if (spartan_dist_sync_params(t->d, &drifted) != SPARTAN_OK)
        return dist_fail(t, "synchronising the parameters");
    if (drifted)
        printf("  replicas: some rank's parameters differed from rank 0's (devices that round "
               "differently): set to rank 0's again\n");
    return 1;
}

void train_dist_report(train_dist *t, spartan_model *m) {
    if (!t || t->size < 2) return;
    spartan_dist_stats s;
    spartan_dist_stats_get(t->d, &s);
    if (!s.steps) return;
    const double n = (double)s.steps;
    printf("\ngradient all-reduce (%d ranks; rank 0's view, host clock): %.2f MB per step in %zu "
           "bucket%s; all-reduce %.3f ms per step, of which %.3f ms (%.0f %%) hidden behind the "
           "backward pass and %.3f ms exposed; the step's final wait %.3f ms (the device's "
           "backward included); %zu steps\n",
           t->size, (double)s.bytes / 1e6, s.buckets, s.buckets == 1 ? "" : "s",
           1e3 * s.allreduce_s / n, 1e3 * (s.allreduce_s - s.exposed_s) / n,
           s.allreduce_s > 0 ? 100.0 * (s.allreduce_s - s.exposed_s) / s.allreduce_s : 0.0,
           1e3 * s.exposed_s / n, 1e3 * s.wait_s / n, s.steps);
    if (s.trial_ms[0] > 0)
        printf("overlap with the backward pass: %s (measured over alternate steps: %.2f ms per "
               "step with it, %.2f ms without; SPARTAN_DIST_OVERLAP sets it)\n",
               s.overlap ? "on" : "off", s.trial_ms[1], s.trial_ms[0]);
    else if (s.overlap < 0) /* a run shorter than the trial */
        printf("overlap with the backward pass: still on trial when the run ended\n");
    else
        printf("overlap with the backward pass: %s (set)\n", s.overlap ? "on" : "off");
    printf("%-8s %-28s %-12s %s\n", "bucket", "parameters", "bytes", "all-reduce ms/step");
    spartan_dist_bucket b;
    for (size_t i = 0; spartan_dist_bucket_get(t->d, i, &b) == SPARTAN_OK; i++) {
        spartan_param first, last;
        char names[64] = "?";
        if (spartan_model_param(m, b.first_param, &first) == SPARTAN_OK &&
            spartan_model_param(m, b.last_param, &last) == SPARTAN_OK)
            snprintf(names, sizeof names, "%s%s%s", last.name,
                     b.first_param == b.last_param ? "" : " .. ",
                     b.first_param == b.last_param ? "" : first.name);
        printf("%-8zu %-28s %-12zu %.3f\n", i, names, b.bytes, 1e3 * b.allreduce_s / n);
    }
}

void train_dist_failed(train_dist *t, const char *message) {
    if (t && !t->failure[0]) snprintf(t->failure, sizeof t->failure, "%s", message);
}

int train_dist_end(train_dist *t, int rc) {
    if (!t) return rc;
    if (rc != 0 && !t->agreed) {
        /* the others may be waiting on this rank: tell them, then end the job (MPI cannot be
         * finalised with their collectives half done) */
        char why[sizeof t->failure + 32];
        if (t->failure[0])
            snprintf(why, sizeof why, "%s", t->failure);
        else
            snprintf(why, sizeof why, "it ended with status %d", rc);
        stop_line[0] = '\0'; /* its own reason is printed: the launcher's signal adds none */
        if (!spartan_dist_peer_stopped(t->d)) spartan_dist_abort(t->d, why);
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    spartan_dist_destroy(t->d);
    free(t);
    MPI_Finalize();
    return rc;
}

#endif /* SPARTAN_WITH_MPI */
