/* Tests of checkpoints (runtime/io/checkpoint.c; the safetensors layer under them has its own,
 * test_safetensors.c): a round trip (values, momenta and step bit for bit, native shapes,
 * metadata); a resumed run on real Fashion-MNIST images whose losses equal an uninterrupted
 * run's, on both paths, through dropout (whose masks follow the step) and with Dropback; the
 * refusal of every truncation and of a flipped bit in every header byte and every data byte, of a
 * foreign file, of another architecture and of a missing file, each leaving the model as it was;
 * and a crash at several points of a save (the writer's test hook makes the saving process _exit
 * mid-write) leaving the previous checkpoint identical and loadable; FIFOs, devices and oversized
 * files refused before they are read. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "io/safetensors.h"
#include "spartan/spartan.h"

static spartan_context *ctx;

static void setup(void) {
    spartan_status st = spartan_context_create(NULL, &ctx);
    ck_assert_msg(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
}

static void teardown(void) {
    spartan_context_destroy(ctx);
    ctx = NULL;
}

#define OK(call) TH_OK(ctx, call)

/* ---- Files ----------------------------------------------------------------------------------- */

typedef struct bytes {
    unsigned char *p;
    size_t n;
} bytes;

static bytes slurp(const char *path) {
    bytes b = {0};
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    unsigned char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        b.p = realloc(b.p, b.n + got);
        ck_assert_ptr_nonnull(b.p);
        memcpy(b.p + b.n, buf, got);
        b.n += got;
    }
    fclose(f);
    return b;
}

static size_t header_end(const bytes *b) {
    ck_assert_uint_ge(b->n, 8);
    size_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | b->p[i];
    return 8 + n;
}

/* ---- Models ---------------------------------------------------------------------------------- */

/* A small MLP with dropout on 3x3x1 inputs: fc `hidden` -> relu -> dropout -> fc 3. Returns the
 * status so children (which may not use check's asserts) can build it too. */
static spartan_status tiny_model(spartan_context *c, size_t hidden, spartan_model **out) {
    spartan_model *m;
    spartan_status st = spartan_model_create(c, 3, 3, 1, 3, &m);
    if (st != SPARTAN_OK) return st;
    if (st == SPARTAN_OK) st = spartan_model_add_fc(m, hidden);
    if (st == SPARTAN_OK) st = spartan_model_add_relu(m);
    if (st == SPARTAN_OK) st = spartan_model_add_dropout(m, 0.25f);
    if (st == SPARTAN_OK) st = spartan_model_add_fc(m, 3);
    if (st != SPARTAN_OK) spartan_model_destroy(m);
    *out = st == SPARTAN_OK ? m : NULL;
    return st;
}

/* A CNN with dropout for 28x28x1 images: conv 6 5x5 pad 2 -> relu -> maxpool 2 -> conv 8 3x3
 * stride 2 -> relu -> flatten -> dropout 0.3 -> fc 32 -> relu -> dropout 0.2 -> fc 10. */
static spartan_model *dropout_cnn(void) {
    spartan_model *m;
    OK(spartan_model_create(ctx, 28, 28, 1, 10, &m));
    OK(spartan_model_add_conv(m, 6, 5, 1, 2));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_maxpool(m, 2, 2));
    OK(spartan_model_add_conv(m, 8, 3, 2, 0));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_flatten(m));
    OK(spartan_model_add_dropout(m, 0.3f));
    OK(spartan_model_add_fc(m, 32));
    OK(spartan_model_add_relu(m));
    OK(spartan_model_add_dropout(m, 0.2f));
    OK(spartan_model_add_fc(m, 10));
    return m;
}

static spartan_train_config config(spartan_policy_mode policy, size_t batch, uint64_t seed) {
    spartan_train_config cfg = spartan_train_config_default();
    cfg.batch = batch;
    cfg.policy = policy;
    cfg.seed = seed;
    cfg.sample_every = 3;
    return cfg;
}

/* Deterministic 3x3 inputs (a third zeros) and labels for the tiny model. */
static void tiny_batch(uint64_t seed, size_t batch, float *img, float *lab) {
    th_rng r;
    th_rng_init(&r, seed);
    for (size_t i = 0; i < batch * 9; i++) {
        float v = th_rng_uniform(&r, -0.5f, 1.0f);
        img[i] = v < 0.0f ? 0.0f : v;
    }
    for (size_t i = 0; i < batch; i++) lab[i] = (float)(th_rng_next(&r) % 3);
}

