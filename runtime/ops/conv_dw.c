/* The convolution's backward-by-weight of ops.h without the patch matrix (kernels_cl/conv_dw.cl):
 * dW = im2col(x)^T . dY, reduced over the output pixels. This file validates arguments, picks
 * the kernel's orientation (over input channels, output channels or a row's pixels), cuts the
 * pixels into slices (so that no work-item walks more than LOOP_MAX steps and the device has
 * enough work-items) and launches. The dense kernels' and the tile kernel's slices are summed by
 * sp_split_reduce; the kernel skipping x's zeros cuts each input channel's non-zeros into chunks,
 * summed by their own kernel (deterministic, no atomics either way). When the conv_dw family is
 * off on the device it computes the same product through im2col into a scratch buffer and the
 * dense GEMM.
 *
 * Measured on POCL (2-core AVX-512, VEC 16, RB 8, NB 2; batch 64; ratios of medians of 7-9
 * runs in one process, two runs, on a machine shared with other builds): the dense kernel
 * against im2col + the dense GEMM, vgg-small's conv2, conv3, conv4 (28x28x32 -> 32,
 * 14x14x32 -> 64, 14x14x64 -> 64, 3x3 pad 1) 2.9-3.6x, 1.9-2.3x, 2.0-2.2x; lenet5's conv1
 * (28x28x1 -> 6, 5x5 pad 2) 2.4-3.0x, conv2 (14x14x6 -> 16, 5x5) 1.1-1.5x. The tile kernel
 * (dY's zeros) against the dense kernel at 30 / 50 / 70 / 90 % random zeros, vgg-small's conv2,
 * conv3, conv4, with tiles of 32 KiB: 0.89 / 1.15 / 1.61 / 2.62x, 0.82 / 1.04 / 1.42 / 2.21x,
 * 0.79 / 1.01 / 1.37 / 2.26x; with 40 KiB (DW_TILE_BYTES), 1.34 / 1.14 / 1.10x at 50 % and
 * 2.8-3.6x at 90 % (0.28-0.36 of the ideal: a pixel with any non-zero still costs its mask, its
 * window of x and a mispredicted exit of the bit loop); the list kernel it replaced, 0.41-0.42 /
 * 0.64-0.66 / 0.88-1.05x at 50 / 70 / 90 % on conv2 and conv4. The list kernel on x's zeros:
 * lenet5's conv1 0.93-0.97 / 1.3-1.4 / 2.1-2.9x at 50 / 70 / 90 %, its conv2 0.49-0.54 /
 * 0.60-0.77 / 1.2-1.4x. The row kernel (conv_dw_rows) for lenet5's conv1, against the
 * output-channel kernel it replaced there: 1.8-1.9 ms against 5.3 (medians of 15, `spartan-bench
 * conv --pass bwd_weight`), im2col + GEMM 4.8-7.4 ms in the same runs; of its 1.2 ms of kernels,
 * 0.4 are dY's transpose. */
#include "ops/conv_dw.h"

/* Work-items per compute unit the slices aim at: a GPU's multiprocessor hides its memory
 * latency with a thousand or two resident; a CPU core gets 64 work-groups of 16 to balance. */
#define ITEMS_PER_UNIT    1024
/* Fewest pixels a slice (or non-zeros a chunk) gets for the sake of the work-item count (the
 * loop bound may cut shorter): each costs a partial dW written and summed. */
#define SLICE_MIN         64
/* The sparse kernel's window positions per work-item (PB in conv_dw.cl). */
#define SPARSE_PB         9
/* The partial sums' scratch at most (as sp_split_reduce's). */
#define PARTS_SCRATCH_MAX ((size_t)64 << 20)

static size_t ceil_div(size_t a, size_t b) {
    return (a + b - 1) / b;
}

static size_t tuned(const spartan_context *ctx, const char *name) {
    return (size_t)sp_tuned_get(&ctx->tuned, name);
}

