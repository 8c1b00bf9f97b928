/* Dense GEMM, two paths: CLBlast (portable, tuned for GPUs) and the runtime's own
 * register-blocked vector kernel (kernels_cl/gemm_dense.cl), which is what wins on CPUs, where
 * CLBlast has no tuned parameters. "Best dense" is the faster of the two for the device. */
#include "ops/ops_internal.h"

#ifdef SPARTAN_HAVE_CLBLAST
#include <clblast_c.h>
#endif

int spartan_have_clblast(void) {
#ifdef SPARTAN_HAVE_CLBLAST
    return 1;
#else
    return 0;
#endif
}

spartan_gemm_path spartan_gemm_best(const spartan_context *ctx) {
    if (!ctx || !spartan_have_clblast()) return SPARTAN_GEMM_OWN;
    /* CLBlast's database has no entry for CPU OpenCL drivers: its vendor defaults run at
     * 0.03-0.40x OpenBLAS on POCL, where the own kernel is at 0.5-1.2x. On a simulator
     * (Oclgrind) the own kernel is the one worth checking. */
    if ((ctx->dev.info.type & SPARTAN_DEVICE_CPU) || ctx->dev.info.vendor == SPARTAN_VENDOR_POCL ||
        ctx->dev.info.vendor == SPARTAN_VENDOR_SIMULATOR)
        return SPARTAN_GEMM_OWN;
    return SPARTAN_GEMM_CLBLAST;
}

#ifdef SPARTAN_HAVE_CLBLAST
static spartan_status run_clblast(spartan_context *ctx, int ta, int tb, size_t m, size_t n,
                                  size_t k, float alpha, const spartan_tensor *a,
                                  const spartan_tensor *b, float beta, spartan_tensor *c) {
    cl_command_queue q = ctx->queue;
    CLBlastStatusCode rc = CLBlastSgemm(
        CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
        tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a->mem, 0,
        spartan_tensor_cols(a), b->mem, 0, spartan_tensor_cols(b), beta, c->mem, 0, n, &q, NULL);
    if (rc == CLBlastSuccess) return SPARTAN_OK;
    spartan_status st = (rc == CLBlastOpenCLOutOfResources || rc == CLBlastTempBufferAllocFailure)
                            ? SPARTAN_STATUS_OUT_OF_DEVICE_MEMORY
                            : SPARTAN_STATUS_OPENCL_ERROR;
    return sp_err_set(&ctx->err, st, "CLBlastSgemm (%zux%zux%zu) failed with CLBlast status %d", m,
                      n, k, (int)rc);
}
#endif

/* How many chunks to split K into: when K is long and C small (backward-by-weight: C is a
 * weight matrix, K is batch x pixels), chunks of ~1024 give every work-group panels that fit
 * in cache and give the device more groups than C alone would. The partial sums cost M x N
 * floats per chunk, so only small C are split. */
static size_t split_parts(size_t m, size_t n, size_t k) {
    if (k < 4096 || m * n > ((size_t)1 << 20)) return 1;
    size_t parts = k / 1024;
    return parts > 32 ? 32 : parts;
}

/* out (cols x rows) = in^T (rows x cols), both row-major. */
static spartan_status launch_transpose(spartan_context *ctx, cl_uint rows, cl_uint cols, cl_mem in,
                                       cl_mem out) {
    size_t g[2] = {cols, rows}, l[2] = {16, 1};
    sp_arg args[] = {SP_ARG(rows), SP_ARG(cols), SP_ARG(in), SP_ARG(out)};
    return sp_launch(ctx, "gemm_dense_transpose", 2, g, l, args, 4);
}

