/*
 * bind_gru.c -- the GRU kernels (gru_impl.h) declared to the front door (bind_spec.h). Strict
 * shapes: the flexible forms (a shared dropout mask, None states) are resolved by ops.gru.
 */
#include "bind_spec.h"

#define AL_GRU_IMPL_MAX 3

enum { L_B, L_T, L_D, L_H };
#define LETTERS "B,T,D,H"
#define ORDER "x,recurrent_kernel,kernel"   /* H from recurrent_kernel names (D, 3H) */
/* The BLAS's ints, and the workspace of at most B*T*(9H + D) reals (x 4 spare). */
#define BLAS "B*T,T*3H,D"
#define FITS "B*T*3H*32,B*T*D*32"
#define OPTIONS_IMPL {"impl", AL_OPT, 'i', AL_DEF, "", NULL, 0, 0, AL_GRU_IMPL_MAX,              \
                      "0 (automatic), 1 (BLAS), 2 (AVX2) or 3 (AVX-512)"}
#define OPTIONS_THREADS {"threads", AL_OPT, 'i', AL_DEF, "", NULL, 0, 0, 64,                   \
                         "0 (automatic: set_num_threads) or a thread count from 1 to 64"}

static const char GRU_FORWARD_DOC[] =
    "gru_forward(x, kernel, recurrent_kernel, bias=None, h0=None, mask=None, activation=1,\n"
    "            recurrent_activation=2, reset_after=True, go_backwards=False, dp_mask=None,\n"
    "            rec_mask=None, impl=0, save_gates=True, threads=0) -> (hs, out, gates, rh)\n\n"
    "Low-level GRU forward over a whole sequence (Keras 3 GRU semantics, gates [z|r|h]).\n\n"
    "x (B,T,D), kernel (D,3H), recurrent_kernel (H,3H), bias (2,3H) with reset_after else\n"
    "(3H,), h0 (B,H), mask (B,T) (nonzero = keep), dp_mask (B,3D) and rec_mask (B,3H)\n"
    "per-gate dropout masks (training). All float arrays share x's dtype.\n"
    "Returns hs (B,T,H) in processing order, out (B,T,H) the masked output sequence (None\n"
    "without a mask: it equals hs), and the saved buffers gates (B,T,3H) (activated z, r, n\n"
    "by time) and rh (B,T,H) (reset_after: the h block of the recurrent product with its\n"
    "bias), both None with save_gates=False (inference), rh None without reset_after.\n"
    "impl: 0 automatic, 1 BLAS, 2 / 3 the packed per-step products with AVX2 / AVX-512.\n"
    "threads: 0 uses set_num_threads' count when the call is large enough; n > 0 exactly n\n"
    "(tests). Threads split the batch rows (packed path only); results are bitwise the same.\n"
    "Raises TypeError/ValueError on bad input, MemoryError when out of memory.";

enum { F_HS, F_OUT, F_GATES, F_RH, F_X, F_W, F_U, F_BIAS, F_H0, F_MASK, F_ACT, F_RACT, F_RA,
       F_BACK, F_DP, F_REC, F_IMPL, F_SAVE_GATES, F_THREADS, F_COUNT };
static const al_arg GRU_FORWARD[] = {
    {"hs", AL_OUT, 'f', 0, "B,T,H"},
    {"out", AL_OUT, 'f', 0, "B,T,H", "mask"},
    {"gates", AL_SAVE, 'f', 0, "B,T,3H", "save_gates"},
    {"rh", AL_SAVE, 'f', 0, "B,T,H", "save_gates&reset_after"},
    {"x", AL_IN, 'f', 0, "B,T,D"},
    {"kernel", AL_W, 'f', 0, "D,3H"},
    {"recurrent_kernel", AL_W, 'f', 0, "H,3H"},
    {"bias", AL_W, 'f', AL_DEF, "2,3H|3H", .pick = "reset_after"},
    {"h0", AL_IN, 'f', AL_DEF, "B,H"},
    {"mask", AL_IN, 'b', AL_DEF, "B,T"},
    AL_ACT_ARG("activation", AL_ACT_TANH),
    AL_ACT_ARG("recurrent_activation", AL_ACT_SIGMOID),
    {"reset_after", AL_OPT, 'p', AL_DEF, "", NULL, 1},
    {"go_backwards", AL_OPT, 'p', AL_DEF},
    {"dp_mask", AL_IN, 'f', AL_DEF, "B,3D"},
    {"rec_mask", AL_IN, 'f', AL_DEF, "B,3H"},
    OPTIONS_IMPL,
    {"save_gates", AL_OPT, 'p', AL_DEF, "", NULL, 1},
    OPTIONS_THREADS,
};
_Static_assert(AL_COUNT(GRU_FORWARD) == F_COUNT, "GRU_FORWARD");

static int gru_forward_run(const al_call *c) {
    return AL_DISPATCH(al_gru_forward_impl, AL_P(F_HS), AL_P(F_OUT), AL_P(F_GATES), AL_P(F_RH),
                       AL_P(F_X), AL_P(F_H0), AL_P(F_MASK), AL_P(F_DP), AL_P(F_REC), AL_P(F_W),
                       AL_P(F_U), AL_P(F_BIAS), AL_N(L_B), AL_N(L_T), AL_N(L_D), AL_N(L_H),
                       AL_I(F_ACT), AL_I(F_RACT), AL_I(F_RA), AL_I(F_BACK), AL_I(F_IMPL),
                       AL_THREADS(F_THREADS));
}

