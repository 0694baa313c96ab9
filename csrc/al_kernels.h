/*
 * al_kernels.h -- prototypes of the GRU kernels (the LSTM's are in lstm_api.h), for float32
 * (_f32) and float64 (_f64). Shapes are documented at each definition (gru_impl.h); argument
 * order as al_common.h.
 */
#ifndef AL_KERNELS_H
#define AL_KERNELS_H

#include "al_common.h"

/* GRU (gru_impl.h): gate order [z, r, h]; bias (2,3H) with reset_after, else (3H). impl: 0
 * automatic, 1 BLAS, 2/3 packed AVX2/AVX-512 (as lstm_api.h); nthreads, forced: the thread
 * budget, used regardless of the call's size when forced. */
#define AL_DECLARE_GRU(sfx, real)                                                           \
    int al_gru_forward_impl_##sfx(real *hs, real *out, real *gates, real *rh,               \
                                  const real *x, const real *h0, const uint8_t *mask,       \
                                  const real *dp_mask, const real *rec_mask,                \
                                  const real *W, const real *U, const real *bias,           \
                                  size_t B, size_t T, size_t D, size_t H,                   \
                                  int activation, int recurrent_activation,                 \
                                  int reset_after, int go_backwards, int impl,              \
                                  int nthreads, int forced);                                \
    int al_gru_backward_impl_##sfx(real *dx, real *dW, real *dU, real *db, real *dh0,       \
                                   const real *hs, const real *gates, const real *rh,       \
                                   const real *d_out, const real *d_last, const real *d_hT, \
                                   const real *x, const real *h0, const uint8_t *mask,      \
                                   const real *dp_mask, const real *rec_mask,               \
                                   const real *W, const real *U,                            \
                                   size_t B, size_t T, size_t D, size_t H,                  \
                                   int activation, int recurrent_activation,                \
                                   int reset_after, int go_backwards, int impl,             \
                                   int nthreads, int forced);

AL_DECLARE_GRU(f32, float)
AL_DECLARE_GRU(f64, double)

#endif /* AL_KERNELS_H */
