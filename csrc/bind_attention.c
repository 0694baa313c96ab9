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
#define LETTERS "B,Tq,Tv,D,Dv,U,Dq"
/* Every size the BLAS sees fits its int; the Tq*Tv (and projection) workspaces fit memory. */
#define BLAS "Tq,Tv,D,Dv,U"
#define FITS "Tq*Tv*8"
#define BAHDANAU_BLAS "Tq,Tv,Dq,Dv,U,B*Tq,B*Tv"
#define BAHDANAU_FITS "Tq*Tv*8,B*Tq*U*8,B*Tv*U*8"

#define SCORE_MODE {"score_mode", AL_OPT, 'i', AL_DEF, "", NULL, AL_SCORE_DOT, AL_SCORE_DOT,  \
                    AL_SCORE_CONCAT, "0 (dot) or 1 (concat)"}

/* ---- dot / concat (Keras Attention) ------------------------------------------------------ */

static const char DOT_FORWARD_DOC[] =
    "dot_attention_forward(query, key, value, query_mask=None, value_mask=None,\n"
    "                      attention_mask=None, causal=False, scale=1.0,\n"
    "                      concat_score_weight=1.0, score_mode=0) -> (out, weights)\n\n"
    "Keras `Attention` forward. query (B,Tq,D), key (B,Tv,D), value (B,Tv,Dv), same float\n"
    "dtype; masks (B,Tq), (B,Tv), (B,Tq,Tv), nonzero = keep. score_mode 0 = dot, 1 = concat.\n"
    "Returns out (B,Tq,Dv) and weights (B,Tq,Tv) (post-softmax, pre-query-mask).";

enum { DF_OUT, DF_W, DF_Q, DF_K, DF_V, DF_QM, DF_VM, DF_AM, DF_CAUSAL, DF_SCALE, DF_CW,
       DF_MODE, DF_COUNT };
static const al_arg DOT_FORWARD[] = {
    {"out", AL_OUT, 'f', 0, "B,Tq,Dv"},
    {"weights", AL_SAVE, 'f', 0, "B,Tq,Tv"},
    {"query", AL_IN, 'f', 0, "B,Tq,D"},
    {"key", AL_IN, 'f', 0, "B,Tv,D"},
    {"value", AL_IN, 'f', 0, "B,Tv,Dv"},
    {"query_mask", AL_IN, 'b', AL_DEF, "B,Tq"},
    {"value_mask", AL_IN, 'b', AL_DEF, "B,Tv"},
    {"attention_mask", AL_IN, 'b', AL_DEF, "B,Tq,Tv"},
    {"causal", AL_OPT, 'p', AL_DEF},
    {"scale", AL_OPT, 'd', AL_DEF, "", NULL, 1.0},
    {"concat_score_weight", AL_OPT, 'd', AL_DEF, "", NULL, 1.0},
    SCORE_MODE,
};
_Static_assert(AL_COUNT(DOT_FORWARD) == DF_COUNT, "DOT_FORWARD");

static int dot_forward_run(const al_call *c) {
    return AL_DISPATCH(al_dot_attention_forward, AL_P(DF_OUT), AL_P(DF_W), AL_P(DF_Q),
                       AL_P(DF_K), AL_P(DF_V), AL_P(DF_QM), AL_P(DF_VM), AL_P(DF_AM),
                       AL_N(L_B), AL_N(L_Tq), AL_N(L_Tv), AL_N(L_D), AL_N(L_Dv),
                       AL_I(DF_CAUSAL), AL_F(DF_SCALE), AL_F(DF_CW), AL_I(DF_MODE));
}

static const al_spec DOT_FORWARD_SPEC = {"dot_attention_forward", DOT_FORWARD, DF_COUNT, LETTERS,
                                         "query", NULL, BLAS, FITS, NULL, dot_forward_run};

static const char DOT_BACKWARD_DOC[] =
    "dot_attention_backward(d_out, d_weights, weights, query, key, value, query_mask=None,\n"
    "                       scale=1.0, concat_score_weight=1.0, score_mode=0)\n"
    "    -> (d_query, d_key, d_value, d_scale, d_concat_score_weight)\n\n"
    "Backward of dot_attention_forward. d_out (B,Tq,Dv); d_weights (B,Tq,Tv) or None;\n"
    "weights (B,Tq,Tv) from the forward. d_scale and d_concat_score_weight are floats\n"
    "(the latter 0.0 in dot mode).";

