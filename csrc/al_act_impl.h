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

#ifndef AL_EXPF_POLY_DEFINED
#define AL_EXPF_POLY_DEFINED
#include <stdint.h>
/*
 * exp for float32 without libm, written so GCC vectorises the loops that call it (SSE2 by
 * default, AVX2 / AVX-512 clones chosen at run time): Cody-Waite reduction x = n ln2 + r,
 * |r| <= ln2/2, Cephes' degree-6 polynomial for e^r (about 1 ulp), then r * 2^n through the
 * exponent bits. x is clamped to [-87.33, 88.37], so the result is finite and normal (the
 * sigmoid/tanh built on it saturate correctly). float64 keeps libm's exp for 1e-10 parity.
 */
#define AL_EXPF_HI 88.3762626647949f
#define AL_EXPF_LO (-87.3365447504019f)
static inline float al_expf_poly(float x) {
    const float round_magic = 12582912.0f;   /* 1.5 * 2^23: adding it rounds to an integer */
    float n, r, p;
    union { int32_t i; float f; } scale;
    x = x > AL_EXPF_HI ? AL_EXPF_HI : x;
    x = x < AL_EXPF_LO ? AL_EXPF_LO : x;
    n = (x * 1.44269504088896341f + round_magic) - round_magic;
    r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    scale.i = ((int32_t)n + 127) << 23;
    return p * scale.f;
}
#endif

#if defined(AL_REAL_F32)
#  define AL_VEXP al_expf_poly
#else
#  define AL_VEXP AL_EXP
#endif

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
        for (k = 0; k < n; k++) x[k] = AL_TANH(x[k]);
#endif
        break;
    case AL_ACT_SIGMOID:
#if defined(AL_REAL_F32)
        for (k = 0; k < n; k++) x[k] = 1.0f / (1.0f + al_expf_poly(-x[k]));
#else
        for (k = 0; k < n; k++) x[k] = AL_SFN(al_sigmoid)(x[k]);
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
