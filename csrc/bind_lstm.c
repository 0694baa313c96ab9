/*
 * bind_lstm.c -- the LSTM kernels (lstm_impl.h) declared to the front door (bind_spec.h).
 * The binding is strict: per-gate dropout masks are (B, 4D) / (B, 4H); ops.lstm tiles a
 * shared (B, D) / (B, H) one.
 */
#include "bind_spec.h"
#include "lstm_api.h"

enum { L_B, L_T, L_D, L_H };
#define LETTERS "B,T,D,H"
/* x, then recurrent_kernel: H comes from it, so the kernel's message can say (D, 4H) = (3, 8). */
#define ORDER "x,recurrent_kernel,kernel"
#define OPTIONS                                                                                \
    {"impl", AL_OPT, 'i', AL_DEF, "", NULL, 0, 0, AL_LSTM_IMPL_MAX,                            \
     "0 (automatic), 1 (generic), 2 (AVX2) or 3 (AVX-512)"},                                   \
    {"threads", AL_OPT, 'i', AL_DEF, "", NULL, 0, 0, 1024,                                     \
     "0 (automatic: set_num_threads) or a thread count from 1 to 1024"}

static const char LSTM_FORWARD_DOC[] =
    "lstm_forward(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, mask=None,\n"
    "             activation=1, recurrent_activation=2, go_backwards=False,\n"
    "             dp_mask=None, rec_mask=None, save_act_c=False, impl=0, threads=0,\n"
    "             save_gates=True)\n"
    "    -> (hs, cs, out, gates)  or, with save_act_c, (hs, cs, out, gates, act_c)\n\n"
    "Low-level LSTM forward over a whole sequence (Keras 3 LSTM semantics).\n\n"
    "x (B,T,D), kernel (D,4H), recurrent_kernel (H,4H), bias (4H,), h0/c0 (B,H),\n"
    "mask (B,T) (nonzero = keep). Dropout masks (training), fixed over time: dp_mask (B,4D)\n"
    "multiplies x and rec_mask (B,4H) multiplies h_{t-1}, one mask per gate [i|f|c|o] as\n"
    "Keras 3 LSTMCell draws them when recurrent_dropout > 0 (ops.lstm tiles a shared one).\n"
    "All float arrays share x's dtype (float32 or float64).\n"
    "Returns hs (B,T,H) and cs (B,T,H) in processing order, out (B,T,H) the masked output\n"
    "sequence (None without a mask: it equals hs), and gates (B,T,4H), the activated gates\n"
    "indexed by time, saved for the backward pass; with save_act_c also act_c (B,T,H) =\n"
    "activation(c) per step, which lstm_backward uses instead of recomputing it.\n"
    "save_gates=False (inference: no backward follows) returns None for gates and does\n"
    "not write them, which saves the memory traffic of a (B,T,4H) array.\n"
    "impl (tests and benchmarks): 0 the path chosen at import (ATTNLSTM_ISA, else the\n"
    "CPU's best), 1 generic (portable C), 2 AVX2, 3 AVX-512 (a path above the chosen one\n"
    "falls back to it), float32 and float64. A sample's results are the same bits whatever\n"
    "the batch size, its position in the batch and the thread count; AVX2 and AVX-512 give\n"
    "the same bits, generic agrees to rounding.\n"
    "threads: 0 uses set_num_threads' count when the call is large enough to gain from it;\n"
    "n > 0 uses exactly n threads wherever the shapes allow (tests). The work splits by\n"
    "batch rows, or by hidden units for small batches.\n"
    "Raises TypeError/ValueError on bad input, MemoryError when out of memory.";

enum { F_HS, F_CS, F_OUT, F_GATES, F_ACT_C, F_X, F_W, F_U, F_BIAS, F_H0, F_C0, F_MASK, F_ACT,
       F_RACT, F_BACK, F_DP, F_REC, F_SAVE_ACT_C, F_IMPL, F_THREADS, F_SAVE_GATES, F_COUNT };
