/* The weight-sparse path of the fc layers under Dropback (wpath.c): a description of W's
 * non-zeros per layer, rebuilt when it pays, and the per-pass choice between the weight-sparse
 * GEMMs and the policy's path from both measured times. */
#ifndef SP_NN_WPATH_H
#define SP_NN_WPATH_H

#include <stddef.h>

#include "nn/layers/layer.h"

struct spartan_model;

/* After the Dropback pool: a description per fc layer whose W is in it (none without Dropback). */
spartan_status sp_wpath_prepare(struct spartan_model *m);
void sp_wpath_release(sp_layer *L);
/* Before a training step: each layer's choice per pass (g.ws_use), after a rebuild if one pays
 * (blocking). Nothing while d > 0: the untracked weights are not zeros yet. */
spartan_status sp_wpath_plan(struct spartan_model *m, size_t step);
/* After the step's blocking read: a pass's measured GEMM seconds, to the weight-sparse GEMM's
 * time or the other path's. */
void sp_wpath_observe(sp_layer *L, int pass, double seconds);
/* After the step's update: a description whose W gained elements is stale; the choices end. */
void sp_wpath_updated(struct spartan_model *m);

#endif /* SP_NN_WPATH_H */
