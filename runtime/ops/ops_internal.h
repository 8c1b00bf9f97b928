/* Shared by the files of ops/: kernel launches, per-context scratch buffers, and the private
 * layout of spartan_sparse (docs/sparse-format.md). */
#ifndef SP_OPS_INTERNAL_H
#define SP_OPS_INTERNAL_H

#include "core/rng.h"
#include "spartan/ops.h"
#include "tensor/tensor_internal.h"

typedef struct sp_arg {
    size_t size;
    const void *ptr;
} sp_arg;
#define SP_ARG(x) ((sp_arg){sizeof(x), &(x)})

/* Sets the arguments of kernel k and enqueues it over global (rounded up to local; local NULL
 * lets the driver choose). A zero global size enqueues nothing. */
spartan_status sp_launch(spartan_context *ctx, sp_kernel_id k, cl_uint dims, const size_t *global,
                         const size_t *local, const sp_arg *args, cl_uint nargs);

/* A 1-D launch of n work-items in groups of the tuned WG (drivers left to choose pick poor
 * sizes: POCL runs groups of 1 to 6 work-items, each a separate task). */
spartan_status sp_launch_1d(spartan_context *ctx, sp_kernel_id k, size_t n, const sp_arg *args,
                            cl_uint nargs);

/* The most loop iterations the launches give one work-item, all its loops together (the tuned
 * LOOP_MAX): llvmpipe (Mesa's rusticl) ends every loop of a work-item once 65,535 iterations have
 * run in total, without an error, and it does not unroll loops the kernels mark for unrolling,
 * so the launchers count those too, and cut longer walks (GEMM reductions, tall columns, long
 * rows) into slices run by separate work-items and summed (sp_split_reduce). */
static inline size_t sp_loop_max(const spartan_context *ctx) {
    return (size_t)sp_tuned_get(&ctx->tuned, "LOOP_MAX");
}

/* n steps cut into the fewest slices of at most max steps, all of about the same length (a last
 * slice much shorter than the others ran a 2-slice walk 1.7x slower on POCL than one of even
 * halves), each a multiple of align: returns how many, and their length in *per. */
static inline size_t sp_slices(size_t n, size_t max, size_t align, size_t *per) {
    if (max < align) max = align;
    size_t parts = n ? (n + max - 1) / max : 1;
    size_t len = (n + parts - 1) / parts;
    *per = (len + align - 1) / align * align;
    return parts;
}

/* Runs a reduction cut into `parts` slices and sums them into out (n floats):
 * out = alpha * (slice 0 + ... + slice parts-1) + beta * out. fn enqueues the slices
 * [part0, part0 + nparts) as one launch (dimension 2 of the range), slice part0 + s writing
 * n floats at dst + s * n as dst = alpha_k * slice + beta_k * dst. One slice goes straight to
 * out; more go through a scratch buffer and eltwise_sum_parts, as many at once as the scratch
 * allows (then the next group adds to out). */
typedef spartan_status (*sp_part_fn)(spartan_context *ctx, void *arg, size_t part0, size_t nparts,
                                     cl_mem dst, float alpha_k, float beta_k);
spartan_status sp_split_reduce(spartan_context *ctx, size_t parts, size_t n, cl_mem out,
                               float alpha, float beta, sp_part_fn fn, void *arg);

/* A scratch buffer of at least bytes, owned by the context, reused across calls (slot: which
 * one: B transposed for the GEMMs, the slices of split reductions, the patch matrix of the
 * convolution's fallback). conv_dx.c takes the first for its rearranged weight and the third for
 * dy's lists of non-zeros. Valid until the next call with the same slot. */
enum {
    SP_SCRATCH_TRANSPOSE = 0,
    SP_SCRATCH_SPLIT,
    SP_SCRATCH_COLS,
    SP_SCRATCH_NZ_COUNT, /* the sparse convolution's lists of x's non-zeros (conv.c) */
    SP_SCRATCH_NZ_IDX,
    SP_SCRATCH_NZ_VAL,
    SP_SCRATCH_COUNT
};
spartan_status sp_scratch(spartan_context *ctx, int slot, size_t bytes, cl_mem *out);

