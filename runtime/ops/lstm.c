/* The LSTM's per-step kernels (kernels_cl/nn.cl, nn_lstm_*): the gates and states of one time
 * step, forward and backward. The GEMMs around them are the dense ones; the layer
 * (runtime/nn/layers/lstm.c) orders the calls. */
#include "ops/ops_internal.h"

static spartan_status dims(spartan_context *ctx, size_t B, size_t H, size_t T, size_t t,
                           cl_uint out[4]) {
    if (t >= T) return sp_invalid(ctx, "LSTM step %zu of %zu", t, T);
    spartan_status st = sp_u32(ctx, B, "images", &out[0]);
    if (st == SPARTAN_OK) st = sp_u32(ctx, H, "units", &out[1]);
    if (st == SPARTAN_OK) st = sp_u32(ctx, T, "time steps", &out[2]);
    if (st == SPARTAN_OK) st = sp_u32(ctx, t, "time step", &out[3]);
    if (st == SPARTAN_OK && (B * T > 0xffffffffu / 4 / (H ? H : 1)))
        return sp_invalid(ctx, "LSTM of %zu units over %zu x %zu rows: above 32-bit indices", H, B,
                          T);
    return st;
}

spartan_status sp_lstm_forward_step(spartan_context *ctx, cl_mem gx, cl_mem rec, cl_mem bias,
                                    cl_mem gates, cl_mem cs, cl_mem hout, cl_mem hrev, cl_mem mask,
                                    float scale, size_t B, size_t H, size_t T, size_t t) {
    cl_uint d[4];
    spartan_status st = dims(ctx, B, H, T, t, d);
    if (st != SPARTAN_OK || B == 0 || H == 0) return st;
    const cl_int first = t == 0;
    const cl_int has_mask = mask != NULL;
    if (!mask) mask = gx; /* never read */
    sp_arg args[] = {SP_ARG(gx),   SP_ARG(rec),  SP_ARG(bias), SP_ARG(gates),    SP_ARG(cs),
                     SP_ARG(hout), SP_ARG(hrev), SP_ARG(mask), SP_ARG(has_mask), SP_ARG(scale),
                     SP_ARG(d[0]), SP_ARG(d[1]), SP_ARG(d[2]), SP_ARG(d[3]),     SP_ARG(first)};
    return sp_launch_1d(ctx, SP_K_nn_lstm_forward, B * H, args, 15);
}

spartan_status sp_lstm_backward_step(spartan_context *ctx, cl_mem gates, cl_mem cs, cl_mem dh,
                                     cl_mem dc, cl_mem dgt, cl_mem dgx, cl_mem grev, cl_mem mask,
                                     float scale, size_t B, size_t H, size_t T, size_t t) {
    cl_uint d[4];
    spartan_status st = dims(ctx, B, H, T, t, d);
    if (st != SPARTAN_OK || B == 0 || H == 0) return st;
    const cl_int first = t == 0;
    const cl_int has_mask = mask != NULL;
    if (!mask) mask = gates; /* never read */
    sp_arg args[] = {SP_ARG(gates), SP_ARG(cs),   SP_ARG(dh),   SP_ARG(dc),       SP_ARG(dgt),
                     SP_ARG(dgx),   SP_ARG(grev), SP_ARG(mask), SP_ARG(has_mask), SP_ARG(scale),
                     SP_ARG(d[0]),  SP_ARG(d[1]), SP_ARG(d[2]), SP_ARG(d[3]),     SP_ARG(first)};
    return sp_launch_1d(ctx, SP_K_nn_lstm_backward, B * H, args, 15);
}
