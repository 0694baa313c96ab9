/*
 * bind_lstm.c -- the LSTM kernels (lstm_impl.h) declared to the front door (bind_spec.h).
 * The binding is strict: per-gate dropout masks are (B, 4D) / (B, 4H); ops.lstm tiles a
 * shared (B, D) / (B, H) one.
 */
#include "bind_spec.h"
#include "lstm_api.h"

enum { L_B, L_T, L_D, L_H };
#define OPTIONS AL_IMPL("generic") AL_THREADS_ARG(1024)

enum { F_X, F_W, F_U, F_BIAS, F_H0, F_C0, F_MASK, F_ACT, F_RACT, F_BACK, F_DP, F_REC,
       F_SAVE_ACT_C, F_IMPL, F_THREADS, F_SAVE_GATES, F_HS, F_CS, F_OUT, F_GATES, F_ACT_C,
       F_COUNT };
static int lstm_forward_run(const al_call *c) {
    return AL_DISPATCH(al_lstm_forward_impl, AL_P(F_HS), AL_P(F_CS), AL_P(F_OUT), AL_P(F_GATES),
                       AL_P(F_ACT_C), AL_P(F_X), AL_P(F_H0), AL_P(F_C0), AL_P(F_MASK),
                       AL_P(F_DP), AL_P(F_REC), AL_P(F_W), AL_P(F_U), AL_P(F_BIAS), AL_N(L_B),
                       AL_N(L_T), AL_N(L_D), AL_N(L_H), AL_I(F_ACT), AL_I(F_RACT), AL_I(F_BACK),
                       AL_I(F_IMPL), AL_THREADS(F_THREADS));
}

enum { G_HS, G_CS, G_GATES, G_X, G_W, G_U, G_H0, G_C0, G_MASK, G_DP, G_REC, G_ACT_C, G_DOUT,
       G_DLAST, G_DH, G_DC, G_ACT, G_RACT, G_BACK, G_IMPL, G_THREADS, G_DX, G_DW, G_DU, G_DB,
       G_DH0, G_DC0, G_COUNT };
static int lstm_backward_run(const al_call *c) {
    return AL_DISPATCH(al_lstm_backward_impl, AL_P(G_DX), AL_P(G_DW), AL_P(G_DU), AL_P(G_DB),
                       AL_P(G_DH0), AL_P(G_DC0), AL_P(G_HS), AL_P(G_CS), AL_P(G_GATES),
                       AL_P(G_ACT_C), AL_P(G_DOUT), AL_P(G_DLAST), AL_P(G_DH), AL_P(G_DC),
                       AL_P(G_X), AL_P(G_H0), AL_P(G_C0), AL_P(G_MASK), AL_P(G_DP),
                       AL_P(G_REC), AL_P(G_W), AL_P(G_U), AL_N(L_B), AL_N(L_T), AL_N(L_D),
                       AL_N(L_H), AL_I(G_ACT), AL_I(G_RACT), AL_I(G_BACK), AL_I(G_IMPL),
                       AL_THREADS(G_THREADS));
}

/* x, then recurrent_kernel: H comes from it, so the kernel's message can say (D, 4H) = (3, 8).
 * The BLAS's ints; the backward's workspace of at most B*T*(8H + D) doubles (x 8 spare). */
al_spec al_lstm_specs[] = {
    {"lstm_forward", F_COUNT, lstm_forward_run,
     "x:B,T,D kernel:D,4H recurrent_kernel:H,4H bias?:4H h0?:B,H c0?:B,H mask?:B,T:bool "
     AL_RNN_ACTS "go_backwards=False dp_mask?:B,4D rec_mask?:B,4H save_act_c=False " OPTIONS
     "save_gates=True -> hs:B,T,H cs:B,T,H out:B,T,H:if=mask gates:B,T,4H:if=save_gates "
     "act_c:B,T,H:if=save_act_c:drop",
     "Low-level LSTM forward over a whole sequence (Keras 3 LSTM semantics). mask nonzero =\n"
     "keep. Dropout masks (training), fixed over time: dp_mask multiplies x and rec_mask\n"
     "h_{t-1}, one mask per gate [i|f|c|o] as Keras 3 LSTMCell draws them when\n"
     "recurrent_dropout > 0 (ops.lstm tiles a shared one).\n"
     "Returns hs and cs in processing order, out the masked output sequence (None without a\n"
     "mask: it equals hs), and gates, the activated gates indexed by time, saved for the\n"
     "backward pass; with save_act_c also act_c = activation(c) per step, which lstm_backward\n"
     "uses instead of recomputing it. save_gates=False (inference: no backward follows)\n"
     "returns None for gates and does not write them, which saves the memory traffic of a\n"
     "(B,T,4H) array.\n"
     "impl (tests and benchmarks): 0 the path chosen at import (ATTNLSTM_ISA, else the\n"
     "CPU's best), 1 generic (portable C), 2 AVX2, 3 AVX-512 (a path above the chosen one\n"
     "falls back to it). A sample's results are the same bits whatever the batch size, its\n"
     "position in the batch and the thread count; AVX2 and AVX-512 give the same bits,\n"
     "generic agrees to rounding.\n"
     "threads: 0 uses set_num_threads' count when the call is large enough to gain from it;\n"
     "n > 0 uses exactly n threads wherever the shapes allow (tests). The work splits by\n"
     "batch rows, or by hidden units for small batches. MemoryError when out of memory.",
     "B,T,D,H", "B*T,T*4H,D,T*H", "B*T*4H", "x,recurrent_kernel,kernel", NULL, "T,H"},
    {"lstm_backward", G_COUNT, lstm_backward_run,
     "hs:B,T,H cs:B,T,H gates:B,T,4H x:B,T,D kernel:D,4H recurrent_kernel:H,4H h0?:B,H c0?:B,H "
     "mask?:B,T:bool dp_mask?:B,4D rec_mask?:B,4H act_c?:B,T,H d_outputs?:B,T,H d_last?:B,H "
     "d_h?:B,H d_c?:B,H " AL_RNN_ACTS "go_backwards=False " OPTIONS "-> dx:B,T,D dkernel:D,4H "
     "drecurrent_kernel:H,4H dbias:4H dh0:B,H dc0:B,H",
     "Low-level LSTM backward (BPTT) over a whole sequence, inverting lstm_forward.\n"
     "hs, cs, gates and act_c (optional) are lstm_forward's saved buffers; the other inputs\n"
     "and options must be the forward's arguments. Upstream gradients (each optional, None =\n"
     "zero): d_outputs w.r.t. the output sequence (processing order), d_last w.r.t. the last\n"
     "output (step T-1), d_h and d_c w.r.t. the final states. dh0 and dc0 are the gradients\n"
     "w.r.t. the initial states, also when they were zeros.\n"
     "impl, threads: as for lstm_forward. Every result is the same bits for any thread count;\n"
     "dx, dh0 and dc0 of a sample also for any batch size and position in the batch.\n"
     "MemoryError when out of memory.",
     "B,T,D,H", "B*T,T*4H,D", "B*T*4H*64,B*T*D*64", "x,recurrent_kernel,kernel", "x", "T,H"},
    {NULL},
};
