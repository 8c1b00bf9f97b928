/* Timing marks of a training step (marks.h). */
#include <stdlib.h>

#include "nn/marks.h"
#include "program/context_internal.h"

spartan_status sp_marks_add(sp_marks *k, double *sec, double *gemm) {
    if (k->count == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 64;
        sp_mark *at = realloc(k->at, cap * sizeof *at);
        if (!at) return sp_err_set(&k->ctx->err, SPARTAN_STATUS_OUT_OF_HOST_MEMORY, "markers");
        k->at = at;
        k->cap = cap;
    }
    sp_mark *m = &k->at[k->count];
    spartan_status st = spartan_mark_record(k->ctx, &m->mark);
    if (st != SPARTAN_OK) return st;
    m->sec = sec;
    m->gemm = gemm;
    k->count++;
    return SPARTAN_OK;
}

void sp_marks_release(sp_marks *k) {
    for (size_t i = 0; i < k->count; i++) spartan_mark_release(&k->at[i].mark);
    k->count = 0;
}

void sp_marks_settle(sp_marks *k) {
    for (size_t i = 1; i < k->count; i++) {
        sp_mark *m = &k->at[i];
        double ms;
        if (!m->sec ||
            spartan_mark_elapsed(k->ctx, &k->at[i - 1].mark, &m->mark, &ms) != SPARTAN_OK)
            continue;
        *m->sec += ms * 1e-3;
        if (m->gemm) *m->gemm += ms * 1e-3;
    }
    sp_marks_release(k);
}

void sp_marks_free(sp_marks *k) {
    sp_marks_release(k);
    free(k->at);
    k->at = NULL;
    k->cap = 0;
}
