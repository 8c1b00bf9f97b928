/* The IDX reader: header validation and the payload of MNIST-format files, gzip or plain (zlib
 * tells them apart by content). Owns the messages that say what is wrong with a file; does not
 * know about images or labels (dataset.c does). Errors go to the calling thread's record. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "spartan/io.h"

/* The IDX type byte of unsigned bytes, the only one accepted. */
#define IDX_TYPE_U8  0x08
/* gzread takes an unsigned length and returns an int: read in pieces well below INT_MAX. */
#define READ_CHUNK   ((size_t)1 << 30)
/* The largest file read: the largest payload and header, stored uncompressed in gzip (5 bytes
 * of deflate framing per 64 KB block, 18 of gzip header and trailer), with room to spare. */
#define IDX_MAX_FILE (SPARTAN_IDX_MAX_BYTES + SPARTAN_IDX_MAX_BYTES / 1024 + 4096)

typedef struct reader {
    gzFile gz;
    const char *path;
    int cut; /* the gzip stream ended before its end-of-stream marker */
} reader;

static spartan_status fail(spartan_status st, const char *path, const char *fmt, ...)
    SP_PRINTF(3, 4);
static spartan_status fail(spartan_status st, const char *path, const char *fmt, ...) {
    char detail[512]; /* details are short; the path, of any length, goes in separately */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return sp_err_set(sp_thread_err(), st, "%s: %s", path, detail);
}

/* zlib's message starts with the path it was opened with; ours already names the file. */
static const char *zdetail(const reader *r, const char *zmsg) {
    size_t n = strlen(r->path);
    if (!zmsg) return "unknown error";
    if (strncmp(zmsg, r->path, n) == 0 && zmsg[n] == ':' && zmsg[n + 1] == ' ') return zmsg + n + 2;
    return zmsg;
}

/* Reads up to n bytes; *got says how many arrived. A clean end of data is not an error (the
 * caller compares *got with what it expected); a read error is IO_ERROR and a damaged gzip stream
 * BAD_FORMAT, both recorded. A gzip stream cut short sets r->cut. */
static spartan_status fill(reader *r, void *buf, size_t n, size_t *got) {
    unsigned char *p = buf;
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < READ_CHUNK ? n - *got : READ_CHUNK;
        int k = gzread(r->gz, p + *got, (unsigned)want);
        if (k <= 0) break;
        *got += (size_t)k;
    }
    int zerr = Z_OK;
    const char *zmsg = gzerror(r->gz, &zerr);
    switch (zerr) {
    case Z_OK:
    case Z_STREAM_END:
        return SPARTAN_OK;
    case Z_BUF_ERROR: /* zlib's "unexpected end of file": the gzip stream stops mid-way */
        r->cut = 1;
        return SPARTAN_OK;
    case Z_ERRNO:
        return fail(SPARTAN_STATUS_IO_ERROR, r->path, "read failed: %s", zdetail(r, zmsg));
    case Z_MEM_ERROR:
        return fail(SPARTAN_STATUS_OUT_OF_HOST_MEMORY, r->path, "out of memory while inflating");
    default:
        return fail(SPARTAN_STATUS_BAD_FORMAT, r->path, "corrupt gzip stream: %s",
                    zdetail(r, zmsg));
    }
}

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* A cut gzip stream says so in the truncation messages: the byte counts are then of the
 * decompressed data that survived, not the size of the file. */
static const char *cut_note(const reader *r) {
    return r->cut ? " (the gzip stream is cut short)" : "";
}

