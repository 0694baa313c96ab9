/*
 * bind_mha.c -- the multi-head / relative-position attention kernels (mha_impl.h) declared
 * to the front door (bind_spec.h).
 */
#include "bind_spec.h"
#include "al_mha.h"

static const char MHA_FORWARD_DOC[] =
    "mha_forward(query, key, value, query_kernel, query_bias, key_kernel, key_bias,\n"
    "            value_kernel, value_bias, output_kernel, output_bias, attention_mask=None,\n"
    "            query_mask=None, value_mask=None, key_mask=None, causal=False,\n"
    "            fully_masked=0, rel_k=None, rel_v=None, max_relative_position=0)\n"
    "    -> (out, weights, q, k, v, ctx, live)\n\n"
    "Low-level multi-head attention forward (Keras 3 MultiHeadAttention math, optional\n"
    "Shaw et al. 2018 relative positions), one C call for the whole batch.\n\n"
    "query (B,Tq,Dq), key (B,Tv,Dk), value (B,Tv,Dv); query_kernel (Dq,NH,HS), query_bias\n"
    "(NH,HS), key_kernel (Dk,NH,HS), key_bias (NH,HS), value_kernel (Dv,NH,HSv), value_bias\n"
    "(NH,HSv), output_kernel (NH,HSv,Dout), output_bias (Dout,); biases may be None.\n"
    "Masks (nonzero = attend): attention_mask (B,Tq,Tv) or (B,NH,Tq,Tv), query_mask (B,Tq),\n"
    "value_mask (B,Tv), key_mask (B,Tv). fully_masked: 0 = uniform weights (Keras fast path),\n"
    "1 = zero weights (Keras explicit path). rel_k (2K+1,HS), rel_v (2K+1,HSv) with\n"
    "K = max_relative_position. All float arrays share query's dtype (float32 or float64).\n"
    "Returns out (B,Tq,Dout), weights (B,NH,Tq,Tv), and the saved buffers q (B,Tq,NH,HS)\n"
    "(scaled by 1/sqrt(HS)), k (B,Tv,NH,HS), v (B,Tv,NH,HSv), ctx (B,Tq,NH,HSv), live\n"
    "(B,NH,Tq) bool. NaN/inf propagate. Raises TypeError/ValueError/MemoryError on bad input.";

static const char MHA_BACKWARD_DOC[] =
    "mha_backward(d_out, d_weights, weights, q, k, v, ctx, live, query, key, value,\n"
    "             query_kernel, key_kernel, value_kernel, output_kernel, rel_k=None,\n"
    "             rel_v=None, max_relative_position=0, query_bias=True, key_bias=True,\n"
    "             value_bias=True, output_bias=True)\n"
    "    -> (d_query, d_key, d_value, d_query_kernel, d_query_bias, d_key_kernel,\n"
    "        d_key_bias, d_value_kernel, d_value_bias, d_output_kernel, d_output_bias,\n"
    "        d_rel_k, d_rel_v)\n\n"
    "Gradients of mha_forward. d_out (B,Tq,Dout); d_weights (B,NH,Tq,Tv) or None; weights,\n"
    "q, k, v, ctx, live as returned by mha_forward; the other arrays as given to it. The\n"
    "*_bias flags say which bias gradients to compute (None for the others); d_rel_k/d_rel_v\n"
    "are None without rel_k/rel_v.";

enum { L_B, L_Tq, L_Tv, L_Dq, L_Dk, L_Dv, L_NH, L_HS, L_HSv, L_Dout, L_K };
#define LETTERS "B,Tq,Tv,Dq,Dk,Dv,NH,HS,HSv,Dout,K"
/* value before key (key's Tv is value's), the kernels before the biases. */
#define ORDER "query,value,key,query_kernel,key_kernel,value_kernel,output_kernel,rel_k,rel_v"
/* Every size the BLAS sees fits its int; the projected and score buffers fit npy_intp. */
#define BLAS "B*Tq,B*Tq*NH,B*Tv,NH*HS,NH*HSv,Tq*Tv,Dq,Dk,Dv,Dout"
#define FITS "B*Tq*NH*2K+1,Tq*Tv*B*NH,B*Tq*NH*HS*3,B*Tv*NH*HS*3,B*Tq*NH*HSv*3,B*Tv*NH*HSv*3"
#define MAX_REL {"max_relative_position", AL_OPT, 'n', AL_DEF, "K", NULL, 0, 0,               \
                 (double)(AL_BLAS_INT_MAX / 2 - 1)}

