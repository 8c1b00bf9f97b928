/* Timing marks of a training step: the device time from one mark to the next is charged to a
 * (layer, pass), read once the step has finished (spartan_mark: profiling events or the host
 * clock, as the context decided). Below both the layers and the step: either may record. */
#ifndef SP_NN_MARKS_H
#define SP_NN_MARKS_H

#include "spartan/nn.h"

/* What a segment is charged to: seconds of the pass, and, for a GEMM segment, this step's
 * GEMM seconds of the pass (the policy's feedback). NULL: charged to nobody. */
typedef struct sp_mark {
    spartan_mark mark;
    double *sec;  /* NULL: the step's start, the loss */
    double *gemm; /* NULL: not a GEMM segment */
} sp_mark;

typedef struct sp_marks {
    spartan_context *ctx;
    sp_mark *at;
    size_t count, cap;
} sp_marks;

/* Records a mark closing the segment charged to *sec (and *gemm). */
spartan_status sp_marks_add(sp_marks *k, double *sec, double *gemm);
/* After the queue has finished: charges each segment, then releases the marks. A segment whose
 * time cannot be read is charged to nobody. */
void sp_marks_settle(sp_marks *k);
/* Releases the marks uncharged (a failed step). */
void sp_marks_release(sp_marks *k);
/* Frees the array. */
void sp_marks_free(sp_marks *k);

#endif /* SP_NN_MARKS_H */
