/*
 * al_vmath.h -- float32 exp without libm, written so that the loops calling it vectorise.
 * Shared by the LSTM activations (al_act_impl.h) and the attention softmax (al_softmax_impl.h).
 */
#ifndef AL_VMATH_H
#define AL_VMATH_H

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

/* exp(x), but exactly 0 where the result is below the smallest normal float (x < -87.34):
 * the softmax's masked and far-below-max keys (libm would return a denormal or 0). */
static inline float al_expf_flush(float x) {
    return x < AL_EXPF_LO ? 0.0f : al_expf_poly(x);
}

#endif /* AL_VMATH_H */
