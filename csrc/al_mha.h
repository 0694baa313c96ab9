/*
 * al_mha.h -- prototypes of the multi-head attention kernels (mha_impl.h), float32 (_f32) and
 * float64 (_f64). One kernel pair serves Keras 3 MultiHeadAttention and relative-position
 * self-attention (Shaw, Uszkoreit & Vaswani 2018): the relative terms are on when rel_k/rel_v
 * are not NULL. Shapes are documented at the definitions in mha_impl.h.
 *
 * Legend: B batch, Tq query steps, Tv key/value steps, Dq/Dk/Dv input features of query/key/
 * value, NH heads, HS key head size (key_dim), HSv value head size (value_dim), Dout output
 * features, K max_relative_position (R = 2K+1 relative positions).
 */
#ifndef AL_MHA_H
#define AL_MHA_H

#include "al_common.h"

/* What a fully masked score row (no key may be attended) produces. */
enum {
    /* Keras' fast path (ops.dot_product_attention, masked logits -> -0.7*FLT_MAX): a uniform
     * softmax over all Tv keys, so the context is the mean of the values. */
    AL_MHA_FULLY_MASKED_UNIFORM = 0,
    /* Keras' explicit path (Softmax layer with a mask, v3.10+): all weights 0, context 0. */
    AL_MHA_FULLY_MASKED_ZERO = 1
};

#define AL_DECLARE_MHA(sfx, real)                                                           \
    int al_mha_forward_##sfx(real *out, real *weights, real *qs, real *kp, real *vp,         \
                             real *ctx, uint8_t *live,                                       \
                             const real *query, const real *key, const real *value,          \
                             const uint8_t *attn_mask, const uint8_t *query_mask,            \
                             const uint8_t *value_mask, const uint8_t *key_mask,             \
                             const real *Wq, const real *bq, const real *Wk, const real *bk, \
                             const real *Wv, const real *bv, const real *Wo, const real *bo, \
                             const real *rel_k, const real *rel_v,                           \
                             size_t B, size_t Tq, size_t Tv, size_t Dq, size_t Dk, size_t Dv, \
                             size_t NH, size_t HS, size_t HSv, size_t Dout, size_t K,        \
                             int attn_mask_per_head, int causal, int fully_masked);          \
    int al_mha_backward_##sfx(real *dquery, real *dkey, real *dvalue,                        \
                              real *dWq, real *dbq, real *dWk, real *dbk,                    \
                              real *dWv, real *dbv, real *dWo, real *dbo,                    \
                              real *drel_k, real *drel_v,                                    \
                              const real *weights, const real *qs, const real *kp,           \
                              const real *vp, const real *ctx, const uint8_t *live,          \
                              const real *d_out, const real *d_weights,                      \
                              const real *query, const real *key, const real *value,         \
                              const real *Wq, const real *Wk, const real *Wv, const real *Wo, \
                              const real *rel_k, const real *rel_v,                          \
                              size_t B, size_t Tq, size_t Tv, size_t Dq, size_t Dk, size_t Dv, \
                              size_t NH, size_t HS, size_t HSv, size_t Dout, size_t K);

AL_DECLARE_MHA(f32, float)
AL_DECLARE_MHA(f64, double)

#endif /* AL_MHA_H */