enum { F_OUT, F_W, F_Q, F_K, F_V, F_CTX, F_LIVE, F_QUERY, F_KEY, F_VALUE, F_WQ, F_BQ, F_WK,
       F_BK, F_WV, F_BV, F_WO, F_BO, F_AM, F_QM, F_VM, F_KM, F_CAUSAL, F_FULLY, F_RK, F_RV,
       F_KREL, F_COUNT };
static const al_arg MHA_FORWARD[] = {
    {"out", AL_OUT, 'f', 0, "B,Tq,Dout"},
    {"weights", AL_SAVE, 'f', 0, "B,NH,Tq,Tv"},
    {"q", AL_SAVE, 'f', 0, "B,Tq,NH,HS"},
    {"k", AL_SAVE, 'f', 0, "B,Tv,NH,HS"},
    {"v", AL_SAVE, 'f', 0, "B,Tv,NH,HSv"},
    {"ctx", AL_SAVE, 'f', 0, "B,Tq,NH,HSv"},
    {"live", AL_SAVE, 'b', 0, "B,NH,Tq"},
    {"query", AL_IN, 'f', 0, "B,Tq,Dq"},
    {"key", AL_IN, 'f', 0, "B,Tv,Dk"},
    {"value", AL_IN, 'f', 0, "B,Tv,Dv"},
    {"query_kernel", AL_W, 'f', 0, "Dq,NH,HS"},
    {"query_bias", AL_W, 'f', AL_NONE, "NH,HS"},
    {"key_kernel", AL_W, 'f', 0, "Dk,NH,HS"},
    {"key_bias", AL_W, 'f', AL_NONE, "NH,HS"},
    {"value_kernel", AL_W, 'f', 0, "Dv,NH,HSv"},
    {"value_bias", AL_W, 'f', AL_NONE, "NH,HSv"},
    {"output_kernel", AL_W, 'f', 0, "NH,HSv,Dout"},
    {"output_bias", AL_W, 'f', AL_NONE, "Dout"},
    {"attention_mask", AL_IN, 'b', AL_DEF, "B,Tq,Tv|B,NH,Tq,Tv"},
    {"query_mask", AL_IN, 'b', AL_DEF, "B,Tq"},
    {"value_mask", AL_IN, 'b', AL_DEF, "B,Tv"},
    {"key_mask", AL_IN, 'b', AL_DEF, "B,Tv"},
    {"causal", AL_OPT, 'p', AL_DEF},
    {"fully_masked", AL_OPT, 'i', AL_DEF, "", NULL, AL_MHA_FULLY_MASKED_UNIFORM,
     AL_MHA_FULLY_MASKED_UNIFORM, AL_MHA_FULLY_MASKED_ZERO, "0 (uniform) or 1 (zero)"},
    {"rel_k", AL_W, 'f', AL_DEF, "2K+1,HS"},
    {"rel_v", AL_W, 'f', AL_DEF, "2K+1,HSv"},
    MAX_REL,
};
_Static_assert(AL_COUNT(MHA_FORWARD) == F_COUNT, "MHA_FORWARD");

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

static const al_spec MHA_FORWARD_SPEC = {"mha_forward", MHA_FORWARD, F_COUNT, LETTERS, "query",
                                         ORDER, BLAS, FITS, "NH,HS", mha_forward_run};

enum { G_DQUERY, G_DKEY, G_DVALUE, G_DWQ, G_DBQ, G_DWK, G_DBK, G_DWV, G_DBV, G_DWO, G_DBO,
       G_DRK, G_DRV, G_DOUT, G_DW, G_W, G_Q, G_K, G_V, G_CTX, G_LIVE, G_QUERY, G_KEY, G_VALUE,
       G_WQ, G_WK, G_WV, G_WO, G_RK, G_RV, G_KREL, G_HAS_BQ, G_HAS_BK, G_HAS_BV, G_HAS_BO,
       G_COUNT };
