/* The reference kernels (kernels_cl/reference.cl): the correct paths the dense GEMM and the
 * monitor take on a device where their tuned families did not build or validate. */
#include "ops/ops_internal.h"

typedef struct ref_gemm {
    cl_uint m, n, k, kc, ta, tb;
    cl_mem a, b;
} ref_gemm;

static spartan_status ref_slices(spartan_context *ctx, void *arg, size_t part0, size_t nparts,
                                 cl_mem dst, float alpha, float beta) {
    const ref_gemm *r = arg;
    cl_uint k0 = (cl_uint)(part0 * r->kc);
    size_t g[3] = {r->n, r->m, nparts}, l[3] = {16, 1, 1};
    sp_arg a[] = {SP_ARG(r->m), SP_ARG(r->n),  SP_ARG(r->k), SP_ARG(alpha),
                  SP_ARG(r->a), SP_ARG(r->ta), SP_ARG(r->b), SP_ARG(r->tb),
                  SP_ARG(beta), SP_ARG(dst),   SP_ARG(k0),   SP_ARG(r->kc)};
    return sp_launch(ctx, SP_K_reference_gemm, 3, g, l, a, 12);
}

spartan_status sp_reference_gemm(spartan_context *ctx, int ta, int tb, size_t m, size_t n, size_t k,
                                 float alpha, const spartan_tensor *a, const spartan_tensor *b,
                                 float beta, spartan_tensor *c) {
    if (!sp_family_usable(ctx, SP_FAMILY_reference))
        return sp_err_set(&ctx->err, SPARTAN_STATUS_UNSUPPORTED,
                          "no dense GEMM works on %s: the own kernel %s; the reference kernel %s; "
                          "CLBlast %s",
                          ctx->dev.info.name, ctx->programs[SP_FAMILY_gemm_dense].why,
                          ctx->programs[SP_FAMILY_reference].why,
                          spartan_have_clblast() ? "did not validate" : "is not built in");
    ref_gemm r = {0, 0, 0, 0, (cl_uint)(ta != 0), (cl_uint)(tb != 0), a->mem, b->mem};
    spartan_status st;
    if ((st = sp_u32(ctx, m, "M", &r.m)) || (st = sp_u32(ctx, n, "N", &r.n)) ||
        (st = sp_u32(ctx, k, "K", &r.k)) || (st = sp_u32(ctx, m * n, "M*N", &r.kc)))
        return st;
    size_t kc_max = sp_loop_max(ctx) - 8;
    size_t parts = (k + kc_max - 1) / kc_max;
    r.kc = (cl_uint)((k + parts - 1) / parts);
    return sp_split_reduce(ctx, parts, m * n, c->mem, alpha, beta, ref_slices, &r);
}

spartan_status sp_reference_count(spartan_context *ctx, const spartan_tensor *z, spartan_tensor *y,
                                  int relu, spartan_sparse *s) {
    if (!sp_family_usable(ctx, SP_FAMILY_reference))
        return sp_err_set(&ctx->err, SPARTAN_STATUS_UNSUPPORTED,
                          "the monitor's kernels and the reference count both failed on %s: %s; %s",
                          ctx->dev.info.name, ctx->programs[SP_FAMILY_monitor].why,
                          ctx->programs[SP_FAMILY_reference].why);
    cl_uint rows = (cl_uint)s->rows, cols = (cl_uint)s->cols, tiles_c = (cl_uint)s->tiles_c,
            ntiles = (cl_uint)s->ntiles, r = (cl_uint)(relu != 0);
    cl_uint wg = (cl_uint)sp_tuned_get(&ctx->tuned, "WG"), groups = (cl_uint)s->partial_count;
    sp_arg a[] = {SP_ARG(z->mem),  SP_ARG(y->mem), SP_ARG(rows), SP_ARG(cols),
                  SP_ARG(tiles_c), SP_ARG(ntiles), SP_ARG(r),    SP_ARG(s->counts)};
    spartan_status st = sp_launch_1d(ctx, SP_K_reference_count, s->ntiles, a, 8);
    sp_arg b[] = {SP_ARG(s->counts), SP_ARG(ntiles), SP_ARG(wg), SP_ARG(groups),
                  SP_ARG(s->partials)};
    if (st == SPARTAN_OK) st = sp_launch_1d(ctx, SP_K_reference_partials, groups, b, 5);
    s->filled = st == SPARTAN_OK;
    return st;
}