/* The fraction of n a blocking by `block` leaves in use (n > 0). */
static double fill(size_t n, size_t block) {
    return (double)n / (double)(ceil_div(n, block) * block);
}

/* conv_dw_rows' block of dW per work-item: SP_DW_RP rows x SP_DW_RJ output channels (conv_dw.cl).
 */
#define DW_ROWS_RP 4
#define DW_ROWS_RJ 4

/* The channel orientation whose register blocks hold the most useful FMAs per pixel: vectors
 * over the input channels fill SP_VEC lanes with in_c and RB rows with out_c; vectors over the
 * output channels fill the lanes with out_c and the rows with k_h k_w in_c. A tie goes to the
 * input channels', whose sparse kernel skips dY's zeros (65-92 % in training, against x's
 * 50-70 %). So in_c >= VEC takes vectors over input channels (vgg-small's convolutions but the
 * first), and in_c of 1 or 6 with out_c of 6 or 16 (lenet5) vectors over the output channels. */
static sp_dw_orient pick_channels(size_t vec, size_t rb, const spartan_window *w, size_t out_c,
                                  double *filled) {
    size_t patch = w->k_h * w->k_w * w->in_c;
    double cvec = fill(w->in_c, vec) * fill(out_c, rb);
    double ocvec = fill(out_c, vec) * fill(patch, rb);
    if (filled) *filled = cvec >= ocvec ? cvec : ocvec;
    return cvec >= ocvec ? SP_DW_CVEC : SP_DW_OCVEC;
}

int sp_conv_dw_rows_fit(const spartan_window *w) {
    return w->stride == 1 && w->in_c == 1;
}

/* The channel orientations' pick, or vectors over a row's pixels where those are fuller by half
 * again: only for stride 1 and one input channel, where a row's x is one vector load. The row
 * kernel first transposes dY, a pass that costs about as much as the kernel: vgg-small's first
 * convolution (28x28x1 -> 32, 3x3) fills 0.66 over rows against 0.56 over its output channels,
 * and ran 1.9-2.4 ms of transpose and 1.8-2.1 of kernel against 1.6 and 0.25 of sums over the
 * channels (POCL, batch 64); lenet5's first (5x5 -> 6) fills 0.58 against 0.29 and runs the row
 * kernel 5x faster. With VEC 4 the two tie there and the channels keep it. */
sp_dw_orient sp_conv_dw_pick(size_t vec, size_t rb, const spartan_window *w, size_t out_c) {
    if (w->in_c == 0 || out_c == 0) return SP_DW_CVEC;
    double best;
    sp_dw_orient o = pick_channels(vec, rb, w, out_c, &best);
    if (!sp_conv_dw_rows_fit(w)) return o;
    size_t out_w = spartan_window_out_w(w);
    double rows =
        out_w ? fill(out_w, vec) * fill(w->k_h * w->k_w, DW_ROWS_RP) * fill(out_c, DW_ROWS_RJ)
              : 0.0;
    return rows > 1.5 * best ? SP_DW_ROWS : o;
}

/* Slices (parts of pc) of `pixels` for `blocks` units of work per slice (work-items, or the
 * tile kernel's work-groups), each step of a walk counting `step` loop iterations after `fixed`
 * ones: enough for the loop bound, more for per_unit units per compute unit (down to SLICE_MIN
 * pixels a slice), and at most pc_cap per slice. */
static size_t slices_per_unit(const spartan_context *ctx, size_t pixels, size_t blocks,
                              size_t per_unit, size_t step, size_t fixed, size_t pc_cap,
                              size_t *pc) {
    size_t max = sp_loop_max(ctx), most = max > fixed + step ? (max - fixed) / step : 1;
    if (most > pc_cap) most = pc_cap;
    size_t parts = ceil_div(pixels, most);
    size_t busy = ceil_div((size_t)ctx->dev.info.compute_units * per_unit, blocks);
    size_t finest = ceil_div(pixels, SLICE_MIN);
    if (busy > finest) busy = finest;
    if (busy > parts) parts = busy;
    *pc = ceil_div(pixels, parts);
    return ceil_div(pixels, *pc);
}