/* steps SGD steps of the tiny model on batches derived from the step number. */
static spartan_status tiny_train(spartan_model *m, size_t batch, size_t steps) {
    float img[16 * 9], lab[16];
    spartan_status st = SPARTAN_OK;
    for (size_t s = 0; s < steps && st == SPARTAN_OK; s++) {
        tiny_batch(1000 + spartan_model_steps(m), batch, img, lab);
        st = spartan_model_train_step(m, img, lab, batch, NULL);
    }
    return st;
}

/* Every value and momentum of a model, and its step. */
typedef struct snap {
    float *v;
    size_t n, step;
} snap;

static snap snapshot(const spartan_model *m) {
    snap s = {NULL, 0, spartan_model_steps(m)};
    for (size_t i = 0; i < spartan_model_param_count(m); i++) {
        spartan_param p;
        OK(spartan_model_param(m, i, &p));
        s.n += 2 * spartan_tensor_numel(p.value);
    }
    s.v = th_floats(s.n);
    size_t at = 0;
    for (size_t i = 0; i < spartan_model_param_count(m); i++) {
        spartan_param p;
        OK(spartan_model_param(m, i, &p));
        size_t k = spartan_tensor_numel(p.value);
        OK(spartan_tensor_read(p.value, s.v + at, k));
        OK(spartan_tensor_read(p.momentum, s.v + at + k, k));
        at += 2 * k;
    }
    return s;
}

/* Bit for bit. */
static void assert_same(snap a, snap b, const char *what) {
    ck_assert_msg(a.n == b.n && a.step == b.step, "%s: %zu values at step %zu vs %zu at step %zu",
                  what, a.n, a.step, b.n, b.step);
    ck_assert_msg(memcmp(a.v, b.v, a.n * sizeof *a.v) == 0, "%s: the values differ", what);
}

/* ---- Round trip ------------------------------------------------------------------------------ */

