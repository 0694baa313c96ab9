/*
 * al_dense.h -- prototypes of the dense-product kernel (dense.c) for float32 (_f32) and float64
 * (_f64): the Dense layer's forward and backward products on attnlstm's own BLAS.
 *
 * Legend (GEMM): M rows, N columns, K the summed axis.
 */
#ifndef AL_DENSE_H
#define AL_DENSE_H

#include "al_common.h"

#define AL_DECLARE_DENSE(sfx, real)                                                             \
    int al_matmul_##sfx(real *C, const real *A, const real *Bm, size_t M, size_t N, size_t K,   \
                        int trans_a, int trans_b);
AL_DECLARE_DENSE(f32, float)
AL_DECLARE_DENSE(f64, double)
#undef AL_DECLARE_DENSE

#endif /* AL_DENSE_H */
