/*
 * bind_gru.c -- the GRU kernels (gru_impl.h) declared to the front door (bind_spec.h). Strict
 * shapes: the flexible forms (a shared dropout mask, None states) are resolved by ops.gru.
 */
#include "bind_spec.h"

enum { L_B, L_T, L_D, L_H };
/* H from recurrent_kernel names (D, 3H); the BLAS's ints, and the workspace of at most
 * B*T*(9H + D) reals (x 4 spare). */
#define SHAPES "B,T,D,H", "B*T,T*3H,D", "B*T*3H*32,B*T*D*32", "x,recurrent_kernel,kernel", "x", \
               "T,H"
#define OPTIONS "reset_after=True go_backwards=False " AL_IMPL("generic")

enum { F_X, F_W, F_U, F_BIAS, F_H0, F_MASK, F_ACT, F_RACT, F_RA, F_BACK, F_DP, F_REC, F_IMPL,
       F_SAVE_GATES, F_THREADS, F_HS, F_OUT, F_GATES, F_RH, F_COUNT };
static int gru_forward_run(const al_call *c) {
    return AL_DISPATCH(al_gru_forward_impl, AL_P(F_HS), AL_P(F_OUT), AL_P(F_GATES), AL_P(F_RH),
                       AL_P(F_X), AL_P(F_H0), AL_P(F_MASK), AL_P(F_DP), AL_P(F_REC), AL_P(F_W),
                       AL_P(F_U), AL_P(F_BIAS), AL_N(L_B), AL_N(L_T), AL_N(L_D), AL_N(L_H),
                       AL_I(F_ACT), AL_I(F_RACT), AL_I(F_RA), AL_I(F_BACK), AL_I(F_IMPL),
                       AL_THREADS(F_THREADS));
}

enum { G_HS, G_GATES, G_RH, G_X, G_W, G_U, G_H0, G_MASK, G_DP, G_REC, G_DOUT, G_DLAST, G_DH,
       G_ACT, G_RACT, G_RA, G_BACK, G_IMPL, G_THREADS, G_DX, G_DW, G_DU, G_DB, G_DH0, G_COUNT };
static int gru_backward_run(const al_call *c) {
    return AL_DISPATCH(al_gru_backward_impl, AL_P(G_DX), AL_P(G_DW), AL_P(G_DU), AL_P(G_DB),
                       AL_P(G_DH0), AL_P(G_HS), AL_P(G_GATES), AL_P(G_RH), AL_P(G_DOUT),
                       AL_P(G_DLAST), AL_P(G_DH), AL_P(G_X), AL_P(G_H0), AL_P(G_MASK),
                       AL_P(G_DP), AL_P(G_REC), AL_P(G_W), AL_P(G_U), AL_N(L_B), AL_N(L_T),
                       AL_N(L_D), AL_N(L_H), AL_I(G_ACT), AL_I(G_RACT), AL_I(G_RA),
                       AL_I(G_BACK), AL_I(G_IMPL), AL_THREADS(G_THREADS));
}

al_spec al_gru_specs[] = {
    {"gru_forward", F_COUNT, gru_forward_run,
     "x:B,T,D kernel:D,3H recurrent_kernel:H,3H bias?:2,3H|3H:pick=reset_after h0?:B,H "
     "mask?:B,T:bool " AL_RNN_ACTS "reset_after=True go_backwards=False dp_mask?:B,3D "
     "rec_mask?:B,3H " AL_IMPL("generic") "save_gates=True " AL_THREADS_ARG(64) "-> hs:B,T,H "
     "out:B,T,H:if=mask gates:B,T,3H:if=save_gates rh:B,T,H:if=save_gates&reset_after",
     "Low-level GRU forward over a whole sequence (Keras 3 GRU semantics, gates [z|r|h]).\n"
     "bias (2,3H) with reset_after, else (3H,); mask nonzero = keep; dp_mask and rec_mask are\n"
     "per-gate dropout masks (training).\n"
     "Returns hs in processing order, out the masked output sequence (None without a mask: it\n"
     "equals hs), and the saved buffers gates (activated z, r, n by time) and rh (reset_after:\n"
     "the h block of the recurrent product with its bias; 0 at masked steps), both None with\n"
     "save_gates=False (inference), rh None without reset_after.\n"
     "impl: 0 the selected path, 1 generic, 2 / 3 AVX2 / AVX-512 (tests; no BLAS on any).\n"
     "threads: 0 uses set_num_threads' count when the call is large enough; n > 0 exactly n\n"
     "(tests). Threads split the batch rows; results are bitwise the same.\n"
     "MemoryError when out of memory.", SHAPES},
    {"gru_backward", G_COUNT, gru_backward_run,
     "hs:B,T,H gates:B,T,3H rh~:B,T,H|B,T,H:pick=reset_after x:B,T,D kernel:D,3H "
     "recurrent_kernel:H,3H h0?:B,H mask?:B,T:bool dp_mask?:B,3D rec_mask?:B,3H "
     "d_outputs?:B,T,H d_last?:B,H d_h?:B,H " AL_RNN_ACTS OPTIONS AL_THREADS_ARG(64)
     "-> dx:B,T,D dkernel:D,3H drecurrent_kernel:H,3H dbias:2,3H|3H:pick=reset_after dh0:B,H",
     "Low-level GRU backward (BPTT), inverting gru_forward. hs, gates, rh are gru_forward's\n"
     "saved buffers (rh None without reset_after); the other inputs and the options must be\n"
     "the forward's. Upstream gradients (None = zero): d_outputs w.r.t. the output sequence\n"
     "(processing order), d_last w.r.t. the last output, d_h w.r.t. the final state.\n"
     "MemoryError when out of memory.", SHAPES},
    {NULL},
};
