/* The closed lists of kernel families (kernels_cl/<family>.cl) and of the kernels the host
 * launches from each. A context looks every kernel up once, after building its family, so a
 * kernel file that lacks one fails at context creation (naming it), and a launch takes a kernel
 * by its id (sp_kernel_id), never by name.
 *
 * A family is essential when nothing can replace it (element-wise and layer kernels: a device
 * where they fail gets no context) and optional when a slower correct path exists (the own dense
 * GEMM: CLBlast or the reference kernels; the monitor: the reference count; the compaction and
 * the sparse GEMMs: the dense path; the implicit-GEMM convolution: im2col + the dense GEMM; its
 * backward-by-input: the dense GEMM + col2im; its backward-by-weight: im2col + the dense GEMM).
 * The order of SP_FAMILY_LIST is the order of SPARTAN_KERNEL_FAMILIES in CMakeLists.txt (the
 * embedded sources); a test checks they agree. */
#ifndef SP_PROGRAM_KERNELS_H
#define SP_PROGRAM_KERNELS_H

/* X(family, essential) */
#define SP_FAMILY_LIST(X)                                                                          \
    X(eltwise, 1)                                                                                  \
    X(gemm_dense, 0)                                                                               \
    X(monitor, 0)                                                                                  \
    X(compact, 0)                                                                                  \
    X(gemm_sparse, 0)                                                                              \
    X(nn, 1)                                                                                       \
    X(conv, 0)                                                                                     \
    X(conv_dx, 0)                                                                                  \
    X(conv_dw, 0)                                                                                  \
    X(reference, 0)

typedef enum sp_family {
#define SP_X_(name, essential) SP_FAMILY_##name,
    SP_FAMILY_LIST(SP_X_)
#undef SP_X_
        SP_FAMILY_COUNT
} sp_family;

/* X(family, kernel). The sparse GEMMs are named for the pass they compute (spartan_gemm_sparse_*);
 * those with a column block come in four block widths, _b0 (widest) to _b3, launched as the _b0
 * id plus the level. */