START_TEST(round_trip_is_exact) {
    char *dir = th_tempdir("ckpt");
    char *path = th_join(dir, "rt.safetensors");
    spartan_model *a, *b;
    OK(spartan_model_create_preset(ctx, "lenet5", &a));
    OK(spartan_model_create_preset(ctx, "lenet5", &b));
    spartan_train_config cfg = config(SPARTAN_POLICY_DENSE, 4, 5);
    OK(spartan_model_prepare(a, &cfg));
    float *img = th_floats(4 * 784), lab[4] = {1, 7, 3, 0};
    th_rng r;
    th_rng_init(&r, th_seed());
    for (size_t i = 0; i < 4 * 784; i++) img[i] = th_rng_uniform(&r, 0.0f, 1.0f);
    for (int s = 0; s < 3; s++) OK(spartan_model_train_step(a, img, lab, 4, NULL));
    const spartan_checkpoint_meta extra[] = {{"epoch", "3"}, {"note", "a \"quoted\"\nline"}};
    OK(spartan_checkpoint_save(a, path, extra, 2));
    ck_assert_uint_eq(th_count_entries(dir, ""), 3); /* ".", "..", the file: no temporary left */

    cfg.seed = 99; /* other values, so the load has something to change */
    OK(spartan_model_prepare(b, &cfg));
    OK(spartan_checkpoint_load(b, path));
    snap sa = snapshot(a), sb = snapshot(b);
    ck_assert_uint_eq(sb.step, 3);
    assert_same(sa, sb, "loaded lenet5");
    /* the momenta are not all zero: they were saved, not re-initialised */
    int moving = 0;
    for (size_t i = 0; i < sb.n; i++) moving |= sb.v[i] != 0.0f;
    ck_assert(moving);
    /* the two continue identically */
    spartan_step_result ra, rb;
    OK(spartan_model_train_step(a, img, lab, 4, &ra));
    OK(spartan_model_train_step(b, img, lab, 4, &rb));
    ck_assert(ra.loss == rb.loss);

    /* Native layouts, names and metadata as a plain safetensors reader sees them. */
    sp_st_file f;
    sp_err err = {0};
    ck_assert_msg(sp_st_read(path, SIZE_MAX, &f, &err) == SPARTAN_OK, "%s", sp_err_message(&err));
    ck_assert_uint_eq(f.ntensors, 20);
    const sp_st_tensor *cw = sp_st_find(&f, "conv2.weight");
    ck_assert_ptr_nonnull(cw);
    ck_assert_int_eq(cw->rank, 4);
    ck_assert(cw->shape[0] == 5 && cw->shape[1] == 5 && cw->shape[2] == 6 && cw->shape[3] == 16);
    const sp_st_tensor *fw = sp_st_find(&f, "fc1.weight.momentum");
    ck_assert_ptr_nonnull(fw);
    ck_assert(fw->rank == 2 && fw->shape[0] == 400 && fw->shape[1] == 120);
    ck_assert_ptr_nonnull(sp_st_find(&f, "fc3.bias"));
    ck_assert_str_eq(sp_st_meta_get(&f, "format"), "spartan-checkpoint-1");
    ck_assert_str_eq(sp_st_meta_get(&f, "step"), "3");
    ck_assert_str_eq(sp_st_meta_get(&f, "seed"), "5");
    ck_assert_str_eq(sp_st_meta_get(&f, "batch"), "4");
    ck_assert_str_eq(sp_st_meta_get(&f, "policy"), "dense");
    ck_assert(strstr(sp_st_meta_get(&f, "architecture"),
                     ";conv1:conv(k=5,s=1,p=2):28x28x1->28x28x6;relu1:relu:28x28x6->28x28x6;"));
    ck_assert(strstr(sp_st_meta_get(&f, "layout"), "[kh, kw, cin, cout]"));
    ck_assert_uint_eq(f.header_end % 8, 0);
    sp_st_free(&f);

    /* meta_get: the caller's entries and the checkpoint's own. */
    char buf[64];
    ck_assert_int_eq(spartan_checkpoint_meta_get(path, "epoch", buf, sizeof buf), SPARTAN_OK);
    ck_assert_str_eq(buf, "3");
    ck_assert_int_eq(spartan_checkpoint_meta_get(path, "note", buf, sizeof buf), SPARTAN_OK);
    ck_assert_str_eq(buf, "a \"quoted\"\nline");
    ck_assert_int_eq(spartan_checkpoint_meta_get(path, "step", buf, 2), SPARTAN_OK);
    ck_assert_str_eq(buf, "3");
    ck_assert_int_eq(spartan_checkpoint_meta_get(path, "epoch", buf, 1),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(NULL), "needs a buffer of 2 bytes"));
    ck_assert_int_eq(spartan_checkpoint_meta_get(path, "epochs", buf, sizeof buf),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(NULL), "no metadata entry \"epochs\""));
    ck_assert_int_eq(spartan_checkpoint_meta_get(path, NULL, buf, sizeof buf),
                     SPARTAN_STATUS_INVALID_ARGUMENT);

    /* Saving again replaces the file; refusals of bad calls. */
    OK(spartan_checkpoint_save(a, path, NULL, 0));
    ck_assert_int_eq(spartan_checkpoint_meta_get(path, "step", buf, sizeof buf), SPARTAN_OK);
    ck_assert_str_eq(buf, "4");
    const spartan_checkpoint_meta reserved[] = {{"step", "9"}}, twice[] = {{"a", "1"}, {"a", "2"}},
                                  empty[] = {{"", "1"}};
    ck_assert_int_eq(spartan_checkpoint_save(a, path, reserved, 1),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(ctx), "\"step\" is a reserved key"));
    ck_assert_int_eq(spartan_checkpoint_save(a, path, twice, 2), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_checkpoint_save(a, path, empty, 1), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_checkpoint_save(a, path, NULL, 1), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_checkpoint_save(NULL, path, NULL, 0), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_checkpoint_load(b, NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    char *nowhere = th_join(dir, "no/such/dir.safetensors");
    ck_assert_int_eq(spartan_checkpoint_save(a, nowhere, NULL, 0), SPARTAN_STATUS_IO_ERROR);
    free(nowhere);
    spartan_model *u;
    OK(spartan_model_create_preset(ctx, "lenet5", &u));
    ck_assert_int_eq(spartan_checkpoint_save(u, path, NULL, 0), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_checkpoint_load(u, path), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(ctx), "prepare"));
    spartan_model_destroy(u);

    free(sa.v);
    free(sb.v);
    free(img);
    spartan_model_destroy(a);
    spartan_model_destroy(b);
    free(path);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- Resume ---------------------------------------------------------------------------------- */

/* Losses of `steps` steps from step `from` of a fixed sequence of real batches. */
static void train_real(spartan_model *m, const float *img, const float *lab, size_t batch,
                       size_t from, size_t steps, double *losses) {
    for (size_t s = from; s < from + steps; s++) {
        spartan_step_result r;
        OK(spartan_model_train_step(m, img + (s % 6) * batch * 784, lab + (s % 6) * batch, batch,
                                    &r));
        losses[s] = r.loss;
    }
}

START_TEST(resume_equals_uninterrupted_run) {
    enum { N = 5, M = 6, BATCH = 32 };
    char *dir = th_tempdir("ckpt");
    char *path = th_join(dir, "resume.safetensors");
    spartan_dataset *d;
    spartan_status st = spartan_dataset_load(NULL, "train", &d);
    ck_assert_msg(st == SPARTAN_OK, "Fashion-MNIST (tools/lib/deps.sh installs it): %s",
                  spartan_last_error(NULL));
    float *img = th_floats(6 * BATCH * 784), *lab = th_floats(6 * BATCH);
    OK(spartan_dataset_batch(d, 0, 6 * BATCH, img, lab));
    spartan_dataset_destroy(d);

    /* dense, sparse, and dense with Dropback (the resumed run's d = 0.5^t comes from the step
     * count, its w0 from the seed, its selection from the weights alone) */
    for (int run = 0; run < 3; run++) {
        const int policy = run % 2;
        spartan_train_config cfg = config((spartan_policy_mode)policy, BATCH, 11);
        if (run == 2) {
            cfg.dropback_density = 0.2f;
            cfg.dropback_decay = 0.5f;
        }
        double straight[N + M], resumed[N + M];
        spartan_model *m = dropout_cnn();
        OK(spartan_model_prepare(m, &cfg));
        train_real(m, img, lab, BATCH, 0, N + M, straight);
        snap end_straight = snapshot(m);
        spartan_model_destroy(m);

        m = dropout_cnn();
        OK(spartan_model_prepare(m, &cfg));
        train_real(m, img, lab, BATCH, 0, N, resumed);
        OK(spartan_checkpoint_save(m, path, NULL, 0));
        spartan_model_destroy(m);
        char value[32];
        OK(spartan_checkpoint_meta_get(path, "dropback_density", value, sizeof value));
        ck_assert_str_eq(value, run == 2 ? "0.200000003" : "0");

        m = dropout_cnn();
        OK(spartan_model_prepare(m, &cfg));
        OK(spartan_checkpoint_load(m, path));
        ck_assert_uint_eq(spartan_model_steps(m), N);
        train_real(m, img, lab, BATCH, N, M, resumed);
        for (int s = 0; s < N + M; s++)
            ck_assert_msg(straight[s] == resumed[s],
                          "run %d step %d: uninterrupted loss %.9g, resumed %.9g", run, s,
                          straight[s], resumed[s]);
        snap end_resumed = snapshot(m);
        assert_same(end_straight, end_resumed, "parameters after the resumed run");
        free(end_straight.v);
        free(end_resumed.v);
        spartan_model_destroy(m);
    }
    free(img);
    free(lab);
    free(path);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- Damaged files --------------------------------------------------------------------------- */

/* Loading path into m fails with status, a message naming the file (and phrase, when given). */
static void refused(spartan_model *m, const char *path, spartan_status status, const char *phrase,
                    const char *what) {
    spartan_status st = spartan_checkpoint_load(m, path);
    const char *msg = spartan_last_error(ctx);
    ck_assert_msg(st == status, "%s: status %s (%s), expected %s", what, spartan_status_name(st),
                  msg, spartan_status_name(status));
    ck_assert_msg(strstr(msg, path), "%s: the message does not name the file: %s", what, msg);
    ck_assert_msg(!phrase || strstr(msg, phrase), "%s: the message lacks \"%s\": %s", what, phrase,
                  msg);
}

START_TEST(damaged_files_are_refused) {
    char *dir = th_tempdir("ckpt");
    char *good = th_join(dir, "good.safetensors"), *bad = th_join(dir, "bad.safetensors");
    spartan_model *m;
    OK(tiny_model(ctx, 7, &m));
    spartan_train_config cfg = config(SPARTAN_POLICY_SPARSE, 4, 3);
    OK(spartan_model_prepare(m, &cfg));
    OK(tiny_train(m, 4, 3));
    OK(spartan_checkpoint_save(m, good, NULL, 0));
    OK(tiny_train(m, 4, 2)); /* the model now differs from the file */
    snap before = snapshot(m);
    bytes b = slurp(good);
    const size_t hend = header_end(&b);
    ck_assert_uint_gt(b.n, hend);

    /* Every truncation. */
    for (size_t len = 0; len < b.n; len++) {
        th_write_bytes(bad, b.p, len);
        refused(m, bad, SPARTAN_STATUS_BAD_FORMAT, NULL, "truncated");
    }
    th_write_bytes(bad, b.p, b.n - 1);
    refused(m, bad, SPARTAN_STATUS_BAD_FORMAT, "truncated: tensor", "cut in the data");
    th_write_bytes(bad, b.p, hend - 1);
    refused(m, bad, SPARTAN_STATUS_BAD_FORMAT, "truncated: the header length", "cut in the header");

    /* A flipped bit in every byte of the header (all eight in the length), then of the data. */
    for (size_t i = 0; i < b.n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            if (i >= 8 && bit != (int)(i % 8)) continue;
            b.p[i] ^= (unsigned char)(1u << bit);
            th_write_bytes(bad, b.p, b.n);
            b.p[i] ^= (unsigned char)(1u << bit);
            refused(m, bad, SPARTAN_STATUS_BAD_FORMAT,
                    i >= hend ? "the data's checksum does not match" : NULL, "flipped bit");
        }
    }
    /* A flip inside a metadata value leaves valid JSON: the header checksum catches it. */
    const char seed[] = "\"seed\":\"3\"";
    unsigned char *at = NULL;
    for (size_t i = 0; i + sizeof seed - 1 <= hend && !at; i++)
        if (!memcmp(b.p + i, seed, sizeof seed - 1)) at = b.p + i;
    ck_assert_ptr_nonnull(at);
    at[8] = '2';
    th_write_bytes(bad, b.p, b.n);
    at[8] = '3';
    refused(m, bad, SPARTAN_STATUS_BAD_FORMAT, "the header's checksum does not match", "seed");

    /* Not a checkpoint: a valid safetensors file without our metadata. */
    unsigned char four[4] = {0};
    sp_st_tensor w = {"fc1.weight", SP_ST_F32, 1, {1}, four, 4};
    unsigned char *h;
    size_t hl;
    sp_err err = {0};
    ck_assert_int_eq(sp_st_encode_header(&w, 1, NULL, 0, &h, &hl, &err), SPARTAN_OK);
    ck_assert_int_eq(sp_st_write(bad, h, hl, &w, 1, &err), SPARTAN_OK);
    free(h);
    sp_err_free(&err);
    refused(m, bad, SPARTAN_STATUS_BAD_FORMAT, "not a Spartan checkpoint", "foreign file");
    /* Missing file, a directory. */
    char *missing = th_join(dir, "missing.safetensors");
    refused(m, missing, SPARTAN_STATUS_IO_ERROR, "cannot open", "missing");
    free(missing);
    refused(m, dir, SPARTAN_STATUS_IO_ERROR, NULL, "directory");

    /* Another architecture: a wider hidden layer, and another dropout rate. */
    spartan_model *other;
    OK(tiny_model(ctx, 8, &other));
    OK(spartan_model_prepare(other, &cfg));
    OK(spartan_checkpoint_save(other, bad, NULL, 0));
    refused(m, bad, SPARTAN_STATUS_INVALID_ARGUMENT,
            "another architecture (field 2: the file has \"fc1:fc:3x3x1->1x1x8\", the model "
            "\"fc1:fc:3x3x1->1x1x7\")",
            "wider");
    spartan_model_destroy(other);
    OK(spartan_model_create(ctx, 3, 3, 1, 3, &other));
    OK(spartan_model_add_fc(other, 7));
    OK(spartan_model_add_relu(other));
    OK(spartan_model_add_dropout(other, 0.5f));
    OK(spartan_model_add_fc(other, 3));
    OK(spartan_model_prepare(other, &cfg));
    OK(spartan_checkpoint_save(other, bad, NULL, 0));
    refused(m, bad, SPARTAN_STATUS_INVALID_ARGUMENT, "dropout(p=0.5)", "dropout rate");
    spartan_model_destroy(other);

    /* After all that, the model is as it was, and the good file still loads. */
    snap after = snapshot(m);
    assert_same(before, after, "the model after refused loads");
    OK(spartan_checkpoint_load(m, good));
    ck_assert_uint_eq(spartan_model_steps(m), 3);
    free(before.v);
    free(after.v);
    free(b.p);
    spartan_model_destroy(m);
    free(good);
    free(bad);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- A crash mid-save ------------------------------------------------------------------------ */

/* In a child (its own OpenCL context, made after the fork): the tiny model trained `steps`
 * steps, then saved; with crash_at >= 0 the writer's test hook ends the process (status 3) after
 * that many bytes of the temporary file. With load set, the child loads the file instead and
 * checks that it holds step `steps`. */
typedef struct job {
    const char *path;
    long long crash_at;
    size_t steps;
    int load;
} job;

static int child(void *arg) {
    const job *j = arg;
    char n[32];
    snprintf(n, sizeof n, "%lld", j->crash_at);
    spartan_context *c;
    spartan_model *m = NULL;
    spartan_status st = spartan_context_create(NULL, &c);
    TH_CHILD_CHECK(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
    spartan_train_config cfg = config(SPARTAN_POLICY_DENSE, 4, 8);
    if (st == SPARTAN_OK) st = tiny_model(c, 7, &m);
    if (st == SPARTAN_OK) st = spartan_model_prepare(m, &cfg);
    if (j->load) {
        if (st == SPARTAN_OK) st = spartan_checkpoint_load(m, j->path);
        TH_CHILD_CHECK(st == SPARTAN_OK, "%s", spartan_last_error(c));
        TH_CHILD_CHECK(spartan_model_steps(m) == j->steps, "step %zu, expected %zu",
                       spartan_model_steps(m), j->steps);
    } else {
        if (st == SPARTAN_OK) st = tiny_train(m, 4, j->steps);
        /* set only now: every atomic write of the process honours it (the kernel cache's too) */
        if (j->crash_at >= 0) setenv("SPARTAN_TEST_CRASH_AFTER_BYTES", n, 1);
        if (st == SPARTAN_OK) st = spartan_checkpoint_save(m, j->path, NULL, 0);
        TH_CHILD_CHECK(st == SPARTAN_OK, "%s", spartan_last_error(c));
    }
    spartan_model_destroy(m);
    spartan_context_destroy(c);
    return 0;
}

/* This process never touches OpenCL: the saves and loads run in children, since OpenCL state
 * (POCL's worker threads) does not survive a fork. */
START_TEST(crash_mid_save_keeps_previous_checkpoint) {
    char *dir = th_tempdir("ckpt");
    char *path = th_join(dir, "ck.safetensors");
    job first = {path, -1, 2, 0};
    ck_assert_int_eq(th_in_child(child, &first), 0);
    bytes prev = slurp(path);
    const long long hend = (long long)header_end(&prev), len = (long long)prev.n;
    /* in the length, in the JSON, at the data's start, in the data, all written but not renamed */
    const long long points[] = {0, 5, hend / 2, hend, hend + 9, len - 1, len};
    const size_t npoints = sizeof points / sizeof points[0];
    for (size_t i = 0; i < npoints; i++) {
        job crash = {path, points[i], 3, 0};
        ck_assert_int_eq(th_in_child(child, &crash), 3);
        bytes now = slurp(path);
        ck_assert_msg(now.n == prev.n && memcmp(now.p, prev.p, now.n) == 0,
                      "crash after %lld bytes changed the previous checkpoint", points[i]);
        free(now.p);
    }
    /* the crashed saves left their temporary files (named after the target), nothing else */
    ck_assert_uint_eq(th_count_entries(dir, "ck.safetensors.tmp."), npoints);
    ck_assert_uint_eq(th_count_entries(dir, "ck.safetensors"), npoints + 1);
    job check = {path, -1, 2, 1};
    ck_assert_int_eq(th_in_child(child, &check), 0);
    /* and a save that completes replaces it */
    job next = {path, -1, 3, 0};
    ck_assert_int_eq(th_in_child(child, &next), 0);
    check.steps = 3;
    ck_assert_int_eq(th_in_child(child, &check), 0);
    free(prev.p);
    free(path);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

/* A FIFO, a link to /dev/zero and /dev/zero itself are refused by load and meta_get before a
 * byte is read (a FIFO used to block, /dev/zero to be read until memory ran out), and a regular
 * file larger than any checkpoint of the model is refused by its size. */
static int refuse_streams(void *arg) {
    const char *const *paths = arg;
    spartan_context *c;
    spartan_model *m = NULL;
    spartan_status st = spartan_context_create(NULL, &c);
    TH_CHILD_CHECK(st == SPARTAN_OK, "context: %s", spartan_last_error(NULL));
    spartan_train_config cfg = config(SPARTAN_POLICY_DENSE, 4, 8);
    st = tiny_model(c, 7, &m);
    if (st == SPARTAN_OK) st = spartan_model_prepare(m, &cfg);
    TH_CHILD_CHECK(st == SPARTAN_OK, "model: %s", spartan_last_error(c));
    for (int i = 0; i < 3; i++) {
        st = spartan_checkpoint_load(m, paths[i]);
        const char *msg = spartan_last_error(c);
        TH_CHILD_CHECK(st == SPARTAN_STATUS_IO_ERROR && strstr(msg, paths[i]) &&
                           strstr(msg, "not a regular file"),
                       "load %s: %s: %s", paths[i], spartan_status_name(st), msg);
        char buf[64];
        st = spartan_checkpoint_meta_get(paths[i], "step", buf, sizeof buf);
        msg = spartan_last_error(NULL);
        TH_CHILD_CHECK(st == SPARTAN_STATUS_IO_ERROR && strstr(msg, "not a regular file"),
                       "meta_get %s: %s: %s", paths[i], spartan_status_name(st), msg);
    }
    st = spartan_checkpoint_load(m, paths[3]);
    TH_CHILD_CHECK(st == SPARTAN_STATUS_BAD_FORMAT &&
                       strstr(spartan_last_error(c), "bytes, more than"),
                   "oversized: %s: %s", spartan_status_name(st), spartan_last_error(c));
    TH_CHILD_CHECK(spartan_model_steps(m) == 0, "the model changed");
    spartan_model_destroy(m);
    spartan_context_destroy(c);
    return 0;
}

START_TEST(streams_and_oversized_files_are_refused) {
    char *dir = th_tempdir("ckpt");
    char *fifo = th_join(dir, "fifo.safetensors"), *zero = th_join(dir, "zero.safetensors");
    char *big = th_join(dir, "big.safetensors");
    th_make_stream(fifo, TH_FIFO);
    th_make_stream(zero, TH_ZERO_LINK);
    /* one byte more than the largest safetensors header and the tiny model's 2 x 94 floats
     * (sparse: nothing is written) */
    th_write_bytes(big, "", 0);
    ck_assert_int_eq(truncate(big, 8 + (100l << 20) + 4 * 188 + 1), 0);
    const char *paths[] = {fifo, zero, "/dev/zero", big};
    ck_assert_int_eq(th_in_child_within(60, refuse_streams, paths), 0);
    free(fifo);
    free(zero);
    free(big);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

static Suite *checkpoint_suite(void) {
    Suite *s = suite_create("checkpoint");
    /* first, so that even with CK_FORK=no no OpenCL state exists before its forks */
    TCase *crash = tcase_create("crash");
    tcase_set_timeout(crash, 300);
    tcase_add_test(crash, crash_mid_save_keeps_previous_checkpoint);
    tcase_add_test(crash, streams_and_oversized_files_are_refused);
    suite_add_tcase(s, crash);
    TCase *tc = tcase_create("checkpoint");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, round_trip_is_exact);
    tcase_add_test(tc, resume_equals_uninterrupted_run);
    tcase_add_test(tc, damaged_files_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(checkpoint_suite());
}