enum { DB_DQ, DB_DK, DB_DV, DB_DSCALE, DB_DCW, DB_DOUT, DB_DW, DB_W, DB_Q, DB_K, DB_V, DB_QM,
       DB_SCALE, DB_CW, DB_MODE, DB_COUNT };
static const al_arg DOT_BACKWARD[] = {
    {"d_query", AL_OUT, 'f', 0, "B,Tq,D"},
    {"d_key", AL_OUT, 'f', 0, "B,Tv,D"},
    {"d_value", AL_OUT, 'f', 0, "B,Tv,Dv"},
    {"d_scale", AL_OUT, 's', 0, ""},
    {"d_concat_score_weight", AL_OUT, 's', 0, ""},
    {"d_out", AL_IN, 'f', 0, "B,Tq,Dv"},
    {"d_weights", AL_IN, 'f', AL_NONE, "B,Tq,Tv"},
    {"weights", AL_SAVED, 'f', 0, "B,Tq,Tv"},
    {"query", AL_IN, 'f', 0, "B,Tq,D"},
    {"key", AL_IN, 'f', 0, "B,Tv,D"},
    {"value", AL_IN, 'f', 0, "B,Tv,Dv"},
    {"query_mask", AL_IN, 'b', AL_DEF, "B,Tq"},
    {"scale", AL_OPT, 'd', AL_DEF, "", NULL, 1.0},
    {"concat_score_weight", AL_OPT, 'd', AL_DEF, "", NULL, 1.0},
    SCORE_MODE,
};
_Static_assert(AL_COUNT(DOT_BACKWARD) == DB_COUNT, "DOT_BACKWARD");

static int dot_backward_run(const al_call *c) {
    return AL_DISPATCH(al_dot_attention_backward, AL_P(DB_DQ), AL_P(DB_DK), AL_P(DB_DV),
                       AL_P(DB_DSCALE), AL_P(DB_DCW), AL_P(DB_W), AL_P(DB_DOUT), AL_P(DB_DW),
                       AL_P(DB_Q), AL_P(DB_K), AL_P(DB_V), AL_P(DB_QM), AL_N(L_B), AL_N(L_Tq),
                       AL_N(L_Tv), AL_N(L_D), AL_N(L_Dv), AL_F(DB_SCALE), AL_F(DB_CW),
                       AL_I(DB_MODE));
}

/* query, key, value first: their letters name the expected shapes of the others. */
static const al_spec DOT_BACKWARD_SPEC = {"dot_attention_backward", DOT_BACKWARD, DB_COUNT,
                                          LETTERS, "query", "query,key,value", BLAS, FITS,
                                          NULL, dot_backward_run};

/* ---- additive (Keras AdditiveAttention) -------------------------------------------------- */

static const char ADD_FORWARD_DOC[] =
    "additive_attention_forward(query, key, value, scale=None, query_mask=None,\n"
    "                           value_mask=None, attention_mask=None, causal=False)\n"
    "    -> (out, weights)\n\n"
    "Keras `AdditiveAttention` forward: scores = sum_u scale[u] tanh(q[i,u] + k[j,u]).\n"
    "query (B,Tq,U), key (B,Tv,U), value (B,Tv,Dv), scale (U,) or None (ones).";

enum { AF_OUT, AF_W, AF_Q, AF_K, AF_V, AF_S, AF_QM, AF_VM, AF_AM, AF_CAUSAL, AF_COUNT };
static const al_arg ADD_FORWARD[] = {
    {"out", AL_OUT, 'f', 0, "B,Tq,Dv"},
    {"weights", AL_SAVE, 'f', 0, "B,Tq,Tv"},
    {"query", AL_IN, 'f', 0, "B,Tq,U"},
    {"key", AL_IN, 'f', 0, "B,Tv,U"},
    {"value", AL_IN, 'f', 0, "B,Tv,Dv"},
    {"scale", AL_W, 'f', AL_DEF, "U"},
    {"query_mask", AL_IN, 'b', AL_DEF, "B,Tq"},
    {"value_mask", AL_IN, 'b', AL_DEF, "B,Tv"},
    {"attention_mask", AL_IN, 'b', AL_DEF, "B,Tq,Tv"},
    {"causal", AL_OPT, 'p', AL_DEF},
};
_Static_assert(AL_COUNT(ADD_FORWARD) == AF_COUNT, "ADD_FORWARD");