/* The same for ITEMS_PER_UNIT work-items per compute unit. */
static size_t slices(const spartan_context *ctx, size_t pixels, size_t blocks, size_t step,
                     size_t fixed, size_t pc_cap, size_t *pc) {
    return slices_per_unit(ctx, pixels, blocks, ITEMS_PER_UNIT, step, fixed, pc_cap, pc);
}

/* ---- the dense kernels ---------------------------------------------------------------------- */

/* A launch's arguments besides the buffers: the window (NN_WINDOW_ARGS' order), out_c, the
 * blocks of dW one slice has, and the pixels per slice. */
typedef struct dw_launch {
    sp_geom g;
    cl_uint out_c, blocks, pc;
    sp_kernel_id k;
    cl_mem x, dy;
} dw_launch;

/* The dense kernels' 20 arguments (SP_DW_ARGS), pointing at the caller's values. */
static void dw_args(sp_arg args[20], const dw_launch *c, const cl_mem *dst, const cl_uint *np,
                    const cl_uint *p0, const float *alpha, const float *beta) {
    args[0] = SP_ARG(c->x);
    args[1] = SP_ARG(c->dy);
    args[2] = SP_ARG(*dst);
    for (int i = 0; i < 10; i++) args[3 + i] = SP_ARG(c->g.v[i]);
    args[13] = SP_ARG(c->out_c);
    args[14] = SP_ARG(c->blocks);
    args[15] = SP_ARG(*np);
    args[16] = SP_ARG(*p0);
    args[17] = SP_ARG(c->pc);
    args[18] = SP_ARG(*alpha);
    args[19] = SP_ARG(*beta);
}

/* One launch over the slices [part0, part0 + nparts) (sp_split_reduce). */
static spartan_status dw_slices(spartan_context *ctx, void *arg, size_t part0, size_t nparts,
                                cl_mem dst, float alpha, float beta) {
    const dw_launch *c = arg;
    size_t wg = tuned(ctx, "GEMM_WG"), n = (size_t)c->blocks * nparts;
    cl_uint np = (cl_uint)nparts, p0 = (cl_uint)part0;
    sp_arg args[20];
    dw_args(args, c, &dst, &np, &p0, &alpha, &beta);
    return sp_launch(ctx, c->k, 1, &n, &wg, args, 20);
}

/* The register-blocked kernels walking every pixel: blocks, slices, sums. A pixel's step counts
 * (conv_dw.cl, as if the compiler unrolled nothing) the loop, its walk, loads and tests, then
 * RB rows of NB vector loads (SP_VEC lane steps each where the vectors have a partial one) and
 * NB FMAs; once, the set-up and the stores, RB x NB vectors of up to 2 SP_VEC lane steps. */
static spartan_status run_dense(spartan_context *ctx, sp_dw_orient orient, dw_launch *c,
                                spartan_tensor *dweight) {
    size_t vec = tuned(ctx, "VEC"), rb = tuned(ctx, "GEMM_RB"), nb = tuned(ctx, "GEMM_NB");
    size_t cb = vec * nb, in_c = c->g.v[3], out_c = c->out_c, blocks, partial;
    if (orient == SP_DW_CVEC) {
        blocks = c->g.patch / in_c * ceil_div(in_c, cb) * ceil_div(out_c, rb);
        partial = in_c % vec != 0;
        c->k = SP_K_conv_dw_cvec;
    } else {
        blocks = ceil_div(c->g.patch, rb) * ceil_div(out_c, cb);
        partial = out_c % vec != 0;
        c->k = SP_K_conv_dw_ocvec;
    }
    size_t step = 8 + rb * (2 + nb * (2 + (partial ? vec : 0)));
    size_t fixed = rb * nb * (4 + 2 * vec) + 4 * rb + 32, pc;
    size_t parts = slices(ctx, c->g.pixels, blocks, step, fixed, (size_t)-1, &pc);
    spartan_status st;
    cl_uint unused;
    if ((st = sp_u32(ctx, pc, "pixels per slice", &c->pc)) ||
        (st = sp_u32(ctx, blocks, "blocks of dweight", &c->blocks)) ||
        (st = sp_u32(ctx, blocks * parts, "work-items", &unused)))
        return st;
    return sp_split_reduce(ctx, parts, dweight->numel, dweight->mem, 1.0f, 0.0f, dw_slices, c);
}

