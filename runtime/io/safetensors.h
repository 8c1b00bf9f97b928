/* The safetensors file format (https://huggingface.co/docs/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON header (optionally padded with spaces), then
 * the data section. The header maps each tensor name to {"dtype", "shape", "data_offsets":
 * [begin, end]} (byte offsets into the data section) and may hold "__metadata__", a map of
 * strings. Element bytes are little-endian, tensors row-major.
 *
 * This file owns reading (with every structural check) and writing (atomically); what the
 * tensors and metadata mean is the caller's (checkpoint.c, export.c, the parity test). */
#ifndef SP_IO_SAFETENSORS_H
#define SP_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define SP_ST_MAX_RANK   8
#define SP_ST_MAX_HEADER ((size_t)100 << 20) /* as the reference implementation's limit */

/* X(NAME, bytes per element): the dtypes the reader accepts. */
#define SP_ST_DTYPE_MAP(X)                                                                         \
    X(F64, 8)                                                                                      \
    X(F32, 4) X(F16, 2) X(BF16, 2) X(I64, 8) X(I32, 4) X(I16, 2) X(I8, 1) X(U8, 1) X(BOOL, 1)

typedef enum sp_st_dtype {
#define SP_ST_X_(name, size) SP_ST_##name,
    SP_ST_DTYPE_MAP(SP_ST_X_)
#undef SP_ST_X_
        SP_ST_DTYPE_COUNT
} sp_st_dtype;

const char *sp_st_dtype_name(sp_st_dtype t);
size_t sp_st_dtype_size(sp_st_dtype t);

typedef struct sp_st_tensor {
    const char *name;
    sp_st_dtype dtype;
    int rank; /* 0 .. SP_ST_MAX_RANK (0: a scalar) */
    size_t shape[SP_ST_MAX_RANK];
    const unsigned char *data; /* little-endian elements, row-major */
    size_t bytes;              /* elements x dtype size */
} sp_st_tensor;

typedef struct sp_st_meta {
    const char *key, *value;
} sp_st_meta;

/* A file read whole and checked. Tensors are in data-section order; names, values and data
 * point into memory the file owns. */
typedef struct sp_st_file {
    unsigned char *buf; /* the whole file */
    size_t len;
    size_t header_end; /* 8 + N: where the data section starts */
    sp_st_tensor *tensors;
    size_t ntensors;
    sp_st_meta *meta;
    size_t nmeta;
    void *json; /* the parsed header (cJSON), which the names and values point into */
} sp_st_file;

/* Reads path, a regular file of at most max bytes (IO_ERROR for anything else, a FIFO or a
 * device included, BAD_FORMAT when larger: both before a byte is read), header first, and checks
 * before it reads the data section: the header length against the file size (and SP_ST_MAX_HEADER),
 * that the header is one JSON object starting with '{' followed only by spaces, every entry (known
 * dtype, rank, non-negative integer dimensions and offsets, shape x dtype size = the byte
 * range, no unknown fields), unique names, metadata of strings only, and that the byte ranges,
 * ordered, cover the data section exactly (no gap, overlap or trailing byte). IO_ERROR when the
 * file cannot be read, BAD_FORMAT with a message naming the file otherwise; *out is empty on
 * failure. */
spartan_status sp_st_read(const char *path, size_t max, sp_st_file *out, sp_err *err);
/* Frees what sp_st_read made; an empty (zeroed) file is a no-op. */
void sp_st_free(sp_st_file *f);

const sp_st_tensor *sp_st_find(const sp_st_file *f, const char *name);
const char *sp_st_meta_get(const sp_st_file *f, const char *key); /* NULL when absent */

/* The header of a file holding tensors (data ignored; their bytes follow in this order) and
 * metadata: the 8-byte length, the JSON, and spaces up to a multiple of 8 bytes (so the data
 * section is aligned for readers that map the file). *out is malloc'd. */
spartan_status sp_st_encode_header(const sp_st_tensor *tensors, size_t n, const sp_st_meta *meta,
                                   size_t nmeta, unsigned char **out, size_t *len, sp_err *err);

/* Writes header then each tensor's bytes to path atomically and durably (sp_write_file_atomic:
 * a new temporary file in the same directory, fsync, rename over path, fsync of the directory;
 * a failure removes the temporary file and leaves path as it was; its crash test hook,
 * SPARTAN_TEST_CRASH_AFTER_BYTES, simulates a crash mid-save). */
spartan_status sp_st_write(const char *path, const unsigned char *header, size_t header_len,
                           const sp_st_tensor *tensors, size_t n, sp_err *err);

/* Float conversions between host floats and the file's little-endian bytes (any alignment). */
void sp_st_f32_load(const unsigned char *le, size_t count, float *out);
void sp_st_f32_store(const float *in, size_t count, unsigned char *le);
/* One 32-bit element (I32, U32, or an F32's bits) from or to 4 little-endian bytes. */
uint32_t sp_st_le32_get(const unsigned char *le);
void sp_st_le32_put(uint32_t v, unsigned char *le);

#endif /* SP_IO_SAFETENSORS_H */
