/* The pruned export (include/spartan/checkpoint.h, spartan_model_export_pruned): a prepared
 * model's parameters, each as the flat positions and values of its non-zero elements, in a
 * safetensors file. This file decides what the export holds; the model's description, the
 * checksums and the atomic write are model_file.c's, as for checkpoints. There is no loader in
 * the library: tools/load_pruned.py rebuilds the dense tensors. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/model_file.h"
#include "io/safetensors.h"
#include "spartan/checkpoint.h"
#include "spartan/nn.h"
#include "tensor/tensor_internal.h"

#define FORMAT "spartan-pruned-1"

static const char layout[] =
    "Each parameter P is stored as its elements whose bits are not all zero: 'P.indices' (I32) "
    "holds their flat positions in P's dense shape ('P.shape'), strictly ascending, 'P.values' "
    "(F32) the elements in the same order; every other element is +0.0 (rebuild: zeros of "
    "'P.shape', flattened, [indices] = values, reshaped). " SP_MF_LAYOUT_NATIVE
    " " SP_MF_LAYOUT_MODEL "; 'step' is the number of SGD updates done.";

/* One parameter: the model's tensor, its names in the file, its dense shape, and its packed
 * non-zero elements (nnz I32 positions then nnz F32 values, little-endian; malloc'd). */
typedef struct packed {
    spartan_param p;
    size_t numel, nnz;
    char shape_key[64], shape[96], indices[64], values[64];
    unsigned char *data;
} packed;

/* The names and the dense shape of parameter i. */
static spartan_status describe(spartan_context *ctx, const spartan_model *m, size_t i, packed *q) {
    spartan_status st = spartan_model_param(m, i, &q->p);
    if (st != SPARTAN_OK) return st;
    q->numel = 1;
    size_t at = (size_t)snprintf(q->shape, sizeof q->shape, "[");
    for (size_t d = 0; d < q->p.rank; d++) {
        q->numel *= q->p.shape[d];
        at += (size_t)snprintf(q->shape + at, sizeof q->shape - at, "%s%zu", d ? "," : "",
                               q->p.shape[d]);
    }
    snprintf(q->shape + at, sizeof q->shape - at, "]");
    snprintf(q->shape_key, sizeof q->shape_key, "%s.shape", q->p.name);
    snprintf(q->indices, sizeof q->indices, "%s.indices", q->p.name);
    snprintf(q->values, sizeof q->values, "%s.values", q->p.name);
    if (q->numel > (size_t)INT32_MAX)
        return sp_invalid(ctx,
                          "spartan_model_export_pruned: %s has %zu elements, more than an I32 "
                          "index reaches",
                          q->p.name, q->numel);
    return SPARTAN_OK;
}

/* Reads the parameter into host (numel floats) and packs its non-zero elements. */
static spartan_status pack(spartan_context *ctx, packed *q, float *host) {
    spartan_status st = spartan_tensor_read(q->p.value, host, q->numel);
    if (st != SPARTAN_OK) return st;
    size_t nnz = 0;
    for (size_t j = 0; j < q->numel; j++) {
        uint32_t u;
        memcpy(&u, &host[j], 4);
        nnz += u != 0;
    }
    q->data = malloc(nnz ? 8 * nnz : 1);
    if (!q->data)
        return sp_err_set(&ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "exporting %s", q->p.name);
    q->nnz = nnz;
    unsigned char *pos = q->data, *val = q->data + 4 * nnz;
    for (size_t j = 0; j < q->numel; j++) {
        uint32_t u;
        memcpy(&u, &host[j], 4);
        if (!u) continue;
        sp_st_le32_put((uint32_t)j, pos);
        sp_st_le32_put(u, val);
        pos += 4;
        val += 4;
    }
    return SPARTAN_OK;
}

