/* Tests of runtime/io: the IDX reader on generated files (plain and gzip, valid and damaged in
 * each way the reader names), data sets on generated directories (validation, limit, shuffle,
 * batches), and the real Fashion-MNIST, which the project's dependencies install; FIFOs and
 * devices refused before they are read. No OpenCL. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "harness.h"
#include "spartan/device.h"
#include "spartan/io.h"

/* ---- Writing files --------------------------------------------------------------------------- */

typedef struct bytes {
    unsigned char *p;
    size_t n;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    b->p = realloc(b->p, b->n + n + 1);
    ck_assert_ptr_nonnull(b->p);
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

/* An IDX file: magic (0, 0, type, rank), rank big-endian dimensions, then payload bytes of
 * pattern i*7+1 (mod 256) unless data is given. */
static bytes idx_bytes(unsigned type, unsigned rank, const uint32_t *dims, size_t payload,
                       const unsigned char *data) {
    bytes b = {0};
    unsigned char magic[4] = {0, 0, (unsigned char)type, (unsigned char)rank};
    put(&b, magic, 4);
    for (unsigned i = 0; i < rank; i++) {
        unsigned char d[4] = {(unsigned char)(dims[i] >> 24), (unsigned char)(dims[i] >> 16),
                              (unsigned char)(dims[i] >> 8), (unsigned char)dims[i]};
        put(&b, d, 4);
    }
    for (size_t i = 0; i < payload; i++) {
        unsigned char v = data ? data[i] : (unsigned char)(i * 7 + 1);
        put(&b, &v, 1);
    }
    return b;
}

static void write_plain(const char *path, const bytes *b) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(b->p, 1, b->n, f), b->n);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_gzip(const char *path, const bytes *b) {
    gzFile g = gzopen(path, "wb");
    ck_assert_msg(g != NULL, "cannot write %s", path);
    ck_assert_int_eq(gzwrite(g, b->p, (unsigned)b->n), (int)b->n);
    ck_assert_int_eq(gzclose(g), Z_OK);
}

static bytes slurp(const char *path) {
    bytes b = {0};
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    unsigned char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) put(&b, buf, n);
    fclose(f);
    return b;
}

static char *join(const char *dir, const char *name) {
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    ck_assert_ptr_nonnull(p);
    snprintf(p, len, "%s/%s", dir, name);
    return p;
}

/* Writes b to dir/name (gzip or plain) and returns the path (caller frees); frees b. */
static char *write_file(const char *dir, const char *name, bytes b, int gzip) {
    char *path = join(dir, name);
    if (gzip)
        write_gzip(path, &b);
    else
        write_plain(path, &b);
    free(b.p);
    return path;
}

/* ---- Refusals -------------------------------------------------------------------------------- */

/* Reading path fails with status and a message holding the file name and phrase; the output is
 * left empty. */
static void expect_refusal(const char *path, spartan_status status, const char *phrase) {
    spartan_idx idx;
    memset(&idx, 0xab, sizeof idx);
    spartan_status st = spartan_idx_read(path, &idx);
    const char *msg = spartan_last_error(NULL);
    ck_assert_msg(st == status, "%s: status %s, expected %s (%s)", path, spartan_status_name(st),
                  spartan_status_name(status), msg);
    ck_assert_msg(strstr(msg, path) != NULL, "message does not name the file: %s", msg);
    ck_assert_msg(strstr(msg, phrase) != NULL, "message lacks \"%s\": %s", phrase, msg);
    ck_assert_ptr_null(idx.data);
    ck_assert_int_eq(idx.rank, 0);
    ck_assert_uint_eq(idx.count, 0);
}

static void refuse_bytes(const char *dir, bytes b, int gzip, spartan_status status,
                         const char *phrase) {
    char *path = write_file(dir, gzip ? "bad.gz" : "bad", b, gzip);
    expect_refusal(path, status, phrase);
    free(path);
}

/* ---- IDX round trips ------------------------------------------------------------------------- */