static int add_forward_run(const al_call *c) {
    return AL_DISPATCH(al_additive_attention_forward, AL_P(AF_OUT), AL_P(AF_W), AL_P(AF_Q),
                       AL_P(AF_K), AL_P(AF_V), AL_P(AF_QM), AL_P(AF_VM), AL_P(AF_AM),
                       AL_P(AF_S), AL_N(L_B), AL_N(L_Tq), AL_N(L_Tv), AL_N(L_U), AL_N(L_Dv),
                       AL_I(AF_CAUSAL));
}

static const al_spec ADD_FORWARD_SPEC = {"additive_attention_forward", ADD_FORWARD, AF_COUNT,
                                         LETTERS, "query", NULL, BLAS, FITS, NULL,
                                         add_forward_run};

static const char ADD_BACKWARD_DOC[] =
    "additive_attention_backward(d_out, d_weights, weights, query, key, value, scale=None,\n"
    "                            query_mask=None) -> (d_query, d_key, d_value, d_scale)\n\n"
    "Backward of additive_attention_forward; d_scale (U,) is None when scale is None.";

enum { AB_DQ, AB_DK, AB_DV, AB_DS, AB_DOUT, AB_DW, AB_W, AB_Q, AB_K, AB_V, AB_S, AB_QM,
       AB_COUNT };
static const al_arg ADD_BACKWARD[] = {
    {"d_query", AL_OUT, 'f', 0, "B,Tq,U"},
    {"d_key", AL_OUT, 'f', 0, "B,Tv,U"},
    {"d_value", AL_OUT, 'f', 0, "B,Tv,Dv"},
    {"d_scale", AL_OUT, 'f', 0, "U", "scale"},
    {"d_out", AL_IN, 'f', 0, "B,Tq,Dv"},
    {"d_weights", AL_IN, 'f', AL_NONE, "B,Tq,Tv"},
    {"weights", AL_SAVED, 'f', 0, "B,Tq,Tv"},
    {"query", AL_IN, 'f', 0, "B,Tq,U"},
    {"key", AL_IN, 'f', 0, "B,Tv,U"},
    {"value", AL_IN, 'f', 0, "B,Tv,Dv"},
    {"scale", AL_W, 'f', AL_DEF, "U"},
    {"query_mask", AL_IN, 'b', AL_DEF, "B,Tq"},
};
_Static_assert(AL_COUNT(ADD_BACKWARD) == AB_COUNT, "ADD_BACKWARD");

static int add_backward_run(const al_call *c) {
    return AL_DISPATCH(al_additive_attention_backward, AL_P(AB_DQ), AL_P(AB_DK), AL_P(AB_DV),
                       AL_P(AB_DS), AL_P(AB_W), AL_P(AB_DOUT), AL_P(AB_DW), AL_P(AB_Q),
                       AL_P(AB_K), AL_P(AB_V), AL_P(AB_QM), AL_P(AB_S), AL_N(L_B), AL_N(L_Tq),
                       AL_N(L_Tv), AL_N(L_U), AL_N(L_Dv));
}

static const al_spec ADD_BACKWARD_SPEC = {"additive_attention_backward", ADD_BACKWARD, AB_COUNT,
                                          LETTERS, "query", "query,key,value", BLAS, FITS, NULL,
                                          add_backward_run};

/* ---- Bahdanau with learned projections --------------------------------------------------- */