/* CLBlast's validation on this context, run on its first use (it compiles its kernels then, in
 * every process): state 0 not checked yet, 1 passed, -1 failed (why says how), 2 running. NULL
 * when out of host memory. */
typedef struct sp_clblast_check {
    int state;
    char why[256];
} sp_clblast_check;
sp_clblast_check *sp_clblast_check_of(spartan_context *ctx);

/* A one-element buffer holding 0u (the offset of a scan's only chunk). */
spartan_status sp_zero_uint(spartan_context *ctx, cl_mem *out);

/* The compaction's table: for each 8-bit mask, the lanes of its set bits in order (256 ushort8),
 * created on first use. */
spartan_status sp_compact_lut(spartan_context *ctx, cl_mem *out);

/* Spare position slots after each tile's (SP_TILE_CAP in common.clh). */
#define SP_COMPACT_SPARE 8

/* INVALID_ARGUMENT, naming fn, unless every tensor of t (n of them; NULLs skipped) belongs to
 * ctx. SP_TENSORS(a, b, ...) gives the array and its length. */
spartan_status sp_check_ctx(spartan_context *ctx, const char *fn, const spartan_tensor *const *t,
                            size_t n);
#define SP_TENSORS(...)                                                                            \
    (const spartan_tensor *const[]){__VA_ARGS__},                                                  \
        sizeof((const spartan_tensor *const[]){__VA_ARGS__}) / sizeof(const spartan_tensor *)

/* INVALID_ARGUMENT, naming fn and both, when out and in share a buffer (one is a view of the
 * other, or they are the same tensor): for outputs the kernel cannot write over an input of. */
spartan_status sp_check_apart(spartan_context *ctx, const char *fn, const char *out_name,
                              const spartan_tensor *out, const char *in_name,
                              const spartan_tensor *in);

/* Parameters as uint kernel arguments; INVALID_ARGUMENT if a size does not fit. */
spartan_status sp_u32(spartan_context *ctx, size_t v, const char *what, cl_uint *out);

/* A window as the image kernels' arguments (NN_WINDOW_ARGS in nn.cl, in this order), plus the
 * element counts of the image side and the output side (nn_ops.c; conv.c uses it too). */
typedef struct sp_geom {
    cl_uint v[10]; /* batch, in_h, in_w, in_c, k_h, k_w, stride, pad, out_h, out_w */
    size_t image;  /* batch * in_h * in_w * in_c */
    size_t pixels; /* batch * out_h * out_w: output pixels */
    size_t patch;  /* k_h * k_w * in_c: one row of im2col */
} sp_geom;

/* Checks window w for fn (stride and window not 0, at most LOOP_MAX / (VEC + 1) positions, the
 * window fits the padded image, every size and index of the image, im2col and output sides
 * within 32 bits) and fills g; INVALID_ARGUMENT naming fn otherwise. */
spartan_status sp_window_geom(spartan_context *ctx, const char *fn, const spartan_window *w,
                              sp_geom *g);

/* INVALID_ARGUMENT naming fn and name unless t has the window's image size (g->image). */
spartan_status sp_check_image(spartan_context *ctx, const char *fn, const char *name,
                              const spartan_tensor *t, const sp_geom *g);

/* The scans of compact.c sum chunks of this many values per work-item, then scan the chunk
 * sums the same way, one recursion level per factor of SP_SCAN_CHUNK. */
#define SP_SCAN_CHUNK  64
#define SP_SCAN_LEVELS 8

