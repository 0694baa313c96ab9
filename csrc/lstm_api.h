/*
 * lstm_api.h -- prototypes of the LSTM kernels (lstm_impl.h), for float32 (_f32) and float64
 * (_f64); argument order as al_common.h.
 *
 * impl: 0 the path selected at import (ATTNLSTM_ISA, else the CPU's best: al_isa_level),
 *       1 the generic path (portable C tiles), 2 AVX2, 3 AVX-512 (a path above the selected
 *       one falls back to it), for float32 and float64 alike. Every path computes a sample's
 *       results the same way whatever the batch size, the sample's position and the thread
 *       count; AVX2 and AVX-512 give the same bits, generic agrees to the type's rounding.
 * nthreads, forced: the thread budget and whether to use it regardless of the call's size
 *       (al_lstm_split in lstm_pgemm.h); what the team computes, the weight gradients
 *       included, is bitwise the same for every thread count.
 */
#ifndef AL_LSTM_API_H
#define AL_LSTM_API_H

#include "al_common.h"

#define AL_DECLARE_LSTM_IMPL(sfx, real)                                                     \
    int al_lstm_forward_impl_##sfx(real *hs, real *cs, real *out, real *gates, real *act_c, \
                                   const real *x, const real *h0, const real *c0,           \
                                   const uint8_t *mask, const real *dp_mask,                \
                                   const real *rec_mask,                                    \
                                   const real *W, const real *U, const real *bias,          \
                                   size_t B, size_t T, size_t D, size_t H,                  \
                                   int activation, int recurrent_activation,                \
                                   int go_backwards, int impl, int nthreads,               \
                                   int forced);                                             \
    int al_lstm_backward_impl_##sfx(real *dx, real *dW, real *dU, real *db, real *dh0,      \
                                    real *dc0,                                              \
                                    const real *hs, const real *cs, const real *gates,      \
                                    const real *act_c,                                      \
                                    const real *d_out, const real *d_last,                  \
                                    const real *d_hT, const real *d_cT,                     \
                                    const real *x, const real *h0, const real *c0,          \
                                    const uint8_t *mask, const real *dp_mask,               \
                                    const real *rec_mask,                                   \
                                    const real *W, const real *U,                           \
                                    size_t B, size_t T, size_t D, size_t H,                 \
                                    int activation, int recurrent_activation,               \
                                    int go_backwards, int impl, int nthreads,        \
                                    int forced);

AL_DECLARE_LSTM_IMPL(f32, float)
AL_DECLARE_LSTM_IMPL(f64, double)

#endif /* AL_LSTM_API_H */