static const char BAHDANAU_FORWARD_DOC[] =
    "bahdanau_forward(query, values, W1, W2, V, b1=None, b2=None, keys=None,\n"
    "                 query_mask=None, value_mask=None, attention_mask=None, causal=False)\n"
    "    -> (out, weights, qp, kp)\n\n"
    "scores = sum_u V[u] tanh((values W1 + b1)[j,u] + (query W2 + b2)[i,u]).\n"
    "query (B,Tq,Dq), values (B,Tv,Dv), W1 (Dv,U), W2 (Dq,U), V (U,), b1/b2 (U,);\n"
    "keys (B,Tv,U) = values W1 + b1 precomputed (kp is then None). Returns out (B,Tq,Dv),\n"
    "weights (B,Tq,Tv), qp (B,Tq,U) and kp (B,Tv,U), saved for the backward.";

enum { BF_OUT, BF_W, BF_QP, BF_KP, BF_Q, BF_X, BF_W1, BF_W2, BF_V, BF_B1, BF_B2, BF_KEYS,
       BF_QM, BF_VM, BF_AM, BF_CAUSAL, BF_COUNT };
static const al_arg BAHDANAU_FORWARD[] = {
    {"out", AL_OUT, 'f', 0, "B,Tq,Dv"},
    {"weights", AL_SAVE, 'f', 0, "B,Tq,Tv"},
    {"qp", AL_SAVE, 'f', 0, "B,Tq,U"},
    {"kp", AL_SAVE, 'f', 0, "B,Tv,U", "!keys"},
    {"query", AL_IN, 'f', 0, "B,Tq,Dq"},
    {"values", AL_IN, 'f', 0, "B,Tv,Dv"},
    {"W1", AL_W, 'f', 0, "Dv,U"},
    {"W2", AL_W, 'f', 0, "Dq,U"},
    {"V", AL_W, 'f', 0, "U"},
    {"b1", AL_W, 'f', AL_DEF, "U"},
    {"b2", AL_W, 'f', AL_DEF, "U"},
    {"keys", AL_IN, 'f', AL_DEF, "B,Tv,U"},
    {"query_mask", AL_IN, 'b', AL_DEF, "B,Tq"},
    {"value_mask", AL_IN, 'b', AL_DEF, "B,Tv"},
    {"attention_mask", AL_IN, 'b', AL_DEF, "B,Tq,Tv"},
    {"causal", AL_OPT, 'p', AL_DEF},
};
_Static_assert(AL_COUNT(BAHDANAU_FORWARD) == BF_COUNT, "BAHDANAU_FORWARD");

static int bahdanau_forward_run(const al_call *c) {
    return AL_DISPATCH(al_bahdanau_forward, AL_P(BF_OUT), AL_P(BF_W), AL_P(BF_QP), AL_P(BF_KP),
                       AL_P(BF_Q), AL_P(BF_X), AL_P(BF_KEYS), AL_P(BF_QM), AL_P(BF_VM),
                       AL_P(BF_AM), AL_P(BF_W1), AL_P(BF_B1), AL_P(BF_W2), AL_P(BF_B2),
                       AL_P(BF_V), AL_N(L_B), AL_N(L_Tq), AL_N(L_Tv), AL_N(L_Dq), AL_N(L_Dv),
                       AL_N(L_U), AL_I(BF_CAUSAL));
}

static const al_spec BAHDANAU_FORWARD_SPEC = {"bahdanau_forward", BAHDANAU_FORWARD, BF_COUNT,
                                              LETTERS, "query", "query,values,V", BAHDANAU_BLAS,
                                              BAHDANAU_FITS, NULL, bahdanau_forward_run};

static const char BAHDANAU_BACKWARD_DOC[] =
    "bahdanau_backward(d_out, d_weights, weights, qp, kp, query, values, W1, W2, V,\n"
    "                  query_mask=None, with_b1=False, with_b2=False)\n"
    "    -> (d_query, d_values, d_W1, d_W2, d_V, d_b1, d_b2)\n\n"
    "Backward of bahdanau_forward; kp are the keys the forward used. d_b1/d_b2 are None\n"
    "unless with_b1/with_b2.";

enum { BB_DQ, BB_DX, BB_DW1, BB_DW2, BB_DV, BB_DB1, BB_DB2, BB_DOUT, BB_DW, BB_W, BB_QP,
       BB_KP, BB_Q, BB_X, BB_W1, BB_W2, BB_V, BB_QM, BB_WITH_B1, BB_WITH_B2, BB_COUNT };
