/* Dropback's device steps (kernels_cl/nn.cl: nn_w0_fill, nn_dropback_*; the algorithm is
 * runtime/nn/dropback.c's): the initial values regenerated from their stream, the threshold by a
 * radix select over the scores of every parameter, and the reset of the untracked elements. */
#include "ops/ops_internal.h"
#include "tensor/tensor_internal.h"

#define HIST_BINS   2048 /* NN_DB_BINS */
#define STATE_WORDS 8    /* the state's words (nn.cl) */

void sp_dropback_dev_free(spartan_context *ctx, sp_dropback_dev *d) {
    cl_mem *all[] = {&d->scores, &d->hist, &d->state, &d->tracked, &d->joined};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        sp_buffer_release(ctx, *all[i]);
        *all[i] = NULL;
    }
}

spartan_status sp_dropback_dev_make(spartan_context *ctx, size_t total, size_t params, size_t k,
                                    sp_dropback_dev *out) {
    *out = (sp_dropback_dev){.params = params, .total = total};
    if (!total || !params || !k || k > total || total > 0xffffffffu)
        return sp_invalid(ctx, "Dropback: keep %zu of %zu elements in %zu parameters", k, total,
                          params);
    out->k = (cl_uint)k;
    spartan_status st =
        sp_buffer_create(ctx, total * sizeof(float), "Dropback scores", &out->scores);
    if (st == SPARTAN_OK)
        st = sp_buffer_create(ctx, HIST_BINS * sizeof(cl_uint), "Dropback histogram", &out->hist);
    if (st == SPARTAN_OK)
        st =
            sp_buffer_create(ctx, STATE_WORDS * sizeof(cl_uint), "Dropback threshold", &out->state);
    if (st == SPARTAN_OK)
        st = sp_buffer_create(ctx, params * sizeof(cl_uint), "Dropback counts", &out->tracked);
    if (st == SPARTAN_OK)
        st = sp_buffer_create(ctx, params * sizeof(cl_uint), "Dropback counts", &out->joined);
    /* the bins start at 0 (each select clears them after); so does the state (the first guess,
     * the counts) and the scores (their sign bits: no element tracked yet) */
    const cl_uint zero = 0;
    cl_int rc = CL_SUCCESS;
    if (st == SPARTAN_OK)
        rc = clEnqueueFillBuffer(ctx->queue, out->hist, &zero, sizeof zero, 0,
                                 HIST_BINS * sizeof(cl_uint), 0, NULL, NULL);
    if (st == SPARTAN_OK && rc == CL_SUCCESS)
        rc = clEnqueueFillBuffer(ctx->queue, out->scores, &zero, sizeof zero, 0,
                                 total * sizeof(float), 0, NULL, NULL);
    if (st == SPARTAN_OK && rc == CL_SUCCESS)
        rc = clEnqueueFillBuffer(ctx->queue, out->joined, &zero, sizeof zero, 0,
                                 params * sizeof(cl_uint), 0, NULL, NULL);
    if (st == SPARTAN_OK && rc == CL_SUCCESS)
        rc = clEnqueueFillBuffer(ctx->queue, out->state, &zero, sizeof zero, 0,
                                 STATE_WORDS * sizeof(cl_uint), 0, NULL, NULL);
    if (rc != CL_SUCCESS) st = sp_ctx_cl_fail(ctx, rc, "clEnqueueFillBuffer", "Dropback state");
    if (st != SPARTAN_OK) sp_dropback_dev_free(ctx, out);
    return st;
}

spartan_status sp_dropback_begin(spartan_context *ctx, sp_dropback_dev *d, int select, size_t k) {
    const size_t one = 1;
    cl_uint params = (cl_uint)d->params, sel = select != 0, budget = (cl_uint)k;
    if (!k || k > d->total) return sp_invalid(ctx, "Dropback: a budget of %zu of %zu", k, d->total);
    sp_arg args[] = {SP_ARG(d->state),  SP_ARG(budget), SP_ARG(d->tracked),
                     SP_ARG(d->joined), SP_ARG(params), SP_ARG(sel)};
    return sp_launch(ctx, SP_K_nn_dropback_begin, 1, &one, &one, args, 6);
}