static void round_trip(const char *dir, int gzip, unsigned rank, const uint32_t *dims) {
    size_t count = 1;
    for (unsigned i = 0; i < rank; i++) count *= dims[i];
    bytes b = idx_bytes(0x08, rank, dims, count, NULL);
    char *path = write_file(dir, gzip ? "ok.gz" : "ok", b, gzip);
    spartan_idx idx;
    spartan_status st = spartan_idx_read(path, &idx);
    ck_assert_msg(st == SPARTAN_OK, "%s", spartan_last_error(NULL));
    ck_assert_int_eq(idx.rank, (int)rank);
    for (unsigned i = 0; i < rank; i++) ck_assert_uint_eq(idx.dims[i], dims[i]);
    ck_assert_uint_eq(idx.count, count);
    for (size_t i = 0; i < count; i++) ck_assert_uint_eq(idx.data[i], (unsigned char)(i * 7 + 1));
    spartan_idx_free(&idx);
    ck_assert_ptr_null(idx.data);
    spartan_idx_free(&idx); /* an empty idx: no-op */
    free(path);
}

START_TEST(idx_round_trip_plain_and_gzip) {
    char *dir = th_tempdir("io");
    const uint32_t d1[] = {1000}, d3[] = {7, 28, 29}, d4[] = {2, 3, 4, 5};
    for (int gzip = 0; gzip < 2; gzip++) {
        round_trip(dir, gzip, 1, d1);
        round_trip(dir, gzip, 3, d3);
        round_trip(dir, gzip, 4, d4);
    }
    spartan_idx_free(NULL);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(idx_refuses_bad_headers) {
    char *dir = th_tempdir("io");
    const uint32_t d3[] = {4, 5, 6}, d0[] = {4, 0, 6}, d5[] = {1, 1, 1, 1, 1};
    char *missing = join(dir, "no-such-file");
    expect_refusal(missing, SPARTAN_STATUS_IO_ERROR, "cannot open");
    free(missing);
    for (int gzip = 0; gzip < 2; gzip++) {
        bytes b = idx_bytes(0x08, 3, d3, 120, NULL);
        b.p[0] = 0x12, b.p[1] = 0x34;
        refuse_bytes(dir, b, gzip, SPARTAN_STATUS_BAD_FORMAT, "bad magic 0x1234");
        refuse_bytes(dir, idx_bytes(0x0D, 3, d3, 480, NULL), gzip, SPARTAN_STATUS_BAD_FORMAT,
                     "unsupported type byte 0x0d");
        refuse_bytes(dir, idx_bytes(0x08, 0, d3, 0, NULL), gzip, SPARTAN_STATUS_BAD_FORMAT,
                     "rank 0");
        refuse_bytes(dir, idx_bytes(0x08, 5, d5, 1, NULL), gzip, SPARTAN_STATUS_BAD_FORMAT,
                     "rank 5");
        refuse_bytes(dir, idx_bytes(0x08, 3, d0, 0, NULL), gzip, SPARTAN_STATUS_BAD_FORMAT,
                     "dimension 1 is 0");
        bytes short_dims = idx_bytes(0x08, 1, d3, 0, NULL);
        short_dims.p[3] = 3; /* rank 3, one dimension present */
        refuse_bytes(dir, short_dims, gzip, SPARTAN_STATUS_BAD_FORMAT,
                     "truncated: rank 3 needs 12 bytes of dimensions, file has 4");
        bytes tiny = {0};
        put(&tiny, "\0\0", 2);
        refuse_bytes(dir, tiny, gzip, SPARTAN_STATUS_BAD_FORMAT, "shorter than the 4-byte");
    }
    th_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(idx_refuses_oversized_header_before_allocating) {
    /* No payload follows: a reader that allocated and read would report truncation instead. */
    char *dir = th_tempdir("io");
    const uint32_t just_over[] = {1u << 16, (1u << 15) + 1}, at_limit[] = {1u << 16, 1u << 15},
                   huge[] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    refuse_bytes(dir, idx_bytes(0x08, 2, just_over, 0, NULL), 0, SPARTAN_STATUS_BAD_FORMAT,
                 "65536 x 32769 bytes, above the limit of 2147483648");
    refuse_bytes(dir, idx_bytes(0x08, 4, huge, 0, NULL), 1, SPARTAN_STATUS_BAD_FORMAT,
                 "above the limit");
    /* Exactly at the limit the header is accepted, and the missing payload is the complaint. */
    refuse_bytes(dir, idx_bytes(0x08, 2, at_limit, 10, NULL), 0, SPARTAN_STATUS_BAD_FORMAT,
                 "truncated: header promises 2147483648 bytes of data, file has 10");
    th_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(idx_refuses_truncated_and_trailing_data) {
    char *dir = th_tempdir("io");
    const uint32_t d3[] = {60000, 28, 28};
    for (int gzip = 0; gzip < 2; gzip++) {
        refuse_bytes(dir, idx_bytes(0x08, 3, d3, 1000, NULL), gzip, SPARTAN_STATUS_BAD_FORMAT,
                     "truncated: header promises 47040000 bytes of data, file has 1000");
        const uint32_t d1[] = {50};
        refuse_bytes(dir, idx_bytes(0x08, 1, d1, 53, NULL), gzip, SPARTAN_STATUS_BAD_FORMAT,
                     "3 trailing bytes after the 50 bytes of data");
    }
    th_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(idx_refuses_damaged_gzip) {
    char *dir = th_tempdir("io");
    const uint32_t d2[] = {300, 100};
    char *good = write_file(dir, "good.gz", idx_bytes(0x08, 2, d2, 30000, NULL), 1);
    bytes z = slurp(good);
    ck_assert_uint_gt(z.n, 40);

    /* Cut in the middle of the deflate data. */
    bytes cut = {0};
    put(&cut, z.p, z.n / 2);
    refuse_bytes(dir, cut, 0, SPARTAN_STATUS_BAD_FORMAT, "(the gzip stream is cut short)");
    /* Cut inside the 8-byte trailer: all the data is there, the end of stream is not. */
    cut = (bytes){0};
    put(&cut, z.p, z.n - 4);
    refuse_bytes(dir, cut, 0, SPARTAN_STATUS_BAD_FORMAT, "no end-of-stream trailer");
    /* A wrong CRC-32 (the first 4 bytes of the trailer). */
    bytes crc = {0};
    put(&crc, z.p, z.n);
    crc.p[crc.n - 8] ^= 0xff;
    refuse_bytes(dir, crc, 0, SPARTAN_STATUS_BAD_FORMAT, "corrupt gzip stream");
    /* An unknown compression method in the gzip header. */
    bytes method = {0};
    put(&method, z.p, z.n);
    method.p[2] = 7;
    refuse_bytes(dir, method, 0, SPARTAN_STATUS_BAD_FORMAT, "corrupt gzip stream");

    free(z.p);
    free(good);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(idx_refuses_bad_arguments) {
    spartan_idx idx;
    ck_assert_int_eq(spartan_idx_read(NULL, &idx), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_ptr_null(idx.data);
    ck_assert_int_eq(spartan_idx_read("/nonexistent", NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    /* A directory is refused before anything is read. */
    char *dir = th_tempdir("io");
    expect_refusal(dir, SPARTAN_STATUS_IO_ERROR, "is a directory, not a regular file");
    th_rm_rf(dir);
    free(dir);
}
END_TEST

/* A FIFO, a link to /dev/zero and /dev/zero are refused unread (the FIFO used to block in open),
 * in a child with an alarm: a regression fails instead of hanging. */
static int refuse_streams(void *arg) {
    const char *const *paths = arg;
    for (int i = 0; i < 3; i++) {
        spartan_idx idx;
        spartan_status st = spartan_idx_read(paths[i], &idx);
        const char *msg = spartan_last_error(NULL);
        TH_CHILD_CHECK(st == SPARTAN_STATUS_IO_ERROR && !idx.data && strstr(msg, paths[i]) &&
                           strstr(msg, i ? "is a character device, not a regular file"
                                         : "is a FIFO, not a regular file"),
                       "%s: %s: %s", paths[i], spartan_status_name(st), msg);
    }
    return 0;
}

START_TEST(idx_refuses_streams_before_reading) {
    char *dir = th_tempdir("io");
    char *fifo = join(dir, "train-images-idx3-ubyte"), *zero = join(dir, "zero.gz");
    th_make_stream(fifo, TH_FIFO);
    th_make_stream(zero, TH_ZERO_LINK);
    const char *paths[] = {fifo, zero, "/dev/zero"};
    ck_assert_int_eq(th_in_child_within(3, refuse_streams, paths), 0);
    /* 10 bytes of payload, then 8 MB more in the gzip stream: refused after one buffer of what
     * follows, not inflated to its end (it used to count all 8 MB). */
    const uint32_t d1[] = {10};
    bytes b = idx_bytes(0x08, 1, d1, 10, NULL);
    static const unsigned char zeros[1 << 16];
    for (int i = 0; i < 128; i++) put(&b, zeros, sizeof zeros);
    refuse_bytes(dir, b, 1, SPARTAN_STATUS_BAD_FORMAT,
                 "at least 4096 trailing bytes after the 10 bytes of data");
    free(fifo);
    free(zero);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- Data sets ------------------------------------------------------------------------------- */

/* A tiny MNIST-format directory: n images of rows x cols (pixel (i, p) = (i * 31 + p) % 256,
 * so values 0 and 255 both occur), labels i % 10; the split prefix "train" or "t10k". */
typedef struct tiny {
    size_t n, nlabels, rows, cols;
    unsigned image_rank;
    int gzip;
    unsigned bad_label_at; /* index + 1 whose label is 10; 0: none */
} tiny;

static unsigned char tiny_pixel(size_t i, size_t p) {
    return (unsigned char)((i * 31 + p) % 256);
}

static void write_tiny(const char *dir, const char *prefix, const tiny *t) {
    size_t per = t->rows * t->cols;
    unsigned char *img = malloc(t->n * per), *lab = malloc(t->nlabels);
    ck_assert(img && lab);
    for (size_t i = 0; i < t->n; i++)
        for (size_t p = 0; p < per; p++) img[i * per + p] = tiny_pixel(i, p);
    for (size_t i = 0; i < t->nlabels; i++) lab[i] = (unsigned char)(i % 10);
    if (t->bad_label_at) lab[t->bad_label_at - 1] = 10;
    const uint32_t idims[] = {(uint32_t)t->n, (uint32_t)t->rows, (uint32_t)t->cols};
    const uint32_t flat[] = {(uint32_t)t->n, (uint32_t)per};
    const uint32_t ldims[] = {(uint32_t)t->nlabels};
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", prefix, t->gzip ? ".gz" : "");
    bytes ib = t->image_rank == 3 ? idx_bytes(0x08, 3, idims, t->n * per, img)
                                  : idx_bytes(0x08, 2, flat, t->n * per, img);
    free(write_file(dir, name, ib, t->gzip));
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", prefix, t->gzip ? ".gz" : "");
    free(write_file(dir, name, idx_bytes(0x08, 1, ldims, t->nlabels, lab), t->gzip));
    free(img);
    free(lab);
}

static void expect_load_refusal(const char *dir, const char *split, spartan_status status,
                                const char *phrase) {
    spartan_dataset *d = (spartan_dataset *)1;
    spartan_status st = spartan_dataset_load(dir, split, &d);
    const char *msg = spartan_last_error(NULL);
    ck_assert_msg(st == status, "status %s, expected %s (%s)", spartan_status_name(st),
                  spartan_status_name(status), msg);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(msg, phrase) != NULL, "message lacks \"%s\": %s", phrase, msg);
}

START_TEST(dataset_loads_both_splits_gzip_or_plain) {
    char *dir = th_tempdir("io");
    tiny train = {.n = 23, .nlabels = 23, .rows = 3, .cols = 5, .image_rank = 3, .gzip = 1};
    tiny test = {.n = 7, .nlabels = 7, .rows = 3, .cols = 5, .image_rank = 3, .gzip = 0};
    write_tiny(dir, "train", &train);
    write_tiny(dir, "t10k", &test);
    spartan_dataset *d;
    ck_assert_msg(spartan_dataset_load(dir, "train", &d) == SPARTAN_OK, "%s",
                  spartan_last_error(NULL));
    ck_assert_uint_eq(spartan_dataset_count(d), 23);
    ck_assert_uint_eq(spartan_dataset_rows(d), 3);
    ck_assert_uint_eq(spartan_dataset_cols(d), 5);
    ck_assert_uint_eq(spartan_dataset_classes(d), 10);
    spartan_dataset_destroy(d);
    ck_assert_msg(spartan_dataset_load(dir, "test", &d) == SPARTAN_OK, "%s",
                  spartan_last_error(NULL));
    ck_assert_uint_eq(spartan_dataset_count(d), 7);
    spartan_dataset_destroy(d);
    spartan_dataset_destroy(NULL);
    ck_assert_uint_eq(spartan_dataset_count(NULL), 0);

    expect_load_refusal(dir, "validation", SPARTAN_STATUS_INVALID_ARGUMENT, "validation");
    ck_assert_int_eq(spartan_dataset_load(dir, "train", NULL), SPARTAN_STATUS_INVALID_ARGUMENT);
    th_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(dataset_refuses_inconsistent_files) {
    char *dir = th_tempdir("io");
    expect_load_refusal(dir, "train", SPARTAN_STATUS_IO_ERROR,
                        "train-images-idx3-ubyte.gz: No such file or directory (nor without .gz)");

    tiny t = {.n = 12, .nlabels = 11, .rows = 2, .cols = 2, .image_rank = 3, .gzip = 0};
    write_tiny(dir, "train", &t);
    expect_load_refusal(dir, "train", SPARTAN_STATUS_BAD_FORMAT, "12 images but 11 labels");

    t.nlabels = 12;
    t.bad_label_at = 4;
    write_tiny(dir, "train", &t);
    expect_load_refusal(dir, "train", SPARTAN_STATUS_BAD_FORMAT,
                        "train-labels-idx1-ubyte: label 10 at index 3 outside 0..9");

    t.bad_label_at = 0;
    t.image_rank = 2;
    write_tiny(dir, "train", &t);
    expect_load_refusal(dir, "train", SPARTAN_STATUS_BAD_FORMAT,
                        "train-images-idx3-ubyte: rank 2, expected 3");

    /* A damaged file of the set reports through the IDX reader, naming that file. */
    t.image_rank = 3;
    write_tiny(dir, "train", &t);
    char *labels = join(dir, "train-labels-idx1-ubyte");
    th_write_text(labels, "garbage!");
    free(labels);
    expect_load_refusal(dir, "train", SPARTAN_STATUS_BAD_FORMAT,
                        "train-labels-idx1-ubyte: bad magic 0x6761");
    th_rm_rf(dir);
    free(dir);
}
END_TEST

/* A fresh directory with a tiny gzip training set of n items of 4 x 16, loaded into *d; the
 * directory is returned for tiny_done. */
static char *load_tiny(size_t n, spartan_dataset **d) {
    char *dir = th_tempdir("io");
    tiny t = {.n = n, .nlabels = n, .rows = 4, .cols = 16, .image_rank = 3, .gzip = 1};
    write_tiny(dir, "train", &t);
    ck_assert_msg(spartan_dataset_load(dir, "train", d) == SPARTAN_OK, "%s",
                  spartan_last_error(NULL));
    return dir;
}

static void tiny_done(char *dir, spartan_dataset *d) {
    spartan_dataset_destroy(d);
    th_rm_rf(dir);
    free(dir);
}

/* The labels of the whole set in the current order, as item indices (label = index % 10 alone
 * does not identify an item, so the first pixel, (i * 31) % 256, and the label are combined). */
static void current_order(const spartan_dataset *d, size_t *order) {
    size_t n = spartan_dataset_count(d), per = spartan_dataset_rows(d) * spartan_dataset_cols(d);
    float *img = th_floats(n * per), *lab = th_floats(n);
    ck_assert_int_eq(spartan_dataset_batch(d, 0, n, img, lab), SPARTAN_OK);
    for (size_t b = 0; b < n; b++) {
        /* Item i has pixel 1 = (i * 31 + 1) % 256 and label i % 10: unique for i < 2560. */
        size_t p1 = (size_t)(img[b * per + 1] * 255.0f + 0.5f), l = (size_t)lab[b];
        size_t found = n;
        for (size_t i = 0; i < n; i++)
            if (tiny_pixel(i, 1) == p1 && i % 10 == l) found = i;
        ck_assert_uint_lt(found, n);
        order[b] = found;
    }
    free(img);
    free(lab);
}

static int is_permutation(const size_t *order, size_t n) {
    char *seen = calloc(n, 1);
    ck_assert_ptr_nonnull(seen);
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        if (order[i] >= n || seen[order[i]]) ok = 0;
        if (order[i] < n) seen[order[i]] = 1;
    }
    free(seen);
    return ok;
}

START_TEST(dataset_shuffle_is_reproducible) {
    enum { N = 100 };
    spartan_dataset *d;
    char *dir = load_tiny(N, &d);
    size_t a[N], b[N], c[N], identity[N];
    current_order(d, identity);
    for (size_t i = 0; i < N; i++) ck_assert_uint_eq(identity[i], i);

    spartan_dataset_shuffle(d, 1234, 0);
    current_order(d, a);
    spartan_dataset_shuffle(d, 1234, 1);
    current_order(d, b);
    spartan_dataset_shuffle(d, 1234, 0);
    current_order(d, c);
    ck_assert(is_permutation(a, N));
    ck_assert(is_permutation(b, N));
    ck_assert_mem_eq(a, c, sizeof a);
    ck_assert_int_ne(memcmp(a, b, sizeof a), 0);
    ck_assert_int_ne(memcmp(a, identity, sizeof a), 0);
    spartan_dataset_shuffle(d, 1235, 0);
    current_order(d, c);
    ck_assert_int_ne(memcmp(a, c, sizeof a), 0);

    /* Fixed values: the same on every machine (a change here changes every training run). */
    spartan_dataset_shuffle(d, 42, 7);
    current_order(d, c);
    const size_t want[] = {73, 79, 63, 93, 27};
    for (size_t i = 0; i < 5; i++) ck_assert_uint_eq(c[i], want[i]);
    tiny_done(dir, d);
}
END_TEST

START_TEST(dataset_limit_keeps_the_first_items) {
    spartan_dataset *d;
    char *dir = load_tiny(30, &d);
    spartan_dataset_shuffle(d, 5, 5);
    spartan_dataset_limit(d, 40); /* above count: keeps all, resets the order */
    ck_assert_uint_eq(spartan_dataset_count(d), 30);
    size_t order[30];
    current_order(d, order);
    for (size_t i = 0; i < 30; i++) ck_assert_uint_eq(order[i], i);
    spartan_dataset_limit(d, 12);
    ck_assert_uint_eq(spartan_dataset_count(d), 12);
    spartan_dataset_shuffle(d, 9, 0);
    current_order(d, order);
    ck_assert(is_permutation(order, 12));
    spartan_dataset_limit(NULL, 3);
    spartan_dataset_shuffle(NULL, 1, 1);
    tiny_done(dir, d);
}
END_TEST

START_TEST(dataset_batch_converts_exactly) {
    spartan_dataset *d;
    char *dir = load_tiny(20, &d);
    const size_t per = 4 * 16;
    float *img = th_floats(8 * per), lab[8];
    ck_assert_int_eq(spartan_dataset_batch(d, 17, 3, img, lab), SPARTAN_OK);
    for (size_t b = 0; b < 3; b++) {
        ck_assert_float_eq(lab[b], (float)((17 + b) % 10));
        for (size_t p = 0; p < per; p++) {
            unsigned char v = tiny_pixel(17 + b, p);
            ck_assert_float_eq(img[b * per + p], (float)v / 255.0f);
            if (v == 0) ck_assert(img[b * per + p] == 0.0f);
            if (v == 255) ck_assert(img[b * per + p] == 1.0f);
        }
    }
    /* Item 0 has pixel 0 = 0; item 7 has pixel 38 = 255 (7 * 31 + 38 = 255). */
    ck_assert_int_eq(spartan_dataset_batch(d, 0, 8, img, lab), SPARTAN_OK);
    ck_assert(img[0] == 0.0f);
    ck_assert(img[7 * per + 38] == 1.0f);

    ck_assert_int_eq(spartan_dataset_batch(d, 18, 3, img, lab), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert(strstr(spartan_last_error(NULL), "first 18 and count 3") != NULL);
    ck_assert_int_eq(spartan_dataset_batch(d, 21, 0, img, lab), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_dataset_batch(d, 1, SIZE_MAX, img, lab),
                     SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_dataset_batch(d, 0, 1, NULL, lab), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_dataset_batch(NULL, 0, 1, img, lab), SPARTAN_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(spartan_dataset_batch(d, 20, 0, img, lab), SPARTAN_OK);
    free(img);
    tiny_done(dir, d);
}
END_TEST

/* ---- Fashion-MNIST --------------------------------------------------------------------------- */

static void check_fashion(const char *split, size_t count) {
    spartan_dataset *d;
    spartan_status st = spartan_dataset_load(NULL, split, &d);
    ck_assert_msg(st == SPARTAN_OK, "%s", spartan_last_error(NULL));
    ck_assert_uint_eq(spartan_dataset_count(d), count);
    ck_assert_uint_eq(spartan_dataset_rows(d), 28);
    ck_assert_uint_eq(spartan_dataset_cols(d), 28);
    float *img = th_floats(count * 28 * 28), *lab = th_floats(count);
    ck_assert_int_eq(spartan_dataset_batch(d, 0, count, img, lab), SPARTAN_OK);
    /* Fashion-MNIST is balanced: count / 10 of each class. */
    size_t per_class[10] = {0}, zeros = 0, outside = 0;
    for (size_t i = 0; i < count; i++) per_class[(size_t)lab[i]]++;
    for (size_t c = 0; c < 10; c++) ck_assert_uint_eq(per_class[c], count / 10);
    /* Counted, not asserted per pixel: each check assertion costs a write to check's pipe. */
    for (size_t i = 0; i < count * 28 * 28; i++) {
        outside += !(img[i] >= 0.0f && img[i] <= 1.0f);
        zeros += img[i] == 0.0f;
    }
    ck_assert_uint_eq(outside, 0);
    /* The background is black: about half of the pixels are zero (the input is sparse). */
    ck_assert_uint_gt(zeros, count * 28 * 28 / 4);
    free(img);
    free(lab);
    spartan_dataset_destroy(d);
}

START_TEST(fashion_mnist_loads) {
    FILE *f = fopen(SPARTAN_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", "rb");
    ck_assert_msg(f != NULL,
                  SPARTAN_FASHION_MNIST_DIR " is missing: install Debian's dataset-fashion-mnist "
                                            "package (tools/lib/deps.sh installs it)");
    fclose(f);
    check_fashion("train", 60000);
    check_fashion("test", 10000);
}
END_TEST

static Suite *io_suite(void) {
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("idx");
    tcase_add_test(tc, idx_round_trip_plain_and_gzip);
    tcase_add_test(tc, idx_refuses_bad_headers);
    tcase_add_test(tc, idx_refuses_oversized_header_before_allocating);
    tcase_add_test(tc, idx_refuses_truncated_and_trailing_data);
    tcase_add_test(tc, idx_refuses_damaged_gzip);
    tcase_add_test(tc, idx_refuses_bad_arguments);
    tcase_add_test(tc, idx_refuses_streams_before_reading);
    suite_add_tcase(s, tc);
    tc = tcase_create("dataset");
    tcase_add_test(tc, dataset_loads_both_splits_gzip_or_plain);
    tcase_add_test(tc, dataset_refuses_inconsistent_files);
    tcase_add_test(tc, dataset_shuffle_is_reproducible);
    tcase_add_test(tc, dataset_limit_keeps_the_first_items);
    tcase_add_test(tc, dataset_batch_converts_exactly);
    suite_add_tcase(s, tc);
    tc = tcase_create("fashion_mnist");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fashion_mnist_loads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return th_run_suite(io_suite());
}
