/*
 * al_attention.h -- prototypes of the attention kernels (attention_impl.h), for float32 (_f32)
 * and float64 (_f64). Shapes are documented at each definition; argument order is outputs,
 * saved-for-backward buffers, inputs, weights, then size_t dimensions, then options.
 *
 * Legend: B batch, Tq query steps, Tv key/value steps, D query/key features (dot and concat
 * scores), Dv value features, U additive units (query/key features of the additive kernel),
 * Dq raw query features of the Bahdanau form.
 *
 * Masks are uint8 arrays (nonzero = keep) or NULL. Keras 3 semantics (attention.py,
 * _calculate_score_mask/_apply_scores): a key j is masked for query i when
 *     value_mask[b,j] == 0  or  attention_mask[b,i,j] == 0  or  (causal and j > i),
 * and a masked score becomes `score - AL_ATTN_MASK_PENALTY` in the compute dtype (not -inf,
 * not a constant). Softmax over the keys follows; a row whose keys are all masked is
 * therefore near-uniform (finite, never NaN), exactly as Keras. A query_mask[b,i] == 0 only
 * zeroes the output row i; the returned weights are post-softmax and pre-query-mask.
 */
#ifndef AL_ATTENTION_H
#define AL_ATTENTION_H

#include "al_common.h"

/* Keras' masked-score penalty for float32/float64 (attention.py: `scores - 1e9`; float16
 * would use 65504, which attnlstm does not compute in). Exactly representable in float32. */
#define AL_ATTN_MASK_PENALTY 1.0e9

/* Score modes of the dot-attention kernel (Keras Attention `score_mode`). */
enum {
    AL_SCORE_DOT = 0,      /* scores = scale * (Q K^T)                                  */
    AL_SCORE_CONCAT = 1    /* scores = cw * sum_d tanh(scale * (Q[:,:,None,d] + K[:,None,:,d])) */
};

#define AL_DECLARE_ATTENTION(sfx, real)                                                         \
    int al_dot_attention_forward_##sfx(                                                         \
        real *out, real *weights,                                                               \
        const real *q, const real *k, const real *v,                                            \
        const uint8_t *query_mask, const uint8_t *value_mask, const uint8_t *attention_mask,    \
        size_t B, size_t Tq, size_t Tv, size_t D, size_t Dv,                                    \
        int causal, real scale, real concat_score_weight, int score_mode);                      \
    int al_dot_attention_backward_##sfx(                                                        \
        real *dq, real *dk, real *dv, real *dscale, real *dconcat_score_weight,                 \
        const real *weights, const real *dout, const real *dweights,                            \
        const real *q, const real *k, const real *v, const uint8_t *query_mask,                 \
        size_t B, size_t Tq, size_t Tv, size_t D, size_t Dv,                                    \
        real scale, real concat_score_weight, int score_mode);                                  \
    int al_additive_attention_forward_##sfx(                                                    \
        real *out, real *weights,                                                               \
        const real *q, const real *k, const real *v,                                            \
        const uint8_t *query_mask, const uint8_t *value_mask, const uint8_t *attention_mask,    \
        const real *scale,                                                                      \
        size_t B, size_t Tq, size_t Tv, size_t U, size_t Dv, int causal);                       \
    int al_additive_attention_backward_##sfx(                                                   \
        real *dq, real *dk, real *dv, real *dscale,                                             \
        const real *weights, const real *dout, const real *dweights,                            \
        const real *q, const real *k, const real *v, const uint8_t *query_mask,                 \
        const real *scale,                                                                      \
        size_t B, size_t Tq, size_t Tv, size_t U, size_t Dv);                                   \
    int al_bahdanau_forward_##sfx(                                                              \
        real *out, real *weights, real *qp, real *kp,                                           \
        const real *query, const real *values, const real *keys,                                \
        const uint8_t *query_mask, const uint8_t *value_mask, const uint8_t *attention_mask,    \
        const real *W1, const real *b1, const real *W2, const real *b2, const real *V,          \
        size_t B, size_t Tq, size_t Tv, size_t Dq, size_t Dv, size_t U, int causal);           \
    int al_bahdanau_backward_##sfx(                                                             \
        real *dquery, real *dvalues, real *dW1, real *db1, real *dW2, real *db2, real *dV,      \
        const real *weights, const real *qp, const real *kp,                                    \
        const real *dout, const real *dweights,                                                 \
        const real *query, const real *values, const uint8_t *query_mask,                       \
        const real *W1, const real *W2, const real *V,                                          \
        size_t B, size_t Tq, size_t Tv, size_t Dq, size_t Dv, size_t U);

AL_DECLARE_ATTENTION(f32, float)
AL_DECLARE_ATTENTION(f64, double)

#endif /* AL_ATTENTION_H */
