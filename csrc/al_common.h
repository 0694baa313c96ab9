/*
 * al_common.h -- shared definitions of attnlstm's pure C kernels.
 *
 * Pure C11: no Python.h, no printing, no exiting. Every exported symbol starts with `al_`.
 * Dimension legend (see STYLE.md): B batch, T timesteps (Tq/Tv in attention), D input
 * features, H hidden units, NH heads, HS head size, Z latent size. Buffers are flat and
 * row-major in NumPy axis order. LSTM gate order along the last axis is [i, f, c, o].
 */
#ifndef AL_COMMON_H
#define AL_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Activation codes shared with the Python layer (attnlstm/activations.py keeps the same
 * numbers). Keras 3 semantics: hard_sigmoid is relu6(x + 3) / 6 = clip(x/6 + 1/2, 0, 1). */
typedef enum {
    AL_ACT_LINEAR = 0,
    AL_ACT_TANH = 1,
    AL_ACT_SIGMOID = 2,
    AL_ACT_HARD_SIGMOID = 3,
    AL_ACT_RELU = 4,
    AL_ACT_COUNT = 5
} al_activation;

/* Kernel status codes. The binding turns a non-zero status into a Python exception. */
enum {
    AL_OK = 0,
    AL_ERR_NOMEM = 1,   /* a workspace allocation failed */
    AL_ERR_ARG = 2      /* an argument the binding should have rejected */
};

/* BLAS: OpenBLAS from the scipy-openblas32 wheel exports its CBLAS with a `scipy_` prefix
 * and 32-bit integers. The binding checks every dimension against AL_BLAS_INT_MAX. */
#include <cblas.h>
#define AL_BLAS_INT_MAX 2147483647LL
#define al_cblas_sgemm scipy_cblas_sgemm
#define al_cblas_dgemm scipy_cblas_dgemm

/* The thread count of the BLAS, which attnlstm.set_num_threads sets: the one thread budget for
 * the BLAS and for the kernels that split work themselves (the LSTM takes it from its binding,
 * the attention kernels read it here). */
int scipy_openblas_get_num_threads(void);
static inline int al_blas_threads(void) { return scipy_openblas_get_num_threads(); }

#endif /* AL_COMMON_H */