struct spartan_sparse {
    spartan_context *ctx;
    size_t rows, cols;
    size_t tile_rows, tile_cols;
    size_t tiles_r, tiles_c, ntiles;
    size_t cap_tiles;     /* the tiles its buffers were made for (sp_sparse_reshape) */
    size_t partial_count; /* work-groups of the monitor */
    cl_mem counts;        /* ntiles: non-zeros per tile (monitor, or compaction) */
    cl_mem partials;      /* partial_count: per-work-group sums (monitor, or compaction) */
    cl_mem tpos_row;      /* ntiles + 1: exclusive scan of non-empty flags, row-major tiles */
    cl_mem tpos_col;      /* ntiles + 1: the same in column-major tile order */
    cl_mem list_row;      /* non-empty tiles, row-major order (tile indices) */
    cl_mem list_col;      /* non-empty tiles, column-major order */
    cl_mem rowoff;        /* ntiles x (tile_rows + 1) ushort: row starts inside each tile */
    cl_mem coloff;        /* ntiles x (tile_cols + 1) ushort: column starts inside each tile */
    cl_mem idx_r;         /* ROWS form: uint column of each non-zero inside its tile */
    cl_mem idx_c;         /* COLS form: uint row inside its tile */
    const spartan_tensor *source;     /* the compacted matrix: the GEMMs read the values there */
    cl_mem scan_sums[SP_SCAN_LEVELS]; /* chunk sums per recursion level */
    cl_mem scan_offs[SP_SCAN_LEVELS]; /* their exclusive scans */
    unsigned forms;                   /* forms built by the last compaction */
    int filled;                       /* counts written by a monitor or compaction */
};

/* Whether the sparse path runs its own kernels on ctx: the compaction and the sparse GEMMs both
 * built and validated. When not, the sparse operations compute through the dense GEMMs (the
 * same results) and the policy runs dense. */
static inline int sp_sparse_usable(const spartan_context *ctx) {
    return sp_family_usable(ctx, SP_FAMILY_compact) && sp_family_usable(ctx, SP_FAMILY_gemm_sparse);
}

/* ---- The convolution's passes (conv_pass.c) -------------------------------------------------
 * A convolution layer's pass runs on one of two engines: im2col (or col2im) around the pass's
 * GEMM descriptor (spartan_gemm_pass_run: the dense GEMMs and the sparse GEMMs of its form), or
 * the implicit-GEMM kernels (conv.cl, conv_dx.cl, conv_dw.cl: no patch matrix; sparse: skipping
 * the zeros of X in the forward pass, of dY in the backward ones). The layer and the policy's
 * calibration both run a pass through sp_conv_pass_run, so the policy times what training runs. */
typedef enum sp_conv_engine { SP_CONV_GEMM = 0, SP_CONV_IMPLICIT = 1 } sp_conv_engine;

typedef struct sp_conv_operands {
    spartan_window win;         /* batch: the images of this call */
    const spartan_gemm_pass *d; /* the pass's GEMM descriptor (the GEMM engine) */
    const spartan_tensor *x;    /* the input images, (batch in_h in_w) x in_c */
    spartan_tensor *dx;         /* bwd_input: the input's gradient, like x */
    spartan_gemm_operands g;    /* the GEMM's: g.x the patch matrix (cols), g.dx its gradient
                                   (dcols), g.w, g.dy, g.y, g.dw, g.wt, g.sx, g.sdy */
    int cols_fresh;             /* g.x already holds im2col(x) (this step's forward made it) */
    int mask_dx; /* bwd_input: x is a ReLU's output, dx kept only where x > 0 (its backward) */
    int relu_y;  /* fwd: y = max(y + relu_bias, 0), a ReLU after the convolution (NULL: no bias) */
    const spartan_tensor *relu_bias;
} sp_conv_operands;

/* The operands every convolution operation takes (conv.c, conv_dx.c, conv_dw.c): the images
 * (x, or dx), the pixels x out_c matrix (y, or dy) and the patch x out_c matrix (the weight, or
 * dweight), each with the name its messages use, and which of the three the call writes. */
typedef struct sp_conv_args {
    const spartan_tensor *image, *pixels, *patches;
    const char *image_name, *pixels_name, *patches_name;
    int out; /* 0 image, 1 pixels, 2 patches */
} sp_conv_args;