/* conv_dw_rows: x copied with room before and after, dY transposed (out_c x pixels,
 * conv_dw_transpose) with room after, both in scratch, then the slices of row chunks (batch out_h
 * rows of ceil(out_w / VEC) chunks), summed by sp_split_reduce. A chunk's step counts the loop and
 * its divisions, RJ dY loads, then RP x loads and RP x RJ FMAs; once, the set-up and RP x RJ
 * stores. */
static spartan_status run_rows(spartan_context *ctx, dw_launch *c, spartan_tensor *dweight) {
    size_t vec = tuned(ctx, "VEC"), pixels = c->g.pixels, out_c = c->out_c, image = c->g.image;
    size_t out_h = c->g.v[8], out_w = c->g.v[9];
    size_t units = c->g.v[0] * out_h * ceil_div(out_w, vec);
    size_t blocks = ceil_div(c->g.patch, DW_ROWS_RP) * ceil_div(out_c, DW_ROWS_RJ);
    size_t step = 12 + DW_ROWS_RJ * 4 + DW_ROWS_RP * (8 + DW_ROWS_RJ);
    size_t fixed = DW_ROWS_RP * (12 + DW_ROWS_RJ * (vec + 4)) + 32, pc;
    size_t parts = slices(ctx, units, blocks, step, fixed, (size_t)-1, &pc);
    cl_mem xs, dyt;
    cl_uint unused;
    spartan_status st;
    if ((st = sp_u32(ctx, pc, "row chunks per slice", &c->pc)) ||
        (st = sp_u32(ctx, blocks, "blocks of dweight", &c->blocks)) ||
        (st = sp_u32(ctx, units, "row chunks", &unused)) ||
        (st = sp_u32(ctx, blocks * parts, "work-items", &unused)) ||
        (st = sp_conv_slack_copy(ctx, SP_SCRATCH_COLS, c->x, image, c->g.v[7], &xs)) ||
        (st =
             sp_scratch(ctx, SP_SCRATCH_TRANSPOSE, (pixels * out_c + vec) * sizeof(float), &dyt)) ||
        (st = sp_fill_zero(ctx, dyt, pixels * out_c, vec)))
        return st;
    cl_uint upix = (cl_uint)pixels, uoc = (cl_uint)out_c; /* within 32 bits: sp_window_geom */
    sp_arg targs[] = {SP_ARG(c->dy), SP_ARG(dyt), SP_ARG(upix), SP_ARG(uoc)};
    if ((st = sp_launch_1d(ctx, SP_K_conv_dw_transpose, out_c * ceil_div(pixels, vec), targs, 4)))
        return st;
    c->x = xs;
    c->dy = dyt;
    c->k = SP_K_conv_dw_rows;
    return sp_split_reduce(ctx, parts, dweight->numel, dweight->mem, 1.0f, 0.0f, dw_slices, c);
}

/* ---- the tile kernel: dY's zeros skipped with dW in local memory --------------------------- */

