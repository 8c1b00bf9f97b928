/* train_cnn: trains a small convolutional network on Fashion-MNIST with libspartan, then
 * reports its accuracy on the test set. A tutorial in one file, to be read top-down and copied:
 *
 *   1. load the training and test sets (spartan/io.h),
 *   2. open a context on an OpenCL device (spartan/device.h),
 *   3. build a CNN layer by layer and prepare it for training (spartan/nn.h),
 *   4. run SGD steps on shuffled batches,
 *   5. evaluate on the test set and print the accuracy,
 *   6. ask the trained model for its predictions on a few images.
 *
 * usage: train_cnn [--steps N] [--test-limit N] [--device SPEC] [--data DIR]
 *
 * Every library call returns a spartan_status; on failure spartan_last_error() says what went
 * wrong. The data set comes from Debian's dataset-fashion-mnist package unless --data names
 * another MNIST-format directory. */
#include <spartan/spartan.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Runs a library call; on failure prints it with its status and the library's detail message,
 * then jumps to the clean-up at the end of main. `where` is where the detail is kept: the
 * context for calls on a context or a model, NULL for calls that take none (data sets, context
 * creation), which keep it per thread. */
#define CHECK(where, call)                                                                         \
    do {                                                                                           \
        spartan_status st_ = (call);                                                               \
        if (st_ != SPARTAN_OK) {                                                                   \
            fprintf(stderr, "train_cnn: %s: %s: %s\n", #call, spartan_status_name(st_),            \
                    spartan_last_error(where));                                                    \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

/* A positive count from the command line, or 0 when the text is not one. */
static size_t parse_count(const char *s) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    return s[0] >= '0' && s[0] <= '9' && *end == '\0' && v <= 100000000 ? (size_t)v : 0;
}

static double seconds_now(void) {
    struct timespec t;
    timespec_get(&t, TIME_UTC);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    /* Defaults for a demo of under a minute on a CPU: one epoch (937 steps of 64 images) and the
     * whole test set (0 stands for these). */
    size_t steps = 0, test_limit = 0;
    const char *device = NULL, *data = NULL; /* NULL: $SPARTAN_DEVICE, the package's directory */
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(argv[i], "--steps") && (steps = parse_count(v)) > 0)
            i++;
        else if (!strcmp(argv[i], "--test-limit") && (test_limit = parse_count(v)) > 0)
            i++;
        else if (!strcmp(argv[i], "--device") && *v)
            device = argv[++i];
        else if (!strcmp(argv[i], "--data") && *v)
            data = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--steps N] [--test-limit N] [--device SPEC] [--data DIR]\n",
                    argv[0]);
            return 2;
        }
    }

    /* Everything main makes, NULL until made: the clean-up at `done` frees what exists. */
    spartan_dataset *train = NULL, *test = NULL;
    spartan_context *ctx = NULL;
    spartan_model *m = NULL;
    float *images = NULL, *labels = NULL;
    int rc = 1;

    /* 1. The data: 60,000 training and 10,000 test images of 28 x 28 pixels in 10 classes. */
    CHECK(NULL, spartan_dataset_load(data, "train", &train));
    CHECK(NULL, spartan_dataset_load(data, "test", &test));
    if (test_limit) spartan_dataset_limit(test, test_limit);
    const size_t rows = spartan_dataset_rows(train), cols = spartan_dataset_cols(train);

    /* 2. A context on the device: it builds the kernels once (later runs load them from the
     * kernel cache). */
    spartan_context_opts opts = spartan_context_opts_default();
    opts.device = device;
    CHECK(NULL, spartan_context_create(&opts, &ctx));
    printf("device: %s\n", spartan_context_device(ctx)->name);

    /* 3. The network, on images of rows x cols x 1 channel (NHWC), with 10 classes:
     *    conv 3x3 (8) - relu - maxpool 2x2      28x28x1 -> 14x14x8
     *    conv 3x3 (16) - relu - maxpool 2x2     -> 7x7x16
     *    flatten - fc 64 - relu - dropout 0.25 - fc 10 */
    CHECK(ctx, spartan_model_create(ctx, rows, cols, 1, spartan_dataset_classes(train), &m));
    CHECK(ctx, spartan_model_add_conv(m, 8, 3, 1, 1)); /* channels, kernel, stride, padding */
    CHECK(ctx, spartan_model_add_relu(m));
    CHECK(ctx, spartan_model_add_maxpool(m, 2, 2)); /* kernel, stride */
    CHECK(ctx, spartan_model_add_conv(m, 16, 3, 1, 1));
    CHECK(ctx, spartan_model_add_relu(m));
    CHECK(ctx, spartan_model_add_maxpool(m, 2, 2));
    CHECK(ctx, spartan_model_add_flatten(m));
    CHECK(ctx, spartan_model_add_fc(m, 64));
    CHECK(ctx, spartan_model_add_relu(m));
    CHECK(ctx, spartan_model_add_dropout(m, 0.25f));
    CHECK(ctx, spartan_model_add_fc(m, spartan_dataset_classes(train)));

    /* Training settings: the defaults (batch 64, SGD with momentum, the adaptive policy that
     * picks a dense or a sparse GEMM for each layer and pass), changed where we want. prepare
     * initialises the parameters from the seed and allocates every buffer for the batch. */
    spartan_train_config cfg = spartan_train_config_default();
    cfg.lr = 0.02f;
    cfg.seed = 42;
    CHECK(ctx, spartan_model_prepare(m, &cfg));

    /* Host buffers for one batch: images as floats in [0, 1], labels as class indices. */
    const size_t batch = cfg.batch, per_epoch = spartan_dataset_count(train) / batch;
    images = malloc(batch * rows * cols * sizeof *images);
    labels = malloc(batch * sizeof *labels);
    if (!images || !labels || per_epoch == 0) {
        fprintf(stderr, "train_cnn: out of memory, or fewer training images than a batch\n");
        goto done;
    }

    /* 4. Training. Each epoch walks the training set in a new order, which depends only on the
     * seed and the epoch: a run repeats exactly. */
    if (steps == 0) steps = per_epoch;
    printf("training: %zu steps of %zu images\n", steps, batch);
    double t0 = seconds_now(), loss_sum = 0.0;
    size_t correct = 0, seen = 0;
    for (size_t s = 0; s < steps; s++) {
        if (s % per_epoch == 0) spartan_dataset_shuffle(train, cfg.seed, s / per_epoch);
        CHECK(NULL, spartan_dataset_batch(train, (s % per_epoch) * batch, batch, images, labels));
        spartan_step_result r; /* this batch's mean loss and correct predictions */
        CHECK(ctx, spartan_model_train_step(m, images, labels, batch, &r));
        loss_sum += r.loss * (double)r.count;
        correct += r.correct;
        seen += r.count;
        if ((s + 1) % 50 == 0 || s + 1 == steps) { /* progress: the means since the last line */
            printf("step %5zu  loss %.4f  train accuracy %5.1f %%  (%.1f s)\n", s + 1,
                   loss_sum / (double)seen, 100.0 * (double)correct / (double)seen,
                   seconds_now() - t0);
            loss_sum = 0.0;
            correct = seen = 0;
        }
    }

    /* 5. Evaluation: forward passes only (no dropout), in batches of at most cfg.batch. */
    const size_t n = spartan_dataset_count(test);
    correct = 0;
    for (size_t first = 0; first < n; first += batch) {
        const size_t count = n - first < batch ? n - first : batch;
        spartan_step_result r;
        CHECK(NULL, spartan_dataset_batch(test, first, count, images, labels));
        CHECK(ctx, spartan_model_evaluate(m, images, labels, count, &r));
        correct += r.correct;
    }
    printf("test accuracy: %.2f %% (%zu of %zu images), %.1f s in all\n",
           100.0 * (double)correct / (double)n, correct, n, seconds_now() - t0);

    /* 6. Predictions: the class of each image (and, when asked, the logits), no labels needed. */
    size_t predicted[8];
    const size_t shown = n < 8 ? n : 8;
    CHECK(NULL, spartan_dataset_batch(test, 0, shown, images, labels));
    CHECK(ctx, spartan_model_predict(m, images, shown, NULL, predicted));
    printf("first test images: predicted");
    for (size_t i = 0; i < shown; i++) printf(" %zu", predicted[i]);
    printf(", labels");
    for (size_t i = 0; i < shown; i++) printf(" %.0f", (double)labels[i]);
    printf("\n");
    rc = 0;

done:
    /* Clean-up in reverse order: the model before its context. Each destroy accepts NULL. */
    free(images);
    free(labels);
    spartan_model_destroy(m);
    spartan_context_destroy(ctx);
    spartan_dataset_destroy(test);
    spartan_dataset_destroy(train);
    return rc;
}
