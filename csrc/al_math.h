/*
 * al_math.h -- the math every kernel family shares: exp, expm1, tanh, sigmoid, the softmax of
 * a score row and its backward. Part of the type template (al_real.h): included once per
 * floating type, after al_real.h; the type-independent part at the top is defined once.
 *
 * Scalar forms are branch-free (selects only) and inline, so the loops calling them vectorise;
 * each TU compiles them under its own FP-contraction setting (attention.c and mha.c: none).
 *   al_expf_poly / al_exp_poly   exp without libm (float32 ~1 ulp; float64 Taylor to r^13)
 *   al_expf_flush                exp, exactly 0 below the smallest normal float (softmax)
 *   al_sigmoid_v                 sigmoid (the recurrent cells, al_act_impl.h)
 *   al_tanh_v                    tanh, <= ~3 ulp (the recurrent cells, the attention scores)
 *   al_expm1_minus               exp(v) - 1 - v without cancellation (the VAE's KL term)
 *   softmax_row, softmax_backward_row   the attention kernels' masked softmax and its backward
 */
#ifndef AL_MATH_UNTYPED
#define AL_MATH_UNTYPED

#include <math.h>
#include <stdint.h>
#include <string.h>

/* 1/k! for k = 0..17, the Taylor coefficients of exp (each the correctly rounded double, whose
 * float rounding is also the correctly rounded float). */
static const double al_inv_fact[18] = {
    1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
    1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0,
    1.0 / 87178291200.0, 1.0 / 1307674368000.0, 1.0 / 20922789888000.0,
    1.0 / 355687428096000.0
};

/* sum_{k=lo}^{hi} z^(k-lo) / k! by Horner's rule from the highest term; lo, hi constants, so
 * the loop unrolls into the same chain as written out and the callers still vectorise. */
#define AL_DEFINE_EXP_SERIES(name, T)                                                       \
    static inline __attribute__((always_inline)) T name(T z, const int lo, const int hi) {  \
        T p = (T)al_inv_fact[hi];                                                           \
        int k;                                                                              \
        _Pragma("GCC unroll 20")                                                            \
        for (k = hi - 1; k >= lo; k--) p = p * z + (T)al_inv_fact[k];                       \
        return p;                                                                           \
    }
AL_DEFINE_EXP_SERIES(al_exp_seriesf, float)
AL_DEFINE_EXP_SERIES(al_exp_series, double)
#undef AL_DEFINE_EXP_SERIES

/*
 * exp for float32 without libm: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, Cephes'
 * degree-6 polynomial for e^r (about 1 ulp), then r * 2^n through the exponent bits. x is
 * clamped to [-87.33, 88.37], so the result is finite and normal (the sigmoid and tanh built
 * on it saturate correctly).
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
 * exp for float64 without libm: x = n ln2 + r (ln2 in fdlibm's hi/lo parts, |r| <= ln2/2), e^r by its Taylor
 * series to r^13/13! (truncation below 1e-17 relative), times 2^n through the exponent bits;
 * x is clamped to [-708.39, 709.78], so the result is finite and normal.
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
    p = al_exp_series(r, 0, 13);
    /* 2^n from the low bits of t = magic + n (no double -> int64 conversion, which AVX2 and
     * plain AVX-512F lack, so the loop vectorises) */
    scale.u = (t.u - UINT64_C(0x4338000000000000) + 1023u) << 52;   /* unsigned: see expf */
    return p * scale.f;
}

#endif /* AL_MATH_UNTYPED */

/* ---- typed part (real = float or double) ---- */

#if defined(AL_REAL_F32)
#  define AL_EXP_SERIES al_exp_seriesf
#else
#  define AL_EXP_SERIES al_exp_series
#endif

/* sigmoid(x) = 1 / (1 + exp(-x)). */
static inline __attribute__((always_inline)) real AL_SFN(al_sigmoid_v)(real x) {
#if defined(AL_REAL_F32)
    return 1.0f / (1.0f + al_expf_poly(-x));
#else
    return 1.0 / (1.0 + al_exp_poly(-x));
#endif
}

/*
 * tanh(x) = sign(x) * -m / (2 + m), m = expm1(-2|x|), with expm1 by argument halving:
 * m0 = expm1(z / 2^K) by its Taylor polynomial (which keeps the relative accuracy near 0),
 * then K times expm1(2y) = m (m + 2), which does not amplify relative error. |x| is clamped
 * where tanh rounds to 1 (NaN passes through the clamp). Measured against float64 tanh: at
 * most ~3 ulp in float32 and in float64.
 */
#if defined(AL_REAL_F32)
#  define AL_TANH_SAT 9.5f            /* tanhf(9.5) == 1.0f */
#  define AL_TANH_HALVINGS 5          /* |z| <= 19/32: Taylor to z^9/9! */
#  define AL_TANH_TAYLOR 9
#  define AL_COPYSIGN copysignf
#else
#  define AL_TANH_SAT 20.0            /* tanh(20) == 1.0 */
#  define AL_TANH_HALVINGS 6          /* |z| <= 40/64: Taylor to z^15/15! */
#  define AL_TANH_TAYLOR 15
#  define AL_COPYSIGN copysign
#endif
/* expm1(2y) = m (m + 2), written out (a loop here keeps GCC from vectorising the callers). */
#define AL_TANH_DOUBLE(m) ((m) * ((m) + (real)2))