/* fn's checks of them: no NULL, a known path, one context, the output apart from both inputs,
 * the window (sp_window_geom) and the image's size, the two matrices' shapes (out_c from the
 * one read, the weight where both are read), every size within 32 bits. Fills g and out_c;
 * INVALID_ARGUMENT naming fn and the operand otherwise. */
spartan_status sp_conv_check(spartan_context *ctx, const char *fn, spartan_path path,
                             const spartan_window *w, const sp_conv_args *a, sp_geom *g,
                             cl_uint *out_c);

/* The patch matrix of window geometry g in the context's scratch (the operations' fallbacks
 * without their kernel family). */
spartan_status sp_conv_scratch_cols(spartan_context *ctx, const sp_geom *g, spartan_tensor *cols);

/* n floats of m from float `at` set to zero (nothing for n 0). */
spartan_status sp_fill_zero(spartan_context *ctx, cl_mem m, size_t at, size_t n);

/* The n floats of src copied into scratch slot `slot` between SP_ROW_SLACK(pad) = pad + VEC
 * zeros on either side (common.clh: the row kernels' x); *out is the scratch buffer. */
spartan_status sp_conv_slack_copy(spartan_context *ctx, int slot, cl_mem src, size_t n, size_t pad,
                                  cl_mem *out);

/* The "rows" kernels (conv_forward_rows, conv_dx_rows): a row's SP_VEC pixels in the lanes, up to
 * SP_ROWS_BLOCK channels (common.clh) in accumulators. sp_conv_rows_fit: whether `channels` (the
 * side they would otherwise vectorise) fill less than one vector and fit one block.
 * sp_conv_rows_slice_max: how many reduction indices (walking `inner` channels per window
 * position) one work-item may take, counted as if the compiler unrolled nothing: per index the
 * channel loop, a lane loop of VEC loads and SP_ROWS_BLOCK FMAs; per position 2; set-up and
 * stores SP_ROWS_BLOCK (VEC + 1). */
#define SP_ROWS_BLOCK 8
int sp_conv_rows_fit(const spartan_context *ctx, size_t channels);
size_t sp_conv_rows_slice_max(const spartan_context *ctx, size_t inner);

/* conv_strip_sparse (conv.cl): a stride-1 convolution skipping x's zeros, a strip of output
 * pixels per work-item walking each input pixel's non-zeros once per window row, through bit
 * masks that conv_strip_masks makes first. The forward runs it on x and W (rows padded to
 * sp_conv_strip_ldw); the backward-by-input on dy and conv_dx.c's rearranged weight, turned
 * round (flip, pads k - 1 - pad). mode: what the store applies after y = sum when one slice
 * writes y: 0 nothing, 1 max(y, 0), 2 max(y + aux, 0) (aux: the bias), 3 y where aux > 0 (aux
 * laid out like y). */
typedef struct sp_strip_conv {
    cl_mem x, w, aux;
    size_t batch, in_h, in_w, in_c, k_h, k_w, pad_y, pad_x, out_h, out_w, out_c, ldw;
    int flip, mode;
} sp_strip_conv;

/* Whether the kernel runs window w: stride 1, 3 x 3 or 5 x 5 (it is specialised for those). */
int sp_conv_strip_fits(const spartan_window *w);
/* The length of the weight's rows the kernel reads: n output channels rounded up to whole
 * blocks of GEMM_NB vectors (it loads whole blocks; zeros past n). */
size_t sp_conv_strip_ldw(const spartan_context *ctx, size_t n);

/* y = s's convolution (y_numel floats), the masks in scratch slot SP_SCRATCH_NZ_COUNT; *stored:
 * whether the store applied s->mode (it does when one slice writes y; otherwise the caller
 * applies it). The caller checks that the conv family runs and sp_conv_strip_fits. */
spartan_status sp_conv_strip(spartan_context *ctx, const sp_strip_conv *s, cl_mem y, size_t y_numel,
                             int *stored);