static const al_arg BAHDANAU_BACKWARD[] = {
    {"d_query", AL_OUT, 'f', 0, "B,Tq,Dq"},
    {"d_values", AL_OUT, 'f', 0, "B,Tv,Dv"},
    {"d_W1", AL_OUT, 'f', 0, "Dv,U"},
    {"d_W2", AL_OUT, 'f', 0, "Dq,U"},
    {"d_V", AL_OUT, 'f', 0, "U"},
    {"d_b1", AL_OUT, 'f', 0, "U", "with_b1"},
    {"d_b2", AL_OUT, 'f', 0, "U", "with_b2"},
    {"d_out", AL_IN, 'f', 0, "B,Tq,Dv"},
    {"d_weights", AL_IN, 'f', AL_NONE, "B,Tq,Tv"},
    {"weights", AL_SAVED, 'f', 0, "B,Tq,Tv"},
    {"qp", AL_SAVED, 'f', 0, "B,Tq,U"},
    {"kp", AL_SAVED, 'f', 0, "B,Tv,U"},
    {"query", AL_IN, 'f', 0, "B,Tq,Dq"},
    {"values", AL_IN, 'f', 0, "B,Tv,Dv"},
    {"W1", AL_W, 'f', 0, "Dv,U"},
    {"W2", AL_W, 'f', 0, "Dq,U"},
    {"V", AL_W, 'f', 0, "U"},
    {"query_mask", AL_IN, 'b', AL_DEF, "B,Tq"},
    {"with_b1", AL_OPT, 'p', AL_DEF},
    {"with_b2", AL_OPT, 'p', AL_DEF},
};
_Static_assert(AL_COUNT(BAHDANAU_BACKWARD) == BB_COUNT, "BAHDANAU_BACKWARD");

static int bahdanau_backward_run(const al_call *c) {
    return AL_DISPATCH(al_bahdanau_backward, AL_P(BB_DQ), AL_P(BB_DX), AL_P(BB_DW1),
                       AL_P(BB_DB1), AL_P(BB_DW2), AL_P(BB_DB2), AL_P(BB_DV), AL_P(BB_W),
                       AL_P(BB_QP), AL_P(BB_KP), AL_P(BB_DOUT), AL_P(BB_DW), AL_P(BB_Q),
                       AL_P(BB_X), AL_P(BB_QM), AL_P(BB_W1), AL_P(BB_W2), AL_P(BB_V),
                       AL_N(L_B), AL_N(L_Tq), AL_N(L_Tv), AL_N(L_Dq), AL_N(L_Dv), AL_N(L_U));
}

static const al_spec BAHDANAU_BACKWARD_SPEC = {"bahdanau_backward", BAHDANAU_BACKWARD,
                                               BB_COUNT, LETTERS, "query",
                                               "query,values,V", BAHDANAU_BLAS, BAHDANAU_FITS, NULL,
                                               bahdanau_backward_run};

AL_ENTRY(py_dot_forward, DOT_FORWARD_SPEC)
AL_ENTRY(py_dot_backward, DOT_BACKWARD_SPEC)
AL_ENTRY(py_add_forward, ADD_FORWARD_SPEC)
AL_ENTRY(py_add_backward, ADD_BACKWARD_SPEC)
AL_ENTRY(py_bahdanau_forward, BAHDANAU_FORWARD_SPEC)
AL_ENTRY(py_bahdanau_backward, BAHDANAU_BACKWARD_SPEC)

PyMethodDef al_attention_methods[] = {
    AL_METHOD("dot_attention_forward", py_dot_forward, DOT_FORWARD_DOC),
    AL_METHOD("dot_attention_backward", py_dot_backward, DOT_BACKWARD_DOC),
    AL_METHOD("additive_attention_forward", py_add_forward, ADD_FORWARD_DOC),
    AL_METHOD("additive_attention_backward", py_add_backward, ADD_BACKWARD_DOC),
    AL_METHOD("bahdanau_forward", py_bahdanau_forward, BAHDANAU_FORWARD_DOC),
    AL_METHOD("bahdanau_backward", py_bahdanau_backward, BAHDANAU_BACKWARD_DOC),
    {NULL, NULL, 0, NULL}
};