static const al_arg LSTM_FORWARD[] = {
    {"hs", AL_OUT, 'f', 0, "B,T,H"},
    {"cs", AL_SAVE, 'f', 0, "B,T,H"},
    {"out", AL_OUT, 'f', 0, "B,T,H", "mask"},
    {"gates", AL_SAVE, 'f', 0, "B,T,4H", "save_gates"},
    {"act_c", AL_SAVE, 'f', AL_DROP, "B,T,H", "save_act_c"},
    {"x", AL_IN, 'f', 0, "B,T,D"},
    {"kernel", AL_W, 'f', 0, "D,4H"},
    {"recurrent_kernel", AL_W, 'f', 0, "H,4H"},
    {"bias", AL_W, 'f', AL_DEF, "4H"},
    {"h0", AL_IN, 'f', AL_DEF, "B,H"},
    {"c0", AL_IN, 'f', AL_DEF, "B,H"},
    {"mask", AL_IN, 'b', AL_DEF, "B,T"},
    AL_ACT_ARG("activation", AL_ACT_TANH),
    AL_ACT_ARG("recurrent_activation", AL_ACT_SIGMOID),
    {"go_backwards", AL_OPT, 'p', AL_DEF},
    {"dp_mask", AL_IN, 'f', AL_DEF, "B,4D"},
    {"rec_mask", AL_IN, 'f', AL_DEF, "B,4H"},
    {"save_act_c", AL_OPT, 'p', AL_DEF},
    OPTIONS,
    {"save_gates", AL_OPT, 'p', AL_DEF, "", NULL, 1},
};
_Static_assert(AL_COUNT(LSTM_FORWARD) == F_COUNT, "LSTM_FORWARD");

static int lstm_forward_run(const al_call *c) {
    return AL_DISPATCH(al_lstm_forward_impl, AL_P(F_HS), AL_P(F_CS), AL_P(F_OUT), AL_P(F_GATES),
                       AL_P(F_ACT_C), AL_P(F_X), AL_P(F_H0), AL_P(F_C0), AL_P(F_MASK),
                       AL_P(F_DP), AL_P(F_REC), AL_P(F_W), AL_P(F_U), AL_P(F_BIAS), AL_N(L_B),
                       AL_N(L_T), AL_N(L_D), AL_N(L_H), AL_I(F_ACT), AL_I(F_RACT), AL_I(F_BACK),
                       AL_I(F_IMPL), AL_THREADS(F_THREADS));
}

/* Every leading dimension the BLAS sees fits its 32-bit int. */
static const al_spec LSTM_FORWARD_SPEC = {"lstm_forward", LSTM_FORWARD, F_COUNT, LETTERS, "x",
                                          ORDER, "B*T,T*4H,D,T*H", "B*T*4H", "T,H",
                                          lstm_forward_run};

static const char LSTM_BACKWARD_DOC[] =
    "lstm_backward(hs, cs, gates, x, kernel, recurrent_kernel, h0=None, c0=None, mask=None,\n"
    "              dp_mask=None, rec_mask=None, act_c=None, d_outputs=None, d_last=None, d_h=None, d_c=None,\n"
    "              activation=1, recurrent_activation=2, go_backwards=False, impl=0,\n"
    "              threads=0)\n"
    "    -> (dx, dkernel, drecurrent_kernel, dbias, dh0, dc0)\n\n"
    "Low-level LSTM backward (BPTT) over a whole sequence, inverting lstm_forward.\n\n"
    "hs, cs (B,T,H), gates (B,T,4H) and act_c (B,T,H) (optional) are lstm_forward's saved\n"
    "buffers; x (B,T,D), kernel (D,4H), recurrent_kernel (H,4H), h0/c0 (B,H), mask (B,T),\n"
    "dp_mask (B,4D), rec_mask (B,4H) and the activation codes / go_backwards\n"
    "must be the forward's arguments.\n"
    "Upstream gradients (each optional, None = zero): d_outputs (B,T,H) w.r.t. the output\n"
    "sequence (processing order), d_last (B,H) w.r.t. the last output (step T-1), d_h and\n"
    "d_c (B,H) w.r.t. the final states. Returns dx (B,T,D), dkernel (D,4H),\n"
    "drecurrent_kernel (H,4H), dbias (4H,), dh0 and dc0 (B,H) (gradients w.r.t. the initial\n"
    "states, also when they were zeros). All float arrays share x's dtype.\n"
    "impl: as for lstm_forward (0 the path chosen at import, 1 generic, 2 AVX2, 3 AVX-512).\n"
    "threads: as for lstm_forward. Every result is the same bits for any thread count;\n"
    "dx, dh0 and dc0 of a sample also for any batch size and position in the batch.\n"
    "Raises TypeError/ValueError on bad input, MemoryError when out of memory.";