/* Whether `engine` can run `pass` on `path` for a pass of sparse form `form` on ctx: the GEMM
 * engine always; the implicit one when its kernel family runs, and sparse only for the forms
 * its kernels skip (the forward pass on X, the backward passes on dY). */
int sp_conv_engine_usable(const spartan_context *ctx, spartan_pass pass, spartan_path path,
                          spartan_sparse_form form, sp_conv_engine engine);
/* Runs the pass (dense: `dense` picks the GEMM implementation of the GEMM engine). */
spartan_status sp_conv_pass_run(spartan_context *ctx, spartan_pass pass, sp_conv_engine engine,
                                spartan_path path, spartan_gemm_path dense, sp_conv_operands *o);

/* A row pattern of Approximate Random Dropout (runtime/nn/ard.c) over n neurons: neuron j sits at
 * position u = (j - offset) mod n and is kept when u mod period < keep (0 < period, keep <=
 * period, offset < n); the kept ones, in the order of u, have the compact indices
 * (u / period) keep + u mod period. */
typedef struct sp_row_pattern {
    size_t n, period, keep, offset;
} sp_row_pattern;
/* The kept neurons; neuron j's compact index, or SIZE_MAX when it is dropped. */
size_t sp_row_pattern_count(const sp_row_pattern *p);
size_t sp_row_pattern_index(const sp_row_pattern *p, size_t j);

/* A pattern's index maps on the device (rows.c): map[jc] = j for the count kept neurons, inv[j] =
 * jc or 0xffffffff. */
typedef struct sp_row_maps {
    spartan_context *ctx; /* NULL: none made */
    cl_mem map, inv;
    size_t n, count;
} sp_row_maps;
spartan_status sp_row_maps_create(spartan_context *ctx, size_t n, sp_row_maps *m);
void sp_row_maps_release(sp_row_maps *m); /* NULLs the maps; a zeroed m: nothing */
/* Fills the maps for p (p->n must be the maps' n): one launch, nothing blocks. */
spartan_status sp_row_maps_set(spartan_context *ctx, sp_row_maps *m, const sp_row_pattern *p);
/* out (kept rows x kept columns, row-major) = scale * in (rows x cols) at the kept rows (r) and
 * columns (c); NULL: all of them. */
spartan_status sp_row_gather(spartan_context *ctx, const spartan_tensor *in, size_t rows,
                             size_t cols, const sp_row_maps *r, const sp_row_maps *c, float scale,
                             spartan_tensor *out);
/* The reverse: out (rows x cols) = scale * in placed back at the kept rows and columns, exactly 0
 * elsewhere. */
spartan_status sp_row_scatter(spartan_context *ctx, const spartan_tensor *in, size_t rows,
                              size_t cols, const sp_row_maps *r, const sp_row_maps *c, float scale,
                              spartan_tensor *out);
/* Both with each kept row's own factor too, rscale[compact row] (r's count of them; NULL: none). */
spartan_status sp_row_gather_scaled(spartan_context *ctx, const spartan_tensor *in, size_t rows,
                                    size_t cols, const sp_row_maps *r, const sp_row_maps *c,
                                    float scale, const spartan_tensor *rscale, spartan_tensor *out);
spartan_status sp_row_scatter_scaled(spartan_context *ctx, const spartan_tensor *in, size_t rows,
                                     size_t cols, const sp_row_maps *r, const sp_row_maps *c,
                                     float scale, const spartan_tensor *rscale,
                                     spartan_tensor *out);
/* Maps of any kept set, from the host: map (count kept indices, ascending or not) and inv (n
 * entries: the compact index or 0xffffffff), written without blocking (both must stay unchanged
 * until the queue has passed the writes: the next blocking call). */
spartan_status sp_row_maps_write(spartan_context *ctx, sp_row_maps *m, size_t count,
                                 const cl_uint *map, const cl_uint *inv);
/* SGD with momentum and weight decay (spartan_sgd_step's rule) on w and v (rows x cols) with the
 * gradient given at the kept rows and columns alone (in: kept rows x kept columns, as
 * sp_row_gather lays them out; scaled by scale), 0 elsewhere: the scatter and the step in one
 * pass. */