/* conv_dw_cvec_tile's output channels per tile at most (SP_DW_TILE_J), its tile's bytes at most
 * (and half the device's local memory), and the work-groups it aims at per compute unit. 40 KiB
 * lets vgg-small's 32 x 9 x 32 tile (36 KiB) take all of a convolution's output channels at once,
 * or half of 64, in a 48 KiB first-level cache: against 32 KiB (16 or 22 channels per tile, the
 * mask and the window of x made twice or three times per pixel), 2.8-3.6x the dense kernel at 90 %
 * zeros instead of 2.2-2.7x (vgg-small's conv2-conv4, POCL, three runs in turn). */
#define DW_TILE_J          32
#define DW_TILE_BYTES      40960
#define DW_TILE_GROUPS_PER 8

/* A tile launch: the dense kernels' arguments, the group's work-items, the tile's output
 * channels and bytes. */
typedef struct dw_tile {
    dw_launch *c;
    size_t cw;
    cl_uint jt;
    size_t tile_bytes;
} dw_tile;

static spartan_status dw_tile_slices(spartan_context *ctx, void *arg, size_t part0, size_t nparts,
                                     cl_mem dst, float alpha, float beta) {
    const dw_tile *t = arg;
    const dw_launch *c = t->c;
    size_t wg = t->cw, n = (size_t)c->blocks * nparts * t->cw;
    cl_uint np = (cl_uint)nparts, p0 = (cl_uint)part0;
    sp_arg args[22];
    dw_args(args, c, &dst, &np, &p0, &alpha, &beta);
    args[20] = SP_ARG(t->jt);
    args[21] = (sp_arg){t->tile_bytes, NULL};
    return sp_launch(ctx, SP_K_conv_dw_cvec_tile, 1, &n, &wg, args, 22);
}

/* The tile kernel over vectors of input channels: cw work-items per group (one on a CPU, whose
 * work-items of a group run one after the other; else the group's channels in vectors, up to
 * GEMM_WG: Oclgrind, which says it is both, runs groups of several and checks their accesses to
 * the tile for races), jt output channels per tile as many as the tile's bytes allow, slices for
 * the loop bound and the work-groups, summed by sp_split_reduce. A pixel's step counts, as if
 * nothing were unrolled, the loop and its walk, the mask (DW_TILE_J lane steps at most: partial
 * vectors), the window's PB x NB
 * loads, then per set bit (jt at most) the loop and PB x NB loads, FMAs and stores; once, the
 * tile's zeros and stores. Returns with *done 0 where no tile fits the local memory. */
static spartan_status run_tile(spartan_context *ctx, dw_launch *c, spartan_tensor *dweight,
                               int *done) {
    size_t vec = tuned(ctx, "VEC"), nb = tuned(ctx, "GEMM_NB"), cb = vec * nb;
    size_t in_c = c->g.v[3], out_c = c->out_c, npos = c->g.patch / in_c;
    size_t cblocks = ceil_div(in_c, cb), cw = cblocks;
    size_t wg_max = tuned(ctx, "GEMM_WG");
    *done = 0;
    unsigned type = ctx->dev.info.type; /* Oclgrind says GPU and CPU: groups of several */
    if ((type & SPARTAN_DEVICE_CPU) && !(type & SPARTAN_DEVICE_GPU)) cw = 1;
    if (cw > wg_max) cw = wg_max;
    size_t budget = DW_TILE_BYTES, local = (size_t)ctx->dev.info.local_mem_bytes;
    if (local && local / 2 < budget) budget = local / 2;
    size_t per_j = SPARSE_PB * cw * cb * sizeof(float), jt = budget / per_j;
    if (jt == 0) return SPARTAN_OK;
    if (jt > DW_TILE_J) jt = DW_TILE_J;
    if (jt > out_c) jt = out_c;
    size_t jblocks = ceil_div(out_c, jt);
    jt = ceil_div(out_c, jblocks);
    size_t blocks = jblocks * ceil_div(cblocks, cw) * ceil_div(npos, SPARSE_PB);
    size_t lanes = in_c % vec ? vec : 0, vecs = SPARSE_PB * nb * (2 + lanes);
    size_t step = 8 + DW_TILE_J + vecs + jt * (2 + SPARSE_PB * nb * (3 + lanes));
    size_t fixed = jt * SPARSE_PB * nb * (2 + 2 * vec) + 4 * SPARSE_PB + 64;
    size_t pc, parts = slices_per_unit(ctx, c->g.pixels, blocks, DW_TILE_GROUPS_PER, step, fixed,
                                       (size_t)-1, &pc);
    dw_tile t = {c, cw, 0, jt * per_j};
    spartan_status st;
    cl_uint unused;
    if ((st = sp_u32(ctx, pc, "pixels per slice", &c->pc)) ||
        (st = sp_u32(ctx, blocks, "blocks of dweight", &c->blocks)) ||
        (st = sp_u32(ctx, jt, "tile", &t.jt)) ||
        (st = sp_u32(ctx, blocks * parts * cw, "work-items", &unused)))
        return st;
    *done = 1;
    return sp_split_reduce(ctx, parts, dweight->numel, dweight->mem, 1.0f, 0.0f, dw_tile_slices,
                           &t);
}