/* Work-items for a Dropback kernel over n elements: NN_DB_VECS (4) vectors each, whole groups. */
static size_t strided_items(const spartan_context *ctx, size_t n) {
    const size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "WG");
    const size_t per = (size_t)sp_tuned_get(&ctx->tuned, "VEC") * 4;
    return (n + wg * per - 1) / (wg * per) * wg;
}

/* A parameter's elements as the kernels take them (uint), and its place among the scores. */
static spartan_status elements(spartan_context *ctx, const sp_dropback_dev *d,
                               const spartan_tensor *w, size_t off, cl_uint *n) {
    if (off + w->numel > d->total)
        return sp_invalid(ctx, "Dropback: a parameter of %zu at %zu past the %zu scores", w->numel,
                          off, d->total);
    *n = (cl_uint)w->numel;
    return SPARTAN_OK;
}

/* One of a pair of kernels over w's n elements: `regen` takes (w, n, key, scale, decay, rest...)
 * and regenerates d w0, `zero` takes (w, n, rest...) for the updates where d w0 is 0 (a bias, or d
 * decayed to 0): nothing to regenerate. */
static spartan_status launch_pair(spartan_context *ctx, sp_kernel_id regen, sp_kernel_id zero,
                                  const spartan_tensor *w, cl_uint n, uint64_t key, float scale,
                                  float decay, const sp_arg *rest, cl_uint nrest) {
    const int dw0 = scale != 0.0f && decay != 0.0f;
    cl_ulong k = key;
    sp_arg args[16];
    cl_uint na = 0;
    args[na++] = SP_ARG(w->mem);
    args[na++] = SP_ARG(n);
    if (dw0) {
        args[na++] = SP_ARG(k);
        args[na++] = SP_ARG(scale);
        args[na++] = SP_ARG(decay);
    }
    for (cl_uint i = 0; i < nrest; i++) args[na++] = rest[i];
    return sp_launch_1d(ctx, dw0 ? regen : zero, strided_items(ctx, n), args, na);
}

spartan_status sp_dropback_score(spartan_context *ctx, sp_dropback_dev *d, const spartan_tensor *w,
                                 size_t off, uint64_t key, float scale, float decay) {
    cl_uint n = 0, o = (cl_uint)off;
    spartan_status st = elements(ctx, d, w, off, &n);
    if (st != SPARTAN_OK || n == 0) return st;
    sp_arg rest[] = {SP_ARG(d->scores), SP_ARG(o), SP_ARG(d->state), SP_ARG(d->hist)};
    return launch_pair(ctx, SP_K_nn_dropback_score, SP_K_nn_dropback_score0, w, n, key, scale,
                       decay, rest, 4);
}

spartan_status sp_dropback_guess(spartan_context *ctx, sp_dropback_dev *d) {
    const size_t one = 1;
    sp_arg args[] = {SP_ARG(d->state), SP_ARG(d->hist)};
    return sp_launch(ctx, SP_K_nn_dropback_guess, 1, &one, &one, args, 2);
}

spartan_status sp_dropback_hist(spartan_context *ctx, sp_dropback_dev *d, const spartan_tensor *w,
                                size_t off, unsigned level) {
    cl_uint n = 0, o = (cl_uint)off, lv = level;
    spartan_status st = elements(ctx, d, w, off, &n);
    if (st != SPARTAN_OK || n == 0) return st;
    sp_arg args[] = {SP_ARG(n),  SP_ARG(d->scores), SP_ARG(o),
                     SP_ARG(lv), SP_ARG(d->state),  SP_ARG(d->hist)};
    return sp_launch_1d(ctx, SP_K_nn_dropback_hist, strided_items(ctx, n), args, 6);
}

spartan_status sp_dropback_select(spartan_context *ctx, sp_dropback_dev *d, unsigned level) {
    cl_uint lv = level;
    const size_t one = 1;
    sp_arg args[] = {SP_ARG(d->hist), SP_ARG(d->state), SP_ARG(lv)};
    return sp_launch(ctx, SP_K_nn_dropback_select, 1, &one, &one, args, 3);
}

