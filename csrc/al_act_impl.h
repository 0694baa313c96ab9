/*
 * al_act_impl.h -- elementwise activations, part of the type template (see al_real.h).
 *
 * act_forward applies an activation in place; act_deriv gives the derivative of the
 * activation at a point, written in terms of the activation's *output* y so that the
 * backward pass needs only what the forward saved. Keras 3 formulas (keras-semantics.md):
 *   sigmoid(x) = 1 / (1 + exp(-x))        d = y (1 - y)
 *   tanh(x)                               d = 1 - y^2
 *   hard_sigmoid(x) = clip(x/6 + 1/2, 0, 1)  d = 1/6 where 0 < y < 1, else 0
 *   relu(x) = max(x, 0)                   d = 1 where y > 0, else 0
 *   linear(x) = x                         d = 1
 */

#include "al_math.h"   /* al_sigmoid_v, al_tanh_v */

static inline __attribute__((always_inline)) real AL_SFN(al_hard_sigmoid)(real x) {
    real y = x / (real)6 + (real)0.5;
    y = y < (real)0 ? (real)0 : y;
    return y > (real)1 ? (real)1 : y;
}

/* act(x) for one element; a constant act (the fused cell's tanh/sigmoid specialisation)
 * leaves a branch-free expression. */
static inline __attribute__((always_inline)) real AL_SFN(act_scalar)(int act, real x) {
    switch (act) {
    case AL_ACT_TANH: return AL_SFN(al_tanh_v)(x);
    case AL_ACT_SIGMOID: return AL_SFN(al_sigmoid_v)(x);
    case AL_ACT_HARD_SIGMOID: return AL_SFN(al_hard_sigmoid)(x);
    case AL_ACT_RELU: return x < (real)0 ? (real)0 : x;   /* NaN stays NaN, as Keras */
    default: return x;                                     /* AL_ACT_LINEAR */
    }
}

/* x (n) -> act(x) (n), in place; the loops of act_forward_body. */
static inline __attribute__((always_inline)) void AL_SFN(act_forward_run)(int act, real *x,
                                                                         size_t n) {
    size_t k;
    switch (act) {
    case AL_ACT_TANH:
        for (k = 0; k < n; k++) x[k] = AL_SFN(al_tanh_v)(x[k]);
        break;
    case AL_ACT_SIGMOID:
        for (k = 0; k < n; k++) x[k] = AL_SFN(al_sigmoid_v)(x[k]);
        break;
    case AL_ACT_HARD_SIGMOID:
        for (k = 0; k < n; k++) x[k] = AL_SFN(al_hard_sigmoid)(x[k]);
        break;
    case AL_ACT_RELU:
        for (k = 0; k < n; k++) x[k] = AL_SFN(act_scalar)(AL_ACT_RELU, x[k]);
        break;
    default: /* AL_ACT_LINEAR */
        break;
    }
}

/* x (n) -> act(x) (n), in place. The loops are branch-free so they vectorise; the vector unit
 * is the selected path's (AL_ISA_VERSIONS_VOID, al_common.h), the build itself stays portable.
 * Elementwise: the AVX2 and AVX-512 copies give the same bits (both fuse with FMA), the generic
 * one agrees to rounding. Whole blocks of AL_ACT_BLOCK, then the last n % AL_ACT_BLOCK through
 * a padded block: a remainder loop is vectorised per path in its own way (AVX-512 16 wide,
 * AVX2 8 wide, the rest scalar), and the scalar copy fused other multiply-adds, so a(c) at
 * H = 40 differed by an ulp between AVX2 and AVX-512 (benchmarks/NOTES.md, 2026-12-08). */
#define AL_ACT_BLOCK 16
static inline __attribute__((always_inline)) void AL_SFN(act_forward_body)(int act, real *x,
                                                                          size_t n) {
    const size_t nv = n - n % AL_ACT_BLOCK;
    real t[AL_ACT_BLOCK];
    size_t l;
    AL_SFN(act_forward_run)(act, x, nv);
    if (nv < n) {
        for (l = 0; l < AL_ACT_BLOCK; l++) t[l] = nv + l < n ? x[nv + l] : (real)0;
        AL_SFN(act_forward_run)(act, t, AL_ACT_BLOCK);
        for (l = 0; nv + l < n; l++) x[nv + l] = t[l];
    }
}
#undef AL_ACT_BLOCK
AL_ISA_VERSIONS_VOID(AL_SFN(act_forward), AL_SFN(act_forward_body), (int act, real *x, size_t n),
                     (act, x, n))

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