/* ---- x's zeros skipped: the kernel over lists of non-zeros ---------------------------------- */

/* The launches' arguments besides the buffers: the window, out_c, the lists of x's non-zeros
 * (rows: input pixels, cols: in_c) in slices (nparts of pc rows), the non-zeros per chunk E, and
 * the blocks per chunk. */
typedef struct dw_sparse {
    sp_geom g;
    cl_uint out_c, rows, cols, nparts, pc, E, blocks;
    cl_mem x, dy, lists, part;
} dw_sparse;

/* The lists of x's non-zeros, their rows' table and the chunks (conv_dw.cl: conv_dw_lists,
 * conv_dw_table, conv_dw_chunks). */
static spartan_status sparse_lists(spartan_context *ctx, dw_sparse *s) {
    sp_arg largs[] = {SP_ARG(s->x),    SP_ARG(s->lists),  SP_ARG(s->rows),
                      SP_ARG(s->cols), SP_ARG(s->nparts), SP_ARG(s->pc)};
    spartan_status st =
        sp_launch_1d(ctx, SP_K_conv_dw_lists, (size_t)s->nparts * ceil_div(s->cols, 4), largs, 6);
    if (st != SPARTAN_OK) return st;
    sp_arg targs[13] = {SP_ARG(s->lists)};
    for (int i = 0; i < 10; i++) targs[1 + i] = SP_ARG(s->g.v[i]);
    targs[11] = SP_ARG(s->cols);
    targs[12] = SP_ARG(s->nparts);
    if ((st = sp_launch_1d(ctx, SP_K_conv_dw_table, s->rows, targs, 13)) != SPARTAN_OK) return st;
    sp_arg cargs[] = {SP_ARG(s->lists), SP_ARG(s->cols), SP_ARG(s->nparts), SP_ARG(s->E)};
    return sp_launch_1d(ctx, SP_K_conv_dw_chunks, s->cols, cargs, 4);
}

/* The chunks [k0, k0 + n) of every list column into the partials, then their sums into dW
 * (added to it after the first group). */
static spartan_status sparse_group(spartan_context *ctx, const dw_sparse *s, cl_uint k0, cl_uint n,
                                   spartan_tensor *dweight) {
    sp_arg args[22] = {SP_ARG(s->x), SP_ARG(s->dy), SP_ARG(s->part), SP_ARG(s->lists)};
    for (int i = 0; i < 10; i++) args[4 + i] = SP_ARG(s->g.v[i]);
    args[14] = SP_ARG(s->out_c);
    args[15] = SP_ARG(s->nparts);
    args[16] = SP_ARG(s->pc);
    args[17] = SP_ARG(s->E);
    args[18] = SP_ARG(k0);
    args[19] = SP_ARG(n);
    args[20] = SP_ARG(s->blocks);
    size_t wg = tuned(ctx, "GEMM_WG"), items = (size_t)s->blocks * n;
    spartan_status st = sp_launch(ctx, SP_K_conv_dw_ocvec_sparse, 1, &items, &wg, args, 21);
    if (st != SPARTAN_OK) return st;
    cl_uint rows = (cl_uint)s->g.patch;
    float alpha = 1.0f, beta = k0 ? 1.0f : 0.0f;
    sp_arg sargs[] = {SP_ARG(s->part),  SP_ARG(s->lists),  SP_ARG(dweight->mem), SP_ARG(rows),
                      SP_ARG(s->out_c), SP_ARG(s->g.v[3]), SP_ARG(s->nparts),    SP_ARG(k0),
                      SP_ARG(n),        SP_ARG(alpha),     SP_ARG(beta)};
    return sp_launch_1d(ctx, SP_K_conv_dw_sum, dweight->numel, sargs, 11);
}