spartan_status sp_row_sgd(spartan_context *ctx, spartan_tensor *w, const spartan_tensor *in,
                          spartan_tensor *v, size_t rows, size_t cols, const sp_row_maps *r,
                          const sp_row_maps *c, float scale, float lr, float momentum,
                          float weight_decay);
/* y = scale * x where the element's feature (its index mod features) is kept, exactly 0
 * elsewhere (row dropout as a mask); y may be x. */
spartan_status sp_row_mask(spartan_context *ctx, const spartan_tensor *x, spartan_tensor *y,
                           size_t features, const sp_row_maps *f, float scale);

/* Tile dropout's GEMMs (Approximate Random Dropout's tile kind; kernels_cl/gemm_dense.cl): W
 * (K x N) cut into tiles of sp_gemm_tile_size x sp_gemm_tile_size (the own kernel's register
 * block width times what makes it at least 32; 32 on POCL with AVX-512), R = ceil(K / tile) rows by
 * ceil(N / tile) columns of them, numbered down the columns (tile (r, c) is i = r + c R); p, a row
 * pattern over them (n: the tile count), keeps tile i when ((i - offset) mod n) mod period < keep
 * (sp_tile_kept); dropped tiles are skipped. The three passes of a layer y = x (W o T) (T the kept
 * tiles' 0/1 mask):
 * - SP_TILES_FORWARD: c (M x N) = alpha a (M x K) (W o T), b = W;
 * - SP_TILES_INPUT: c (M x K) = alpha a (M x N) (W o T)^T, b = W;
 * - SP_TILES_WEIGHT: c (W's K x N) = alpha (a^T b) o T, a M x K, b M x N (0 in dropped tiles).
 * Own kernel only: UNSUPPORTED where its family failed validation (sp_gemm_tiles_usable). */
typedef enum {
    SP_TILES_FORWARD,
    SP_TILES_INPUT,
    SP_TILES_WEIGHT,
    SP_TILES_WEIGHT_KEPT /* SP_TILES_WEIGHT leaving the dropped tiles unwritten */
} sp_tile_use;
static inline int sp_tile_kept(const sp_row_pattern *p, size_t rows, size_t r, size_t c) {
    const size_t i = r + c * rows, u = i >= p->offset ? i - p->offset : i + p->n - p->offset;
    return u % p->period < p->keep;
}
size_t sp_gemm_tile_size(const spartan_context *ctx);
int sp_gemm_tiles_usable(spartan_context *ctx);
spartan_status sp_gemm_tiles(spartan_context *ctx, sp_tile_use use, const sp_row_pattern *p,
                             float alpha, const spartan_tensor *a, const spartan_tensor *b,
                             spartan_tensor *c);
/* SGD (spartan_sgd_step's rule) on w and v (W's K x N) with the gradient g at p's kept tiles and
 * 0 at the dropped ones (not read: SP_TILES_WEIGHT_KEPT's g). */
spartan_status sp_gemm_tiles_sgd(spartan_context *ctx, const sp_row_pattern *p, spartan_tensor *w,
                                 const spartan_tensor *g, spartan_tensor *v, float lr,
                                 float momentum, float weight_decay);

/* The LSTM's time step t of T (lstm.c; kernels_cl/nn.cl documents the layouts): forward, the
 * gates and states from gx (batch-major rows b T + t of the input GEMM), rec (h_{t-1} W_h, B x 4H;
 * not read at t = 0) and bias into gates, cs (time-major), hout (h_t, B x H) and hrev (the states
 * latest first); backward, from dh (reaching h_t) and dc (reaching c_t, replaced by what reaches
 * c_{t-1}) the pre-activations' gradients into dgt (B x 4H), dgx (batch-major) and grev (beside
 * hrev). Dropout of the hidden units: h_t = o tanh(c_t) times mask (B x H: 0 or the inverted
 * scale per image and unit) or, mask NULL, times scale (1: no dropout). */