spartan_status sp_dropback_apply(spartan_context *ctx, sp_dropback_dev *d, spartan_tensor *w,
                                 size_t off, size_t slot, uint64_t key, float scale, float decay) {
    cl_uint n = 0, o = (cl_uint)off, sl = (cl_uint)slot;
    spartan_status st = elements(ctx, d, w, off, &n);
    if (st == SPARTAN_OK && slot >= d->params)
        st = sp_invalid(ctx, "Dropback: count %zu of %zu", slot, d->params);
    if (st != SPARTAN_OK || n == 0) return st;
    sp_arg rest[] = {SP_ARG(d->scores),  SP_ARG(o),         SP_ARG(d->state),
                     SP_ARG(d->tracked), SP_ARG(d->joined), SP_ARG(sl)};
    return launch_pair(ctx, SP_K_nn_dropback_apply, SP_K_nn_dropback_apply0, w, n, key, scale,
                       decay, rest, 6);
}

spartan_status sp_dropback_member(spartan_context *ctx, sp_dropback_dev *d, spartan_tensor *w,
                                  size_t off, uint64_t key, float scale, float decay) {
    cl_uint n = 0, o = (cl_uint)off;
    spartan_status st = elements(ctx, d, w, off, &n);
    if (st != SPARTAN_OK || n == 0) return st;
    sp_arg rest[] = {SP_ARG(d->scores), SP_ARG(o)};
    return launch_pair(ctx, SP_K_nn_dropback_member, SP_K_nn_dropback_member0, w, n, key, scale,
                       decay, rest, 2);
}

spartan_status sp_dropback_joined_async(spartan_context *ctx, const sp_dropback_dev *d,
                                        unsigned *joined) {
    cl_int rc = clEnqueueReadBuffer(ctx->queue, d->joined, CL_FALSE, 0, d->params * sizeof(cl_uint),
                                    joined, 0, NULL, NULL);
    return rc == CL_SUCCESS ? SPARTAN_OK
                            : sp_ctx_cl_fail(ctx, rc, "clEnqueueReadBuffer", "Dropback counts");
}

spartan_status sp_dropback_read(spartan_context *ctx, const sp_dropback_dev *d, unsigned *tracked,
                                unsigned *joined, sp_dropback_counts *out) {
    cl_uint state[STATE_WORDS];
    cl_int rc = clEnqueueReadBuffer(ctx->queue, d->tracked, CL_TRUE, 0, d->params * sizeof(cl_uint),
                                    tracked, 0, NULL, NULL);
    if (rc == CL_SUCCESS)
        rc = clEnqueueReadBuffer(ctx->queue, d->joined, CL_TRUE, 0, d->params * sizeof(cl_uint),
                                 joined, 0, NULL, NULL);
    if (rc == CL_SUCCESS)
        rc = clEnqueueReadBuffer(ctx->queue, d->state, CL_TRUE, 0, sizeof state, state, 0, NULL,
                                 NULL);
    if (rc != CL_SUCCESS) return sp_ctx_cl_fail(ctx, rc, "clEnqueueReadBuffer", "Dropback counts");
    ctx->syncs++;
    union {
        cl_uint u;
        float f;
    } t = {state[0]};
    out->threshold = t.f;
    out->misses = state[5];
    out->joined = 0;
    for (size_t p = 0; p < d->params; p++) out->joined += joined[p];
    out->joined_total = ((uint64_t)state[7] << 32 | state[6]) + out->joined;
    return SPARTAN_OK;
}

spartan_status sp_w0_fill(spartan_context *ctx, spartan_tensor *w, uint64_t key, float scale) {
    cl_uint n;
    cl_ulong k = key;
    spartan_status st = sp_u32(ctx, w->numel, "elements", &n);
    if (st != SPARTAN_OK || n == 0) return st;
    sp_arg args[] = {SP_ARG(w->mem), SP_ARG(n), SP_ARG(k), SP_ARG(scale)};
    return sp_launch_1d(ctx, SP_K_nn_w0_fill, n, args, 4);
}