static inline __attribute__((always_inline)) real AL_SFN(al_tanh_v)(real x) {
    real ax = AL_FABS(x), z, m;
    ax = ax > (real)AL_TANH_SAT ? (real)AL_TANH_SAT : ax;
    z = ax * (real)(-2.0 / (double)(1 << AL_TANH_HALVINGS));
    m = z * AL_EXP_SERIES(z, 1, AL_TANH_TAYLOR);
    m = AL_TANH_DOUBLE(m);
    m = AL_TANH_DOUBLE(m);
    m = AL_TANH_DOUBLE(m);
    m = AL_TANH_DOUBLE(m);
    m = AL_TANH_DOUBLE(m);
#if AL_TANH_HALVINGS == 6
    m = AL_TANH_DOUBLE(m);
#endif
    return AL_COPYSIGN(-m / ((real)2 + m), x);
}
#undef AL_TANH_DOUBLE
#undef AL_TANH_SAT
#undef AL_TANH_HALVINGS
#undef AL_TANH_TAYLOR
#undef AL_COPYSIGN

/* exp(v) - 1 - v, >= 0, without the cancellation of the literal formula near v = 0: for
 * |v| < 1 the series sum_{k>=2} v^k/k! truncated after k = 17 (relative truncation error
 * below 2/18! < 4e-16), otherwise expm1(v) - v (no cancellation there). NaN stays NaN. */
static inline real AL_SFN(al_expm1_minus)(real v) {
    if (AL_FABS(v) < (real)1) return v * v * AL_EXP_SERIES(v, 2, 17);
    return AL_EXPM1(v) - v;
}

/*
 * softmax_row(s, keep, n): s (n) <- exp(s - max) / sum over the kept entries (keep == NULL:
 * all of them); entries with keep[j] == 0 get exactly 0 and take no part in max or sum. At
 * least one entry must be kept.
 * In float32 the exp is al_expf_flush (~1 ulp, exactly 0 below the smallest normal), and max
 * and sum keep 16 partial results so every loop vectorises (AVX-512 / AVX2 copies for the
 * selected path, AL_ISA_VERSIONS_VOID). float64 keeps libm's exp (0 below ln(2^-1075),
 * skipping libm's underflow path) for 1e-10 agreement with the NumPy twins.
 * Compiled with contraction (the files that include this turn it off elsewhere): the exp's
 * polynomial becomes fused multiply-adds on AVX2 and AVX-512 (the same statements fuse on both,
 * so the same bits), separate ones on the generic path (agrees to rounding). Measured: a
 * 10% faster multi-head attention forward at (8, 256, 256, d = 64, 8 heads), benchmarks/NOTES.md.
 */
#if defined(AL_REAL_F32)
#  define AL_SM_EXP al_expf_flush
#else
#  define AL_SM_EXP(x_) ((x_) < -746.0 ? 0.0 : exp(x_))
#endif

#define AL_SM_LANES 16

/* The max and sum passes keep AL_SM_LANES partial results in GCC vectors (plain loops over 16
 * partials were unrolled into scalar code: the max pass was a fifth of a softmax, measured);
 * lane l takes the elements j + l, as the scalar tail takes part[0]'s. The 16 lanes are held
 * as AL_SM_NH vectors of 32 bytes (lanes [h AL_SM_HL, (h + 1) AL_SM_HL)): one 64-byte vector
 * was lowered for AVX2 into 16-byte pieces through the stack, and the AVX2 softmax took 4x the
 * AVX-512 one's time (benchmarks/NOTES.md, 2026-12-08). Lane for lane the same operations, so
 * the same bits. */