/* The size a file of the same parameters as dense F32 tensors, with meta, would have. */
static spartan_status dense_size(const packed *q, size_t np, const sp_mf_meta *meta, size_t *out,
                                 sp_err *err) {
    sp_st_tensor *t = calloc(np ? np : 1, sizeof *t);
    if (!t) return sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "export: dense size");
    size_t data = 0;
    for (size_t i = 0; i < np; i++) {
        t[i] = (sp_st_tensor){q[i].p.name, SP_ST_F32, (int)q[i].p.rank, {0}, NULL, 4 * q[i].numel};
        memcpy(t[i].shape, q[i].p.shape, q[i].p.rank * sizeof q[i].p.shape[0]);
        data += t[i].bytes;
    }
    unsigned char *h = NULL;
    size_t hlen = 0;
    spartan_status st = sp_st_encode_header(t, np, meta->e, meta->n, &h, &hlen, err);
    if (st == SPARTAN_OK) *out = hlen + data;
    free(h);
    free(t);
    return st;
}

spartan_status spartan_model_export_pruned(const spartan_model *m, const char *path,
                                           const spartan_checkpoint_meta *extra, size_t n_extra,
                                           spartan_export_info *info) {
    static const char fn[] = "spartan_model_export_pruned";
    spartan_context *ctx = spartan_model_context(m);
    if (!m || !path) return sp_invalid(ctx, "%s: NULL argument", fn);
    if (!spartan_model_is_prepared(m))
        return sp_invalid(ctx, "%s: call spartan_model_prepare first", fn);
    sp_err *err = &ctx->err;
    const size_t np = spartan_model_param_count(m);
    packed *q = calloc(np ? np : 1, sizeof *q);
    sp_st_meta *own = malloc((np + 2) * sizeof *own);
    sp_st_tensor *t = calloc(np ? 2 * np : 1, sizeof *t);
    sp_mf_meta meta = {0};
    float *host = NULL;
    spartan_status st = SPARTAN_OK;
    if (!q || !own || !t) {
        st = sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "exporting %s", path);
        goto done;
    }
    size_t most = 1, elements = 0, nonzero = 0;
    for (size_t i = 0; i < np && st == SPARTAN_OK; i++) {
        st = describe(ctx, m, i, &q[i]);
        if (q[i].numel > most) most = q[i].numel;
        elements += q[i].numel;
    }
    if (st != SPARTAN_OK) goto done;

    char step[24];
    snprintf(step, sizeof step, "%zu", spartan_model_steps(m));
    own[0] = (sp_st_meta){"step", step};
    own[1] = (sp_st_meta){"layout", layout};
    for (size_t i = 0; i < np; i++) own[2 + i] = (sp_st_meta){q[i].shape_key, q[i].shape};
    if ((st = sp_mf_meta_make(m, fn, FORMAT, own, np + 2, extra, n_extra, &meta)) != SPARTAN_OK)
        goto done;

    host = malloc(most * sizeof *host);
    if (!host) {
        st = sp_err_set(err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "exporting %s", path);
        goto done;
    }
    for (size_t i = 0; i < np && st == SPARTAN_OK; i++) {
        if ((st = pack(ctx, &q[i], host)) != SPARTAN_OK) break;
        t[2 * i] = (sp_st_tensor){q[i].indices, SP_ST_I32, 1, {q[i].nnz}, q[i].data, 4 * q[i].nnz};
        t[2 * i + 1] = (sp_st_tensor){
            q[i].values, SP_ST_F32, 1, {q[i].nnz}, q[i].data + 4 * q[i].nnz, 4 * q[i].nnz};
        nonzero += q[i].nnz;
    }
    /* the dense size first, so that a failure leaves no file (the sums' placeholders have the
     * digits' length) */
    size_t bytes = 0, dense = 0;
    if (st == SPARTAN_OK && info) st = dense_size(q, np, &meta, &dense, err);
    if (st == SPARTAN_OK) st = sp_mf_write(path, t, 2 * np, &meta, &bytes, err);
    if (st == SPARTAN_OK && info) *info = (spartan_export_info){elements, nonzero, bytes, dense};
done:
    for (size_t i = 0; q && i < np; i++) free(q[i].data);
    sp_mf_meta_free(&meta);
    free(host);
    free(t);
    free(own);
    free(q);
    return st;
}