#define SP_KERNEL_LIST(X)                                                                          \
    X(eltwise, eltwise_fill)                                                                       \
    X(eltwise, eltwise_axpy)                                                                       \
    X(eltwise, eltwise_relu)                                                                       \
    X(eltwise, eltwise_sum_parts)                                                                  \
    X(eltwise, eltwise_scale)                                                                      \
    X(eltwise, eltwise_transpose)                                                                  \
    X(eltwise, eltwise_mask_zeros)                                                                 \
    X(gemm_dense, gemm_dense_nn)                                                                   \
    X(gemm_dense, gemm_dense_tn)                                                                   \
    X(gemm_dense, gemm_tiles_nn)                                                                   \
    X(gemm_dense, gemm_tiles_nt)                                                                   \
    X(gemm_dense, gemm_tiles_tn)                                                                   \
    X(gemm_dense, gemm_tiles_wa)                                                                   \
    X(gemm_dense, gemm_tiles_tk)                                                                   \
    X(gemm_dense, gemm_tiles_sgd)                                                                  \
    X(monitor, monitor_relu)                                                                       \
    X(monitor, monitor_bias_relu)                                                                  \
    X(monitor, monitor_count)                                                                      \
    X(compact, compact_scan_sums)                                                                  \
    X(compact, compact_scan_apply)                                                                 \
    X(compact, compact_scatter)                                                                    \
    X(compact, compact_lists)                                                                      \
    X(gemm_sparse, gemm_sparse_fwd_b0)                                                             \
    X(gemm_sparse, gemm_sparse_fwd_b1)                                                             \
    X(gemm_sparse, gemm_sparse_fwd_b2)                                                             \
    X(gemm_sparse, gemm_sparse_fwd_b3)                                                             \
    X(gemm_sparse, gemm_sparse_bwd_weight_b0)                                                      \
    X(gemm_sparse, gemm_sparse_bwd_weight_b1)                                                      \
    X(gemm_sparse, gemm_sparse_bwd_weight_b2)                                                      \
    X(gemm_sparse, gemm_sparse_bwd_weight_b3)                                                      \
    X(gemm_sparse, gemm_sparse_fwd_direct_b0)                                                      \
    X(gemm_sparse, gemm_sparse_fwd_direct_b1)                                                      \
    X(gemm_sparse, gemm_sparse_fwd_direct_b2)                                                      \
    X(gemm_sparse, gemm_sparse_fwd_direct_b3)                                                      \
    X(gemm_sparse, gemm_sparse_bwd_input)                                                          \
    X(gemm_sparse, gemm_wsparse_lists)                                                             \
    X(gemm_sparse, gemm_wsparse_union)                                                             \
    X(gemm_sparse, gemm_wsparse_gather)                                                            \
    X(nn, nn_im2col)                                                                               \
    X(nn, nn_col2im)                                                                               \
    X(nn, nn_bias_add)                                                                             \
    X(nn, nn_bias_grad)                                                                            \
    X(nn, nn_bias_grad_flat)                                                                       \
    X(nn, nn_bias_grad_fold)                                                                       \
    X(nn, nn_relu_backward)                                                                        \
    X(nn, nn_maxpool_forward)                                                                      \
    X(nn, nn_maxpool_backward)                                                                     \
    X(nn, nn_maxpool_backward_tiled)                                                               \
    X(nn, nn_avgpool_forward)                                                                      \
    X(nn, nn_avgpool_backward)                                                                     \
    X(nn, nn_dropout)                                                                              \
    X(nn, nn_row_map)                                                                              \
    X(nn, nn_row_gather)                                                                           \
    X(nn, nn_row_gather_1d)                                                                        \
    X(nn, nn_row_scatter)                                                                          \
    X(nn, nn_row_scatter_1d)                                                                       \
    X(nn, nn_row_mask)                                                                             \
    X(nn, nn_row_sgd)                                                                              \
    X(nn, nn_lstm_forward)                                                                         \
    X(nn, nn_lstm_backward)                                                                        \
    X(nn, nn_softmax_xent)                                                                         \
    X(nn, nn_sgd_step)                                                                             \
    X(nn, nn_w0_fill)                                                                              \
    X(nn, nn_dropback_begin)                                                                       \
    X(nn, nn_dropback_score)                                                                       \
    X(nn, nn_dropback_score0)                                                                      \
    X(nn, nn_dropback_guess)                                                                       \
    X(nn, nn_dropback_hist)                                                                        \
    X(nn, nn_dropback_select)                                                                      \
    X(nn, nn_dropback_apply)                                                                       \
    X(nn, nn_dropback_apply0)                                                                      \
    X(nn, nn_dropback_member)                                                                      \
    X(nn, nn_dropback_member0)                                                                     \
    X(conv, conv_forward)                                                                          \
    X(conv, conv_forward_sparse)                                                                   \
    X(conv, conv_forward_rows)                                                                     \
    X(conv, conv_nonzeros)                                                                         \
    X(conv, conv_strip_sparse)                                                                     \
    X(conv, conv_strip_masks)                                                                      \
    X(conv_dx, conv_dx_dense)                                                                      \
    X(conv_dx, conv_dx_lists)                                                                      \
    X(conv_dx, conv_dx_sparse)                                                                     \
    X(conv_dx, conv_dx_rows)                                                                       \
    X(conv_dx, conv_dx_transpose)                                                                  \
    X(conv_dx, conv_dx_flip)                                                                       \
    X(conv_dw, conv_dw_cvec)                                                                       \
    X(conv_dw, conv_dw_ocvec)                                                                      \
    X(conv_dw, conv_dw_rows)                                                                       \
    X(conv_dw, conv_dw_transpose)                                                                  \
    X(conv_dw, conv_dw_lists)                                                                      \
    X(conv_dw, conv_dw_table)                                                                      \
    X(conv_dw, conv_dw_chunks)                                                                     \
    X(conv_dw, conv_dw_cvec_tile)                                                                  \
    X(conv_dw, conv_dw_ocvec_sparse)                                                               \
    X(conv_dw, conv_dw_sum)                                                                        \
    X(reference, reference_gemm)                                                                   \
    X(reference, reference_count)                                                                  \
    X(reference, reference_partials)

typedef enum sp_kernel_id {
#define SP_X_(family, name) SP_K_##name,
    SP_KERNEL_LIST(SP_X_)
#undef SP_X_
        SP_KERNEL_COUNT
} sp_kernel_id;

/* The family and name of a kernel, and the name and essentialness of a family. */
sp_family sp_kernel_family(sp_kernel_id k);
const char *sp_kernel_name(sp_kernel_id k);
const char *sp_family_name(sp_family f);
int sp_family_essential(sp_family f);

#endif /* SP_PROGRAM_KERNELS_H */
