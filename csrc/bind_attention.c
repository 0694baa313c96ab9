/*
 * bind_attention.c -- the attention kernels (attention_impl.h) declared to the front door
 * (bind_spec.h). Empty axes are defined: B, Tq or Dv == 0 give empty results; Tv == 0 (no
 * keys) gives empty weights (B,Tq,0) and a zero context, the value of an empty weighted sum
 * (what Keras' matmul returns). NaN/inf inputs propagate (no check, no crash).
 */
#include "bind_spec.h"
#include "al_attention.h"

/* Legend letters, in the order of every spec's `letters`. */
enum { L_B, L_Tq, L_Tv, L_D, L_Dv, L_U, L_Dq };
/* Every size the BLAS sees fits its int; the Tq*Tv (and projection) workspaces fit memory;
 * query, key, value first: their letters name the expected shapes of the others. */
#define SHAPES "B,Tq,Tv,D,Dv,U,Dq", "Tq,Tv,D,Dv,U", "Tq*Tv*8", "query,key,value"
#define BAHDANAU_SHAPES "B,Tq,Tv,D,Dv,U,Dq", "Tq,Tv,Dq,Dv,U,B*Tq,B*Tv", \
                        "Tq*Tv*8,B*Tq*U*8,B*Tv*U*8", "query,values,V"
#define MASKS "query_mask?:B,Tq:bool value_mask?:B,Tv:bool attention_mask?:B,Tq,Tv:bool "
#define SCORE_WEIGHTS "scale=1.0 concat_score_weight=1.0 score_mode=0:{dot,concat} "

enum { DF_Q, DF_K, DF_V, DF_QM, DF_VM, DF_AM, DF_CAUSAL, DF_SCALE, DF_CW, DF_MODE, DF_OUT,
       DF_W, DF_COUNT };
static int dot_forward_run(const al_call *c) {
    return AL_DISPATCH(al_dot_attention_forward, AL_P(DF_OUT), AL_P(DF_W), AL_P(DF_Q),
                       AL_P(DF_K), AL_P(DF_V), AL_P(DF_QM), AL_P(DF_VM), AL_P(DF_AM),
                       AL_N(L_B), AL_N(L_Tq), AL_N(L_Tv), AL_N(L_D), AL_N(L_Dv),
                       AL_I(DF_CAUSAL), AL_F(DF_SCALE), AL_F(DF_CW), AL_I(DF_MODE));
}

enum { DB_DOUT, DB_DW, DB_W, DB_Q, DB_K, DB_V, DB_QM, DB_SCALE, DB_CW, DB_MODE, DB_DQ, DB_DK,
       DB_DV, DB_DSCALE, DB_DCW, DB_COUNT };
static int dot_backward_run(const al_call *c) {
    return AL_DISPATCH(al_dot_attention_backward, AL_P(DB_DQ), AL_P(DB_DK), AL_P(DB_DV),
                       AL_P(DB_DSCALE), AL_P(DB_DCW), AL_P(DB_W), AL_P(DB_DOUT), AL_P(DB_DW),
                       AL_P(DB_Q), AL_P(DB_K), AL_P(DB_V), AL_P(DB_QM), AL_N(L_B), AL_N(L_Tq),
                       AL_N(L_Tv), AL_N(L_D), AL_N(L_Dv), AL_F(DB_SCALE), AL_F(DB_CW),
                       AL_I(DB_MODE));
}

enum { AF_Q, AF_K, AF_V, AF_S, AF_QM, AF_VM, AF_AM, AF_CAUSAL, AF_OUT, AF_W, AF_COUNT };
static int add_forward_run(const al_call *c) {
    return AL_DISPATCH(al_additive_attention_forward, AL_P(AF_OUT), AL_P(AF_W), AL_P(AF_Q),
                       AL_P(AF_K), AL_P(AF_V), AL_P(AF_QM), AL_P(AF_VM), AL_P(AF_AM),
                       AL_P(AF_S), AL_N(L_B), AL_N(L_Tq), AL_N(L_Tv), AL_N(L_U), AL_N(L_Dv),
                       AL_I(AF_CAUSAL));
}

enum { AB_DOUT, AB_DW, AB_W, AB_Q, AB_K, AB_V, AB_S, AB_QM, AB_DQ, AB_DK, AB_DV, AB_DS,
       AB_COUNT };
static int add_backward_run(const al_call *c) {
    return AL_DISPATCH(al_additive_attention_backward, AL_P(AB_DQ), AL_P(AB_DK), AL_P(AB_DV),
                       AL_P(AB_DS), AL_P(AB_W), AL_P(AB_DOUT), AL_P(AB_DW), AL_P(AB_Q),
                       AL_P(AB_K), AL_P(AB_V), AL_P(AB_QM), AL_P(AB_S), AL_N(L_B), AL_N(L_Tq),
                       AL_N(L_Tv), AL_N(L_U), AL_N(L_Dv));
}

enum { BF_Q, BF_X, BF_W1, BF_W2, BF_V, BF_B1, BF_B2, BF_KEYS, BF_QM, BF_VM, BF_AM, BF_CAUSAL,
       BF_OUT, BF_W, BF_QP, BF_KP, BF_COUNT };