/* The sparse path over x's non-zeros (vectors over output channels, stride 1 only; dY's zeros are
 * run_tile's). The lists' slices: a few steps per row, at
 * most 65,536 rows (their offsets are ushorts), and few enough that the chunks' scan and the
 * sparse kernels' walk over them stay well inside the loop bound. A non-zero's step in the
 * sparse kernels: the loop, three loads and a test, then SPARSE_PB positions of tests, NB
 * vector loads (SP_VEC lane steps where partial) and FMAs. Returns with *done 0 (the dense
 * kernel runs instead) for a stride past 1 on x, or where the lists or partials would not fit. */
static spartan_status run_sparse(spartan_context *ctx, const dw_launch *c, spartan_tensor *dweight,
                                 int *done) {
    size_t vec = tuned(ctx, "VEC"), nb = tuned(ctx, "GEMM_NB"), max = sp_loop_max(ctx);
    size_t in_c = c->g.v[3], out_c = c->out_c, patch = c->g.patch, npos = patch / in_c;
    size_t rows = c->g.image / in_c, cols = in_c, vecs = out_c, pc, E;
    *done = 0;
    if (c->g.v[6] != 1) return SPARTAN_OK;
    size_t nparts = slices(ctx, rows, ceil_div(cols, 4), 24, 64, 65536, &pc);
    size_t blocks = cols * ceil_div(vecs, vec * nb) * ceil_div(npos, SPARSE_PB);
    size_t step = 6 + SPARSE_PB * (3 + nb * (2 + (vecs % vec ? vec : 0)));
    size_t fixed = SPARSE_PB * nb * (4 + 2 * vec) + 4 * SPARSE_PB + 2 * nparts + 96;
    if (nparts > max / 8 || fixed + step > max) return SPARTAN_OK;
    size_t nchunks = slices(ctx, rows, blocks, step, fixed, (size_t)-1, &E);
    size_t L = nparts * cols, words = 2 * L + cols + 4 * rows + L * pc + ceil_div(L * pc, 2);
    size_t cap = PARTS_SCRATCH_MAX, quarter = (size_t)(ctx->dev.info.max_alloc_bytes / 4);
    if (quarter && quarter < cap) cap = quarter;
    size_t group = cap / (patch * out_c * sizeof(float));
    if (group > nchunks) group = nchunks;
    if (group > max / 4) group = max / 4; /* conv_dw_sum walks a group's chunks */
    if (group == 0 || words * sizeof(cl_uint) > cap) return SPARTAN_OK;
    dw_sparse s = {c->g, c->out_c, 0, 0, 0, 0, 0, 0, c->x, c->dy, NULL, NULL};
    spartan_status st;
    cl_uint unused;
    if ((st = sp_u32(ctx, rows, "rows", &s.rows)) || (st = sp_u32(ctx, cols, "cols", &s.cols)) ||
        (st = sp_u32(ctx, nparts, "slices", &s.nparts)) || (st = sp_u32(ctx, pc, "slice", &s.pc)) ||
        (st = sp_u32(ctx, E, "chunk", &s.E)) || (st = sp_u32(ctx, blocks, "blocks", &s.blocks)) ||
        (st = sp_u32(ctx, blocks * group, "work-items", &unused)) ||
        (st = sp_u32(ctx, 2 * words, "list entries", &unused)) ||
        (st = sp_scratch(ctx, SP_SCRATCH_COLS, words * sizeof(cl_uint), &s.lists)) ||
        (st = sp_scratch(ctx, SP_SCRATCH_SPLIT, group * patch * out_c * sizeof(float), &s.part)) ||
        (st = sparse_lists(ctx, &s)))
        return st;
    for (size_t k0 = 0; k0 < nchunks && st == SPARTAN_OK; k0 += group) {
        size_t n = nchunks - k0 < group ? nchunks - k0 : group;
        st = sparse_group(ctx, &s, (cl_uint)k0, (cl_uint)n, dweight);
    }
    *done = 1;
    return st;
}