spartan_status sp_lstm_forward_step(spartan_context *ctx, cl_mem gx, cl_mem rec, cl_mem bias,
                                    cl_mem gates, cl_mem cs, cl_mem hout, cl_mem hrev, cl_mem mask,
                                    float scale, size_t B, size_t H, size_t T, size_t t);
spartan_status sp_lstm_backward_step(spartan_context *ctx, cl_mem gates, cl_mem cs, cl_mem dh,
                                     cl_mem dc, cl_mem dgt, cl_mem dgx, cl_mem grev, cl_mem mask,
                                     float scale, size_t B, size_t H, size_t T, size_t t);

/* spartan_dropout_forward's mask from element `first` of the (seed, counter) stream on (first 0:
 * the same): a model that holds images k.. of a larger batch draws the masks of those images. */
spartan_status sp_dropout_from(spartan_context *ctx, const spartan_tensor *x, spartan_tensor *y,
                               float p, unsigned long long seed, unsigned long long counter,
                               uint64_t first);

/* The dropout stream's state for (seed, counter): seed and counter mixed, so nearby counters
 * give unrelated masks (spartan_dropout_forward documents the whole hash). */
static inline cl_ulong sp_dropout_key(unsigned long long seed, unsigned long long counter) {
    return sp_mix64((uint64_t)seed ^ sp_mix64((uint64_t)counter));
}

/* The reference kernels (reference.c): C = alpha op(A) op(B) + beta C for any transposes, and
 * the monitor's tile counts and partial sums of z (y = max(z, 0) first with relu). */
spartan_status sp_reference_gemm(spartan_context *ctx, int ta, int tb, size_t m, size_t n, size_t k,
                                 float alpha, const spartan_tensor *a, const spartan_tensor *b,
                                 float beta, spartan_tensor *c);
spartan_status sp_reference_count(spartan_context *ctx, const spartan_tensor *z, spartan_tensor *y,
                                  int relu, spartan_sparse *s);

/* The non-zero count of s without blocking (sparse_counts.c): the number of partial sums
 * spartan_sparse_nnz adds up; a non-blocking read of them into host (that many entries, left
 * alone until the queue has passed the read: after a later blocking call); their sum.
 * INVALID_ARGUMENT while s is not filled. */
size_t sp_sparse_partial_count(const spartan_sparse *s);
spartan_status sp_sparse_nnz_enqueue(spartan_sparse *s, unsigned *host);
size_t sp_sparse_nnz_sum(const spartan_sparse *s, const unsigned *host);

/* Dropback on the device (dropback.c; the algorithm: runtime/nn/dropback.c). scores: one per
 * element of all the parameters of the pool, each parameter at its offset; hist: 2048 counts,
 * zero between levels; state: the threshold's bits found so far, how many of the largest are left,
 * the guess of the first digit and its counts (kernels_cl/nn.cl); tracked: per parameter, the
 * elements kept by the last step; k: the budget. */
typedef struct sp_dropback_dev {
    cl_mem scores, hist, state, tracked, joined;
    cl_uint k;
    size_t params, total;
} sp_dropback_dev;

/* Buffers for `params` parameters of `total` elements in all, keeping k (1 <= k <= total). */
spartan_status sp_dropback_dev_make(spartan_context *ctx, size_t total, size_t params, size_t k,
                                    sp_dropback_dev *out);
void sp_dropback_dev_free(spartan_context *ctx, sp_dropback_dev *d);
/* An update's selection, each step enqueued: sp_dropback_begin (select 1); sp_dropback_score over
 * every parameter (w at offset off among the scores: |w - decay w0|, w0 = sp_rng_w0(key, i, scale),
 * 0 when scale or decay is 0; the scores at and above the guessed first digit counted);
 * sp_dropback_guess; then for each level 0, 1, 2 sp_dropback_hist over every parameter and
 * sp_dropback_select (level 0: nothing when the guess held); last sp_dropback_apply over every
 * parameter: its elements below the threshold reset to decay w0, its tracked ones counted into
 * count `slot`. */
