/*
 * al_vmath.h -- exp without libm (float32, and float64 for the LSTM gates), written so that
 * the loops calling it vectorise.
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
 * sigmoid/tanh built on it saturate correctly). float64: al_exp_poly below.
 */
#define AL_EXPF_HI 88.3762626647949f
#define AL_EXPF_LO (-87.3365447504019f)
static inline __attribute__((always_inline)) float al_expf_poly(float x) {
    const float round_magic = 12582912.0f;   /* 1.5 * 2^23: adding it rounds to an integer */
    float n, r, p;
    union { uint32_t u; float f; } scale;
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
    /* unsigned: a NaN input (n = INT_MIN after the conversion) must not make the shift
     * undefined (UBSan, make sanitize); the result is NaN through p either way */
    scale.u = ((uint32_t)(int32_t)n + 127u) << 23;
    return p * scale.f;
}

/* exp(x), but exactly 0 where the result is below the smallest normal float (x < -87.34):
 * the softmax's masked and far-below-max keys (libm would return a denormal or 0). */
static inline __attribute__((always_inline)) float al_expf_flush(float x) {
    return x < AL_EXPF_LO ? 0.0f : al_expf_poly(x);
}

/*
 * exp and expm1 for float64 without libm, for loops that must vectorise (the LSTM gates).
 * al_exp_poly: x = n ln2 + r (ln2 in fdlibm's hi/lo parts, |r| <= ln2/2), e^r by its Taylor
 * series to r^13/13! (truncation below 1e-17 relative), times 2^n through the exponent bits;
 * x is clamped to [-708.39, 709.78], so the result is finite and normal.
 * al_expm1_poly: expm1(z) by its Taylor series to z^18/18! for |z| <= 1 (no cancellation near
 * 0), else exp(z) - 1; both branches are computed and one selected, so loops vectorise.
 */
#define AL_EXP_HI 709.782712893383973096
#define AL_EXP_LO (-708.396418532264106224)
static inline __attribute__((always_inline)) double al_exp_poly(double x) {
    const double round_magic = 6755399441055744.0;   /* 1.5 * 2^52: rounds to an integer */
    double n, r, p;
    union { uint64_t u; double f; } scale, t;
    x = x > AL_EXP_HI ? AL_EXP_HI : x;
    x = x < AL_EXP_LO ? AL_EXP_LO : x;
    t.f = x * 1.44269504088896338700 + round_magic;
    n = t.f - round_magic;
    r = x - n * 6.93147180369123816490e-01;
    r = r - n * 1.90821492927058770002e-10;
    p = 1.6059043836821613e-10;
    p = p * r + 2.08767569878681e-09;
    p = p * r + 2.505210838544172e-08;
    p = p * r + 2.755731922398589e-07;
    p = p * r + 2.7557319223985893e-06;
    p = p * r + 2.48015873015873e-05;
    p = p * r + 0.0001984126984126984;
    p = p * r + 0.001388888888888889;
    p = p * r + 0.008333333333333333;
    p = p * r + 0.041666666666666664;
    p = p * r + 0.16666666666666666;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    /* 2^n from the low bits of t = magic + n (no double -> int64 conversion, which AVX2 and
     * plain AVX-512F lack, so the loop vectorises) */
    scale.u = (t.u - UINT64_C(0x4338000000000000) + 1023u) << 52;   /* unsigned: see expf */
    return p * scale.f;
}

static inline __attribute__((always_inline)) double al_expm1_poly(double z) {
    double q = 1.5619206968586225e-16;
    double big;
    q = q * z + 2.8114572543455206e-15;
    q = q * z + 4.779477332387385e-14;
    q = q * z + 7.647163731819816e-13;
    q = q * z + 1.1470745597729725e-11;
    q = q * z + 1.6059043836821613e-10;
    q = q * z + 2.08767569878681e-09;
    q = q * z + 2.505210838544172e-08;
    q = q * z + 2.755731922398589e-07;
    q = q * z + 2.7557319223985893e-06;
    q = q * z + 2.48015873015873e-05;
    q = q * z + 0.0001984126984126984;
    q = q * z + 0.001388888888888889;
    q = q * z + 0.008333333333333333;
    q = q * z + 0.041666666666666664;
    q = q * z + 0.16666666666666666;
    q = q * z + 0.5;
    q = q * z + 1.0;
    big = al_exp_poly(z) - 1.0;
    return (z <= 1.0 && z >= -1.0) ? z * q : big;
}

#endif /* AL_VMATH_H */