/* Reads and checks magic, type, rank and dimensions; fills rank, dims and count. */
static spartan_status read_header(reader *r, spartan_idx *idx) {
    unsigned char magic[4];
    size_t got;
    spartan_status st = fill(r, magic, sizeof magic, &got);
    if (st != SPARTAN_OK) return st;
    if (got < sizeof magic)
        return fail(SPARTAN_STATUS_BAD_FORMAT, r->path,
                    "truncated: %zu bytes, shorter than the 4-byte IDX magic%s", got, cut_note(r));
    if (magic[0] != 0 || magic[1] != 0)
        return fail(SPARTAN_STATUS_BAD_FORMAT, r->path,
                    "bad magic 0x%02x%02x (expected 0x0000 then type and rank)", magic[0],
                    magic[1]);
    if (magic[2] != IDX_TYPE_U8)
        return fail(SPARTAN_STATUS_BAD_FORMAT, r->path,
                    "unsupported type byte 0x%02x (only 0x08, unsigned bytes)", magic[2]);
    int rank = magic[3];
    if (rank < 1 || rank > SPARTAN_IDX_MAX_RANK)
        return fail(SPARTAN_STATUS_BAD_FORMAT, r->path, "rank %d (must be 1 to %d)", rank,
                    SPARTAN_IDX_MAX_RANK);

    unsigned char dims[4 * SPARTAN_IDX_MAX_RANK];
    size_t need = 4 * (size_t)rank;
    st = fill(r, dims, need, &got);
    if (st != SPARTAN_OK) return st;
    if (got < need)
        return fail(SPARTAN_STATUS_BAD_FORMAT, r->path,
                    "truncated: rank %d needs %zu bytes of dimensions, file has %zu%s", rank, need,
                    got, cut_note(r));
    size_t count = 1;
    int too_big = 0;
    for (int i = 0; i < rank; i++) {
        uint32_t d = be32(dims + 4 * i);
        if (d == 0) return fail(SPARTAN_STATUS_BAD_FORMAT, r->path, "dimension %d is 0", i);
        idx->dims[i] = d;
        /* Compared by division, so the product never overflows. */
        if (too_big || count > SPARTAN_IDX_MAX_BYTES / d)
            too_big = 1;
        else
            count *= d;
    }
    if (too_big || count > SPARTAN_IDX_MAX_BYTES) {
        char shape[16 * SPARTAN_IDX_MAX_RANK] = "";
        size_t at = 0;
        for (int i = 0; i < rank && at < sizeof shape; i++)
            at += (size_t)snprintf(shape + at, sizeof shape - at, "%s%zu", i ? " x " : "",
                                   idx->dims[i]);
        return fail(SPARTAN_STATUS_BAD_FORMAT, r->path,
                    "header promises %s bytes, above the limit of %zu", shape,
                    (size_t)SPARTAN_IDX_MAX_BYTES);
    }
    idx->rank = rank;
    idx->count = count;
    return SPARTAN_OK;
}

/* After the payload the file must end: one more read of at most a buffer, which also makes zlib
 * check the gzip trailer (CRC and length). What follows is never read through: a gzip stream can
 * inflate to far more than its file's size. */
static spartan_status expect_end(reader *r, size_t count) {
    unsigned char buf[4096];
    size_t got;
    spartan_status st = fill(r, buf, sizeof buf, &got);
    if (st != SPARTAN_OK) return st;
    if (got)
        return fail(SPARTAN_STATUS_BAD_FORMAT, r->path,
                    "%s%zu trailing bytes after the %zu bytes of data the header promises",
                    got == sizeof buf ? "at least " : "", got, count);
    if (r->cut)
        return fail(SPARTAN_STATUS_BAD_FORMAT, r->path,
                    "truncated: the gzip stream is cut after the data (no end-of-stream trailer)");
    return SPARTAN_OK;
}

spartan_status spartan_idx_read(const char *path, spartan_idx *out) {
    if (out) memset(out, 0, sizeof *out);
    if (!path || !out)
        return sp_err_set(sp_thread_err(), SPARTAN_STATUS_INVALID_ARGUMENT,
                          "spartan_idx_read: path and out must not be NULL");
    /* A regular file no larger than the largest payload could compress to; the decompressed
     * stream is bounded by the header (read_header, fill, expect_end). */
    sp_rfile f;
    spartan_status st = sp_rfile_open(&f, AT_FDCWD, path, path, 0, IDX_MAX_FILE, sp_thread_err());
    if (st != SPARTAN_OK) return st;
    reader r = {gzdopen(f.fd, "rb"), path, 0};
    if (!r.gz) {
        sp_rfile_close(&f);
        return fail(SPARTAN_STATUS_OUT_OF_HOST_MEMORY, path, "cannot open: out of memory");
    }
    gzbuffer(r.gz, 1u << 17);

    spartan_idx idx = {0};
    st = read_header(&r, &idx);
    if (st != SPARTAN_OK) goto fail;
    idx.data = malloc(idx.count);
    if (!idx.data) {
        st = fail(SPARTAN_STATUS_OUT_OF_HOST_MEMORY, path, "cannot allocate %zu bytes of data",
                  idx.count);
        goto fail;
    }
    size_t got;
    st = fill(&r, idx.data, idx.count, &got);
    if (st != SPARTAN_OK) goto fail;
    if (got < idx.count) {
        st = fail(SPARTAN_STATUS_BAD_FORMAT, path,
                  "truncated: header promises %zu bytes of data, file has %zu%s", idx.count, got,
                  cut_note(&r));
        goto fail;
    }
    st = expect_end(&r, idx.count);
    if (st != SPARTAN_OK) goto fail;
    gzclose(r.gz);
    *out = idx;
    return SPARTAN_OK;

fail:
    free(idx.data);
    gzclose(r.gz);
    return st;
}

void spartan_idx_free(spartan_idx *idx) {
    if (!idx) return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}