spartan_status sp_dropback_begin(spartan_context *ctx, sp_dropback_dev *d, int select, size_t k);
spartan_status sp_dropback_score(spartan_context *ctx, sp_dropback_dev *d, const spartan_tensor *w,
                                 size_t off, uint64_t key, float scale, float decay);
spartan_status sp_dropback_guess(spartan_context *ctx, sp_dropback_dev *d);
spartan_status sp_dropback_hist(spartan_context *ctx, sp_dropback_dev *d, const spartan_tensor *w,
                                size_t off, unsigned level);
spartan_status sp_dropback_select(spartan_context *ctx, sp_dropback_dev *d, unsigned level);
spartan_status sp_dropback_apply(spartan_context *ctx, sp_dropback_dev *d, spartan_tensor *w,
                                 size_t off, size_t slot, uint64_t key, float scale, float decay);
/* An update that keeps the last selection's tracked set (after sp_dropback_begin with select 0):
 * w's other elements reset to decay w0. */
spartan_status sp_dropback_member(spartan_context *ctx, sp_dropback_dev *d, spartan_tensor *w,
                                  size_t off, uint64_t key, float scale, float decay);
/* The last update's joining elements per parameter into joined (d->params), read without
 * blocking: valid after the next blocking read or finish. */
spartan_status sp_dropback_joined_async(spartan_context *ctx, const sp_dropback_dev *d,
                                        unsigned *joined);
/* The last update's threshold, the updates whose first digit was not in the last threshold's
 * window, the elements that joined the tracked set at the last update and over all of them. */
typedef struct sp_dropback_counts {
    float threshold;
    size_t misses, joined;
    uint64_t joined_total;
} sp_dropback_counts;
/* The counts of the last step: per parameter (d->params of each: tracked, joined) and *out
 * (blocking). */
spartan_status sp_dropback_read(spartan_context *ctx, const sp_dropback_dev *d, unsigned *tracked,
                                unsigned *joined, sp_dropback_counts *out);
/* w[i] = sp_rng_w0(key, i, scale): a parameter's initial values regenerated. */
spartan_status sp_w0_fill(spartan_context *ctx, spartan_tensor *w, uint64_t key, float scale);

/* out (cols x rows) = in^T (rows x cols), both row-major buffers (spartan_transpose's kernel). */
spartan_status sp_transpose_mem(spartan_context *ctx, cl_uint rows, cl_uint cols, cl_mem in,
                                cl_mem out);

/* A weight matrix's non-zeros (spartan_wsparse_build): by column (col_*: the W form), by row
 * (row_*: the W^T form), each list's positions ascending and the lists ordered by length (*_order,
 * longest first), and by row in blocks of bw columns (bptr: k x blocks + 1 offsets, bj: the column
 * within the block) for the GEMM that skips X's zeros too. scratch: the transposed dense operand
 * (scratch_floats). longest_*: the most loop iterations a work-item of each kernel makes. */
struct spartan_wsparse {
    spartan_context *ctx;
    size_t k, n, nnz, bw, blocks;
    size_t longest_col, longest_row, longest_union;
    cl_mem col_ptr, col_idx, col_order, row_ptr, row_idx, row_order, bptr, bj;
    cl_mem pos, col_at, vals; /* each non-zero's place in W (row-major order) and in the column
                                 lists; the values gathered for a call, in its lists' order */
    cl_mem scratch;
    size_t scratch_floats;
    int built;
};

/* s describes rows x cols matrices from now on, in the buffers it was made with (monitor.c):
 * INVALID_ARGUMENT when the new shape has more tiles than the one it was created for. Its counts
 * and compaction are forgotten. For operands whose width changes from step to step (the kept
 * neurons of a row dropout). */
spartan_status sp_sparse_reshape(spartan_sparse *s, size_t rows, size_t cols);

#endif /* SP_OPS_INTERNAL_H */