#define AL_SM_HL (32 / sizeof(real))
#define AL_SM_NH (AL_SM_LANES / AL_SM_HL)
typedef real AL_SFN(al_sm_v) __attribute__((vector_size(32)));
#if defined(AL_REAL_F32)
typedef int32_t AL_SFN(al_sm_m) __attribute__((vector_size(32)));
#else
typedef int64_t AL_SFN(al_sm_m) __attribute__((vector_size(32)));
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast")
#endif
static inline __attribute__((always_inline)) void AL_SFN(softmax_row_body)(
    real *s, const uint8_t *keep, size_t n) {
    AL_SFN(al_sm_v) pv[AL_SM_NH], x;
    AL_SFN(al_sm_m) gt;
    real part[AL_SM_LANES], m, sum, inv;
    size_t j, l, h;
    const size_t nv = n - n % AL_SM_LANES;
    /* Dropped entries become -inf, whose exp is exactly 0 (a select, not arithmetic, so the
     * loop vectorises under the default -ftrapping-math). */
    if (keep != NULL) {
        for (j = 0; j < n; j++) s[j] = keep[j] ? s[j] : -(real)INFINITY;
    }
    /* max: part = x > part ? x : part per lane (a NaN score is skipped here and propagates
     * through exp) */
    for (h = 0; h < AL_SM_NH; h++)
        for (l = 0; l < AL_SM_HL; l++) pv[h][l] = -(real)INFINITY;
    for (j = 0; j < nv; j += AL_SM_LANES) {
        for (h = 0; h < AL_SM_NH; h++) {
            memcpy(&x, s + j + h * AL_SM_HL, sizeof x);
            gt = x > pv[h];
            pv[h] = (AL_SFN(al_sm_v))(((AL_SFN(al_sm_m))x & gt) | ((AL_SFN(al_sm_m))pv[h] & ~gt));
        }
    }
    memcpy(part, pv, sizeof part);
    for (; j < n; j++) part[0] = s[j] > part[0] ? s[j] : part[0];
    m = part[0];
    for (l = 1; l < AL_SM_LANES; l++) m = part[l] > m ? part[l] : m;
    /* exp(s - max), then the sum in 16 partial sums. The last n % 16 go through a padded
     * block of 16 as well: a remainder loop is vectorised differently per path (AVX-512 masked,
     * AVX2 8 wide then scalar), and the scalar copy fused other multiply-adds, so rows whose
     * length left a scalar remainder on one path only differed by an ulp (Tv = 29). */
    for (j = 0; j < nv; j++) s[j] = AL_SM_EXP(s[j] - m);
    if (nv < n) {
        real t[AL_SM_LANES];
        for (l = 0; l < AL_SM_LANES; l++) t[l] = nv + l < n ? s[nv + l] : m;
        for (l = 0; l < AL_SM_LANES; l++) t[l] = AL_SM_EXP(t[l] - m);
        for (l = 0; nv + l < n; l++) s[nv + l] = t[l];
    }
    for (h = 0; h < AL_SM_NH; h++)
        for (l = 0; l < AL_SM_HL; l++) pv[h][l] = (real)0;
    for (j = 0; j < nv; j += AL_SM_LANES) {
        for (h = 0; h < AL_SM_NH; h++) {
            memcpy(&x, s + j + h * AL_SM_HL, sizeof x);
            pv[h] += x;
        }
    }
    memcpy(part, pv, sizeof part);
    for (; j < n; j++) part[0] += s[j];
    sum = (real)0;
    for (l = 0; l < AL_SM_LANES; l++) sum += part[l];
    /* times 1 / sum, as TensorFlow's CPU softmax (a division per element cost a fifth of the
     * softmax; the result differs from e / sum by at most an ulp) */
    inv = (real)1 / sum;
    for (j = 0; j < n; j++) s[j] *= inv;
}
AL_ISA_VERSIONS_VOID(AL_SFN(softmax_row), AL_SFN(softmax_row_body),
                     (real *s, const uint8_t *keep, size_t n), (s, keep, n))
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

#undef AL_SM_EXP

/* Softmax backward of one row, in place: dp (n) holds dL/dP and receives
 * dL/dS = P * (dP - sum_j P dP), w (n) the softmax P. The sum keeps AL_SM_LANES partial sums in
 * one GCC vector (lane l takes j = l mod AL_SM_LANES in order, the scalar tail lane 0), added
 * in lane order: the sum in order was a dependent chain of adds, a fifth of a multi-head
 * attention backward (benchmarks/NOTES.md). The files that include this compile without
 * contraction, so every path gives the same bits. */
static inline __attribute__((always_inline)) void AL_SFN(softmax_backward_row_body)(
    real *dp, const real *w, size_t n) {
    AL_SFN(al_sm_v) pv[AL_SM_NH], x, y;
    real part[AL_SM_LANES], dot;
    size_t j, l, h;
    const size_t nv = n - n % AL_SM_LANES;
    for (h = 0; h < AL_SM_NH; h++)
        for (l = 0; l < AL_SM_HL; l++) pv[h][l] = (real)0;
    for (j = 0; j < nv; j += AL_SM_LANES) {
        for (h = 0; h < AL_SM_NH; h++) {
            memcpy(&x, w + j + h * AL_SM_HL, sizeof x);
            memcpy(&y, dp + j + h * AL_SM_HL, sizeof y);
            pv[h] += x * y;
        }
    }
    memcpy(part, pv, sizeof part);
    for (; j < n; j++) part[0] += w[j] * dp[j];
    dot = (real)0;
    for (l = 0; l < AL_SM_LANES; l++) dot += part[l];
    for (j = 0; j < n; j++) dp[j] = w[j] * (dp[j] - dot);
}
AL_ISA_VERSIONS_VOID(AL_SFN(softmax_backward_row), AL_SFN(softmax_backward_row_body),
                     (real *dp, const real *w, size_t n), (dp, w, n))

#undef AL_SM_LANES
#undef AL_SM_HL
#undef AL_SM_NH

#undef AL_EXP_SERIES
