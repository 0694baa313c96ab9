/*
 * bind_mha.c -- the multi-head / relative-position attention kernels (mha_impl.h) declared
 * to the front door (bind_spec.h).
 */
#include "bind_spec.h"
#include "al_mha.h"

enum { L_B, L_Tq, L_Tv, L_Dq, L_Dk, L_Dv, L_NH, L_HS, L_HSv, L_Dout, L_K };
/* value before key (key's Tv is value's), the kernels before the biases. Every size the BLAS
 * sees fits its int; the projected and score buffers fit npy_intp. */
#define SHAPES "B,Tq,Tv,Dq,Dk,Dv,NH,HS,HSv,Dout,K",                                            \
    "B*Tq,B*Tq*NH,B*Tv,NH*HS,NH*HSv,Tq*Tv,Dq,Dk,Dv,Dout",                                     \
    "B*Tq*NH*2K+1,Tq*Tv*B*NH,B*Tq*NH*HS*3,B*Tv*NH*HS*3,B*Tq*NH*HSv*3,B*Tv*NH*HSv*3",           \
    "query,value,key,query_kernel,key_kernel,value_kernel,output_kernel,rel_k,rel_v", "query", \
    "NH,HS"
#define INPUTS "query:B,Tq,Dq key:B,Tv,Dk value:B,Tv,Dv "
/* K is at most the BLAS's int / 2 - 1. */
#define REL "rel_k?:2K+1,HS rel_v?:2K+1,HSv max_relative_position=0:K:0..1073741822 "

enum { F_QUERY, F_KEY, F_VALUE, F_WQ, F_BQ, F_WK, F_BK, F_WV, F_BV, F_WO, F_BO, F_AM, F_QM,
       F_VM, F_KM, F_CAUSAL, F_FULLY, F_RK, F_RV, F_KREL, F_SAVE_W, F_OUT, F_W, F_Q, F_K, F_V,
       F_CTX, F_LIVE, F_COUNT };
/* Tq = Tv = 0: every output is empty; the kernel would loop over B (up to 2**62) doing
 * nothing, with the GIL released (issue #22). The backward's gradients are then zeros. */
static int mha_forward_run(const al_call *c) {
    if (AL_N(L_Tq) == 0 && AL_N(L_Tv) == 0) return AL_OK;
    return AL_DISPATCH(al_mha_forward, AL_P(F_OUT), AL_P(F_W), AL_P(F_Q), AL_P(F_K), AL_P(F_V),
                       AL_P(F_CTX), AL_P(F_LIVE), AL_P(F_QUERY), AL_P(F_KEY), AL_P(F_VALUE),
                       AL_P(F_AM), AL_P(F_QM), AL_P(F_VM), AL_P(F_KM), AL_P(F_WQ), AL_P(F_BQ),
                       AL_P(F_WK), AL_P(F_BK), AL_P(F_WV), AL_P(F_BV), AL_P(F_WO), AL_P(F_BO),
                       AL_P(F_RK), AL_P(F_RV), AL_N(L_B), AL_N(L_Tq), AL_N(L_Tv), AL_N(L_Dq),
                       AL_N(L_Dk), AL_N(L_Dv), AL_N(L_NH), AL_N(L_HS), AL_N(L_HSv), AL_N(L_Dout),
                       AL_N(L_K), c->ndim[F_AM] == 4, AL_I(F_CAUSAL), AL_I(F_FULLY));
}

enum { G_DOUT, G_DW, G_W, G_Q, G_K, G_V, G_CTX, G_LIVE, G_QUERY, G_KEY, G_VALUE, G_WQ, G_WK,
       G_WV, G_WO, G_RK, G_RV, G_KREL, G_HAS_BQ, G_HAS_BK, G_HAS_BV, G_HAS_BO, G_DQUERY, G_DKEY,
       G_DVALUE, G_DWQ, G_DBQ, G_DWK, G_DBK, G_DWV, G_DBV, G_DWO, G_DBO, G_DRK, G_DRV, G_COUNT };
