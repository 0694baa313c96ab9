/*
 * al_act_impl.h -- elementwise activations, part of the type template (see al_real.h).
 *
 * act_forward applies an activation in place; act_grad multiplies a gradient by the
 * activation's derivative, written in terms of the activation's *output* y so that the
 * backward pass needs only what the forward saved. Keras 3 formulas (keras-semantics.md):
 *   sigmoid(x) = 1 / (1 + exp(-x))        d = y (1 - y)
 *   tanh(x)                               d = 1 - y^2
 *   hard_sigmoid(x) = clip(x/6 + 1/2, 0, 1)  d = 1/6 where 0 < y < 1, else 0
 *   relu(x) = max(x, 0)                   d = 1 where y > 0, else 0
 *   linear(x) = x                         d = 1
 */

static inline real AL_SFN(al_sigmoid)(real x) {
    /* Split on the sign so exp never overflows to inf for large |x|. */
    if (x >= (real)0) {
        real e = AL_EXP(-x);
        return (real)1 / ((real)1 + e);
    } else {
        real e = AL_EXP(x);
        return e / ((real)1 + e);
    }
}

static inline real AL_SFN(al_hard_sigmoid)(real x) {
    real y = x / (real)6 + (real)0.5;
    if (y < (real)0) y = (real)0;
    if (y > (real)1) y = (real)1;
    return y;
}

#include "al_vmath.h"


/* x (n) -> act(x) (n), in place. The loops are branch-free so they vectorise; the CPU's widest
 * vector unit is chosen at run time (target_clones), the build itself stays portable. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void AL_SFN(act_forward)(int act, real *x, size_t n) {
    size_t k;
    switch (act) {
    case AL_ACT_TANH:
#if defined(AL_REAL_F32)
        for (k = 0; k < n; k++) {
            /* tanh(x) = sign(x) (1 - 2 / (e^{2|x|} + 1)), no overflow or cancellation at large |x| */
            const float a = x[k] < 0.0f ? -x[k] : x[k];
            const float t = 1.0f - 2.0f / (al_expf_poly(2.0f * a) + 1.0f);
            x[k] = x[k] < 0.0f ? -t : t;
        }
#else
        for (k = 0; k < n; k++) {
            /* tanh(x) = sign(x) (-m) / (2 + m), m = expm1(-2|x|): accurate near 0 too */
            const double a = x[k] < 0.0 ? -x[k] : x[k];
            const double m = al_expm1_poly(-2.0 * a);
            const double t = -m / (2.0 + m);
            x[k] = x[k] < 0.0 ? -t : t;
        }
#endif
        break;
    case AL_ACT_SIGMOID:
#if defined(AL_REAL_F32)
        for (k = 0; k < n; k++) x[k] = 1.0f / (1.0f + al_expf_poly(-x[k]));
#else
        for (k = 0; k < n; k++) x[k] = 1.0 / (1.0 + al_exp_poly(-x[k]));
#endif
        break;
    case AL_ACT_HARD_SIGMOID:
        for (k = 0; k < n; k++) x[k] = AL_SFN(al_hard_sigmoid)(x[k]);
        break;
    case AL_ACT_RELU:
        for (k = 0; k < n; k++) x[k] = x[k] < (real)0 ? (real)0 : x[k];  /* NaN stays NaN, as Keras */
        break;
    default: /* AL_ACT_LINEAR */
        break;
    }
}

/* Scalar form of act_forward, for fused loops. */
static inline real AL_SFN(act_scalar)(int act, real x) {
    switch (act) {
    case AL_ACT_TANH: return AL_TANH(x);
    case AL_ACT_SIGMOID: return AL_SFN(al_sigmoid)(x);
    case AL_ACT_HARD_SIGMOID: return AL_SFN(al_hard_sigmoid)(x);
    case AL_ACT_RELU: return x < (real)0 ? (real)0 : x;
    default: return x;
    }
}

/* Derivative of the activation at the point whose output is y. */
static inline real AL_SFN(act_deriv)(int act, real y) {
    switch (act) {
    case AL_ACT_TANH: return (real)1 - y * y;
    case AL_ACT_SIGMOID: return y * ((real)1 - y);
    case AL_ACT_HARD_SIGMOID: return (y > (real)0 && y < (real)1) ? (real)1 / (real)6 : (real)0;
    case AL_ACT_RELU: return y > (real)0 ? (real)1 : (real)0;
    default: return (real)1;
    }
}