enum { G_DX, G_DW, G_DU, G_DB, G_DH0, G_DC0, G_HS, G_CS, G_GATES, G_X, G_W, G_U, G_H0, G_C0,
       G_MASK, G_DP, G_REC, G_ACT_C, G_DOUT, G_DLAST, G_DH, G_DC, G_ACT, G_RACT, G_BACK, G_IMPL,
       G_THREADS, G_COUNT };
static const al_arg LSTM_BACKWARD[] = {
    {"dx", AL_OUT, 'f', 0, "B,T,D"},
    {"dkernel", AL_OUT, 'f', 0, "D,4H"},
    {"drecurrent_kernel", AL_OUT, 'f', 0, "H,4H"},
    {"dbias", AL_OUT, 'f', 0, "4H"},
    {"dh0", AL_OUT, 'f', 0, "B,H"},
    {"dc0", AL_OUT, 'f', 0, "B,H"},
    {"hs", AL_SAVED, 'f', 0, "B,T,H"},
    {"cs", AL_SAVED, 'f', 0, "B,T,H"},
    {"gates", AL_SAVED, 'f', 0, "B,T,4H"},
    {"x", AL_IN, 'f', 0, "B,T,D"},
    {"kernel", AL_W, 'f', 0, "D,4H"},
    {"recurrent_kernel", AL_W, 'f', 0, "H,4H"},
    {"h0", AL_IN, 'f', AL_DEF, "B,H"},
    {"c0", AL_IN, 'f', AL_DEF, "B,H"},
    {"mask", AL_IN, 'b', AL_DEF, "B,T"},
    {"dp_mask", AL_IN, 'f', AL_DEF, "B,4D"},
    {"rec_mask", AL_IN, 'f', AL_DEF, "B,4H"},
    {"act_c", AL_SAVED, 'f', AL_DEF, "B,T,H"},
    {"d_outputs", AL_IN, 'f', AL_DEF, "B,T,H"},
    {"d_last", AL_IN, 'f', AL_DEF, "B,H"},
    {"d_h", AL_IN, 'f', AL_DEF, "B,H"},
    {"d_c", AL_IN, 'f', AL_DEF, "B,H"},
    AL_ACT_ARG("activation", AL_ACT_TANH),
    AL_ACT_ARG("recurrent_activation", AL_ACT_SIGMOID),
    {"go_backwards", AL_OPT, 'p', AL_DEF},
    OPTIONS,
};
_Static_assert(AL_COUNT(LSTM_BACKWARD) == G_COUNT, "LSTM_BACKWARD");

static int lstm_backward_run(const al_call *c) {
    return AL_DISPATCH(al_lstm_backward_impl, AL_P(G_DX), AL_P(G_DW), AL_P(G_DU), AL_P(G_DB),
                       AL_P(G_DH0), AL_P(G_DC0), AL_P(G_HS), AL_P(G_CS), AL_P(G_GATES),
                       AL_P(G_ACT_C), AL_P(G_DOUT), AL_P(G_DLAST), AL_P(G_DH), AL_P(G_DC),
                       AL_P(G_X), AL_P(G_H0), AL_P(G_C0), AL_P(G_MASK), AL_P(G_DP),
                       AL_P(G_REC), AL_P(G_W), AL_P(G_U), AL_N(L_B), AL_N(L_T), AL_N(L_D),
                       AL_N(L_H), AL_I(G_ACT), AL_I(G_RACT), AL_I(G_BACK), AL_I(G_IMPL),
                       AL_THREADS(G_THREADS));
}

/* The BLAS's ints, and the kernel's workspace of at most B*T*(8H + D) doubles (x 8 spare). */
static const al_spec LSTM_BACKWARD_SPEC = {"lstm_backward", LSTM_BACKWARD, G_COUNT, LETTERS, "x",
                                           ORDER, "B*T,T*4H,D", "B*T*4H*64,B*T*D*64", "T,H",
                                           lstm_backward_run};

AL_ENTRY(py_lstm_forward, LSTM_FORWARD_SPEC)
AL_ENTRY(py_lstm_backward, LSTM_BACKWARD_SPEC)

PyMethodDef al_lstm_methods[] = {
    AL_METHOD("lstm_forward", py_lstm_forward, LSTM_FORWARD_DOC),
    AL_METHOD("lstm_backward", py_lstm_backward, LSTM_BACKWARD_DOC),
    {NULL, NULL, 0, NULL}
};