static int mha_backward_run(const al_call *c) {
    if (AL_N(L_Tq) == 0 && AL_N(L_Tv) == 0) return AL_OK;
    return AL_DISPATCH(al_mha_backward, AL_P(G_DQUERY), AL_P(G_DKEY), AL_P(G_DVALUE),
                       AL_P(G_DWQ), AL_P(G_DBQ), AL_P(G_DWK), AL_P(G_DBK), AL_P(G_DWV),
                       AL_P(G_DBV), AL_P(G_DWO), AL_P(G_DBO), AL_P(G_DRK), AL_P(G_DRV),
                       AL_P(G_W), AL_P(G_Q), AL_P(G_K), AL_P(G_V), AL_P(G_CTX), AL_P(G_LIVE),
                       AL_P(G_DOUT), AL_P(G_DW), AL_P(G_QUERY), AL_P(G_KEY), AL_P(G_VALUE),
                       AL_P(G_WQ), AL_P(G_WK), AL_P(G_WV), AL_P(G_WO), AL_P(G_RK), AL_P(G_RV),
                       AL_N(L_B), AL_N(L_Tq), AL_N(L_Tv), AL_N(L_Dq), AL_N(L_Dk), AL_N(L_Dv),
                       AL_N(L_NH), AL_N(L_HS), AL_N(L_HSv), AL_N(L_Dout), AL_N(L_K));
}


al_spec al_mha_specs[] = {
    {"mha_forward", F_COUNT, mha_forward_run,
     INPUTS "query_kernel:Dq,NH,HS query_bias~:NH,HS key_kernel:Dk,NH,HS key_bias~:NH,HS "
     "value_kernel:Dv,NH,HSv value_bias~:NH,HSv output_kernel:NH,HSv,Dout output_bias~:Dout "
     "attention_mask?:B,Tq,Tv|B,NH,Tq,Tv:bool query_mask?:B,Tq:bool value_mask?:B,Tv:bool "
     "key_mask?:B,Tv:bool causal=False fully_masked=0:{uniform,zero} " REL
     "save_weights=True -> out:B,Tq,Dout weights:B,NH,Tq,Tv:if=save_weights q:B,Tq,NH,HS "
     "k:B,Tv,NH,HS v:B,Tv,NH,HSv ctx:B,Tq,NH,HSv live:B,NH,Tq:bool",
     "Low-level multi-head attention forward (Keras 3 MultiHeadAttention math, optional\n"
     "Shaw et al. 2018 relative positions), one C call for the whole batch. Biases may be\n"
     "None; masks nonzero = attend. fully_masked: 0 = uniform weights (Keras fast path),\n"
     "1 = zero weights (Keras explicit path). K = max_relative_position. Returns out,\n"
     "weights (None with save_weights=False: inference, the scores not kept) and the saved\n"
     "buffers q (scaled by 1/sqrt(HS)), k, v, ctx and live. NaN/inf propagate; MemoryError\n"
     "when out of memory.", SHAPES},
    {"mha_backward", G_COUNT, mha_backward_run,
     "d_out:B,Tq,Dout d_weights~:B,NH,Tq,Tv weights:B,NH,Tq,Tv q:B,Tq,NH,HS k:B,Tv,NH,HS "
     "v:B,Tv,NH,HSv ctx:B,Tq,NH,HSv live:B,NH,Tq:bool " INPUTS "query_kernel:Dq,NH,HS "
     "key_kernel:Dk,NH,HS value_kernel:Dv,NH,HSv output_kernel:NH,HSv,Dout " REL
     "query_bias=True key_bias=True value_bias=True output_bias=True -> d_query:B,Tq,Dq "
     "d_key:B,Tv,Dk d_value:B,Tv,Dv d_query_kernel:Dq,NH,HS:zeros "
     "d_query_bias:NH,HS:zeros:if=query_bias d_key_kernel:Dk,NH,HS:zeros "
     "d_key_bias:NH,HS:zeros:if=key_bias d_value_kernel:Dv,NH,HSv:zeros "
     "d_value_bias:NH,HSv:zeros:if=value_bias d_output_kernel:NH,HSv,Dout:zeros "
     "d_output_bias:Dout:zeros:if=output_bias d_rel_k:2K+1,HS:zeros:if=rel_k "
     "d_rel_v:2K+1,HSv:zeros:if=rel_v",
     "Gradients of mha_forward: d_weights may be None; weights, q, k, v, ctx, live as\n"
     "returned by mha_forward; the other arrays as given to it. The *_bias flags say which\n"
     "bias gradients to compute (None for the others); d_rel_k/d_rel_v are None without\n"
     "rel_k/rel_v.", SHAPES},
    {NULL},
};