/* The same product without the family: the patch matrix in scratch, then the dense GEMM with
 * the patches transposed (the best path for the device; its own fallbacks apply). */
static spartan_status through_im2col(spartan_context *ctx, const spartan_window *w,
                                     const sp_geom *g, const spartan_tensor *x,
                                     const spartan_tensor *dy, spartan_tensor *dweight) {
    spartan_tensor cols;
    spartan_status st = sp_conv_scratch_cols(ctx, g, &cols);
    if (st == SPARTAN_OK) st = spartan_im2col(ctx, w, x, &cols);
    if (st == SPARTAN_OK)
        st = spartan_gemm_dense(ctx, SPARTAN_GEMM_BEST, 1, 0, 1.0f, &cols, dy, 0.0f, dweight);
    return st;
}

spartan_status sp_conv_dw(spartan_context *ctx, spartan_path path, sp_dw_orient orient,
                          const spartan_window *w, const spartan_tensor *x,
                          const spartan_tensor *dy, spartan_tensor *dweight) {
    const sp_conv_args a = {x, dy, dweight, "x", "dy", "dweight", 2};
    dw_launch c = {0};
    spartan_status st =
        sp_conv_check(ctx, "spartan_conv2d_backward_weight", path, w, &a, &c.g, &c.out_c);
    if (st) return st;
    c.x = x->mem;
    c.dy = dy->mem;
    if (dweight->numel == 0) return SPARTAN_OK;
    if (c.g.pixels == 0) return spartan_tensor_fill(dweight, 0.0f); /* no pixels: empty sums */
    if (!sp_family_usable(ctx, SP_FAMILY_conv_dw))
        return through_im2col(ctx, w, &c.g, x, dy, dweight);
    size_t vec = tuned(ctx, "VEC"), rb = tuned(ctx, "GEMM_RB");
    if (orient == SP_DW_AUTO) orient = sp_conv_dw_pick(vec, rb, w, c.out_c);
    /* the row kernel's place: dense on a window it takes, the channel pick elsewhere */
    sp_dw_orient channels =
        orient == SP_DW_ROWS ? pick_channels(vec, rb, w, c.out_c, NULL) : orient;
    if (path == SPARTAN_PATH_SPARSE) {
        int done = 0;
        st = channels == SP_DW_CVEC ? run_tile(ctx, &c, dweight, &done)
                                    : run_sparse(ctx, &c, dweight, &done);
        if (st != SPARTAN_OK || done) return st;
    }
    if (orient == SP_DW_ROWS && sp_conv_dw_rows_fit(w)) return run_rows(ctx, &c, dweight);
    return run_dense(ctx, channels, &c, dweight);
}

spartan_status spartan_conv2d_backward_weight(spartan_context *ctx, spartan_path path,
                                              const spartan_window *w, const spartan_tensor *x,
                                              const spartan_tensor *dy, spartan_tensor *dweight) {
    return sp_conv_dw(ctx, path, SP_DW_AUTO, w, x, dy, dweight);
}
