/* The PyTorch CPU line of `spartan-bench train`: tools/pytorch_train.py run in a child process
 * with OPENBLAS_NUM_THREADS=1, its output echoed with a prefix and its JSON records (one per
 * epoch, written to a temporary file) read back into a bench_train_result; bench_spawn, which
 * portability.c also uses to run gnuplot. What this file does not do: anything on the device. */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#ifndef SPARTAN_SOURCE_DIR
#define SPARTAN_SOURCE_DIR "."
#endif

extern char **environ;

/* bench.h; OPENBLAS_NUM_THREADS=1 so that OpenBLAS's threads do not fight PyTorch's for the
 * cores. posix_spawn, not fork: the OpenCL driver has threads running. */
int bench_spawn(char *const argv[], const char *prefix) {
    size_t n = 0, k = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 2, sizeof *env);
    int fds[2];
    if (!env || pipe(fds)) {
        free(env);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "OPENBLAS_NUM_THREADS=", 21)) env[k++] = environ[i];
    static char openblas_one[] = "OPENBLAS_NUM_THREADS=1";
    env[k] = openblas_one;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    fflush(stdout);
    pid_t pid;
    int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    if (!f) close(fds[0]);
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (!prefix) continue;
        size_t len = strlen(line);
        printf("%s%s%s", prefix, line, len && line[len - 1] == '\n' ? "" : "\n");
        fflush(stdout);
    }
    if (f) fclose(f);
    if (err) return -1;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

const char *bench_pytorch_script(const bench_train_opts *o, char *why, size_t len) {
    static char path[1024];
    snprintf(path, sizeof path, "%s",
             o->pytorch_script ? o->pytorch_script : SPARTAN_SOURCE_DIR "/tools/pytorch_train.py");
    if (access(path, R_OK)) {
        snprintf(why, len, "no script %s (--pytorch-script FILE)", path);
        return NULL;
    }
    char *check[] = {(char *)o->python, "-c", "import torch", NULL};
    if (bench_spawn(check, NULL) != 0) {
        snprintf(why, len, "%s -c 'import torch' failed", o->python);
        return NULL;
    }
    return path;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, n = 0;
    char *buf = f ? malloc(cap) : NULL;
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *more = realloc(buf, cap *= 2);
        if (!more) free(buf);
        buf = more;
    }
    if (buf) buf[n] = '\0';
    if (f) fclose(f);
    return buf;
}

static double json_num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int bench_pytorch_train(const bench_train_opts *o, const char *script, const char *model,
                        bench_train_result *r) {
    char tmp[1024];
    const char *dir = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/spartan-bench-pytorch-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(r->note, sizeof r->note, "no temporary file: %s", strerror(errno));
        return 1;
    }
    close(fd);
    char epochs[24], batch[24], seed[24], threads[24], limit[24], test_limit[24], dropout[32];
    snprintf(epochs, sizeof epochs, "%d", o->epochs);
    snprintf(batch, sizeof batch, "%zu", o->batch);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    snprintf(threads, sizeof threads, "%d", o->pytorch_threads);
    snprintf(limit, sizeof limit, "%zu", o->limit);
    snprintf(test_limit, sizeof test_limit, "%zu", o->test_limit);
    char *argv[24] = {(char *)o->python, (char *)script,
                      "--model",         (char *)model,
                      "--epochs",        epochs,
                      "--batch",         batch,
                      "--seed",          seed,
                      "--threads",       threads,
                      "--json",          tmp};
    int a = 14;
    if (o->limit) {
        argv[a++] = "--limit";
        argv[a++] = limit;
    }
    if (o->test_limit) {
        argv[a++] = "--test-limit";
        argv[a++] = test_limit;
    }
    if (o->data) {
        argv[a++] = "--data";
        argv[a++] = (char *)o->data;
    }
    if (o->dropout >= 0.0f) { /* the models' dropout rate, as the Spartan runs have it */
        snprintf(dropout, sizeof dropout, "%.9g", (double)o->dropout);
        argv[a++] = "--dropout";
        argv[a++] = dropout;
    }
    int status = bench_spawn(argv, "  pytorch | ");
    char *text = status == 0 ? read_text(tmp) : NULL;
    unlink(tmp);
    cJSON *list = text ? cJSON_Parse(text) : NULL;
    free(text);
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0;
    double *secs = n > 0 ? calloc((size_t)n, sizeof *secs) : NULL;
    if (!secs) {
        snprintf(r->note, sizeof r->note, "pytorch_train.py exited with %d, no records", status);
        cJSON_Delete(list);
        return 1;
    }
    const cJSON *last = cJSON_GetArrayItem(list, n - 1);
    for (int i = 0; i < n; i++) secs[i] = json_num(cJSON_GetArrayItem(list, i), "seconds");
    r->images = (size_t)llround(json_num(last, "images_per_s") * json_num(last, "seconds"));
    bench_train_epochs(secs, n, r);
    r->train_loss = json_num(last, "train_loss");
    r->train_acc = json_num(last, "train_acc");
    r->test_acc = json_num(last, "test_acc");
    r->test_loss = NAN;
    free(secs);
    cJSON_Delete(list);
    return isfinite(r->images_per_s) ? 0 : 1;
}