static int bahdanau_forward_run(const al_call *c) {
    return AL_DISPATCH(al_bahdanau_forward, AL_P(BF_OUT), AL_P(BF_W), AL_P(BF_QP), AL_P(BF_KP),
                       AL_P(BF_Q), AL_P(BF_X), AL_P(BF_KEYS), AL_P(BF_QM), AL_P(BF_VM),
                       AL_P(BF_AM), AL_P(BF_W1), AL_P(BF_B1), AL_P(BF_W2), AL_P(BF_B2),
                       AL_P(BF_V), AL_N(L_B), AL_N(L_Tq), AL_N(L_Tv), AL_N(L_Dq), AL_N(L_Dv),
                       AL_N(L_U), AL_I(BF_CAUSAL));
}

enum { BB_DOUT, BB_DW, BB_W, BB_QP, BB_KP, BB_Q, BB_X, BB_W1, BB_W2, BB_V, BB_QM, BB_WITH_B1,
       BB_WITH_B2, BB_DQ, BB_DX, BB_DW1, BB_DW2, BB_DV, BB_DB1, BB_DB2, BB_COUNT };
static int bahdanau_backward_run(const al_call *c) {
    return AL_DISPATCH(al_bahdanau_backward, AL_P(BB_DQ), AL_P(BB_DX), AL_P(BB_DW1),
                       AL_P(BB_DB1), AL_P(BB_DW2), AL_P(BB_DB2), AL_P(BB_DV), AL_P(BB_W),
                       AL_P(BB_QP), AL_P(BB_KP), AL_P(BB_DOUT), AL_P(BB_DW), AL_P(BB_Q),
                       AL_P(BB_X), AL_P(BB_QM), AL_P(BB_W1), AL_P(BB_W2), AL_P(BB_V),
                       AL_N(L_B), AL_N(L_Tq), AL_N(L_Tv), AL_N(L_Dq), AL_N(L_Dv), AL_N(L_U));
}

al_spec al_attention_specs[] = {
    {"dot_attention_forward", DF_COUNT, dot_forward_run,
     "query:B,Tq,D key:B,Tv,D value:B,Tv,Dv " MASKS "causal=False " SCORE_WEIGHTS
     "-> out:B,Tq,Dv weights:B,Tq,Tv",
     "Keras `Attention` forward; masks nonzero = keep; score_mode 0 = dot, 1 = concat.\n"
     "weights are post-softmax, pre-query-mask.", SHAPES},
    {"dot_attention_backward", DB_COUNT, dot_backward_run,
     "d_out:B,Tq,Dv d_weights~:B,Tq,Tv weights:B,Tq,Tv query:B,Tq,D key:B,Tv,D value:B,Tv,Dv "
     "query_mask?:B,Tq:bool " SCORE_WEIGHTS "-> d_query:B,Tq,D d_key:B,Tv,D d_value:B,Tv,Dv "
     "d_scale: d_concat_score_weight:",
     "Backward of dot_attention_forward, given its weights; d_weights may be None.\n"
     "d_concat_score_weight is 0.0 in dot mode.", SHAPES, "query"},
    {"additive_attention_forward", AF_COUNT, add_forward_run,
     "query:B,Tq,U key:B,Tv,U value:B,Tv,Dv scale?:U " MASKS "causal=False "
     "-> out:B,Tq,Dv weights:B,Tq,Tv",
     "Keras `AdditiveAttention` forward: scores = sum_u scale[u] tanh(q[i,u] + k[j,u]);\n"
     "scale None means ones.", SHAPES},
    {"additive_attention_backward", AB_COUNT, add_backward_run,
     "d_out:B,Tq,Dv d_weights~:B,Tq,Tv weights:B,Tq,Tv query:B,Tq,U key:B,Tv,U value:B,Tv,Dv "
     "scale?:U query_mask?:B,Tq:bool -> d_query:B,Tq,U d_key:B,Tv,U d_value:B,Tv,Dv "
     "d_scale:U:if=scale",
     "Backward of additive_attention_forward; d_scale is None when scale is None.", SHAPES,
     "query"},
    {"bahdanau_forward", BF_COUNT, bahdanau_forward_run,
     "query:B,Tq,Dq values:B,Tv,Dv W1:Dv,U W2:Dq,U V:U b1?:U b2?:U keys?:B,Tv,U " MASKS
     "causal=False -> out:B,Tq,Dv weights:B,Tq,Tv qp:B,Tq,U kp:B,Tv,U:if=!keys",
     "scores = sum_u V[u] tanh((values W1 + b1)[j,u] + (query W2 + b2)[i,u]); keys =\n"
     "values W1 + b1 precomputed (kp is then None). qp and kp are saved for the backward.",
     BAHDANAU_SHAPES},
    {"bahdanau_backward", BB_COUNT, bahdanau_backward_run,
     "d_out:B,Tq,Dv d_weights~:B,Tq,Tv weights:B,Tq,Tv qp:B,Tq,U kp:B,Tv,U query:B,Tq,Dq "
     "values:B,Tv,Dv W1:Dv,U W2:Dq,U V:U query_mask?:B,Tq:bool with_b1=False with_b2=False "
     "-> d_query:B,Tq,Dq d_values:B,Tv,Dv d_W1:Dv,U d_W2:Dq,U d_V:U d_b1:U:if=with_b1 "
     "d_b2:U:if=with_b2",
     "Backward of bahdanau_forward; kp are the keys the forward used. d_b1/d_b2 are None\n"
     "unless with_b1/with_b2.", BAHDANAU_SHAPES, "query"},
    {NULL},
};