static const al_spec GRU_FORWARD_SPEC = {"gru_forward", GRU_FORWARD, F_COUNT, LETTERS, "x", ORDER,
                                         BLAS, FITS, "T,H", gru_forward_run};

static const char GRU_BACKWARD_DOC[] =
    "gru_backward(hs, gates, rh, x, kernel, recurrent_kernel, h0=None, mask=None,\n"
    "             dp_mask=None, rec_mask=None, d_outputs=None, d_last=None, d_h=None,\n"
    "             activation=1, recurrent_activation=2, reset_after=True,\n"
    "             go_backwards=False, impl=0, threads=0)\n"
    "    -> (dx, dkernel, drecurrent_kernel, dbias, dh0)\n\n"
    "Low-level GRU backward (BPTT), inverting gru_forward. hs, gates, rh are gru_forward's\n"
    "saved buffers (rh None without reset_after); x, kernel, recurrent_kernel, h0, mask,\n"
    "dp_mask, rec_mask and the options must be the forward's. Upstream gradients (None =\n"
    "zero): d_outputs (B,T,H) w.r.t. the output sequence (processing order), d_last (B,H)\n"
    "w.r.t. the last output, d_h (B,H) w.r.t. the final state. Returns dx (B,T,D), dkernel\n"
    "(D,3H), drecurrent_kernel (H,3H), dbias ((2,3H) with reset_after, else (3H,)), dh0\n"
    "(B,H). Raises TypeError/ValueError on bad input, MemoryError when out of memory.";

enum { G_DX, G_DW, G_DU, G_DB, G_DH0, G_HS, G_GATES, G_RH, G_X, G_W, G_U, G_H0, G_MASK, G_DP,
       G_REC, G_DOUT, G_DLAST, G_DH, G_ACT, G_RACT, G_RA, G_BACK, G_IMPL, G_THREADS, G_COUNT };
static const al_arg GRU_BACKWARD[] = {
    {"dx", AL_OUT, 'f', 0, "B,T,D"},
    {"dkernel", AL_OUT, 'f', 0, "D,3H"},
    {"drecurrent_kernel", AL_OUT, 'f', 0, "H,3H"},
    {"dbias", AL_OUT, 'f', 0, "2,3H|3H", .pick = "reset_after"},
    {"dh0", AL_OUT, 'f', 0, "B,H"},
    {"hs", AL_SAVED, 'f', 0, "B,T,H"},
    {"gates", AL_SAVED, 'f', 0, "B,T,3H"},
    {"rh", AL_SAVED, 'f', AL_NONE, "B,T,H|B,T,H", .pick = "reset_after"},
    {"x", AL_IN, 'f', 0, "B,T,D"},
    {"kernel", AL_W, 'f', 0, "D,3H"},
    {"recurrent_kernel", AL_W, 'f', 0, "H,3H"},
    {"h0", AL_IN, 'f', AL_DEF, "B,H"},
    {"mask", AL_IN, 'b', AL_DEF, "B,T"},
    {"dp_mask", AL_IN, 'f', AL_DEF, "B,3D"},
    {"rec_mask", AL_IN, 'f', AL_DEF, "B,3H"},
    {"d_outputs", AL_IN, 'f', AL_DEF, "B,T,H"},
    {"d_last", AL_IN, 'f', AL_DEF, "B,H"},
    {"d_h", AL_IN, 'f', AL_DEF, "B,H"},
    AL_ACT_ARG("activation", AL_ACT_TANH),
    AL_ACT_ARG("recurrent_activation", AL_ACT_SIGMOID),
    {"reset_after", AL_OPT, 'p', AL_DEF, "", NULL, 1},
    {"go_backwards", AL_OPT, 'p', AL_DEF},
    OPTIONS_IMPL,
    OPTIONS_THREADS,
};
_Static_assert(AL_COUNT(GRU_BACKWARD) == G_COUNT, "GRU_BACKWARD");

static int gru_backward_run(const al_call *c) {
    return AL_DISPATCH(al_gru_backward_impl, AL_P(G_DX), AL_P(G_DW), AL_P(G_DU), AL_P(G_DB),
                       AL_P(G_DH0), AL_P(G_HS), AL_P(G_GATES), AL_P(G_RH), AL_P(G_DOUT),
                       AL_P(G_DLAST), AL_P(G_DH), AL_P(G_X), AL_P(G_H0), AL_P(G_MASK),
                       AL_P(G_DP), AL_P(G_REC), AL_P(G_W), AL_P(G_U), AL_N(L_B), AL_N(L_T), AL_N(L_D),
                       AL_N(L_H), AL_I(G_ACT), AL_I(G_RACT), AL_I(G_RA), AL_I(G_BACK),
                       AL_I(G_IMPL), AL_THREADS(G_THREADS));
}

static const al_spec GRU_BACKWARD_SPEC = {"gru_backward", GRU_BACKWARD, G_COUNT, LETTERS, "x",
                                          ORDER, BLAS, FITS, "T,H", gru_backward_run};

AL_ENTRY(py_gru_forward, GRU_FORWARD_SPEC)
AL_ENTRY(py_gru_backward, GRU_BACKWARD_SPEC)

PyMethodDef al_gru_methods[] = {
    AL_METHOD("gru_forward", py_gru_forward, GRU_FORWARD_DOC),
    AL_METHOD("gru_backward", py_gru_backward, GRU_BACKWARD_DOC),
    {NULL, NULL, 0, NULL}
};