static const al_arg MHA_BACKWARD[] = {
    {"d_query", AL_OUT, 'f', 0, "B,Tq,Dq"},
    {"d_key", AL_OUT, 'f', 0, "B,Tv,Dk"},
    {"d_value", AL_OUT, 'f', 0, "B,Tv,Dv"},
    {"d_query_kernel", AL_OUT, 'f', AL_ZERO, "Dq,NH,HS"},
    {"d_query_bias", AL_OUT, 'f', AL_ZERO, "NH,HS", "query_bias"},
    {"d_key_kernel", AL_OUT, 'f', AL_ZERO, "Dk,NH,HS"},
    {"d_key_bias", AL_OUT, 'f', AL_ZERO, "NH,HS", "key_bias"},
    {"d_value_kernel", AL_OUT, 'f', AL_ZERO, "Dv,NH,HSv"},
    {"d_value_bias", AL_OUT, 'f', AL_ZERO, "NH,HSv", "value_bias"},
    {"d_output_kernel", AL_OUT, 'f', AL_ZERO, "NH,HSv,Dout"},
    {"d_output_bias", AL_OUT, 'f', AL_ZERO, "Dout", "output_bias"},
    {"d_rel_k", AL_OUT, 'f', AL_ZERO, "2K+1,HS", "rel_k"},
    {"d_rel_v", AL_OUT, 'f', AL_ZERO, "2K+1,HSv", "rel_v"},
    {"d_out", AL_IN, 'f', 0, "B,Tq,Dout"},
    {"d_weights", AL_IN, 'f', AL_NONE, "B,NH,Tq,Tv"},
    {"weights", AL_SAVED, 'f', 0, "B,NH,Tq,Tv"},
    {"q", AL_SAVED, 'f', 0, "B,Tq,NH,HS"},
    {"k", AL_SAVED, 'f', 0, "B,Tv,NH,HS"},
    {"v", AL_SAVED, 'f', 0, "B,Tv,NH,HSv"},
    {"ctx", AL_SAVED, 'f', 0, "B,Tq,NH,HSv"},
    {"live", AL_SAVED, 'b', 0, "B,NH,Tq"},
    {"query", AL_IN, 'f', 0, "B,Tq,Dq"},
    {"key", AL_IN, 'f', 0, "B,Tv,Dk"},
    {"value", AL_IN, 'f', 0, "B,Tv,Dv"},
    {"query_kernel", AL_W, 'f', 0, "Dq,NH,HS"},
    {"key_kernel", AL_W, 'f', 0, "Dk,NH,HS"},
    {"value_kernel", AL_W, 'f', 0, "Dv,NH,HSv"},
    {"output_kernel", AL_W, 'f', 0, "NH,HSv,Dout"},
    {"rel_k", AL_W, 'f', AL_DEF, "2K+1,HS"},
    {"rel_v", AL_W, 'f', AL_DEF, "2K+1,HSv"},
    MAX_REL,
    {"query_bias", AL_OPT, 'p', AL_DEF, "", NULL, 1},
    {"key_bias", AL_OPT, 'p', AL_DEF, "", NULL, 1},
    {"value_bias", AL_OPT, 'p', AL_DEF, "", NULL, 1},
    {"output_bias", AL_OPT, 'p', AL_DEF, "", NULL, 1},
};
_Static_assert(AL_COUNT(MHA_BACKWARD) == G_COUNT, "MHA_BACKWARD");

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

static const al_spec MHA_BACKWARD_SPEC = {"mha_backward", MHA_BACKWARD, G_COUNT, LETTERS,
                                          "query", ORDER, BLAS, FITS, "NH,HS", mha_backward_run};

AL_ENTRY(py_mha_forward, MHA_FORWARD_SPEC)
AL_ENTRY(py_mha_backward, MHA_BACKWARD_SPEC)

PyMethodDef al_mha_methods[] = {
    AL_METHOD("mha_forward", py_mha_forward, MHA_FORWARD_DOC),
    AL_METHOD("mha_backward", py_mha_backward, MHA_BACKWARD_DOC),
    {NULL, NULL, 0, NULL}
};