static spartan_status run_own(spartan_context *ctx, int ta, int tb, size_t m, size_t n, size_t k,
                              float alpha, const spartan_tensor *a, const spartan_tensor *b,
                              float beta, spartan_tensor *c) {
    cl_uint um, un, uk;
    spartan_status st;
    if ((st = sp_u32(ctx, m, "M", &um)) || (st = sp_u32(ctx, n, "N", &un)) ||
        (st = sp_u32(ctx, k, "K", &uk)))
        return st;
    cl_mem bm = b->mem;
    if (tb) { /* B is stored N x K: transpose it into scratch (weights: small) */
        st = sp_scratch(ctx, SP_SCRATCH_TRANSPOSE, n * k * sizeof(float), &bm);
        if (st != SPARTAN_OK) return st;
        if ((st = launch_transpose(ctx, un, uk, b->mem, bm)) != SPARTAN_OK) return st;
    }
    size_t rb = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_RB");
    size_t cb = (size_t)(sp_tuned_get(&ctx->tuned, "VEC") * sp_tuned_get(&ctx->tuned, "GEMM_NB"));
    size_t wg = (size_t)sp_tuned_get(&ctx->tuned, "GEMM_WG");
    size_t parts = split_parts(m, n, k);
    cl_uint kc = (cl_uint)((k + parts - 1) / parts);
    size_t g[3] = {(m + rb - 1) / rb, (n + cb - 1) / cb, parts};
    size_t l[3] = {wg, 1, 1};
    /* split: the chunks' plain products go to scratch, then a reduction applies alpha, beta */
    cl_mem out = c->mem;
    float ka = alpha, kbeta = beta;
    if (parts > 1) {
        st = sp_scratch(ctx, SP_SCRATCH_SPLITK, parts * m * n * sizeof(float), &out);
        if (st != SPARTAN_OK) return st;
        ka = 1.0f;
        kbeta = 0.0f;
    }
    sp_arg args[] = {SP_ARG(um), SP_ARG(un),    SP_ARG(uk),  SP_ARG(ka), SP_ARG(a->mem),
                     SP_ARG(bm), SP_ARG(kbeta), SP_ARG(out), SP_ARG(kc)};
    st = sp_launch(ctx, ta ? "gemm_dense_tn" : "gemm_dense_nn", 3, g, l, args, 9);
    if (st != SPARTAN_OK || parts == 1) return st;
    cl_uint np = (cl_uint)parts;
    cl_uint count = (cl_uint)(m * n);
    sp_arg red[] = {SP_ARG(count), SP_ARG(np),   SP_ARG(out),
                    SP_ARG(alpha), SP_ARG(beta), SP_ARG(c->mem)};
    return sp_launch_1d(ctx, "gemm_dense_reduce", m * n, red, 6);
}

spartan_status spartan_gemm_dense(spartan_context *ctx, spartan_gemm_path path, int trans_a,
                                  int trans_b, float alpha, const spartan_tensor *a,
                                  const spartan_tensor *b, float beta, spartan_tensor *c) {
    if (!ctx || !a || !b || !c) return sp_invalid(ctx, "spartan_gemm_dense: NULL argument");
    if (a->ctx != ctx || b->ctx != ctx || c->ctx != ctx)
        return sp_invalid(ctx, "spartan_gemm_dense: tensors of another context");
    size_t m = trans_a ? spartan_tensor_cols(a) : spartan_tensor_rows(a);
    size_t k = trans_a ? spartan_tensor_rows(a) : spartan_tensor_cols(a);
    size_t kb = trans_b ? spartan_tensor_cols(b) : spartan_tensor_rows(b);
    size_t n = trans_b ? spartan_tensor_rows(b) : spartan_tensor_cols(b);
    if (k != kb || spartan_tensor_rows(c) != m || spartan_tensor_cols(c) != n)
        return sp_invalid(ctx,
                          "spartan_gemm_dense: op(A) is %zux%zu, op(B) is %zux%zu, C is %zux%zu "
                          "(need MxK, KxN, MxN)",
                          m, k, kb, n, spartan_tensor_rows(c), spartan_tensor_cols(c));
    if (path == SPARTAN_GEMM_BEST) path = spartan_gemm_best(ctx);
    if (path != SPARTAN_GEMM_OWN && path != SPARTAN_GEMM_CLBLAST)
        return sp_invalid(ctx, "spartan_gemm_dense: unknown path %d", (int)path);
    if (m == 0 || n == 0) return SPARTAN_OK;
    if (k == 0) { /* C = beta * C */
        cl_uint count;
        spartan_status st = sp_u32(ctx, m * n, "M*N", &count);
        if (st != SPARTAN_OK) return st;
        sp_arg args[] = {SP_ARG(count), SP_ARG(beta), SP_ARG(c->mem)};
        return sp_launch_1d(ctx, "gemm_dense_scale", m * n, args, 3);
    }
    if (path == SPARTAN_GEMM_CLBLAST) {
#ifdef SPARTAN_HAVE_CLBLAST
        return run_clblast(ctx, trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
#else
        return sp_err_set(&ctx->err, SPARTAN_STATUS_UNSUPPORTED,
                          "spartan_gemm_dense: this libspartan was built without CLBlast "
                          "(SPARTAN_WITH_CLBLAST=OFF); use SPARTAN_GEMM_OWN or _BEST");
#endif
    }
    return run_own(ctx, trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
}

spartan_status spartan_transpose(spartan_context *ctx, const spartan_tensor *a, spartan_tensor *b) {
    if (!ctx || !a || !b) return sp_invalid(ctx, "spartan_transpose: NULL argument");
    const size_t rows = spartan_tensor_rows(a), cols = spartan_tensor_cols(a);
    if (b->numel != a->numel || (b->numel && spartan_tensor_cols(b) != rows) ||
        (a->mem && a->mem == b->mem))
        return sp_invalid(ctx, "spartan_transpose: %zux%zu into a tensor that is not %zux%zu", rows,
                          cols, cols, rows);
    cl_uint ur, uc;
    spartan_status st;
    if ((st = sp_u32(ctx, rows, "rows", &ur)) || (st = sp_u32(ctx, cols, "cols", &uc))) return st;
    return a->numel ? launch_transpose(ctx, ur, uc, a->mem, b->mem) : SPARTAN_OK;
}
